"""Forensic commands: compare two images; rank references against a questioned image.

Both reuse the analysis pipeline's preparation and pairwise engine, so their
scores are the same numbers a batch analysis would give.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from preprocessing import ImageRecord, ImageSet, NoUsableImageError, load_folder, load_paths
from similarity import READY_METRICS, SimilarityMatrix

from ._atomic import atomic_write_bytes, atomic_write_text
from .config import AnalysisConfig
from .evidence import contour_metric, pair_evidence, registration
from .fullres import evidence_jpegs, register_originals
from .outputs import json_safe
from .pipeline import ProgressFn, compute_similarities, prepare_images
from .plots import image_png, thumbnail
from .report import render_forensic
from .versions import atelier_version, library_versions

__all__ = [
    "FORENSIC_METRICS",
    "CompareResult",
    "QueryResult",
    "compare",
    "query",
    "standing",
    "write_compare",
    "write_query",
]

#: Every registered metric that needs no extra input (the embedding metric needs a model).
FORENSIC_METRICS = READY_METRICS


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _config_for(config: AnalysisConfig, metrics: Sequence[str]) -> AnalysisConfig:
    # no fusion for a single pair: calibrating a matrix needs a population of pairs
    return config.replace(similarity={"metrics": list(metrics), "fuse": "none"})


@dataclass(frozen=True, eq=False)
class CompareResult:
    """Two images, every metric's similarity, and the evidence figures."""

    images: ImageSet
    scores: dict[str, float]
    figures: dict[str, bytes]
    config: AnalysisConfig
    started: str
    notes: list[str] = field(default_factory=list)


def compare(
    path_a: str | Path,
    path_b: str | Path,
    config: AnalysisConfig | None = None,
    *,
    metrics: Sequence[str] = FORENSIC_METRICS,
    progress: ProgressFn | None = None,
) -> CompareResult:
    """Compare two image files under every metric, with pair evidence.

    The pair is prepared as in an analysis (``config.preprocess``: equalization
    and alignment, e.g. the feature path with B aligned onto A), then every
    metric's similarity is computed, and the evidence figure drawn (SIFT
    matches and inliers, CW-SSIM map, overlay and difference).

    Raises
    ------
    NoUsableImageError
        If either file cannot be used (the reason is given).
    """
    config = _config_for(config or AnalysisConfig(), metrics)
    started = _now()
    images = load_paths([path_a, path_b], config=config.load)
    if len(images) != 2:
        reasons = "; ".join(f"{s.path}: {s.reason}" for s in images.skipped)
        raise NoUsableImageError(f"cannot compare: {reasons}")
    timings: dict[str, float] = {}
    _, aligned = prepare_images(images, config, None, progress, timings)
    matrices = compute_similarities(aligned, config, None, progress, timings)
    view = pair_evidence(aligned.images, matrices, config, 0, 1, record_a=images[0])
    figs = view.figures
    transform, by = registration(view)
    registered = register_originals(
        images[0],
        images[1],
        aligned.images[0],
        aligned.images[1],
        transform,
        max_side=config.report.evidence_side,
        by=by,
    )
    return CompareResult(
        images,
        view.scores,
        {
            "pair_evidence.png": image_png(figs["pair"]),
            "contour_evidence.png": image_png(figs["contour"]),
            # B registered onto A at the originals' resolution: one frame, flip between them
            **evidence_jpegs(registered, contour_metric(config), aligned.images[0].gray.shape[0]),
        },
        config,
        started,
        list(aligned.warnings),
    )


def standing(score: float, population: np.ndarray) -> dict[str, float]:
    """How unusual ``score`` is among ``population`` (similarities among the references).

    ``p_value``: the empirical probability that a pair of references is at
    least this similar, ``(1 + #{s >= score}) / (1 + N)`` (the +1 keeps it
    above 0 with a finite sample); ``z``: ``(score - mean) / std``;
    ``percentile``: the share of reference pairs below the score, in %.
    """
    pop = np.asarray(population, dtype=float)
    if pop.size == 0:
        return {"p_value": float("nan"), "z": float("nan"), "percentile": float("nan")}
    std = float(pop.std())
    return {
        "p_value": float((1 + np.count_nonzero(pop >= score)) / (1 + pop.size)),
        "z": float((score - pop.mean()) / std) if std > 0 else float("nan"),
        "percentile": float(100.0 * np.count_nonzero(pop < score) / pop.size),
    }


@dataclass(frozen=True, eq=False)
class QueryResult:
    """References ranked by similarity to a questioned image, each score with its standing."""

    questioned: str
    images: ImageSet
    matrices: dict[str, SimilarityMatrix]
    ranking: list[dict[str, Any]]
    figures: dict[str, bytes]
    config: AnalysisConfig
    started: str


def query(
    questioned: str | Path,
    references: str | Path,
    config: AnalysisConfig | None = None,
    *,
    top: int = 10,
    progress: ProgressFn | None = None,
) -> QueryResult:
    """Rank the images of a reference folder by similarity to a questioned image.

    Every configured metric (and their fusion, when there are several) scores
    the questioned image against each reference; each score's standing is
    measured against the scores among the references themselves
    (:func:`standing`), so "this matches template T" comes with how unusual
    such a match is between different references. Ranking is by the fused
    score (or the single metric's).

    Raises
    ------
    NoUsableImageError
        If the questioned image or every reference is unusable.
    """
    config = config or AnalysisConfig()
    refs = load_folder(references, config=config.load)
    qset = load_paths([questioned], config=config.load)
    if len(qset) != 1:
        raise NoUsableImageError(
            f"questioned image: {qset.skipped[0].path}: {qset.skipped[0].reason}"
        )
    if len(refs) == 0:
        raise NoUsableImageError(f"{references}: no usable reference image")
    return query_images(qset.records[0], refs, config, top=top, progress=progress)


