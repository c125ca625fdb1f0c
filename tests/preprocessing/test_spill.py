"""Pixels kept on disk: exact round trips, nothing held, worker copies, the folder's life."""

from __future__ import annotations

import gc
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
from factory import bad_files, good_files, write_tree

from preprocessing import load_folder
from preprocessing.load import ImageRecord, SpilledRecord
from preprocessing.spill import SPILL_PREFIX, PixelSpill, Spilled
from preprocessing.work import SpilledWorkImage, WorkImage, on_pixels


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.bool_, np.uint8])
def test_arrays_come_back_exactly_and_read_only(tmp_path, dtype):
    rng = np.random.default_rng(3)
    spill = PixelSpill(tmp_path)
    arrays = [(rng.random((17, 23, 3)) * 200).astype(dtype) for _ in range(5)]
    handles = [spill.put(a) for a in arrays]
    for a, h in zip(arrays, handles, strict=True):
        back = h.read()
        assert back.dtype == a.dtype and back.shape == a.shape and np.array_equal(back, a)
        assert not back.flags.writeable
    assert spill.nbytes == sum(a.nbytes for a in arrays)
    spill.close()


def test_non_contiguous_arrays_are_written_in_c_order(tmp_path):
    spill = PixelSpill(tmp_path)
    a = np.arange(60, dtype=np.float32).reshape(6, 10)[:, ::3].T
    assert np.array_equal(spill.put(a).read(), a)


def test_the_folder_lives_as_long_as_an_image_refers_to_it(tmp_path):
    spill = PixelSpill(tmp_path)
    folder = spill.directory
    assert folder.parent == tmp_path and folder.name.startswith(f"{SPILL_PREFIX}{os.getpid()}-")
    image = SpilledWorkImage.spill(
        WorkImage("a", np.ones((8, 8), np.float32), np.ones((8, 8), bool), np.eye(3)), spill
    )
    del spill
    gc.collect()
    assert folder.exists() and image.gray.sum() == 64  # the image keeps the spill alive
    del image
    gc.collect()
    assert not folder.exists()


def test_a_copy_sent_to_a_worker_reads_the_pixels_and_removes_nothing(tmp_path):
    spill = PixelSpill(tmp_path)
    gray = np.random.default_rng(0).random((32, 32), dtype=np.float32)
    image = SpilledWorkImage.spill(WorkImage("a", gray, gray > 0.5, np.eye(3)), spill)
    payload = pickle.dumps(image)
    assert len(payload) < 1000  # where the pixels lie, not 5 kB of pixels
    code = (
        "import pickle, sys, numpy as np\n"
        "from preprocessing.work import on_pixels\n"
        "im = pickle.loads(sys.stdin.buffer.read())\n"
        "print(float(on_pixels(lambda g, m: g[m].sum(), im)))\n"
        "del im\n"
    )
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    out = subprocess.run(
        [sys.executable, "-c", code], input=payload, capture_output=True, check=True, env=env
    )
    assert float(out.stdout) == pytest.approx(float(gray[gray > 0.5].sum()), rel=1e-6)
    assert spill.directory.exists()  # the worker's copy owned nothing
    assert on_pixels(lambda g, m: int(m.sum()), image) == int((gray > 0.5).sum())


def test_a_spill_left_by_a_dead_process_is_removed_by_the_next(tmp_path):
    code = "import os; print(os.getpid())"
    dead = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True)
    stale = tmp_path / f"{SPILL_PREFIX}{int(dead.stdout)}-abc"
    stale.mkdir()
    (stale / "pixels.bin").write_bytes(b"x" * 10)
    alive = tmp_path / f"{SPILL_PREFIX}{os.getpid()}-keep"
    alive.mkdir()
    PixelSpill(tmp_path).close()
    assert not stale.exists() and alive.exists()


def test_a_spill_removed_under_a_run_says_so(tmp_path):
    spill = PixelSpill(tmp_path)
    handle = spill.put(np.zeros(10, np.float32))
    spill.close()
    with pytest.raises(RuntimeError, match="can no longer be read"):
        handle.read()


def test_replacing_a_field_keeps_the_other_pixels_where_they_lie(tmp_path):
    spill = PixelSpill(tmp_path)
    image = SpilledWorkImage.spill(
        WorkImage("a", np.ones((4, 4), np.float32), np.ones((4, 4), bool), np.eye(3)), spill
    )
    moved = image.with_transform(2 * np.eye(3))
    assert isinstance(moved._gray, Spilled) and moved.spilled_to is spill
    assert np.array_equal(moved.transform, 2 * np.eye(3))


def test_a_folder_loaded_into_a_spill_gives_the_same_records(tmp_path):
    good = good_files()
    files = {**good, "copy_of_b.png": good["good_b.png"]}  # a duplicate, flagged
    files.update({name: data for name, (data, _) in bad_files().items()})
    write_tree(tmp_path / "in", files)
    held = load_folder(tmp_path / "in")
    asked: list[int] = []

    def spill_for(n: int) -> PixelSpill:
        asked.append(n)
        return PixelSpill(tmp_path / "spill")

    spilled = load_folder(tmp_path / "in", spill=spill_for)
    # asked once, with the number of files about to be decoded
    assert len(asked) == 1 and len(held) < asked[0] <= len(held) + len(held.skipped)
    assert spilled.ids == held.ids and spilled.skipped == held.skipped and held.skipped
    assert spilled.duplicates() == held.duplicates() == {"good_b.png": "copy_of_b.png"}
    for a, b in zip(held, spilled, strict=True):
        assert type(a) is ImageRecord and isinstance(b, SpilledRecord)
        assert isinstance(b._pixels, Spilled)  # nothing held in memory
        assert np.array_equal(a.pixels, b.pixels) and a.meta == b.meta and a.sha256 == b.sha256
