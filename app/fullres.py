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
from matplotlib import colormaps

from preprocessing import ImageRecord
from preprocessing.align import map_points
from preprocessing.errors import ConfigError
from preprocessing.keypoints import detect_rootsift, mutual_matches
from preprocessing.work import WorkImage, rgb_to_gray
from similarity.contour import Contour, find_outlines

__all__ = [
    "RegisteredPair",
    "register_originals",
    "overlay",
    "jpeg",
    "OutlineViews",
    "outline_views",
    "MatchView",
    "match_view",
    "evidence_jpegs",
]


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
        True when a pair transform (``by``) carried A onto B; False when only
        the analysis' alignment to the reference relates them.
    by : str
        Whose transform it was (e.g. "SIFT's verified transform").
    """

    a: np.ndarray
    b: np.ndarray
    b_on_a: np.ndarray
    valid: np.ndarray
    scale_a: float
    registered: bool
    by: str = "SIFT's verified transform"


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
    by: str = "SIFT's verified transform",
) -> RegisteredPair:
    """B's original registered onto A's original, both at most ``max_side`` px.

    Parameters
    ----------
    record_a, record_b : ImageRecord
        The decoded originals.
    work_a, work_b : WorkImage
        Their aligned work images (the analysis' own).
    transform : (3, 3) ndarray or None
        A pair transform from A's work positions to B's ``(col, row)``
        (``PairEvidence.transform`` of SIFT or of the contour test;
        ``app.evidence.registration`` chooses); None when there is none: the
        analysis' alignment to the reference then relates the pair.
    max_side : int
        The longer side of the views, in pixels (the originals are never
        enlarged).
    by : str
        Whose transform ``transform`` is, said by the views.

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
    bx, b_row = map_points(np.asarray(work_b.transform, np.float64), cx, cy)
    ox = ((bx - ox_b + 0.5) / sxb - 0.5 + 0.5) * fb - 0.5
    oy = ((b_row - oy_b + 0.5) / syb - 0.5 + 0.5) * fb - 0.5
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
        by=by if transform is not None else "",
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


def _faded(gray: np.ndarray, keep: float = 0.3) -> np.ndarray:
    """A grey picture faded towards white, as RGB (the backdrop of drawn evidence)."""
    return np.repeat((1.0 - keep * (1.0 - gray))[..., None], 3, axis=2).astype(np.float32)


def _thick(mask: np.ndarray, radius: int) -> np.ndarray:
    """``mask`` dilated by ``radius`` px: a 1 px outline of a 2048 px view vanishes when
    the view is fitted to a screen."""
    if radius < 1:
        return mask
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    return cv2.dilate(mask.astype(np.uint8), disk).astype(bool)


@dataclass(frozen=True, eq=False)
class OutlineViews:
    """The contour (tracing) test drawn at the view's resolution.

    Attributes
    ----------
    outlines : (M, N, 3) ndarray of float32
        A's outlines magenta, B's (registered) green, where both: black; over A faded.
    deviation : (M, N, 3) ndarray of float32
        B's outlines coloured by their distance to A's nearest outline (plasma:
        dark at 0, yellow at ``top_px`` and beyond), over A faded.
    median_px : float
        The median of those distances, in pixels of A's original (nan: no outline).
    top_px : float
        The distance (pixels of A's original) at the top of the colour scale.
    sigma_px : float
        The blur at which the outlines were found, in pixels of the view: the
        contour test's ``sigma`` carried from the work image to the view.
    """

    outlines: np.ndarray
    deviation: np.ndarray
    median_px: float
    top_px: float
    sigma_px: float


def outline_views(pair: RegisteredPair, metric: Contour, work_side: int) -> OutlineViews:
    """The outlines of A and of B registered onto A, found as the contour test finds
    them (:func:`similarity.contour.find_outlines`, its blur, threshold and minimum
    length carried from the ``work_side`` px work image to the view), compared where
    B covers A."""
    ga, gb = rgb_to_gray(pair.a), rgb_to_gray(pair.b_on_a)
    ratio = max(ga.shape) / float(work_side)
    sigma = metric.sigma * ratio
    min_length = max(1, round(metric.min_length * ratio))
    inner = cv2.erode(pair.valid.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    everywhere = np.ones(ga.shape, bool)
    ea, _, _ = find_outlines(ga, everywhere, inner, sigma, metric.edge_percentile, min_length)
    eb, _, _ = find_outlines(gb, pair.valid, inner, sigma, metric.edge_percentile, min_length)
    radius = max(1, round(max(ga.shape) / 900))
    ta, tb = _thick(ea, radius), _thick(eb, radius)
    drawn = _faded(ga)
    drawn[ta] = (0.82, 0.11, 0.55)
    drawn[tb] = (0.10, 0.59, 0.25)
    drawn[ta & tb] = (0.0, 0.0, 0.0)
    # B's outline pixels: distance to A's nearest outline, in pixels of A's original
    free = np.where(ea, 0, 1).astype(np.uint8)
    dist = cv2.distanceTransform(free, cv2.DIST_L2, cv2.DIST_MASK_PRECISE) * pair.scale_a
    tol = metric.tolerance * work_side * ratio * pair.scale_a
    top = max(2.0 * tol, 4.0)
    median = float(np.median(dist[eb])) if eb.any() and ea.any() else float("nan")
    colours = colormaps["plasma"](np.clip(dist / top, 0.0, 1.0))[..., :3].astype(np.float32)
    if not ea.any():
        colours[:] = colormaps["plasma"](1.0)[:3]
    dev = _faded(ga, keep=0.2)
    # each thickened pixel takes the colour of the B outline pixel under it (nearest)
    near = cv2.distanceTransformWithLabels(
        np.where(eb, 0, 1).astype(np.uint8), cv2.DIST_L2, 3, labelType=cv2.DIST_LABEL_PIXEL
    )[1]
    rows, cols = np.nonzero(eb)
    if rows.size:
        lookup = np.zeros((int(near.max()) + 1, 3), np.float32)
        lookup[near[rows, cols]] = colours[rows, cols]
        dev[tb] = lookup[near[tb]]
    return OutlineViews(drawn, dev, median, top, sigma)


@dataclass(frozen=True, eq=False)
class MatchView:
    """SIFT keypoints of A found again in B at the view's resolution.

    Attributes
    ----------
    a, b : (M, N, 3) ndarray of float32
        A and B registered onto A, each with the agreeing keypoints circled
        (green) and the others matched elsewhere marked (orange crosses).
    agreeing, matched : int
        Mutual ratio-test matches whose positions agree within ``tolerance_px``
        after the registration, and all mutual matches.
    tolerance_px : float
        In pixels of the view.
    """

    a: np.ndarray
    b: np.ndarray
    agreeing: int
    matched: int
    tolerance_px: float


def match_view(
    pair: RegisteredPair, *, max_keypoints: int = 4000, tolerance: float = 0.004
) -> MatchView:
    """SIFT (RootSIFT, mutual ratio test) on A and on B registered onto A: a match is
    verified when both ends lie within ``tolerance`` x the view's longer side of each
    other, since the registration already carried B's points onto A's."""
    ga, gb = rgb_to_gray(pair.a), rgb_to_gray(pair.b_on_a)
    ka = detect_rootsift(ga, np.ones(ga.shape, bool), max_keypoints=max_keypoints, border=3)
    kb = detect_rootsift(gb, pair.valid, max_keypoints=max_keypoints, border=3)
    pairs = mutual_matches(ka, kb, ratio=0.8)
    tol = max(2.0, tolerance * max(ga.shape))
    pa, pb = ka.points[pairs[:, 0]], kb.points[pairs[:, 1]]
    agree = np.hypot(*(pa - pb).T) <= tol if len(pairs) else np.zeros(0, bool)
    radius = max(3, round(max(ga.shape) / 250))
    thick = max(1, radius // 3)
    views = []
    for gray, pts in ((ga, pa), (gb, pb)):
        u8 = np.ascontiguousarray((_faded(gray, keep=0.6) * 255).astype(np.uint8))
        for (x, y), ok in zip(pts, agree, strict=True):
            centre = (round(float(x)), round(float(y)))
            if ok:
                cv2.circle(u8, centre, radius, (26, 150, 65), thick, cv2.LINE_AA)
            else:
                cv2.drawMarker(u8, centre, (230, 120, 0), cv2.MARKER_TILTED_CROSS, radius, thick)
        views.append(u8.astype(np.float32) / 255.0)
    return MatchView(views[0], views[1], int(agree.sum()), int(len(pairs)), float(tol))


def evidence_jpegs(pair: RegisteredPair, metric: Contour, work_side: int) -> dict[str, bytes]:
    """Every full-resolution view of a pair as JPEG files of one frame and size (flip
    between them in any viewer): ``a``, ``b_on_a``, ``overlay``, ``outlines``,
    ``deviation``, ``matches_a``, ``matches_b`` (each name + ``.jpg``)."""
    lines = outline_views(pair, metric, work_side)
    found = match_view(pair)
    views = {
        "a": pair.a,
        "b_on_a": pair.b_on_a,
        "overlay": overlay(pair),
        "outlines": lines.outlines,
        "deviation": lines.deviation,
        "matches_a": found.a,
        "matches_b": found.b,
    }
    return {f"{name}.jpg": jpeg(rgb, quality=92) for name, rgb in views.items()}
