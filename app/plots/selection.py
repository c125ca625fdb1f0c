"""The choice of k, composed in pixels (:mod:`._pixels`): four small line charts took
0.5-0.6 s through matplotlib's axes, 0.02 s here."""

from __future__ import annotations

from PIL import Image, ImageDraw

from ..pipeline import AnalysisResult
from ._base import _font
from ._pixels import line_chart, titled

__all__ = ["k_selection_figure"]

#: Each criterion of the choice of k and which way is better.
CRITERIA = (
    ("silhouette", "higher is better"),
    ("davies-bouldin", "lower is better"),
    ("calinski-harabasz", "higher is better"),
    ("derivative", "higher is better (agglomerative)"),
)

_PLOT = (460, 210)


def _not_defined(text: str) -> Image.Image:
    image = Image.new("RGB", (_PLOT[0] + 60, _PLOT[1] + 58), "white")
    draw = ImageDraw.Draw(image)
    draw.text((image.width // 2, image.height // 2), text, font=_font(11), fill=(102, 102, 102),
              anchor="mm")  # fmt: skip
    return image


def k_selection_figure(result: AnalysisResult) -> Image.Image:
    """Each criterion's score per k, the chosen k marked (red dashed line), the criterion
    that chose in blue and the others grey, a criterion not defined for the method said
    so; an RGB image whose ``info["title"]`` holds its title."""
    c = result.clustering
    ks = [r["k"] for r in c.selection]
    charts = []
    for name, sense in CRITERIA:
        values = [float("nan") if r.get(name) is None else float(r[name]) for r in c.selection]
        if not any(v == v for v in values):  # all NaN
            charts.append(_not_defined(f"{name}: not defined for {c.method}"))
            continue
        chosen = name == c.criterion
        charts.append(
            line_chart(
                ks,
                values,
                size=_PLOT,
                colour=(31, 119, 180) if chosen else (140, 140, 140),
                title=f"{name} ({sense})" + ("  - chose k" if chosen else ""),
                xlabel="k",
                vline=c.k,
            )  # fmt: skip
        )
    width = max(chart.width for chart in charts)
    height = max(chart.height for chart in charts)
    rows = []
    for pair in (charts[:2], charts[2:]):
        row = Image.new("RGB", (2 * width + 24, height), "white")
        for k, chart in enumerate(pair):
            row.paste(chart, (k * (width + 24), 0))
        rows.append(row)
    grid = Image.new("RGB", (rows[0].width, 2 * height + 16), "white")
    grid.paste(rows[0], (0, 0))
    grid.paste(rows[1], (0, height + 16))
    return titled([grid], f"Choice of k for {c.method}: k = {c.k} (red line)")
