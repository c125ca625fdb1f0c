"""Figures composed in pixels with Pillow: colour maps as matplotlib's, colour bars, titled
panels and dots. Through matplotlib's axes a figure spends most of its time laying out its
text (libraqm in matplotlib 3.11) and resampling its images; composed here it costs a
tenth of that and looks the same."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import cv2
import numpy as np
from PIL import Image, ImageDraw

from ._base import _font

__all__ = [
    "RED", "coloured", "colour_bar", "dashed", "dots", "fit", "gray_rgb", "line_chart",
    "nice_ticks", "panel", "tick_text", "titled", "turned",
]  # fmt: skip

#: Pixels a colour bar reaches past its ramp, above and below: its end labels.
BAR_MARGIN = 8

#: The red that marks a choice on a figure (the chosen k, the cut, the mean): tab:red.
RED = (214, 39, 40)


@functools.cache
def _lut(name: str) -> np.ndarray:
    from matplotlib import colormaps

    return (colormaps[name](np.linspace(0.0, 1.0, 256))[:, :3] * 255 + 0.5).astype(np.uint8)


def coloured(values: np.ndarray, name: str, vmin: float = 0.0, vmax: float = 1.0) -> np.ndarray:
    """``values`` between ``vmin`` and ``vmax`` (clipped; NaN as ``vmin``) as RGB uint8 in
    matplotlib's colour map ``name``, 256 levels as matplotlib draws it."""
    span = max(vmax - vmin, 1e-12)
    scaled = (np.nan_to_num(np.asarray(values, np.float64), nan=vmin) - vmin) / span
    index = np.clip(scaled * 255 + 0.5, 0, 255).astype(np.intp)
    return _lut(name)[index]


def gray_rgb(image: np.ndarray) -> np.ndarray:
    """A gray image in [0, 1] as RGB uint8."""
    gray = (np.clip(np.nan_to_num(image), 0.0, 1.0) * 255 + 0.5).astype(np.uint8)
    return np.repeat(gray[:, :, None], 3, axis=2)


def fit(rgb: np.ndarray, height: int) -> np.ndarray:
    """``rgb`` scaled to ``height`` rows (area averaging down, linear up)."""
    rows, cols = rgb.shape[:2]
    width = max(1, round(cols * height / rows))
    if (rows, cols) == (height, width):
        return rgb
    how = cv2.INTER_AREA if height < rows else cv2.INTER_LINEAR
    return cv2.resize(rgb, (width, height), interpolation=how)


def dots(
    canvas: np.ndarray,
    xy: np.ndarray,
    colour: np.ndarray | Sequence[int],
    *,
    radius: float = 1.0,
    alpha: float = 1.0,
) -> None:
    """Round dots of ``radius`` pixels centred at ``xy`` (``(col, row)``, float) painted on
    ``canvas`` (RGB uint8, in place), one colour or one per dot, blended by ``alpha``; dots
    outside the canvas are left out. Where dots overlap, a pixel takes one of their
    colours (dots drawn by a later call cover those of an earlier one)."""
    rows, cols = canvas.shape[:2]
    centre = np.rint(np.asarray(xy, np.float64)).astype(np.intp).reshape(-1, 2)
    colours = np.broadcast_to(np.asarray(colour, np.float32), (len(centre), 3))
    r = int(np.ceil(radius))
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            if dx * dx + dy * dy > radius * radius + 0.25:
                continue
            x, y = centre[:, 0] + dx, centre[:, 1] + dy
            keep = (x >= 0) & (x < cols) & (y >= 0) & (y < rows)
            under = canvas[y[keep], x[keep]].astype(np.float32)
            mixed = alpha * colours[keep] + (1.0 - alpha) * under
            canvas[y[keep], x[keep]] = (mixed + 0.5).astype(np.uint8)


def dashed(
    draw: ImageDraw.ImageDraw,
    start: tuple[float, int] | tuple[int, float],
    end: tuple[float, int] | tuple[int, float],
    *,
    colour: tuple[int, int, int] = RED,
    dash: int = 4,
    period: int = 8,
) -> None:
    """A dashed horizontal or vertical line from ``start`` to ``end`` (``(x, y)``; the
    coordinate along the line a whole pixel): ``dash`` pixels drawn every ``period``."""
    (x0, y0), (x1, y1) = start, end
    if y0 == y1:
        for x in range(int(x0), int(x1), period):
            draw.line((x, y0, min(x + dash, x1), y0), fill=colour)
    else:
        for y in range(int(y0), int(y1), period):
            draw.line((x0, y, x0, min(y + dash, y1)), fill=colour)


