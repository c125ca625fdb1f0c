"""Figures of the structure found, composed in pixels: 2-D embedding with thumbnails,
silhouettes, heatmaps (the dendrogram is in :mod:`.dendrogram`)."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from PIL import Image, ImageDraw
from scipy.cluster.hierarchy import dendrogram, linkage
from scipy.sparse.linalg import eigsh
from scipy.spatial.distance import squareform

from clustering import METHODS
from clustering.methods import MATRIX_LINKAGES

from ..pipeline import AnalysisResult
from ._base import _font, thumbnail
from ._pixels import BAR_MARGIN, colour_bar, coloured, dashed, nice_ticks, tick_text

__all__ = [
    "DENDROGRAM_LINKAGE",
    "EMBEDDINGS",
    "leaf_order",
    "scatter_figure",
    "silhouette_figure",
    "HeatmapContent",
    "heatmap_content",
    "similarity_heatmap",
]

#: Linkage of the dendrogram drawn (and of the heatmap's order) unless the clustering
#: itself was agglomerative with another linkage.
DENDROGRAM_LINKAGE = "average"

#: 2-D embeddings of the scatter plot; ``pca`` needs feature vectors.
EMBEDDINGS = ("mds", "tsne", "pca")

#: Most thumbnails drawn on the scatter plot; more images are drawn as points only.
MAX_SCATTER_THUMBS = 80
#: Above this many images the scatter uses classical MDS (seconds) instead of SMACOF
#: metric MDS (minutes at a few thousand images); the title says which.
MAX_SMACOF = 300

_NAME_LIMIT = 80

#: A heatmap draws its cluster boundaries up to this many (about one every 6 px of its
#: axis); more would cover the matrix in white.
MAX_BOUNDARY_LINES = 200

#: Above this many images a heatmap's cells are smaller than its pixels: the matrix is
#: averaged over square blocks of cells down to at most this many a side (as pixels
#: would average them) instead of sampled (a pixel showing one cell of several: at
#: 10,000 images the families vanished), from the compared pairs: matplotlib's own
#: averaging of 10,000 x 10,000 cells took 3 GB.
_NEAREST_LIMIT = 1000


def binned_matrix(matrix: Any, order: list[int], side: int) -> tuple[np.ndarray, int]:
    """``matrix`` in ``order``, averaged over blocks of ``f x f`` cells (``f`` the least
    that gives at most ``side`` blocks a side; the last block of a row may be smaller),
    and ``f``. Pairs not compared count as 0, the diagonal as 1. From ``upper()``, the
    compared pairs: no n x n array."""
    n = len(order)
    f = max(1, -(-n // side))
    m = -(-n // f)
    position = np.empty(n, np.int64)
    position[np.asarray(order, np.int64)] = np.arange(n)
    pairs, values = matrix.upper()
    a, b = position[pairs[:, 0]] // f, position[pairs[:, 1]] // f
    sums = np.bincount(a * m + b, weights=values, minlength=m * m)
    sums += np.bincount(b * m + a, weights=values, minlength=m * m)
    diagonal = np.arange(n) // f
    sums += np.bincount(diagonal * m + diagonal, minlength=m * m)
    sizes = np.bincount(diagonal, minlength=m).astype(np.float64)
    return sums.reshape(m, m) / np.outer(sizes, sizes), f


def _palette(k: int) -> list[tuple[int, int, int]]:
    """A colour a cluster (RGB, 0-255): matplotlib's tab10, or tab20 past ten clusters."""
    from matplotlib import colormaps

    cmap = colormaps["tab20"] if k > 10 else colormaps["tab10"]
    return [
        (round(255 * r), round(255 * g), round(255 * b))
        for r, g, b, _ in (cmap(i % cmap.N) for i in range(max(k, 1)))
    ]


def _cuts_this_tree(result: AnalysisResult) -> bool:
    """Whether the clusters come from a hierarchical method (one with linkages): then its
    cut is drawn on the dendrogram."""
    return bool(METHODS[result.clustering.method].linkages)


def _tree(result: AnalysisResult) -> tuple[np.ndarray, str]:
    c = result.clustering
    method = DENDROGRAM_LINKAGE
    cfg = result.config.clustering
    if _cuts_this_tree(result) and cfg.linkage in MATRIX_LINKAGES:
        method = cfg.linkage
    dist = (
        c.distance
        if c.distance is not None
        else result.matrices[result.clustering_metric].distance()
    )
    return linkage(squareform(dist, checks=False), method=method), method


