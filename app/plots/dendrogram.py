"""The dendrogram, composed in pixels (:mod:`._pixels`): through matplotlib's axes its 72
leaf names took most of its 1.0-1.9 s (matplotlib 3.11 lays each text out with libraqm),
and every analysis draws one."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from PIL import Image, ImageDraw
from scipy.cluster.hierarchy import dendrogram

from ..pipeline import AnalysisResult
from ._base import _font
from ._pixels import dashed, nice_ticks, tick_text, turned
from .structure import _NAME_LIMIT, _cuts_this_tree, _palette, _tree

__all__ = ["DendrogramContent", "dendrogram_content", "dendrogram_figure"]


class DendrogramContent(NamedTuple):
    """What a dendrogram shows: scipy's links (``icoord``, ``dcoord``: leaf ``k`` at
    ``5 + 10 k``), each leaf's square colour in leaf order (RGB; black for noise), the cut
    as (height, legend) when the clustering cut this tree, the leaves' names (None above
    :data:`_NAME_LIMIT` images), the axes' labels and the title."""

    icoord: np.ndarray
    dcoord: np.ndarray
    squares: list[tuple[int, int, int]]
    cut: tuple[float, str] | None
    names: list[str] | None
    ylabel: str
    xlabel: str
    title: str


def dendrogram_content(result: AnalysisResult) -> DendrogramContent:
    """The hierarchy of the clustered distances, leaves coloured by cluster, the linkage
    stated; needs two images or more."""
    n = len(result.ids)
    c = result.clustering
    tree, method = _tree(result)
    info = dendrogram(tree, no_plot=True, color_threshold=0)
    leaves = np.asarray(info["leaves"], dtype=int)
    palette = _palette(c.k)
    squares = [
        (0, 0, 0) if lab < 0 else palette[lab % len(palette)] for lab in c.labels[leaves].tolist()
    ]
    cut = None
    if _cuts_this_tree(result) and c.criterion == "threshold":
        cut = (1.0 - float(result.config.clustering.threshold or 0), "similarity threshold")
    elif _cuts_this_tree(result) and 1 < c.k <= n - 1:
        heights = np.sort(tree[:, 2])
        cut = (float(heights[n - c.k] + heights[n - c.k - 1]) / 2, f"cut: {c.k} clusters")
    names = [result.ids[i].split("/")[-1] for i in leaves] if n <= _NAME_LIMIT else None
    return DendrogramContent(
        np.asarray(info["icoord"], np.float64),
        np.asarray(info["dcoord"], np.float64),
        squares,
        cut,
        names,
        "distance (1 - similarity)"
        if c.consumes != "features"
        else "Euclidean distance of the features",
        "" if names is not None else f"{n} images (names omitted above {_NAME_LIMIT})",
        f"Dendrogram, {method} linkage of the {result.clustering_metric} distances; "
        f"squares: the {c.k} clusters of {c.method} (black: noise)",
    )


def _links(draw: ImageDraw.ImageDraw, content: DendrogramContent, box: tuple, top: float) -> None:
    """Every link as matplotlib's dendrogram draws it (three segments), in grey."""
    left, upper, width, height = box
    n = len(content.squares)
    xs = left + content.icoord / (10 * n) * width
    ys = upper + height - content.dcoord / top * height
    for x, y in zip(xs.tolist(), ys.tolist(), strict=True):
        draw.line(list(zip(x, y, strict=True)), fill=(102, 102, 102), width=2)


def dendrogram_figure(result: AnalysisResult) -> Image.Image:
    """The hierarchy of the clustered distances, leaves coloured by cluster, the linkage
    stated; an RGB image (:func:`~app.plots.image_png` encodes it) whose ``info["title"]``
    holds its title. Names under the leaves up to :data:`_NAME_LIMIT` images; above, a
    note says how many images there are (a name a leaf would be an illegible band)."""
    n = len(result.ids)
    width = round(100 * min(18.0, max(7.0, 0.22 * n + 3)))
    if n < 2:
        canvas = Image.new("RGB", (width, 200), "white")
        text = "one image: no hierarchy"
        draw = ImageDraw.Draw(canvas)
        draw.text((width // 2, 100), text, font=_font(13), fill="black", anchor="mm")
        canvas.info["title"] = text
        return canvas
    content = dendrogram_content(result)
    width = max(width, round(_font(12).getlength(content.title)) + 24)
    font = _font(11)
    top = float(content.dcoord.max()) * 1.05 or 1.0
    ticks = nice_ticks(0.0, top)
    label = turned(content.ylabel, 12)
    texts = [tick_text(t, ticks) for t in ticks]
    tick_w = max(round(font.getlength(text)) for text in texts)
    left, upper, height = label.width + tick_w + 20, 40, 440
    names = None
    if content.names is not None:
        names = [turned(name, 9) for name in content.names]
    below = 14 + (max(im.height for im in names) if names else 24)
    canvas = Image.new("RGB", (width, upper + height + below + 8), "white")
    draw = ImageDraw.Draw(canvas)
    plot_w = width - left - 16
    box = (left, upper, plot_w, height)
    draw.text((width // 2, 14), content.title, font=_font(12), fill="black", anchor="mt")
    for t, text in zip(ticks, texts, strict=True):
        y = upper + height - round(t / top * height)
        draw.line((left - 4, y, left, y), fill="black")
        draw.text((left - 7, y), text, font=font, fill="black", anchor="rm")
    canvas.paste(label, (6, upper + (height - label.height) // 2))
    _links(draw, content, box, top)
    if content.cut is not None:
        y = upper + height - round(content.cut[0] / top * height)
        dashed(draw, (left, y), (left + plot_w, y), dash=5, period=10)
        legend_w = round(font.getlength(content.cut[1])) + 44
        draw.rectangle((left + plot_w - legend_w - 8, upper + 8, left + plot_w - 8, upper + 30),
                       fill="white", outline=(190, 190, 190))  # fmt: skip
        key = left + plot_w - legend_w
        dashed(draw, (key, upper + 19), (key + 24, upper + 19), dash=5, period=10)
        draw.text((left + plot_w - legend_w + 30, upper + 19), content.cut[1], font=font,
                  fill="black", anchor="lm")  # fmt: skip
    draw.rectangle((left, upper, left + plot_w, upper + height), outline="black")
    step = plot_w / n
    half = max(1, min(4, round(step / 3)))
    for k, colour in enumerate(content.squares):
        x = left + round((k + 0.5) * step)
        base = upper + height
        draw.rectangle((x - half, base - half, x + half, base + half), fill=colour)
        if names is not None:
            canvas.paste(names[k], (x - names[k].width // 2, upper + height + 8))
    if content.xlabel:
        draw.text((left + plot_w // 2, upper + height + 16), content.xlabel, font=font,
                  fill="black", anchor="mt")  # fmt: skip
    canvas.info["title"] = content.title
    return canvas