def turned(text: str, size: int) -> Image.Image:
    """``text`` as an image turned a quarter (reading upwards)."""
    font = _font(size)
    label = Image.new("RGB", (round(font.getlength(text)) + 8, size + 7), "white")
    ImageDraw.Draw(label).text((4, label.height // 2), text, font=font, fill="black", anchor="lm")
    return label.transpose(Image.Transpose.ROTATE_90)


def colour_bar(
    height: int,
    name: str,
    label: str,
    *,
    vmin: float = 0.0,
    vmax: float = 1.0,
    ticks: Sequence[float] | None = None,
    marks: Sequence[float] = (),
) -> Image.Image:
    """A vertical bar of colour map ``name`` from ``vmin`` (bottom) to ``vmax`` (top), its
    ramp ``height`` pixels starting :data:`BAR_MARGIN` pixels below the image's top, ticks
    labelled (every fifth of the range unless given), white lines across the ramp at
    ``marks``, and ``label`` turned a quarter beside it."""
    bar_w, font, top = 18, _font(11), BAR_MARGIN
    ramp = coloured(np.linspace(vmax, vmin, height), name, vmin, vmax)
    ramp = np.ascontiguousarray(ramp[:, None, :].repeat(bar_w, axis=1))
    ticks = list(np.linspace(vmin, vmax, 6)) if ticks is None else list(ticks)
    texts = [tick_text(t, ticks) for t in ticks]
    room = max(round(font.getlength(t)) for t in texts) + 20
    label_image = turned(label, 11)
    size = (bar_w + room + label_image.width, max(height, label_image.height) + 2 * top)
    image = Image.new("RGB", size, "white")
    image.paste(Image.fromarray(ramp), (0, top))
    draw = ImageDraw.Draw(image)

    def at(value: float) -> int:
        return top + round((vmax - value) / max(vmax - vmin, 1e-12) * (height - 1))

    for mark in marks:
        y = at(min(max(mark, vmin), vmax))
        draw.rectangle((0, y - 1, bar_w - 1, y), fill="white")
    draw.rectangle((0, top, bar_w - 1, top + height - 1), outline="black")
    for tick, text in zip(ticks, texts, strict=True):
        y = at(tick)
        draw.line((bar_w, y, bar_w + 3, y), fill="black")
        draw.text((bar_w + 6, y), text, font=font, fill="black", anchor="lm")
    image.paste(label_image, (bar_w + room, top + (height - label_image.height) // 2))
    return image


def panel(
    rgb: np.ndarray | Image.Image, title: str, *, bar: Image.Image | None = None, size: int = 11
) -> Image.Image:
    """An image in a black frame with its (multi-line) title centred above it and, when
    given, a :func:`colour_bar` (made for the image's height) beside it."""
    image = rgb if isinstance(rgb, Image.Image) else Image.fromarray(np.ascontiguousarray(rgb))
    font = _font(size)
    lines = title.split("\n")
    band = len(lines) * (size + 4) + 8
    body = image.width + 2 + (8 + bar.width if bar is not None else 0)
    text = max(round(font.getlength(t)) for t in lines)
    width = max(body, text + 8)
    out = Image.new("RGB", (width, band + image.height + 2 + BAR_MARGIN), "white")
    left = (width - body) // 2 + 1
    out.paste(image, (left, band + 1))
    if bar is not None:
        out.paste(bar, (left + image.width + 9, band + 1 - BAR_MARGIN))
    draw = ImageDraw.Draw(out)
    draw.rectangle((left - 1, band, left + image.width, band + image.height + 1), outline="black")
    # over the image, unless the title is wider than the room that leaves it
    centre = min(max(left + image.width // 2, text // 2 + 4), width - text // 2 - 4)
    draw.multiline_text(
        (centre, band - 5), title, font=font, fill="black", anchor="md",
        align="center", spacing=4,
    )  # fmt: skip
    return out


def titled(
    parts: Sequence[Image.Image], title: str, *, gap: int = 24, size: int = 13
) -> Image.Image:
    """``parts`` side by side, aligned at their bottoms, under a centred (multi-line) title.
    The title is kept as the image's ``info["title"]`` (and written into its PNG)."""
    font = _font(size)
    lines = title.split("\n")
    band = len(lines) * (size + 5) + 14
    body = sum(p.width for p in parts) + gap * (len(parts) - 1)
    width = max(body, max(round(font.getlength(t)) for t in lines) + 24) + 24
    height = band + max(p.height for p in parts) + 12
    out = Image.new("RGB", (width, height), "white")
    x = (width - body) // 2
    for part in parts:
        out.paste(part, (x, height - 12 - part.height))
        x += part.width + gap
    ImageDraw.Draw(out).multiline_text(
        (width // 2, 10), title, font=font, fill="black", anchor="ma", align="center", spacing=5
    )
    out.info["title"] = title
    return out


def nice_ticks(low: float, high: float, count: int = 6) -> list[float]:
    """Round ticks within ``[low, high]``: steps of 1, 2 or 5 times a power of ten, about
    ``count`` of them (``[low]`` when the range is empty)."""
    if not high > low:
        return [low]
    raw = (high - low) / count
    power = 10.0 ** np.floor(np.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = np.ceil(low / step - 1e-9) * step
    # + 0.0: no "-0" label
    return [round(float(t), 10) + 0.0 for t in np.arange(first, high + step * 1e-9, step)]


def tick_text(value: float, ticks: Sequence[float]) -> str:
    """A tick's label with as many decimals as the ticks' step needs."""
    step = min((b - a for a, b in zip(ticks, ticks[1:], strict=False)), default=1.0)
    digits = max(0, -int(np.floor(np.log10(step) + 1e-9))) if step > 0 else 0
    return f"{value:.{digits}f}"


def line_chart(
    xs: Sequence[float],
    ys: Sequence[float],
    *,
    size: tuple[int, int],
    colour: tuple[int, int, int],
    title: str,
    xlabel: str = "",
    vline: float | None = None,
) -> Image.Image:
    """A line with round markers through the finite points ``(xs, ys)`` in a framed plot
    of ``size`` pixels, ticks on both axes, a red dashed vertical line at ``vline``, the
    title above and ``xlabel`` below."""
    font = _font(10)
    x = np.asarray(xs, np.float64)
    y = np.asarray(ys, np.float64)
    ok = np.isfinite(y)
    x_lo, x_hi = float(x.min()), float(x.max())
    y_lo, y_hi = float(y[ok].min()), float(y[ok].max())
    pad_x = 0.05 * (x_hi - x_lo) or 0.5
    pad_y = 0.05 * (y_hi - y_lo) or max(abs(y_hi) * 0.05, 0.5)
    x_lo, x_hi, y_lo, y_hi = x_lo - pad_x, x_hi + pad_x, y_lo - pad_y, y_hi + pad_y
    y_ticks = nice_ticks(y_lo, y_hi, 5)
    x_ticks = [t for t in nice_ticks(x_lo, x_hi, 8) if float(t).is_integer()] or [float(x[0])]
    y_texts = [tick_text(t, y_ticks) for t in y_ticks]
    left = max(round(font.getlength(t)) for t in y_texts) + 12
    width, height = size
    top, bottom = 24, 34 if xlabel else 20
    image = Image.new("RGB", (left + width + 10, top + height + bottom), "white")
    draw = ImageDraw.Draw(image)

    def px(u: float, v: float) -> tuple[float, float]:
        return (
            left + (u - x_lo) / (x_hi - x_lo) * width,
            top + height - (v - y_lo) / (y_hi - y_lo) * height,
        )

    for t, text in zip(y_ticks, y_texts, strict=True):
        _, v = px(x_lo, t)
        draw.line((left - 4, v, left, v), fill="black")
        draw.text((left - 6, v), text, font=font, fill="black", anchor="rm")
    for t in x_ticks:
        u, _ = px(t, y_lo)
        draw.line((u, top + height, u, top + height + 4), fill="black")
        draw.text((u, top + height + 6), f"{t:g}", font=font, fill="black", anchor="mt")
    if vline is not None:
        u, _ = px(vline, y_lo)
        dashed(draw, (u, top), (u, top + height))
    points = [px(u, v) for u, v in zip(x[ok].tolist(), y[ok].tolist(), strict=True)]
    if len(points) > 1:
        draw.line(points, fill=colour, width=2)
    for u, v in points:
        draw.ellipse((u - 3, v - 3, u + 3, v + 3), fill=colour)
    draw.rectangle((left, top, left + width, top + height), outline="black")
    draw.text((left + width // 2, 4), title, font=_font(11), fill="black", anchor="mt")
    if xlabel:
        draw.text((left + width // 2, top + height + 20), xlabel, font=font, fill="black",
                  anchor="mt")  # fmt: skip
    return image
