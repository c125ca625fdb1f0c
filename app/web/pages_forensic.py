"""Pages 6-8: Compare, Query, Export."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Mapping

import numpy as np
import pandas as pd
import streamlit as st

from app.evidence import closer_than, pair_evidence
from app.export import cluster_folder
from app.forensic import FORENSIC_METRICS, standing
from app.outputs import build_figures, html_to_pdf, run_record
from app.plots import thumbnail
from app.report import render_report
from preprocessing import AtelierError, load_uploads, sanitize_upload_name
from preprocessing.work import make_work_image

from . import state

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
    view = pair_evidence(res.aligned.images, res.matrices, res.config, i, j, record_a=res.images[a])
    sift = view.matched
    cols = st.columns(2)
    cols[0].image(thumbnail(res.images[a].pixels, side=400), caption=f"A: {state.literal(a)}")
    cols[1].image(thumbnail(res.images[b].pixels, side=400), caption=f"B: {state.literal(b)}")
    alpha = st.slider(
        "Overlay: share of B (moved onto A by SIFT's transform)",
        0.0,
        1.0,
        0.5,
        help="0 shows A, 1 shows B; structure that stays put is shared",
    )
    blend = (1 - alpha) * sift.image_a + alpha * np.where(sift.valid, sift.b_on_a, sift.image_a)
    st.image(np.clip(blend, 0, 1), caption="overlay", clamp=True)
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
    st.pyplot(view.figures["pair"])
    st.markdown(
        "**The tracing test** (contour similarity): after alignment, do the outlines "
        "coincide? Magenta: A's outlines; green: B's; right: how far each of B's "
        "outlines lies from A's, in pixels of A's original."
    )
    st.pyplot(view.figures["contour"])


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
    cfg = res.config
    q = make_work_image("questioned", qset.records[0].pixels, cfg.preprocess.work_size)
    rows = []
    for name in cfg.similarity.metrics:
        metric = cfg.metric(name)
        fq = metric.prepare(metric.extract(q.gray, q.mask))
        among = res.matrices[name].off_diagonal()
        for im in res.aligned.images:
            s = metric.compare(fq, metric.prepare(metric.extract(im.gray, im.mask)))
            rows.append({"reference": im.id, "metric": name, "similarity": s, **standing(s, among)})
    table = pd.DataFrame(rows)
    wide = table.pivot(index="reference", columns="metric", values="similarity")
    wide["mean"] = wide.mean(axis=1)
    p_values = table.pivot(index="reference", columns="metric", values="p_value").max(axis=1)
    wide["largest p-value"] = p_values
    wide = wide.sort_values("mean", ascending=False)
    st.caption(
        "p-value: the share of pairs of references at least as similar "
        "((1 + count) / (1 + pairs)), the largest over the metrics."
    )
    st.table(wide.head(20).round(4))


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
                "clusters.zip": cluster_zip(res, st.session_state.get("upload_bytes")),
            }
            for name, m in res.matrices.items():
                frame = pd.DataFrame(m.values, index=m.ids, columns=m.ids)
                files[f"similarity_{name}.csv"] = frame.to_csv().encode("utf-8")
            try:
                files["report.pdf"] = html_to_pdf(html)
            except AtelierError as err:
                st.caption(f"No PDF: {state.literal(err)}")
            st.session_state["downloads"] = files
        except AtelierError as err:
            st.error(f"The export failed: {state.literal(err)}")
    for name, data in st.session_state.get("downloads", {}).items():
        st.download_button(f"Download {name}", data, file_name=name, key=f"dl_{name}")
