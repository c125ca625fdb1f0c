from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from factory import SAMPLES


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
