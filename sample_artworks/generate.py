"""Generate Atelier's sample artworks and their ground truth (families.csv).

Run from the repository root:  python sample_artworks/generate.py

Everything is made offline and seeded: procedural drawings (OpenCV), and
photographs bundled inside scikit-image's wheel (camera, astronaut, chelsea,
coffee, rocket, brick). Nothing is downloaded. The same seed gives the same
pixels; the JPEG bytes depend on the pinned Pillow/libjpeg.

Families (the structural question: same template or not):
- cartoon_*: copies made from one cartoon by different hands: the same
  contours, transferred with a small tremor and offset, painted with another
  palette, brush direction and line weight.
- cartoon_a_recomposed: a hard negative: the same motifs as cartoon_a,
  arranged in another composition, copied by different hands.
- print_*: impressions of one engraved plate: the same hatched lines with
  other inking, ink colour, wiping, paper tone and registration.
- photo_*: photographs of one work under other light, white balance, angle
  (perspective), crop, focus and noise.
- photo_cat_recomposed: a hard negative: the same cat as photo_cat in another
  composition (other placement, scale, direction and background).
"""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from skimage import data as skdata

SEED = 20261121
HERE = Path(__file__).resolve().parent
H, W = 360, 480


# ----------------------------------------------------------------------------- helpers
def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Gaussian-smoothed white noise rescaled to zero mean, unit std."""
    n = cv2.GaussianBlur(rng.standard_normal(shape).astype(np.float32), (0, 0), sigma)
    return (n - n.mean()) / (n.std() + 1e-8)


def tremor(rng, img: np.ndarray, amplitude: float, sigma: float = 25.0) -> np.ndarray:
    """Warp by a smooth random displacement field (a copyist's hand)."""
    rows, cols = img.shape[:2]
    dy = smooth_noise(rng, (rows, cols), sigma) * amplitude
    dx = smooth_noise(rng, (rows, cols), sigma) * amplitude
    gy, gx = np.mgrid[0:rows, 0:cols].astype(np.float32)
    return cv2.remap(img, gx + dx, gy + dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def similarity_warp(img, angle_deg, scale, shift_rc, border) -> np.ndarray:
    rows, cols = img.shape[:2]
    m = cv2.getRotationMatrix2D((cols / 2, rows / 2), angle_deg, scale)
    m[0, 2] += shift_rc[1]
    m[1, 2] += shift_rc[0]
    return cv2.warpAffine(
        img,
        m,
        (cols, rows),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=border,
    )


def brush_texture(rng, shape, angle_deg: float, length: float) -> np.ndarray:
    """Oriented streaks: noise smeared along one direction (visible brushwork)."""
    noise = rng.standard_normal(shape).astype(np.float32)
    k = int(max(3, length)) | 1
    kernel = np.zeros((k, k), np.float32)
    kernel[k // 2, :] = 1.0 / k
    rot = cv2.getRotationMatrix2D((k / 2 - 0.5, k / 2 - 0.5), angle_deg, 1.0)
    kernel = cv2.warpAffine(kernel, rot, (k, k))
    kernel /= kernel.sum() + 1e-8
    streaks = cv2.filter2D(noise, -1, kernel)
    return streaks / (streaks.std() + 1e-8)


def save(img: np.ndarray, path: Path, quality: int = 90) -> None:
    """Save RGB float [0, 1] as JPEG (or PNG by ending)."""
    arr = (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)
    buf = io.BytesIO()
    if path.suffix == ".png":
        Image.fromarray(arr).save(buf, format="PNG", optimize=True)
    else:
        Image.fromarray(arr).save(buf, format="JPEG", quality=quality, optimize=True)
    path.write_bytes(buf.getvalue())


# ----------------------------------------------------------------------------- cartoons
def make_motifs(rng, n_blobs: int, n_strokes: int) -> dict:
    """Motifs of a cartoon: closed contours (Fourier blobs) and open strokes, centred at 0."""
    blobs = []
    for _ in range(n_blobs):
        r = rng.uniform(28, 70)
        coeffs = rng.normal(0, 0.18, size=(5, 2)) / np.arange(1, 6)[:, None]
        aspect = rng.uniform(0.6, 1.4)
        blobs.append({"r": r, "coeffs": coeffs, "aspect": aspect, "phase": rng.uniform(0, 6.28)})
    strokes = []
    for _ in range(n_strokes):
        steps = rng.normal(0, 1, size=(40, 2)).cumsum(axis=0)
        steps = cv2.GaussianBlur(steps.astype(np.float32), (1, 0), 4).reshape(-1, 2)
        steps -= steps.mean(axis=0)
        steps *= rng.uniform(25, 60) / (np.abs(steps).max() + 1e-6)
        strokes.append(steps)
    return {"blobs": blobs, "strokes": strokes}


def layout(rng, motifs: dict) -> dict:
    """A composition: a position (and scale) for every motif."""
    nb, ns = len(motifs["blobs"]), len(motifs["strokes"])
    return {
        "blob_pos": [(rng.uniform(70, H - 70), rng.uniform(80, W - 80)) for _ in range(nb)],
        "blob_scale": rng.uniform(0.8, 1.25, size=nb),
        "stroke_pos": [(rng.uniform(40, H - 40), rng.uniform(40, W - 40)) for _ in range(ns)],
    }


def blob_polygon(blob: dict, centre, scale: float) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, 160, endpoint=False)
    radius = np.ones_like(t)
    for k, (a, b) in enumerate(blob["coeffs"], start=1):
        radius += a * np.cos(k * t + blob["phase"]) + b * np.sin(k * t)
    radius *= blob["r"] * scale
    rows = centre[0] + radius * np.sin(t)
    cols = centre[1] + radius * np.cos(t) * blob["aspect"]
    return np.stack([cols, rows], axis=1)  # OpenCV points are (x=col, y=row)


def paint_copy(rng, motifs: dict, comp: dict) -> np.ndarray:
    """One copy of a cartoon by a different hand."""
    palette_base = rng.uniform(0, 1, size=3)
    bg = np.clip(0.55 + 0.35 * rng.uniform(-1, 1, size=3) * 0.6, 0.2, 0.95)
    img = np.ones((H, W, 3), np.float32) * bg.astype(np.float32)
    angle = rng.uniform(0, 180)
    texture = brush_texture(rng, (H, W), angle, rng.uniform(7, 19))
    img += (texture[:, :, None] * rng.uniform(0.03, 0.07)).astype(np.float32)
    line_w = int(rng.integers(1, 4))
    line_c = tuple(float(v) for v in rng.uniform(0.0, 0.25, size=3))
    polys = []
    for blob, pos, sc in zip(motifs["blobs"], comp["blob_pos"], comp["blob_scale"], strict=True):
        poly = blob_polygon(blob, pos, sc)
        polys.append(poly)
        colour = np.clip(palette_base + rng.normal(0, 0.3, size=3), 0.05, 0.95)
        mask = np.zeros((H, W), np.uint8)
        cv2.fillPoly(mask, [np.round(poly * 4).astype(np.int32)], 1, cv2.LINE_AA, shift=2)
        region_tex = brush_texture(rng, (H, W), angle + rng.normal(0, 25), rng.uniform(5, 15))
        fill = colour[None, None, :] * (1 + 0.10 * region_tex[:, :, None])
        m = mask.astype(bool)
        img[m] = fill[m]
    for poly in polys:
        cv2.polylines(
            img, [np.round(poly * 4).astype(np.int32)], True, line_c, line_w, cv2.LINE_AA, shift=2
        )
    for stroke, pos in zip(motifs["strokes"], comp["stroke_pos"], strict=True):
        pts = np.stack([stroke[:, 1] + pos[1], stroke[:, 0] + pos[0]], axis=1)
        cv2.polylines(
            img, [np.round(pts * 4).astype(np.int32)], False, line_c, line_w, cv2.LINE_AA, shift=2
        )
    img = tremor(rng, img, amplitude=rng.uniform(0.6, 1.6))
    img = similarity_warp(
        img,
        rng.uniform(-2, 2),
        rng.uniform(0.97, 1.03),
        rng.uniform(-8, 8, size=2),
        tuple(float(v) for v in bg),
    )
    img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.3, 0.9))
    img += rng.normal(0, 0.012, size=img.shape).astype(np.float32)
    return np.clip(img, 0, 1)


