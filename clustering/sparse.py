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
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components
from sklearn.cluster import DBSCAN, HDBSCAN, SpectralClustering

from preprocessing.errors import ClusteringError

from .api import ClusteringResult, _relabel
from .config import ClusteringConfig
from .methods import _default_eps
from .scores import medoids, per_image_silhouette

__all__ = ["SPARSE_METHODS", "cluster_sparse", "sparse_graph"]

SPARSE_METHODS = ("hdbscan", "dbscan", "spectral")

#: Stored distances are at least this: a CSR graph drops explicit zeros.
_MIN_DISTANCE = 1e-12


def sparse_graph(similarity: np.ndarray, compared: np.ndarray, *, kind: str) -> sp.csr_matrix:
    """The compared off-diagonal pairs as a CSR matrix of distances or affinities."""
    mask = np.asarray(compared, bool) & ~np.eye(len(similarity), dtype=bool)
    rows, cols = np.nonzero(mask)
    sims = similarity[rows, cols]
    if kind == "affinity":
        data = sims
    else:
        data = np.maximum(1.0 - sims, _MIN_DISTANCE)
    return sp.csr_matrix((data, (rows, cols)), shape=similarity.shape)


def _chain_components(graph: sp.csr_matrix) -> sp.csr_matrix:
    """Join the graph's components by edges of distance 1 (what a missing pair is)."""
    n_comp, comp = connected_components(graph, directed=False)
    if n_comp <= 1:
        return graph
    firsts = np.array([np.flatnonzero(comp == c)[0] for c in range(n_comp)])
    a, b = firsts[:-1], firsts[1:]
    bridge = sp.csr_matrix(
        (np.ones(2 * len(a)), (np.concatenate([a, b]), np.concatenate([b, a]))),
        shape=graph.shape,
    )
    return (graph + bridge).tocsr()


def cluster_sparse(
    similarity: np.ndarray,
    compared: np.ndarray,
    config: ClusteringConfig,
    *,
    random_state: int = 0,
) -> ClusteringResult:
    """Cluster on the graph of compared pairs (shortlist mode).

    Parameters
    ----------
    similarity : (n, n) ndarray
        Similarities; pairs outside ``compared`` are ignored.
    compared : (n, n) ndarray of bool
        The pairs that were compared (symmetric).
    config : ClusteringConfig
        ``method`` must be one of ``SPARSE_METHODS``; spectral needs a fixed
        ``n_clusters``.

    Raises
    ------
    ClusteringError
        For a method that needs the full matrix.
    """
    n = len(similarity)
    method = config.method
    if method not in SPARSE_METHODS or config.feature_source() is not None:
        raise ClusteringError(
            f"shortlist mode clusters the sparse graph of compared pairs: use "
            f"{', '.join(SPARSE_METHODS)} (on the matrix), not {method!r}"
            + (" with features" if config.feature_source() is not None else "")
        )
    if method == "spectral" and config.n_clusters == "auto":
        raise ClusteringError(
            "shortlist mode: spectral clustering needs a fixed n_clusters (choosing k by "
            "silhouette needs every pair); or use hdbscan"
        )
    notes: list[str] = [
        "shortlist mode: clustered on the sparse graph of the compared pairs; pairs not "
        "compared count as dissimilar"
    ]
    # pairs not compared are at distance 1 (similarity 0)
    distance = np.where(compared, 1.0 - similarity, 1.0)
    np.fill_diagonal(distance, 0.0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if method == "spectral":
            k = int(config.n_clusters)
            if k > n:
                raise ClusteringError(f"n_clusters={k} is more than the {n} images given")
            affinity = sparse_graph(similarity, compared, kind="affinity")
            affinity = affinity + sp.identity(n, format="csr")
            labels = SpectralClustering(
                n_clusters=k,
                affinity="precomputed",
                assign_labels="cluster_qr",
                random_state=random_state,
            ).fit_predict(affinity)
            criterion = "fixed"
        elif method == "hdbscan":
            graph = _chain_components(sparse_graph(similarity, compared, kind="distance"))
            labels = HDBSCAN(
                min_cluster_size=config.min_cluster_size,
                min_samples=config.min_samples,
                metric="precomputed",
                metric_params={"max_distance": 1.0},
                copy=True,
            ).fit_predict(graph)
            criterion = "method"
        else:
            graph = sparse_graph(similarity, compared, kind="distance")
            eps = config.eps
            if eps is None:
                eps = _default_eps(distance, "distance", config.min_samples)
            labels = DBSCAN(
                eps=eps, min_samples=config.min_samples, metric="precomputed"
            ).fit_predict(graph)
            criterion = "method"
    for w in caught:
        notes.append(f"{method}: {w.category.__name__}: {w.message}")
    labels = _relabel(np.asarray(labels, dtype=int))
    k_found = len(set(labels.tolist()) - {-1})
    silhouette = per_image_silhouette(distance, labels)
    mean_sil = float(np.nanmean(silhouette)) if np.isfinite(silhouette).any() else float("nan")
    return ClusteringResult(
        labels=labels,
        k=k_found,
        method=method,
        consumes="affinity" if method == "spectral" else "distance",
        criterion=criterion,
        selection=[{"k": k_found, "k_found": k_found, "silhouette": mean_sil}],
        exemplars=medoids(distance, labels),
        silhouette=silhouette,
        scores={"silhouette": mean_sil},
        warnings=notes,
        features=None,
        coords=None,
        distance=distance,
    )
