"""Labelled image sets generated from offline bases, for benchmarks and tests.

Each family is several copies of one base image (scikit-image's bundled data)
under a random geometric change (rotation, scale, shift, optionally
perspective) and photometric change (exposure, contrast, gamma, blur,
noise). ``hard=True`` adds, for some bases, a hard-negative family: the same
subject mirrored and re-framed (same content, another composition).
"""

from __future__ import annotations

import hashlib

import cv2
import numpy as np
from skimage import data

from preprocessing import ImageMeta, ImageRecord, ImageSet

__all__ = ["BASES", "generated_set"]

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
