"""The pairwise engine: the only code that loops over pairs of images.

Features are extracted once per image. Pairs are scheduled in blocks: the
index range is cut into chunks of ``block_size`` images, and one task computes
every unordered pair between two chunks (or within one). A task receives the
features of its two chunks once, so a worker loads each image's features once
per block rather than once per pair, and memory is bounded by the block size.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any

import numpy as np

from preprocessing.errors import AtelierError
from preprocessing.memory import release_freed_memory
from preprocessing.parallel import ordered_map, process_pool, resolve_jobs, share
from preprocessing.work import WorkImage, on_pixels

from .base import Metric
from .cache import CacheStats, FeatureCache, Row, digests, metric_key, work_key
from .matrix import ShortlistMatrix, SimilarityMatrix
from .shortlist import Shortlist

__all__ = [
    "pairwise",
    "extract_features",
    "block_tasks",
    "known_pairs",
    "block_plan",
    "sparse_block_plan",
    "shortlist_block_size",
    "run_blocks",
]

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


#: Bytes of prepared features a worker keeps between the blocks of a shortlist
#: (:func:`_compare_cached_pairs`): at 256 px an SSIM image prepared is 0.85 MB, so
#: each of two workers holds about 900 images (2,000 images' worth in all).
PREPARED_BUDGET = 768 * 2**20


def _nbytes(obj: Any, seen: set[int] | None = None) -> int:
    """Approximate memory of a prepared feature: its arrays, through tuples, lists,
    dicts and named tuples, each array's memory counted once however many views of it
    the feature holds (the contour test's mirror side is views of the upright one's
    maps); 64 bytes for anything else."""
    seen = set() if seen is None else seen
    if isinstance(obj, np.ndarray):
        owner = obj
        while isinstance(owner.base, np.ndarray):
            owner = owner.base
        if id(owner) in seen:
            return 0
        seen.add(id(owner))
        return int(owner.nbytes)
    if isinstance(obj, tuple | list):
        return 64 + sum(_nbytes(x, seen) for x in obj)
    if isinstance(obj, dict):
        return 64 + sum(_nbytes(x, seen) for x in obj.values())
    return 64


class _Prepared:
    """A worker's prepared features by (metric key, work-image key), least recently
    used dropped beyond ``budget`` bytes. A worker process keeps one for its life, so
    an image met again in a later block, or a later run, is not read or prepared again."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.items: OrderedDict[tuple[str, str], tuple[Any, int]] = OrderedDict()
        self.size = 0
        self.prepared = 0  # how many this process prepared (tests read it)
        self.dropped = 0  # how many it let go to stay within the budget

    def get_many(
        self, metric: Metric, mkey: str, keys: set[str], store: FeatureCache
    ) -> dict[str, Any] | None:
        """Each key's prepared features, read from ``store`` and prepared where not
        held; None when ``store`` lacks one (evicted or corrupt: the caller ships it)."""
        out: dict[str, Any] = {}
        for key in keys:
            held = self.items.get((mkey, key))
            if held is not None:
                self.items.move_to_end((mkey, key))
                out[key] = held[0]
        missing = keys - out.keys()
        if missing:
            found = store.get_features(mkey, sorted(missing), CacheStats())
            if len(found) < len(missing):
                return None
            for key, features in found.items():
                out[key] = prepared = metric.prepare(features)
                self.prepared += 1
                self._put((mkey, key), prepared)
        return out

    def _put(self, item: tuple[str, str], prepared: Any) -> None:
        size = _nbytes(prepared)
        self.items[item] = (prepared, size)
        self.size += size
        while self.size > self.budget and len(self.items) > 1:
            _, (_, dropped) = self.items.popitem(last=False)
            self.size -= dropped
            self.dropped += 1


_WORKER_PREPARED = _Prepared(PREPARED_BUDGET)
_WORKER_STORES: dict[str, FeatureCache] = {}


