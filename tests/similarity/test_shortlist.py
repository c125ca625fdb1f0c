"""Shortlist mode: which pairs the cheap descriptor keeps, and the engine computing only those."""

from __future__ import annotations

import pickle
from types import SimpleNamespace

import diskcache
import numpy as np
import pytest
from datasets import generated_set, write_large_set
from factory import SAMPLES

from clustering import read_labels
from preprocessing import load_folder
from preprocessing.errors import AtelierError
from preprocessing.work import WorkImage, make_work_image
from similarity import get_metric, pairwise
from similarity.config import SimilarityConfig
from similarity.fusion import fuse
from similarity.shortlist import descriptor_pair, global_descriptor, shortlist, shortlist_recall


def _work(image_set, size=256):
    return [make_work_image(r.id, r.pixels, size) for r in image_set]


def test_pairs_are_unique_ordered_and_cover_k_neighbours():
    image_set, _ = generated_set(n_bases=6, copies=4, size=96)
    ims = _work(image_set, 96)
    s = shortlist(ims, 5)
    assert (s.pairs[:, 0] < s.pairs[:, 1]).all()
    assert len(np.unique(s.pairs, axis=0)) == len(s.pairs)
    degree = np.bincount(s.pairs.ravel(), minlength=len(ims))
    assert degree.min() >= 5  # each image's own 5 neighbours at least
    mask = s.mask()
    assert (mask == mask.T).all() and mask.diagonal().all()
    assert s.fraction() == pytest.approx(len(s.pairs) / (24 * 23 / 2))
    # k >= n - 1 keeps every pair
    assert shortlist(ims, 50).n_pairs == 24 * 23 // 2


def test_descriptor_is_unit_and_polarity_invariant_in_its_hog_part():
    rng = np.random.default_rng(0)
    img = rng.random((64, 64), dtype=np.float32)
    d = global_descriptor(img, np.ones(img.shape, bool))
    assert d.dtype == np.float32 and np.linalg.norm(d) == pytest.approx(1.0, abs=1e-5)
    inverted = global_descriptor(1 - img, np.ones(img.shape, bool))
    assert float(d @ inverted) > 0.99  # unsigned gradients: a fill flipped keeps its structure


def test_descriptor_pair_is_the_descriptor_of_the_image_and_of_its_mirror_image():
    rng = np.random.default_rng(1)
    img = rng.random((48, 64), dtype=np.float32)
    mask = np.ones(img.shape, bool)
    mask[:, :5] = False
    pair = descriptor_pair(img, mask)
    assert pair.shape == (2, 1764 + 324 + 324 + 1024) and pair.dtype == np.float32
    np.testing.assert_array_equal(pair[0], global_descriptor(img, mask))
    np.testing.assert_array_equal(pair[1], global_descriptor(img[:, ::-1], mask[:, ::-1]))
    assert float(pair[0] @ pair[1]) < 0.9  # a mirror image is another picture to HOG


def test_mirrored_copies_are_found_as_their_family_is():
    """Prints reverse their drawing: with half of each family's copies mirrored, the
    search finds as many same-family pairs as without mirroring (measured 0.979 at
    K = 4), where the upright descriptor alone finds 0.813."""
    image_set, truth = generated_set(n_bases=8, copies=4, size=96)
    ims = _work(image_set, 96)
    labels = [truth[im.id] for im in ims]
    mirrored = [
        WorkImage(im.id, im.gray[:, ::-1].copy(), im.mask[:, ::-1].copy(), im.transform)
        if i % 2
        else im
        for i, im in enumerate(ims)
    ]
    both = shortlist(mirrored, 4)
    upright_only = np.stack([descriptor_pair(im.gray, im.mask)[0] for im in mirrored])
    alone = shortlist(mirrored, 4, descriptors=upright_only)
    assert shortlist_recall(both, labels) == shortlist_recall(shortlist(ims, 4), labels)
    assert shortlist_recall(both, labels) >= 0.97
    assert shortlist_recall(alone, labels) < 0.85


def test_recall_on_the_sample_families_is_complete_at_k20():
    image_set = load_folder(SAMPLES)
    truth = read_labels(SAMPLES / "families.csv")
    ims = _work(image_set)
    s = shortlist(ims, 20)
    assert shortlist_recall(s, [truth[im.id] for im in ims]) == 1.0  # measured 1.0


