"""Internal cluster-validity scores, each on the input it is defined for."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import (
    calinski_harabasz_score,
    davies_bouldin_score,
    silhouette_samples,
    silhouette_score,
)

__all__ = [
    "classical_mds",
    "score_labels",
    "per_image_silhouette",
    "medoids",
    "derivative_scores",
    "euclidean_distances",
]


def euclidean_distances(features: np.ndarray) -> np.ndarray:
    """Pairwise Euclidean distances of feature rows, exact zero diagonal."""
    sq = (features**2).sum(axis=1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * features @ features.T, 0.0)
    dist = np.sqrt(d2)
    np.fill_diagonal(dist, 0.0)
    return (dist + dist.T) / 2


def derivative_scores(tree: np.ndarray, ks: list[int]) -> dict[int, float]:
    """Elbow of a dendrogram: the second difference of the merge heights at each k.

    With ``H_k`` the height of the merge that joins k clusters into k - 1,
    ``score(k) = (H_k - H_{k+1}) - (H_{k+1} - H_{k+2})``: large where the merge
    above the cut jumps and the merges below it do not (NaN where undefined).
    """
    heights = np.sort(tree[:, 2])
    n = len(heights) + 1

    def h(k: int) -> float:
        return float(heights[n - k]) if 2 <= k <= n else float("nan")

    return {k: (h(k) - h(k + 1)) - (h(k + 1) - h(k + 2)) for k in ks}


def classical_mds(
    distance: np.ndarray, *, n_components: int | None = None, energy: float | None = None
) -> np.ndarray:
    """Torgerson's classical MDS coordinates of a distance matrix.

    Keeps every dimension with a positive eigenvalue, or the first
    ``n_components`` of them, or (``energy``) the fewest leading ones, at least
    2, whose eigenvalues hold that share of the positive spectrum.
    Deterministic: signs are fixed so that the largest-magnitude entry of
    each axis is positive.

    References
    ----------
    W. S. Torgerson, "Multidimensional scaling: I. Theory and method",
    Psychometrika 17, 401-419, 1952. :doi:`10.1007/BF02288916`
    """
    n = distance.shape[0]
    j = np.eye(n) - np.full((n, n), 1.0 / n)
    b = -0.5 * j @ (distance**2) @ j
    evals, evecs = np.linalg.eigh((b + b.T) / 2)
    order = np.argsort(evals)[::-1]
    evals, evecs = evals[order], evecs[:, order]
    keep = evals > 1e-12 * max(1.0, float(evals[0]) if n else 1.0)
    if n_components is not None:
        keep &= np.arange(n) < n_components
    if energy is not None and keep.any():
        share = np.cumsum(np.where(keep, evals, 0.0)) / evals[keep].sum()
        keep &= np.arange(n) < max(2, int(np.searchsorted(share, energy - 1e-12)) + 1)
    coords = evecs[:, keep] * np.sqrt(evals[keep])
    if coords.size:
        flip = np.sign(coords[np.argmax(np.abs(coords), axis=0), np.arange(coords.shape[1])])
        coords = coords * np.where(flip == 0, 1.0, flip)
    return coords if coords.shape[1] else np.zeros((n, 1))


def score_labels(distance: np.ndarray, coords: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Silhouette (on distances), Davies-Bouldin and Calinski-Harabasz (on MDS coords).

    Scores that are undefined for this labelling (one cluster, or as many
    clusters as images) are NaN.
    """
    n_labels = len(set(labels.tolist()))
    if not 2 <= n_labels <= len(labels) - 1:
        nan = float("nan")
        return {"silhouette": nan, "davies-bouldin": nan, "calinski-harabasz": nan}
    return {
        "silhouette": float(silhouette_score(distance, labels, metric="precomputed")),
        "davies-bouldin": float(davies_bouldin_score(coords, labels)),
        "calinski-harabasz": float(calinski_harabasz_score(coords, labels)),
    }


def per_image_silhouette(distance: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Silhouette of each image on the distance matrix (NaN where undefined)."""
    n_labels = len(set(labels.tolist()))
    if not 2 <= n_labels <= len(labels) - 1:
        return np.full(len(labels), np.nan)
    return silhouette_samples(distance, labels, metric="precomputed")


def medoids(distance: np.ndarray, labels: np.ndarray) -> dict[int, int]:
    """Index of each cluster's medoid (smallest summed distance to its members)."""
    out = {}
    for lab in sorted(set(labels.tolist()) - {-1}):
        members = np.flatnonzero(labels == lab)
        within = distance[np.ix_(members, members)].sum(axis=1)
        out[int(lab)] = int(members[int(np.argmin(within))])
    return out
