"""The one composition of Atelier's stages, called by the CLI, the report and the web app."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from clustering import METHODS, ClusteringConfig, ClusteringResult, cluster, evaluate_labels
from clustering.evaluate import matched_labels
from clustering.sparse import PairGraph, cluster_sparse
from preprocessing import (
    AlignedSet,
    ImageSet,
    NoUsableImageError,
    load_folder,
    load_paths,
)
from preprocessing.align import align
from preprocessing.equalize import EqualizeResult, equalize
from preprocessing.errors import ConfigError
from preprocessing.load import SpilledRecord
from preprocessing.memory import release_freed_memory
from preprocessing.parallel import (
    Compute,
    open_executor,
    ordered_map,
    resolve_jobs,
    warm_forkserver,
)
from preprocessing.spill import PixelSpill
from preprocessing.work import (
    SpilledWorkImage,
    WorkImage,
    on_pixels,
    scale_to_fit,
    work_image_from_rgb,
)
from similarity import SimilarityMatrix, pairwise
from similarity.cache import FeatureCache, PrivateFeatureCache, default_cache_dir, work_key
from similarity.fusion import fuse
from similarity.shortlist import Shortlist, shortlist, shortlist_recall

from ._digest import feed, source_digest
from .config import AnalysisConfig, changed_before_clustering

__all__ = [
    "AnalysisResult",
    "ProgressFn",
    "STAGES",
    "compute_similarities",
    "prepare_images",
    "recluster",
    "run_analysis",
]

logger = logging.getLogger(__name__)

#: ``progress(stage, done, total)``; stage is one of STAGES or ``features:<metric>`` /
#: ``similarity:<metric>``.
ProgressFn = Callable[[str, int, int], None]

STAGES = ("load", "preprocess", "equalize", "align", "shortlist", "similarity", "clustering")

#: Below this many images a process pool costs more to start than it saves.
POOL_MIN_IMAGES = 24

#: Below this many pairs left to compute (an image added to a cached set), shipping
#: every image's features to worker processes costs more than computing here.
POOL_MIN_PAIRS = 2000


#: From this many images on, a run keeps the decoded pixels and the work images on disk
#: (:mod:`preprocessing.spill`) and reads each back when it is used: at 10,000 images
#: they held 10.7 GB of the main process from the load to the end. The results are the
#: same either way (tested).
SPILL_MIN_IMAGES = 2000

#: A run that keeps no cache holds its features in a private one
#: (:class:`~similarity.cache.PrivateFeatureCache`) up to this many images, for what reads
#: them again (the pair evidence); above, the evidence's few images are extracted again
#: rather than a whole collection's features written to the temporary folder.
PRIVATE_CACHE_MAX_IMAGES = 1000


@dataclass(frozen=True, eq=False)
class AnalysisResult:
    """Everything an analysis produced, for the CLI, the report and the web app.

    Attributes
    ----------
    config : AnalysisConfig
    images : ImageSet
        Loaded records, skipped and ignored files.
    equalization : EqualizeResult or None
        Measures before and after, when equalization ran.
    aligned : AlignedSet
        The work images the metrics compared, with alignment quality.
    matrices : dict of str to SimilarityMatrix
        One matrix per metric, in the configured order.
    clustering_metric : str
        The metric whose matrix was clustered.
    clustering : ClusteringResult
    timings : dict of str to float
        Seconds per stage (``similarity:<metric>`` per metric).
    evaluation : dict or None
        Scores against ground-truth families, when labels were given.
    compute : dict
        Where the work ran (``Compute.as_dict``), and ``clustering_from_cache``:
        whether the clustering was read from the cache, stored there by an earlier
        run of the same matrix and settings; ``pixels_on_disk_gb``: the decoded and
        work images kept on disk instead of in memory (:data:`SPILL_MIN_IMAGES`).
    shortlist : dict or None
        In shortlist mode: ``k``, the number of pairs compared and their
        fraction of all pairs.
    started, finished : str
        ISO 8601 UTC times.
    private_cache : FeatureCache or None
        Where a run that keeps no cache (``similarity.cache`` off) left its features,
        for the report's pair evidence to read; removed with the last
        result that refers to it.
    """

    config: AnalysisConfig
    images: ImageSet
    equalization: EqualizeResult | None
    aligned: AlignedSet
    matrices: dict[str, SimilarityMatrix]
    clustering_metric: str
    clustering: ClusteringResult
    timings: dict[str, float] = field(default_factory=dict)
    evaluation: dict[str, Any] | None = None
    compute: dict[str, Any] = field(default_factory=dict)
    shortlist: dict[str, Any] | None = None
    started: str = ""
    finished: str = ""
    private_cache: FeatureCache | None = field(default=None, compare=False, repr=False)

    @property
    def ids(self) -> tuple[str, ...]:
        return self.aligned.ids

    def clusters(self) -> dict[int, list[str]]:
        """Cluster label -> member ids (noise under -1), labels in increasing order."""
        out: dict[int, list[str]] = {}
        for image_id, lab in zip(self.ids, self.clustering.labels.tolist(), strict=True):
            out.setdefault(int(lab), []).append(image_id)
        return dict(sorted(out.items()))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _spill_parent(config: AnalysisConfig) -> Path | None:
    """Where a spill's folder goes: beside the feature cache, which is on disk, when the
    run caches (``/tmp`` may be held in memory), else the system's temporary folder."""
    sim = config.similarity
    if not sim.cache:
        return None
    return Path(sim.cache_dir).parent if sim.cache_dir else default_cache_dir().parent


