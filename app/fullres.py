"""Evidence at the originals' resolution: B registered onto A, up to a chosen size.

The similarity engine works on small work images (256 px by default) for speed;
an art historian judges contours and drapery on the originals. This module
maps a pair's registration, found on the work images, back to the originals:
each original was scaled to fit the work canvas and centred on it
(``preprocessing.work``), then aligned to the reference (``WorkImage.transform``),
and SIFT's verified transform carries A's aligned work image onto B's. The
composition of those maps takes every pixel of A's original (shown at most
``max_side`` pixels on its longer side) to the place in B's original that
shows the same point, and B is sampled there: B registered onto A at the
originals' resolution.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from preprocessing import ImageRecord
from preprocessing.align import map_points
from preprocessing.errors import ConfigError
from preprocessing.work import WorkImage, rgb_to_gray

__all__ = ["RegisteredPair", "register_originals", "overlay", "jpeg"]


@dataclass(frozen=True, eq=False)
class RegisteredPair:
    """A and B at (up to) full resolution, B carried onto A's frame.

    Attributes
    ----------
    a : (M, N, 3) ndarray of float32
        A's original, reduced to at most ``max_side`` pixels on its longer side.
    b : (M', N', 3) ndarray of float32
        B's original, reduced the same way (for side-by-side views).
    b_on_a : (M, N, 3) ndarray of float32
        B sampled at the points of A's frame (0 where B does not reach).
    valid : (M, N) ndarray of bool
        Pixels of A's frame that B covers.
    scale_a : float
        Pixels of A's original per pixel of ``a`` (1.0 when not reduced).
    registered : bool
        True when SIFT's verified transform carried A onto B; False when
        only the analysis' alignment to the reference relates them.
    """

    a: np.ndarray
    b: np.ndarray
    b_on_a: np.ndarray
    valid: np.ndarray
    scale_a: float
    registered: bool


def _reduced(pixels: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    rows, cols = pixels.shape[:2]
    factor = min(1.0, max_side / max(rows, cols))
    if factor >= 1.0:
        return np.asarray(pixels, np.float32), 1.0
    size = (max(1, round(cols * factor)), max(1, round(rows * factor)))
    out = cv2.resize(np.asarray(pixels, np.float32), size, interpolation=cv2.INTER_AREA)
    return out, factor


def _fit_geometry(rows: int, cols: int, size: int) -> tuple[float, float, float, float]:
    """Per-axis scale and offset of ``preprocessing.work.fit_to_canvas``: original
    (col, row) -> fitted canvas (col, row), pixel centres mapped as cv2.resize does."""
    scale = size / max(rows, cols)
    new_rows = min(size, max(1, round(rows * scale)))
    new_cols = min(size, max(1, round(cols * scale)))
    top, left = (size - new_rows) // 2, (size - new_cols) // 2
    return new_cols / cols, new_rows / rows, float(left), float(top)


def _inverse_alignment(tmat: np.ndarray, size: int) -> np.ndarray:
    """A 3 x 3 map from a fitted canvas to its aligned canvas (the alignment's inverse).
    The bilinear model (4 x 4) has no closed inverse: a homography fitted to a grid of
    its points stands in for it."""
    if tmat.shape == (3, 3):
        return np.linalg.inv(tmat)
    grid = np.linspace(0, size - 1, 17)
    cols, rows = (g.ravel() for g in np.meshgrid(grid, grid))
    fx, fy = map_points(tmat, cols, rows)
    src = np.column_stack([fx, fy]).astype(np.float32)
    dst = np.column_stack([cols, rows]).astype(np.float32)
    hom, _ = cv2.findHomography(src, dst, 0)
    return hom if hom is not None else np.eye(3)


def register_originals(
    record_a: ImageRecord,
    record_b: ImageRecord,
    work_a: WorkImage,
    work_b: WorkImage,
    transform: np.ndarray | None,
    *,
    max_side: int = 2048,
) -> RegisteredPair:
    """B's original registered onto A's original, both at most ``max_side`` px.

    Parameters
    ----------
    record_a, record_b : ImageRecord
        The decoded originals.
    work_a, work_b : WorkImage
        Their aligned work images (the analysis' own).
    transform : (3, 3) ndarray or None
        SIFT's verified transform from A's work positions to B's ``(col, row)``
        (``PairEvidence.transform``); None when SIFT found none: the analysis'
        alignment to the reference then relates the pair.
    max_side : int
        The longer side of the views, in pixels (the originals are never
        enlarged).

    Returns
    -------
    RegisteredPair
    """
    if not 64 <= max_side <= 16384:
        raise ConfigError(f"the evidence size must be in [64, 16384] px, got {max_side}")
    size = work_a.gray.shape[0]
    a, fa = _reduced(record_a.pixels, max_side)
    b, fb = _reduced(record_b.pixels, max_side)
    rows_a, cols_a = record_a.pixels.shape[:2]
    rows_b, cols_b = record_b.pixels.shape[:2]
    sxa, sya, ox_a, oy_a = _fit_geometry(rows_a, cols_a, size)
    sxb, syb, ox_b, oy_b = _fit_geometry(rows_b, cols_b, size)
    # every pixel of the view of A, as a position in A's original
    out_rows, out_cols = a.shape[:2]
    gx, gy = np.meshgrid(
        (np.arange(out_cols, dtype=np.float64) + 0.5) / fa - 0.5,
        (np.arange(out_rows, dtype=np.float64) + 0.5) / fa - 0.5,
    )
    # -> A's fitted canvas -> A's aligned canvas -> B's aligned canvas (SIFT)
    fx = (gx + 0.5) * sxa - 0.5 + ox_a
    fy = (gy + 0.5) * sya - 0.5 + oy_a
    chain = _inverse_alignment(np.asarray(work_a.transform, np.float64), size)
    if transform is not None:
        chain = np.asarray(transform, np.float64) @ chain
    cx, cy = map_points(chain, fx.ravel(), fy.ravel())
    # -> B's fitted canvas (its own alignment) -> B's original -> the view of B
    bx, by = map_points(np.asarray(work_b.transform, np.float64), cx, cy)
    ox = ((bx - ox_b + 0.5) / sxb - 0.5 + 0.5) * fb - 0.5
    oy = ((by - oy_b + 0.5) / syb - 0.5 + 0.5) * fb - 0.5
    map_x = ox.reshape(out_rows, out_cols).astype(np.float32)
    map_y = oy.reshape(out_rows, out_cols).astype(np.float32)
    b_on_a = cv2.remap(b, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    ones = np.ones(b.shape[:2], np.float32)
    cover = cv2.remap(ones, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    return RegisteredPair(
        a=np.clip(a, 0.0, 1.0),
        b=np.clip(b, 0.0, 1.0),
        b_on_a=np.clip(b_on_a, 0.0, 1.0),
        valid=cover >= 0.99,
        scale_a=1.0 / fa,
        registered=transform is not None,
    )


def overlay(pair: RegisteredPair) -> np.ndarray:
    """A and B registered in one picture: what is dark in A shows magenta, what is dark
    in B green, what is dark in both grey to black (RGB float32 in [0, 1])."""
    ga = rgb_to_gray(pair.a)
    gb = np.where(pair.valid, rgb_to_gray(pair.b_on_a), ga)
    return np.stack([gb, ga, gb], axis=-1)


def jpeg(rgb: np.ndarray, quality: int = 90) -> bytes:
    """RGB float in [0, 1] as JPEG bytes."""
    u8 = (np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", u8[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:  # pragma: no cover - OpenCV encodes any uint8 RGB image
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes()
