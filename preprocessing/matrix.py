"""The similarity-matrix contract and the one similarity -> distance function.

They live in the lowest layer because both ``similarity`` (which produces
matrices) and ``clustering`` (which consumes them) check the same contract and
must convert the same way.
"""

from __future__ import annotations

import numpy as np

from .errors import MatrixError

__all__ = ["check_similarity_matrix", "similarity_to_distance"]

#: Tolerance for symmetry and for the unit diagonal.
ATOL = 1e-9


def check_similarity_matrix(values: np.ndarray, *, name: str = "similarity") -> np.ndarray:
    """Validate a similarity matrix and return it as float64.

    The contract: square, finite, values in [0, 1], symmetric and 1.0 on the
    diagonal (both within ``1e-9``).

    Raises
    ------
    MatrixError
        Naming the shape, the offending value or its position.
    """
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1]:
        raise MatrixError(f"{name} matrix must be square, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        i, j = np.argwhere(~np.isfinite(arr))[0]
        raise MatrixError(f"{name} matrix has a non-finite value {arr[i, j]} at ({i}, {j})")
    lo, hi = float(arr.min(initial=0.0)), float(arr.max(initial=1.0))
    if lo < -ATOL or hi > 1 + ATOL:
        bad = lo if lo < -ATOL else hi
        raise MatrixError(f"{name} matrix values must be in [0, 1], found {bad}")
    asym = float(np.abs(arr - arr.T).max(initial=0.0))
    if asym > ATOL:
        raise MatrixError(f"{name} matrix is not symmetric (largest |S - S.T| = {asym:.3g})")
    diag = np.diag(arr)
    if arr.size and float(np.abs(diag - 1.0).max()) > ATOL:
        i = int(np.argmax(np.abs(diag - 1.0)))
        raise MatrixError(f"{name} matrix diagonal must be 1, found {diag[i]} at ({i}, {i})")
    return np.clip(arr, 0.0, 1.0)


def similarity_to_distance(similarity: np.ndarray) -> np.ndarray:
    """Distance ``1 - S`` with an exact zero diagonal, after checking ``S``.

    This is the only place Atelier converts similarities into distances.

    >>> import numpy as np
    >>> similarity_to_distance(np.array([[1.0, 0.25], [0.25, 1.0]]))
    array([[0.  , 0.75],
           [0.75, 0.  ]])
    """
    dist = 1.0 - check_similarity_matrix(similarity)
    np.fill_diagonal(dist, 0.0)
    return dist
