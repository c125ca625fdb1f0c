"""The on-disk cache: reuse counted, parameters respected, corruption detected, rows only."""

from __future__ import annotations

import sqlite3

import numpy as np

from preprocessing import WorkImage
from similarity import SSIM, get_metric, pairwise
from similarity.cache import CacheStats, FeatureCache, digests, metric_key, work_key


def images(n, seed=0, size=48):
    rng = np.random.default_rng(seed)
    base = rng.random((size, size), dtype=np.float32)
    return [
        WorkImage(
            f"im{i}",
            np.clip(base + 0.1 * rng.standard_normal((size, size)), 0, 1).astype(np.float32),
            np.ones((size, size), bool),
            np.eye(3),
        )
        for i in range(n)
    ]


def test_second_run_computes_nothing(tmp_path):
    ims = images(8)
    with FeatureCache(tmp_path) as cache:
        first = pairwise(ims, SSIM(), n_jobs=1, cache=cache)
        second = pairwise(ims, SSIM(), n_jobs=1, cache=cache)
    counts = ("features_cached", "features_computed", "pairs_cached", "pairs_computed", "corrupt")
    assert {k: first.stats[k] for k in counts} == {
        "features_cached": 0,
        "features_computed": 8,
        "pairs_cached": 0,
        "pairs_computed": 28,
        "corrupt": 0,
    }
    assert {k: second.stats[k] for k in counts} == {
        "features_cached": 0,
        "features_computed": 0,
        "pairs_cached": 28,
        "pairs_computed": 0,
        "corrupt": 0,
    }
    np.testing.assert_array_equal(first.values, second.values)


def test_adding_one_image_computes_only_its_features_and_row(tmp_path):
    ims = images(9)
    with FeatureCache(tmp_path) as cache:
        pairwise(ims[:8], SSIM(), n_jobs=1, cache=cache)
        grown = pairwise(ims, SSIM(), n_jobs=1, cache=cache)
        fresh = pairwise(ims, SSIM(), n_jobs=1)
    assert grown.stats["features_computed"] == 1 and grown.stats["pairs_computed"] == 8
    assert grown.stats["pairs_cached"] == 28
    np.testing.assert_array_equal(grown.values, fresh.values)


def test_changed_parameter_or_pixels_recompute(tmp_path):
    ims = images(5)
    with FeatureCache(tmp_path) as cache:
        pairwise(ims, SSIM(), n_jobs=1, cache=cache)
        other = pairwise(ims, get_metric("ssim", sigma=2.5), n_jobs=1, cache=cache)
        assert other.stats["features_computed"] == 5 and other.stats["pairs_cached"] == 0
        changed = list(ims)
        changed[0] = WorkImage("im0", np.clip(ims[0].gray + 0.01, 0, 1), ims[0].mask, np.eye(3))
        again = pairwise(changed, SSIM(), n_jobs=1, cache=cache)
    assert again.stats["features_computed"] == 1 and again.stats["pairs_computed"] == 4
    assert metric_key(SSIM()) != metric_key(get_metric("ssim", sigma=2.5))
    assert work_key(changed[0]) != work_key(ims[0])


def test_corrupted_entry_is_detected_and_recomputed(tmp_path):
    ims = images(4)
    with FeatureCache(tmp_path) as cache:
        reference = pairwise(ims, SSIM(), n_jobs=1, cache=cache)
    # flip a byte inside every stored entry, behind diskcache's back: small entries (pair
    # rows) live inline in SQLite, large ones (features) in files beside it
    db = sqlite3.connect(tmp_path / "cache.db")
    rows = db.execute("SELECT rowid, value, filename FROM Cache").fetchall()
    assert len(rows) == 8
    for rowid, value, filename in rows:
        if value is not None:
            blob = bytearray(value)
            blob[-5] ^= 0xFF
            db.execute("UPDATE Cache SET value = ? WHERE rowid = ?", (bytes(blob), rowid))
        else:
            path = tmp_path / filename
            blob = bytearray(path.read_bytes())
            blob[-5] ^= 0xFF
            path.write_bytes(bytes(blob))
    db.commit()
    db.close()
    with FeatureCache(tmp_path) as cache:
        again = pairwise(ims, SSIM(), n_jobs=1, cache=cache)
        after = pairwise(ims, SSIM(), n_jobs=1, cache=cache)
    assert again.stats["corrupt"] == 8 and again.stats["pairs_computed"] == 6
    assert again.stats["features_computed"] == 4
    np.testing.assert_array_equal(again.values, reference.values)
    assert after.stats["corrupt"] == 0 and after.stats["pairs_cached"] == 6


def test_duplicate_work_images_are_extracted_once(tmp_path):
    ims = images(3)
    dup = [*ims, WorkImage("copy", ims[0].gray.copy(), ims[0].mask.copy(), np.eye(3))]
    with FeatureCache(tmp_path) as cache:
        mat = pairwise(dup, SSIM(), n_jobs=1, cache=cache)
    assert mat.stats["features_computed"] == 3
    assert mat.values[0, 3] == 1.0