def _compare_cached_pairs(
    metric: Metric,
    where: tuple[str, float],
    mkey: str,
    rows: Sequence[str],
    cols: Sequence[str] | None,
    pairs: Sequence[tuple[int, int]],
) -> list[float] | None:
    """:func:`_compare_pairs` for a worker that reads each image's features from the
    on-disk cache by key and keeps them prepared (:class:`_Prepared`), instead of
    receiving the features of both chunks with every block: a shortlist's pairs are
    spread over the matrix, so each image met about seven blocks at 1,000 images and
    was shipped and prepared in each. None when a feature is no longer in the cache.
    ``where`` is the cache's folder and size limit (GB), which the worker opens it
    with, so the limit stored in the cache stays the user's."""
    store = _WORKER_STORES.get(where[0])
    if store is None:
        for gone in [path for path in _WORKER_STORES if not os.path.isdir(path)]:
            _WORKER_STORES.pop(gone).close()  # an earlier run's store, discarded since
        store = _WORKER_STORES[where[0]] = FeatureCache(where[0], size_limit_gb=where[1])
    col_keys = rows if cols is None else cols
    needed = {rows[i] for i, _ in pairs} | {col_keys[j] for _, j in pairs}
    dropped = _WORKER_PREPARED.dropped
    prepared = _WORKER_PREPARED.get_many(metric, mkey, needed, store)
    if prepared is None:
        return None
    values = [metric.compare(prepared[rows[i]], prepared[col_keys[j]]) for i, j in pairs]
    if _WORKER_PREPARED.dropped > dropped:  # evicted features' pages back to the system
        release_freed_memory()
    return values


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
    return ordered_map(
        functools.partial(on_pixels, metric.extract),
        [(im,) for im in images],  # not their pixels: a spilled image is read where it runs
        executor=executor,
        chunk_size=chunk_size,
        progress=progress,
    )


def _missing(keys: list[str], cached: Collection[str]) -> dict[str, int]:
    """Each key not in ``cached``, with the index of its first image: identical work
    images are computed once."""
    todo: dict[str, int] = {}
    for i, key in enumerate(keys):
        if key not in cached:
            todo.setdefault(key, i)
    return todo


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
    todo = _missing(keys, found.keys())
    computed = extract_features(
        [images[i] for i in todo.values()], metric, executor=executor, progress=progress
    )
    new = dict(zip(todo, computed, strict=True))
    cache.put_features(mkey, new)
    stats.features_cached = n - len(todo)
    stats.features_computed = len(todo)
    merged = {**found, **new}
    return [merged[key] for key in keys]


#: Images whose features are extracted and stored at a time when workers read features
#: from the cache (:func:`_store_features`): the main process holds no more than these.
STORE_BATCH = 256

#: When a run's features of one metric would fill more than this share of the cache's
#: size limit, they are kept in a run store instead (:meth:`FeatureCache.run_store`):
#: the workers read them back by key, and the cache would evict the first stored before
#: their blocks ran (10,000 images' contour features are about 5 GB; the default limit
#: is 4 GB). What is left of the limit serves the run's pair rows and figures.
RUN_STORE_SHARE = 0.8


def _store_features(
    images: Sequence[WorkImage],
    metric: Metric,
    keys: list[str],
    cache: FeatureCache,
    mkey: str,
    stats: CacheStats,
    executor: Executor | None,
    progress: ProgressFn | None,
) -> FeatureCache:
    """Extract the features the cache lacks, ``STORE_BATCH`` images at a time, and store
    them, keeping none: the workers read them from the store returned, by key. (A
    shortlist at 3,000 images held every image's contour features in this process:
    1.8 MB each.) That store is ``cache``, unless the first batch shows that the run's
    features would not fit in it (:data:`RUN_STORE_SHARE`): then it is a run store
    holding every one of them (those cached before copied into it), which the caller
    discards, and ``stats.run_store_gb`` says how large it grew."""
    todo = _missing(keys, cache.has_features(mkey, keys))
    items = list(todo.items())
    everyone = list(dict.fromkeys(keys))
    store = cache
    try:
        for start in range(0, len(items), STORE_BATCH):
            batch = items[start : start + STORE_BATCH]

            def step(done: int, _: int, start: int = start) -> None:
                if progress is not None:
                    progress(start + done, len(items))

            computed = extract_features(
                [images[i] for _, i in batch], metric, executor=executor, progress=step
            )
            made = dict(zip([key for key, _ in batch], computed, strict=True))
            estimate = store.put_features(mkey, made) / len(batch) * len(everyone)
            if store is cache and estimate > RUN_STORE_SHARE * cache.size_limit_gb * 2**30:
                later = {key for key, _ in items[start:]}
                store = _run_store(cache, mkey, everyone, later, estimate)
                store.put_features(mkey, made)  # the cache may have evicted some already
            del computed, made
            release_freed_memory()  # the batch's features, stored, leave no resident holes
    except BaseException:
        if store is not cache:
            store.discard()
        raise
    if progress is not None and not items:
        progress(len(keys), len(keys))  # every one was cached
    stats.features_cached = len(keys) - len(todo)
    stats.features_computed = len(todo)
    if store is not cache:
        stats.run_store_gb = round(store.volume() / 2**30, 3)
    return store


