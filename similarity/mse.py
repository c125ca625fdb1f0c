"""Mean squared error over valid pixels, as a bounded similarity."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import numpy as np

from .base import Metric

__all__ = ["MSE", "PixelFeatures"]


class PixelFeatures(NamedTuple):
    """The work image and its validity mask."""

    gray: np.ndarray
    mask: np.ndarray


@dataclass(frozen=True)
class MSE(Metric):
    """Mean squared error on the pixels valid in both images, mapped to [0, 1].

    Raw score: ``mse = mean((a - b)^2)`` over the pixels valid in both
    images' masks (work images are in [0, 1], so ``mse`` is in [0, 1]).

    Transform: ``similarity = exp(-mse / scale)``: 1.0 exactly for identical
    images, strictly decreasing in ``mse``, symmetric. With the default
    ``scale = 0.02`` a root-mean-square difference of 0.14 (about 36 grey
    levels of 255) gives 1/e. No pixel valid in both gives 0.

    References
    ----------
    Z. Wang and A. C. Bovik, "Mean squared error: love it or leave it?",
    IEEE Signal Processing Magazine 26(1), 98-117, 2009.
    :doi:`10.1109/MSP.2008.930649`

    Examples
    --------
    >>> import numpy as np
    >>> img = np.random.default_rng(0).random((32, 32)).astype(np.float32)
    >>> m = MSE()
    >>> f = m.extract(img, np.ones(img.shape, bool))
    >>> m.compare(f, f)
    1.0
    """

    name: ClassVar[str] = "mse"
    version: ClassVar[str] = "1"

    scale: float = 0.02

    def __post_init__(self) -> None:
        if not self.scale > 0:
            raise ValueError(f"scale must be positive, got {self.scale}")

    def extract(self, image: np.ndarray, mask: np.ndarray) -> PixelFeatures:
        return PixelFeatures(np.asarray(image, np.float32), np.asarray(mask, bool))

    def raw(self, a: PixelFeatures, b: PixelFeatures) -> float | None:
        """The mean squared error over pixels valid in both, or None if there are none."""
        valid = a.mask & b.mask
        if not valid.any():
            return None
        diff = a.gray[valid].astype(np.float64) - b.gray[valid]
        return float(np.mean(diff * diff))

    def compare(self, a: PixelFeatures, b: PixelFeatures) -> float:
        mse = self.raw(a, b)
        return 0.0 if mse is None else float(np.exp(-mse / self.scale))
