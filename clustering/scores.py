"""Internal cluster-validity scores, each on the input it is defined for."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = [
    "classical_mds",
    "score_labels",
    "per_image_silhouette",
    "silhouette_from_sums",
    "medoids",
    "derivative_scores",
    "euclidean_distances",
    "davies_bouldin",
    "calinski_harabasz",
    "silhouette_values",
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
    # C order: every k of a search multiplies them by a sparse membership (scipy copies
    # an F-ordered operand on each product)
    return np.ascontiguousarray(coords) if coords.shape[1] else np.zeros((n, 1))


def _centroids(points: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each cluster's size and centroid, and each point's cluster index (0..k-1)."""
    _, index = np.unique(labels, return_inverse=True)
    counts = np.bincount(index).astype(np.float64)
    n = len(index)
    member = sp.csr_matrix((np.ones(n), (index, np.arange(n))), shape=(len(counts), n))
    sums = np.asarray(member @ points)
    return counts, sums / counts[:, None], index


def davies_bouldin(points: np.ndarray, labels: np.ndarray) -> float:
    """Davies-Bouldin index of a labelling of Euclidean points (lower is better).

    The mean over clusters of the largest ``(s_i + s_j) / d(c_i, c_j)``, with
    ``s_i`` the mean distance of cluster i's points to its centroid ``c_i``:
    :func:`sklearn.metrics.davies_bouldin_score`'s definition, every cluster
    at once instead of one at a time (equal to it within 1e-7, tested; a k
    search over 250 values of k on 1,000 images took 15 s there).

    References
    ----------
    D. L. Davies and D. W. Bouldin, "A cluster separation measure", IEEE TPAMI
    1(2), 224-227, 1979. :doi:`10.1109/TPAMI.1979.4766909`
    """
    return _spread_scores(points, labels)[0]


def calinski_harabasz(points: np.ndarray, labels: np.ndarray) -> float:
    """Calinski-Harabasz index (between- over within-cluster dispersion, higher is better),
    :func:`sklearn.metrics.calinski_harabasz_score`'s definition for every cluster at once.

    References
    ----------
    T. Calinski and J. Harabasz, "A dendrite method for cluster analysis",
    Communications in Statistics 3(1), 1-27, 1974. :doi:`10.1080/03610927408827101`
    """
    return _spread_scores(points, labels)[1]


def _spread_scores(points: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Davies-Bouldin and Calinski-Harabasz from one pass over the points: both read
    the centroids and each point's offset from its own (a k search scores 250
    labellings; computing them apart did that work twice)."""
    points = np.asarray(points, np.float64)
    counts, centroids, index = _centroids(points, labels)
    n, k = len(points), len(counts)
    offset = points - centroids[index]
    sq = np.einsum("ij,ij->i", offset, offset)  # squared distance to the own centroid
    # Davies-Bouldin
    intra = np.bincount(index, weights=np.sqrt(sq), minlength=k) / counts
    between = euclidean_distances(centroids)
    if np.allclose(intra, 0) or np.allclose(between, 0):
        db = 0.0
    else:
        between[between == 0] = np.inf
        db = float(np.mean(np.max((intra[:, None] + intra[None, :]) / between, axis=1)))
    # Calinski-Harabasz
    mean = points.mean(axis=0)
    spread_between = float(np.sum(counts * np.sum((centroids - mean) ** 2, axis=1)))
    within = float(np.sum(sq))
    ch = 1.0 if within == 0.0 else spread_between * (n - k) / (within * (k - 1.0))
    return db, ch


def silhouette_values(distance: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Each point's silhouette on a precomputed distance matrix (Rousseeuw 1987).

    :func:`sklearn.metrics.silhouette_samples`' definition (0 for a point alone
    in its cluster; every label, ``-1`` included, is a cluster) with every
    cluster's summed distances taken in one product of the matrix with the
    sparse membership (equal to it within 1e-12, tested; a k search over 250
    values of k on 1,000 images spent 0.7 s in its per-chunk reductions).

    References
    ----------
    P. J. Rousseeuw, "Silhouettes: a graphical aid to the interpretation and
    validation of cluster analysis", J. Comput. Appl. Math. 20, 53-65, 1987.
    :doi:`10.1016/0377-0427(87)90125-7`
    """
    return _silhouette(np.ascontiguousarray(np.asarray(distance, np.float64).T), labels)


def _silhouette(transposed: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """:func:`silhouette_values` from the C-ordered transpose of the distance matrix,
    which a k search makes once for all its labellings (scipy copies an F-ordered
    operand of a sparse product each time: 1.8 ms a product at 1,000 images, 0.6 ms
    without the copy)."""
    _, index = np.unique(labels, return_inverse=True)
    counts = np.bincount(index).astype(np.float64)
    n, rows = len(index), np.arange(len(index))
    member = sp.csr_matrix((np.ones(n), (rows, index)), shape=(n, len(counts)))
    sums = np.asarray((member.T @ transposed).T)  # (n, k): summed distance to each cluster
    return silhouette_from_sums(sums, index, counts)


def silhouette_from_sums(sums: np.ndarray, index: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Silhouettes from each image's summed distance to each cluster, ``sums`` (n, k),
    its cluster ``index`` (n,) in 0..k-1 and the clusters' sizes ``counts`` (k,)."""
    rows = np.arange(len(index))
    sums = np.array(sums, np.float64)
    own = counts[index] - 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        intra = np.where(own > 0, sums[rows, index] / np.maximum(own, 1.0), 0.0)
        means = sums / counts
        means[rows, index] = np.inf
        inter = means.min(axis=1)
        values = (inter - intra) / np.maximum(intra, inter)
    return np.where(own > 0, np.nan_to_num(values), 0.0)


def score_labels(
    distance: np.ndarray,
    coords: np.ndarray,
    labels: np.ndarray,
    *,
    transposed: np.ndarray | None = None,
) -> dict[str, float]:
    """Silhouette (on distances), Davies-Bouldin and Calinski-Harabasz (on MDS coords).

    Scores that are undefined for this labelling (one cluster, or as many
    clusters as images) are NaN. ``transposed``, when given, is
    ``np.ascontiguousarray(distance.T)``, made once by a caller that scores many
    labellings of the same distances.
    """
    n_labels = len(set(labels.tolist()))
    if not 2 <= n_labels <= len(labels) - 1:
        nan = float("nan")
        return {"silhouette": nan, "davies-bouldin": nan, "calinski-harabasz": nan}
    if transposed is None:
        transposed = np.ascontiguousarray(np.asarray(distance, np.float64).T)
    db, ch = _spread_scores(coords, labels)
    return {
        "silhouette": float(_silhouette(transposed, labels).mean()),
        "davies-bouldin": db,
        "calinski-harabasz": ch,
    }


def per_image_silhouette(distance: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Silhouette of each image on the distance matrix (NaN where undefined)."""
    n_labels = len(set(labels.tolist()))
    if not 2 <= n_labels <= len(labels) - 1:
        return np.full(len(labels), np.nan)
    return silhouette_values(distance, labels)


def medoids(distance: np.ndarray, labels: np.ndarray) -> dict[int, int]:
    """Index of each cluster's medoid (smallest summed distance to its members)."""
    out = {}
    for lab in sorted(set(labels.tolist()) - {-1}):
        members = np.flatnonzero(labels == lab)
        within = distance[np.ix_(members, members)].sum(axis=1)
        out[int(lab)] = int(members[int(np.argmin(within))])
    return out
