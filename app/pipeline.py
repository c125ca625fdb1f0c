"""The one composition of Atelier's stages, called by the CLI, the report and the web app."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from clustering import ClusteringResult, cluster
from preprocessing import (
    AlignedSet,
    ImageSet,
    NoUsableImageError,
    load_folder,
    load_paths,
    make_work_image,
)
from similarity import SimilarityMatrix, pairwise

from .config import AnalysisConfig

__all__ = ["AnalysisResult", "ProgressFn", "run_analysis", "STAGES"]

logger = logging.getLogger(__name__)

#: ``progress(stage, done, total)``; stage is one of STAGES or ``features:<metric>`` /
#: ``similarity:<metric>``.
ProgressFn = Callable[[str, int, int], None]

STAGES = ("load", "preprocess", "similarity", "clustering")


@dataclass(frozen=True, eq=False)
class AnalysisResult:
    """Everything an analysis produced, for the CLI, the report and the web app.

    Attributes
    ----------
    config : AnalysisConfig
    images : ImageSet
        Loaded records, skipped and ignored files.
    aligned : AlignedSet
        The work images the metrics compared.
    matrices : dict of str to SimilarityMatrix
        One matrix per metric, in the configured order.
    clustering_metric : str
        The metric whose matrix was clustered.
    clustering : ClusteringResult
    timings : dict of str to float
        Seconds per stage (``similarity:<metric>`` per metric).
    started, finished : str
        ISO 8601 UTC times.
    """

    config: AnalysisConfig
    images: ImageSet
    aligned: AlignedSet
    matrices: dict[str, SimilarityMatrix]
    clustering_metric: str
    clustering: ClusteringResult
    timings: dict[str, float] = field(default_factory=dict)
    started: str = ""
    finished: str = ""

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


def _load(
    images: ImageSet | str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    config: AnalysisConfig,
    progress: ProgressFn | None,
) -> ImageSet:
    def report(done: int, total: int) -> None:
        if progress is not None:
            progress("load", done, total)

    if isinstance(images, ImageSet):
        return images
    if isinstance(images, str | os.PathLike):
        return load_folder(images, config=config.load, progress=report)
    return load_paths([Path(p) for p in images], config=config.load, progress=report)


def run_analysis(
    images: ImageSet | str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    config: AnalysisConfig | None = None,
    progress: ProgressFn | None = None,
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
    config = config or AnalysisConfig()
    started = _now()
    timings: dict[str, float] = {}

    t0 = time.perf_counter()
    image_set = _load(images, config, progress)
    timings["load"] = time.perf_counter() - t0
    if len(image_set) == 0:
        reasons = "; ".join(f"{s.path}: {s.reason}" for s in image_set.skipped[:5])
        raise NoUsableImageError(
            "no usable image"
            + (f" ({len(image_set.skipped)} skipped: {reasons})" if reasons else "")
        )

    t0 = time.perf_counter()
    size = config.preprocess.work_size
    work = []
    for done, rec in enumerate(image_set, start=1):
        work.append(make_work_image(rec.id, rec.pixels, size))
        if progress is not None:
            progress("preprocess", done, len(image_set))
    aligned = AlignedSet(tuple(work), size)
    timings["preprocess"] = time.perf_counter() - t0

    matrices: dict[str, SimilarityMatrix] = {}
    sim_cfg = config.similarity
    for name in sim_cfg.metrics:
        t0 = time.perf_counter()

        def pairs_progress(done: int, total: int, _name: str = name) -> None:
            if progress is not None:
                progress(f"similarity:{_name}", done, total)

        def feature_progress(done: int, total: int, _name: str = name) -> None:
            if progress is not None:
                progress(f"features:{_name}", done, total)

        matrices[name] = pairwise(
            aligned.images,
            sim_cfg.metric(name),
            n_jobs=sim_cfg.n_jobs,
            block_size=sim_cfg.block_size,
            progress=pairs_progress,
            feature_progress=feature_progress,
        )
        timings[f"similarity:{name}"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    clustering_metric = sim_cfg.metrics[0]
    if progress is not None:
        progress("clustering", 0, 1)
    result = cluster(
        matrices[clustering_metric].values, config.clustering, random_state=config.random_state
    )
    if progress is not None:
        progress("clustering", 1, 1)
    timings["clustering"] = time.perf_counter() - t0

    return AnalysisResult(
        config=config,
        images=image_set,
        aligned=aligned,
        matrices=matrices,
        clustering_metric=clustering_metric,
        clustering=result,
        timings=timings,
        started=started,
        finished=_now(),
    )