@pytest.mark.slow
def test_recall_on_1000_generated_images_is_at_least_99_percent(tmp_path):
    truth = write_large_set(tmp_path, 1000, seed=11)
    image_set = load_folder(tmp_path)
    ims = _work(image_set)
    s = shortlist(ims, 20)
    recall = shortlist_recall(s, [truth[im.id] for im in ims])
    assert recall >= 0.99, recall
    assert s.fraction() < 0.04  # about 20 of 999 neighbours per image


def test_engine_computes_only_the_shortlisted_pairs(tmp_path):
    image_set, _ = generated_set(n_bases=5, copies=4, size=96)
    ims = _work(image_set, 96)
    s = shortlist(ims, 4)
    metric = get_metric("ssim")
    full = pairwise(ims, metric, n_jobs=1)
    part = pairwise(ims, metric, n_jobs=1, selected=s)
    mask = s.mask()
    np.testing.assert_array_equal(part.values[mask], full.values[mask])
    assert (part.values[~mask] == 0).all()
    assert part.stats["pairs_computed"] == s.n_pairs
    assert part.pairs_compared() == s.n_pairs
    assert len(part.off_diagonal()) == s.n_pairs
    np.testing.assert_array_equal(part.compared, mask)
    # fusion calibrates the compared pairs only and keeps the others at 0
    fused = fuse([part, pairwise(ims, get_metric("mse"), n_jobs=1, selected=s)])
    assert (fused.values[~mask] == 0).all() and fused.values[mask].min() >= 0
    np.testing.assert_array_equal(fused.compared, mask)


def test_cached_pairs_outside_the_shortlist_are_not_used(tmp_path):
    from similarity.cache import FeatureCache

    image_set, _ = generated_set(n_bases=4, copies=4, size=96)
    ims = _work(image_set, 96)
    s = shortlist(ims, 3)
    with FeatureCache(tmp_path) as cache:
        pairwise(ims, get_metric("mse"), n_jobs=1, cache=cache)  # every pair cached
        part = pairwise(ims, get_metric("mse"), n_jobs=1, cache=cache, selected=s)
    assert (part.values[~s.mask()] == 0).all()
    assert part.stats["pairs_cached"] == s.n_pairs and part.stats["pairs_computed"] == 0


def test_shortlist_settings_are_validated():
    from preprocessing.errors import ConfigError

    assert SimilarityConfig().uses_shortlist(1999) is False
    assert SimilarityConfig().uses_shortlist(2000) is True
    assert SimilarityConfig(shortlist="on").uses_shortlist(10) is True
    assert SimilarityConfig(shortlist="off").uses_shortlist(10**6) is False
    with pytest.raises(ConfigError, match="similarity.shortlist must be"):
        SimilarityConfig(shortlist="yes")
    with pytest.raises(ConfigError, match="shortlist_k must be a positive integer"):
        SimilarityConfig(shortlist_k=0)


def test_shortlist_blocks_grow_with_the_set_and_stay_bounded():
    """Shortlisted pairs are spread over the whole matrix: blocks are larger there (about
    four row chunks per worker, at most 256 images a side), never in dense mode; the
    values do not depend on it (the engine test above runs one block)."""
    from similarity.pairwise import SHORTLIST_MAX_BLOCK, shortlist_block_size

    image_set, _ = generated_set(n_bases=2, copies=3, size=32)
    s = shortlist(_work(image_set, 32), 2)
    assert shortlist_block_size(1000, 32, 2, None) == 32
    assert shortlist_block_size(1000, 32, 2, s) == 125
    assert shortlist_block_size(100, 32, 2, s) == 32
    assert shortlist_block_size(10_000, 32, 2, s) == SHORTLIST_MAX_BLOCK == 256
    assert shortlist_block_size(10_000, 512, 2, s) == 512  # a larger block asked for is kept


def test_shortlisted_pairs_on_a_pool_in_larger_blocks_equal_all_pairs():
    image_set, _ = generated_set(n_bases=12, copies=6, size=48)
    ims = _work(image_set, 48)
    s = shortlist(ims, 4)
    metric = get_metric("ssim")
    full = pairwise(ims, metric, n_jobs=1)
    part = pairwise(ims, metric, n_jobs=2, block_size=4, selected=s)  # blocks of 9 images
    mask = s.mask()
    np.testing.assert_array_equal(part.values[mask], full.values[mask])
    assert (part.values[~mask] == 0).all() and part.stats["pairs_computed"] == s.n_pairs