def leaf_order(result: AnalysisResult) -> list[int]:
    """Image indices in the dendrogram's leaf order (similar images side by side)."""
    if len(result.ids) < 2:
        return list(range(len(result.ids)))
    tree, _ = _tree(result)
    return [int(i) for i in dendrogram(tree, no_plot=True)["leaves"]]


def _embedding(result: AnalysisResult, kind: str, seed: int) -> np.ndarray:
    c = result.clustering
    n = len(result.ids)
    if n < 3:
        return np.column_stack([np.arange(n, dtype=float), np.zeros(n)])
    # scikit-learn here, not at import: it takes 1.4 s (clustering/methods.py)
    from sklearn.decomposition import PCA
    from sklearn.manifold import MDS, TSNE

    if kind == "pca":
        if c.consumes != "features" or c.coords is None:
            raise ValueError("the pca embedding needs feature vectors: set clustering.features")
        return PCA(n_components=2, random_state=seed).fit_transform(c.coords)
    matrix = result.matrices[result.clustering_metric]
    if kind == "mds" and n > MAX_SMACOF and c.distance is None and matrix.partial:
        return _classical_2d_pairs(matrix)
    dist = (
        c.distance
        if c.distance is not None
        else result.matrices[result.clustering_metric].distance()
    )
    if kind == "tsne":
        perplexity = float(min(30.0, max(2.0, (n - 1) / 3)))
        return TSNE(
            n_components=2,
            metric="precomputed",
            init="random",
            perplexity=perplexity,
            random_state=seed,
        ).fit_transform(dist)
    if n > MAX_SMACOF:
        return _classical_2d(dist)
    # one SMACOF run from classical MDS: on 72 images at 640 px the same stress (0.360)
    # as the best of four random starts, in 0.06 s instead of 0.44 s. Our classical axes,
    # not scikit-learn's: its own start gave NaN where an axis' eigenvalue is negative
    # (three images); a start with no spread takes the random starts
    start = _classical_2d(dist)
    if not np.any(dist):  # identical images: one point
        return start
    mds = MDS(n_components=2, metric="precomputed", random_state=seed, init="random")
    if np.isfinite(start).all() and np.ptp(start) > 0:
        return mds.set_params(n_init=1).fit_transform(dist, init=start)
    return mds.set_params(n_init=4).fit_transform(dist)


def _classical_2d(dist: np.ndarray) -> np.ndarray:
    """The two leading axes of Torgerson's classical MDS, in O(n^2) memory and time
    (double centring by row and column means; two eigenvectors by Lanczos)."""
    sq = np.asarray(dist, np.float64) ** 2
    row = sq.mean(axis=1)
    b = -0.5 * (sq - row[:, None] - row[None, :] + row.mean())
    if not b.any():  # every distance 0: every image at the origin (ARPACK would fail)
        return np.zeros((len(b), 2))
    evals, evecs = eigsh(b, k=2, which="LA", v0=np.ones(len(b)))
    return _leading_axes(evals, evecs)


