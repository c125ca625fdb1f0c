"""The labelled sets of the accuracy benchmark (``bench/accuracy.py``), made offline and seeded.

Six recipes, each made twice: once for the development half and once, from
other source images and another seed, for the held-out half, so each half
holds every kind of copy and nothing of the held-out half is seen while a
default is chosen.

Kinds of copy (what an art historian meets):

- ``workshop``: copies of one work with small geometric and photometric
  changes, JPEG, small crops and watermarks;
- ``composition``: every family shares one layout (freehand re-drawings of
  one composition, each the template of its own family): hard negatives;
- ``rehand``: one template painted by other hands: new palette, brush
  texture, light and dark swapped, grayscale;
- ``prints``: impressions of one plate (inking, wiping, paper), some reversed;
- ``details``: partial copies of 30-60 % of the area;
- ``singletons``: unequal family sizes, works with no copy at all;
- ``resolution``: a copy at a quarter of the resolution;
- ``photographs``: photographs of one object (perspective, glare, colour cast).

Sources: images that ship with installed packages (scikit-image's data,
scikit-learn's and matplotlib's sample images), procedural drawings, and,
when they can be had, the photographs of real paintings that the
``unraphael`` wheel ships (``app.paintings``). Every work drawn from the
packages' images (a whole image, or a quadrant of one) must hold structure
(``_informative``: tonal range and a share of strong gradients): a work
without outlines (the colour wheel, the dim moon, a lone cell on a flat
ground) leaves nothing for a template to fix, so which template one of its
copies came from could not be read from the pixels, by Atelier or by an art
historian with tracing paper.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from skimage import data as skdata

from preprocessing import ImageMeta, ImageRecord, ImageSet

__all__ = ["LabelledSet", "RECIPES", "KINDS", "benchmark_sets", "natural_sources"]

KINDS = (
    "workshop",
    "composition",
    "rehand",
    "prints",
    "details",
    "singletons",
    "resolution",
    "photographs",
)

_SKIMAGE = (
    "astronaut", "camera", "chelsea", "coffee", "rocket", "retina", "hubble_deep_field",
    "immunohistochemistry", "page", "text", "coins", "moon", "clock", "cell", "horse",
    "brick", "gravel", "grass", "logo", "colorwheel", "microaneurysms", "stereo_motorcycle",
)  # fmt: skip


@dataclass(frozen=True, eq=False)
class LabelledSet:
    """One labelled benchmark set."""

    name: str
    half: str  # "development" or "held-out"
    kinds: tuple[str, ...]
    images: ImageSet
    truth: dict[str, str]  # image id -> family

    @property
    def n_families(self) -> int:
        return len(set(self.truth.values()))


# ------------------------------------------------------------------------ sources
def _as_rgb(img: np.ndarray, side: int) -> np.ndarray:
    img = np.asarray(img)
    if img.dtype == bool:
        img = img.astype(np.float32)
    img = img.astype(np.float32)
    if img.max() > 1.0:
        img = img / (255.0 if img.max() <= 255 else img.max())
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    img = img[:, :, :3]
    rows, cols = img.shape[:2]
    s = side / max(rows, cols)
    return cv2.resize(img, (round(cols * s), round(rows * s)), interpolation=cv2.INTER_AREA)


def natural_sources(side: int = 640) -> list[tuple[str, np.ndarray]]:
    """Photographs and scans bundled with installed packages, RGB float32 in [0, 1]."""
    out = []
    for name in _SKIMAGE:
        img = getattr(skdata, name)()
        if isinstance(img, tuple):  # stereo_motorcycle: the left view
            img = img[0]
        out.append((name, _as_rgb(img, side)))
    from sklearn.datasets import load_sample_images

    for name, img in zip(("china", "flower"), load_sample_images().images, strict=True):
        out.append((name, _as_rgb(img, side)))
    import matplotlib.cbook

    for name in ("grace_hopper.jpg", "Minduka_Present_Blue_Pack.png", "logo2.png"):
        with matplotlib.cbook.get_sample_data(name) as f:
            raw = np.frombuffer(f.read(), np.uint8)
        bgr = cv2.imdecode(raw, cv2.IMREAD_COLOR)
        out.append((name.split(".")[0].lower(), _as_rgb(bgr[:, :, ::-1], side)))
    return out


def _quadrants(img: np.ndarray) -> list[np.ndarray]:
    rows, cols = img.shape[:2]
    r, c = rows // 2, cols // 2
    return [img[:r, :c], img[:r, c:], img[r:, :c], img[r:, c:]]


def _informative(img: np.ndarray) -> bool:
    """Has the work outlines to copy: a tonal range and 2 % of its pixels on a strong edge."""
    gray = img.mean(axis=2)
    mag = np.hypot(cv2.Sobel(gray, cv2.CV_32F, 1, 0), cv2.Sobel(gray, cv2.CV_32F, 0, 1))
    return float(gray.std()) > 0.06 and float(np.mean(mag > 0.2)) > 0.02


# -------------------------------------------------------------------- operations
def _smooth_field(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    n = cv2.GaussianBlur(rng.standard_normal(shape).astype(np.float32), (0, 0), sigma)
    return n / (np.abs(n).max() + 1e-8)


def _local_warp(rng: np.random.Generator, img: np.ndarray, amplitude: float) -> np.ndarray:
    """A smooth displacement of at most ``amplitude`` x the longer side (a hand's wander)."""
    rows, cols = img.shape[:2]
    side = max(rows, cols)
    sigma = side / 10
    dy = _smooth_field(rng, (rows, cols), sigma) * amplitude * side
    dx = _smooth_field(rng, (rows, cols), sigma) * amplitude * side
    gy, gx = np.mgrid[0:rows, 0:cols].astype(np.float32)
    return cv2.remap(img, gx + dx, gy + dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def _global(rng: np.random.Generator, img: np.ndarray, strength: float = 1.0) -> np.ndarray:
    rows, cols = img.shape[:2]
    m = cv2.getRotationMatrix2D(
        (cols / 2, rows / 2), rng.uniform(-4, 4) * strength, 1 + rng.uniform(-0.06, 0.06) * strength
    )
    m[:, 2] += rng.uniform(-0.04, 0.04, size=2) * [cols, rows] * strength
    return cv2.warpAffine(img, m, (cols, rows), borderMode=cv2.BORDER_REFLECT)


def _photometric(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    gain = rng.uniform(0.8, 1.2) * rng.uniform(0.9, 1.1, size=3)
    out = np.clip(img * gain + rng.uniform(-0.08, 0.08), 0, 1) ** rng.uniform(0.8, 1.25)
    return out.astype(np.float32)


def _jpeg(rng: np.random.Generator, img: np.ndarray, lo: int = 60, hi: int = 92) -> np.ndarray:
    u8 = (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)
    ok, buf = cv2.imencode(
        ".jpg", u8[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(lo, hi))]
    )
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1].astype(np.float32) / 255.0


def _crop(rng: np.random.Generator, img: np.ndarray, most: float = 0.08) -> np.ndarray:
    rows, cols = img.shape[:2]
    t, b, l, r = (rng.uniform(0, most, size=4) * [rows, rows, cols, cols]).astype(int)
    return np.ascontiguousarray(img[t : rows - b, l : cols - r])


def _watermark(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    out = img.copy()
    rows, cols = img.shape[:2]
    text = str(rng.choice(["(c) photo archive", "PHOTO LIBRARY", "inv. 1887-22", "SPECIMEN"]))
    scale = cols / 400
    org = (int(rng.uniform(0.05, 0.4) * cols), int(rng.uniform(0.2, 0.95) * rows))
    mark = np.zeros((rows, cols), np.uint8)  # OpenCV draws text on 8-bit images only
    cv2.putText(mark, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, 255, max(1, int(2 * scale)))
    alpha = 0.45 * (mark.astype(np.float32) / 255.0)[:, :, None]
    return (out * (1 - alpha) + alpha).astype(np.float32)


def _workshop(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    out = _photometric(rng, _global(rng, img))
    out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.3, 1.0))
    if rng.random() < 0.5:
        out = _crop(rng, out)
    if rng.random() < 0.35:
        out = _watermark(rng, out)
    return _jpeg(rng, out)


def _brush(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """A directional brush texture around 1."""
    n = rng.standard_normal(shape).astype(np.float32)
    length = int(rng.integers(5, 13))
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2, :] = 1.0 / length
    m = cv2.getRotationMatrix2D((length / 2 - 0.5, length / 2 - 0.5), rng.uniform(0, 180), 1.0)
    kernel = cv2.warpAffine(kernel, m, (length, length))
    tex = cv2.filter2D(n, -1, kernel / max(kernel.sum(), 1e-6))
    return 1.0 + 0.18 * tex / (tex.std() + 1e-6)


def _repaint(rng: np.random.Generator, img: np.ndarray, mode: str) -> np.ndarray:
    """The template painted again: ``palette``, ``inverted`` (light/dark swapped), ``gray``."""
    lum = img @ np.float32([0.299, 0.587, 0.114])
    if mode == "inverted":
        lum = 1.0 - lum
    lum = np.clip(lum, 0, 1) ** rng.uniform(0.7, 1.4)
    if mode == "gray":
        out = np.repeat(lum[:, :, None], 3, axis=2)
    else:
        dark, light = rng.uniform(0, 0.35, size=3), rng.uniform(0.65, 1.0, size=3)
        out = dark + lum[:, :, None] * (light - dark)
    out = out * _brush(rng, lum.shape)[:, :, None]
    return np.clip(out, 0, 1).astype(np.float32)


def _photograph(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """A photograph of the object: perspective, glare, colour cast, vignetting, noise."""
    rows, cols = img.shape[:2]
    src = np.float32([[0, 0], [cols, 0], [cols, rows], [0, rows]])
    dst = (src + rng.uniform(-0.05, 0.05, size=(4, 2)) * [cols, rows]).astype(np.float32)
    out = cv2.warpPerspective(
        img, cv2.getPerspectiveTransform(src, dst), (cols, rows), borderMode=cv2.BORDER_REPLICATE
    )
    out = out * rng.uniform(0.85, 1.15, size=3) + rng.uniform(-0.05, 0.05, size=3)
    gy, gx = np.mgrid[0:rows, 0:cols].astype(np.float32)
    cy, cx = rng.uniform(0.2, 0.8) * rows, rng.uniform(0.2, 0.8) * cols
    radius = rng.uniform(0.08, 0.2) * max(rows, cols)
    glare = rng.uniform(0.25, 0.6) * np.exp(-((gy - cy) ** 2 + (gx - cx) ** 2) / (2 * radius**2))
    vignette = 1 - 0.25 * (((gy / rows - 0.5) ** 2 + (gx / cols - 0.5) ** 2) * 2)
    out = out * vignette[:, :, None] + glare[:, :, None]
    out = out + rng.normal(0, 0.015, out.shape)
    return _jpeg(rng, np.clip(out, 0, 1).astype(np.float32), 70, 92)


def _detail(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """A partial copy: 30-60 % of the area, kept at the work's own scale."""
    rows, cols = img.shape[:2]
    area = rng.uniform(0.3, 0.6)
    aspect = rng.uniform(0.8, 1.25)
    h = int(min(rows, rows * np.sqrt(area) * aspect))
    w = int(min(cols, rows * cols * area / max(h, 1)))
    r0 = int(rng.integers(0, rows - h + 1))
    c0 = int(rng.integers(0, cols - w + 1))
    return np.ascontiguousarray(img[r0 : r0 + h, c0 : c0 + w])


def _quarter(img: np.ndarray) -> np.ndarray:
    rows, cols = img.shape[:2]
    return cv2.resize(img, (max(8, cols // 4), max(8, rows // 4)), interpolation=cv2.INTER_AREA)


def _freehand(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """Another template of the same composition: outlines wander by 2.5-4 % of the side."""
    out = _local_warp(rng, img, rng.uniform(0.025, 0.04))
    return _global(rng, out, 0.5)


def _traced(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """A copy traced from the template: outlines within 0.4 % of the side."""
    return _local_warp(rng, img, rng.uniform(0.0, 0.004))


def _drawing(rng: np.random.Generator, size: int = 480) -> np.ndarray:
    """A procedural drawing: filled shapes with dark outlines and hatching on toned paper."""
    rows, cols = size, int(size * rng.uniform(0.75, 1.0))
    img = np.ones((rows, cols), np.float32) * rng.uniform(0.75, 0.95)
    for _ in range(int(rng.integers(5, 9))):
        tone = float(rng.uniform(0.2, 0.8))
        centre = rng.uniform(0.1, 0.9, size=2) * [cols, rows]
        n = int(rng.integers(5, 10))
        ang = np.sort(rng.uniform(0, 2 * np.pi, n))
        rad = rng.uniform(0.06, 0.22, n) * size
        pts = np.stack([centre[0] + rad * np.cos(ang), centre[1] + rad * np.sin(ang)], 1)
        pts = pts.astype(np.int32)
        cv2.fillPoly(img, [pts], tone, cv2.LINE_AA)
        cv2.polylines(img, [pts], True, 0.05, int(rng.integers(2, 4)), cv2.LINE_AA)
        if rng.random() < 0.5:  # hatching inside the shape
            hatch = np.zeros_like(img)
            step = int(rng.integers(6, 11))
            for k in range(-rows, cols, step):
                cv2.line(hatch, (k, 0), (k + rows, rows), 1.0, 1, cv2.LINE_AA)
            inside = np.zeros_like(img)
            cv2.fillPoly(inside, [pts], 1.0)
            img = np.where((hatch > 0.5) & (inside > 0), 0.1, img)
    for _ in range(int(rng.integers(4, 9))):
        p = np.cumsum(rng.normal(0, size / 12, size=(int(rng.integers(3, 7)), 2)), axis=0)
        p = (p + rng.uniform(0.1, 0.9, size=2) * [cols, rows]).astype(np.int32)
        cv2.polylines(img, [p], False, 0.05, int(rng.integers(1, 4)), cv2.LINE_AA)
    return np.repeat(np.clip(img, 0, 1)[:, :, None], 3, axis=2)


def _impression(rng: np.random.Generator, plate: np.ndarray) -> np.ndarray:
    """One impression of an engraved plate: inking, wiping, paper tone, registration."""
    lum = plate @ np.float32([0.299, 0.587, 0.114])
    level = rng.uniform(0.35, 0.6)
    ink = 1.0 / (1.0 + np.exp((lum - level) * rng.uniform(10, 25)))
    wipe = 1.0 + 0.25 * _smooth_field(rng, lum.shape, max(lum.shape) / 8)
    ink = np.clip(ink * wipe, 0, 1)
    paper = rng.uniform(0.8, 0.97, size=3) * (
        1 + 0.03 * _smooth_field(rng, lum.shape, 3)[..., None]
    )
    colour = rng.uniform(0.0, 0.25, size=3)
    out = paper * (1 - ink[..., None]) + colour * ink[..., None]
    out = _global(rng, out.astype(np.float32), 0.4)
    return _jpeg(rng, np.clip(out, 0, 1).astype(np.float32), 75, 95)


# ---------------------------------------------------------------------- recipes
Emit = Callable[[str, np.ndarray], None]


def _workshop_set(rng: np.random.Generator, works: list[np.ndarray], emit: Emit) -> None:
    """Workshop copies, unequal family sizes with singletons, one copy at a quarter size."""
    sizes = [1, 1, 1, 1, 2, 2, 2, 3, 3, 4, 4, 5, 5, 6, 7, 8, 3, 4, 2, 5]
    for f, work in enumerate(works[: len(sizes)]):
        n = sizes[f]
        for i in range(n):
            copy = work if i == 0 else _workshop(rng, work)
            if i == 1 and n >= 3:
                copy = _quarter(copy)
            emit(f"work{f:02d}", copy)


def _composition_set(rng: np.random.Generator, works: list[np.ndarray], emit: Emit) -> None:
    """Several compositions; each re-drawn freehand into 4 templates, each traced and repainted."""
    modes = ["palette", "inverted", "gray", "palette", "palette"]
    for c, work in enumerate(works[:5]):
        for t in range(4):
            template = work if t == 0 else _freehand(rng, work)
            for i in range(int(rng.integers(3, 6))):
                copy = _traced(rng, template)
                if i > 0:
                    copy = _repaint(rng, copy, modes[i % len(modes)])
                copy = _jpeg(rng, _photometric(rng, _global(rng, copy, 0.5)))
                emit(f"comp{c}_template{t}", copy)


def _rehand_set(rng: np.random.Generator, works: list[np.ndarray], emit: Emit) -> None:
    """One template per family, painted by other hands (palette, inverted, gray, brush)."""
    modes = ["palette", "inverted", "gray", "palette"]
    for f, work in enumerate(works[:16]):
        emit(f"work{f:02d}", work)
        for i in range(int(rng.integers(3, 5))):
            copy = _repaint(rng, _traced(rng, work), modes[i % len(modes)])
            emit(f"work{f:02d}", _jpeg(rng, _global(rng, copy, 0.5)))


def _prints_set(rng: np.random.Generator, works: list[np.ndarray], emit: Emit) -> None:
    """Plates (half procedural drawings, half engraved from works); impressions, some reversed."""
    for f in range(min(16, 2 * len(works))):
        plate = _drawing(rng) if f % 2 == 0 else works[f // 2]
        emit(f"plate{f:02d}", plate if f % 2 == 0 else _repaint(rng, plate, "gray"))
        for i in range(int(rng.integers(3, 5))):
            imp = _impression(rng, plate)
            emit(f"plate{f:02d}", np.ascontiguousarray(imp[:, ::-1]) if i % 2 == 1 else imp)


def _details_set(rng: np.random.Generator, works: list[np.ndarray], emit: Emit) -> None:
    """Photographs of objects (perspective, glare, cast), details of them, a quarter-size copy."""
    for f, work in enumerate(works[:14]):
        emit(f"object{f:02d}", _photograph(rng, work))
        emit(f"object{f:02d}", _photograph(rng, work))
        emit(f"object{f:02d}", _detail(rng, _photograph(rng, work)))
        emit(f"object{f:02d}", _detail(rng, work))
        if f % 2 == 0:
            emit(f"object{f:02d}", _quarter(_photograph(rng, work)))
        if f % 3 == 0:
            emit(f"object{f:02d}", _workshop(rng, work))


def _paintings_set(rng: np.random.Generator, works: list[np.ndarray], emit: Emit) -> None:
    """Real copies of one composition (hard negatives): photographs and details of each."""
    for f, work in enumerate(works):
        emit(f"painting{f:02d}", work)
        emit(f"painting{f:02d}", _photograph(rng, work))
        emit(f"painting{f:02d}", _photograph(rng, work))
        emit(f"painting{f:02d}", _detail(rng, work))
        emit(f"painting{f:02d}", _workshop(rng, work))
        if f % 2 == 0:
            emit(f"painting{f:02d}", _quarter(_photograph(rng, work)))


#: recipe -> (builder, kinds it holds, which works it draws)
RECIPES: dict[str, tuple[Callable[..., None], tuple[str, ...], str]] = {
    "workshop": (_workshop_set, ("workshop", "singletons", "resolution"), "quadrants"),
    "composition": (_composition_set, ("composition", "rehand"), "natural"),
    "rehand": (_rehand_set, ("rehand", "workshop"), "quadrants"),
    "prints": (_prints_set, ("prints",), "quadrants"),
    "details": (_details_set, ("details", "photographs", "resolution"), "natural"),
    "paintings": (_paintings_set, ("photographs", "details", "composition"), "paintings"),
}


def _record(image_id: str, rgb: np.ndarray) -> ImageRecord:
    # 8-bit levels, as a PNG file of the image decodes: the set written to a folder
    # (write_set) and analysed from there gives the same matrices as in memory
    u8 = np.round(np.clip(rgb, 0, 1) * 255).astype(np.uint8)
    pixels = np.ascontiguousarray(u8.astype(np.float32) / 255.0)
    digest = hashlib.sha256(pixels.tobytes()).hexdigest()
    meta = ImageMeta(pixels.shape[1], pixels.shape[0], "PNG", "RGB", 8, pixels.nbytes)
    return ImageRecord(image_id, None, digest, pixels, meta)


class _Collector:
    """Numbers each family's images and keeps the records and the ground truth."""

    def __init__(self) -> None:
        self.records: list[ImageRecord] = []
        self.truth: dict[str, str] = {}
        self.counts: dict[str, int] = {}

    def emit(self, family: str, rgb: np.ndarray) -> None:
        i = self.counts[family] = self.counts.get(family, -1) + 1
        image_id = f"{family}_{i}.png"
        self.records.append(_record(image_id, rgb))
        self.truth[image_id] = family


def benchmark_sets(
    *,
    paintings: list[tuple[str, np.ndarray]] | None = None,
    recipes: tuple[str, ...] | None = None,
    quick: bool = False,
    seed: int = 2026,
) -> Iterator[LabelledSet]:
    """Every benchmark set, development half first for each recipe.

    Parameters
    ----------
    paintings : list of (name, RGB array), optional
        The real paintings (``app.paintings``); without them the ``paintings``
        recipe is skipped.
    recipes : tuple of str, optional
        Only these recipes.
    quick : bool
        Fewer works per set (the test suite's subset).
    seed : int
        The generator's seed; the development and held-out halves use
        different seeds derived from it and disjoint source images.
    """
    sources = natural_sources()
    halves = {"development": sources[0::2], "held-out": sources[1::2]}
    for r_index, (recipe, (build, kinds, draw)) in enumerate(RECIPES.items()):
        if recipes is not None and recipe not in recipes:
            continue
        for h_index, (half, srcs) in enumerate(halves.items()):
            rng = np.random.default_rng([seed, r_index, h_index])
            if draw == "paintings":
                if not paintings:
                    continue
                chosen = paintings[0::2] if half == "development" else paintings[1::2]
                works = [_as_rgb(img, 640) for _, img in chosen]
            elif draw == "quadrants":
                works = [q for _, img in srcs for q in _quadrants(img) if _informative(q)]
                works = [works[i] for i in rng.permutation(len(works))]
            else:
                kept = [img for _, img in srcs if _informative(img)]
                works = [kept[i] for i in rng.permutation(len(kept))]
            if quick:
                works = works[:4]
            collected = _Collector()
            build(rng, works, collected.emit)
            name = f"{recipe}-{'dev' if half == 'development' else 'held'}"
            yield LabelledSet(
                name, half, kinds, ImageSet(tuple(collected.records)), collected.truth
            )


def write_set(labelled: LabelledSet, folder: str | Path) -> None:
    """Write a set as PNG files and ``families.csv`` (to look at it, or run the CLI on it)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for rec in labelled.images:
        u8 = np.round(rec.pixels * 255).astype(np.uint8)
        cv2.imwrite(str(folder / rec.id), u8[:, :, ::-1])
    lines = ["image,family", *(f"{k},{v}" for k, v in labelled.truth.items())]
    (folder / "families.csv").write_text("\n".join(lines) + "\n")
