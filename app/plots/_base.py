"""Cluster grids (composed with Pillow) and the preprocessing diagnostics (matplotlib's
object API, no global state)."""

from __future__ import annotations

import functools
import io
import math
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import cv2
import matplotlib
import numpy as np
from PIL import Image, ImageDraw, ImageFont, PngImagePlugin

from ..pipeline import AnalysisResult

if TYPE_CHECKING:  # imported where a diagnostic is drawn: 0.2 s of a run that draws none
    from matplotlib.figure import Figure

__all__ = [
    "thumbnail",
    "cluster_grid",
    "figure_png",
    "image_png",
    "equalization_figure",
    "alignment_figure",
]

#: Most thumbnails drawn in one grid figure; larger clusters are sampled evenly.
MAX_GRID_IMAGES = 240

#: Most clusters in the overview grid; past that (or past MAX_GRID_IMAGES images) the
#: overview shows one row per cluster, and every cluster keeps its own full figure.
MAX_OVERVIEW_CLUSTERS = 30


#: The longer side of the thumbnails in cluster grids (and the largest any figure draws).
GRID_THUMB_SIDE = 160


def thumbnail(pixels: np.ndarray, side: int = GRID_THUMB_SIDE) -> np.ndarray:
    """An RGB uint8 thumbnail whose longer side is at most ``side`` pixels, from float
    pixels in [0, 1] or from a uint8 thumbnail (returned as it is when small enough)."""
    rows, cols = pixels.shape[:2]
    scale = side / max(rows, cols)
    if scale < 1:
        size = (max(1, round(cols * scale)), max(1, round(rows * scale)))
        pixels = cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)
    if pixels.dtype == np.uint8:
        return pixels
    return (np.clip(pixels, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def framed(
    thumb: np.ndarray, *, width: int = 5, colour: tuple[int, int, int] = (214, 39, 40)
) -> np.ndarray:
    """``thumb`` (RGB uint8) inside a frame of ``width`` pixels: how an exemplar is marked."""
    out = np.empty((thumb.shape[0] + 2 * width, thumb.shape[1] + 2 * width, 3), np.uint8)
    out[:] = colour
    out[width:-width, width:-width] = thumb
    return out


def figure_png(fig: Figure, *, dpi: int = 100) -> bytes:
    """Render a figure to PNG bytes."""
    buf = io.BytesIO()
    # compression level 3: about as small as the default 6, and faster to encode
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", pil_kwargs={"compress_level": 3})
    return buf.getvalue()


def _sample(members: list[int], limit: int) -> list[int]:
    if len(members) <= limit:
        return members
    picks = np.linspace(0, len(members) - 1, limit).round().astype(int)
    return [members[i] for i in picks]


def _wrapped(name: str, width: int = 24) -> str:
    """A file name on lines of at most ``width`` characters, broken after a ``/``, ``_``,
    ``-`` or space where one is near, else anywhere: whole, never cut."""
    lines, rest = [], name
    while len(rest) > width:
        cut = max(rest.rfind(ch, width // 2, width) for ch in "/_- ")
        cut = cut + 1 if cut > 0 else width
        lines.append(rest[:cut])
        rest = rest[cut:]
    return "\n".join([*lines, rest])


def _overview(
    groups: dict[int, list[str]], budget: int, columns: int, n_images: int
) -> tuple[dict[int, list[str]], int, int]:
    """The overview's clusters, images per cluster and clusters left out: one row per
    cluster for a large set or many small clusters, at most MAX_OVERVIEW_CLUSTERS."""
    rows = sum(math.ceil(min(len(ids), budget) / columns) for ids in groups.values())
    if n_images > MAX_GRID_IMAGES or rows > MAX_OVERVIEW_CLUSTERS:
        budget = columns
    if len(groups) <= MAX_OVERVIEW_CLUSTERS:
        return groups, budget, 0
    ordered = sorted(groups.items(), key=lambda kv: (kv[0] < 0, kv[0]))
    kept = dict(ordered[:MAX_OVERVIEW_CLUSTERS])
    return kept, columns, len(ordered) - MAX_OVERVIEW_CLUSTERS


#: The grid's font: the DejaVu Sans matplotlib ships, as in every other figure.
_FONT_FILE = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"


@functools.cache
def _font(pixels: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(_FONT_FILE), pixels)


class _GridLayout(NamedTuple):
    """Pixel sizes of a grid: a thumbnail's longer side at most, column width, caption
    height, the row labels' gutter and the title's band."""

    side: int
    cell: int
    caption: int
    gutter: int = 118
    title: int = 34

    def box(self, thumbs: list[np.ndarray]) -> int:
        """A row's image band: as tall as its tallest thumbnail once fitted."""
        return max(round(t.shape[0] * min(1.0, self.side / max(t.shape[:2]))) for t in thumbs)

    def row(self, thumbs: list[np.ndarray]) -> int:
        return self.caption + self.box(thumbs) + 14


def _grid_layout(n_rows: int, lines: int) -> _GridLayout:
    """Full-size thumbnails up to 20 rows, smaller ones past that (an overview of 30 rows
    stays under 4,000 pixels); a column always holds a 24-character caption line."""
    side = GRID_THUMB_SIDE if n_rows <= 20 else 88
    return _GridLayout(side, max(side + 30, 160), 12 * lines + 4)


def _grid_cell(
    canvas: Image.Image, draw: ImageDraw.ImageDraw, thumb: np.ndarray, at: tuple[int, int, int],
    layout: _GridLayout, caption: str, exemplar: bool,
) -> None:  # fmt: skip
    """One image of a grid (``at``: its cell's left, top and image band's height), centred
    under its caption, in its frame (red and 3 pixels for the exemplar, grey and 1 pixel
    for the others)."""
    if thumb.ndim == 2:
        thumb = np.repeat(thumb[:, :, None], 3, axis=2)
    image = Image.fromarray(np.ascontiguousarray(thumb[:, :, :3]))
    image.thumbnail((layout.side, layout.side), Image.Resampling.LANCZOS)
    x = at[0] + (layout.cell - image.width) // 2
    y = at[1] + layout.caption + (at[2] - image.height) // 2
    canvas.paste(image, (x, y))
    width, colour = (3, (214, 39, 40)) if exemplar else (1, (178, 178, 178))
    draw.rectangle(
        (x - width, y - width, x + image.width + width - 1, y + image.height + width - 1),
        outline=colour, width=width,
    )  # fmt: skip
    draw.multiline_text(
        (at[0] + layout.cell // 2, y - width - 3), caption, font=_font(10), fill="black",
        anchor="md", align="center", spacing=2,
    )  # fmt: skip


def _grid_blocks(
    result: AnalysisResult, label: int | None, columns: int
) -> tuple[list[tuple[int, list[int], int]], int]:
    """The clusters a grid shows, as (label, members shown, cluster size), exemplar first
    and noise last, and how many clusters the overview leaves to their own figures."""
    groups = result.clusters() if label is None else {label: result.clusters()[label]}
    index = {image_id: i for i, image_id in enumerate(result.ids)}
    budget = max(columns, MAX_GRID_IMAGES // max(1, len(groups)))
    omitted = 0
    if label is None:
        groups, budget, omitted = _overview(groups, budget, columns, len(result.ids))
    blocks: list[tuple[int, list[int], int]] = []
    for lab, ids in sorted(groups.items(), key=lambda kv: (kv[0] < 0, kv[0])):
        members = [index[i] for i in ids]
        ex = result.clustering.exemplars.get(lab)
        if ex is not None and ex in members:
            members.remove(ex)
            members.insert(0, ex)
        blocks.append((lab, _sample(members, budget), len(members)))
    return blocks, omitted


def _grid_title(
    result: AnalysisResult, label: int | None, blocks: list[tuple[int, list[int], int]],
    omitted: int,
) -> str:  # fmt: skip
    if label is not None:
        name = "noise" if label < 0 else "this cluster"
        return f"{name}: {blocks[0][2]} image(s) - red frame: exemplar (medoid)"
    noise = int((result.clustering.labels < 0).sum())
    more = f"; the first {len(blocks)} clusters, {omitted} more in their own figures"
    return (
        f"{result.clustering.k} cluster(s)"
        + (f", {noise} noise image(s)" if noise else "")
        + " - red frame: exemplar (medoid)"
        + (more if omitted else "")
    )


def cluster_grid(
    result: AnalysisResult, *, label: int | None = None, columns: int = 6
) -> Image.Image:
    """Every image of every cluster (or of one cluster), one block of rows per cluster,
    as an RGB image (:func:`image_png` encodes it).

    The exemplar (medoid) of each cluster comes first and is framed in red.
    Noise (label -1) is shown last. Clusters larger than the figure can hold
    are sampled evenly, and the row label says so. In the overview of a
    large set (more than ``MAX_GRID_IMAGES`` images), or of clusters that
    would take more than ``MAX_OVERVIEW_CLUSTERS`` rows, each cluster gets
    one row, and at most ``MAX_OVERVIEW_CLUSTERS`` clusters are drawn (the
    title says so; each cluster's own figure shows it in full).

    Composed in pixels (thumbnails pasted at their size, text in the DejaVu Sans
    of the other figures): a cluster's grid took 86 ms through matplotlib's axes,
    one per image, and a thousand images' analysis draws two hundred of them.
    """
    blocks, omitted = _grid_blocks(result, label, columns)
    cols = max(1, min(columns, max(len(m) for _, m, _ in blocks)))
    n_rows = sum(math.ceil(len(m) / cols) for _, m, _ in blocks)
    # full names, wrapped (never cut): the rows make room for the longest
    lines = max(_wrapped(result.ids[i]).count("\n") + 1 for _, m, _ in blocks for i in m)
    thumbs = {i: thumbnail(result.images[result.ids[i]].pixels) for _, m, _ in blocks for i in m}
    layout = _grid_layout(n_rows, lines)
    rows = [
        [thumbs[i] for i in m[start : start + cols]]
        for _, m, _ in blocks
        for start in range(0, len(m), cols)
    ]
    title = _grid_title(result, label, blocks, omitted)
    width = max(layout.gutter + cols * layout.cell, round(_font(14).getlength(title)) + 24)
    height = layout.title + sum(layout.row(r) for r in rows) + 6
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    draw.text((width // 2, 10), title, font=_font(14), fill="black", anchor="mt")
    y, row = layout.title, 0
    for lab, members, total in blocks:
        # one cluster's own figure leaves its number to the file name (cluster_NN.png) and
        # the report, so the figure of a cluster renumbered by another clustering is reused
        name = "noise" if lab < 0 else ("this cluster" if label is not None else f"cluster {lab}")
        shown = f"{len(members)} of {total} shown" if len(members) < total else f"{total} images"
        draw.multiline_text(
            (layout.gutter - 10, y + layout.caption + layout.box(rows[row]) // 2),
            f"{name}\n({shown})", font=_font(11), fill="black", anchor="rm", align="right",
            spacing=3,
        )  # fmt: skip
        for start in range(0, len(members), cols):
            box = layout.box(rows[row])
            for pos, idx in enumerate(members[start : start + cols]):
                at = (layout.gutter + pos * layout.cell, y, box)
                is_exemplar = result.clustering.exemplars.get(lab) == idx
                caption = _wrapped(result.ids[idx])
                _grid_cell(canvas, draw, thumbs[idx], at, layout, caption, is_exemplar)
            y += layout.row(rows[row])
            row += 1
    return canvas


def image_png(image: Image.Image) -> bytes:
    """Encode an image as PNG bytes (compression level 3, as :func:`figure_png`), its
    ``info["title"]``, when it has one, as the PNG's Title."""
    buf = io.BytesIO()
    info = None
    if image.info.get("title"):
        info = PngImagePlugin.PngInfo()
        info.add_itxt("Title", str(image.info["title"]))
    image.save(buf, format="png", compress_level=3, pnginfo=info)
    return buf.getvalue()


def equalization_figure(result: AnalysisResult) -> Figure:
    """Each measure per image before (grey) and after (colour), with the target."""
    eq = result.equalization
    if eq is None:
        raise ValueError("this analysis ran no equalization")
    n = len(eq.before)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(max(6.0, min(16.0, 0.18 * n + 4)), 7.5))
    axes = fig.subplots(3, 1, sharex=True)
    x = np.arange(n)
    units = {"brightness": "mean L*", "contrast": "std of L*", "sharpness": "mean |grad L*|"}
    for ax, m in zip(axes, ("brightness", "contrast", "sharpness"), strict=True):
        before = [row[m] for row in eq.before]
        after = [row[m] for row in eq.after]
        ax.plot(x, before, "o", color="0.65", markersize=4, label="before")
        ax.plot(
            x,
            after,
            "o",
            color="tab:blue" if m in eq.measures else "0.3",
            markersize=4,
            label="after" + ("" if m in eq.measures else " (not equalized)"),
        )
        if m in eq.measures:
            ax.axhline(eq.target[m], color="tab:red", linewidth=1, label="target")
        ax.set_ylabel(f"{m}\n({units[m]})", fontsize=8)
        ax.legend(fontsize=7, loc="upper right", ncols=3)
    if n <= 60:
        axes[-1].set_xticks(x, [i.split("/")[-1] for i in result.ids], rotation=90, fontsize=6)
    else:
        axes[-1].set_xlabel(f"{n} images (names omitted above 60)")
    fig.suptitle("Equalization: each image's measures before and after", fontsize=10)
    return fig


def alignment_figure(result: AnalysisResult) -> Figure:
    """Mean image before and after alignment, and each image's correlation with the others."""
    al = result.aligned
    n = len(al.images)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(max(8.0, min(16.0, 0.18 * n + 5)), 8))
    grid = fig.add_gridspec(2, 2, height_ratios=[1.2, 1])
    for col, (img, title) in enumerate(
        (
            (al.mean_before, "mean image before alignment"),
            (al.mean_after, "mean image after alignment"),
        )
    ):
        ax = fig.add_subplot(grid[0, col])
        if img is not None:
            ax.imshow(img, cmap="gray", vmin=0, vmax=1)
        ax.set_title(title, fontsize=9)
        ax.set_axis_off()
    ax = fig.add_subplot(grid[1, :])
    x = np.arange(n)
    before = [q.ncc_before for q in al.quality]
    after = [q.ncc_after for q in al.quality]
    ax.bar(x - 0.2, before, width=0.4, color="0.7", label="before")
    colours = ["tab:blue" if q.aligned else "tab:red" for q in al.quality]
    ax.bar(x + 0.2, after, width=0.4, color=colours, label="after (red: did not align)")
    ax.set_ylabel("correlation with the\nmean of the others", fontsize=8)
    ax.set_ylim(min(0.0, *before, *after) - 0.05 if n else 0.0, 1.0)
    ax.legend(fontsize=7, loc="lower right")
    if n <= 60:
        ax.set_xticks(x, [i.split("/")[-1] for i in result.ids], rotation=90, fontsize=6)
    else:
        ax.set_xlabel(f"{n} images (names omitted above 60)")
    fig.suptitle(f"Alignment: {al.method}, reference {al.reference}", fontsize=10)
    return fig