def test_shortlisted_pairs_read_by_workers_from_the_cache_equal_all_pairs(tmp_path):
    """With a cache on a process pool, workers read each image's features by key and keep
    them prepared (no features shipped with the blocks); the values are the same."""
    from similarity.cache import FeatureCache

    image_set, _ = generated_set(n_bases=12, copies=6, size=48)
    ims = _work(image_set, 48)
    s = shortlist(ims, 4)
    mask = s.mask()
    for name in ("ssim", "sift"):
        metric = get_metric(name)
        full = pairwise(ims, metric, n_jobs=1)
        with FeatureCache(tmp_path / name, size_limit_gb=1.5) as cache:
            part = pairwise(ims, metric, n_jobs=2, block_size=8, selected=s, cache=cache)
        np.testing.assert_array_equal(part.values[mask], full.values[mask])
        assert (part.values[~mask] == 0).all() and part.stats["pairs_computed"] == s.n_pairs
        with diskcache.Cache(str(tmp_path / name)) as raw:  # the workers kept the user's limit
            assert raw.size_limit == int(1.5 * 2**30)


def _contour_shortlist():
    """The engine module, 40 generated work images, their shortlist (K = 4) and its
    mask, the contour test and its dense matrix."""
    import importlib

    engine = importlib.import_module("similarity.pairwise")  # the package exports the function
    image_set, _ = generated_set(n_bases=8, copies=5, size=48)
    ims = _work(image_set, 48)
    s = shortlist(ims, 4)
    metric = get_metric("contour")
    return engine, ims, s, s.mask(), metric, pairwise(ims, metric, n_jobs=1)


def test_features_read_by_workers_are_never_all_held_here_and_lost_ones_are_extracted(
    tmp_path, monkeypatch
):
    """When workers read features from the cache, this process extracts and stores them a
    batch at a time and keeps none; a block whose features the cache evicted (a cache
    far smaller than the features) is computed here, its features extracted again, and
    every value is still the dense one."""
    from similarity.cache import FeatureCache

    engine, ims, s, mask, metric, full = _contour_shortlist()
    batches: list[int] = []
    put = FeatureCache.put_features
    monkeypatch.setattr(engine, "STORE_BATCH", 8)
    monkeypatch.setattr(
        FeatureCache, "put_features", lambda c, k, f: (batches.append(len(f)), put(c, k, f))[1]
    )
    monkeypatch.setattr(engine, "_features", lambda *a: pytest.fail("features held here"))
    with FeatureCache(tmp_path / "big") as cache:
        part = pairwise(ims, metric, n_jobs=2, block_size=8, selected=s, cache=cache)
        keys = [engine.work_key(im) for im in ims]
        assert cache.has_features(engine.metric_key(metric), keys) == set(keys)
    np.testing.assert_array_equal(part.values[mask], full.values[mask])
    assert batches == [8] * 5 and part.stats["features_computed"] == 40
    extracted = []
    get = engine._Extracted.__getitem__
    monkeypatch.setattr(
        engine._Extracted, "__getitem__", lambda e, i: extracted.append(i) or get(e, i)
    )
    monkeypatch.setattr(engine, "RUN_STORE_SHARE", float("inf"))  # no run store: they are lost
    with FeatureCache(tmp_path / "tiny", size_limit_gb=1e-6) as cache:  # about 1 kB
        part = pairwise(ims, metric, n_jobs=2, block_size=8, selected=s, cache=cache)
    np.testing.assert_array_equal(part.values[mask], full.values[mask])
    assert extracted  # blocks the cache lost were computed here


