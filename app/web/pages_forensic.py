"""Pages 6-8: Compare, Query, Export."""

from __future__ import annotations

import base64
import io
import json
import zipfile
from collections.abc import Mapping

import numpy as np
import pandas as pd
import streamlit as st
from PIL import Image

from app.evidence import closer_than, pair_evidence, why_fused_disagrees
from app.export import cluster_folder
from app.forensic import FORENSIC_METRICS, query_images
from app.outputs import build_figures, evidence_cache, html_to_pdf, run_record
from app.plots import thumbnail
from app.report import render_report
from preprocessing import AtelierError, load_uploads, sanitize_upload_name

from . import state
from .viewer import show_full_resolution

__all__ = ["compare_page", "query_page", "export_page", "cluster_zip", "other_scores"]


def compare_page() -> None:
    st.header("6. Compare two images")
    res = state.result()
    if res is None:
        st.info("Run an analysis first; then pick any two of its images.")
        return
    ids = list(res.ids)
    c1, c2 = st.columns(2)
    a = c1.selectbox("Image A", ids, key="cmp_a")
    b = c2.selectbox("Image B", ids, index=min(1, len(ids) - 1), key="cmp_b")
    i, j = ids.index(a), ids.index(b)
    view = pair_evidence(
        res.aligned.images, res.matrices, res.config, i, j, record_a=res.images[a],
        cache=evidence_cache(res),
    )  # fmt: skip
    cols = st.columns(2)
    cols[0].image(thumbnail(res.images[a].pixels, side=400), caption=f"A: {state.literal(a)}")
    cols[1].image(thumbnail(res.images[b].pixels, side=400), caption=f"B: {state.literal(b)}")
    show_full_resolution(res, view)
    key = res.clustering_metric
    learned = key == "fused" and res.matrices[key].params.get("fusion", "").startswith("learned")
    st.metric(
        "Probability that A and B share a template" if learned else f"{key} similarity",
        f"{view.scores[key]:.3f}",
        help="The score the clusters were made from"
        + (
            ": the learned pair model's probability, from each metric's score and where it "
            "stands among each image's own scores (docs/accuracy.md)"
            if learned
            else ""
        ),
    )
    rank = closer_than(res.matrices[key].values, i, j)
    if rank == rank:  # not NaN
        st.caption(
            f"A and B are closer than {rank:.0f} % of the other pairs in this collection "
            f"({len(res.ids) * (len(res.ids) - 1) // 2} pairs). The table gives each matrix."
        )
    disagree = why_fused_disagrees(res.matrices, key, i, j) if learned else []
    if disagree:
        st.info(
            "Why the probability and a metric disagree: the pair model judges each "
            "metric's score against each image's own scores, so a score that is low "
            "overall can still be the pair's strongest link, and a high one its "
            "weakest.\n\n" + "\n\n".join(f"- {line}" for line in disagree)
        )
    st.dataframe(
        pd.DataFrame({"matrix": list(view.scores), "similarity": list(view.scores.values())}),
        width="stretch",
        hide_index=True,
    )
    others = other_scores(res, i, j)
    if others:
        with st.expander("Metrics this analysis did not compute (this pair only)"):
            st.dataframe(
                pd.DataFrame({"metric": list(others), "similarity": list(others.values())}),
                width="stretch",
                hide_index=True,
            )
    st.image(view.figures["pair"], width="stretch")
    st.markdown(
        "**The tracing test** (contour similarity): after alignment, do the outlines "
        "coincide? Magenta: A's outlines; green: B's; right: how far each of B's "
        "outlines lies from A's, in pixels of A's original."
    )
    st.image(view.figures["contour"], width="stretch")


def other_scores(res, i: int, j: int) -> dict[str, float]:  # noqa: ANN001 - AnalysisResult
    """The similarity of two analysed images under the metrics the analysis did not
    compute (configured and seeded as the analysis would)."""
    ims = res.aligned.images
    scores = {}
    for name in FORENSIC_METRICS:
        if name in res.matrices:
            continue
        metric = res.config.metric(name)
        fa = metric.prepare(metric.extract(ims[i].gray, ims[i].mask))
        fb = metric.prepare(metric.extract(ims[j].gray, ims[j].mask))
        scores[name] = float(metric.compare(fa, fb))
    return scores


def _png_data_url(pixels: np.ndarray, side: int = 96) -> str:
    """A small PNG thumbnail as a data URL (for a table's image column)."""
    buf = io.BytesIO()
    Image.fromarray(thumbnail(pixels, side=side)).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _query_result(res, record):  # noqa: ANN001, ANN202 - an AnalysisResult, an ImageRecord
    """The questioned image ranked against the analysed ones, kept for this result."""
    key = (id(res), record.sha256)
    kept = state.kept("query_result")
    if kept is not None and kept[0] == key:
        return kept[1]
    bar = st.progress(0.0, text="comparing with every reference")
    try:
        found = query_images(
            record, res.images, res.config, top=len(res.images), progress=state.progress_to(bar)
        )
    finally:
        bar.empty()
    state.keep("query_result", (key, found))
    return found


