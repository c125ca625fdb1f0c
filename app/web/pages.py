"""The pages of the web app: widgets read in ``*_ui`` functions, one core call, render."""

from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from app.config import AnalysisConfig
from app.pipeline import AnalysisResult, run_analysis
from app.plots import thumbnail
from preprocessing import AtelierError, ImageSet, load_folder

__all__ = ["analyse_page", "samples_folder"]


def samples_folder() -> Path:
    env = os.environ.get("ATELIER_SAMPLES")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "sample_artworks"


def _progress_callback(bar):  # noqa: ANN001, ANN202 - streamlit widget
    def report(stage: str, done: int, total: int) -> None:
        bar.progress(min(1.0, done / max(total, 1)), text=f"{stage}: {done} / {total}")

    return report


def images_ui() -> ImageSet | None:
    """The image source: for now the bundled sample artworks."""
    folder = samples_folder()
    if st.button("Load sample artworks", type="secondary"):
        try:
            st.session_state["images"] = load_folder(folder)
            st.session_state.pop("result", None)
        except AtelierError as err:
            st.error(f"Could not load the sample artworks from {folder}: {err}")
    return st.session_state.get("images")


def config_ui() -> AnalysisConfig:
    """The analysis settings (defaults; the full controls come with the web-app pages)."""
    return AnalysisConfig()


def render_images(images: ImageSet) -> None:
    st.write(f"{len(images)} image(s) loaded, {len(images.skipped)} skipped.")
    for s in images.skipped:
        st.warning(f"Skipped {s.path}: {s.reason}")


def render_clusters(result: AnalysisResult) -> None:
    c = result.clustering
    st.subheader(f"{c.k} clusters")
    how = {
        "method": f"{c.method} found the number of clusters itself",
        "fixed": "the number of clusters was given",
        "threshold": "the dendrogram was cut at a similarity threshold",
    }.get(c.criterion, f"k chosen by {c.criterion}")
    st.caption(f"{c.method} on the {result.clustering_metric} similarity ({c.consumes}); {how}.")
    for lab, members in result.clusters().items():
        name = "Noise" if lab < 0 else f"Cluster {lab}"
        st.markdown(f"**{name}** ({len(members)} images)")
        cols = st.columns(6)
        for pos, image_id in enumerate(members):
            with cols[pos % 6]:
                st.image(thumbnail(result.images[image_id].pixels, side=200), caption=image_id)


def analyse_page() -> None:
    st.title("Atelier")
    st.write("Structural similarity of artworks: which copies come from the same template.")
    images = images_ui()
    config = config_ui()
    if images is None:
        st.info("Press **Load sample artworks** to begin.")
        return
    render_images(images)
    if st.button("Run analysis", type="primary"):
        bar = st.progress(0.0, text="starting")
        try:
            st.session_state["result"] = run_analysis(
                images, config, progress=_progress_callback(bar)
            )
        except AtelierError as err:
            st.error(f"The analysis failed: {err}")
        bar.empty()
    result = st.session_state.get("result")
    if result is not None:
        render_clusters(result)