def test_features_that_would_not_fit_in_the_cache_are_kept_in_a_run_store(tmp_path, monkeypatch):
    """A run whose features would fill more than RUN_STORE_SHARE of the cache's limit
    (10,000 images' contour features: about 5 GB, the default limit 4 GB) keeps them in
    a store of its own, the ones cached before copied there: the workers find every one
    (no block computed here), the values are the dense ones, the store is gone after the
    run and the cache keeps its limit. Without room on the disk: a clear error."""
    from similarity.cache import FeatureCache

    engine, ims, s, mask, metric, full = _contour_shortlist()
    mkey = engine.metric_key(metric)
    keys = [engine.work_key(im) for im in ims]
    sizes = [len(pickle.dumps(metric.extract(im.gray, im.mask))) for im in ims[:8]]
    limit = 20 * float(np.mean(sizes)) / 2**30  # room for about 20 of the 40 images
    folder = tmp_path / "cache"
    with FeatureCache(folder, size_limit_gb=limit) as cache:
        cache.put_features(
            mkey, {keys[i]: metric.extract(ims[i].gray, ims[i].mask) for i in range(5)}
        )
    monkeypatch.setattr(engine, "STORE_BATCH", 8)
    monkeypatch.setattr(
        engine._Extracted, "__getitem__", lambda e, i: pytest.fail("a block computed here")
    )
    with FeatureCache(folder, size_limit_gb=limit) as cache:
        part = pairwise(ims, metric, n_jobs=2, block_size=8, selected=s, cache=cache)
    np.testing.assert_array_equal(part.values[mask], full.values[mask])
    assert part.stats["features_cached"] == 5 and part.stats["features_computed"] == 35
    assert part.stats["run_store_gb"] > 0.8 * limit
    assert not list(tmp_path.glob("cache.run-*"))  # discarded
    with diskcache.Cache(str(folder)) as raw:
        assert raw.size_limit == int(limit * 2**30) and raw.volume() <= 2 * limit * 2**30
    # a cache big enough: no run store
    with FeatureCache(tmp_path / "big") as cache:
        part = pairwise(ims, metric, n_jobs=2, block_size=8, selected=s, cache=cache)
    assert part.stats["run_store_gb"] == 0
    # no room on the disk for the run store: said before any block runs
    monkeypatch.setattr(
        engine.shutil, "disk_usage", lambda _: SimpleNamespace(total=1, used=1, free=0)
    )
    with FeatureCache(tmp_path / "full", size_limit_gb=limit) as cache:
        with pytest.raises(AtelierError, match=r"the features of this run need about .* GB"):
            pairwise(ims, metric, n_jobs=2, block_size=8, selected=s, cache=cache)
    assert not list(tmp_path.glob("full.run-*"))


def test_a_worker_prepares_each_image_once_and_ships_back_what_the_cache_lost(
    tmp_path, monkeypatch
):
    import importlib

    from similarity.cache import FeatureCache, metric_key, work_key
    from similarity.pairwise import _compare_cached_pairs, _compare_pairs, _Prepared

    engine = importlib.import_module("similarity.pairwise")  # the package exports the function
    image_set, _ = generated_set(n_bases=3, copies=3, size=48)
    ims = _work(image_set, 48)
    metric = get_metric("ssim")
    mkey, keys = metric_key(metric), [work_key(im) for im in ims]
    features = [metric.extract(im.gray, im.mask) for im in ims]
    pairs = [(i, j) for i in range(len(ims)) for j in range(i + 1, len(ims))]
    expected = _compare_pairs(metric, features, None, pairs)
    with FeatureCache(tmp_path) as cache:
        cache.put_features(mkey, dict(zip(keys, features, strict=True)))
    monkeypatch.setattr(engine, "_WORKER_STORES", {})
    monkeypatch.setattr(engine, "_WORKER_PREPARED", store := _Prepared(engine.PREPARED_BUDGET))
    where = (str(tmp_path), 4.0)
    assert _compare_cached_pairs(metric, where, mkey, keys, None, pairs) == expected
    assert store.prepared == len(ims)
    half = keys[: len(keys) // 2]  # the same images again, as rows against columns
    block = [(i, j) for i in range(len(half)) for j in range(len(keys))]
    again = _compare_cached_pairs(metric, where, mkey, half, keys, block)
    assert again == _compare_pairs(metric, features[: len(half)], features, block)
    assert store.prepared == len(ims)  # nothing read or prepared twice
    # a store that holds three images drops the least recently used and still answers
    one = engine._nbytes(metric.prepare(features[0]))
    monkeypatch.setattr(engine, "_WORKER_PREPARED", small := _Prepared(3 * one))
    assert _compare_cached_pairs(metric, where, mkey, keys, None, pairs) == expected
    assert small.size <= small.budget and len(small.items) <= 3
    # a feature evicted from the cache between extraction and pairs: None, and the
    # engine computes that block from the features it holds
    monkeypatch.setattr(engine, "_WORKER_PREPARED", _Prepared(engine.PREPARED_BUDGET))
    with FeatureCache(tmp_path) as cache:
        cache._cache.delete(f"f/{mkey}/{keys[0]}")
    assert _compare_cached_pairs(metric, where, mkey, keys, None, pairs) is None
