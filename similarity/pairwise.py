"""The pairwise engine: the only code that loops over pairs of images.

Features are extracted once per image. Pairs are scheduled in blocks: the
index range is cut into chunks of ``block_size`` images, and one task computes
every unordered pair between two chunks (or within one). A task receives the
features of its two chunks once, so a worker loads each image's features once
per block rather than once per pair, and memory is bounded by the block size.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, as_completed
from typing import Any

import numpy as np

from preprocessing.parallel import ordered_map, process_pool, resolve_jobs
from preprocessing.work import WorkImage

from .base import Metric
from .matrix import SimilarityMatrix

__all__ = ["pairwise", "extract_features", "block_tasks"]

logger = logging.getLogger(__name__)

ProgressFn = Callable[[int, int], None]


def _compare_block(
    metric: Metric, rows: Sequence[Any], cols: Sequence[Any], same: bool
) -> np.ndarray:
    """Similarities of every unordered pair between two chunks (upper part if same)."""
    out = np.full((len(rows), len(cols)), np.nan)
    for i, fa in enumerate(rows):
        for j in range(i + 1 if same else 0, len(cols)):
            out[i, j] = metric.compare(fa, cols[j])
    return out


def block_tasks(n: int, block_size: int) -> list[tuple[int, int, int, int]]:
    """The blocks ``(row_start, row_stop, col_start, col_stop)`` covering i < j once.

    >>> block_tasks(5, 2)
    [(0, 2, 0, 2), (0, 2, 2, 4), (0, 2, 4, 5), (2, 4, 2, 4), (2, 4, 4, 5), (4, 5, 4, 5)]
    """
    starts = list(range(0, n, block_size))
    bounds = [(s, min(s + block_size, n)) for s in starts]
    return [
        (r0, r1, c0, c1)
        for bi, (r0, r1) in enumerate(bounds)
        for (c0, c1) in bounds[bi:]
        if not (r0 == c0 and r1 - r0 < 2)
    ]


def extract_features(
    images: Sequence[WorkImage],
    metric: Metric,
    *,
    executor: Executor | None = None,
    chunk_size: int = 16,
    progress: ProgressFn | None = None,
) -> list[Any]:
    """Features of every image, computed once each, in order.

    Parameters
    ----------
    images : sequence of WorkImage
    metric : Metric
    executor : concurrent.futures.Executor, optional
        Where chunks of images are processed; in this process when ``None``.
    chunk_size : int
        Images per task.
    progress : callable, optional
        ``progress(done_images, total_images)``.
    """
    items = [(im.gray, im.mask) for im in images]
    return ordered_map(
        metric.extract, items, executor=executor, chunk_size=chunk_size, progress=progress
    )


def pairwise(
    images: Sequence[WorkImage],
    metric: Metric,
    *,
    n_jobs: int | None = None,
    block_size: int = 32,
    executor: Executor | None = None,
    progress: ProgressFn | None = None,
    feature_progress: ProgressFn | None = None,
) -> SimilarityMatrix:
    """Similarity matrix of ``images`` under ``metric``.

    Parameters
    ----------
    images : sequence of WorkImage
        The work images, all of one shape; row ``i`` of the result is
        ``images[i]``.
    metric : Metric
        A metric object (see ``similarity.METRICS``).
    n_jobs : int or None
        Worker processes when no ``executor`` is given: ``None`` uses every
        core, 1 computes in this process. Small inputs (a single block) are
        always computed in this process, where a pool would only add start-up.
    block_size : int
        Images per chunk; a task computes all pairs between two chunks.
    executor : concurrent.futures.Executor, optional
        Run tasks there instead of a new local process pool (the hook through
        which a distributed cluster is used).
    progress : callable, optional
        ``progress(done_pairs, total_pairs)`` after each block.
    feature_progress : callable, optional
        ``progress(done_images, total_images)`` during feature extraction.

    Returns
    -------
    SimilarityMatrix
        Symmetric, 1.0 on the diagonal, values in [0, 1]; each unordered pair
        computed once.
    """
    n = len(images)
    ids = tuple(im.id for im in images)
    values = np.eye(n)
    tasks = block_tasks(n, max(1, block_size))
    total_pairs = n * (n - 1) // 2
    jobs = resolve_jobs(n_jobs)
    own_pool = executor is None and jobs > 1 and len(tasks) > 1
    pool: Executor | None = process_pool(jobs) if own_pool else executor
    try:
        features = extract_features(images, metric, executor=pool, progress=feature_progress)
        done = 0

        def place(task: tuple[int, int, int, int], block: np.ndarray) -> None:
            nonlocal done
            r0, r1, c0, c1 = task
            sub = values[r0:r1, c0:c1]
            filled = ~np.isnan(block)
            sub[filled] = block[filled]
            done += int(filled.sum())
            if progress is not None:
                progress(done, total_pairs)

        if pool is None:
            for task in tasks:
                r0, r1, c0, c1 = task
                place(task, _compare_block(metric, features[r0:r1], features[c0:c1], r0 == c0))
        else:
            futures = {
                pool.submit(_compare_block, metric, features[r0:r1], features[c0:c1], r0 == c0): (
                    r0,
                    r1,
                    c0,
                    c1,
                )
                for r0, r1, c0, c1 in tasks
            }
            for fut in as_completed(futures):
                place(futures[fut], fut.result())
    finally:
        if own_pool and pool is not None:
            pool.shutdown()
    upper = np.triu(values, k=1)
    values = upper + upper.T + np.eye(n)
    return SimilarityMatrix(ids, values, metric.name, metric.params())
