"""Histogram of oriented gradients, compared by cosine similarity."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from skimage.feature import hog

from .base import Metric

__all__ = ["HOG", "unit_vector_similarity"]


def unit_vector_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """``1 - |a - b|^2 / 2`` for unit vectors: their cosine, exactly 1.0 when equal."""
    diff = a.astype(np.float64) - b
    return float(min(1.0, max(0.0, 1.0 - float(diff @ diff) / 2.0)))


@dataclass(frozen=True)
class HOG(Metric):
    """HOG descriptors of the work images, compared by cosine similarity.

    Features: scikit-image's ``hog`` (``orientations`` bins, cells of
    ``cell`` px, blocks of ``block`` cells, L2-Hys block normalisation) of
    the work image, normalised to unit length. The padding is flat (filled
    with the image's mean), so it adds no gradient energy.

    Raw score: the cosine of the two descriptors, in [0, 1] because HOG
    entries are non-negative. Transform: none, computed as
    ``1 - |a - b|^2 / 2`` so identical inputs give exactly 1.0; symmetric.

    References
    ----------
    N. Dalal and B. Triggs, "Histograms of oriented gradients for human
    detection", CVPR 2005. :doi:`10.1109/CVPR.2005.177`

    Examples
    --------
    >>> import numpy as np
    >>> img = np.random.default_rng(0).random((64, 64)).astype(np.float32)
    >>> m = HOG()
    >>> f = m.extract(img, np.ones(img.shape, bool))
    >>> m.compare(f, f)
    1.0
    """

    name: ClassVar[str] = "hog"
    vector_features: ClassVar[bool] = True
    version: ClassVar[str] = "1"

    orientations: int = 9
    cell: int = 16
    block: int = 2

    def extract(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        vec = hog(
            np.asarray(image, np.float64),
            orientations=self.orientations,
            pixels_per_cell=(self.cell, self.cell),
            cells_per_block=(self.block, self.block),
            block_norm="L2-Hys",
            feature_vector=True,
        )
        norm = float(np.linalg.norm(vec))
        return (vec / norm if norm > 0 else vec).astype(np.float64)

    def compare(self, a: np.ndarray, b: np.ndarray) -> float:
        return unit_vector_similarity(a, b)