def _show_ranking(found, record, key: str, meaning: str, learned: bool) -> None:  # noqa: ANN001
    """The questioned image and the best matches as thumbnails, then the sortable table."""
    shown = found.ranking[:5]
    cols = st.columns(len(shown) + 1)
    cols[0].image(
        thumbnail(record.pixels, side=240), caption="questioned: " + state.literal(record.id)
    )
    for col, row in zip(cols[1:], shown, strict=True):
        pixels = found.images[row["reference"]].pixels
        col.image(
            thumbnail(pixels, side=240),
            caption=f"rank {row['rank']}: {state.literal(row['reference'])} ({row[key]:.3f})",
        )
    metrics = [m for m in found.matrices if m != key]
    table = pd.DataFrame(
        [
            {
                "rank": row["rank"],
                "image": _png_data_url(found.images[row["reference"]].pixels),
                "reference": row["reference"],
                "score": row[key],
                "p-value": row[f"{key}_p_value"],
                **{m: row[m] for m in metrics},
            }
            for row in found.ranking
        ]
    )
    st.caption("Click a column's header to sort by it.")
    st.dataframe(
        table,
        hide_index=True,
        use_container_width=True,
        column_config={
            "image": st.column_config.ImageColumn("image", width="small"),
            "score": st.column_config.NumberColumn(
                "same template (probability)" if learned else key, format="%.3f", help=meaning
            ),
            "p-value": st.column_config.NumberColumn("p-value", format="%.3f"),
            **{m: st.column_config.NumberColumn(m, format="%.3f") for m in metrics},
        },
    )


def query_page() -> None:
    st.header("7. Query a questioned image")
    res = state.result()
    if res is None:
        st.info(
            "Run an analysis of the reference images first; the questioned image is "
            "compared with them."
        )
        return
    upload = st.file_uploader(
        "Questioned image",
        accept_multiple_files=False,
        help="Compared with every analysed image as a reference",
    )
    if upload is None:
        return
    qset = load_uploads([(upload.name, upload.getvalue())])
    if len(qset) == 0:
        st.error(
            f"Cannot use {state.literal(sanitize_upload_name(upload.name))}: "
            f"{state.literal(qset.skipped[0].reason)}"
        )
        return
    record = qset.records[0]
    try:
        found = _query_result(res, record)
    except AtelierError as err:
        st.error(f"The query stopped: {state.literal(err)}")
        return
    key = "fused" if "fused" in found.matrices else res.config.similarity.metrics[0]
    learned = key == "fused" and res.config.similarity.fusion() == "learned"
    meaning = (
        "the probability that the questioned image and the reference share a template"
        if learned
        else f"the {key} similarity"
    )
    st.markdown(
        f"References ranked by {meaning} (the matrix the clusters came from, as the "
        "command line's `atelier query` ranks them). The p-value is the share of pairs "
        "of references at least as similar: how unusual such a match is between "
        "different references."
    )
    _show_ranking(found, record, key, meaning, learned)
    for name, png in found.figures.items():
        rank = int(name.split("_")[2].split(".")[0])
        row = found.ranking[rank - 1]
        kind = "outlines (tracing test)" if name.endswith("_contour.png") else "evidence"
        with st.expander(f"Rank {rank}, {state.literal(row['reference'])}: {kind}"):
            st.image(png, width="stretch")


def cluster_zip(res, uploaded: Mapping[str, bytes] | None = None) -> bytes:  # noqa: ANN001
    """A ZIP with one folder per cluster holding the originals (relative paths only): the
    files on disk, and uploads from their bytes (``uploaded``: SHA-256 -> bytes)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for lab, members in res.clusters().items():
            folder = cluster_folder(lab)
            for image_id in members:
                rec = res.images[image_id]
                parts = [p for p in image_id.split("/") if p not in ("", ".", "..")]
                name = "/".join([folder, *parts])
                if rec.path is not None:
                    zf.write(rec.path, name)
                elif uploaded and rec.sha256 in uploaded:
                    zf.writestr(name, uploaded[rec.sha256])
    return buf.getvalue()


def export_page() -> None:
    st.header("8. Export")
    res = state.result()
    if res is None:
        st.info("Run an analysis first.")
        return
    if st.button("Prepare the downloads", help="Draws every figure and writes the report"):
        try:
            figures = build_figures(res)
            record = run_record(res)
            html = render_report(res, record, figures)
            files = {
                "report.html": html.encode("utf-8"),
                "run.json": json.dumps(record, indent=2).encode("utf-8"),
                "clusters.zip": cluster_zip(res, state.kept("upload_bytes")),
            }
            for name, m in res.matrices.items():
                frame = pd.DataFrame(m.values, index=m.ids, columns=m.ids)
                files[f"similarity_{name}.csv"] = frame.to_csv().encode("utf-8")
            try:
                files["report.pdf"] = html_to_pdf(html)
            except AtelierError as err:
                st.caption(f"No PDF: {state.literal(err)}")
            state.keep("downloads", files)
        except AtelierError as err:
            st.error(f"The export failed: {state.literal(err)}")
    for name, data in state.kept("downloads", {}).items():
        st.download_button(f"Download {name}", data, file_name=name, key=f"dl_{name}")
