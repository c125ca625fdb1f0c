"""Clustering on the sparse graph of a shortlist: only the compared pairs are edges.

In shortlist mode most pairs were never compared; they are "judged
dissimilar" (distance 1, similarity 0). The methods here consume the compared
pairs only, as a sparse graph:

- ``hdbscan`` (distances): scikit-learn's HDBSCAN on a CSR distance graph with
  ``max_distance = 1`` for the missing pairs. Its sparse path refuses a
  disconnected graph, so the graph's components are chained by edges of
  distance 1, which is what every missing pair is: the same hierarchy as on
  the dense matrix with missing pairs at 1 (test).
- ``dbscan`` (distances): only stored pairs can be neighbours.
- ``spectral`` (affinities): the sparse affinity graph, with a fixed number of
  clusters (choosing k by silhouette needs all distances).
- ``agglomerative`` (distances) with ``clustering.threshold``: average,
  complete or single linkage cut at ``1 - threshold``, which never merges
  clusters that share no compared pair; the same clusters as on the dense
  matrix with missing pairs at 1 (``clustering.sparse_linkage``, test). The
  shortlist's default on the pair model's probability (cut at 0.5).

Each is the method class's ``fit_sparse`` (``clustering.methods``); this module
checks the request, runs it and scores the labels.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp

from preprocessing.errors import ClusteringError

from .api import ClusteringResult, _note_warnings, _relabelled
from .config import ClusteringConfig
from .methods import METHODS, PairGraph, sparse_graph
from .scores import silhouette_from_sums

__all__ = ["SPARSE_METHODS", "PairGraph", "cluster_sparse", "sparse_graph", "sparse_scores"]

#: The methods with a sparse fit, from the registry.
SPARSE_METHODS = tuple(name for name, method in METHODS.items() if method.sparse)


def _check_request(config: ClusteringConfig, n: int) -> None:
    """Refuse, with what to set instead, a clustering the sparse graph cannot give."""
    method = METHODS[config.method]
    if not method.sparse or config.feature_source() is not None:
        raise ClusteringError(
            f"shortlist mode clusters the sparse graph of compared pairs: set "
            f"clustering.method to {', '.join(SPARSE_METHODS)} (on the matrix), not "
            f"{config.method!r}" + (" with features" if config.feature_source() else "")
        )
    if method.sparse_needs_k:
        if config.n_clusters == "auto":
            finders = [m for m in SPARSE_METHODS if METHODS[m].chooses_k]
            raise ClusteringError(
                f"shortlist mode: {config.method} needs a fixed clustering.n_clusters "
                f"(choosing k by {config.selection} needs every pair); or use "
                + " or ".join(finders)
            )
        if int(config.n_clusters) > n:
            raise ClusteringError(
                f"n_clusters={config.n_clusters} is more than the {n} images given"
            )
    if method.sparse_cut and config.threshold is None:
        raise ClusteringError(
            f"shortlist mode: {config.method} clustering of the sparse graph cuts at "
            "clustering.threshold (a number of clusters, chosen or fixed, needs every pair)"
        )


def cluster_sparse(
    similarity: np.ndarray | PairGraph,
    compared: np.ndarray | None,
    config: ClusteringConfig,
    *,
    random_state: int = 0,
) -> ClusteringResult:
    """Cluster on the graph of compared pairs (shortlist mode).

    Parameters
    ----------
    similarity : (n, n) ndarray or PairGraph
        Similarities (pairs outside ``compared`` are ignored), or the compared pairs
        themselves (then ``compared`` is None): no n x n array is made.
    compared : (n, n) ndarray of bool or None
        The pairs that were compared (symmetric).
    config : ClusteringConfig
        ``method`` must be one of ``SPARSE_METHODS``; a method whose sparse
        fit needs a number of clusters (spectral) needs a fixed ``n_clusters``.

    Returns
    -------
    ClusteringResult
        Its silhouettes and exemplars are those of the distances with every pair not
        compared at 1, found from the compared pairs; ``distance`` is None.

    Raises
    ------
    ClusteringError
        For a method that needs the full matrix.
    """
    graph = (
        similarity
        if isinstance(similarity, PairGraph)
        else PairGraph.from_dense(similarity, np.asarray(compared, bool))
    )
    method = METHODS[config.method]
    _check_request(config, graph.n)
    notes: list[str] = [
        "shortlist mode: clustered on the sparse graph of the compared pairs; pairs not "
        "compared count as dissimilar"
    ]
    estimator = method(config, random_state=random_state)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = estimator.fit_sparse(graph)
    _note_warnings(caught, config.method, notes)
    labels = _relabelled(fit).labels
    k_found = len(set(labels.tolist()) - {-1})
    silhouette, exemplars = sparse_scores(graph, labels)
    mean_sil = float(np.nanmean(silhouette)) if np.isfinite(silhouette).any() else float("nan")
    return ClusteringResult(
        labels=labels,
        k=k_found,
        method=config.method,
        consumes=method.matrix_input() or "distance",
        criterion="fixed"
        if method.sparse_needs_k
        else "threshold"
        if method.sparse_cut
        else "method",
        selection=[{"k": k_found, "k_found": k_found, "silhouette": mean_sil}],
        exemplars=exemplars,
        silhouette=silhouette,
        scores={"silhouette": mean_sil},
        warnings=notes,
        features=None,
        coords=None,
        distance=None,
    )


def sparse_scores(graph: PairGraph, labels: np.ndarray) -> tuple[np.ndarray, dict[int, int]]:
    """Each image's silhouette and each cluster's medoid on the distances with every pair
    not compared at 1, from the compared pairs alone: an image's summed distance to a
    cluster is its size (less the image) minus its summed similarity to the members it
    was compared with. The same as :func:`~clustering.scores.per_image_silhouette` and
    :func:`~clustering.scores.medoids` of the dense distances, to rounding (tested).
    """
    n = graph.n
    _, index = np.unique(labels, return_inverse=True)
    counts = np.bincount(index, minlength=int(index.max(initial=-1)) + 1).astype(np.float64)
    member = sp.csr_matrix((np.ones(n), (np.arange(n), index)), shape=(n, len(counts)))
    linked = np.asarray((graph.csr("affinity") @ member).todense())  # (n, k)
    sums = counts[None, :] - linked
    sums[np.arange(n), index] -= 1.0  # an image is at distance 0 from itself
    n_labels = len(counts)
    if 2 <= n_labels <= n - 1:
        silhouette = silhouette_from_sums(sums, index, counts)
    else:
        silhouette = np.full(n, np.nan)
    within = sums[np.arange(n), index]
    exemplars = {}
    for lab in sorted(set(labels.tolist()) - {-1}):
        members = np.flatnonzero(labels == lab)
        exemplars[int(lab)] = int(members[int(np.argmin(within[members]))])
    return silhouette, exemplars