def _run_store(
    cache: FeatureCache, mkey: str, everyone: list[str], later: set[str], estimate: float
) -> FeatureCache:
    """A run store (:meth:`FeatureCache.run_store`) holding what ``cache`` holds of the
    run's features (all but ``later``, still to be extracted), after checking that the
    disk has room for ``estimate`` bytes."""
    free = shutil.disk_usage(cache.directory.parent).free
    if free < estimate:
        raise AtelierError(
            f"the features of this run need about {estimate / 2**30:.1f} GB, more than the "
            f"cache's limit ({cache.size_limit_gb:g} GB) and than the disk has free beside "
            f"it ({free / 2**30:.1f} GB in {cache.directory.parent}): free disk space, or "
            "set similarity.cache_dir to a larger disk"
        )
    store = cache.run_store()
    store.copy_features(cache, mkey, [key for key in everyone if key not in later])
    return store


class _Extracted(Sequence[Any]):
    """Each image's features extracted when asked for (a block's chunk at a time), in
    place of features held: for a block whose features the cache no longer holds (say,
    evicted by its size limit during the run) when the workers read them by key."""

    def __init__(self, images: Sequence[WorkImage], metric: Metric, store: FeatureCache) -> None:
        self.images, self.metric = images, metric
        self.store = store  # where the workers read them: the cache or a run store

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self.metric.extract(im.gray, im.mask) for im in self.images[index]]
        return self.metric.extract(self.images[index].gray, self.images[index].mask)


@dataclass
class _Where:
    """Where features come from and go: the images' keys, the cache, the metric's key,
    the statistics, the pool, and whether workers read features from the cache by key
    (:func:`_by_key`)."""

    keys: list[str] | None
    cache: FeatureCache | None
    mkey: str
    stats: CacheStats
    pool: Executor | None
    by_key: bool


def _pair_features(
    images: Sequence[WorkImage],
    metric: Metric,
    needed: list[int],
    where: _Where,
    progress: ProgressFn | None,
) -> Sequence[Any]:
    """The features the blocks read, by image index: the ``needed`` images' features
    held here; or, when workers read them from the cache by key, stored there and
    none held (:class:`_Extracted` extracts a lost block's again)."""
    n = len(images)
    subset = [images[i] for i in needed]
    if not needed:
        if progress is not None:
            progress(n, n)
        return [None] * n
    w = where
    if w.by_key and w.cache is not None and w.keys is not None:
        wanted = [w.keys[i] for i in needed]
        store = _store_features(subset, metric, wanted, w.cache, w.mkey, w.stats, w.pool, progress)
        return _Extracted(images, metric, store)
    sub_keys = [w.keys[i] for i in needed] if w.keys is not None else None
    found = _features(subset, metric, sub_keys, w.cache, w.mkey, w.stats, w.pool, progress)
    held: list[Any] = [None] * n
    for i, f in zip(needed, found, strict=True):
        held[i] = f
    return held


@dataclass
class _Known:
    """What is known before computing: values, which pairs, and the shortlist's mask."""

    values: np.ndarray
    known: np.ndarray
    compared: np.ndarray | None