def _private_cache(config: AnalysisConfig, n: int) -> PrivateFeatureCache | None:
    """A cache of the run's own for a run that keeps none, up to
    :data:`PRIVATE_CACHE_MAX_IMAGES` images; none when it cannot be made (a full disk):
    it only saves work."""
    if config.similarity.cache or n > PRIVATE_CACHE_MAX_IMAGES:
        return None
    try:
        return PrivateFeatureCache(_spill_parent(config), size_limit_gb=2.0)
    except (OSError, sqlite3.Error):
        return None


def _spill_for(config: AnalysisConfig, n: int) -> PixelSpill | None:
    """A spill for ``n`` images' pixels, or None below :data:`SPILL_MIN_IMAGES`."""
    return PixelSpill(_spill_parent(config)) if n >= SPILL_MIN_IMAGES else None


def _load(
    images: ImageSet | str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    config: AnalysisConfig,
    progress: ProgressFn | None,
) -> ImageSet:
    report = _stage_progress(progress, "load")
    if isinstance(images, ImageSet):
        return images
    # Nothing downstream reads the pixels above the work size (the work images are
    # made at that size, thumbnails are smaller), so decoded images are scaled to it
    # right away, as scale_to_fit would: memory stays ~0.6 MB an image, not tens.
    side = config.preprocess.work_size
    load_cfg = replace(config.load, max_side=min(config.load.max_side or side, side))
    spill = functools.partial(_spill_for, config)
    if isinstance(images, str | os.PathLike):
        return load_folder(images, config=load_cfg, progress=report, spill=spill)
    return load_paths([Path(p) for p in images], config=load_cfg, progress=report, spill=spill)


def _stage_progress(progress: ProgressFn | None, stage: str):  # noqa: ANN202
    def report(done: int, total: int) -> None:
        if progress is not None:
            progress(stage, done, total)

    return report


def _work_spill(image_set: ImageSet, config: AnalysisConfig) -> PixelSpill | None:
    """The spill the work images go to: the one the pixels were loaded into, else a new
    one from :data:`SPILL_MIN_IMAGES` images on (an :class:`ImageSet` loaded by the
    caller), else None."""
    first = image_set.records[0] if len(image_set) else None
    if isinstance(first, SpilledRecord) and first.spilled_to is not None:
        return first.spilled_to
    return _spill_for(config, len(image_set))