def _classical_2d_pairs(matrix: Any) -> np.ndarray:
    """:func:`_classical_2d` of a shortlist's distances (every pair not compared at 1)
    from its compared pairs, in O(pairs) memory: at 10,000 images the n x n squares
    and their centring took 3 GB. With ``E`` the sparse matrix of ``1 - d^2`` on the
    compared pairs, the squared distances are ``11' - I - E``, so the doubly centred
    ``B = J (I + E) J / 2`` (``J`` the centring, which removes ``11'``); Lanczos needs
    only its products with vectors. The same axes as the dense form (tested)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.linalg import LinearOperator

    n = len(matrix)
    pairs, sims = matrix.upper()
    e = 1.0 - (1.0 - sims) ** 2
    i, j = pairs[:, 0], pairs[:, 1]
    graph = coo_matrix(
        (np.concatenate([e, e]), (np.concatenate([i, j]), np.concatenate([j, i]))), shape=(n, n)
    ).tocsr()

    def product(v: np.ndarray) -> np.ndarray:
        v = np.asarray(v, np.float64).reshape(-1)
        centred = v - v.mean()
        out = centred + graph @ centred
        return 0.5 * (out - out.mean())

    b = LinearOperator((n, n), matvec=product, dtype=np.float64)
    # a fixed start (not ones, which B maps to exactly 0): the same figure every run
    evals, evecs = eigsh(b, k=2, which="LA", v0=np.cos(np.arange(n)))
    return _leading_axes(evals, evecs)


def _leading_axes(evals: np.ndarray, evecs: np.ndarray) -> np.ndarray:
    """Coordinates on the two leading eigenvectors, each axis' sign fixed so its largest
    coordinate is positive (the same picture from run to run)."""
    order = np.argsort(evals)[::-1]
    coords = evecs[:, order] * np.sqrt(np.maximum(evals[order], 0.0))
    flip = np.sign(coords[np.argmax(np.abs(coords), axis=0), [0, 1]])
    return coords * np.where(flip == 0, 1.0, flip)


def _scatter_marks(
    canvas: Image.Image, xy: np.ndarray, labels: np.ndarray, palette: list[tuple[int, int, int]]
) -> None:
    """Each image's point at its pixel position: a disc in its cluster's colour, a black x
    for noise (drawn over the discs)."""
    draw = ImageDraw.Draw(canvas)
    for (x, y), lab in zip(xy.tolist(), labels.tolist(), strict=True):
        if lab >= 0:
            draw.ellipse((x - 5, y - 5, x + 5, y + 5), fill=palette[lab % len(palette)])
    for (x, y), lab in zip(xy.tolist(), labels.tolist(), strict=True):
        if lab < 0:
            draw.line((x - 6, y - 6, x + 6, y + 6), fill="black", width=2)
            draw.line((x - 6, y + 6, x + 6, y - 6), fill="black", width=2)


def scatter_figure(result: AnalysisResult, *, embedding: str = "mds") -> Image.Image:
    """A 2-D embedding of the distances with thumbnails at the points, clusters coloured;
    an RGB image (:func:`~app.plots.image_png` encodes it) whose ``info["title"]`` holds
    its title.

    MDS (metric, seeded) of the distance matrix by default; t-SNE (seeded) or,
    for feature methods, PCA of the features. Noise is marked with a black x.
    Above ``MAX_SCATTER_THUMBS`` images a sample of thumbnails is drawn (said in
    the title); every image is a point. Composed in pixels (:mod:`._pixels`).
    """
    if embedding not in EMBEDDINGS:
        raise ValueError(f"unknown embedding {embedding!r}; valid: {', '.join(EMBEDDINGS)}")
    c = result.clustering
    seed = result.config.random_state
    xy = _embedding(result, embedding, seed)
    n = len(result.ids)
    palette = _palette(c.k)
    width, height, top, pad = 880, 700, 30, 10  # the plot's frame, inside the title's band
    low = xy.min(axis=0)
    span = float(np.ptp(xy, axis=0).max()) or 1.0
    # 12 % of the larger span around the points, each axis scaled to fill the frame
    scale = np.array([width, height]) / (np.ptp(xy, axis=0) + 0.24 * span)
    at = (xy - low + 0.12 * span) * scale
    at[:, 1] = height - at[:, 1]  # y upwards
    plot = Image.new("RGB", (width, height), "white")
    _scatter_marks(plot, at, c.labels, palette)
    rng = np.random.default_rng(seed)
    shown = (
        np.arange(n)
        if n <= MAX_SCATTER_THUMBS
        else np.sort(rng.choice(n, MAX_SCATTER_THUMBS, replace=False))
    )
    side = 44 if n <= 30 else 28
    draw = ImageDraw.Draw(plot)
    for i in shown.tolist():
        lab = int(c.labels[i])
        thumb = Image.fromarray(thumbnail(result.images[result.ids[i]].pixels, side=side))
        if thumb.mode != "RGB":
            thumb = thumb.convert("RGB")
        x = round(at[i, 0]) - thumb.width // 2
        y = round(at[i, 1]) - thumb.height // 2
        edge = (0, 0, 0) if lab < 0 else palette[lab % len(palette)]
        draw.rectangle((x - 4, y - 4, x + thumb.width + 3, y + thumb.height + 3), fill="white")
        draw.rectangle(
            (x - 4, y - 4, x + thumb.width + 3, y + thumb.height + 3), outline=edge, width=2
        )
        plot.paste(thumb, (x, y))
    sampled = (
        f"; thumbnails for {len(shown)} of {n} images (random sample, seed {seed})"
        if len(shown) < n
        else ""
    )
    name = "classical MDS" if embedding == "mds" and n > MAX_SMACOF else embedding.upper()
    title = (
        f"{name} of the {result.clustering_metric} distances: frame colour "
        f"= cluster, x = noise{sampled}"
    )
    outer = max(width + 2 * pad + 2, round(_font(12).getlength(title)) + 24)
    canvas = Image.new("RGB", (outer, top + height + pad + 2), "white")
    left = (outer - width) // 2
    canvas.paste(plot, (left, top + 1))
    draw = ImageDraw.Draw(canvas)
    draw.rectangle((left - 1, top, left + width, top + height + 1), outline="black")
    draw.text((canvas.width // 2, 8), title, font=_font(12), fill="black", anchor="mt")
    canvas.info["title"] = title
    return canvas


def _silhouette_bars(
    draw: ImageDraw.ImageDraw, groups: list[tuple[int, np.ndarray]], box: tuple[int, int, int],
    x_at: Any, row: float, palette: list[tuple[int, int, int]],
) -> None:  # fmt: skip
    """Each image's bar from 0 to its value, a cluster's sorted, the cluster's number (or
    "noise") beside its group where the group has room for it."""
    left, top, _ = box
    y = 0.0
    font = _font(9)
    for lab, vals in groups:
        colour = (77, 77, 77) if lab < 0 else palette[lab % len(palette)]
        zero = x_at(0.0)
        for k, v in enumerate(vals.tolist()):
            y0 = top + (y + k) * row
            y1 = max(y0, top + (y + k + 1) * row - 1)  # inclusive: bars touch
            if v == v:  # not NaN
                draw.rectangle((min(zero, x_at(v)), y0, max(zero, x_at(v)), y1), fill=colour)
        if len(vals) * row >= 9:
            middle = top + (y + len(vals) / 2) * row
            name = "noise" if lab < 0 else str(lab)
            draw.text((left - 5, middle), name, font=font, fill="black", anchor="rm")
        y += len(vals) + 1


def silhouette_figure(result: AnalysisResult) -> Image.Image:
    """Per-image silhouette, grouped by cluster, with the mean marked (red dashes); an RGB
    image whose ``info["title"]`` holds its title. A bar is 12 px high up to 300 images;
    past that the figure stops at about 3,600 px and reads as each cluster's profile.
    Composed in pixels (:mod:`._pixels`)."""
    c = result.clustering
    values = np.asarray(c.silhouette, dtype=float)
    title = (
        "Silhouette of each image by cluster: near 1 = clearly in its cluster, "
        "below 0 = closer to another"
    )
    width, left, top = 640, 60, 34
    if not np.isfinite(values).any():
        canvas = Image.new("RGB", (width + left + 20, 300), "white")
        draw = ImageDraw.Draw(canvas)
        draw.text((canvas.width // 2, 150), "silhouette undefined (one cluster, or one per "
                  "image)", font=_font(12), fill="black", anchor="mm")  # fmt: skip
        canvas.info["title"] = title
        return canvas
    palette = _palette(c.k)
    groups = [
        (lab, np.sort(values[c.labels == lab]))
        for lab in sorted(set(c.labels.tolist()), key=lambda v: (v < 0, v))
    ]
    rows = len(values) + len(groups) - 1
    row = min(12.0, 3600.0 / rows)
    height = max(120, round(rows * row))
    low = min(-0.1, float(np.nanmin(values)) - 0.05)
    ticks = nice_ticks(low, 1.0)

    def x_at(v: float) -> float:
        return left + (v - low) / (1.0 - low) * width

    canvas = Image.new("RGB", (left + width + 20, top + height + 44), "white")
    draw = ImageDraw.Draw(canvas)
    _silhouette_bars(draw, groups, (left, top, width), x_at, row, palette)
    mean = float(np.nanmean(values))
    dashed(draw, (x_at(mean), top), (x_at(mean), top + height))
    draw.rectangle((left, top, left + width, top + height), outline="black")
    font = _font(10)
    for t in ticks:
        draw.line((x_at(t), top + height, x_at(t), top + height + 4), fill="black")
        draw.text((x_at(t), top + height + 6), tick_text(t, ticks), font=font, fill="black",
                  anchor="mt")  # fmt: skip
    # the mean in the label, not in a legend box, which would sit on the bars near 1
    label = f"silhouette (on the distances clustered); red dashes: the mean, {mean:.3f}"
    draw.text((left + width // 2, top + height + 24), label, font=_font(11), fill="black",
              anchor="mt")  # fmt: skip
    draw.text((canvas.width // 2, 10), title, font=_font(11), fill="black", anchor="mt")
    canvas.info["title"] = title
    return canvas


class HeatmapContent(NamedTuple):
    """What a heatmap shows: the cells (in leaf order; blocks of ``block`` x ``block``
    cells averaged past :data:`_NEAREST_LIMIT` images), the positions between cells where
    the cluster changes (in cells, from 0), whether they are drawn, the names along the
    axes (None above :data:`_NAME_LIMIT` images) and the title."""

    values: np.ndarray
    block: int
    bounds: np.ndarray
    lines: bool
    names: list[str] | None
    title: str


def heatmap_content(result: AnalysisResult, metric: str) -> HeatmapContent:
    """A similarity matrix in the dendrogram's leaf order, with where its clusters change."""
    order = leaf_order(result)
    matrix = result.matrices[metric]
    labels = result.clustering.labels[order]
    n = len(order)
    if n <= _NEAREST_LIMIT:
        values, block = matrix.values[np.ix_(order, order)], 1
    else:  # cells smaller than pixels: blocks of cells averaged (see _NEAREST_LIMIT)
        values, block = binned_matrix(matrix, order, _NEAREST_LIMIT)
    # where the cluster changes along the order; more lines than the axis can part cover
    # the matrix in white (2,085 clusters at 10,000 images)
    bounds = np.flatnonzero(np.diff(labels)) + 1
    lines = bool(bounds.size) and bounds.size <= MAX_BOUNDARY_LINES
    names = [result.ids[i].split("/")[-1] for i in order] if n <= _NAME_LIMIT else None
    where = (
        "white lines: where the cluster changes"
        if lines or not bounds.size
        # the clusters the result has (noise not one), not the runs of labels along
        # the order: 746 clusters with their noise between them made 2,210 runs
        else f"{len(set(labels.tolist()) - {-1})} clusters, too many to draw their "
        f"boundaries ({bounds.size} along this order, at most {MAX_BOUNDARY_LINES})"
    )
    title = f"{metric} similarity in dendrogram order ({where})"
    return HeatmapContent(np.asarray(values, np.float64), block, bounds, lines, names, title)