# ----------------------------------------------------------------------------- prints
def make_plate(gray: np.ndarray, rng) -> np.ndarray:
    """An engraved plate: ink density in [0, 1] from hatching by tone, plus outlines."""
    rows, cols = gray.shape
    tone = cv2.GaussianBlur(gray.astype(np.float32), (0, 0), 2.0)
    dark = 1.0 - tone
    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float32)
    ink = np.zeros_like(dark)
    for angle, start, spacing in ((45, 0.22, 5.0), (-45, 0.50, 5.0), (0, 0.75, 4.0)):
        th = np.deg2rad(angle + rng.normal(0, 3))
        u = (xx * np.cos(th) + yy * np.sin(th)) / spacing
        dist = np.abs(u - np.round(u))  # 0 on a line, 0.5 between lines
        width = np.clip((dark - start) / (1 - start), 0, 1) * 0.35
        ink = np.maximum(ink, np.clip((width - dist) * 6 + 0.5, 0, 1) * (dark > start))
    edges = cv2.Canny((tone * 255).astype(np.uint8), 40, 110)
    edges = cv2.dilate(edges, np.ones((2, 2), np.uint8)).astype(np.float32) / 255
    return np.clip(np.maximum(ink, edges), 0, 1)


def pull_impression(rng, plate: np.ndarray) -> np.ndarray:
    rows, cols = plate.shape
    spread = cv2.GaussianBlur(plate, (0, 0), rng.uniform(0.4, 1.0))
    inking = rng.uniform(0.7, 1.35)  # light to heavy inking
    density = np.clip(spread * inking * 1.4 - rng.uniform(0.05, 0.25), 0, 1)
    failures = smooth_noise(rng, (rows, cols), 6) > rng.uniform(1.6, 2.4)  # ink did not take
    density *= np.where(failures, rng.uniform(0.2, 0.6), 1.0).astype(np.float32)
    density += np.clip(smooth_noise(rng, (rows, cols), 40), 0, None) * rng.uniform(0.0, 0.06)
    paper = np.array(
        rng.choice(
            [[0.96, 0.94, 0.86], [0.93, 0.90, 0.80], [0.90, 0.91, 0.90], [0.97, 0.97, 0.95]]
        ),
        np.float32,
    )
    ink = np.array(
        rng.choice(
            [[0.05, 0.05, 0.06], [0.25, 0.15, 0.08], [0.10, 0.10, 0.20], [0.18, 0.12, 0.10]]
        ),
        np.float32,
    )
    fibres = brush_texture(rng, (rows, cols), rng.uniform(0, 180), 9) * 0.015
    d = np.clip(density, 0, 1)[:, :, None]
    img = paper[None, None] * (1 + fibres[:, :, None]) * (1 - d) + ink[None, None] * d
    img = similarity_warp(
        img, rng.uniform(-1.2, 1.2), 1.0, rng.uniform(-6, 6, size=2), tuple(float(v) for v in paper)
    )
    margin = rng.integers(0, 14, size=4)  # trimmed differently
    img = img[margin[0] : rows - margin[1], margin[2] : cols - margin[3]]
    return np.clip(img + rng.normal(0, 0.01, size=img.shape).astype(np.float32), 0, 1)


