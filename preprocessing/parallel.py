"""Process pools and an ordered, chunked map shared by the stages that fan out."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Any

from .errors import ConfigError

__all__ = [
    "ClusterExecutor",
    "Compute",
    "check_scheduler",
    "open_executor",
    "ordered_map",
    "preload",
    "process_pool",
    "resolve_jobs",
    "share",
    "single_threaded",
    "warm_forkserver",
]


def resolve_jobs(n_jobs: int | None) -> int:
    """``None`` -> every core; otherwise at least 1."""
    return max(1, n_jobs if n_jobs is not None else (os.cpu_count() or 1))


#: Imported once by the fork server, so every worker it forks starts with them loaded.
_PRELOAD = [
    "numpy",
    "scipy.ndimage",
    "cv2",
    "skimage.feature",
    "preprocessing",
    "similarity",
    "similarity._warm",
]


def process_pool(n_jobs: int) -> ProcessPoolExecutor:
    """A process pool started with ``forkserver``: safe from multi-threaded hosts
    (the web app), cheaper than ``spawn``. The fork server preloads the
    scientific stack and Atelier's core once per process, so later pools start
    in milliseconds instead of re-importing in every worker."""
    ctx = _preloading()
    return ProcessPoolExecutor(max_workers=n_jobs, mp_context=ctx, initializer=single_threaded)


#: Every module asked to be preloaded in this process so far: the fork server imports
#: the list as it stands when it first starts, whichever pool or warm-up starts it.
_preload: list[str] = list(_PRELOAD)


def _preloading(modules: Sequence[str] = ()) -> Any:
    """The forkserver context, its preload list extended by ``modules`` (never shortened:
    a pool started after :func:`warm_forkserver` keeps the figure modules on the list)."""
    _preload.extend(m for m in modules if m not in _preload)
    ctx = get_context("forkserver")
    ctx.set_forkserver_preload(list(_preload))
    return ctx


def preload(modules: Sequence[str]) -> None:
    """Add ``modules`` to what the fork server imports when it starts (by
    :func:`warm_forkserver` or the first pool), without starting it."""
    _preloading(modules)


def warm_forkserver(modules: Sequence[str] = ()) -> threading.Thread:
    """Start the fork server in the background, preloading the scientific stack and
    ``modules``, and return the thread that starts it.

    Call it at the start of a run that will start process pools later: the server's
    first start imports the stack (about 2 s, and with figure modules more) while the
    run does its other work, and every pool started after forks ready workers. The
    preload list is fixed by the server's first start; a pool started before the
    server is up starts it with these modules too.
    """
    from multiprocessing import forkserver

    _preloading(modules)
    thread = threading.Thread(target=forkserver.ensure_running, daemon=True)
    thread.start()
    return thread


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


# ----------------------------------------------------------------------------- Dask

_ADDRESS = re.compile(r"^(tcp|tls)://[^\s/:]+:\d{1,5}$")


def check_scheduler(scheduler: object) -> None:
    """Validate a scheduler setting: ``None``, ``"local"`` or ``tcp://HOST:PORT``.

    Raises
    ------
    ConfigError
    """
    if scheduler is None or scheduler == "local":
        return
    if not isinstance(scheduler, str) or not _ADDRESS.match(scheduler):
        raise ConfigError(
            f"scheduler must be 'local' or an address like tcp://HOST:PORT, got {scheduler!r}"
        )


class ClusterExecutor(Executor):
    """A Dask distributed client seen as a :class:`concurrent.futures.Executor`.

    ``submit`` sends a task to the cluster (impure: never deduplicated; a task
    lost with a worker is run again elsewhere by the scheduler). ``share``
    places an object on every worker once and returns a handle that tasks
    take as an argument, so data used by many tasks travels once per worker,
    not once per task.
    """

    def __init__(self, client: Any) -> None:
        self.client = client
        self._executor = client.get_executor(pure=False)

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        return self._executor.submit(fn, *args, **kwargs)

    def share(self, data: Any) -> Any:
        return self.client.scatter([data], broadcast=True, hash=False)[0]

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """The client belongs to whoever opened it (:func:`open_executor`)."""


def share(executor: Executor | None, data: Any) -> Any:
    """``data`` as a task argument for ``executor``: a per-worker handle on a cluster."""
    return executor.share(data) if isinstance(executor, ClusterExecutor) else data


@dataclass
class Compute:
    """Where an analysis runs: ``executor`` (None: this process) and, for the
    record, ``kind`` (``processes``, ``dask`` or ``serial``), the number of
    workers, the scheduler's address and Dask's dashboard link."""

    executor: Executor | None
    kind: str
    workers: int
    scheduler: str | None = None
    dashboard: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "workers": self.workers,
            "scheduler": self.scheduler,
            "dashboard": self.dashboard,
        }


@contextmanager
def open_executor(
    scheduler: str | None, n_jobs: int | None, *, pool_min_items: int = 1, n_items: int = 0
) -> Iterator[Compute]:
    """The executor an analysis fans out on, closed afterwards.

    Parameters
    ----------
    scheduler : str or None
        ``None``: a local process pool of ``n_jobs`` workers (none at all,
        i.e. this process, when ``n_jobs`` is 1 or there are fewer than
        ``pool_min_items`` items). ``"local"``: a Dask ``LocalCluster`` of
        ``n_jobs`` single-threaded worker processes on 127.0.0.1 (with Dask's
        dashboard on 127.0.0.1). ``"tcp://HOST:PORT"``: the Dask cluster
        whose scheduler listens there; its workers must have Atelier
        installed.

    Yields
    ------
    Compute

    Raises
    ------
    ConfigError
        If Dask is not installed or the scheduler cannot be reached.
    """
    # long: the numpydoc docstring makes this function over 80 lines; its code is not
    check_scheduler(scheduler)
    jobs = resolve_jobs(n_jobs)
    if scheduler is None:
        if jobs > 1 and n_items >= pool_min_items:
            pool = process_pool(jobs)
            try:
                yield Compute(pool, "processes", jobs)
            finally:
                pool.shutdown()
        else:
            yield Compute(None, "serial", 1)
        return
    try:
        from distributed import Client, LocalCluster, WorkerPlugin
    except ImportError as err:
        raise ConfigError(
            "a Dask scheduler needs the dist extra: pip install 'atelier[dist]'"
        ) from err

    class SingleThreaded(WorkerPlugin):  # type: ignore[misc]
        """BLAS and OpenCV on one thread in every worker, also in restarted ones."""

        name = "atelier-single-threaded"

        def setup(self, worker: Any) -> None:
            single_threaded()

    cluster = None
    try:
        if scheduler == "local":
            cluster = LocalCluster(
                n_workers=jobs,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address="127.0.0.1:0",
            )
            client = Client(cluster)
        else:
            client = Client(scheduler, timeout="10s")
    except OSError as err:
        if cluster is not None:
            cluster.close()
        raise ConfigError(f"cannot reach the Dask scheduler at {scheduler}: {err}") from err
    try:
        client.register_plugin(SingleThreaded())
        workers = len(client.scheduler_info().get("workers", {}))
        yield Compute(
            ClusterExecutor(client),
            "dask",
            workers,
            client.scheduler.address,
            client.dashboard_link,
        )
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
