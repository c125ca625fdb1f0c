"""The pair-evidence figures: why two images are (or are not) alike. Composed in pixels
(:mod:`._pixels`): through matplotlib the two figures of a pair took about 1 s, most of it
laying out text and resampling images; a report draws them for six pairs."""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image, ImageDraw

from similarity import PairEvidence

from ._base import _font
from ._pixels import colour_bar, coloured, dots, fit, gray_rgb, panel, titled

__all__ = ["contour_evidence_figure", "pair_evidence_figure"]

#: Rows of the pair figure's panels and of the contour figure's, in pixels.
PAIR_PANEL = 300
CONTOUR_PANEL = 480

_MAGENTA = (208, 28, 139)
_GREEN = (26, 150, 65)


def _side_by_side(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, int]:
    rows = max(a.shape[0], b.shape[0])
    canvas = np.ones((rows, a.shape[1] + 8 + b.shape[1]), np.float32)
    canvas[: a.shape[0], : a.shape[1]] = a
    canvas[: b.shape[0], a.shape[1] + 8 :] = b
    return canvas, a.shape[1] + 8


def _match_lines(
    canvas: np.ndarray, kp_a: np.ndarray, kp_b: np.ndarray, pairs: np.ndarray,
    inliers: np.ndarray, offset: int, scale: float,
) -> None:  # fmt: skip
    """Each match as a line from A's keypoint to B's (``offset`` columns right), drawn on
    ``canvas`` (RGB uint8, ``scale`` of the work images) in place: rejected ones red at
    half strength, RANSAC's inliers green over them."""
    ends = np.concatenate([kp_a[pairs[:, 0]], kp_b[pairs[:, 1]] + [offset, 0]], axis=1)
    ends = np.rint(ends * scale * 16).astype(np.int64)  # 4 bits of sub-pixel position
    rejected = canvas.copy()
    for x0, y0, x1, y1 in ends[~inliers].tolist():
        cv2.line(rejected, (x0, y0), (x1, y1), (255, 0, 0), 1, cv2.LINE_AA, 4)
    cv2.addWeighted(rejected, 0.5, canvas, 0.5, 0.0, dst=canvas)
    for x0, y0, x1, y1 in ends[inliers].tolist():
        cv2.line(canvas, (x0, y0), (x1, y1), (0, 230, 0), 1, cv2.LINE_AA, 4)


def _matches_panel(base: PairEvidence, matches: PairEvidence | None) -> Image.Image:
    pair, offset = _side_by_side(base.image_a, base.image_b)
    scale = PAIR_PANEL / pair.shape[0]
    canvas = np.ascontiguousarray(fit(gray_rgb(pair), PAIR_PANEL))
    pairs = matches.matches if matches is not None else None
    if matches is None or matches.keypoints_a is None or matches.keypoints_b is None:
        pairs = None
    if pairs is None or not len(pairs):
        return panel(canvas, "the two work images")
    assert matches is not None and matches.keypoints_a is not None
    assert matches.keypoints_b is not None
    pairs = np.asarray(pairs, int)
    flags = matches.inliers if matches.inliers is not None else np.zeros(len(pairs), bool)
    inl = np.asarray(flags, bool)
    _match_lines(canvas, matches.keypoints_a, matches.keypoints_b, pairs, inl, offset, scale)
    title = (
        f"SIFT: {int(inl.sum())} RANSAC inliers (green) of "
        f"{len(pairs)} mutual matches (red: rejected)"
    )
    return panel(canvas, title)


def pair_evidence_figure(
    name_a: str,
    name_b: str,
    matches: PairEvidence | None,
    local: PairEvidence | None,
    scores: dict[str, float],
) -> Image.Image:
    """Matches and inliers drawn, the local similarity map, an overlay and the difference;
    an RGB image whose ``info["title"]`` holds its title (:func:`~app.plots.image_png`
    encodes it).

    Parameters
    ----------
    name_a, name_b : str
        The two images' ids.
    matches : PairEvidence, optional
        SIFT evidence: keypoints, mutual matches, RANSAC inliers and transform.
    local : PairEvidence, optional
        Evidence with a local map (CW-SSIM or SSIM).
    scores : dict
        Every metric's similarity of the pair, printed in the title.
    """
    base = matches or local
    if base is None:
        raise ValueError("no evidence to draw")
    parts = [_matches_panel(base, matches)]
    if local is not None and local.local_map is not None:
        shown = cv2.resize(
            local.local_map.astype(np.float32),
            base.image_a.shape[::-1],
            interpolation=cv2.INTER_LINEAR,
        )
        rgb = fit(coloured(shown, "magma"), PAIR_PANEL)
        bar = colour_bar(PAIR_PANEL, "magma", "similarity")
        parts.append(panel(rgb, f"local {local.metric} (bright = alike)", bar=bar))
    overlay = np.zeros((*base.image_a.shape, 3), np.float32)
    overlay[..., 0] = base.image_a
    overlay[..., 1] = np.where(base.valid, base.b_on_a, 0)
    overlay[..., 2] = base.image_a * 0.5
    overlay_rgb = (np.clip(overlay, 0, 1) * 255 + 0.5).astype(np.uint8)
    brought = "B moved onto A by\nSIFT's transform" if base.transform is not None else "B as is"
    parts.append(panel(fit(overlay_rgb, PAIR_PANEL), f"overlay: A magenta, B green\n({brought})"))
    top = max(0.05, float(base.difference.max()))
    difference = fit(coloured(base.difference, "inferno", 0.0, top), PAIR_PANEL)
    parts.append(panel(difference, "|A - B|\non pixels valid in both"))
    text = ", ".join(f"{k} {v:.3f}" for k, v in scores.items())
    return titled(parts, f"A = {name_a}   B = {name_b}\n{text}")