def _spilled_gb(aligned: AlignedSet) -> float:
    """GB of pixels the run kept on disk (:data:`SPILL_MIN_IMAGES`), 0 when none."""
    first = aligned.images[0] if len(aligned) else None
    spill = first.spilled_to if isinstance(first, SpilledWorkImage) else None
    return round(spill.nbytes / 1e9, 3) if spill is not None else 0.0


def _spilled_work_image(rec: Any, size: int, spill: PixelSpill) -> WorkImage:
    return SpilledWorkImage.spill(
        work_image_from_rgb(rec.id, scale_to_fit(rec.pixels, size), size), spill
    )


def prepare_images(
    image_set: ImageSet,
    config: AnalysisConfig,
    pool: Executor | None,
    progress: ProgressFn | None,
    timings: dict[str, float],
    keys: list[str] | None = None,
) -> tuple[EqualizeResult | None, AlignedSet]:
    """Scale to the working size, equalize, place on the canvas, align.

    From :data:`SPILL_MIN_IMAGES` images on, the work images are kept on disk: without
    equalization each is made and written out in turn, never all held at once. With
    the cache on, the alignment of the same work images with the same settings is read
    from it (:func:`_align_stored`); ``keys``, when given, is filled with the aligned
    images' :func:`~similarity.cache.work_key` when they are known on the way (for
    :func:`compute_similarities`, which would hash them again).
    """
    pre = config.preprocess
    spill = _work_spill(image_set, config)
    if spill is not None and not pre.equalize:
        t0 = time.perf_counter()
        work: list[WorkImage] = ordered_map(
            functools.partial(_spilled_work_image, size=pre.work_size, spill=spill),
            [(rec,) for rec in image_set],
            progress=_stage_progress(progress, "preprocess"),
        )
        timings["preprocess"] = time.perf_counter() - t0
        equalized = None
    else:
        equalized, work = _work_images(image_set, config, pool, progress, timings)
    release_freed_memory()
    t0 = time.perf_counter()

    def align_map(fn, items):  # noqa: ANN001, ANN202
        return ordered_map(
            fn, items, executor=pool, chunk_size=4, progress=_stage_progress(progress, "align")
        )

    def run_align() -> AlignedSet:
        return align(
            work,
            method=pre.align,
            reference=pre.reference,
            feature_model=pre.feature_model,
            rounds=pre.align_rounds,
            tolerance=pre.align_tolerance,
            min_inliers=pre.min_inliers,
            random_state=config.random_state,
            map_fn=align_map,
        )

    aligned = _align_stored(work, config, run_align, keys, store_images=spill is None)
    # timed with align "none" too: the mean image and each image's correlation with the
    # others (the report's alignment table) are computed all the same (1.1 s at 72
    # images of 640 px, which no stage counted), or read from the cache
    timings["align"] = time.perf_counter() - t0
    if spill is not None:  # the images alignment moved (or equalization made), written out
        kept = tuple(
            im
            if isinstance(im, SpilledWorkImage) and im.spilled_to is not None
            else SpilledWorkImage.spill(im, spill)
            for im in aligned.images
        )
        aligned = replace(aligned, images=kept)
    release_freed_memory()
    return equalized, aligned


@functools.cache
def _key_libraries() -> dict[str, str]:
    """The versions of the libraries a stored result (alignment, clustering) depends on,
    for its key: :func:`~app.versions.library_versions` without the platform string, read
    once a process (about 10 ms each time)."""
    from .versions import library_versions

    return {k: v for k, v in library_versions().items() if k != "platform"}


#: Bumped whenever what a stored alignment holds changes in a way its key does not show.
_ALIGNMENT_FORMAT = "alignment-1"


@functools.cache
def _alignment_code() -> str:
    """SHA-256 of the source the alignment is computed by: changed code, new key."""
    import preprocessing

    folder = Path(preprocessing.__file__).parent
    return source_digest([folder / "align.py", folder / "keypoints.py", folder / "work.py"])


