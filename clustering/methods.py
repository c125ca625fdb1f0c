"""Clustering methods on a precomputed matrix, each saying what it consumes.

``consumes`` is ``"affinity"`` (a similarity matrix, larger = more alike) or
``"distance"`` (``1 - similarity`` with a zero diagonal). The caller converts
once, with :func:`preprocessing.matrix.similarity_to_distance`, and hands each
method exactly the input it declares.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from sklearn.cluster import AgglomerativeClustering, SpectralClustering

__all__ = ["MatrixMethod", "METHODS"]

Consumes = Literal["affinity", "distance"]


@dataclass(frozen=True)
class MatrixMethod:
    """A clustering method over a precomputed ``(n, n)`` matrix with a given k."""

    name: str
    consumes: Consumes
    fit_predict: Callable[..., np.ndarray]


def _spectral(affinity: np.ndarray, k: int, *, random_state: int, linkage: str) -> np.ndarray:
    model = SpectralClustering(
        n_clusters=k,
        affinity="precomputed",
        assign_labels="cluster_qr",
        random_state=random_state,
    )
    return model.fit_predict(affinity)


def _agglomerative(distance: np.ndarray, k: int, *, random_state: int, linkage: str) -> np.ndarray:
    del random_state  # deterministic
    model = AgglomerativeClustering(n_clusters=k, metric="precomputed", linkage=linkage)
    return model.fit_predict(distance)


METHODS: dict[str, MatrixMethod] = {
    "spectral": MatrixMethod("spectral", "affinity", _spectral),
    "agglomerative": MatrixMethod("agglomerative", "distance", _agglomerative),
}
