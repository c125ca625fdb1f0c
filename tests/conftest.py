from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from factory import SAMPLES

#: The longest test files, longest first (seconds measured on 2 cores with `make test`'s
#: two processes, 2026-12-07): a test file stays on one process (--dist loadfile) and files
#: are handed out in collection order, so these start first instead of ending the run alone.
LONGEST_FIRST = (
    "app/test_interrupt.py",  # ~370 s
    "app/test_scale.py",  # ~300 s
    "app/test_soak.py",  # ~260 s
    "test_accuracy.py",  # ~230 s
    "app/test_cli.py",  # ~200 s
    "app/test_browser.py",  # ~150 s
    "app/test_query_default.py",  # ~120 s
)


def pytest_collection_modifyitems(config, items):
    """Longest files first (above), then the other files with a slow test, then the rest;
    each file's tests stay together and in their order."""
    tests = Path(__file__).resolve().parent
    rank: dict[str, int] = {}
    for item in items:
        path = Path(str(item.fspath)).resolve()
        name = path.relative_to(tests).as_posix() if path.is_relative_to(tests) else ""
        if name in LONGEST_FIRST:
            own = LONGEST_FIRST.index(name)
        else:
            own = len(LONGEST_FIRST) + (0 if item.get_closest_marker("slow") else 1)
        rank[str(item.fspath)] = min(own, rank.get(str(item.fspath), own))
    items.sort(key=lambda item: rank[str(item.fspath)])


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory):
    """Every test (and every CLI or app it starts) uses a fresh cache, never ~/.cache."""
    import os

    path = tmp_path_factory.mktemp("atelier-cache")
    old = os.environ.get("ATELIER_CACHE_DIR")
    os.environ["ATELIER_CACHE_DIR"] = str(path)
    yield path
    if old is None:
        os.environ.pop("ATELIER_CACHE_DIR", None)
    else:
        os.environ["ATELIER_CACHE_DIR"] = old


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    return SAMPLES


def tree_hashes(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def hashes():
    return tree_hashes
