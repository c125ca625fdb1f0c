"""Figures drawn from an analysis result, seeded: composed in pixels with Pillow (grids,
heatmaps, dendrogram, scatter plot, silhouettes, choice of k, pair evidence; RGB images,
:func:`image_png` encodes them) and the preprocessing diagnostics through matplotlib's
object API (no global state; :func:`figure_png`)."""

from ._base import (
    GRID_THUMB_SIDE,
    MAX_GRID_IMAGES,
    alignment_figure,
    cluster_grid,
    equalization_figure,
    figure_png,
    framed,
    image_png,
    thumbnail,
)
from .dendrogram import dendrogram_figure
from .evidence import pair_evidence_figure
from .selection import k_selection_figure
from .structure import (
    leaf_order,
    scatter_figure,
    silhouette_figure,
    similarity_heatmap,
)

__all__ = [
    "GRID_THUMB_SIDE",
    "MAX_GRID_IMAGES",
    "alignment_figure",
    "cluster_grid",
    "dendrogram_figure",
    "equalization_figure",
    "figure_png",
    "framed",
    "image_png",
    "k_selection_figure",
    "leaf_order",
    "pair_evidence_figure",
    "scatter_figure",
    "silhouette_figure",
    "similarity_heatmap",
    "thumbnail",
]
