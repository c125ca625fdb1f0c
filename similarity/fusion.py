"""Fusion of several metrics' similarity matrices into one."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import rankdata

from preprocessing.errors import ConfigError, MatrixError

from .matrix import SimilarityMatrix

__all__ = ["CALIBRATIONS", "calibrate", "fuse"]

CALIBRATIONS = ("rank", "minmax")


def calibrate(matrix: SimilarityMatrix, method: str = "rank") -> np.ndarray:
    """The off-diagonal similarities on a common [0, 1] scale, diagonal 1.

    ``rank``: each pair's rank among the matrix's off-diagonal pairs
    (average ranks for ties), scaled to [0, 1]: the order is kept, the scale
    becomes uniform, so metrics with very different spreads weigh alike.
    ``minmax``: ``(s - min) / (max - min)`` over the off-diagonal pairs.
    A matrix whose off-diagonal values are all equal maps to 0.5. In
    shortlist mode only the compared pairs are calibrated; the others stay 0.
    """
    n = len(matrix)
    iu = np.triu_indices(n, k=1)
    if matrix.compared is not None:
        keep = matrix.compared[iu]
        iu = (iu[0][keep], iu[1][keep])
    off = matrix.values[iu]
    if method not in CALIBRATIONS:
        raise ConfigError(f"unknown calibration {method!r}; valid: {', '.join(CALIBRATIONS)}")
    if off.size == 0:
        return np.eye(n)
    lo, hi = float(off.min()), float(off.max())
    if hi - lo <= 1e-15:
        scaled = np.full(off.shape, 0.5)
    elif method == "rank":
        scaled = (rankdata(off, method="average") - 1.0) / max(off.size - 1, 1)
    else:
        scaled = (off - lo) / (hi - lo)
    out = np.eye(n)
    out[iu] = scaled
    return out + np.triu(out, k=1).T


def fuse(
    matrices: Sequence[SimilarityMatrix],
    weights: Sequence[float] | None = None,
    *,
    calibration: str = "rank",
) -> SimilarityMatrix:
    """Weighted mean of calibrated similarity matrices.

    Parameters
    ----------
    matrices : sequence of SimilarityMatrix
        Matrices over the same ids in the same order.
    weights : sequence of float, optional
        Non-negative, one per matrix, not all zero; equal when ``None``.
    calibration : {"rank", "minmax"}
        How each matrix is put on a common scale first (see :func:`calibrate`).

    Returns
    -------
    SimilarityMatrix
        ``metric="fused"``; in [0, 1], symmetric, 1 on the diagonal.

    Raises
    ------
    MatrixError
        Matrices over different ids.
    ConfigError
        Weights of the wrong number, negative or all zero.
    """
    if not matrices:
        raise ConfigError("fusion needs at least one matrix")
    ids = matrices[0].ids
    for m in matrices[1:]:
        if m.ids != ids:
            raise MatrixError(f"cannot fuse {m.metric} with {matrices[0].metric}: different ids")
    w = np.ones(len(matrices)) if weights is None else np.asarray(weights, float)
    if w.shape != (len(matrices),) or (w < 0).any() or not w.sum() > 0 or not np.isfinite(w).all():
        raise ConfigError(
            f"fusion weights must be {len(matrices)} non-negative numbers, not all zero; got "
            f"{list(weights) if weights is not None else None}"
        )
    w = w / w.sum()
    compared = None
    if any(m.compared is not None for m in matrices):
        compared = np.logical_and.reduce(
            [
                m.compared if m.compared is not None else np.ones((len(ids),) * 2, bool)
                for m in matrices
            ]
        )
    values = sum(wi * calibrate(m, calibration) for wi, m in zip(w, matrices, strict=True))
    values = np.asarray(values)
    np.fill_diagonal(values, 1.0)
    values = (values + values.T) / 2
    if compared is not None:
        values = np.where(compared, values, 0.0)
    params = {
        "metrics": [m.metric for m in matrices],
        "weights": [float(x) for x in w],
        "calibration": calibration,
    }
    return SimilarityMatrix(ids, np.clip(values, 0.0, 1.0), "fused", params, compared=compared)


def local_scaling(matrix: SimilarityMatrix, *, k: int = 7) -> SimilarityMatrix:
    """Self-tuning rescaling of a similarity matrix: each image's own neighbourhood sets its scale.

    With distances ``d = 1 - s`` and ``sigma_i`` the distance from image ``i``
    to its ``k``-th nearest other image, ``s'_ij = exp(-d_ij^2 / (sigma_i
    sigma_j))``. A collection whose copies are all loosely alike and one whose
    copies are near-identical then look alike to the clustering: what counts is
    how close a pair is compared with each image's own neighbours, not one
    global scale. In [0, 1], symmetric, 1 on the diagonal; monotone in ``s``
    for a fixed pair of scales.

    References
    ----------
    L. Zelnik-Manor and P. Perona, "Self-tuning spectral clustering", NIPS 17,
    1601-1608, 2004.
    """
    n = len(matrix)
    d = 1.0 - np.asarray(matrix.values, np.float64)
    np.fill_diagonal(d, 0.0)
    if n < 3:
        return matrix
    kk = min(k, n - 1)
    others = np.sort(d + np.diag(np.full(n, np.inf)), axis=1)
    sigma = np.maximum(others[:, kk - 1], 1e-6)
    values = np.exp(-(d**2) / np.outer(sigma, sigma))
    np.fill_diagonal(values, 1.0)
    values = (values + values.T) / 2
    params = {"of": matrix.metric, "k": kk, "transform": "local scaling"}
    return SimilarityMatrix(matrix.ids, np.clip(values, 0.0, 1.0), f"{matrix.metric}", params)
