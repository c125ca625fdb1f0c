"""Imported by the fork server (the preload list of :mod:`preprocessing.parallel`): the
compiled kernels workers use on every pair (the contour test's lookup, the keypoint
matching's best two) are loaded from Numba's cache here, once, so that no worker forked
from the server loads them again (about 0.6 s a worker each, at its first pair).

The calls use the argument types of :meth:`similarity.contour.Contour._lookup` (on
contiguous maps and on the reversed views a mirror side holds) and
of :func:`preprocessing.keypoints.mutual_matches` (float32 similarities); a call with
other types would only load or compile another specialisation.
"""

from __future__ import annotations

import numpy as np

from preprocessing._fused import best_two

from ._fused import chamfer_lookup


def _warm() -> None:
    points = np.zeros(1)
    distance = np.zeros((2, 2, 2), np.uint8)  # not 1 x 1 x 1: its reversed view is contiguous
    valid = np.ones((2, 2), bool)
    out = np.empty((1, 1))
    for maps, mask in ((distance, valid), (distance[::-1, :, ::-1], valid[:, ::-1])):
        # the upright side's maps, and the mirror side's (reversed views of them)
        chamfer_lookup(points, points, np.zeros(1, np.int64), points, points, maps, mask, 1.0, out)
    best_two(np.zeros((2, 2), np.float32))


_warm()
