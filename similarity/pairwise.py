"""The pairwise engine: the only code that loops over pairs of images.

Features are extracted once per image. Pairs are scheduled in blocks: the
index range is cut into chunks of ``block_size`` images, and one task computes
every unordered pair between two chunks (or within one). A task receives the
features of its two chunks once, so a worker loads each image's features once
per block rather than once per pair, and memory is bounded by the block size.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, as_completed
from typing import Any

import numpy as np

from preprocessing.parallel import ordered_map, process_pool, resolve_jobs, share
from preprocessing.work import WorkImage

from .base import Metric
from .cache import CacheStats, FeatureCache, metric_key, work_key
from .matrix import SimilarityMatrix
from .shortlist import Shortlist

__all__ = ["pairwise", "extract_features", "block_tasks"]

logger = logging.getLogger(__name__)

ProgressFn = Callable[[int, int], None]


def _compare_pairs(
    metric: Metric,
    rows: Sequence[Any],
    cols: Sequence[Any] | None,
    pairs: Sequence[tuple[int, int]],
) -> list[float]:
    """Similarities of the given (row, col) pairs of one block, in order.

    ``cols`` is None for a block on the diagonal (rows and columns are the
    same images). Each image's features are prepared once for the block.
    """
    used_rows = {i for i, _ in pairs}
    prepared_rows = {i: metric.prepare(rows[i]) for i in sorted(used_rows)}
    if cols is None:
        prepared_cols = {
            j: prepared_rows[j] if j in prepared_rows else metric.prepare(rows[j]) for _, j in pairs
        }
    else:
        prepared_cols = {j: metric.prepare(cols[j]) for j in sorted({j for _, j in pairs})}
    return [metric.compare(prepared_rows[i], prepared_cols[j]) for i, j in pairs]


def block_tasks(n: int, block_size: int) -> list[tuple[int, int, int, int]]:
    """The blocks ``(row_start, row_stop, col_start, col_stop)`` covering i < j once.

    A diagonal block of a single image holds no pair and is left out.

    >>> block_tasks(5, 2)
    [(0, 2, 0, 2), (0, 2, 2, 4), (0, 2, 4, 5), (2, 4, 2, 4), (2, 4, 4, 5)]
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
    chunk_size: int = 8,
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


def _features(
    images: Sequence[WorkImage],
    metric: Metric,
    keys: list[str] | None,
    cache: FeatureCache | None,
    mkey: str,
    stats: CacheStats,
    executor: Executor | None,
    progress: ProgressFn | None,
) -> list[Any]:
    n = len(images)
    if keys is None or cache is None:
        stats.features_computed = n
        return extract_features(images, metric, executor=executor, progress=progress)
    found = cache.get_features(mkey, dict.fromkeys(keys), stats)
    todo: dict[str, int] = {}
    for i, key in enumerate(keys):
        if key not in found:
            todo.setdefault(key, i)  # identical work images are computed once
    computed = extract_features(
        [images[i] for i in todo.values()], metric, executor=executor, progress=progress
    )
    new = dict(zip(todo, computed, strict=True))
    cache.put_features(mkey, new)
    stats.features_cached = n - len(todo)
    stats.features_computed = len(todo)
    merged = {**found, **new}
    return [merged[key] for key in keys]