def _legend(canvas: Image.Image, entries: list[tuple[str, tuple[int, int, int]]]) -> None:
    """A legend box (a dot and a name per entry) in the lower right corner of ``canvas``."""
    font = _font(10)
    width = max(round(font.getlength(name)) for name, _ in entries) + 30
    height = 16 * len(entries) + 8
    x0, y0 = canvas.width - width - 6, canvas.height - height - 6
    draw = ImageDraw.Draw(canvas)
    draw.rectangle((x0, y0, x0 + width, y0 + height), fill="white", outline=(190, 190, 190))
    for k, (name, colour) in enumerate(entries):
        y = y0 + 12 + 16 * k
        draw.ellipse((x0 + 7, y - 5, x0 + 17, y + 5), fill=colour)
        draw.text((x0 + 24, y), name, font=font, fill="black", anchor="lm")


def _ticks(top: float) -> list[float]:
    """Whole-pixel ticks from 0 to ``top``, at most seven."""
    step = max(1, int(np.ceil(top / 6)))
    return [float(t) for t in range(0, int(top) + 1, step)]


def contour_evidence_figure(
    name_a: str,
    name_b: str,
    contour: PairEvidence,
    *,
    pixel_scale: float = 1.0,
    tolerance_px: float | None = None,
    backdrop: bool = True,
    score: float | None = None,
) -> Image.Image:
    """The tracing-paper view: both outlines on A after alignment, and where B's depart;
    an RGB image whose ``info["title"]`` holds its title.

    Parameters
    ----------
    name_a, name_b : str
    contour : PairEvidence
        The contour metric's evidence (``contours_a``, ``contours_b``, ``deviation``).
    pixel_scale : float
        Pixels of A's original per work-image pixel: deviations are shown in
        the original's pixels.
    tolerance_px : float, optional
        The metric's tolerance in work-image pixels (marked on the colour bar).
    backdrop : bool
        Draw A, faded, under the outlines (False: the outlines alone).
    score : float, optional
        The pair's contour similarity as the analysis' matrix holds it (else the
        evidence's own).
    """
    if contour.contours_a is None or contour.contours_b is None or contour.deviation is None:
        raise ValueError("not a contour evidence")
    a = contour.image_a
    rows, cols = a.shape
    scale = CONTOUR_PANEL / rows
    under = gray_rgb(1.0 - 0.3 * (1.0 - a)) if backdrop else np.full((rows, cols, 3), 255, np.uint8)
    under = fit(under, CONTOUR_PANEL)
    ca, cb = contour.contours_a, contour.contours_b
    inside = (cb[:, 0] >= 0) & (cb[:, 0] < cols) & (cb[:, 1] >= 0) & (cb[:, 1] < rows)
    outlines = under.copy()
    dots(outlines, (ca + 0.5) * scale - 0.5, _MAGENTA)
    dots(outlines, (cb[inside] + 0.5) * scale - 0.5, _GREEN, alpha=0.8)
    left = Image.fromarray(outlines)
    _legend(left, [(f"A: {name_a}", _MAGENTA), (f"B: {name_b}", _GREEN)])
    how = "B's mirror image" if contour.mirrored else "B"
    moved = "aligned onto A" if contour.aligned else "as placed (no transform found)"
    found = f"; found at blur {contour.sigma:g} px" if contour.sigma else ""
    parts = [panel(left, f"outlines: A magenta, {how} green, {moved}{found}")]
    dev = contour.deviation * pixel_scale
    shown = np.isfinite(dev) & inside
    # one scale for every pair: twice the tolerance (at least 4 px of the original) at the top
    tol = (tolerance_px if tolerance_px is not None else 2.0) * pixel_scale
    top = max(2.0 * tol, 4.0)
    departs = under.copy()
    colours = coloured(np.minimum(dev[shown], top), "plasma", 0.0, top)
    dots(departs, (cb[shown] + 0.5) * scale - 0.5, colours, radius=1.2)
    label = "distance to A's nearest outline (pixels of A's original)"
    marks = [tol] if tolerance_px is not None else []
    bar = colour_bar(CONTOUR_PANEL, "plasma", label, vmax=top, ticks=_ticks(top), marks=marks)
    med = float(np.median(dev[shown])) if shown.any() else float("nan")
    title = (
        f"where B's outlines depart from A's (median {med:.1f} px; white mark: tolerance; "
        f"capped at {top:.0f} px)"
    )
    parts.append(panel(departs, title, bar=bar))
    similarity = contour.similarity if score is None else score
    return titled(
        parts, f"contour (tracing) test   A = {name_a}   B = {name_b}   similarity {similarity:.3f}"
    )