def known_pairs(
    n: int,
    keys: list[str] | None,
    cache: FeatureCache | None,
    mkey: str,
    stats: CacheStats,
    selected: Shortlist | None,
) -> _Known:
    """Step 1: the pairs already known, from the cache, and those the shortlist leaves out
    (0.0, never computed); ``known`` is True where nothing is left to compute."""
    values = np.eye(n)
    known = np.eye(n, dtype=bool)
    if cache is not None and keys is not None:
        _fill_from_rows(values, known, keys, cache.get_rows(mkey, dict.fromkeys(keys), stats))
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
    return _Known(values, known, compared)


def _fill_from_rows(
    values: np.ndarray, known: np.ndarray, keys: list[str], rows: dict[str, Row]
) -> None:
    """Write each cached pair ``(i, j)``, ``i < j``, from image ``i``'s row into
    ``values`` and mark it in ``known``; identical work images (one key at several
    positions) share their row and their column."""
    uniq, first, inverse = np.unique(digests(keys), return_index=True, return_inverse=True)
    order = np.argsort(inverse, kind="stable")  # positions grouped by unique key
    counts = np.bincount(inverse, minlength=len(uniq))
    starts = np.cumsum(counts) - counts
    for u, at_first in enumerate(first.tolist()):
        raw, vals = rows[keys[at_first]]
        if not len(raw):
            continue
        at = np.minimum(np.searchsorted(uniq, raw), len(uniq) - 1)
        hit = uniq[at] == raw  # the row's keys that are in this collection
        cols_u, vals = at[hit], vals[hit]
        reps = counts[cols_u]  # each unique column at every position it holds
        offset = np.arange(int(reps.sum())) - np.repeat(np.cumsum(reps) - reps, reps)
        cols = order[np.repeat(starts[cols_u], reps) + offset]
        vals = np.repeat(vals, reps)
        for i in order[starts[u] : starts[u] + counts[u]]:
            later = cols > i
            values[i, cols[later]] = vals[later]
            known[i, cols[later]] = True


class _Dense:
    """Every pair, held n x n: what is known (cache) and where results go."""

    def __init__(self, known: _Known) -> None:
        self.values, self.known, self.compared = known.values, known.known, known.compared

    def todo_count(self) -> int:
        return int(np.triu(~self.known, k=1).sum())

    def needed(self) -> list[int]:
        """The images that still have a pair to compute."""
        return [int(i) for i in np.flatnonzero(~(self.known | self.known.T).all(axis=1))]

    def plan(self, n: int, side: int) -> list[Block]:
        return block_plan(n, side, self.known)

    def put(self, rows: np.ndarray, cols: np.ndarray, values: np.ndarray) -> None:
        self.values[rows, cols] = values

    def matrix(self, ids: tuple[str, ...], metric: Metric, stats: CacheStats) -> SimilarityMatrix:
        return SimilarityMatrix(
            ids, _symmetric(self.values), metric.name, metric.params(),
            stats=stats.as_dict(), compared=self.compared,
        )  # fmt: skip


class _Shortlisted:
    """The shortlist's pairs only, as ``(m, 2)`` and ``(m,)`` arrays: at 10,000 images
    the n x n arrays of :class:`_Dense` (values, known, the shortlist's mask and their
    temporaries) held several GB for 167,000 compared pairs."""

    def __init__(
        self,
        n: int,
        selected: Shortlist,
        keys: list[str] | None,
        cache: FeatureCache | None,
        mkey: str,
        stats: CacheStats,
    ) -> None:
        if selected.n != n:
            raise ValueError(f"a shortlist of {selected.n} images for {n} images")
        self.n = n
        self.pairs = np.asarray(selected.pairs, np.int64).reshape(-1, 2)
        self.code = self.pairs[:, 0] * n + self.pairs[:, 1]
        order = np.argsort(self.code, kind="stable")
        self.pairs, self.code = self.pairs[order], self.code[order]
        self.values = np.zeros(len(self.pairs))
        self.known = np.zeros(len(self.pairs), bool)
        if cache is not None and keys is not None:
            rows = cache.get_rows(mkey, dict.fromkeys(keys), stats)
            _pairs_from_rows(self.pairs, self.values, self.known, keys, rows)
        stats.pairs_cached = int(self.known.sum())

    def todo_count(self) -> int:
        return int((~self.known).sum())

    def needed(self) -> list[int]:
        return [int(i) for i in np.unique(self.pairs[~self.known].ravel())]

    def plan(self, n: int, side: int) -> list[Block]:
        return sparse_block_plan(n, side, self.pairs[~self.known])

    def put(self, rows: np.ndarray, cols: np.ndarray, values: np.ndarray) -> None:
        self.values[np.searchsorted(self.code, rows * self.n + cols)] = values

    def matrix(self, ids: tuple[str, ...], metric: Metric, stats: CacheStats) -> ShortlistMatrix:
        return ShortlistMatrix(
            ids, self.pairs, self.values, metric.name, metric.params(), stats=stats.as_dict()
        )


