"""Pages 1-3: Images, Equalize, Align."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from app import paintings
from app.plots import alignment_figure, equalization_figure, thumbnail
from preprocessing import AtelierError, load_folder, load_uploads
from preprocessing.align import (
    ALIGN_METHODS,
    FEATURE_MODELS,
    FEATURE_REFERENCES,
    STACKREG_REFERENCES,
)
from preprocessing.config import PreprocessConfig
from preprocessing.equalize import MEASURES

from . import state

__all__ = ["images_page", "equalize_page", "align_page", "check_uploads"]


def check_uploads(files: list[tuple[str, int]]) -> list[str]:
    """Messages for uploads over the limits (count, per-file size, total size)."""
    limits = state.LIMITS
    problems = []
    if len(files) > limits["max_files"]:
        problems.append(f"{len(files)} files: at most {limits['max_files']} at once")
    for name, size in files:
        if size > limits["max_file_mb"] * 2**20:
            problems.append(
                f"{name}: {size / 2**20:.1f} MB, the limit is {limits['max_file_mb']:g} MB"
            )
    total = sum(size for _, size in files)
    if total > limits["max_total_mb"] * 2**20:
        problems.append(
            f"{total / 2**20:.1f} MB in all, the limit is {limits['max_total_mb']:g} MB"
        )
    return problems


def images_ui() -> None:
    """The three ways to bring images in."""
    uploads = st.file_uploader(
        "Upload images (drag and drop)",
        accept_multiple_files=True,
        help="JPEG, PNG, TIFF, BMP, WebP or GIF; read in memory, nothing leaves this machine.",
    )
    if uploads and st.button("Use the uploaded files", help="Replace the current images by these"):
        problems = check_uploads([(f.name, f.size) for f in uploads])
        if problems:
            for p in problems:
                st.error(f"Upload refused: {state.literal(p)}")
        else:
            files = [(f.name, f.getvalue()) for f in uploads]
            originals = {hashlib.sha256(data).hexdigest(): data for _, data in files}
            state.set_images(load_uploads(files), uploaded=originals)
    cols = st.columns([3, 1, 1])
    folder = cols[0].text_input(
        "Or a folder on this machine",
        key="folder_path",
        help="Read recursively; originals are only read, never changed.",
    )
    if cols[1].button("Load folder", help="Load every image below that folder"):
        try:
            chosen = Path(folder).expanduser()
            state.set_images(load_folder(chosen), chosen)
        except AtelierError as err:
            st.error(f"Cannot load the folder: {state.literal(err)}")
    if cols[2].button("Load sample artworks", help="The 45 bundled sample artworks, 11 families"):
        try:
            state.set_images(load_folder(state.samples_folder()), state.samples_folder())
        except AtelierError as err:
            st.error(f"Could not load the sample artworks: {state.literal(err)}")
    if st.button(
        "Load real paintings: 11 copies of a Raphael",
        help="Photographs of 11 painted copies of one Raphael composition (London, Naples, "
        "Edinburgh, Nostell Priory, the Ashmolean, Zurich, ...), shipped by the unraphael "
        "distribution: downloaded once from the package index into Atelier's cache when "
        "you press this (the app's only download), each file checked by SHA-256. "
        "docs/case-study-raphael.md walks through them.",
    ):
        try:
            with st.spinner("Fetching the photographs (once; then from the cache)"):
                fetched = paintings.fetch_paintings()
            state.set_images(load_folder(fetched), fetched)
        except AtelierError as err:
            st.error(
                f"The real paintings cannot be had: {state.literal(err)}. Without a connection "
                "to the package index they stay unavailable; the sample artworks work offline."
            )


def images_page() -> None:
    st.header("1. Images")
    images_ui()
    image_set = state.images()
    if image_set is None:
        st.info("Upload images, load a folder, or press **Load sample artworks**.")
        return
    st.write(f"{len(image_set)} image(s) loaded, {len(image_set.skipped)} skipped.")
    for s in image_set.skipped:
        st.warning(f"Skipped {state.literal(s.path)}: {state.literal(s.reason)}")
    n_cols = st.slider("Columns", 2, 10, 6, help="Thumbnails per row")
    cols = st.columns(n_cols)
    for pos, rec in enumerate(image_set):
        with cols[pos % n_cols]:
            st.image(
                thumbnail(rec.pixels, side=200),
                caption=state.literal(f"{rec.id} ({rec.meta.width}x{rec.meta.height})"),
            )


def equalize_section(current: dict[str, Any]) -> dict[str, Any]:
    """The measures chosen on screen, as ``preprocess`` settings (from ``MEASURES``)."""
    chosen = current.get("equalize", [])
    picked = [
        m
        for m in MEASURES
        if st.checkbox(
            m.capitalize(),
            key=state.remembered(f"eq_{m}", m in chosen),
            help=f"Match each image's {m} (on CIELAB lightness) to the set's median",
        )
    ]
    return {"equalize": picked}


def equalize_page() -> None:
    st.header("2. Equalize brightness, contrast and sharpness")
    state.update_section("preprocess", equalize_section(state.settings().get("preprocess", {})))
    res = state.result()
    if res is None:
        st.info("Press **Run analysis** (sidebar) to see the measures before and after.")
        return
    if res.equalization is None:
        st.info(
            "Equalization was off in the analysis shown: tick the measures to match and "
            "press **Run analysis** (sidebar) to see them before and after."
        )
        return
    eq = res.equalization
    st.dataframe(pd.DataFrame(eq.summary()).T, width="stretch")
    st.pyplot(equalization_figure(res))


def alignment_section(current: dict[str, Any]) -> dict[str, Any]:
    """The alignment chosen on screen, as ``preprocess`` settings (options from the core's
    ``ALIGN_METHODS``, references and feature models)."""
    default = PreprocessConfig()
    method = st.selectbox(
        "Motion model",
        list(ALIGN_METHODS),
        key=state.remembered("al_method", current.get("align", default.align)),
        help="pystackreg models (small corrections) or SIFT + RANSAC features "
        "(large rotations, scale, perspective)",
    )
    refs = list(FEATURE_REFERENCES if method == "features" else STACKREG_REFERENCES)
    saved = current.get("reference", default.reference)
    reference = st.selectbox(
        "Reference",
        refs,
        key=state.remembered(f"al_ref_{method}", saved if saved in refs else refs[0]),
        help="auto: the iterated mean image (models) or the image with the most inliers (features)",
    )
    feature_model = st.selectbox(
        "Feature model",
        list(FEATURE_MODELS),
        key=state.remembered("al_fm", current.get("feature_model", default.feature_model)),
        disabled=method != "features",
        help="What the feature path fits with RANSAC",
    )
    return {"align": method, "reference": reference, "feature_model": feature_model}


def align_page() -> None:
    st.header("3. Align")
    state.update_section("preprocess", alignment_section(state.settings().get("preprocess", {})))
    res = state.result()
    if res is None or res.aligned.method == "none":
        st.info("Choose a model and press **Run analysis** (sidebar).")
        return
    st.pyplot(alignment_figure(res))
    rows = [
        {
            "image": q.id,
            "NCC before": round(q.ncc_before, 3),
            "NCC after": round(q.ncc_after, 3),
            "inliers": q.inliers,
            "aligned": q.aligned,
            "note": q.note,
        }
        for q in res.aligned.quality
    ]
    st.dataframe(pd.DataFrame(rows), width="stretch")
    bad = [q.id for q in res.aligned.quality if not q.aligned]
    if bad:
        st.warning(f"{len(bad)} image(s) did not align: {state.literal(', '.join(bad))}")
