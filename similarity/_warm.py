"""Imported by the fork server (the preload list of :mod:`preprocessing.parallel`): the
contour test's compiled kernel is loaded from Numba's cache here, once, so that no
worker forked from the server loads it again (about 0.6 s a worker, at its first
contour pair or pair evidence).

The call uses the argument types of :meth:`similarity.contour.ContourMetric._lookup`;
a call with other types would only load or compile another specialisation.
"""

from __future__ import annotations

import numpy as np

from ._fused import chamfer_lookup


def _warm() -> None:
    points = np.zeros(1)
    distance = np.zeros((1, 1, 1), np.uint8)
    valid = np.ones((1, 1), bool)
    out = np.empty((1, 1))
    chamfer_lookup(points, points, np.zeros(1, np.int64), points, points, distance, valid, 1.0, out)


_warm()
