"""Pages 4-5: Similarity and Clusters."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from app.evidence import pair_evidence
from app.outputs import evidence_cache
from app.pipeline import suggested_cut
from app.plots import (
    dendrogram_figure,
    framed,
    k_selection_figure,
    scatter_figure,
    silhouette_figure,
    similarity_heatmap,
    thumbnail,
)
from clustering import METHODS, ClusteringConfig
from clustering.methods import MATRIX_LINKAGES
from similarity import READY_METRICS
from similarity.config import DEFAULT_METRICS
from similarity.pairmodel import DEFAULT_PAIR_MODEL

from . import state
from .viewer import show_full_resolution

__all__ = [
    "similarity_page",
    "clusters_page",
    "clustering_section",
    "render_clusters",
    "similarity_section",
]


def similarity_section(current: dict[str, Any]) -> dict[str, Any]:
    """The metrics and their combination chosen on screen, as ``similarity`` settings
    (metrics from the registry's ``READY_METRICS``)."""
    metrics = st.multiselect(
        "Metrics",
        list(READY_METRICS),
        key=state.remembered("sim_metrics", list(current.get("metrics", DEFAULT_METRICS))),
        help="One similarity matrix per metric; see docs/similarity.md",
    )
    if not metrics:
        st.warning("Choose at least one metric; the default ones are used until then.")
        metrics = list(DEFAULT_METRICS)
    if len(metrics) < 2:
        return {"metrics": metrics, "fuse": "none"}
    learned_ok = set(metrics) == set(DEFAULT_PAIR_MODEL.metrics)
    modes = ["learned pair model", "weighted rank fusion"] if learned_ok else []
    modes = modes or ["weighted rank fusion"]
    saved = current.get("fuse", "auto")
    mode = st.radio(
        "Combine the metrics by",
        modes,
        index=0 if saved in ("auto", "learned") or not learned_ok else len(modes) - 1,
        help="The learned pair model (default for contour + sift) gives each pair "
        "the probability that both share a template, from each metric's score and where it "
        "stands among each image's own scores; it was fitted on the development half of "
        "the accuracy benchmark (docs/accuracy.md). Weighted rank fusion averages the "
        "rank-calibrated matrices.",
    )
    if mode == "learned pair model":
        return {"metrics": metrics, "fuse": "auto"}
    cols = st.columns(len(metrics))
    weights = [
        cols[i].number_input(
            m, 0.0, 10.0, 1.0, 0.5, key=f"w_{m}", help=f"Weight of {m} in the fusion"
        )
        for i, m in enumerate(metrics)
    ]
    return {"metrics": metrics, "fuse": weights if sum(weights) > 0 else "equal"}


def similarity_page() -> None:
    st.header("4. Similarity")
    state.update_section("similarity", similarity_section(state.settings().get("similarity", {})))
    res = state.result()
    if res is None:
        st.info("Press **Run analysis** (sidebar) to compute the matrices.")
        return
    shown = st.selectbox("Heatmap", list(res.matrices), help="Ordered by the dendrogram")
    st.image(similarity_heatmap(res, shown), width="stretch")
    st.subheader("Evidence for a pair")
    ids = list(res.ids)
    c1, c2 = st.columns(2)
    a = c1.selectbox("Image A", ids, key="sim_a")
    b = c2.selectbox("Image B", ids, index=min(1, len(ids) - 1), key="sim_b")
    if st.button("Show evidence", help="Matches, local similarity, overlay and difference"):
        st.session_state["sim_pair"] = (id(res), a, b)
    if st.session_state.get("sim_pair") == (id(res), a, b):
        i, j = ids.index(a), ids.index(b)
        view = pair_evidence(
            res.aligned.images, res.matrices, res.config, i, j, record_a=res.images[a],
            cache=evidence_cache(res),
        )  # fmt: skip
        show_full_resolution(res, view)
        st.image(view.figures["pair"], width="stretch")
        st.image(view.figures["contour"], width="stretch")


def clustering_section(current: dict[str, Any]) -> dict[str, Any]:
    """The clustering settings chosen on screen, as a ``[clustering]`` section.

    Every option comes from the method registry: the methods, whether k is
    given or found, the criteria and linkages each method accepts, whether it
    cuts at a threshold and whether it consumes features.
    """
    default = ClusteringConfig()
    method = st.selectbox(
        "Method",
        list(METHODS),
        key=state.remembered("cl_method", current.get("method", default.method)),
        help=f"{default.method} is the default (chosen on the accuracy benchmark, "
        "docs/accuracy.md)",
    )
    chosen = METHODS[method]
    st.caption(chosen.summary)
    section: dict[str, Any] = {"method": method}
    # one way of deciding the number of clusters is shown: a threshold cut, or k
    cut = chosen.cuts_threshold and st.checkbox(
        "Cut at a similarity threshold (instead of choosing k)",
        key=state.remembered("cl_cut", current.get("threshold") is not None),
        help="0-1; pairs above it join; the number of clusters follows from the cut",
    )
    if cut:
        t = current.get("threshold") or 0.6
        section["threshold"] = float(
            st.slider("Similarity threshold", 0.0, 1.0, key=state.remembered("cl_t", t), step=0.01)
        )
    elif not chosen.chooses_k:
        fixed = current.get("n_clusters", "auto") != "auto"
        if st.toggle(
            "Choose k automatically",
            key=state.remembered("cl_auto", not fixed),
            help="Try k from 2 to 25, or to a quarter of the images when that is more",
        ):
            criteria = list(chosen.criteria)
            saved = current.get("selection", default.selection)
            section["selection"] = st.selectbox(
                "Criterion",
                criteria,
                key=state.remembered(
                    f"cl_crit_{method}", saved if saved in criteria else criteria[0]
                ),
                help="What chooses k",
            )
        else:
            k = current.get("n_clusters") if fixed else 5
            section["n_clusters"] = int(
                st.number_input("k", 1, 200, key=state.remembered("cl_k", k), help="Clusters")
            )
    if chosen.linkages:
        linkages = [x for x in chosen.linkages if x in MATRIX_LINKAGES]
        section["linkage"] = st.selectbox(
            "Linkage",
            linkages,
            key=state.remembered("cl_linkage", current.get("linkage", default.linkage)),
            help="How the distance between groups is measured",
        )
    if chosen.graph_neighbors:
        section["neighbors"] = _graph_neighbors(current, default)
    if chosen.matrix_input() is None:
        section["features"] = "mds"
    return section


def _graph_neighbors(current: dict[str, Any], default: ClusteringConfig) -> int | str:
    """The spectral graph's neighbours per image, or ``"all"`` (every pair)."""
    saved = current.get("neighbors", default.neighbors)
    if st.checkbox(
        "Every pair in the graph",
        key=state.remembered("cl_all_pairs", saved in (None, "all")),
        help="Otherwise each image's nearest neighbours only",
    ):
        return "all"
    nb = saved if isinstance(saved, int) else default.neighbors
    return int(
        st.number_input(
            "Neighbours per image",
            1,
            200,
            key=state.remembered("cl_neighbors", nb),
            help=f"{default.neighbors} is the default, chosen for the learned pair model's "
            "matrix; 5 does better on rank-fused matrices (docs/clustering.md)",
        )
    )


def _use_cut(k: int) -> None:
    """Switch the controls to agglomerative clustering with ``k`` clusters and re-cluster."""
    st.session_state.update(
        {
            "cl_method": "agglomerative",
            "cl_cut": False,
            "cl_auto": False,
            "cl_k": k,
            "cl_linkage": "average",
        }
    )
    state.settings()["clustering"] = {"method": "agglomerative", "n_clusters": k}
    st.session_state["run_now"] = True


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
        st.warning(state.literal(w))
    # the cut is a clustering of its own: made once per result, not on every rerun
    memo = state.kept("suggested_cut")
    if memo is None or memo[0] != id(res):
        memo = (id(res), suggested_cut(res))
        state.keep("suggested_cut", memo)
    cut = memo[1]
    if cut is not None:
        st.warning(
            f"No cluster: {c.method} called every image noise. The dendrogram of the same "
            f"matrix supports {state.plural(cut.k, 'cluster')} (average linkage, k chosen "
            "by silhouette)."
        )
        st.button(
            f"Use the dendrogram cut ({state.plural(cut.k, 'cluster')})",
            on_click=_use_cut,
            args=(cut.k,),
        )
    for lab, members in res.clusters().items():
        name = "Noise" if lab < 0 else f"Cluster {lab}"
        exemplar = c.exemplars.get(lab)
        ex_id = res.ids[exemplar] if exemplar is not None else None
        st.markdown(
            f"**{name}** ({state.plural(len(members), 'image')})"
            + (f", exemplar {state.literal(ex_id)}" if ex_id else "")
        )
        if ex_id is not None:  # the exemplar first, framed in red as in the report's grids
            members = [ex_id, *(m for m in members if m != ex_id)]
        cols = st.columns(6)
        for pos, image_id in enumerate(members):
            thumb = thumbnail(res.images[image_id].pixels, side=200)
            caption = state.literal(image_id)
            if image_id == ex_id:
                thumb = framed(thumb)
                caption = "exemplar: " + caption
            with cols[pos % 6]:
                st.image(thumb, caption=caption)


def clusters_page() -> None:
    st.header("5. Clusters")
    state.settings()["clustering"] = clustering_section(state.settings().get("clustering", {}))
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
        st.image(dendrogram_figure(res), width="stretch")
    with tabs[2]:
        st.image(scatter_figure(res), width="stretch")
    with tabs[3]:
        if len(res.clustering.selection) > 1:
            st.image(k_selection_figure(res), width="stretch")
        st.dataframe(pd.DataFrame(res.clustering.selection), width="stretch")
    with tabs[4]:
        st.image(silhouette_figure(res), width="stretch")
