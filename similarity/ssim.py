"""Structural similarity (SSIM) on the work images, over pixels valid in both."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import cv2
import numpy as np

from .base import Metric

__all__ = ["SSIM", "SSIMFeatures", "SSIMPrepared"]


class SSIMFeatures(NamedTuple):
    """What is cached and shipped: the work image and its mask (compact)."""

    gray: np.ndarray  # (M, N) float32
    mask: np.ndarray  # (M, N) bool


class SSIMPrepared(NamedTuple):
    """Per-image statistics so that a pair costs one filter pass.

    float64 throughout: in float32 the variance ``E[x^2] - E[x]^2`` loses about
    1e-4 to cancellation.
    """

    gray: np.ndarray  # (M, N) float64
    mean: np.ndarray  # local Gaussian-weighted mean
    var: np.ndarray  # local Gaussian-weighted variance
    mask: np.ndarray  # (M, N) bool
    mean_term: np.ndarray  # mean^2 + C1 / 2
    var_term: np.ndarray  # var + C2 / 2


def _blur(arr: np.ndarray, sigma: float, dst: np.ndarray | None = None) -> np.ndarray:
    # Kernel truncated at 3.5 sigma, as scikit-image's gaussian_weights SSIM.
    radius = int(3.5 * sigma + 0.5)
    return cv2.GaussianBlur(
        arr,
        (2 * radius + 1, 2 * radius + 1),
        sigmaX=sigma,
        dst=dst,
        borderType=cv2.BORDER_REFLECT,
    )


_SCRATCH = threading.local()


def _scratch(shape: tuple[int, ...]) -> list[np.ndarray]:
    """Three float64 work arrays of ``shape``, reused per thread.

    A pair's arithmetic on fresh 0.5 MB temporaries spends most of its time
    in page faults (large blocks are mapped anew on every allocation); reusing
    buffers makes a pair about 3x cheaper.
    """
    bufs = getattr(_SCRATCH, "bufs", None)
    if bufs is None or bufs[0].shape != shape:
        bufs = [np.empty(shape, np.float64) for _ in range(3)]
        _SCRATCH.bufs = bufs
    return bufs


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

    def _constants(self) -> tuple[float, float]:
        return (self.k1 * self.data_range) ** 2, (self.k2 * self.data_range) ** 2

    def extract(self, image: np.ndarray, mask: np.ndarray) -> SSIMFeatures:
        return SSIMFeatures(np.asarray(image, np.float32), np.asarray(mask, dtype=bool))

    def prepare(self, features: SSIMFeatures | SSIMPrepared) -> SSIMPrepared:
        """Local means and variances (a blur each), once per image per block."""
        if isinstance(features, SSIMPrepared):
            return features
        c1, c2 = self._constants()
        gray = np.ascontiguousarray(features.gray, dtype=np.float64)
        mean = _blur(gray, self.sigma)
        var = _blur(gray * gray, self.sigma) - mean * mean
        return SSIMPrepared(gray, mean, var, features.mask, mean * mean + c1 / 2, var + c2 / 2)

    def compare(self, a: SSIMFeatures | SSIMPrepared, b: SSIMFeatures | SSIMPrepared) -> float:
        a, b = self.prepare(a), self.prepare(b)
        valid = a.mask & b.mask
        count = int(np.count_nonzero(valid))
        if count == 0:
            return 0.0
        index = self.ssim_map(a, b, clip=False)  # a scratch buffer, reduced right away
        total = float(index.sum()) if count == valid.size else float(index[valid].sum())
        return min(1.0, max(0.0, (total / count + 1.0) / 2.0))

    def evidence(self, a: SSIMFeatures, b: SSIMFeatures) -> dict[str, np.ndarray]:
        """The local SSIM map, mapped to [0, 1] like the score."""
        return {"local_map": (self.ssim_map(a, b) + 1.0) / 2.0}

    def ssim_map(
        self, a: SSIMFeatures | SSIMPrepared, b: SSIMFeatures | SSIMPrepared, *, clip: bool = True
    ) -> np.ndarray:
        """The local SSIM index in [-1, 1] at every pixel.

        ``(2 mu_a mu_b + C1)(2 cov + C2) / ((mu_a^2 + mu_b^2 + C1)(var_a + var_b + C2))``,
        evaluated as ``4 (p + C1/2)(cov + C2/2) / ((m_a + m_b)(v_a + v_b))`` with the
        per-image terms ``m = mu^2 + C1/2`` and ``v = var + C2/2``, in place. For
        identical inputs numerator and denominator are the same float, so the
        index is exactly 1.
        """
        a, b = self.prepare(a), self.prepare(b)
        c1, c2 = self._constants()
        prod, cov, den = _scratch(a.gray.shape)
        np.multiply(a.gray, b.gray, out=den)
        _blur(den, self.sigma, dst=cov)
        np.multiply(a.mean, b.mean, out=prod)
        cov -= prod
        cov += c2 / 2
        prod += c1 / 2
        prod *= cov
        prod *= 4.0
        np.add(a.mean_term, b.mean_term, out=den)
        np.add(a.var_term, b.var_term, out=cov)
        den *= cov
        prod /= den
        # the buffers are reused: hand out a copy unless the caller only reduces it
        return np.clip(prod, -1.0, 1.0) if clip else prod