def pairwise(
    images: Sequence[WorkImage],
    metric: Metric,
    *,
    n_jobs: int | None = None,
    block_size: int = 32,
    executor: Executor | None = None,
    cache: FeatureCache | None = None,
    progress: ProgressFn | None = None,
    feature_progress: ProgressFn | None = None,
    selected: Shortlist | None = None,
    min_pool_pairs: int = 0,
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
        Images per chunk; a task computes the pairs between two chunks.
    executor : concurrent.futures.Executor, optional
        Run tasks there instead of a new local process pool (the hook through
        which a distributed cluster is used).
    cache : FeatureCache, optional
        Reuse and store features and pair similarities; only what is missing
        is computed (so adding an image computes its features and its row).
    progress : callable, optional
        ``progress(done_pairs, total_pairs)`` after each block.
    feature_progress : callable, optional
        ``progress(done_images, total_images)`` during feature extraction.
    selected : Shortlist, optional
        Compare only these pairs (shortlist mode); the others are 0.0 and the
        result's ``compared`` mask says which were compared.
    min_pool_pairs : int
        With fewer pairs left to compute (say, an image added to a cached
        set), they and the missing features are computed in this process:
        shipping every image's features to workers would cost more.

    Returns
    -------
    SimilarityMatrix
        Symmetric, 1.0 on the diagonal, values in [0, 1]; each unordered pair
        computed once; ``stats`` says what came from the cache.
    """
    n = len(images)
    ids = tuple(im.id for im in images)
    for im in images:
        if not np.isfinite(im.gray).all():
            raise ValueError(f"{im.id}: work image has non-finite values (NaN or inf)")
    values = np.eye(n)
    stats = CacheStats()
    mkey = metric_key(metric)
    keys = [work_key(im) for im in images] if cache is not None else None
    tasks = block_tasks(n, max(1, block_size))
    jobs = resolve_jobs(n_jobs)
    own_pool = executor is None and jobs > 1 and len(tasks) > 1
    pool: Executor | None = process_pool(jobs) if own_pool else executor
    owned = pool if own_pool else None
    try:
        known = np.eye(n, dtype=bool)
        if cache is not None and keys is not None:
            rows = cache.get_rows(mkey, dict.fromkeys(keys), stats)
            for i in range(n):
                row = rows[keys[i]]
                for j in range(i + 1, n):
                    v = row.get(keys[j])
                    if v is not None:
                        values[i, j] = v
                        known[i, j] = True
        compared = None
        if selected is not None:
            if selected.n != n:
                raise ValueError(f"a shortlist of {selected.n} images for {n} images")
            compared = selected.mask()
            values[~compared] = 0.0  # not on the shortlist: 0, never computed
            known[~compared] = False
        stats.pairs_cached = int(np.triu(known, k=1).sum())
        if compared is not None:
            known |= ~compared
        t_features = time.perf_counter()
        # features only of the images that still have a pair to compute
        needed = [int(i) for i in np.flatnonzero(~(known | known.T).all(axis=1))]
        if int(np.triu(~known, k=1).sum()) < min_pool_pairs:
            pool = None  # a few pairs: cheaper here than shipped to workers
        features: list[Any] = [None] * n
        if needed:
            subset = [images[i] for i in needed]
            sub_keys = [keys[i] for i in needed] if keys is not None else None
            for i, f in zip(
                needed,
                _features(subset, metric, sub_keys, cache, mkey, stats, pool, feature_progress),
                strict=True,
            ):
                features[i] = f
        elif feature_progress is not None:
            feature_progress(n, n)
        t_pairs = time.perf_counter()
        stats.seconds_features = round(t_pairs - t_features, 4)
        total = n * (n - 1) // 2 if selected is None else selected.n_pairs
        done = stats.pairs_cached
        fresh: dict[tuple[str, str], float] = {}
        work = []
        for r0, r1, c0, c1 in tasks:
            pairs = [
                (i - r0, j - c0)
                for i in range(r0, r1)
                for j in range(max(c0, i + 1), c1)
                if not known[i, j]
            ]
            if pairs:
                work.append(((r0, c0), pairs, (r0, r1), None if r0 == c0 else (c0, c1)))
        # each chunk's features are handed to the executor once (on a Dask cluster:
        # placed once on every worker), then referenced by every block that uses them
        chunks: dict[tuple[int, int], Any] = {}
        for _, _, rows_span, cols_span in work:
            for span in (rows_span, cols_span):
                if span is not None and span not in chunks:
                    chunk = features[span[0] : span[1]]
                    chunks[span] = chunk if pool is None else share(pool, chunk)

        def place(
            origin: tuple[int, int], pairs: list[tuple[int, int]], result: list[float]
        ) -> None:
            nonlocal done
            r0, c0 = origin
            for (i, j), v in zip(pairs, result, strict=True):
                values[r0 + i, c0 + j] = v
                if keys is not None:
                    fresh[(keys[r0 + i], keys[c0 + j])] = v
            done += len(pairs)
            if progress is not None:
                progress(done, total)

        def task(item: tuple) -> tuple[Any, Any, Any, list[tuple[int, int]]]:
            _, pairs, rows_span, cols_span = item
            cols = None if cols_span is None else chunks[cols_span]
            return metric, chunks[rows_span], cols, pairs

        if pool is None:
            for item in work:
                place(item[0], item[1], _compare_pairs(*task(item)))
        else:
            futures = {pool.submit(_compare_pairs, *task(item)): item[:2] for item in work}
            for fut in as_completed(futures):
                origin, pairs = futures[fut]
                place(origin, pairs, fut.result())
        if progress is not None and not work:
            progress(total, total)
        stats.pairs_computed = sum(len(item[1]) for item in work)
        stats.seconds_pairs = round(time.perf_counter() - t_pairs, 4)
        if cache is not None and fresh:
            cache.put_pairs(mkey, fresh)
    finally:
        if owned is not None:
            owned.shutdown()
    upper = np.triu(values, k=1)
    values = upper + upper.T + np.eye(n)
    return SimilarityMatrix(
        ids, values, metric.name, metric.params(), stats=stats.as_dict(), compared=compared
    )
