"""Write an analysis to an output folder: CSVs, run.json, figures, report.html.

Every file is written atomically (temporary name, then rename), so an
interrupted run never leaves a half-written output.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import hashlib
import io
import json
import math
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from PIL import Image

from preprocessing import AtelierError, ImageRecord, WorkImage
from similarity import SimilarityMatrix
from similarity.cache import FeatureCache, default_cache_dir

from ._atomic import atomic_write_bytes, atomic_write_text, clear_stale_parts
from ._digest import feed, feed_array, source_digest
from .evidence import contour_metric, pair_evidence, registration
from .export import cluster_folder
from .fullres import evidence_jpegs, register_originals
from .pipeline import AnalysisResult
from .plots import (
    GRID_THUMB_SIDE,
    alignment_figure,
    cluster_grid,
    dendrogram_figure,
    equalization_figure,
    figure_png,
    image_png,
    k_selection_figure,
    scatter_figure,
    silhouette_figure,
    similarity_heatmap,
    thumbnail,
)
from .report import input_thumbnail, render_report
from .versions import atelier_version, library_versions

__all__ = [
    "ReportError",
    "build_figures",
    "evidence_cache",
    "html_to_pdf",
    "run_record",
    "top_pairs",
    "write_outputs",
    "FIGURE_MODULES",
]


def json_safe(value: Any) -> Any:
    """JSON has no NaN/inf: turn them into null, recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def _matrix_csv(matrix: SimilarityMatrix) -> str:
    """A matrix as CSV: square (``image`` and one column an image); in shortlist mode
    one row a compared pair (``image_a,image_b,similarity``, a before b in the matrix'
    order): at 10,000 images a square file would be 100 million values, almost all of
    them the zeros of pairs never compared."""
    ids = matrix.ids
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    if matrix.partial:
        writer.writerow(["image_a", "image_b", "similarity"])
        pairs, values = matrix.upper()
        rows, cols = pairs[:, 0].tolist(), pairs[:, 1].tolist()
        for i, j, v in zip(rows, cols, values.tolist(), strict=True):
            writer.writerow([ids[i], ids[j], repr(v)])
        return buf.getvalue()
    writer.writerow(["image", *ids])
    for image_id, row in zip(ids, matrix.values, strict=True):
        writer.writerow([image_id, *(repr(float(v)) for v in row)])
    return buf.getvalue()


def _clusters_csv(result: AnalysisResult) -> str:
    c = result.clustering
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["image", "cluster", "exemplar", "silhouette"])
    exemplars = set(c.exemplars.values())
    for i, (image_id, lab) in enumerate(zip(result.ids, c.labels.tolist(), strict=True)):
        sil = float(c.silhouette[i])
        writer.writerow(
            [image_id, lab, int(i in exemplars), "" if math.isnan(sil) else f"{sil:.6f}"]
        )
    return buf.getvalue()


def _equalization_record(result: AnalysisResult) -> dict[str, Any] | None:
    eq = result.equalization
    if eq is None:
        return None
    return {
        "measures": list(eq.measures),
        "target": eq.target,
        "reference": result.config.preprocess.equalize_reference or "median of the set",
        "summary": eq.summary(),
        "images": [
            {
                "image": image_id,
                **{f"{m}_before": b[m] for m in b},
                **{f"{m}_after": a[m] for m in a},
                "note": note,
            }
            for image_id, b, a, note in zip(result.ids, eq.before, eq.after, eq.notes, strict=True)
        ],
    }


def _alignment_record(result: AnalysisResult) -> dict[str, Any]:
    al = result.aligned
    return {
        "method": al.method,
        "reference": al.reference,
        "rounds": al.rounds,
        "warnings": list(al.warnings),
        "images": [
            {
                "image": q.id,
                "ncc_before": q.ncc_before,
                "ncc_after": q.ncc_after,
                "inliers": q.inliers,
                "aligned": q.aligned,
                "note": q.note,
                "transform": np.asarray(im.transform).round(6).tolist(),
            }
            for q, im in zip(al.quality, al.images, strict=True)
        ],
    }


