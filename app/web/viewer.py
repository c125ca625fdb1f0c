"""A full-resolution pair viewer: side by side with synchronized zoom and pan, a wipe
between A and B registered, a colour overlay, the difference, the contour test's
outlines and their deviation, and the SIFT matches found again after the registration.

Plain HTML and JavaScript in the page (``st.components.v1.html``); the images are
embedded as data URLs, so nothing is fetched from anywhere.
"""

from __future__ import annotations

import base64
import html
import json
import math
from pathlib import Path

import numpy as np
import streamlit as st
import streamlit.components.v1 as components

from app.evidence import PairView, contour_metric, registration
from app.fullres import (
    MatchView,
    OutlineViews,
    RegisteredPair,
    jpeg,
    match_view,
    outline_views,
    overlay,
    register_originals,
)
from preprocessing.work import rgb_to_gray

from . import state

__all__ = ["pair_viewer", "viewer_html", "show_full_resolution"]


def _script_json(value: object) -> str:
    """JSON safe inside a <script> element (a name holding ``</script>`` stays data)."""
    return json.dumps(value).replace("<", "\\u003c")


def _jpeg_url(rgb: np.ndarray) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(jpeg(rgb)).decode("ascii")


def _views(
    pair: RegisteredPair, lines: OutlineViews | None, found: MatchView | None
) -> dict[str, str]:
    """The viewer's pictures, as data URLs."""
    ga = rgb_to_gray(pair.a)
    gb = rgb_to_gray(pair.b_on_a)
    shown_b = np.where(pair.valid[..., None], pair.b_on_a, 0.5)
    diff = np.where(pair.valid, np.abs(ga - gb), 0.0)
    top = max(float(np.percentile(diff[pair.valid], 99)) if pair.valid.any() else 1.0, 1e-3)
    diff_rgb = np.repeat(np.clip(diff / top, 0, 1)[..., None], 3, axis=2)
    views = {
        "a": _jpeg_url(pair.a),
        "b": _jpeg_url(shown_b),
        "overlay": _jpeg_url(overlay(pair)),
        "difference": _jpeg_url(1.0 - diff_rgb),
    }
    if lines is not None:
        views["outlines"] = _jpeg_url(lines.outlines)
        views["deviation"] = _jpeg_url(lines.deviation)
    if found is not None:
        views["matches_a"] = _jpeg_url(found.a)
        views["matches_b"] = _jpeg_url(found.b)
    return views


def _labels(lines: OutlineViews | None, found: MatchView | None) -> dict[str, str]:
    """What the outline and match panes say (their figures in words)."""
    said = {}
    if lines is not None:
        said["outlines"] = (
            "Outlines of the contour test (blur "
            f"{lines.sigma_px:.0f} px of this view): A magenta, B green, both black"
        )
        median = "no outline" if math.isnan(lines.median_px) else f"{lines.median_px:.1f}"
        said["deviation"] = (
            "B's outlines by distance to A's nearest outline, in pixels of A's original: "
            f"dark 0, yellow {lines.top_px:.0f} or more; median {median}"
        )
    if found is not None:
        said["matches"] = (
            f"SIFT: {found.agreeing} of {found.matched} matches found again within "
            f"{found.tolerance_px:.0f} px after the registration (green circles); orange "
            "crosses: matched elsewhere"
        )
    return said


#: the page: controls, panes and the script that zooms, pans and wipes (placeholders
#: __VIEWS__, __LABELS__, __NAMES__, __W__, __HH__, __H__, __NOTE__ filled by :func:`viewer_html`)
_TEMPLATE = (Path(__file__).with_name("viewer.html")).read_text(encoding="utf-8")


def viewer_html(
    pair: RegisteredPair,
    name_a: str,
    name_b: str,
    *,
    height: int = 620,
    lines: OutlineViews | None = None,
    found: MatchView | None = None,
) -> str:
    """The viewer's page: the pair's pictures and the controls (the outline, deviation
    and match modes when ``lines`` and ``found`` are given)."""
    rows, cols = pair.a.shape[:2]
    how = (
        f"B carried onto A by {pair.by}"
        if pair.registered
        else "no pair transform found: B placed by the analysis' alignment only"
    )
    reduced = f"; A shown at 1/{pair.scale_a:.2f} of its original size" if pair.scale_a > 1 else ""
    note = f"Scroll to zoom, drag to pan (both panes move together); {how}{reduced}."
    return (
        _TEMPLATE.replace("__VIEWS__", _script_json(_views(pair, lines, found)))
        .replace("__LABELS__", _script_json(_labels(lines, found)))
        .replace("__NAMES__", _script_json([name_a, name_b]))
        .replace("__W__", str(cols))
        .replace("__HH__", str(rows))
        .replace("__H__", str(height))
        .replace("__NOTE__", html.escape(note))
    )


def pair_viewer(pair: RegisteredPair, name_a: str, name_b: str, *, height: int = 620) -> None:
    """Show the viewer in the page."""
    components.html(viewer_html(pair, name_a, name_b, height=height), height=height + 70)


def show_full_resolution(res, view: PairView) -> None:  # noqa: ANN001 - AnalysisResult
    """The pair at the originals' resolution (``report.evidence_side``), registered as
    the evidence beside it registered the work images; kept for the last pair shown."""
    side = res.config.report.evidence_side
    key = (id(res), view.id_a, view.id_b, side)
    kept = state.kept("full_resolution")
    if kept is None or kept[0] != key:
        ims = {im.id: im for im in res.aligned.images}
        with st.spinner("Registering the originals"):
            transform, by = registration(view)
            pair = register_originals(
                res.images[view.id_a],
                res.images[view.id_b],
                ims[view.id_a],
                ims[view.id_b],
                transform,
                max_side=side,
                by=by,
            )
            work_side = ims[view.id_a].gray.shape[0]
            page = viewer_html(
                pair,
                view.id_a,
                view.id_b,
                lines=outline_views(pair, contour_metric(res.config), work_side),
                found=match_view(pair),
            )
        kept = (key, page)
        state.keep("full_resolution", kept)
    st.markdown(
        f"**At the originals' resolution** (up to {side} px on the longer side; "
        "`report.evidence_side`)"
    )
    components.html(kept[1], height=620 + 70)