# ----------------------------------------------------------------------------- photos
def photograph(rng, work: np.ndarray) -> np.ndarray:
    """A photograph of a work: angle, crop, light, white balance, focus, noise."""
    rows, cols = work.shape[:2]
    src = np.float32([[0, 0], [cols, 0], [cols, rows], [0, rows]])
    jitter = rng.uniform(-0.05, 0.05, size=(4, 2)) * np.float32([cols, rows])
    m = cv2.getPerspectiveTransform(src, (src + jitter).astype(np.float32))
    img = cv2.warpPerspective(
        work, m, (cols, rows), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    c = (rng.uniform(0.0, 0.07, size=4) * [rows, rows, cols, cols]).astype(int)
    img = img[c[0] : rows - c[1], c[2] : cols - c[3]]
    r2, c2 = img.shape[:2]
    yy, xx = np.mgrid[0:r2, 0:c2].astype(np.float32)
    th = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(th) * (xx / c2 - 0.5) + np.sin(th) * (yy / r2 - 0.5)) * rng.uniform(0.2, 0.5)
    vignette = 1 - rng.uniform(0.05, 0.25) * (((xx / c2 - 0.5) ** 2 + (yy / r2 - 0.5) ** 2) * 2)
    light = (1 + ramp) * vignette * rng.uniform(0.8, 1.15)
    img = img * light[:, :, None] * rng.uniform(0.9, 1.1, size=3).astype(np.float32)
    img = np.clip(img, 0, 1) ** rng.uniform(0.8, 1.25)
    img = cv2.GaussianBlur(img.astype(np.float32), (0, 0), rng.uniform(0.3, 1.3))
    img += rng.normal(0, rng.uniform(0.005, 0.02), size=img.shape).astype(np.float32)
    scale = rng.uniform(0.85, 1.1)
    img = cv2.resize(
        img,
        (round(img.shape[1] * scale), round(img.shape[0] * scale)),
        interpolation=cv2.INTER_AREA,
    )
    return np.clip(img, 0, 1)