def alignment_key(ids: Sequence[str], work_keys: Sequence[str], config: AnalysisConfig) -> str:
    """What an alignment is computed from: each image's id and work image
    (:func:`~similarity.cache.work_key`), in order, the alignment settings, the seed, the
    alignment code and the libraries it calls."""
    pre = config.preprocess
    settings = [
        _ALIGNMENT_FORMAT,
        _alignment_code(),
        _key_libraries(),
        [pre.align, pre.reference, pre.feature_model, pre.align_rounds, pre.align_tolerance],
        pre.min_inliers,
        config.random_state,
        list(zip(ids, work_keys, strict=True)),
    ]
    return hashlib.sha256(json.dumps(settings, default=str).encode()).hexdigest()


def _align_stored(
    work: Sequence[WorkImage],
    config: AnalysisConfig,
    run_align: Callable[[], AlignedSet],
    keys: list[str] | None,
    store_images: bool,
) -> AlignedSet:
    """``run_align()``, or the alignment an earlier run stored for the same work images
    and settings (keyed by :func:`alignment_key`): a re-run of 1,000 images spent 1.5-1.8
    s on the mean image and the correlations of ``align none`` alone, and a motion model
    registers every image again, for the same result. Without alignment only the means
    and the correlations are stored (the images are the work images); with it, the
    aligned images too, unless ``store_images`` is false (a collection whose pixels this
    run keeps on disk, :data:`SPILL_MIN_IMAGES`), when nothing is. ``keys`` is filled
    with the aligned images' work keys."""
    sim = config.similarity
    unmoved = config.preprocess.align == "none"
    if not sim.cache or not work or not (unmoved or store_images):
        return run_align()
    work_keys = [work_key(im) for im in work]
    key = alignment_key([im.id for im in work], work_keys, config)
    with FeatureCache(sim.cache_dir, size_limit_gb=sim.cache_size_gb) as cache:
        hit, stored = cache.get_value(key)
        if hit and isinstance(stored, tuple) and isinstance(stored[0], AlignedSet):
            aligned, aligned_keys = stored
            if unmoved:  # what align() gives: the work images with an identity transform
                same = tuple(im.with_transform(np.eye(3)) for im in work)
                aligned = replace(aligned, images=same)
                aligned_keys = work_keys
        else:
            aligned = run_align()
            aligned_keys = work_keys if unmoved else [work_key(im) for im in aligned.images]
            if unmoved:
                cache.put_value(key, (replace(aligned, images=()), None))
            else:
                cache.put_value(key, (aligned, aligned_keys))
    if keys is not None:
        keys[:] = aligned_keys
    return aligned