def _pairs_from_rows(
    pairs: np.ndarray, values: np.ndarray, known: np.ndarray, keys: list[str], rows: dict[str, Row]
) -> None:
    """Each cached pair ``(i, j)`` of ``pairs`` (sorted by ``i``), read from image ``i``'s
    row, written into ``values`` and marked in ``known`` (as :func:`_fill_from_rows`)."""
    raw_keys = digests(keys)
    starts = np.searchsorted(pairs[:, 0], np.arange(len(keys) + 1))
    for i in np.unique(pairs[:, 0]).tolist():
        raw, vals = rows[keys[i]]
        if not len(raw):
            continue
        span = slice(int(starts[i]), int(starts[i + 1]))
        want = raw_keys[pairs[span, 1]]
        at = np.minimum(np.searchsorted(raw, want), len(raw) - 1)
        hit = raw[at] == want
        values[span][hit] = vals[at[hit]]
        known[span] = hit


#: One block of work: its origin (row, col), its pairs (block-relative), its row span
#: and its column span (None on the diagonal: the rows are the columns).
Block = tuple[tuple[int, int], list[tuple[int, int]], tuple[int, int], tuple[int, int] | None]


#: The largest block in shortlist mode: a task then ships at most 2 x 256 images'
#: features (SSIM's at 256 px: 170 MB), so the pool's few tasks in flight stay small.
SHORTLIST_MAX_BLOCK = 256


