"""Freed heap memory given back to the operating system between stages."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from preprocessing.memory import _trim, release_freed_memory

psutil = pytest.importorskip("psutil")


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or _trim() is None, reason="glibc's malloc_trim only"
)
def test_holes_left_between_kept_arrays_are_returned():
    process = psutil.Process()
    # freeing a large mapped block raises glibc's mmap threshold past the arrays below,
    # which then come from the heap, kept and freed ones interleaved: the pattern of a
    # stage that keeps each image's result and frees its temporaries
    big = np.ones(16 * 2**20, np.uint8)  # under 32 MB: glibc moves its threshold to it
    del big
    kept, freed = [], []
    for _ in range(100):
        kept.append(np.ones(400_000, np.uint8))
        freed.append(np.ones(400_000, np.uint8))
    holes = sum(a.nbytes for a in freed)
    del freed
    before = process.memory_info().rss
    assert release_freed_memory()
    returned = before - process.memory_info().rss
    assert returned >= 0.5 * holes, (returned, holes)
    assert all(int(a[0]) == 1 and int(a[-1]) == 1 for a in kept)  # the kept ones intact


def test_elsewhere_it_is_a_no_op(monkeypatch):
    monkeypatch.setattr("preprocessing.memory._trim", lambda: None)
    assert release_freed_memory() is False
