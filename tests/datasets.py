"""Labelled image sets generated from offline bases, for benchmarks and tests.

Each family is several copies of one base image (scikit-image's bundled data)
under a random geometric change (rotation, scale, shift, optionally
perspective) and photometric change (exposure, contrast, gamma, blur,
noise). ``hard=True`` adds, for some bases, a hard-negative family: the same
subject mirrored and re-framed (same content, another composition).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np
from skimage import data

from preprocessing import ImageMeta, ImageRecord, ImageSet

__all__ = ["BASES", "LARGE_SOURCES", "generated_set", "write_large_set"]

BASES = (
    "camera",
    "coins",
    "moon",
    "page",
    "text",
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "horse",
    "brick",
    "grass",
)


def _base(name: str, size: int) -> np.ndarray:
    img = getattr(data, name)()
    if img.ndim == 3:
        img = cv2.cvtColor(img[..., :3], cv2.COLOR_RGB2GRAY)
    img = img.astype(np.float32)
    img = img / img.max() if img.max() > 1 else img
    rows, cols = img.shape
    scale = size / max(rows, cols)
    return cv2.resize(img, (round(cols * scale), round(rows * scale)), interpolation=cv2.INTER_AREA)


def _copy(rng: np.random.Generator, base: np.ndarray, strength: float) -> np.ndarray:
    rows, cols = base.shape
    m = cv2.getRotationMatrix2D(
        (cols / 2, rows / 2), rng.uniform(-8, 8) * strength, 1 + rng.uniform(-0.1, 0.1) * strength
    )
    m[:, 2] += rng.uniform(-10, 10, size=2) * strength
    img = cv2.warpAffine(base, m, (cols, rows), borderMode=cv2.BORDER_REFLECT)
    if strength > 1:
        src = np.float32([[0, 0], [cols, 0], [cols, rows], [0, rows]])
        dst = (src + rng.uniform(-0.04, 0.04, size=(4, 2)) * [cols, rows]).astype(np.float32)
        img = cv2.warpPerspective(
            img, cv2.getPerspectiveTransform(src, dst), (cols, rows), borderMode=cv2.BORDER_REFLECT
        )
    img = np.clip(img * rng.uniform(0.75, 1.25) + rng.uniform(-0.12, 0.12), 0, 1)
    img = img ** rng.uniform(0.8, 1.25)
    img = cv2.GaussianBlur(img.astype(np.float32), (0, 0), rng.uniform(0.3, 1.2 * strength))
    return np.clip(img + rng.normal(0, 0.012, img.shape), 0, 1).astype(np.float32)


def _recomposed(base: np.ndarray) -> np.ndarray:
    """The same subject mirrored, enlarged by 1.3 and shifted: another composition."""
    rows, cols = base.shape
    flipped = base[:, ::-1]
    big = cv2.resize(flipped, (round(cols * 1.3), round(rows * 1.3)), interpolation=cv2.INTER_CUBIC)
    return np.ascontiguousarray(big[rows // 10 : rows // 10 + rows, :cols])


def generated_set(
    *,
    n_bases: int = 8,
    copies: int = 4,
    size: int = 256,
    seed: int = 0,
    strength: float = 1.0,
    hard: bool = False,
) -> tuple[ImageSet, dict[str, str]]:
    """An :class:`ImageSet` of families of copies, and its ground truth (id -> family)."""
    rng = np.random.default_rng(seed)
    records, truth = [], {}
    for index, name in enumerate(BASES[:n_bases]):
        base = _base(name, size)
        variants = [(name, base)]
        if hard and index % 2 == 0:
            variants.append((f"{name}_recomposed", _recomposed(base)))
        for family, source in variants:
            for i in range(copies):
                gray = _copy(rng, source, strength)
                pixels = np.repeat(gray[:, :, None], 3, axis=2)
                image_id = f"{family}_{i}.png"
                digest = hashlib.sha256(pixels.tobytes()).hexdigest()
                meta = ImageMeta(gray.shape[1], gray.shape[0], "PNG", "gray", 8, pixels.nbytes)
                records.append(ImageRecord(image_id, None, digest, pixels, meta))
                truth[image_id] = family
    return ImageSet(tuple(records)), truth


#: Offline sources of the large sets' works: each family is a crop of one of these
#: with a drawing of its own on top, so works never repeat however many are made.
LARGE_SOURCES = (*BASES, "gravel", "clock", "hubble_deep_field", "immunohistochemistry", "cell")


def _work(rng: np.random.Generator, source: np.ndarray, size: int) -> np.ndarray:
    """One work: a random crop of ``source`` (30-70 % of its side) with a drawing on top."""
    rows, cols = source.shape
    side = int(min(rows, cols) * rng.uniform(0.3, 0.7))
    r0 = int(rng.integers(0, rows - side + 1))
    c0 = int(rng.integers(0, cols - side + 1))
    aspect = rng.uniform(0.75, 1.0)
    out_rows, out_cols = (
        (size, round(size * aspect)) if rng.random() < 0.5 else (round(size * aspect), size)
    )
    img = cv2.resize(
        source[r0 : r0 + side, c0 : c0 + side], (out_cols, out_rows), interpolation=cv2.INTER_AREA
    )
    img = 0.35 + 0.4 * img  # leave room for dark and light strokes
    for _ in range(int(rng.integers(6, 12))):
        tone = float(rng.choice([0.05, 0.95]))
        width = int(rng.integers(1, 4))
        kind = rng.integers(0, 3)
        if kind == 0:
            pts = np.cumsum(rng.normal(0, size / 10, size=(int(rng.integers(3, 8)), 2)), axis=0)
            pts += rng.uniform(0, [out_cols, out_rows])
            cv2.polylines(img, [pts.astype(np.int32)], False, tone, width, cv2.LINE_AA)
        elif kind == 1:
            centre = tuple(int(v) for v in rng.uniform(0, [out_cols, out_rows]))
            axes = tuple(int(v) for v in rng.uniform(size / 30, size / 6, size=2))
            cv2.ellipse(
                img, centre, axes, float(rng.uniform(0, 180)), 0, 360, tone, width, cv2.LINE_AA
            )
        else:
            p = rng.uniform(0, [out_cols, out_rows], size=(2, 2)).astype(int)
            cv2.rectangle(
                img, tuple(map(int, p[0])), tuple(map(int, p[1])), tone, width, cv2.LINE_AA
            )
    return np.clip(img, 0, 1).astype(np.float32)


def write_large_set(
    folder: str | Path,
    n_images: int,
    *,
    family_size: int = 5,
    size: int = 320,
    seed: int = 0,
) -> dict[str, str]:
    """Write ``n_images`` JPEG files in families of ``family_size`` copies of one work.

    Works are crops of scikit-image's bundled images with a seeded drawing of
    their own on top (so any number of distinct works can be made offline);
    copies differ by a small rotation, scale and shift, exposure, contrast,
    gamma, blur and noise (as :func:`generated_set`). Also writes
    ``families.csv`` (``image,family``) and returns the same mapping.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    sources = [_base(name, 512) for name in LARGE_SOURCES]
    truth: dict[str, str] = {}
    n_families = -(-n_images // family_size)
    for f in range(n_families):
        work = _work(rng, sources[f % len(sources)], size)
        for i in range(min(family_size, n_images - f * family_size)):
            copy = (_copy(rng, work, 1.0) * 255 + 0.5).astype(np.uint8)
            name = f"work{f:05d}_{i}.jpg"
            cv2.imwrite(str(folder / name), copy, [cv2.IMWRITE_JPEG_QUALITY, 90])
            truth[name] = f"work{f:05d}"
    lines = ["image,family", *(f"{k},{v}" for k, v in truth.items())]
    (folder / "families.csv").write_text("\n".join(lines) + "\n")
    return truth
