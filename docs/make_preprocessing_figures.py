"""Make the figures of docs/preprocessing.md.

Run from the repository root:  .venv/bin/python docs/make_preprocessing_figures.py
Writes docs/images/motion_models.png and docs/images/alignment_families.png.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from matplotlib.figure import Figure

from preprocessing import load_folder
from preprocessing.align import align
from preprocessing.work import make_work_image

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "images"


def grid_image(size: int = 160) -> np.ndarray:
    img = np.full((size, size), 255, np.uint8)  # OpenCV draws text on uint8 only
    for k in range(0, size, 16):
        img[k : k + 2, :] = 50
        img[:, k : k + 2] = 50
    cv2.putText(img, "A", (52, 110), cv2.FONT_HERSHEY_SIMPLEX, 2.6, 0, 5)
    return img.astype(np.float32) / 255.0


def motion_models() -> None:
    g = grid_image()
    s = g.shape[0]
    c = (s - 1) / 2
    src = np.float32([[0, 0], [s, 0], [s, s], [0, s]])
    warps = {
        "translation\n(shift)": np.float32([[1, 0, 14], [0, 1, -9]]),
        "rigid\n(shift + rotation)": cv2.getRotationMatrix2D((c, c), 12, 1.0),
        "scaled rotation\n(+ uniform scale)": cv2.getRotationMatrix2D((c, c), 12, 0.8),
        "affine\n(+ shear, aspect)": np.float32([[0.9, 0.25, 5], [0.05, 0.75, 20]]),
    }
    panels = [("original", g)]
    for name, m in warps.items():
        panels.append((name, cv2.warpAffine(g, m, (s, s), borderValue=0.6)))
    # bilinear: corners moved independently, straight lines stay straight only along the axes
    dst = np.float32([[10, 4], [s - 4, 18], [s - 20, s - 8], [6, s - 14]])
    rows, cols = np.mgrid[0:s, 0:s].astype(np.float32) / s
    map_c = (
        (1 - cols) * (1 - rows) * dst[0, 0]
        + cols * (1 - rows) * dst[1, 0]
        + cols * rows * dst[2, 0]
        + (1 - cols) * rows * dst[3, 0]
    )
    map_r = (
        (1 - cols) * (1 - rows) * dst[0, 1]
        + cols * (1 - rows) * dst[1, 1]
        + cols * rows * dst[2, 1]
        + (1 - cols) * rows * dst[3, 1]
    )
    panels.append(
        (
            "bilinear\n(corners move freely)",
            cv2.remap(g, map_c, map_r, cv2.INTER_LINEAR, borderValue=0.6),
        )
    )
    h = cv2.getPerspectiveTransform(src, np.float32([[20, 10], [s - 5, 0], [s, s], [0, s - 25]]))
    panels.append(
        ("homography\n(features: perspective)", cv2.warpPerspective(g, h, (s, s), borderValue=0.6))
    )
    fig = Figure(figsize=(2.0 * len(panels), 2.6))
    for i, (name, img) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        ax.imshow(img, cmap="gray", vmin=0, vmax=1)
        ax.set_title(name, fontsize=8)
        ax.set_axis_off()
    fig.suptitle(
        "The distortions each motion model can undo "
        "(each pystackreg model also undoes those to its left)",
        fontsize=9,
    )
    fig.savefig(OUT / "motion_models.png", dpi=110, bbox_inches="tight")


def alignment_families() -> None:
    images = load_folder(ROOT / "sample_artworks" / "images")
    families = {
        "print_camera (5 impressions)": ("print_camera", "translation", "auto", "affine"),
        "photo_coffee (4 photographs)": ("photo_coffee", "features", "auto", "homography"),
    }
    fig = Figure(figsize=(9, 6.4))
    for row, (title, (prefix, method, ref, fmodel)) in enumerate(families.items()):
        recs = [r for r in images if r.id.startswith(prefix + "_")]
        work = [make_work_image(r.id, r.pixels, 256) for r in recs]
        out = align(work, method=method, reference=ref, feature_model=fmodel)
        nccs = [q.ncc_after for q in out.quality]
        before = [q.ncc_before for q in out.quality]
        for col, (img, label) in enumerate(
            ((out.mean_before, "mean before"), (out.mean_after, f"mean after ({method})"))
        ):
            ax = fig.add_subplot(2, 2, 2 * row + col + 1)
            ax.imshow(img, cmap="gray", vmin=0, vmax=1)
            stat = np.mean(before) if col == 0 else np.mean(nccs)
            ax.set_title(f"{title}\n{label}; mean NCC {stat:.2f}", fontsize=8)
            ax.set_axis_off()
    fig.suptitle(
        "Mean image of a family before and after alignment (sharper = in register)", fontsize=9
    )
    fig.savefig(OUT / "alignment_families.png", dpi=100, bbox_inches="tight")


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    motion_models()
    alignment_families()
