"""Clustering methods, each declaring the input it consumes.

Inputs:

- ``affinity``: the similarity matrix itself (larger = more alike);
- ``distance``: ``1 - similarity`` with a zero diagonal;
- ``features``: one vector per image (Euclidean).

The caller converts once (``preprocessing.matrix.similarity_to_distance``)
and hands each method exactly the input it declares; a method given another
input is refused with a message (see :func:`check_input`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform
from sklearn.cluster import DBSCAN, HDBSCAN, AffinityPropagation, KMeans, SpectralClustering

from preprocessing.errors import ClusteringError

__all__ = [
    "Input",
    "Method",
    "METHODS",
    "MATRIX_LINKAGES",
    "FEATURE_ONLY_LINKAGES",
    "check_input",
    "hierarchy",
]

Input = Literal["affinity", "distance", "features"]

#: Linkages valid on any distance matrix; the others need Euclidean features.
MATRIX_LINKAGES = ("average", "complete", "single", "weighted")
FEATURE_ONLY_LINKAGES = ("ward", "centroid", "median")


@dataclass(frozen=True)
class Fit:
    """Labels from one fit, with whatever else the method knows (exemplars, warnings)."""

    labels: np.ndarray
    exemplars: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Method:
    """A clustering method.

    Attributes
    ----------
    name : str
    inputs : tuple of Input
        What it consumes: the matrix path uses the first of ``affinity`` /
        ``distance`` it lists; the features path needs ``features``.
    takes_k : bool
        Whether it is given a number of clusters (else it finds its own).
    fit : callable
        ``fit(data, k, *, params, random_state) -> Fit``.
    """

    name: str
    inputs: tuple[Input, ...]
    takes_k: bool
    fit: Callable[..., Fit]

    def matrix_input(self) -> Input | None:
        for kind in self.inputs:
            if kind in ("affinity", "distance"):
                return kind
        return None


def hierarchy(data: np.ndarray, kind: Input, method: str) -> np.ndarray:
    """SciPy linkage matrix of a distance matrix (``kind='distance'``) or of features."""
    if kind == "distance":
        if method in FEATURE_ONLY_LINKAGES:
            raise ClusteringError(
                f"{method} linkage needs Euclidean features, not a precomputed distance: "
                "use --features (e.g. mds) or an average, complete, single or weighted linkage"
            )
        return linkage(squareform(data, checks=False), method=method)
    return linkage(data, method=method, metric="euclidean")


def _spectral(data: np.ndarray, k: int, *, params: dict[str, Any], random_state: int) -> Fit:
    model = SpectralClustering(
        n_clusters=k, affinity="precomputed", assign_labels="cluster_qr", random_state=random_state
    )
    return Fit(model.fit_predict(data))


def _affinity(data: np.ndarray, k: int | None, *, params: dict[str, Any], random_state: int) -> Fit:
    pref = params.get("preference")
    if pref is None:
        off = data[np.triu_indices(len(data), k=1)]
        pref = float(np.median(off)) if off.size else 0.5
    model = AffinityPropagation(
        affinity="precomputed",
        preference=pref,
        damping=params.get("damping", 0.5),
        max_iter=1000,
        convergence_iter=30,
        random_state=random_state,
    )
    labels = model.fit_predict(data)
    centres = getattr(model, "cluster_centers_indices_", None)
    exemplars = {}
    if centres is not None and len(centres) and (labels >= 0).any():
        exemplars = {int(labels[c]): int(c) for c in centres}
    return Fit(labels, exemplars)


def _agglomerative(
    data: np.ndarray, k: int | None, *, params: dict[str, Any], random_state: int
) -> Fit:
    del random_state  # deterministic
    tree = hierarchy(data, params["input"], params["linkage"])
    if k is None:
        threshold = params["distance_threshold"]
        labels = fcluster(tree, t=threshold, criterion="distance")
    else:
        labels = fcluster(tree, t=k, criterion="maxclust")
    return Fit(np.asarray(labels) - 1)  # SciPy's labels start at 1


def _dbscan(data: np.ndarray, k: int | None, *, params: dict[str, Any], random_state: int) -> Fit:
    metric = "precomputed" if params["input"] == "distance" else "euclidean"
    eps = params.get("eps")
    if eps is None:
        eps = _default_eps(data, params["input"], params.get("min_samples", 2))
    model = DBSCAN(eps=eps, min_samples=params.get("min_samples", 2), metric=metric)
    return Fit(model.fit_predict(data))


def _default_eps(data: np.ndarray, kind: Input, min_samples: int) -> float:
    """1.5 x the median distance to the ``min_samples``-th neighbour, at most the median
    pairwise distance: the scale of a cluster's neighbourhoods with a margin, so that
    the looser half of each group is not cut off as noise (the plain median did that)."""
    if kind == "distance":
        dist = data
    else:
        diff = data[:, None, :] - data[None, :, :]
        dist = np.sqrt((diff**2).sum(axis=2))
    kth = np.sort(dist, axis=1)[:, min(min_samples, len(dist) - 1)]
    cap = float(np.median(dist[np.triu_indices(len(dist), k=1)]))
    return float(max(min(1.5 * np.median(kth), cap), 1e-9))


def _hdbscan(data: np.ndarray, k: int | None, *, params: dict[str, Any], random_state: int) -> Fit:
    metric = "precomputed" if params["input"] == "distance" else "euclidean"
    model = HDBSCAN(
        min_cluster_size=params.get("min_cluster_size", 2),
        min_samples=params.get("min_samples"),
        metric=metric,
        copy=True,
    )
    return Fit(model.fit_predict(data))


def _kmeans(data: np.ndarray, k: int, *, params: dict[str, Any], random_state: int) -> Fit:
    model = KMeans(n_clusters=k, n_init=10, random_state=random_state)
    return Fit(model.fit_predict(data))


METHODS: dict[str, Method] = {
    "spectral": Method("spectral", ("affinity",), True, _spectral),
    "affinity": Method("affinity", ("affinity",), False, _affinity),
    "agglomerative": Method("agglomerative", ("distance", "features"), True, _agglomerative),
    "dbscan": Method("dbscan", ("distance", "features"), False, _dbscan),
    "hdbscan": Method("hdbscan", ("distance", "features"), False, _hdbscan),
    "kmeans": Method("kmeans", ("features",), True, _kmeans),
}


def check_input(method: Method, kind: Input) -> None:
    """Refuse a method given an input it does not consume.

    Raises
    ------
    ClusteringError
        Naming what the method consumes and what to do.
    """
    if kind not in method.inputs:
        wants = " or ".join(method.inputs)
        hint = (
            "give it per-image features (--features mds|pca|hog|...)"
            if method.inputs == ("features",)
            else "cluster the similarity matrix (drop --features)"
        )
        raise ClusteringError(f"{method.name} consumes {wants}, not {kind}: {hint}")
