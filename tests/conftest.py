from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from factory import SAMPLES


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
