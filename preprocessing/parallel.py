"""Process pools and an ordered, chunked map shared by the stages that fan out."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from typing import Any

__all__ = ["resolve_jobs", "process_pool", "ordered_map", "single_threaded"]


def resolve_jobs(n_jobs: int | None) -> int:
    """``None`` -> every core; otherwise at least 1."""
    return max(1, n_jobs if n_jobs is not None else (os.cpu_count() or 1))


#: Imported once by the fork server, so every worker it forks starts with them loaded.
_PRELOAD = ["numpy", "scipy.ndimage", "cv2", "skimage.feature", "preprocessing", "similarity"]


def process_pool(n_jobs: int) -> ProcessPoolExecutor:
    """A process pool started with ``forkserver``: safe from multi-threaded hosts
    (the web app), cheaper than ``spawn``. The fork server preloads the
    scientific stack and Atelier's core once per process, so later pools start
    in milliseconds instead of re-importing in every worker."""
    ctx = get_context("forkserver")
    ctx.set_forkserver_preload(_PRELOAD)
    return ProcessPoolExecutor(max_workers=n_jobs, mp_context=ctx, initializer=single_threaded)


def single_threaded() -> None:
    """Run a worker's BLAS and OpenCV on one thread: the pool is the parallelism, and
    threads inside every worker would only fight over the same cores."""
    import cv2
    from threadpoolctl import threadpool_limits

    cv2.setNumThreads(1)
    threadpool_limits(1)


def _run_chunk(fn: Callable[..., Any], chunk: Sequence[tuple[Any, ...]]) -> list[Any]:
    return [fn(*args) for args in chunk]


def ordered_map(
    fn: Callable[..., Any],
    items: Sequence[tuple[Any, ...]],
    *,
    executor: Executor | None = None,
    chunk_size: int = 8,
    progress: Callable[[int, int], None] | None = None,
) -> list[Any]:
    """``[fn(*item) for item in items]``, in chunks on ``executor`` when given.

    Results come back in the order of ``items``; ``progress(done, total)`` is
    called as chunks finish.
    """
    total = len(items)
    chunks = [items[i : i + chunk_size] for i in range(0, total, chunk_size)]
    if executor is None:
        out: list[Any] = []
        for chunk in chunks:
            out.extend(_run_chunk(fn, chunk))
            if progress is not None:
                progress(len(out), total)
        return out
    futures = [executor.submit(_run_chunk, fn, chunk) for chunk in chunks]
    done = 0
    for fut in as_completed(futures):
        done += len(fut.result())
        if progress is not None:
            progress(done, total)
    return [r for fut in futures for r in fut.result()]
