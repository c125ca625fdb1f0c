"""Make the figure of docs/tracing.md: the tracing test on a traced and a freehand copy.

Run from the repository root:  .venv/bin/python docs/make_tracing_figure.py
Writes docs/images/contour-tracing.png (procedural drawings, seeded; nothing downloaded).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "tests"))

from benchsets import _drawing, _local_warp, _repaint  # noqa: E402

from app.plots.evidence import contour_evidence_figure  # noqa: E402
from preprocessing.work import make_work_image  # noqa: E402
from similarity import explain, get_metric  # noqa: E402


def main() -> None:
    rng = np.random.default_rng(1)
    template = _drawing(rng)
    traced = _repaint(rng, _local_warp(rng, template, 0.005), "palette")
    freehand = _repaint(rng, _local_warp(rng, template, 0.03), "palette")
    metric = get_metric("contour", mirror=True)
    a = make_work_image("template", template, 256)
    panels = []
    for name, copy in (("traced copy, repainted", traced), ("freehand copy", freehand)):
        b = make_work_image(name, copy, 256)
        ev = explain(a, b, metric)
        fig = contour_evidence_figure(
            "template",
            name,
            ev,
            pixel_scale=max(template.shape[:2]) / 256,
            tolerance_px=metric.tolerance * 256,
        )
        panels.append(np.asarray(fig.convert("RGB")))
        print(f"{name}: {ev.similarity:.3f}")
    width = max(p.shape[1] for p in panels)
    stacked = np.vstack(
        [np.pad(p, ((0, 0), (0, width - p.shape[1]), (0, 0)), constant_values=255) for p in panels]
    )
    out = ROOT / "docs" / "images" / "contour-tracing.png"
    Image.fromarray(stacked).save(out, optimize=True)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