def _work_images(
    image_set: ImageSet,
    config: AnalysisConfig,
    pool: Executor | None,
    progress: ProgressFn | None,
    timings: dict[str, float],
) -> tuple[EqualizeResult | None, list[WorkImage]]:
    """The equalization (when asked for) and the unaligned work images, in memory."""
    pre = config.preprocess
    size = pre.work_size
    t0 = time.perf_counter()
    # in this process: one resize an image (OpenCV's own threads) costs less than
    # shipping the decoded pixels to a worker and back
    scaled = ordered_map(
        scale_to_fit,
        [(rec.pixels, size) for rec in image_set],
        progress=_stage_progress(progress, "preprocess"),
    )
    timings["preprocess"] = time.perf_counter() - t0

    equalized: EqualizeResult | None = None
    if pre.equalize:
        t0 = time.perf_counter()
        reference = None
        if pre.equalize_reference is not None:
            if pre.equalize_reference not in image_set.ids:
                raise ConfigError(
                    f"preprocess.equalize_reference {pre.equalize_reference!r} is not an image "
                    "id of this set"
                )
            reference = image_set.ids.index(pre.equalize_reference)

        def mapper(fn, items):  # noqa: ANN001, ANN202
            return ordered_map(
                fn,
                items,
                executor=pool,
                chunk_size=4,
                progress=_stage_progress(progress, "equalize"),
            )

        equalized = equalize(scaled, measures=pre.equalize, reference=reference, map_fn=mapper)
        scaled = equalized.images
        timings["equalize"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    work = [
        work_image_from_rgb(rec.id, rgb, size) for rec, rgb in zip(image_set, scaled, strict=True)
    ]
    del scaled  # the colour work-size copies are not needed past here
    timings["preprocess"] += time.perf_counter() - t0  # the gray work images: preprocessing
    return equalized, work


def select_pairs(
    aligned: AlignedSet,
    config: AnalysisConfig,
    pool: Executor | None,
    progress: ProgressFn | None,
    timings: dict[str, float],
) -> Shortlist | None:
    """The shortlist of pairs to compare, when the configuration asks for one."""
    sim_cfg = config.similarity
    n = len(aligned.images)
    if not sim_cfg.uses_shortlist(n) or n < 3:
        return None
    t0 = time.perf_counter()
    if progress is not None:
        progress("shortlist", 0, 1)
    selected = shortlist(aligned.images, sim_cfg.shortlist_k, executor=pool)
    if progress is not None:
        progress("shortlist", 1, 1)
    timings["shortlist"] = time.perf_counter() - t0
    return selected


def compute_similarities(
    aligned: AlignedSet,
    config: AnalysisConfig,
    pool: Executor | None,
    progress: ProgressFn | None,
    timings: dict[str, float],
    selected: Shortlist | None = None,
    private: FeatureCache | None = None,
    keys: Sequence[str] | None = None,
) -> dict[str, SimilarityMatrix]:
    """Each configured metric's matrix (and the fused one), through the feature cache, or
    through ``private`` when the configuration keeps no cache; ``keys`` are the images'
    :func:`~similarity.cache.work_key` when the caller has them."""
    matrices: dict[str, SimilarityMatrix] = {}
    sim_cfg = config.similarity
    cache = (
        FeatureCache(sim_cfg.cache_dir, size_limit_gb=sim_cfg.cache_size_gb)
        if sim_cfg.cache
        else private
    )
    try:
        # each work image hashed once for every metric's cache keys
        known = None
        if cache is not None:
            known = list(keys) if keys else [work_key(im) for im in aligned.images]
        for name in sim_cfg.metrics:
            t0 = time.perf_counter()
            matrices[name] = pairwise(
                aligned.images,
                config.metric(name),
                n_jobs=1 if pool is None else None,
                block_size=sim_cfg.block_size,
                executor=pool,
                cache=cache,
                progress=_stage_progress(progress, f"similarity:{name}"),
                feature_progress=_stage_progress(progress, f"features:{name}"),
                selected=selected,
                # a local pool only pays off past a few thousand pairs; a Dask cluster
                # is asked for on purpose
                min_pool_pairs=0 if config.scheduler else POOL_MIN_PAIRS,
                keys=known,
            )
            timings[f"similarity:{name}"] = time.perf_counter() - t0
            release_freed_memory()
    finally:
        if cache is not None:
            cache.close()
    weights = sim_cfg.fusion_weights()
    if sim_cfg.fusion() == "learned":
        matrices["fused"] = sim_cfg.pair_model().apply(matrices, name="fused")
    elif weights is not None:
        matrices["fused"] = fuse(
            [matrices[name] for name in sim_cfg.metrics], weights, calibration=sim_cfg.calibration
        )
    return matrices


def _cluster_features(
    aligned: AlignedSet, config: AnalysisConfig, pool: Executor | None
) -> np.ndarray | None:
    """The per-image vectors a feature method clusters (None: MDS of the distances)."""
    source = config.clustering.feature_source()
    if source is None or source == "mds":
        return None
    if source == "pca":
        rows = []
        for im in aligned.images:
            valid = im.mask
            fill = float(im.gray[valid].mean()) if valid.any() else 0.0
            rows.append(np.where(valid, im.gray, fill).ravel())
        pixels = np.asarray(rows, np.float64)
        n_comp = max(1, min(50, len(rows) - 1, pixels.shape[1]))
        from sklearn.decomposition import PCA  # here: scikit-learn takes 1.4 s to import

        return PCA(n_components=n_comp, random_state=config.random_state).fit_transform(pixels)
    metric = config.metric(source)
    vectors = ordered_map(
        functools.partial(on_pixels, metric.extract),
        [(im,) for im in aligned.images],
        executor=pool,
    )
    out = np.asarray([np.asarray(v, np.float64).ravel() for v in vectors])
    if out.ndim != 2:
        raise ConfigError(f"the {source} metric's features are not one vector per image")
    return out


#: Shortlist mode, a clustering that would choose k (which needs every pair): on the pair
#: model's probability of the same template, average linkage of the sparse graph cut
#: where that probability falls below this (more likely another template than the same),
#: bench/accuracy.py's "agglomerative@0.5", which the development half scored at 0.978
#: on average (worst set 0.926) where HDBSCAN, the fallback before, scored 0.783 (0.677).
#: On other similarities, whose 0.5 means nothing in particular, HDBSCAN.
SHORTLIST_CUT = 0.5


def _shortlist_clustering(
    matrix: SimilarityMatrix, clustering: ClusteringConfig
) -> tuple[ClusteringConfig, str]:
    """The clustering shortlist mode runs instead of one that would choose k, and why."""
    why = (
        f"shortlist mode: {clustering.method} clustering with k chosen by "
        f"{clustering.selection} needs every pair; "
    )
    if str(matrix.params.get("fusion", "")).startswith("learned"):
        chosen = replace(
            clustering, method="agglomerative", linkage="average", threshold=SHORTLIST_CUT
        )
        return chosen, why + (
            "average-linkage agglomerative clustering of the sparse graph, cut where the "
            f"pair model's probability of the same template falls below {SHORTLIST_CUT:g}, "
            "was used"
        )
    return replace(clustering, method="hdbscan"), why + "HDBSCAN on the sparse graph was used"


def _cluster(
    matrix: SimilarityMatrix, config: AnalysisConfig, features: np.ndarray | None
) -> ClusteringResult:
    """The full matrix's clustering, or the sparse graph's in shortlist mode."""
    if matrix.partial:
        clustering = config.clustering
        note = None
        method = METHODS[clustering.method]
        choosing = clustering.n_clusters == "auto" and clustering.threshold is None
        if choosing and (method.sparse_needs_k or method.sparse_cut):
            clustering, note = _shortlist_clustering(matrix, clustering)
        pairs, values = matrix.upper()
        graph = PairGraph(len(matrix), pairs, values)
        result = cluster_sparse(graph, None, clustering, random_state=config.random_state)
        if note is not None:
            result = replace(result, warnings=[note, *result.warnings])
        return result
    return cluster(
        matrix.values,
        config.clustering,
        random_state=config.random_state,
        features=features,
        n_jobs=min(resolve_jobs(config.n_jobs), os.cpu_count() or 1),
    )


#: Bumped whenever a stored clustering could differ from what the code computes now
#: in a way the key does not see (the clustering package's source is in the key).
_CLUSTERING_FORMAT = "clustering-1"


@functools.cache
def _clustering_code() -> str:
    """SHA-256 of the clustering package's source files and of this module (which
    chooses how to cluster in shortlist mode): changed code, new key."""
    import clustering

    return source_digest([*sorted(Path(clustering.__file__).parent.glob("*.py")), Path(__file__)])


def clustering_key(
    matrix: SimilarityMatrix, config: AnalysisConfig, features: np.ndarray | None
) -> str:
    """What a clustering is computed from: the matrix (values, and the pairs compared
    in shortlist mode), the feature vectors, the clustering settings, the seed, the
    clustering code and the libraries it calls. Equal keys give equal results (the
    number of threads of the k search does not change them, tested)."""
    digest = hashlib.sha256()
    feed(digest, [*matrix.digest_arrays(), features])
    settings = [
        _CLUSTERING_FORMAT,
        _clustering_code(),
        _key_libraries(),
        dataclasses.asdict(config.clustering),
        config.random_state,
    ]
    digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def _cluster_stored(
    matrix: SimilarityMatrix, config: AnalysisConfig, features: np.ndarray | None
) -> tuple[ClusteringResult, bool]:
    """:func:`_cluster`, or the same clustering stored in the cache by an earlier run
    (keyed by :func:`clustering_key`), and whether it was: a re-run whose matrices and
    clustering settings have not changed does not search k again (4 s of a 1,000-image
    re-run)."""
    if not config.similarity.cache:
        return _cluster(matrix, config, features), False
    sim = config.similarity
    key = clustering_key(matrix, config, features)
    with FeatureCache(sim.cache_dir, size_limit_gb=sim.cache_size_gb) as cache:
        hit, stored = cache.get_value(key)
        if hit and isinstance(stored, ClusteringResult):
            return stored, True
        result = _cluster(matrix, config, features)
        cache.put_value(key, result)
    return result, False


def _load_usable(
    images: ImageSet | str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    config: AnalysisConfig,
    progress: ProgressFn | None,
    timings: dict[str, float],
) -> ImageSet:
    """The images loaded (timed), or NoUsableImageError naming why the first few were not."""
    t0 = time.perf_counter()
    image_set = _load(images, config, progress)
    timings["load"] = time.perf_counter() - t0
    if len(image_set) == 0:
        reasons = "; ".join(f"{s.path}: {s.reason}" for s in image_set.skipped[:5])
        raise NoUsableImageError(
            "no usable image"
            + (f" ({len(image_set.skipped)} skipped: {reasons})" if reasons else "")
        )
    return image_set


def _shortlist_summary(selected: Shortlist) -> dict[str, Any]:
    return {
        "k": selected.k,
        "pairs": selected.n_pairs,
        "fraction": round(selected.fraction(), 6),
        "descriptor": "hog64+gradient32",
    }


def run_analysis(
    images: ImageSet | str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    config: AnalysisConfig | None = None,
    progress: ProgressFn | None = None,
    *,
    labels: Mapping[str, str] | None = None,
    compute: Compute | None = None,
) -> AnalysisResult:
    """Load, prepare, compare and cluster images.

    Parameters
    ----------
    images : ImageSet, folder path or sequence of file paths
        What to analyse; an :class:`ImageSet` is used as loaded.
    config : AnalysisConfig, optional
        Defaults to ``AnalysisConfig()``.
    progress : callable, optional
        ``progress(stage, done, total)``, called as work advances.
    labels : mapping of image id to family, optional
        Ground truth; the result then carries adjusted Rand index, NMI,
        homogeneity and completeness.
    compute : Compute, optional
        An executor opened by the caller with
        :func:`preprocessing.parallel.open_executor` (kept open); by default
        one is opened from ``config.scheduler`` and ``config.n_jobs`` and
        closed at the end.

    Returns
    -------
    AnalysisResult

    Raises
    ------
    NoUsableImageError
        If no input image could be used (the message lists why, for the first
        few skipped files).
    ConfigError, ImageLoadError
        For an invalid configuration or a missing input folder.
    """
    # long: the numpydoc docstring makes this function over 80 lines; its code is not
    config = config or AnalysisConfig()
    started = _now()
    fusing = config.similarity.fuses()
    clustering_metric = "fused" if fusing else config.similarity.metrics[0]
    timings: dict[str, float] = {}

    image_set = _load_usable(images, config, progress, timings)
    # each stage's freed temporaries returned to the system (preprocessing.memory)
    release_freed_memory()
    if compute is None and not config.scheduler and resolve_jobs(config.n_jobs) > 1:
        # the workers' fork server starts on the other core while the images are
        # prepared and compared; during the load it slowed the decoding two threads do
        # (1,000 images: 1.5 s alone, 2.3 s beside it), and a re-run may need no pool
        warm_forkserver()
    with ExitStack() as stack:
        if compute is None:
            compute = stack.enter_context(
                open_executor(
                    config.scheduler,
                    config.n_jobs,
                    pool_min_items=POOL_MIN_IMAGES,
                    n_items=len(image_set),
                )
            )
        pool = compute.executor
        keys: list[str] = []  # the work images' cache keys, when alignment makes them
        equalized, aligned = prepare_images(image_set, config, pool, progress, timings, keys)
        selected = select_pairs(aligned, config, pool, progress, timings)
        release_freed_memory()
        private = _private_cache(config, len(aligned))
        matrices = compute_similarities(
            aligned, config, pool, progress, timings, selected, private, keys
        )
        cluster_features = _cluster_features(aligned, config, pool)

    t0 = time.perf_counter()
    if progress is not None:
        progress("clustering", 0, 1)
    result, stored = _cluster_stored(matrices[clustering_metric], config, cluster_features)
    if progress is not None:
        progress("clustering", 1, 1)
    timings["clustering"] = time.perf_counter() - t0
    evaluation = evaluate_labels(aligned.ids, result.labels, labels) if labels is not None else None
    if labels is not None and evaluation is not None and selected is not None:
        # the share of the pairs that share a family which the shortlist let be compared
        # (an image the labels do not list is a family of its own)
        family = matched_labels(aligned.ids, labels)
        families = [family.get(i, f"unlabelled:{i}") for i in aligned.ids]
        evaluation = {**evaluation, "shortlist_recall": shortlist_recall(selected, families)}

    return AnalysisResult(
        config=config,
        images=image_set,
        equalization=equalized,
        aligned=aligned,
        matrices=matrices,
        clustering_metric=clustering_metric,
        clustering=result,
        timings=timings,
        evaluation=evaluation,
        compute={
            **compute.as_dict(),
            "clustering_from_cache": stored,
            "pixels_on_disk_gb": _spilled_gb(aligned),
        },
        shortlist=None if selected is None else _shortlist_summary(selected),
        started=started,
        finished=_now(),
        private_cache=private,
    )


def suggested_cut(result: AnalysisResult) -> ClusteringResult | None:
    """When a method found no cluster at all (every image noise): the cut of the
    dendrogram of the same matrix that the silhouette chooses (average linkage), so the
    user is offered the structure the matrix supports. None when clusters were found or
    no cut is possible."""
    if result.clustering.k > 0 or len(result.ids) < 3:
        return None
    matrix = result.matrices[result.clustering_metric]
    if matrix.partial:  # shortlist mode: no full matrix to cut
        return None
    cut = cluster(
        matrix.values,
        ClusteringConfig(method="agglomerative", linkage="average"),
        random_state=result.config.random_state,
    )
    return cut if cut.k > 0 else None


def recluster(
    result: AnalysisResult,
    config: AnalysisConfig,
    *,
    labels: Mapping[str, str] | None = None,
) -> AnalysisResult:
    """Cluster an analysis again with other clustering settings, reusing its matrices.

    Only the settings of ``app.config.CLUSTERING_ONLY`` may differ from the
    result's configuration; everything before clustering is kept, so the
    answer comes in well under a second.

    Raises
    ------
    ConfigError
        If anything but the clustering settings changed.
    """
    changed = changed_before_clustering(result.config, config)
    if changed:
        raise ConfigError(
            f"recluster can only change clustering settings, not {', '.join(changed)}"
        )
    t0 = time.perf_counter()
    features = _cluster_features(result.aligned, config, None)
    clustered = _cluster(result.matrices[result.clustering_metric], config, features)
    timings = {**result.timings, "clustering": time.perf_counter() - t0}
    evaluation = (
        evaluate_labels(result.ids, clustered.labels, labels) if labels is not None else None
    )
    return replace(
        result,
        config=config,
        clustering=clustered,
        timings=timings,
        evaluation=evaluation,
        compute={**result.compute, "clustering_from_cache": False},
        finished=_now(),
    )