def run_record(result: AnalysisResult, *, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The content of run.json: what was run, on what, how, with which versions."""
    c = result.clustering
    ids = result.ids
    record: dict[str, Any] = {
        "software": {"name": "atelier", "version": atelier_version()},
        "started": result.started,
        "finished": result.finished,
        "config": result.config.to_dict(),
        "inputs": [
            {
                "image": r.id,
                "sha256": r.sha256,
                "width": r.meta.width,
                "height": r.meta.height,
                "format": r.meta.format,
                "pixel_format": r.meta.pixel_format,
                "bit_depth": r.meta.bit_depth,
                "file_size": r.meta.file_size,
                "exif_datetime": r.meta.exif_datetime,
                "notes": list(r.meta.notes),
                "duplicate_of": r.meta.duplicate_of,
            }
            for r in result.images
        ],
        "skipped": [{"path": s.path, "reason": s.reason} for s in result.images.skipped],
        "ignored": [{"path": s.path, "reason": s.reason} for s in result.images.ignored],
        "compute": result.compute,
        "shortlist": result.shortlist,
        "equalization": _equalization_record(result),
        "alignment": _alignment_record(result),
        "similarity": {
            name: {
                "params": m.params,
                "pairs": m.pairs_compared(),
                "min": float(m.off_diagonal().min()) if len(m) > 1 else None,
                "mean": float(m.off_diagonal().mean()) if len(m) > 1 else None,
                "max": float(m.off_diagonal().max()) if len(m) > 1 else None,
                "cache": m.stats,
            }
            for name, m in result.matrices.items()
        },
        "clustering": {
            "metric": result.clustering_metric,
            "method": c.method,
            "consumes": c.consumes,
            "features": c.features,
            "k": c.k,
            "criterion": c.criterion,
            "selection": c.selection,
            "scores": c.scores,
            "exemplars": {str(lab): ids[i] for lab, i in c.exemplars.items()},
            "noise": int((c.labels < 0).sum()),
            "warnings": list(c.warnings),
        },
        "cache": {
            "enabled": result.config.similarity.cache,
            "directory": str(result.config.similarity.cache_dir or default_cache_dir()),
        },
        "evaluation": result.evaluation,
        "timings": {k: round(v, 4) for k, v in result.timings.items()},
        "libraries": library_versions(),
    }
    if extra:
        record.update(extra)
    return json_safe(record)


def top_pairs(result: AnalysisResult, count: int) -> dict[str, list[tuple[int, int]]]:
    """The most similar pairs within clusters and across clusters (in the clustered matrix)."""
    pairs, values = result.matrices[result.clustering_metric].upper()  # compared ones
    labels = result.clustering.labels
    order = np.argsort(-values, kind="stable")
    within: list[tuple[int, int]] = []
    across: list[tuple[int, int]] = []
    for idx in order.tolist():
        i, j = int(pairs[idx, 0]), int(pairs[idx, 1])
        same = labels[i] == labels[j] and labels[i] >= 0
        target = within if same else across
        if len(target) < count:
            target.append((i, j))
        if len(within) >= count and len(across) >= count:
            break
    return {"within": within, "across": across}


class _PairJob(NamedTuple):
    """One pair's evidence job with everything it draws from but the configuration, so
    a worker needs no more of the analysis than the figures' light payload."""

    kind: str  # within or across
    rank: int
    i: int
    j: int
    records: tuple[ImageRecord, ImageRecord]
    works: tuple[WorkImage, WorkImage]
    scores: dict[str, float]


def _evidence_jobs(result: AnalysisResult) -> list[tuple[str, Any]]:
    count = result.config.report.evidence_pairs
    if count == 0 or len(result.ids) < 2:
        return []
    ids, works = result.ids, result.aligned.images
    return [
        (
            "evidence",
            _PairJob(
                kind,
                rank,
                i,
                j,
                (result.images[ids[i]], result.images[ids[j]]),
                (works[i], works[j]),
                {name: m.value(i, j) for name, m in result.matrices.items()},
            ),
        )  # fmt: skip
        for kind, pairs in top_pairs(result, count).items()
        for rank, (i, j) in enumerate(pairs, start=1)
    ]


@functools.cache
def _feature_cache(directory: str | None, size_limit_gb: float) -> FeatureCache:
    """One handle per process on the analysis' feature cache (a worker opens its own)."""
    return FeatureCache(directory, size_limit_gb=size_limit_gb)


def evidence_cache(result: AnalysisResult) -> FeatureCache | None:
    """Where a pair's evidence reads the analysis' features: the run's private cache (a
    run without a cache), else the feature cache it used (one handle a process), else
    none. Features not there are extracted, and kept there."""
    cache = result.private_cache
    sim = result.config.similarity
    if cache is None and sim.cache:
        cache = _feature_cache(sim.cache_dir, sim.cache_size_gb)
    return cache


def _draw_evidence(result: AnalysisResult, job: _PairJob) -> dict[str, bytes]:
    """The pair's evidence figures, and B registered onto A at the originals' resolution
    (up to ``report.evidence_side``; a JPEG file beside the report, linked from it).
    Drawn from the job's own images and scores, and the analysis' configuration."""
    (record_a, record_b), (work_a, work_b) = job.records, job.works
    pair = {
        name: SimilarityMatrix((work_a.id, work_b.id), np.array([[1.0, s], [s, 1.0]]), name)
        for name, s in job.scores.items()
    }
    cache = evidence_cache(result)
    view = pair_evidence(job.works, pair, result.config, 0, 1, record_a=record_a, cache=cache)
    transform, by = registration(view)
    registered = register_originals(
        record_a,
        record_b,
        work_a,
        work_b,
        transform,
        max_side=result.config.report.evidence_side,
        by=by,
    )
    stem = f"pair_{job.kind}_{job.rank:02d}"
    # same frame and size: flip between them in any viewer
    views = evidence_jpegs(registered, contour_metric(result.config), work_a.gray.shape[0])
    return {
        f"{stem}.png": image_png(view.figures["pair"]),
        f"{stem}_contour.png": image_png(view.figures["contour"]),
        **{f"{stem}_{name}": data for name, data in views.items()},
    }


def _figure_payload(result: AnalysisResult, *, thumbnails: bool = True) -> AnalysisResult:
    """The analysis as the figures other than pair evidence read it: each image as a
    thumbnail of the grids' size (uint8) instead of its pixels, no work images' pixels,
    no equalized copies. Every figure but the evidence is drawn from it, here or on a
    worker, so the figures are the same either way. Workers receive it once, without
    the thumbnails (``thumbnails=False``: no pixels at all), which only the figures
    drawn here read (at a thousand images, 77 MB every worker had to be sent)."""
    records = tuple(
        dataclasses.replace(
            r,
            pixels=thumbnail(r.pixels, side=GRID_THUMB_SIDE)
            if thumbnails
            else np.zeros((0, 0, 3), np.uint8),
        )
        for r in result.images.records
    )
    empty = np.zeros((0, 0), np.float32)
    works = tuple(
        dataclasses.replace(w, gray=empty, mask=empty.astype(bool)) for w in result.aligned.images
    )
    eq = result.equalization
    return dataclasses.replace(
        result,
        images=dataclasses.replace(result.images, records=records),
        aligned=dataclasses.replace(result.aligned, images=works),
        equalization=None if eq is None else dataclasses.replace(eq, images=[]),
    )


#: The figures drawn in this process (:data:`_LOCAL`), as pictures before they are
#: encoded: ``picture(result, argument) -> {file name: image}``.
_PICTURE: dict[str, Callable[[AnalysisResult, Any], dict[str, Image.Image]]] = {
    "clusters": lambda r, _: {"clusters.png": cluster_grid(r)},
    "scatter": lambda r, _: {"scatter.png": scatter_figure(r, embedding=r.config.report.embedding)},
    "grid": lambda r, label: {cluster_folder(label) + ".png": cluster_grid(r, label=label)},
}


def _encoded(pictures: Mapping[str, Image.Image]) -> dict[str, bytes]:
    return {name: image_png(picture) for name, picture in pictures.items()}


def _draw_picture(kind: str, result: AnalysisResult, arg: Any) -> dict[str, bytes]:
    return _encoded(_PICTURE[kind](result, arg))


def _draw_here(result: AnalysisResult, jobs: list[tuple[str, Any]]) -> list[dict[str, bytes]]:
    """Each job's figures drawn in this process, in job order. The pictures of
    :data:`_PICTURE` are composed in turn and PNG-encoded on two threads meanwhile:
    Pillow's encoder releases the GIL, and encoding was most of a cluster grid's time
    (17 of 20 ms; 60 grids 0.96 s on one thread, 0.55 s on two)."""
    from concurrent.futures import Future, ThreadPoolExecutor

    drawn: list[dict[str, bytes] | Future[dict[str, bytes]]] = []
    with ThreadPoolExecutor(2) as encoder:
        for kind, arg in jobs:
            if kind in _PICTURE:
                drawn.append(encoder.submit(_encoded, _PICTURE[kind](result, arg)))
            else:
                drawn.append(_DRAW[kind](result, arg))
        return [d.result() if isinstance(d, Future) else d for d in drawn]


#: Figure jobs by kind: ``draw(result, argument) -> {file name: PNG bytes}``. Module
#: level, so a worker process draws a job from its name and argument alone.
_DRAW: dict[str, Callable[[AnalysisResult, Any], dict[str, bytes]]] = {
    **{kind: functools.partial(_draw_picture, kind) for kind in _PICTURE},
    "dendrogram": lambda r, _: {"dendrogram.png": image_png(dendrogram_figure(r))},
    "silhouette": lambda r, _: {"silhouette.png": image_png(silhouette_figure(r))},
    "heatmap": lambda r, m: {f"heatmap_{m}.png": image_png(similarity_heatmap(r, m))},
    "equalization": lambda r, _: {"equalization.png": figure_png(equalization_figure(r))},
    "alignment": lambda r, _: {"alignment.png": figure_png(alignment_figure(r))},
    "k_selection": lambda r, _: {"k_selection.png": image_png(k_selection_figure(r))},
    "evidence": _draw_evidence,
}

_WORKER: dict[str, AnalysisResult] = {}


def _worker_init(result: AnalysisResult) -> None:
    from preprocessing.parallel import single_threaded

    single_threaded()
    _WORKER["result"] = result


def _worker_draw(job: tuple[str, Any]) -> dict[str, bytes]:
    return _DRAW[job[0]](_WORKER["result"], job[1])


#: What figure workers import: preloaded by the fork server (:func:`warm_forkserver`).
FIGURE_MODULES = ("matplotlib.figure", "app.outputs")

#: Figure kinds drawn in this process, never on workers: they read the images'
#: thumbnails, which workers are not sent, and cost little (a cluster's grid 3 ms to
#: compose, 17 ms to encode, on threads: :func:`_draw_here`).
_LOCAL = frozenset(_PICTURE)


#: From this many pair evidence jobs, the figure workers are worth starting.
FIGURE_POOL_MIN_EVIDENCE = 4

#: Above this many images the figures are drawn in this process: each worker is sent the
#: analysis with its n x n matrices (each metric's, the combined one, the clustering's
#: distances), 3.6 GB a worker at 10,000 images, which killed such a run for memory.
FIGURE_POOL_MAX_IMAGES = 4000


def figure_workers(evidence: int, n_images: int) -> int:
    """How many worker processes the figure jobs are worth, ``evidence`` of them pair
    evidence (before the cores and the configuration cap it; under 2 means none, every
    figure is drawn here).

    Only the evidence repays them: 0.45 s a pair at 256 px, about 1 s at 640 px, where
    every other figure is composed in pixels in tenths of a second (at 1,000 images a
    heatmap 0.23 s, the dendrogram 0.07 s, the silhouettes 0.1 s). Measured on 1,000
    analysed images with only k changed (a few new pairs): the figures took 2.8-3.1 s
    with workers, 1.9-2.0 s here; all of a first run's figures at 72 images of 640 px
    (six pairs, their contour features already in the cache) 1.9-2.4 s with workers,
    1.7-2.3 s here: no gain either way, so a first run keeps its workers. Above
    :data:`FIGURE_POOL_MAX_IMAGES` none: the analysis they would be sent is too large.
    """
    if n_images > FIGURE_POOL_MAX_IMAGES or evidence < FIGURE_POOL_MIN_EVIDENCE:
        return 0
    return evidence // 2


def _draw_all(result: AnalysisResult, jobs: list[tuple[str, Any]]) -> list[dict[str, bytes]]:
    """Every job's figures, in job order. Grids and the scatter plot are drawn here; the
    other figures on worker processes when there are cores and enough pair evidence to
    repay starting the workers (:func:`figure_workers`; they start while this process
    makes the thumbnails and draws: a fork server's first start imports the scientific
    stack, about 2 s), else here too."""
    from preprocessing.parallel import resolve_jobs

    local = [k for k, (kind, _) in enumerate(jobs) if kind in _LOCAL]
    # heaviest first, so that no worker is left with a long job at the end
    remote = sorted(set(range(len(jobs))) - set(local), key=lambda k: jobs[k][0] != "evidence")
    evidence = sum(jobs[k][0] == "evidence" for k in remote)
    workers = min(resolve_jobs(result.config.n_jobs), figure_workers(evidence, len(result.ids)))
    if workers < 2 or result.config.scheduler:
        return _draw_here(_figure_payload(result), jobs)
    from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
    from multiprocessing import get_context

    ctx = get_context("forkserver")
    bare = _figure_payload(result, thumbnails=False)
    with (
        ProcessPoolExecutor(workers, ctx, _worker_init, (bare,)) as pool,
        ThreadPoolExecutor(1) as feeder,
    ):
        futures = feeder.submit(lambda: [pool.submit(_worker_draw, jobs[k]) for k in remote])
        payload = _figure_payload(result) if local else bare
        drawn = dict(zip(local, _draw_here(payload, [jobs[k] for k in local]), strict=True))
        drawn.update(zip(remote, (f.result() for f in futures.result()), strict=True))
    return [drawn[k] for k in range(len(jobs))]


#: Where write_outputs records what each reusable figure was drawn from.
FIGURE_KEYS = "figures/.keys.json"

#: Bumped whenever a keyed figure's drawing changes in a way its inputs do not show.
_FIGURE_FORMAT = "figures-5"


def _array_digest(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        feed_array(h, a)
    return h.hexdigest()


def _key(parts: list[Any]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def grid_key(result: AnalysisResult, label: int, members: list[str]) -> str:
    """What one cluster's grid figure is drawn from: whether it is the noise, its members
    (ids and SHA-256, in order), its exemplar and the software version; not its number,
    which the figure does not show. Equal keys draw the same figure, so an unchanged
    cluster's figure is reused across runs, under its new number if another clustering
    renumbered it."""
    ex = result.clustering.exemplars.get(label)
    return _key(
        [
            atelier_version(),
            "grid-4",
            label < 0,
            [(i, result.images[i].sha256) for i in members],
            None if ex is None else result.ids[ex],
        ]
    )


def evidence_key(result: AnalysisResult, i: int, j: int) -> str:
    """What the evidence of images ``i`` and ``j`` is drawn from: both originals (SHA-256),
    both work images as compared (pixels, mask, alignment), every matrix's score of the
    pair, and every setting before clustering (the metrics explain the pair with them).
    Not the clustering: the same pair keeps its evidence when only the clusters change."""
    config = result.config.to_dict()
    a, b = result.aligned.images[i], result.aligned.images[j]
    return _key(
        [
            atelier_version(),
            _FIGURE_FORMAT,
            "evidence",
            [(result.ids[k], result.images[result.ids[k]].sha256) for k in (i, j)],
            _array_digest(a.gray, a.mask, a.transform, b.gray, b.mask, b.transform),
            {name: m.value(i, j) for name, m in result.matrices.items()},
            {k: config[k] for k in ("load", "preprocess", "similarity", "random_state")},
            config["report"]["evidence_side"],
        ]
    )


def heatmap_key(result: AnalysisResult, metric: str, order: list[int]) -> str:
    """What a heatmap is drawn from: the matrix, the images' order (the dendrogram's
    leaves) and the clusters along it, the names."""
    return _key(
        [
            atelier_version(),
            _FIGURE_FORMAT,
            "heatmap",
            metric,
            [(i, result.images[i].sha256) for i in result.ids],
            _array_digest(*result.matrices[metric].digest_arrays()),
            order,
            result.clustering.labels[order].tolist(),
        ]
    )


def analysis_key(result: AnalysisResult) -> str:
    """What the figures of the whole analysis (overview grid, dendrogram, scatter plot,
    silhouettes, k selection, equalization, alignment) are drawn from: the analysis
    itself, without the pixels (each image is in it by its SHA-256 and the settings that
    made its work image), the timings and the cache statistics. Any other change, a
    score, a label, a setting, gives another key and the figures are drawn again."""
    bare = dataclasses.replace(
        _figure_payload(result, thumbnails=False),
        matrices={k: m.with_stats({}) for k, m in result.matrices.items()},
        timings={},
        compute={},
        started="",
        finished="",
    )
    digest = hashlib.sha256()
    feed(digest, bare)
    return _key([atelier_version(), _FIGURE_FORMAT, digest.hexdigest()])


def _job_stem(kind: str, arg: Any) -> str:
    """The file names a keyed job writes start with this."""
    if kind == "grid":
        return cluster_folder(arg)
    if kind == "heatmap":
        return f"heatmap_{arg}"
    if kind == "evidence":
        return f"pair_{arg.kind}_{arg.rank:02d}"
    return kind


def build_figures(
    result: AnalysisResult,
    *,
    reuse: Mapping[str, Mapping[str, bytes]] | None = None,
    keys: dict[str, tuple[str, dict[str, bytes]]] | None = None,
) -> dict[str, bytes]:
    """Figure file name -> PNG bytes, drawn in parallel where there are cores.

    ``reuse`` maps a figure job's key (:func:`grid_key`, :func:`evidence_key`,
    :func:`heatmap_key`, and for the figures of the whole analysis its kind and
    :func:`analysis_key`) to the files an earlier run drew for it (by the part
    of their names after the job's stem): a job with a known key is taken from
    there instead of drawn again, under this run's names. ``keys``, when given,
    is filled with each keyed job's key and files: ``stem -> (key, files)``.
    A keyed job found neither there nor in the feature cache (when the analysis
    uses one: :class:`_FigureStore`) is drawn, and stored there. Only figures
    the report shows are drawn.
    """
    jobs: list[tuple[str, Any]] = []
    keyed: dict[int, tuple[str, str]] = {}  # job index -> (stem, key)
    known: dict[str, bytes] = {}
    grid_names = []
    store = _FigureStore(result)

    def add(kind: str, arg: Any, key: str) -> None:
        stem = _job_stem(kind, arg)
        earlier = reuse.get(key) if reuse else None
        if earlier is None:
            earlier = store.get(key)
        if earlier is not None:
            files = {stem + suffix: png for suffix, png in earlier.items()}
            known.update(files)
            if keys is not None:
                keys[stem] = (key, files)
        else:
            keyed[len(jobs)] = (stem, key)
            jobs.append((kind, arg))

    whole = analysis_key(result)
    for kind in ("clusters", "dendrogram", "scatter", "silhouette"):
        add(kind, None, _key([kind, whole]))
    for lab, members in result.clusters().items():
        grid_names.append(cluster_folder(lab) + ".png")
        add("grid", lab, grid_key(result, lab, members))
    if result.matrices:
        from .plots.structure import leaf_order

        order = leaf_order(result)
        for metric in result.matrices:
            add("heatmap", metric, heatmap_key(result, metric, order))
    if result.equalization is not None:
        add("equalization", None, _key(["equalization", whole]))
    if result.aligned.method != "none":
        add("alignment", None, _key(["alignment", whole]))
    if len(result.clustering.selection) > 1:
        add("k_selection", None, _key(["k_selection", whole]))
    for kind, arg in _evidence_jobs(result):
        add(kind, arg, evidence_key(result, arg.i, arg.j))
    drawn: dict[str, bytes] = {}
    parts = _draw_all(result, jobs) if jobs else []  # no thumbnails made when all are known
    for index, part in enumerate(parts):
        drawn.update(part)
        if index in keyed:
            stem, key = keyed[index]
            store.add(key, {name[len(stem) :]: data for name, data in part.items()})
            if keys is not None:
                keys[stem] = (key, part)
    store.save()
    drawn.update(known)
    # the order the report and the folder list them in
    head = ["clusters.png", "dendrogram.png", "scatter.png", "silhouette.png", *grid_names]
    return {name: drawn[name] for name in head} | {
        name: png for name, png in drawn.items() if name not in head
    }


@functools.cache
def _figure_code() -> str:
    """SHA-256 of the figure code (the ``app`` package's modules and plots): a figure
    stored in the cache by other code is not reused."""
    here = Path(__file__).parent
    code = [*here.glob("*.py"), *here.glob("plots/*.py"), *here.glob("report/*.py")]
    return source_digest(sorted(code))


class _FigureStore:
    """Keyed figure jobs' files in the analysis' feature cache (none with ``--no-cache``),
    beside those in the output folder: a clustering tried before, in any folder, has
    its figures back without drawing them (``{suffix after the stem: bytes}``)."""

    def __init__(self, result: AnalysisResult) -> None:
        sim = result.config.similarity
        self._cache = _feature_cache(sim.cache_dir, sim.cache_size_gb) if sim.cache else None
        self._new: dict[str, dict[str, bytes]] = {}

    def __bool__(self) -> bool:
        """Whether there is a cache to keep figures in."""
        return self._cache is not None

    def _name(self, key: str) -> str:
        return f"figure/{_figure_code()}/{key}"

    def get(self, key: str) -> dict[str, bytes] | None:
        if self._cache is None:
            return None
        hit, files = self._cache.get_value(self._name(key))
        return files if hit and isinstance(files, dict) else None

    def add(self, key: str, files: dict[str, bytes]) -> None:
        self._new[key] = files

    def save(self) -> None:
        if self._cache is not None and self._new:
            self._cache.put_values({self._name(k): v for k, v in self._new.items()})
        self._new = {}


def _input_thumbnails(result: AnalysisResult) -> dict[str, bytes]:
    """Each input's thumbnail for the report's inputs table (:func:`input_thumbnail`),
    made once: later runs take it from the cache, keyed by what the pixels it is made
    from are decoded from (the file's SHA-256, the load settings, the work size). At
    a thousand images, making them again cost 0.5 s of every re-run."""
    store = _FigureStore(result)
    if not store:
        return {}
    config = result.config.to_dict()
    how = [config["load"], config["preprocess"]["work_size"]]
    thumbs = {}
    for record in result.images.records:
        key = _key(["input-thumbnail", record.sha256, how])
        files = store.get(key)
        if files is None or ".jpg" not in files:
            files = {".jpg": input_thumbnail(record.pixels)}
            store.add(key, files)
        thumbs[record.id] = files[".jpg"]
    store.save()
    return thumbs


def _earlier_figures(out: Path) -> dict[str, dict[str, bytes]]:
    """Key -> {file name after the stem: PNG/JPEG bytes} of the keyed figure jobs an
    earlier run wrote in ``out`` (only jobs whose every file still holds what that run
    wrote)."""
    try:
        manifest = json.loads((out / FIGURE_KEYS).read_text())
        entries = [
            (str(stem), str(key), {str(s): str(d) for s, d in files.items()})
            for stem, (key, files) in manifest["jobs"].items()
        ]
    except (OSError, ValueError, TypeError, AttributeError, KeyError):
        return {}
    found: dict[str, dict[str, bytes]] = {}
    for stem, key, files in entries:
        got = {}
        for suffix, digest in files.items():
            try:
                data = (out / "figures" / Path(stem + suffix).name).read_bytes()
            except OSError:
                break
            if hashlib.sha256(data).hexdigest() != digest:
                break
            got[suffix] = data
        else:
            if got:
                found[key] = got
    return found


def _write_manifest(
    out: Path, keys: Mapping[str, tuple[str, Mapping[str, bytes]]], matrices: Mapping[str, Any]
) -> None:
    """Record what each keyed figure job and each matrix CSV in ``out`` was made from."""
    manifest = {
        "jobs": {
            stem: [key, {n[len(stem) :]: hashlib.sha256(d).hexdigest() for n, d in files.items()}]
            for stem, (key, files) in keys.items()
        },
        "matrices": {name: list(entry) for name, entry in matrices.items()},
    }
    atomic_write_text(out / FIGURE_KEYS, json.dumps(manifest, indent=0, sort_keys=True))


def _sha256_of(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return ""


def _earlier_matrices(out: Path) -> dict[str, tuple[str, str]]:
    """Matrix CSV name -> (key of the matrix it holds, SHA-256 of the file as written)."""
    try:
        manifest = json.loads((out / FIGURE_KEYS).read_text())
        return {str(n): (str(k), str(h)) for n, (k, h) in manifest["matrices"].items()}
    except (OSError, ValueError, TypeError, AttributeError, KeyError):
        return {}


def _earlier_names(out: Path) -> set[str]:
    """The keyed figure files the manifest in ``out`` lists (before it is rewritten)."""
    try:
        manifest = json.loads((out / FIGURE_KEYS).read_text())
        return {
            Path(str(stem) + str(suffix)).name
            for stem, (_, files) in manifest["jobs"].items()
            for suffix in files
        }
    except (OSError, ValueError, TypeError, AttributeError, KeyError):
        return set()


def write_outputs(
    result: AnalysisResult,
    out_dir: str | Path,
    *,
    extra: Mapping[str, Any] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    pdf: bool = False,
) -> dict[str, Path]:
    """Write every output file of an analysis into ``out_dir`` (``report.pdf`` too with ``pdf``).

    Returns
    -------
    dict of str to Path
        Output name -> written path.
    """
    t_start = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for folder in (out, out / "figures"):
        clear_stale_parts(folder)  # what a killed earlier run could not remove
    written: dict[str, Path] = {}
    keys: dict[str, tuple[str, dict[str, bytes]]] = {}
    earlier_names = _earlier_names(out)
    earlier_csv = _earlier_matrices(out)  # read before the manifest is written again
    figures = build_figures(result, reuse=_earlier_figures(out), keys=keys)
    t_figures = time.perf_counter() - t_start
    steps = len(figures) + len(result.matrices) + 3
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress("report", done, steps)

    for name, png in figures.items():
        written[f"figures/{name}"] = atomic_write_bytes(out / "figures" / name, png)
        tick()
    for name in earlier_names - set(figures):  # an earlier run's cluster or pair
        (out / "figures" / name).unlink(missing_ok=True)  # this run has not: not left behind
    written["clusters.csv"] = atomic_write_text(out / "clusters.csv", _clusters_csv(result))
    tick()
    matrix_keys: dict[str, list[str]] = {}
    for metric, matrix in result.matrices.items():
        path = out / f"similarity_{metric}.csv"
        form = "pairs" if matrix.partial else "square"
        key = _key([_FIGURE_FORMAT, form, list(matrix.ids), _array_digest(*matrix.digest_arrays())])
        old_key, old_sha = earlier_csv.get(path.name, ("", ""))
        sha = _sha256_of(path) if old_key == key else ""
        if sha and sha == old_sha:
            written[path.name] = path  # the same matrix, still in its file: not written again
        else:
            data = _matrix_csv(matrix).encode("utf-8")
            written[path.name] = atomic_write_bytes(path, data)
            sha = hashlib.sha256(data).hexdigest()
        matrix_keys[path.name] = [key, sha]
        tick()
    _write_manifest(out, keys, matrix_keys)
    record = run_record(result, extra=extra)
    record["timings"]["figures"] = round(t_figures, 4)
    html = render_report(
        result, record, figures, link_files=True, thumbnails=_input_thumbnails(result)
    )
    written["report.html"] = atomic_write_text(out / "report.html", html)
    tick()
    if pdf:
        written["report.pdf"] = atomic_write_bytes(out / "report.pdf", html_to_pdf(html))
    # the whole output stage, figures included (run.json itself is written last)
    record["timings"]["report"] = round(time.perf_counter() - t_start, 4)
    written["run.json"] = atomic_write_text(
        out / "run.json", json.dumps(record, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    )
    tick()
    return written


def html_to_pdf(html: str) -> bytes:
    """The report as PDF (WeasyPrint, the ``pdf`` extra); same content, images embedded.

    Raises
    ------
    ReportError
        If WeasyPrint is not installed or cannot render.
    """
    try:
        from weasyprint import HTML
    except ImportError as err:
        raise ReportError("the PDF report needs WeasyPrint: pip install 'atelier[pdf]'") from err
    except OSError as err:  # missing system libraries (pango, harfbuzz)
        raise ReportError(f"WeasyPrint cannot load its system libraries: {err}") from err
    # no base URL and only data: URIs in the report: nothing is fetched
    return HTML(string=html).write_pdf()


class ReportError(AtelierError, RuntimeError):
    """A report cannot be produced."""
