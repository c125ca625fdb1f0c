"""Grayscale work images: one square canvas size, aspect ratio kept, with masks.

Metrics compare work images, not the decoded originals. Each image is scaled
to fit inside a ``size x size`` canvas with its aspect ratio kept and centred;
the padding is marked invalid in a boolean mask so that pixel metrics compare
only pixels that are valid in both images.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from .errors import ConfigError
from .spill import PixelSpill, Spilled, unspilled

__all__ = [
    "WorkImage",
    "SpilledWorkImage",
    "AlignedSet",
    "rgb_to_gray",
    "scale_to_fit",
    "pad_to_canvas",
    "fit_to_canvas",
    "work_image_from_rgb",
    "make_work_image",
    "on_pixels",
]

# ITU-R BT.709 luma weights, in R, G, B order (the internal format is RGB).
_LUMA = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)


@dataclass(frozen=True, eq=False)
class WorkImage:
    """A grayscale work image.

    Attributes
    ----------
    id : str
        The id of the :class:`ImageRecord` it was made from.
    gray : (S, S) ndarray of float32
        Lightness in [0, 1].
    mask : (S, S) ndarray of bool
        True where ``gray`` holds image content (not padding or a filled border).
    transform : (3, 3) ndarray of float64
        Homogeneous transform from the fitted canvas to the aligned canvas,
        acting on (row, col, 1) coordinates; identity when not aligned.
    """

    id: str
    gray: np.ndarray
    mask: np.ndarray
    transform: np.ndarray

    def with_transform(self, transform: np.ndarray) -> WorkImage:
        """The same pixels with another ``transform`` (pixels kept where they lie)."""
        return dataclasses.replace(self, transform=transform)


class SpilledWorkImage(WorkImage):
    """A :class:`WorkImage` whose ``gray`` and ``mask`` lie in a
    :class:`~preprocessing.spill.PixelSpill` and are read from it on each use (fresh
    read-only arrays). Sent to a worker process, it carries where they lie.

    ``gray`` and ``mask`` may also be given as arrays (``dataclasses.replace`` does so),
    which are then held like a :class:`WorkImage`'s.
    """

    _gray: np.ndarray | Spilled
    _mask: np.ndarray | Spilled

    def __init__(
        self,
        id: str,  # noqa: A002
        gray: np.ndarray | Spilled,
        mask: np.ndarray | Spilled,
        transform: np.ndarray,
    ) -> None:
        object.__setattr__(self, "id", id)
        object.__setattr__(self, "_gray", gray)
        object.__setattr__(self, "_mask", mask)
        object.__setattr__(self, "transform", transform)

    @property  # type: ignore[override]
    def gray(self) -> np.ndarray:
        return unspilled(self._gray)

    @property  # type: ignore[override]
    def mask(self) -> np.ndarray:
        return unspilled(self._mask)

    @property
    def spilled_to(self) -> PixelSpill | None:
        """The spill its pixels lie in (None when they are held as arrays)."""
        return self._gray.owner if isinstance(self._gray, Spilled) else None

    def with_transform(self, transform: np.ndarray) -> SpilledWorkImage:
        return SpilledWorkImage(self.id, self._gray, self._mask, transform)

    @classmethod
    def spill(cls, image: WorkImage, spill: PixelSpill) -> SpilledWorkImage:
        """``image`` with its pixels and mask written to ``spill``."""
        return cls(image.id, spill.put(image.gray), spill.put(image.mask), image.transform)


@dataclass(frozen=True, eq=False)
class AlignedSet:
    """The work images of an analysis, all of shape ``(size, size)``.

    Attributes
    ----------
    images : tuple of WorkImage
    size : int
    method : str
        The alignment method (``none`` when not aligned).
    reference : str
        ``mean``, ``first``, ``previous`` or the id of the reference image.
    mean_before, mean_after : (size, size) ndarray or None
        Mean image before and after alignment (over valid pixels).
    quality : tuple of AlignQuality
        Per image, in order (empty when not aligned).
    rounds : int
        Rounds of the iterated mean reference.
    warnings : tuple of str
    """

    images: tuple[WorkImage, ...]
    size: int
    method: str = "none"
    reference: str = ""
    mean_before: np.ndarray | None = None
    mean_after: np.ndarray | None = None
    quality: tuple[Any, ...] = ()
    rounds: int = 0
    warnings: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.images)

    @functools.cached_property
    def ids(self) -> tuple[str, ...]:
        """The images' ids, in order (made once: figures read it inside loops)."""
        return tuple(im.id for im in self.images)

    def mean_image(self) -> np.ndarray:
        """Per-pixel mean over the images valid there (0 where none is)."""
        total = np.zeros((self.size, self.size), dtype=np.float64)
        count = np.zeros((self.size, self.size), dtype=np.float64)
        for im in self.images:
            total += np.where(im.mask, im.gray, 0.0)
            count += im.mask
        return np.divide(total, count, out=np.zeros_like(total), where=count > 0).astype(np.float32)


