"""Complex-wavelet SSIM (CW-SSIM) on a complex steerable pyramid."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import cv2
import numpy as np

from .base import Metric, scratch

__all__ = ["CWSSIM", "CWSSIMFeatures"]


class CWSSIMFeatures(NamedTuple):
    """Per subband: complex coefficients, local energy (window sums of |c|^2), valid mask."""

    bands: tuple[np.ndarray, ...]  # complex64
    energy: tuple[np.ndarray, ...]  # float32
    masks: tuple[np.ndarray, ...]  # bool


def _window_sum(arr: np.ndarray, size: int, dst: np.ndarray | None = None) -> np.ndarray:
    return cv2.boxFilter(
        arr, -1, (size, size), dst=dst, normalize=False, borderType=cv2.BORDER_REFLECT
    )


@dataclass(frozen=True)
class CWSSIM(Metric):
    """Complex-wavelet structural similarity, in [0, 1].

    Features (once per image): a complex steerable pyramid (pyrtools'
    ``SteerablePyramidFreq``, ``height`` scales, ``order + 1`` orientations,
    ``is_complex=True``) of the work image; for each subband the local
    energy ``sum |c|^2`` over a ``window x window`` window, and the image's
    valid mask resampled to the subband's size.

    Raw score (once per pair): in every subband, the local CW-SSIM index of
    Wang and Simoncelli,
    ``(2 |sum c_a conj(c_b)| + k) / (sum |c_a|^2 + sum |c_b|^2 + k)``, over the
    same windows, averaged over the pixels valid in both images, then
    averaged over the subbands (residual high- and low-pass excluded). The
    index is insensitive to the small, consistent phase changes that a
    shift or rotation of a pixel or two causes, which SSIM is not.

    Transform: none; by the Cauchy-Schwarz inequality the index is already in
    [0, 1]. It is symmetric (|z| = |conj z|), and exactly 1.0 for identical
    inputs (``c conj(c)`` is real).

    References
    ----------
    Z. Wang and E. P. Simoncelli, "Translation insensitive image similarity
    in complex wavelet domain", ICASSP 2005. :doi:`10.1109/ICASSP.2005.1415529`
    M. P. Sampat, Z. Wang, S. Gupta, A. C. Bovik and M. K. Markey, "Complex
    wavelet structural similarity: a new image similarity index", IEEE Trans.
    Image Processing 18(11), 2385-2401, 2009. :doi:`10.1109/TIP.2009.2025923`

    Examples
    --------
    >>> import numpy as np
    >>> img = np.random.default_rng(0).random((64, 64)).astype(np.float32)
    >>> m = CWSSIM()
    >>> f = m.extract(img, np.ones(img.shape, bool))
    >>> m.compare(f, f)
    1.0
    """

    name: ClassVar[str] = "cw-ssim"
    version: ClassVar[str] = "1"

    height: int = 4
    order: int = 3
    window: int = 7
    k: float = 1e-4
    first_scale: int = 1

    def __post_init__(self) -> None:
        if not 0 <= self.first_scale < self.height:
            raise ValueError(
                f"first_scale must be in [0, height), got {self.first_scale} (height {self.height})"
            )

    def extract(self, image: np.ndarray, mask: np.ndarray) -> CWSSIMFeatures:
        # pyrtools allows floor(log2(min side)) - 2 levels: small work images get fewer
        # (every image of an analysis has the same size, so pairs stay comparable)
        levels = max(1, min(self.height, int(np.log2(min(image.shape))) - 2))
        first = min(self.first_scale, levels - 1)
        import pyrtools as pt  # here, not at import: 0.36 s of every start-up without CW-SSIM

        pyr = pt.pyramids.SteerablePyramidFreq(
            np.asarray(image, np.float64), height=levels, order=self.order, is_complex=True
        )
        bands, energy, masks = [], [], []
        full = np.asarray(mask, np.float32)
        for key, coeffs in pyr.pyr_coeffs.items():
            if not isinstance(key, tuple) or key[0] < first:
                continue  # residuals are not complex subbands; finest scales are skipped
            c = np.ascontiguousarray(coeffs, np.complex64)
            bands.append(c)
            # |c|^2 as re^2 + im^2: the same float32 operations as the real part of
            # c * conj(c), so identical inputs give an index of exactly 1.
            energy.append(_window_sum(c.real * c.real + c.imag * c.imag, self.window))
            rows, cols = c.shape
            small = cv2.resize(full, (cols, rows), interpolation=cv2.INTER_AREA)
            masks.append(small >= 0.999)
        return CWSSIMFeatures(tuple(bands), tuple(energy), tuple(masks))

    def _cross_sums(self, ca: np.ndarray, cb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Window sums of the real and imaginary parts of ``ca * conj(cb)``: one compiled
        pass for the product, two box filters (the kernel), into this thread's scratch."""
        from ._fused import cross_terms

        re, im, re_sum, im_sum = scratch("cw-ssim", ca.shape, 4)
        cross_terms(ca, cb, re, im)
        _window_sum(re, self.window, dst=re_sum)
        _window_sum(im, self.window, dst=im_sum)
        return re_sum, im_sum

    def index_maps(self, a: CWSSIMFeatures, b: CWSSIMFeatures) -> list[np.ndarray]:
        """The local CW-SSIM index of every subband (for pair evidence), float64."""
        from ._fused import cwssim_map

        out = []
        for ca, cb, ea, eb in zip(a.bands, b.bands, a.energy, b.energy, strict=True):
            index = np.empty(ca.shape, np.float64)
            cwssim_map(*self._cross_sums(ca, cb), ea, eb, float(self.k), index)
            out.append(index)
        return out

    def evidence(self, a: CWSSIMFeatures, b: CWSSIMFeatures) -> dict[str, np.ndarray]:
        """The local index averaged over subbands, at the finest used subband's size."""
        maps = self.index_maps(a, b)
        rows, cols = maps[0].shape
        stack = [
            cv2.resize(m.astype(np.float32), (cols, rows), interpolation=cv2.INTER_LINEAR)
            for m in maps
        ]
        return {"local_map": np.mean(stack, axis=0)}

    def compare(self, a: CWSSIMFeatures, b: CWSSIMFeatures) -> float:
        """The mean over subbands of the index averaged over pixels valid in both.

        Per subband: the window sums of the cross product (:meth:`_cross_sums`), then
        one compiled pass that evaluates, clips and sums the index where both are
        valid (``similarity._fused``), the arithmetic of :meth:`index_maps`.
        """
        from ._fused import cwssim_band

        scores = []
        for ca, cb, ea, eb, ma, mb in zip(
            a.bands, b.bands, a.energy, b.energy, a.masks, b.masks, strict=True
        ):
            total, count = cwssim_band(*self._cross_sums(ca, cb), ea, eb, float(self.k), ma, mb)
            if count:
                scores.append(total / count)
        return float(np.mean(scores)) if scores else 0.0