def test_a_few_missing_pairs_are_computed_here_not_shipped_to_workers(tmp_path):
    from concurrent.futures import Executor

    class Refusing(Executor):
        def submit(self, fn, /, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN201
            raise AssertionError("a few pairs must not go to the workers")

    ims = images(9)
    with FeatureCache(tmp_path) as cache:
        pairwise(ims[:8], SSIM(), n_jobs=1, cache=cache)
        grown = pairwise(ims, SSIM(), executor=Refusing(), cache=cache, min_pool_pairs=100)
        full = pairwise(ims, SSIM(), n_jobs=1)
    assert grown.stats["pairs_computed"] == 8 and grown.stats["features_computed"] == 1
    np.testing.assert_array_equal(grown.values, full.values)


def test_rows_of_an_earlier_atelier_are_read_once_and_moved_to_the_compact_form(tmp_path):
    from similarity.cache import _pack

    ims = images(6)
    with FeatureCache(tmp_path) as cache:
        reference = pairwise(ims, SSIM(), n_jobs=1, cache=cache)
        mkey, keys = metric_key(SSIM()), [work_key(im) for im in ims]
        for i, key in enumerate(keys):  # rows as an earlier Atelier stored them: dicts
            cache._cache.delete(f"r/{mkey}/{key}")
            old = {keys[j]: float(reference.values[i, j]) for j in range(6) if j != i}
            cache._cache.set(f"p/{mkey}/{key}", _pack(old))
        again = pairwise(ims, SSIM(), n_jobs=1, cache=cache)
        stored = set(cache._cache.iterkeys())
    assert again.stats["pairs_cached"] == 15 and again.stats["pairs_computed"] == 0
    np.testing.assert_array_equal(again.values, reference.values)
    assert {f"r/{mkey}/{k}" for k in keys} <= stored
    assert not any(k.startswith("p/") for k in stored)


def test_cached_rows_fill_every_position_of_a_repeated_image(tmp_path):
    ims = images(5)
    dup = [ims[0], ims[1], ims[2], WorkImage("copy", ims[0].gray.copy(), ims[0].mask, np.eye(3))]
    dup += [ims[3], WorkImage("copy2", ims[2].gray.copy(), ims[2].mask, np.eye(3)), ims[4]]
    with FeatureCache(tmp_path) as cache:
        first = pairwise(dup, SSIM(), n_jobs=1, cache=cache)
        second = pairwise(dup, SSIM(), n_jobs=1, cache=cache)
        shuffled = pairwise(dup[::-1], SSIM(), n_jobs=1, cache=cache)
    assert second.stats["pairs_computed"] == 0 and second.stats["pairs_cached"] == 21
    np.testing.assert_array_equal(second.values, first.values)
    np.testing.assert_array_equal(shuffled.values, first.values[::-1, ::-1])
    assert shuffled.stats["pairs_computed"] == 0


def test_a_stored_pair_computed_again_keeps_the_new_value(tmp_path):
    ims = images(3)
    mkey, keys = metric_key(SSIM()), [work_key(im) for im in ims]
    with FeatureCache(tmp_path) as cache:
        cache.put_pairs(mkey, {(keys[0], keys[1]): 0.25, (keys[0], keys[2]): 0.5})
        cache.put_pairs(mkey, {(keys[1], keys[0]): 0.75})
        rows = cache.get_rows(mkey, keys, CacheStats())
    order = np.argsort(digests(keys[1:]))  # a row is sorted by digest
    np.testing.assert_array_equal(rows[keys[0]][0], digests(keys[1:])[order])
    np.testing.assert_array_equal(rows[keys[0]][1], np.array([0.75, 0.5])[order])
    assert rows[keys[1]][1].tolist() == [0.75]


def test_a_stored_value_reads_back_and_a_corrupt_one_is_dropped(tmp_path):
    value = {"labels": np.arange(5), "k": 3}
    with FeatureCache(tmp_path) as cache:
        assert cache.get_value("a" * 64) == (False, None)
        cache.put_value("a" * 64, value)
        hit, got = cache.get_value("a" * 64)
    assert hit and got["k"] == 3
    np.testing.assert_array_equal(got["labels"], value["labels"])
    db = sqlite3.connect(tmp_path / "cache.db")
    ((rowid, blob),) = db.execute("SELECT rowid, value FROM Cache").fetchall()
    blob = bytearray(blob)
    blob[-3] ^= 0xFF
    db.execute("UPDATE Cache SET value = ? WHERE rowid = ?", (bytes(blob), rowid))
    db.commit()
    db.close()
    with FeatureCache(tmp_path) as cache:
        assert cache.get_value("a" * 64) == (False, None)
        assert len(cache._cache) == 0  # dropped


def test_a_private_cache_is_removed_with_its_owner_and_not_by_a_worker_copy(tmp_path):
    import gc
    import pickle

    from similarity.cache import PRIVATE_PREFIX, PrivateFeatureCache

    stats = CacheStats()
    private = PrivateFeatureCache(tmp_path)
    folder = private.directory
    assert folder.parent == tmp_path and folder.name.startswith(PRIVATE_PREFIX)
    private.put_features("m", {"k": np.arange(3)})
    private.close()  # only the handle: it opens again on use
    assert private.get_features("m", ["k"], stats)["k"].tolist() == [0, 1, 2]
    copy = pickle.loads(pickle.dumps(private))  # what a worker process receives
    assert isinstance(copy, PrivateFeatureCache) and copy.directory == folder
    assert copy.get_features("m", ["k"], stats)["k"].tolist() == [0, 1, 2]
    del copy
    gc.collect()
    assert folder.is_dir()  # a copy owns nothing
    del private
    gc.collect()
    assert not folder.exists()
    # discard removes it now; a folder whose process died is removed by the next one
    other = PrivateFeatureCache(tmp_path)
    other.discard()
    assert not other.directory.exists()
    stale = tmp_path / f"{PRIVATE_PREFIX}999999999-x"
    stale.mkdir()
    last = PrivateFeatureCache(tmp_path)
    assert not stale.exists()
    # it never fails a run: a write that fails stops its writes, reads then miss
    last.close()
    import shutil

    shutil.rmtree(last.directory)  # the disk gone from under it
    assert last.put_features("m", {"k": np.arange(3)}) == 0
    last.put_pairs("m", {("a", "b"): 0.5})
    last.put_values({"v": 1})
    assert last._failed
    last.discard()
