"""Measure every metric x clustering method (automatic k) on labelled sets; choose the default.

    .venv/bin/python bench/choose_default.py

Datasets: the sample artworks (families.csv) and two sets generated from
offline bases (tests/datasets.py): moderate copies, and stronger copies
(perspective) with hard negatives (the same subject in another composition).
Every combination runs with automatic k (silhouette where a k is chosen);
the score is the adjusted Rand index against the families. The default is
the combination with the best mean over the datasets (ties: the better
worst case). Prints one table per preprocessing and the winner.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.append(str(Path(__file__).resolve().parent.parent / "tests"))  # the set generator

from datasets import generated_set  # noqa: E402

from app.config import AnalysisConfig  # noqa: E402
from app.pipeline import run_analysis  # noqa: E402
from clustering import ClusteringConfig, cluster, evaluate_labels, read_labels  # noqa: E402
from preprocessing import load_folder  # noqa: E402
from similarity import fuse  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
METRICS = ["sift", "ssim", "cw-ssim", "mse", "brushstroke", "hog", "phash"]
VARIANTS = {"cw-ssim-fine": ("cw-ssim", {"first_scale": 0, "height": 3})}
FUSIONS = {
    "fused(sift,cw-ssim)": ["sift", "cw-ssim"],
    "fused(sift,cw-ssim-fine)": ["sift", "cw-ssim-fine"],
    "fused(all 5)": ["sift", "ssim", "cw-ssim", "mse", "brushstroke"],
}
METHODS = {
    "spectral": {"method": "spectral"},
    "affinity": {"method": "affinity"},
    "agglomerative": {"method": "agglomerative"},
    "kmeans(mds)": {"method": "kmeans"},
    "dbscan": {"method": "dbscan"},
    "hdbscan": {"method": "hdbscan"},
}
PREPROCESSING = {
    "none": {},
    "equalized": {"equalize": ["brightness", "contrast", "sharpness"]},
}


def datasets():
    samples = load_folder(ROOT / "sample_artworks")
    yield "samples", samples, read_labels(ROOT / "sample_artworks" / "families.csv")
    yield ("generated", *generated_set(n_bases=8, copies=4, seed=1))
    yield ("generated-hard", *generated_set(n_bases=8, copies=4, seed=2, strength=1.6, hard=True))


def matrices(images, pre: dict, cache_dir: str):
    """Every metric's matrix (and the variants and fusions) for one dataset."""
    # explicit: each metric with its own defaults, no fusion (not Atelier's default config)
    cfg = AnalysisConfig().replace(
        preprocess=pre,
        similarity={
            "metrics": METRICS,
            "metric_params": {},
            "fuse": "none",
            "cache_dir": cache_dir,
        },
    )
    result = run_analysis(images, cfg)
    mats = dict(result.matrices)
    for name, (metric, params) in VARIANTS.items():
        vcfg = cfg.replace(
            similarity={
                "metrics": [metric],
                "metric_params": {metric: params},
                "cache_dir": cache_dir,
            }
        )
        mats[name] = run_analysis(images, vcfg).matrices[metric]
    for name, parts in FUSIONS.items():
        mats[name] = fuse([mats[p] for p in parts])
    return mats, result.ids


def main() -> int:
    t0 = time.perf_counter()
    scores: dict[tuple[str, str, str], dict[str, float]] = {}
    names = [*METRICS, *VARIANTS, *FUSIONS]
    data = list(datasets())
    with tempfile.TemporaryDirectory() as cache_dir:
        for pre_name, pre in PREPROCESSING.items():
            for ds_name, images, truth in data:
                mats, ids = matrices(images, pre, cache_dir)
                for metric in names:
                    for method_name, method in METHODS.items():
                        r = cluster(mats[metric].values, ClusteringConfig(**method), random_state=0)
                        ev = evaluate_labels(ids, r.labels, truth)
                        scores.setdefault((pre_name, metric, method_name), {})[ds_name] = float(
                            ev["adjusted_rand"]
                        )
    ds_names = [d[0] for d in data]
    print(
        "adjusted Rand index, automatic k; datasets: "
        + ", ".join(
            f"{n} ({len(d[1])} images, {len(set(d[2].values()))} families)"
            for n, d in zip(ds_names, data, strict=True)
        )
    )
    best = None
    for pre_name in PREPROCESSING:
        print(f"\npreprocessing: {pre_name}")
        header = f"{'metric':<26} {'method':<14} " + " ".join(f"{d:>15}" for d in ds_names)
        print(header + f" {'mean':>7} {'worst':>7}")
        rows = []
        for metric in names:
            for method_name in METHODS:
                vals = [scores[(pre_name, metric, method_name)][d] for d in ds_names]
                rows.append((float(np.mean(vals)), float(np.min(vals)), metric, method_name, vals))
        rows.sort(key=lambda r: (-r[0], -r[1]))
        for mean, worst, metric, method_name, vals in rows:
            print(
                f"{metric:<26} {method_name:<14} "
                + " ".join(f"{v:>15.3f}" for v in vals)
                + f" {mean:>7.3f} {worst:>7.3f}"
            )
            key = (mean, worst)
            if best is None or key > best[0]:
                best = (key, pre_name, metric, method_name, vals)
    assert best is not None
    (mean, worst), pre_name, metric, method_name, vals = best
    print(
        f"\nbest: preprocessing {pre_name}, metric {metric}, method {method_name}: mean ARI "
        f"{mean:.3f}, worst {worst:.3f}, samples {vals[0]:.3f}"
    )
    print(f"measured in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
