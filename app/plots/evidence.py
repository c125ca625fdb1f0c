"""The pair-evidence figure: why two images are (or are not) alike."""

from __future__ import annotations

import cv2
import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from similarity import PairEvidence

__all__ = ["contour_evidence_figure", "pair_evidence_figure"]


def _side_by_side(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, int]:
    rows = max(a.shape[0], b.shape[0])
    canvas = np.ones((rows, a.shape[1] + 8 + b.shape[1]), np.float32)
    canvas[: a.shape[0], : a.shape[1]] = a
    canvas[: b.shape[0], a.shape[1] + 8 :] = b
    return canvas, a.shape[1] + 8


def pair_evidence_figure(
    name_a: str,
    name_b: str,
    matches: PairEvidence | None,
    local: PairEvidence | None,
    scores: dict[str, float],
) -> Figure:
    """Matches and inliers drawn, the local similarity map, an overlay and the difference.

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
    fig = Figure(figsize=(15, 4.6))
    axes = fig.subplots(1, 4, gridspec_kw={"width_ratios": [2, 1, 1, 1]})
    pair, offset = _side_by_side(base.image_a, base.image_b)
    axes[0].imshow(pair, cmap="gray", vmin=0, vmax=1)
    kp_a = matches.keypoints_a if matches is not None else None
    kp_b = matches.keypoints_b if matches is not None else None
    pairs = matches.matches if matches is not None else None
    flags = matches.inliers if matches is not None else None
    if kp_a is not None and kp_b is not None and pairs is not None and len(pairs):
        inl = np.asarray(flags if flags is not None else np.zeros(len(pairs), bool), bool)
        pairs = np.asarray(pairs, int)
        ends = np.stack([kp_a[pairs[:, 0]], kp_b[pairs[:, 1]] + [offset, 0]], axis=1)
        # one collection per kind (rejected under inliers), not a line artist a match
        for good, colour, width, alpha in ((False, "red", 0.4, 0.5), (True, "lime", 0.6, 0.9)):
            lines = LineCollection(ends[inl == good], colors=colour, linewidths=width, alpha=alpha)
            axes[0].add_collection(lines)
        axes[0].set_title(
            f"SIFT: {int(inl.sum())} RANSAC inliers (green) of "
            f"{len(pairs)} mutual matches (red: rejected)",
            fontsize=8,
        )
    else:
        axes[0].set_title("the two work images", fontsize=8)
    if local is not None and local.local_map is not None:
        shown = cv2.resize(
            local.local_map.astype(np.float32),
            base.image_a.shape[::-1],
            interpolation=cv2.INTER_LINEAR,
        )
        im = axes[1].imshow(shown, cmap="magma", vmin=0, vmax=1)
        fig.colorbar(im, ax=axes[1], fraction=0.046, pad=0.02)
        axes[1].set_title(f"local {local.metric} (bright = alike)", fontsize=8)
    else:
        axes[1].set_axis_off()
    overlay = np.zeros((*base.image_a.shape, 3), np.float32)
    overlay[..., 0] = base.image_a
    overlay[..., 1] = np.where(base.valid, base.b_on_a, 0)
    overlay[..., 2] = base.image_a * 0.5
    axes[2].imshow(np.clip(overlay, 0, 1))
    brought = "B moved onto A by\nSIFT's transform" if base.transform is not None else "B as is"
    axes[2].set_title(f"overlay: A magenta, B green\n({brought})", fontsize=8)
    axes[3].imshow(
        base.difference, cmap="inferno", vmin=0, vmax=max(0.05, float(base.difference.max()))
    )
    axes[3].set_title("|A - B|\non pixels valid in both", fontsize=8)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    text = ", ".join(f"{k} {v:.3f}" for k, v in scores.items())
    fig.suptitle(f"A = {name_a}   B = {name_b}\n{text}", fontsize=9)
    fig.tight_layout()
    return fig


def contour_evidence_figure(
    name_a: str,
    name_b: str,
    contour: PairEvidence,
    *,
    pixel_scale: float = 1.0,
    tolerance_px: float | None = None,
    backdrop: bool = True,
    score: float | None = None,
) -> Figure:
    """The tracing-paper view: both outlines on A after alignment, and where B's depart.

    Parameters
    ----------
    name_a, name_b : str
    contour : PairEvidence
        The contour metric's evidence (``contours_a``, ``contours_b``, ``deviation``).
    pixel_scale : float
        Pixels of A's original per work-image pixel: deviations are shown in
        the original's pixels.
    tolerance_px : float, optional
        The metric's tolerance in work-image pixels (drawn on the colour bar).
    backdrop : bool
        Draw A, faded, under the outlines (False: the outlines alone).
    """
    # long: the numpydoc docstring makes this function over 80 lines; its code is not
    if contour.contours_a is None or contour.contours_b is None or contour.deviation is None:
        raise ValueError("not a contour evidence")
    fig = Figure(figsize=(12, 5.6))
    axes = fig.subplots(1, 2)
    a = contour.image_a
    rows, cols = a.shape
    for ax in axes:  # A, faded, under the outlines
        ax.imshow(
            1.0 - 0.3 * (1.0 - a) if backdrop else np.ones_like(a), cmap="gray", vmin=0, vmax=1
        )
    ca, cb = contour.contours_a, contour.contours_b
    inside = (cb[:, 0] >= 0) & (cb[:, 0] < cols) & (cb[:, 1] >= 0) & (cb[:, 1] < rows)
    axes[0].scatter(ca[:, 0], ca[:, 1], s=2.5, c="#d01c8b", linewidths=0, label=f"A: {name_a}")
    axes[0].scatter(
        cb[inside, 0],
        cb[inside, 1],
        s=2.5,
        c="#1a9641",
        linewidths=0,
        label=f"B: {name_b}",
        alpha=0.8,
    )
    how = "B's mirror image" if contour.mirrored else "B"
    moved = "aligned onto A" if contour.aligned else "as placed (no transform found)"
    scale = f"; found at blur {contour.sigma:g} px" if contour.sigma else ""
    axes[0].set_title(f"outlines: A magenta, {how} green, {moved}{scale}", fontsize=9)
    axes[0].legend(loc="lower right", fontsize=7, markerscale=8)
    dev = contour.deviation * pixel_scale
    shown = np.isfinite(dev) & inside
    # one scale for every pair: twice the tolerance (at least 4 px of the original) at the top
    tol = (tolerance_px if tolerance_px is not None else 2.0) * pixel_scale
    top = max(2.0 * tol, 4.0)
    pts = axes[1].scatter(
        cb[shown, 0],
        cb[shown, 1],
        s=3.0,
        c=np.minimum(dev[shown], top),
        cmap="plasma",
        vmin=0,
        vmax=top,
        linewidths=0,
    )
    bar = fig.colorbar(pts, ax=axes[1], fraction=0.046, pad=0.02)
    bar.set_label("distance to A's nearest outline (pixels of A's original)", fontsize=8)
    if tolerance_px is not None:
        bar.ax.axhline(tol, color="white", linewidth=2.0)
    med = float(np.median(dev[shown])) if shown.any() else float("nan")
    axes[1].set_title(
        f"where B's outlines depart from A's (median {med:.1f} px; white mark: tolerance; "
        f"capped at {top:.0f} px)",
        fontsize=9,
    )
    for ax in axes:
        ax.set_xlim(0, cols)
        ax.set_ylim(rows, 0)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(
        f"contour (tracing) test   A = {name_a}   B = {name_b}   "
        f"similarity {contour.similarity if score is None else score:.3f}",
        fontsize=10,
    )
    fig.tight_layout()
    return fig
