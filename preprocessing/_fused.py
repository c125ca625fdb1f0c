"""Compiled kernels (Numba) of the keypoint matching: one pass where NumPy needs six.

Imported lazily by :func:`preprocessing.keypoints.mutual_matches`, so that importing
Atelier does not load the compiler.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["best_two"]


@numba.njit(cache=True, nogil=True)
def best_two(sim):  # noqa: ANN001, ANN201
    """Each row's and each column's largest value, where it is, and the largest of the
    others, in one pass over ``sim`` (2-D, finite).

    The same as NumPy's ``argmax`` (the first of equal values) and ``max`` after
    that one entry is set to -inf, for rows and for columns: comparisons only, so
    the values are the matrix's own.

    Returns
    -------
    row_at, row_first, row_second, col_at, col_first, col_second
    """
    n_rows, n_cols = sim.shape
    row_at = np.zeros(n_rows, np.int64)
    row_first = np.full(n_rows, -np.inf, sim.dtype)
    row_second = np.full(n_rows, -np.inf, sim.dtype)
    col_at = np.zeros(n_cols, np.int64)
    col_first = np.full(n_cols, -np.inf, sim.dtype)
    col_second = np.full(n_cols, -np.inf, sim.dtype)
    for i in range(n_rows):
        first = row_first[i]
        second = row_second[i]
        at = 0
        for j in range(n_cols):
            v = sim[i, j]
            if v > first:
                second = first
                first = v
                at = j
            elif v > second:
                second = v
            if v > col_first[j]:
                col_second[j] = col_first[j]
                col_first[j] = v
                col_at[j] = i
            elif v > col_second[j]:
                col_second[j] = v
        row_at[i] = at
        row_first[i] = first
        row_second[i] = second
    return row_at, row_first, row_second, col_at, col_first, col_second
