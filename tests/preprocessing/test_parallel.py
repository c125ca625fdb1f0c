"""The fork server started ahead of the pools that use it."""

from __future__ import annotations

import sys


def _loaded(name: str) -> bool:
    return name in sys.modules


def test_warm_fork_server_serves_later_pools():
    """A run starts the server early; the pools it starts later fork workers from it and
    compute as usual (the preload is fixed by the server's first start, so only the
    server being up and serving is asserted, not which modules it holds)."""
    from multiprocessing import forkserver

    from preprocessing.parallel import process_pool, warm_forkserver

    thread = warm_forkserver(["json"])
    thread.join(timeout=120)
    assert not thread.is_alive()
    assert forkserver._forkserver._forkserver_pid is not None  # started, and still running
    with process_pool(2) as pool:
        assert list(pool.map(_loaded, ["preprocessing", "numpy"])) == [True, True]
