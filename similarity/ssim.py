"""Structural similarity (SSIM) on the work images, over pixels valid in both."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import cv2
import numpy as np

from .base import Metric

__all__ = ["SSIM", "SSIMFeatures"]


class SSIMFeatures(NamedTuple):
    """Per-image statistics so that a pair costs one filter pass."""

    gray: np.ndarray  # (M, N) float64 (float32 loses ~1e-4 to cancellation)
    mean: np.ndarray  # local Gaussian-weighted mean
    var: np.ndarray  # local Gaussian-weighted variance
    mask: np.ndarray  # (M, N) bool


def _blur(arr: np.ndarray, sigma: float) -> np.ndarray:
    # Kernel truncated at 3.5 sigma, as scikit-image's gaussian_weights SSIM.
    radius = int(3.5 * sigma + 0.5)
    return cv2.GaussianBlur(
        arr, (2 * radius + 1, 2 * radius + 1), sigmaX=sigma, borderType=cv2.BORDER_REFLECT
    )


@dataclass(frozen=True)
class SSIM(Metric):
    """Gaussian-weighted SSIM, mapped from [-1, 1] to [0, 1].

    Raw score: the mean of the local SSIM index (Wang et al. 2004) with an
    11-tap-equivalent Gaussian window of standard deviation ``sigma``,
    constants ``C1 = (k1 * data_range)**2`` and ``C2 = (k2 * data_range)**2``,
    averaged over the pixels valid in both images' masks.

    Transform: ``similarity = (ssim + 1) / 2``, monotone, so that the raw range
    [-1, 1] maps onto [0, 1]; identical inputs give exactly 1.0 and the score
    is symmetric because every product in the index commutes.

    Parameters
    ----------
    sigma : float
        Standard deviation of the Gaussian window, in pixels.
    k1, k2 : float
        Stabilising constants of the index.
    data_range : float
        Range of the work images' values (they are in [0, 1]).

    References
    ----------
    Z. Wang, A. C. Bovik, H. R. Sheikh and E. P. Simoncelli, "Image quality
    assessment: from error visibility to structural similarity", IEEE Trans.
    Image Processing 13(4), 600-612, 2004. :doi:`10.1109/TIP.2003.819861`

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> img = rng.random((64, 64), dtype=np.float32)
    >>> mask = np.ones_like(img, dtype=bool)
    >>> m = SSIM()
    >>> f = m.extract(img, mask)
    >>> m.compare(f, f)
    1.0
    """

    name: ClassVar[str] = "ssim"
    version: ClassVar[str] = "1"

    sigma: float = 1.5
    k1: float = 0.01
    k2: float = 0.03
    data_range: float = 1.0

    def extract(self, image: np.ndarray, mask: np.ndarray) -> SSIMFeatures:
        gray = np.ascontiguousarray(image, dtype=np.float64)
        mean = _blur(gray, self.sigma)
        var = _blur(gray * gray, self.sigma) - mean * mean
        return SSIMFeatures(gray, mean, var, np.asarray(mask, dtype=bool))

    def compare(self, a: SSIMFeatures, b: SSIMFeatures) -> float:
        valid = a.mask & b.mask
        if not valid.any():
            return 0.0
        raw = float(self.ssim_map(a, b)[valid].mean(dtype=np.float64))
        return min(1.0, max(0.0, (raw + 1.0) / 2.0))

    def ssim_map(self, a: SSIMFeatures, b: SSIMFeatures) -> np.ndarray:
        """The local SSIM index in [-1, 1] at every pixel."""
        c1 = (self.k1 * self.data_range) ** 2
        c2 = (self.k2 * self.data_range) ** 2
        cov = _blur(a.gray * b.gray, self.sigma) - a.mean * b.mean
        num = (2.0 * a.mean * b.mean + c1) * (2.0 * cov + c2)
        den = (a.mean * a.mean + b.mean * b.mean + c1) * (a.var + b.var + c2)
        return np.clip(num / den, -1.0, 1.0)
