"""Pages 4-5: Similarity and Clusters."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app.evidence import pair_figures
from app.plots import (
    dendrogram_figure,
    k_selection_figure,
    scatter_figure,
    silhouette_figure,
    similarity_heatmap,
    thumbnail,
)
from clustering import LINKAGES, METHODS, SELECTION_CRITERIA, ClusteringConfig
from similarity import METRICS
from similarity.config import DEFAULT_METRICS
from similarity.pairmodel import DEFAULT_PAIR_MODEL

from . import state

__all__ = ["similarity_page", "clusters_page", "render_clusters"]


def similarity_page() -> None:
    st.header("4. Similarity")
    sim = state.settings().get("similarity", {})
    names = [n for n in METRICS if n != "embedding"]
    metrics = st.multiselect(
        "Metrics",
        names,
        default=sim.get("metrics", list(DEFAULT_METRICS)),
        help="One similarity matrix per metric; see docs/similarity.md",
    )
    if metrics:
        state.set_setting("similarity", "metrics", metrics)
    learned_ok = set(metrics) == set(DEFAULT_PAIR_MODEL.metrics)
    if len(metrics) > 1:
        modes = ["learned pair model", "weighted rank fusion"] if learned_ok else []
        modes = modes or ["weighted rank fusion"]
        current = sim.get("fuse", "auto")
        mode = st.radio(
            "Combine the metrics by",
            modes,
            index=0 if current in ("auto", "learned") or not learned_ok else len(modes) - 1,
            help="The learned pair model (default for contour + sift) gives each pair the "
            "probability that both share a template, from each metric's score and where it "
            "stands among each image's own scores; it was fitted on the development half of "
            "the accuracy benchmark (docs/accuracy.md). Weighted rank fusion averages the "
            "rank-calibrated matrices.",
        )
        if mode == "learned pair model":
            state.set_setting("similarity", "fuse", "auto")
        else:
            cols = st.columns(len(metrics))
            weights = [
                cols[i].number_input(
                    m, 0.0, 10.0, 1.0, 0.5, key=f"w_{m}", help=f"Weight of {m} in the fusion"
                )
                for i, m in enumerate(metrics)
            ]
            state.set_setting("similarity", "fuse", weights if sum(weights) > 0 else "equal")
    else:
        state.set_setting("similarity", "fuse", "none")
    res = state.result()
    if res is None:
        st.info("Press **Run analysis** (sidebar) to compute the matrices.")
        return
    shown = st.selectbox("Heatmap", list(res.matrices), help="Ordered by the dendrogram")
    st.pyplot(similarity_heatmap(res, shown))
    st.subheader("Evidence for a pair")
    ids = list(res.ids)
    c1, c2 = st.columns(2)
    a = c1.selectbox("Image A", ids, key="sim_a")
    b = c2.selectbox("Image B", ids, index=min(1, len(ids) - 1), key="sim_b")
    if st.button("Show evidence", help="Matches, local similarity, overlay and difference"):
        i, j = ids.index(a), ids.index(b)
        ims = res.aligned.images
        scores = {n: float(m.values[i, j]) for n, m in res.matrices.items()}
        figs = pair_figures(ims[i], ims[j], res.config.similarity, scores, record_a=res.images[a])
        st.pyplot(figs["pair"])
        st.pyplot(figs["contour"])


def _clustering_ui() -> None:
    cur = state.settings().get("clustering", {})
    methods = list(METHODS)
    method = st.selectbox(
        "Method",
        methods,
        index=methods.index(cur.get("method", ClusteringConfig().method)),
        help=f"{ClusteringConfig().method} is the default (chosen on the accuracy benchmark, "
        "docs/accuracy.md); hdbscan, dbscan and affinity find the number of clusters "
        "themselves, the others are given one or choose it",
    )
    state.settings()["clustering"] = {"method": method}
    if METHODS[method].takes_k:
        auto = st.toggle("Choose k automatically", value=True, help="Try k = 2..25")
        if auto:
            crits = (
                list(SELECTION_CRITERIA)
                if method == "agglomerative"
                else [c for c in SELECTION_CRITERIA if c != "derivative"]
            )
            crit = st.selectbox("Criterion", crits, help="What chooses k")
            state.set_setting("clustering", "selection", crit)
        else:
            k = st.number_input("k", 1, 200, 5, help="The number of clusters")
            state.set_setting("clustering", "n_clusters", int(k))
    if method == "agglomerative":
        link = st.selectbox(
            "Linkage",
            [x for x in LINKAGES if x not in ("ward", "centroid", "median")],
            help="How the distance between groups is measured",
        )
        state.set_setting("clustering", "linkage", link)
        if st.checkbox("Cut at a similarity threshold instead", help="0-1; pairs above it join"):
            state.settings()["clustering"].pop("n_clusters", None)
            state.settings()["clustering"].pop("selection", None)
            t = st.slider("Similarity threshold", 0.0, 1.0, 0.6, 0.01)
            state.set_setting("clustering", "threshold", float(t))
    if method == "kmeans":
        state.set_setting("clustering", "features", "mds")


def render_clusters(res) -> None:  # noqa: ANN001 - AnalysisResult
    c = res.clustering
    st.subheader(f"{c.k} clusters")
    how = {
        "method": f"{c.method} found the number of clusters itself",
        "fixed": "the number of clusters was given",
        "threshold": "the dendrogram was cut at a similarity threshold",
    }.get(c.criterion, f"k chosen by {c.criterion}")
    st.caption(f"{c.method} on the {res.clustering_metric} similarity ({c.consumes}); {how}.")
    for w in c.warnings:
        st.warning(w)
    for lab, members in res.clusters().items():
        name = "Noise" if lab < 0 else f"Cluster {lab}"
        exemplar = c.exemplars.get(lab)
        ex_id = res.ids[exemplar] if exemplar is not None else None
        st.markdown(
            f"**{name}** ({len(members)} images)" + (f", exemplar {ex_id}" if ex_id else "")
        )
        cols = st.columns(6)
        for pos, image_id in enumerate(members):
            with cols[pos % 6]:
                st.image(thumbnail(res.images[image_id].pixels, side=200), caption=image_id)


def clusters_page() -> None:
    st.header("5. Clusters")
    _clustering_ui()
    res = state.result()
    if res is None:
        st.info("Press **Run analysis** (sidebar).")
        return
    if res.evaluation and "adjusted_rand" in res.evaluation:
        st.metric(
            "Adjusted Rand index against the families in families.csv",
            f"{res.evaluation['adjusted_rand']:.3f}",
        )
    tabs = st.tabs(["Grids", "Dendrogram", "Scatter", "Choice of k", "Silhouette"])
    with tabs[0]:
        render_clusters(res)
    with tabs[1]:
        st.pyplot(dendrogram_figure(res))
    with tabs[2]:
        st.pyplot(scatter_figure(res))
    with tabs[3]:
        if len(res.clustering.selection) > 1:
            st.pyplot(k_selection_figure(res))
        st.dataframe(pd.DataFrame(res.clustering.selection), width="stretch")
    with tabs[4]:
        st.pyplot(silhouette_figure(res))