def as_float(img: np.ndarray) -> np.ndarray:
    return img.astype(np.float32) / 255.0


def cat_recomposed() -> np.ndarray:
    """The cat of `chelsea`, mirrored, smaller, lower left, on a brick wall."""
    cat = as_float(skdata.chelsea())  # 300 x 451
    brick = as_float(skdata.brick())  # 512 x 512 gray
    canvas = np.stack([brick[:300, :451] * k for k in (0.85, 0.55, 0.45)], axis=2)
    crop = cat[20:300, 90:390][:, ::-1]
    small = cv2.resize(crop, (210, 196), interpolation=cv2.INTER_AREA)
    canvas[300 - 196 - 8 : 300 - 8, 20:230] = small
    return canvas


# ----------------------------------------------------------------------------- main
def main() -> None:
    rng = np.random.default_rng(SEED)
    out = HERE / "images"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir()
    rows: list[tuple[str, str]] = []

    def emit(family: str, idx: int, img: np.ndarray, ext: str = ".jpg") -> None:
        name = f"{family}_{idx}{ext}"
        save(img, out / name)
        rows.append((f"images/{name}", family))

    motifs_a = make_motifs(rng, 5, 4)
    comp_a, comp_a2 = layout(rng, motifs_a), layout(rng, motifs_a)
    cartoons = {
        "cartoon_a": (motifs_a, comp_a, 5),
        "cartoon_a_recomposed": (motifs_a, comp_a2, 4),
    }
    for name, n_blobs, n_strokes, n in (("cartoon_b", 6, 3, 4), ("cartoon_c", 4, 6, 4)):
        motifs = make_motifs(rng, n_blobs, n_strokes)
        cartoons[name] = (motifs, layout(rng, motifs), n)
    for family, (motifs, comp, n) in cartoons.items():
        for i in range(1, n + 1):
            emit(family, i, paint_copy(rng, motifs, comp))

    plates = {
        "print_camera": (as_float(skdata.camera())[::1, ::1], 5),
        "print_astronaut": (cv2.cvtColor(skdata.astronaut(), cv2.COLOR_RGB2GRAY) / 255.0, 4),
        "print_cat": (cv2.cvtColor(skdata.chelsea(), cv2.COLOR_RGB2GRAY) / 255.0, 4),
    }
    for family, (gray, n) in plates.items():
        gray = (
            cv2.resize(
                gray.astype(np.float32), None, fx=0.75, fy=0.75, interpolation=cv2.INTER_AREA
            )
            if gray.shape[0] > 400
            else gray
        )
        plate = make_plate(gray, rng)
        for i in range(1, n + 1):
            emit(family, i, pull_impression(rng, plate), ".png" if i == 1 else ".jpg")

    works = {
        "photo_coffee": (as_float(skdata.coffee()), 4),
        "photo_rocket": (as_float(skdata.rocket()), 4),
        "photo_cat": (as_float(skdata.chelsea()), 4),
        "photo_cat_recomposed": (cat_recomposed(), 3),
    }
    for family, (work, n) in works.items():
        for i in range(1, n + 1):
            emit(family, i, photograph(rng, work))

    with open(HERE / "families.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["image", "family"])
        writer.writerows(rows)
    total = sum(p.stat().st_size for p in out.iterdir())
    print(
        f"{len(rows)} images in {len(cartoons) + len(plates) + len(works)} families, "
        f"{total / 1e6:.2f} MB"
    )


if __name__ == "__main__":
    main()