def shortlist_block_size(n: int, block_size: int, jobs: int, selected: Shortlist | None) -> int:
    """The block side used: ``block_size``, or in shortlist mode one that gives each
    worker about four row chunks (at most :data:`SHORTLIST_MAX_BLOCK`).

    A shortlist's pairs are spread over the whole matrix (an image's neighbours
    are anywhere in the set), so a block of 32 x 32 images held a few dozen of
    them yet shipped and prepared the features of all 64 images: at 1,000
    images a shortlisted SSIM pair cost 11x a dense one. With blocks of 128
    images, 2.6x (SIFT 2.6x -> 1.7x); the pairs and their values are the same.
    Used where features travel with the blocks (no cache, or a Dask cluster); on
    a process pool with a cache, workers read them by key and keep them prepared
    (:func:`run_blocks`), and blocks stay at ``block_size``.
    """
    if selected is None:
        return block_size
    return max(block_size, min(SHORTLIST_MAX_BLOCK, -(-n // (4 * max(1, jobs)))))


def block_plan(n: int, block_size: int, known: np.ndarray) -> list[Block]:
    """Step 2: the blocks that still hold a pair to compute, with those pairs."""
    work: list[Block] = []
    for r0, r1, c0, c1 in block_tasks(n, max(1, block_size)):
        # the block's unknown pairs (i, j), i < j, row by row: found in arrays, not a loop
        # over every pair (at 10,000 images, 50 million of them)
        todo = ~known[r0:r1, c0:c1] & (np.arange(c0, c1)[None, :] > np.arange(r0, r1)[:, None])
        rows, cols = np.nonzero(todo)
        if rows.size:
            pairs = list(zip(rows.tolist(), cols.tolist(), strict=True))
            work.append(((r0, c0), pairs, (r0, r1), None if r0 == c0 else (c0, c1)))
    return work


def sparse_block_plan(n: int, block_size: int, todo: np.ndarray) -> list[Block]:
    """:func:`block_plan` from the pairs left to compute, ``(m, 2)`` with ``i < j``,
    instead of an n x n mask: the same blocks, in the same order, with the same pairs."""
    side = max(1, block_size)
    todo = np.asarray(todo, np.int64).reshape(-1, 2)
    if not len(todo):
        return []
    rows, cols = todo[:, 0], todo[:, 1]
    order = np.lexsort((cols, rows, cols // side, rows // side))
    rows, cols = rows[order], cols[order]
    block = (rows // side) * (n // side + 1) + cols // side
    cuts = np.flatnonzero(np.diff(block)) + 1
    work: list[Block] = []
    for r, c in zip(np.split(rows, cuts), np.split(cols, cuts), strict=True):
        r0, c0 = int(r[0]) // side * side, int(c[0]) // side * side
        pairs = list(zip((r - r0).tolist(), (c - c0).tolist(), strict=True))
        spans = (r0, min(r0 + side, n)), (c0, min(c0 + side, n))
        work.append(((r0, c0), pairs, spans[0], None if r0 == c0 else spans[1]))
    return work


def run_blocks(
    metric: Metric,
    work: list[Block],
    features: Sequence[Any],
    pool: Executor | None,
    place: Callable[[tuple[int, int], list[tuple[int, int]], list[float]], None],
    *,
    cached: tuple[FeatureCache, str, list[str]] | None = None,
) -> None:
    """Step 3: compute every block (here, or on ``pool``) and ``place`` each result.

    Each chunk's features are handed to the executor once (on a Dask cluster:
    placed once on every worker), then referenced by every block that uses them.
    A block the cluster cancels (it lost the block's features with a worker) is
    sent again, with its chunks shared again, up to three times.
    With ``cached`` (the feature cache, the metric's key and every image's key) on a
    process pool, workers read the features from the cache themselves and keep them
    prepared (:func:`_compare_cached_pairs`); a block whose features the cache no
    longer holds is computed here from ``features`` (then :class:`_Extracted`: this
    process holds none).
    """
    if cached is not None and isinstance(pool, ProcessPoolExecutor):
        _run_cached_blocks(metric, work, features, pool, place, cached)
        return
    chunks = _Chunks(features, pool)

    def task(block: Block) -> tuple[Any, Any, Any, list[tuple[int, int]]]:
        _, pairs, rows_span, cols_span = block
        rows = chunks.get(rows_span)
        return metric, rows, None if cols_span is None else chunks.get(cols_span), pairs

    if pool is None:
        for block in work:
            place(block[0], block[1], _compare_pairs(*task(block)))
        return

    def send(k: int) -> tuple[Any, tuple[int, tuple[Any, Any]]]:
        args = task(work[k])
        return pool.submit(_compare_pairs, *args), (k, args[1:3])  # the chunks it took

    pending = dict(send(k) for k in range(len(work)))
    retried = [0] * len(work)
    while pending:  # a round: the blocks sent, then those sent again meanwhile
        again: dict[Any, tuple[int, tuple[Any, Any]]] = {}
        for fut in as_completed(pending):
            k, sent = pending[fut]
            block = work[k]
            if fut.cancelled() and retried[k] < _RETRIES:
                # a cluster cancels the tasks whose shared features it lost with a worker
                # (its memory manager may have dropped the other copies): the block's
                # chunks are shared again (once, whichever block finds them lost first)
                retried[k] += 1
                chunks.renew(block, sent)
                resent, what = send(k)
                again[resent] = what
                continue
            if fut.cancelled():
                raise AtelierError(
                    f"the cluster cancelled a block of {metric.name} pairs {_RETRIES + 1} times"
                    " (its workers keep losing the features shared with them)"
                )
            place(block[0], block[1], fut.result())
        pending = again


# a block cancelled by the cluster this many times is an error, not a lost worker
_RETRIES = 3


class _Chunks:
    """The feature chunks blocks take, each shared with ``pool`` once (and again
    only when a block that took it was cancelled: see :func:`run_blocks`)."""

    def __init__(self, features: Sequence[Any], pool: Executor | None) -> None:
        self.features = features
        self.pool = pool
        self.handles: dict[tuple[int, int], Any] = {}

    def get(self, span: tuple[int, int]) -> Any:
        if span not in self.handles:
            chunk = self.features[span[0] : span[1]]
            self.handles[span] = chunk if self.pool is None else share(self.pool, chunk)
        return self.handles[span]

    def renew(self, block: Block, sent: tuple[Any, Any]) -> None:
        """Forget the chunks ``block`` was sent (``sent``: their handles) that the
        cluster lost, so that they are shared again; one already shared again since
        (another block found it lost first) is kept."""
        for span, handle in zip(block[2:], sent, strict=True):
            lost = getattr(handle, "status", "finished") != "finished"  # a Dask future's
            if span is not None and lost and self.handles.get(span) is handle:
                del self.handles[span]


def _run_cached_blocks(
    metric: Metric,
    work: list[Block],
    features: Sequence[Any],
    pool: Executor,
    place: Callable[[tuple[int, int], list[tuple[int, int]], list[float]], None],
    cached: tuple[FeatureCache, str, list[str]],
) -> None:
    """:func:`run_blocks` with workers that read features from the cache by key."""
    cache, mkey, keys = cached
    where = (str(cache.directory), cache.size_limit_gb)
    futures = {}
    # row chunks in order, their column chunks forth and back in turn: a worker then
    # meets first the images it met last, which its least-recently-used store still
    # holds (in plain order it would scan every column again from the start and,
    # with more images than it holds, find none of them)
    rows = sorted({block[0][0] for block in work})
    turn = {r0: i % 2 for i, r0 in enumerate(rows)}
    work = sorted(work, key=lambda b: (b[0][0], -b[0][1] if turn[b[0][0]] else b[0][1]))
    for block in work:
        (r0, c0), pairs, (a, b), cols_span = block
        cols = None if cols_span is None else keys[cols_span[0] : cols_span[1]]
        task = (metric, where, mkey, keys[a:b], cols, pairs)
        futures[pool.submit(_compare_cached_pairs, *task)] = block
    for fut in as_completed(futures):
        (origin, pairs, (a, b), cols_span) = futures[fut]
        result = fut.result()
        if result is None:  # evicted meanwhile: this block here, its features extracted again
            col_features = None if cols_span is None else features[cols_span[0] : cols_span[1]]
            result = _compare_pairs(metric, features[a:b], col_features, pairs)
        place(origin, pairs, result)


def _by_key(
    selected: Shortlist | None,
    cache: FeatureCache | None,
    mkey: str,
    keys: list[str] | None,
    pool: Executor | None,
) -> tuple[FeatureCache, str, list[str]] | None:
    """What workers need to read features from the cache by key (:func:`run_blocks`):
    for a shortlist on a process pool with a cache, else None. Blocks then need not
    be large to spare shipping (1,000 images: SSIM 1.2x a dense pair with blocks of
    32, 1.6x with 125); elsewhere :func:`shortlist_block_size` makes them larger."""
    if selected is None or cache is None or keys is None:
        return None
    return (cache, mkey, keys) if isinstance(pool, ProcessPoolExecutor) else None


def _check_finite(images: Sequence[WorkImage]) -> None:
    for im in images:
        if not np.isfinite(im.gray).all():
            raise ValueError(f"{im.id}: work image has non-finite values (NaN or inf)")


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
    keys: list[str] | None = None,
) -> SimilarityMatrix:
    """Similarity matrix of ``images`` under ``metric``.

    Three steps: the pairs already known (:func:`known_pairs`, from the cache;
    in shortlist mode only the shortlist's pairs, held as pairs), the plan of
    blocks still holding pairs (:func:`block_plan`, :func:`sparse_block_plan`),
    and running them (:func:`run_blocks`), after extracting the features of
    the images that still have a pair to compute.

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
        Images per chunk; a task computes the pairs between two chunks. In
        shortlist mode chunks are larger (:func:`shortlist_block_size`).
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
        Compare only these pairs (shortlist mode); the others are 0.0, and the
        result holds the compared pairs (``upper()``).
    min_pool_pairs : int
        With fewer pairs left to compute (say, an image added to a cached
        set), they and the missing features are computed in this process:
        shipping every image's features to workers would cost more.
    keys : list of str, optional
        Each image's :func:`~similarity.cache.work_key`, when the caller made them
        (one pass over the pixels serves every metric); made here otherwise.

    Returns
    -------
    SimilarityMatrix
        Symmetric, 1.0 on the diagonal, values in [0, 1]; each unordered pair
        computed once; ``stats`` says what came from the cache. In shortlist
        mode a :class:`~similarity.matrix.ShortlistMatrix` of the compared pairs.
    """
    # long: the numpydoc docstring makes this function over 80 lines; its code is not
    n = len(images)
    _check_finite(images)
    stats = CacheStats()
    mkey = metric_key(metric)
    keys = None if cache is None else keys or [work_key(im) for im in images]
    jobs = resolve_jobs(n_jobs)
    own_pool = executor is None and jobs > 1 and len(block_tasks(n, max(1, block_size))) > 1
    pool: Executor | None = process_pool(jobs) if own_pool else executor
    owned = pool if own_pool else None
    run_store: FeatureCache | None = None
    try:
        state: _Dense | _Shortlisted = (
            _Dense(known_pairs(n, keys, cache, mkey, stats, None))
            if selected is None
            else _Shortlisted(n, selected, keys, cache, mkey, stats)
        )
        if state.todo_count() < min_pool_pairs:
            pool = None  # a few pairs: cheaper here than shipped to workers
        t_features = time.perf_counter()
        in_cache = _by_key(selected, cache, mkey, keys, pool)
        # features only of the images that still have a pair to compute
        needed = state.needed()
        where = _Where(keys, cache, mkey, stats, pool, in_cache is not None)
        features = _pair_features(images, metric, needed, where, feature_progress)
        t_pairs = time.perf_counter()
        stats.seconds_features = round(t_pairs - t_features, 4)
        total = n * (n - 1) // 2 if selected is None else selected.n_pairs
        done = stats.pairs_cached
        fresh: dict[tuple[str, str], float] = {}

        def place(
            origin: tuple[int, int], pairs: list[tuple[int, int]], result: list[float]
        ) -> None:
            nonlocal done
            r0, c0 = origin
            at = np.asarray(pairs, np.int64).reshape(-1, 2)
            state.put(at[:, 0] + r0, at[:, 1] + c0, np.asarray(result, np.float64))
            if keys is not None:
                for (i, j), v in zip(pairs, result, strict=True):
                    fresh[(keys[r0 + i], keys[c0 + j])] = v
            done += len(pairs)
            if progress is not None:
                progress(done, total)

        side = block_size if in_cache else shortlist_block_size(n, block_size, jobs, selected)
        work = state.plan(n, side)
        in_cache, run_store = _reading_store(in_cache, features, cache)
        run_blocks(metric, work, features, pool, place, cached=in_cache)
        if progress is not None and not work:
            progress(total, total)
        stats.pairs_computed = sum(len(block[1]) for block in work)
        stats.seconds_pairs = round(time.perf_counter() - t_pairs, 4)
        if cache is not None and fresh:
            cache.put_pairs(mkey, fresh)
    finally:
        if owned is not None:
            owned.shutdown()
        if run_store is not None:
            run_store.discard()
    return state.matrix(ids_of(images), metric, stats)


def _symmetric(upper: np.ndarray) -> np.ndarray:
    """The matrix whose upper triangle ``upper`` holds, 1.0 on the diagonal, made in
    one n x n copy and its own addition (the sum of triangles and an identity took
    four: at 10,000 images each is 0.8 GB)."""
    values = np.triu(upper, k=1)
    values += values.T
    np.fill_diagonal(values, 1.0)
    return values


def _reading_store(
    in_cache: tuple[FeatureCache, str, list[str]] | None,
    features: Sequence[Any],
    cache: FeatureCache | None,
) -> tuple[tuple[FeatureCache, str, list[str]] | None, FeatureCache | None]:
    """Where the workers read features by key (the cache, or the run store the features
    went to: :func:`_store_features`), and that run store, to discard, if any."""
    if in_cache is None or not isinstance(features, _Extracted):
        return in_cache, None
    store = features.store
    return (store, in_cache[1], in_cache[2]), None if store is cache else store


def ids_of(images: Sequence[WorkImage]) -> tuple[str, ...]:
    """The images' ids, in order (the matrix's rows)."""
    return tuple(im.id for im in images)