def _name_strip(names: list[str], cell: int, size: int) -> Image.Image:
    """The names as a strip of rows ``cell`` pixels apart, right-aligned: the rows' labels
    as they are, the columns' once turned a quarter (reading upwards, ending at the matrix)."""
    font = _font(size)
    width = max(round(font.getlength(name)) for name in names) + 8
    strip = Image.new("RGB", (width, cell * len(names)), "white")
    draw = ImageDraw.Draw(strip)
    for k, name in enumerate(names):
        draw.text((width - 5, k * cell + cell / 2), name, font=font, fill="black", anchor="rm")
    return strip


def similarity_heatmap(result: AnalysisResult, metric: str) -> Image.Image:
    """A similarity matrix in the dendrogram's leaf order, with cluster boundaries drawn
    (white lines), the names along both axes up to :data:`_NAME_LIMIT` images, and a colour
    bar; an RGB image (:func:`~app.plots.image_png` encodes it).

    Composed in pixels as the cluster grids are (cells coloured by matplotlib's viridis,
    text in its DejaVu Sans): through matplotlib's axes the 144 names of 72 images took
    about 1.2 s of a heatmap's 1.7 s (matplotlib 3.11 lays each text out with libraqm).
    """
    content = heatmap_content(result, metric)
    n, m = len(result.ids), len(content.values)
    cell = max(1, min(40, 960 // m))  # pixels a row of values takes
    side = cell * m
    matrix = Image.fromarray(np.ascontiguousarray(coloured(content.values, "viridis")))
    matrix = matrix.resize((side, side), Image.Resampling.NEAREST)
    if content.lines:
        draw = ImageDraw.Draw(matrix)
        width = 2 if side / n >= 8 else 1
        for b in content.bounds.tolist():
            at = round(b * side / n) - width // 2
            draw.rectangle((at, 0, at + width - 1, side - 1), fill="white")
            draw.rectangle((0, at, side - 1, at + width - 1), fill="white")
    if content.names is not None:
        size = int(np.clip(cell - 3, 7, 11))
        rows = _name_strip(content.names, cell, size)
        columns = rows.transpose(Image.Transpose.ROTATE_90)
    else:
        rows = Image.new("RGB", (12, side), "white")
        columns = Image.new("RGB", (side, 30), "white")
        note = f"{n} images (names omitted above {_NAME_LIMIT})"
        draw = ImageDraw.Draw(columns)
        draw.text((side // 2, 15), note, font=_font(12), fill="black", anchor="mm")
    bar = colour_bar(side, "viridis", f"{metric} similarity")
    top, pad = 34, 12
    title_width = round(_font(13).getlength(content.title)) + 24
    width = max(pad + rows.width + side + 16 + bar.width + pad, title_width)
    canvas = Image.new("RGB", (round(width), top + side + columns.height + pad), "white")
    draw = ImageDraw.Draw(canvas)
    draw.text((canvas.width // 2, 12), content.title, font=_font(13), fill="black", anchor="mt")
    left = pad + rows.width
    canvas.paste(rows, (pad, top))
    canvas.paste(matrix, (left, top))
    canvas.paste(columns, (left, top + side))
    canvas.paste(bar, (left + side + 16, top - BAR_MARGIN))
    return canvas
