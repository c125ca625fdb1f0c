"""The case study of docs/case-study-raphael.md: Atelier's default on 11 real copies.

Run from the repository root:  .venv/bin/python docs/make_case_study.py
Downloads the ``unraphael`` wheel once into Atelier's cache (the only network use,
on this explicit request; see app.paintings), runs the default analysis, prints the
clusters and the strongest pairs, and writes into docs/images/case-study/ the figures
that hold no pixels of the paintings (dendrogram, heatmap, the outlines of two pairs).
The paintings themselves are never written into the repository.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.config import AnalysisConfig  # noqa: E402
from app.paintings import fetch_paintings  # noqa: E402
from app.pipeline import run_analysis  # noqa: E402
from app.plots import dendrogram_figure, image_png, similarity_heatmap  # noqa: E402
from app.plots.evidence import contour_evidence_figure  # noqa: E402
from similarity import explain  # noqa: E402

OUT = ROOT / "docs" / "images" / "case-study"
PAIRS = (
    ("1_london_nat_gallery.jpg", "2_naples_museo_capodimonte.jpg"),
    ("1_london_nat_gallery.jpg", "9_zurich_kuny_collection.jpg"),
)


def main() -> None:
    folder = fetch_paintings()
    config = AnalysisConfig()
    result = run_analysis(folder, config)
    print(f"{len(result.ids)} paintings from {folder}")
    print(f"clustered matrix: {result.clustering_metric}; method {result.clustering.method}")
    for label, members in result.clusters().items():
        name = "noise (each its own)" if label < 0 else f"cluster {label}"
        print(f"  {name}: {', '.join(members)}")
    fused = result.matrices[result.clustering_metric].values
    iu = np.triu_indices(len(result.ids), k=1)
    order = np.argsort(-fused[iu])
    print("strongest pairs (" + ", ".join(result.matrices) + "):")
    for idx in order[:12]:
        i, j = int(iu[0][idx]), int(iu[1][idx])
        vals = "  ".join(f"{m.values[i, j]:.2f}" for m in result.matrices.values())
        print(f"  {result.ids[i]:<32} {result.ids[j]:<32} {vals}")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "dendrogram.png").write_bytes(image_png(dendrogram_figure(result)))
    heat = similarity_heatmap(result, result.clustering_metric)
    (OUT / "heatmap.png").write_bytes(image_png(heat))
    metric = config.similarity.metric("contour")
    images = {im.id: im for im in result.aligned.images}
    for k, (a, b) in enumerate(PAIRS, start=1):
        ev = explain(images[a], images[b], metric)
        rec = result.images[a]
        side = max(images[a].gray.shape)
        fig = contour_evidence_figure(
            a,
            b,
            ev,
            pixel_scale=max(rec.meta.width, rec.meta.height) / side,
            tolerance_px=metric.tolerance * side,
            backdrop=False,
        )
        (OUT / f"outlines_{k}.png").write_bytes(image_png(fig))
        print(f"contour {a} / {b}: {ev.similarity:.3f} (mirrored: {ev.mirrored})")
    print(f"figures in {OUT}")


if __name__ == "__main__":
    main()
