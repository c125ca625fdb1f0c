"""Perceptual hashes from OpenCV's img_hash (contrib), compared by Hamming distance."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import cv2
import numpy as np

from .base import Metric

__all__ = ["PHash", "AverageHash", "BlockMeanHash", "MarrHildrethHash"]


def _valid_crop(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The bounding box of the valid pixels, as uint8 (img_hash takes 8-bit images)."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size and cols.size:
        image = image[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


@dataclass(frozen=True)
class _BitHash(Metric):
    """A binary perceptual hash; similarity ``1 - hamming / bits``.

    Raw score: the Hamming distance between the two hashes. Transform:
    ``1 - distance / bits``, in [0, 1], exactly 1.0 for identical hashes (so
    for identical inputs), symmetric, decreasing in the distance. The hash is
    taken on the bounding box of the image's valid pixels, so padding and
    alignment borders do not enter it.
    """

    saturates: ClassVar[bool] = True
    vector_features: ClassVar[bool] = True

    def _hasher(self) -> Any:
        raise NotImplementedError

    def extract(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        digest = self._hasher().compute(_valid_crop(image, mask))
        return np.unpackbits(np.asarray(digest, np.uint8).ravel())

    def compare(self, a: np.ndarray, b: np.ndarray) -> float:
        return 1.0 - float(np.count_nonzero(a != b)) / max(1, a.size)


@dataclass(frozen=True)
class PHash(_BitHash):
    """pHash: signs of the low-frequency DCT of the image (64 bits).

    References
    ----------
    C. Zauner, "Implementation and benchmarking of perceptual image hash
    functions", MSc thesis, Upper Austria University of Applied Sciences, 2010.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.random.default_rng(0).random((64, 64)).astype(np.float32)
    >>> m = PHash()
    >>> m.compare(m.extract(img, img > -1), m.extract(img, img > -1))
    1.0
    """

    name: ClassVar[str] = "phash"

    def _hasher(self) -> Any:
        return cv2.img_hash.PHash.create()


@dataclass(frozen=True)
class AverageHash(_BitHash):
    """aHash: an 8 x 8 thumbnail thresholded at its mean (64 bits). (Zauner 2010.)"""

    name: ClassVar[str] = "ahash"

    def _hasher(self) -> Any:
        return cv2.img_hash.AverageHash.create()


@dataclass(frozen=True)
class BlockMeanHash(_BitHash):
    """Block-mean hash: 16 x 16 block means thresholded at their median (256 bits).

    References
    ----------
    B. Yang, F. Gu and X. Niu, "Block mean value based image perceptual
    hashing", IIH-MSP 2006. :doi:`10.1109/IIH-MSP.2006.265125`
    """

    name: ClassVar[str] = "blockhash"

    def _hasher(self) -> Any:
        return cv2.img_hash.BlockMeanHash.create()


@dataclass(frozen=True)
class MarrHildrethHash(_BitHash):
    """Marr-Hildreth hash: signs of the Laplacian-of-Gaussian response (576 bits). (Zauner 2010.)"""

    name: ClassVar[str] = "mhhash"

    def _hasher(self) -> Any:
        return cv2.img_hash.MarrHildrethHash.create()