def query_images(
    q_rec: ImageRecord,
    refs: ImageSet,
    config: AnalysisConfig,
    *,
    top: int = 10,
    progress: ProgressFn | None = None,
) -> QueryResult:
    """:func:`query` on images already loaded: the questioned image's record and the
    references (the web app's analysed images). The same ranking and standing as the
    command line's ``query``: by the matrix the analysis clusters (the pair model's
    probability by default), each score's standing among the references' own pairs."""
    started = _now()
    q_id = "questioned:" + q_rec.id
    combined = ImageSet(
        (type(q_rec)(q_id, q_rec.path, q_rec.sha256, q_rec.pixels, q_rec.meta), *refs.records),
        refs.skipped,
        refs.ignored,
        root=refs.root,
    )
    timings: dict[str, float] = {}
    _, aligned = prepare_images(combined, config, None, progress, timings)
    matrices = compute_similarities(aligned, config, None, progress, timings)
    key = "fused" if "fused" in matrices else config.similarity.metrics[0]
    n = len(combined)
    iu = np.triu_indices(n - 1, k=1)
    rows = []
    for j in range(1, n):
        row: dict[str, Any] = {"reference": combined.ids[j], "sha256": combined[j].sha256}
        for name, m in matrices.items():
            score = float(m.values[0, j])
            among = m.values[1:, 1:][iu]
            row[name] = score
            for stat, value in standing(score, among).items():
                row[f"{name}_{stat}"] = value
        rows.append(row)
    rows.sort(key=lambda r: -r[key])
    for rank, row in enumerate(rows, start=1):
        row["rank"] = rank
    top_rows = rows[: max(1, top)]
    figures = {}
    position = {im.id: k for k, im in enumerate(aligned.images)}
    for row in top_rows[:3]:
        figs = pair_evidence(
            aligned.images,
            matrices,
            config,
            position[q_id],
            position[row["reference"]],
            record_a=combined[q_id],
        ).figures
        figures[f"evidence_rank_{row['rank']:02d}.png"] = image_png(figs["pair"])
        figures[f"evidence_rank_{row['rank']:02d}_contour.png"] = image_png(figs["contour"])
    return QueryResult(q_id, combined, matrices, top_rows, figures, config, started)


def _inputs(images: ImageSet) -> list[dict[str, Any]]:
    return [
        {
            "image": r.id,
            "sha256": r.sha256,
            "width": r.meta.width,
            "height": r.meta.height,
            "path": str(r.path) if r.path else None,
        }
        for r in images
    ]


def _thumb(images: ImageSet, image_id: str) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".png", thumbnail(images[image_id].pixels, side=160)[:, :, ::-1])
    return buf.tobytes() if ok else b""


def _write(
    out: Path,
    kind: str,
    record: dict[str, Any],
    figures: dict[str, bytes],
    thumbs: dict[str, bytes],
    table: list[dict[str, Any]],
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, png in figures.items():
        atomic_write_bytes(out / "figures" / name, png)
    atomic_write_text(
        out / f"{kind}.json", json.dumps(json_safe(record), indent=2, ensure_ascii=False) + "\n"
    )
    if table:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(table[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(table)
        atomic_write_text(out / f"{kind}.csv", buf.getvalue())
    atomic_write_text(
        out / "report.html", render_forensic(kind, json_safe(record), figures, thumbs)
    )


def write_compare(result: CompareResult, out_dir: str | Path) -> None:
    """compare.json, compare.csv, figures/pair_evidence.png and report.html."""
    record = {
        "software": {"name": "atelier", "version": atelier_version()},
        "command": "compare",
        "started": result.started,
        "finished": _now(),
        "inputs": _inputs(result.images),
        "scores": result.scores,
        "notes": result.notes,
        "config": result.config.to_dict(),
        "libraries": library_versions(),
    }
    table = [{"metric": k, "similarity": v} for k, v in result.scores.items()]
    thumbs = {r.id: _thumb(result.images, r.id) for r in result.images}
    _write(Path(out_dir), "compare", record, result.figures, thumbs, table)


def write_query(result: QueryResult, out_dir: str | Path) -> None:
    """query.json, query.csv (the ranking), evidence figures and report.html."""
    record = {
        "software": {"name": "atelier", "version": atelier_version()},
        "command": "query",
        "started": result.started,
        "finished": _now(),
        "questioned": result.questioned,
        "inputs": _inputs(result.images),
        "skipped": [{"path": s.path, "reason": s.reason} for s in result.images.skipped],
        "ranking": result.ranking,
        "standing": "p_value = (1 + #reference pairs at least as similar) / (1 + #reference "
        "pairs); z = (score - mean) / std of the similarities among the references",
        "config": result.config.to_dict(),
        "libraries": library_versions(),
    }
    thumbs = {result.questioned: _thumb(result.images, result.questioned)}
    for row in result.ranking:
        thumbs[row["reference"]] = _thumb(result.images, row["reference"])
    _write(Path(out_dir), "query", record, result.figures, thumbs, result.ranking)