def rgb_to_gray(image: np.ndarray) -> np.ndarray:
    """Luma of an RGB image with the BT.709 weights.

    Parameters
    ----------
    image : (M, N, 3) ndarray
        RGB in [0, 1], channels in R, G, B order.

    Returns
    -------
    (M, N) ndarray of float32
    """
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an (M, N, 3) RGB image, got shape {image.shape}")
    return np.clip(image.astype(np.float32) @ _LUMA, 0.0, 1.0)


def scale_to_fit(image: np.ndarray, size: int) -> np.ndarray:
    """Scale an image so its longer side is ``size`` pixels, keeping its aspect ratio.

    Parameters
    ----------
    image : (M, N) or (M, N, 3) ndarray
    size : int

    Returns
    -------
    ndarray of float32, values clipped to [0, 1]
    """
    if size < 2:
        raise ConfigError(f"canvas size must be at least 2, got {size}")
    rows, cols = image.shape[:2]
    scale = size / max(rows, cols)
    new_rows = min(size, max(1, round(rows * scale)))
    new_cols = min(size, max(1, round(cols * scale)))
    if (new_rows, new_cols) == (rows, cols):  # already at size (images are decoded to it)
        if image.dtype == np.float32 and image.size and 0.0 <= image.min() and image.max() <= 1.0:
            # decoded pixels are float32 in [0, 1] already: a read-only view, not a copy
            # of every image held beside the originals while the set is prepared
            view = image.view()
            view.flags.writeable = False
            return view
        return np.clip(image.astype(np.float32), 0.0, 1.0)
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    scaled = cv2.resize(image.astype(np.float32), (new_cols, new_rows), interpolation=interp)
    return np.clip(scaled, 0.0, 1.0)


def pad_to_canvas(gray: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Centre a grayscale image that fits in ``size x size`` on a canvas of that size.

    Returns
    -------
    canvas : (size, size) ndarray of float32
        The image, padding filled with the image's mean value.
    mask : (size, size) ndarray of bool
        True on the image, False on the padding.
    """
    rows, cols = gray.shape
    if rows > size or cols > size:
        raise ValueError(f"image of shape {gray.shape} does not fit a {size} x {size} canvas")
    canvas = np.full((size, size), float(gray.mean()), dtype=np.float32)
    mask = np.zeros((size, size), dtype=bool)
    top, left = (size - rows) // 2, (size - cols) // 2
    canvas[top : top + rows, left : left + cols] = gray
    mask[top : top + rows, left : left + cols] = True
    return canvas, mask


def fit_to_canvas(gray: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Scale ``gray`` to fit a ``size x size`` canvas, keep its aspect, centre it.

    Parameters
    ----------
    gray : (M, N) ndarray
    size : int
        Canvas side in pixels.

    Returns
    -------
    canvas : (size, size) ndarray of float32
        The scaled image, padding filled with the image's mean value.
    mask : (size, size) ndarray of bool
        True on the image, False on the padding.
    """
    return pad_to_canvas(scale_to_fit(gray, size), size)


def work_image_from_rgb(image_id: str, rgb: np.ndarray, size: int) -> WorkImage:
    """An unaligned :class:`WorkImage` from RGB pixels that already fit the canvas."""
    canvas, mask = pad_to_canvas(rgb_to_gray(rgb), size)
    return WorkImage(image_id, canvas, mask, np.eye(3))


def make_work_image(image_id: str, pixels: np.ndarray, size: int) -> WorkImage:
    """Turn decoded RGB pixels into an unaligned :class:`WorkImage`."""
    return work_image_from_rgb(image_id, scale_to_fit(pixels, size), size)


def on_pixels(fn: Callable[[np.ndarray, np.ndarray], Any], image: WorkImage) -> Any:
    """``fn(image.gray, image.mask)``. Mapped over images on a pool (with
    ``functools.partial``), each worker reads the pixels itself: a
    :class:`SpilledWorkImage` is sent as where its pixels lie, not as the pixels."""
    return fn(image.gray, image.mask)
