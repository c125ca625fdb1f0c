"""The pair classifier and local scaling: bounds, symmetry, and that they separate families."""

from __future__ import annotations

import numpy as np
import pytest

from clustering import ClusteringConfig, cluster, evaluate_labels
from preprocessing import ConfigError
from similarity import ShortlistMatrix, SimilarityMatrix
from similarity.fusion import local_scaling
from similarity.pairmodel import (
    C_GRID,
    FEATURES,
    PairModel,
    choose_c,
    fit_pair_model,
    pair_features,
    pair_features_at,
    shortlist_pair_features,
)


def block_matrix(sizes, seed, *, within=0.7, across=0.2, noise=0.08, name="m"):
    """Families of the given sizes: within-family similarities around ``within``."""
    rng = np.random.default_rng(seed)
    fam = np.repeat(np.arange(len(sizes)), sizes)
    n = len(fam)
    base = np.where(fam[:, None] == fam[None, :], within, across)
    noisy = np.clip(base + rng.normal(0, noise, (n, n)), 0, 1)
    values = (noisy + noisy.T) / 2
    np.fill_diagonal(values, 1.0)
    ids = tuple(f"img{i}" for i in range(n))
    truth = {i: f"f{f}" for i, f in zip(ids, fam.tolist(), strict=True)}
    return SimilarityMatrix(ids, values, name), truth


def test_pair_features_are_symmetric_and_bounded():
    m, _ = block_matrix([3, 4, 5], 0)
    f = pair_features(m)
    assert f.shape == (12, 12, len(FEATURES))
    assert np.allclose(f, f.transpose(1, 0, 2))
    assert f[..., 2].min() >= 0 and f[..., 2].max() <= np.log(11)


def test_rank_feature_does_not_depend_on_the_collections_size():
    """Appending unrelated images changes no pair's rank, so its log-rank stays."""
    small, _ = block_matrix([3, 4, 5], 0)
    n, big_n = 12, 412
    values = np.zeros((big_n, big_n))
    values[:n, :n] = small.values
    rng = np.random.default_rng(1)
    values[n:, n:] = rng.uniform(0.0, 0.01, (big_n - n, big_n - n))
    values = (values + values.T) / 2
    np.fill_diagonal(values, 1.0)
    big = SimilarityMatrix(tuple(f"img{i}" for i in range(big_n)), values, "m")
    assert np.array_equal(pair_features(big)[:n, :n, 2], pair_features(small)[..., 2])
    assert pair_features(small)[0, 1, 2] == pytest.approx(np.log(2))  # each other's 2nd


@pytest.mark.parametrize("chunk", [7, 256])
def test_features_of_compared_pairs_only_are_the_dense_ones(monkeypatch, chunk):
    """A shortlist's pair features are made a few rows at a time, never n x n x 3: the
    same features as the dense function at the compared pairs (ties, a compared pair at
    similarity 0, and rows split across chunks included), and the model's probabilities
    are the dense path's (0 where not compared, 1 on the diagonal)."""
    import similarity.pairmodel as pm

    monkeypatch.setattr(pm, "ROW_CHUNK", chunk)
    rng = np.random.default_rng(3)
    mats = {}
    n = 61
    upper = np.triu(rng.uniform(size=(n, n)) < 0.25, k=1)
    compared = upper | upper.T | np.eye(n, dtype=bool)
    compared[0, 5] = compared[5, 0] = True
    for seed, name in ((0, "contour"), (1, "sift")):
        m, _ = block_matrix([5] * 12 + [1], seed, name=name)
        values = np.round(m.values, 2)  # ties
        values[0, 5] = values[5, 0] = 0.0  # a compared pair at 0
        mats[name] = SimilarityMatrix(
            m.ids, np.where(compared, values, 0.0), name, compared=compared
        )
    rows, cols = np.nonzero(np.triu(compared, k=1))
    for m in mats.values():
        dense = pair_features(m)[rows, cols]
        np.testing.assert_allclose(pair_features_at(m, rows, cols), dense, rtol=0, atol=1e-12)
    model = PairModel(("contour", "sift"), ((-2.6, 2.1, -2.9), (6.2, -0.6, -0.8)), 3.3)
    logit = model.intercept + sum(
        pair_features(mats[name]) @ np.asarray(w)
        for name, w in zip(model.metrics, model.coef, strict=True)
    )
    expected = 1.0 / (1.0 + np.exp(-logit))
    expected = (expected + expected.T) / 2
    np.fill_diagonal(expected, 1.0)
    expected = np.where(compared, expected, 0.0)
    got = model.apply(mats)
    np.testing.assert_allclose(got.values, expected, rtol=0, atol=1e-12)
    assert np.array_equal(got.compared, compared) and np.array_equal(got.values, got.values.T)


@pytest.mark.parametrize("seed", range(8))
def test_a_shortlists_pair_features_from_its_pairs_alone_are_the_dense_ones(seed):
    """From the compared pairs alone (no n x n array): the same features as the dense
    function, with ties, compared pairs at 0 (which tie with every pair not compared),
    images compared with none or all of the others; and the model's probabilities are
    the dense path's, as a ShortlistMatrix."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(4, 70))
    iu = np.triu_indices(n, k=1)
    keep = rng.random(len(iu[0])) < rng.uniform(0.05, 1.0)
    pairs = np.column_stack([iu[0][keep], iu[1][keep]])
    mats, dense = {}, {}
    for name in ("contour", "sift"):
        values = np.round(rng.random(len(pairs)), 1)  # ties
        values[rng.random(len(values)) < 0.2] = 0.0  # compared pairs at 0
        ids = tuple(f"i{k}" for k in range(n))
        mats[name] = ShortlistMatrix(ids, pairs, values, name)
        dense[name] = SimilarityMatrix(ids, mats[name].values, name, compared=mats[name].compared)
        got = shortlist_pair_features(mats[name], pairs)
        want = pair_features_at(dense[name], pairs[:, 0], pairs[:, 1])
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    model = PairModel(("contour", "sift"), ((-2.6, 2.1, -2.9), (6.2, -0.6, -0.8)), 3.3)
    sparse, full = model.apply(mats), model.apply(dense)
    assert isinstance(sparse, ShortlistMatrix) and np.array_equal(sparse.pairs, pairs)
    np.testing.assert_allclose(sparse.values, full.values, rtol=0, atol=1e-12)


def test_fitted_model_separates_families_of_an_unseen_collection():
    train = []
    for seed in range(3):
        a, truth = block_matrix([2, 3, 5, 4, 1], seed, name="a")
        b, _ = block_matrix([2, 3, 5, 4, 1], seed + 10, within=0.5, across=0.3, name="b")
        train.append(({"a": a, "b": b}, truth))
    model = fit_pair_model(train, ["a", "b"])
    assert all(w[0] > 0 for w in model.coef)  # more similar: more likely the same template
    a, truth = block_matrix([4, 2, 6], 99, name="a")
    b, _ = block_matrix([4, 2, 6], 98, within=0.5, across=0.3, name="b")
    p = model.apply({"a": a, "b": b})
    assert p.metric == "learned" and np.allclose(p.values, p.values.T)
    assert np.all(np.diag(p.values) == 1.0) and p.values.min() >= 0 and p.values.max() <= 1
    fam = np.array([truth[i] for i in p.ids])
    off = ~np.eye(len(fam), dtype=bool)
    same = (fam[:, None] == fam[None, :]) & off
    assert p.values[same].mean() > 0.6 and p.values[~same & off].mean() < 0.2
    # average linkage cut where the mean probability of "same template" falls below 0.5
    r = cluster(p.values, ClusteringConfig(method="agglomerative", threshold=0.5))
    assert evaluate_labels(p.ids, r.labels, truth)["adjusted_rand"] == 1.0


def test_regularisation_chosen_by_leaving_one_collection_out():
    collections = []
    for seed in range(4):
        a, truth = block_matrix([2, 3, 5, 4, 1], seed, name="a")
        collections.append(({"a": a}, truth))
    c, losses = choose_c(collections, ["a"])
    assert list(losses) == list(C_GRID) and c in C_GRID
    assert losses[c] == min(losses.values())
    assert all(np.isfinite(v) and v > 0 for v in losses.values())
    # the loss is the mean, over the collections, of a model fitted without that one
    folds = []
    for i, (matrices, truth) in enumerate(collections):
        model = fit_pair_model(collections[:i] + collections[i + 1 :], ["a"], c=c)
        p = np.clip(model.apply(matrices).values, 1e-9, 1 - 1e-9)  # as choose_c clips
        fam = np.array([truth[k] for k in matrices["a"].ids])
        iu = np.triu_indices(len(fam), k=1)
        same = fam[iu[0]] == fam[iu[1]]
        folds.append(-np.mean(np.where(same, np.log(p[iu]), np.log1p(-p[iu]))))
    assert losses[c] == pytest.approx(np.mean(folds), rel=1e-9)
    with pytest.raises(ConfigError, match="at least two"):
        choose_c(collections[:1], ["a"])
    with pytest.raises(ConfigError, match="positive"):
        choose_c(collections, ["a"], grid=[1.0, 0.0])


def test_cross_validation_leaves_a_group_out_together():
    """Draws of one recipe share source images: a group is left out as one fold, and each
    of its collections is scored by the model fitted on the other groups."""
    collections = []
    for seed in range(4):
        a, truth = block_matrix([2, 3, 5, 4, 1], seed, name="a")
        collections.append(({"a": a}, truth))
    groups = ["x", "x", "y", "y"]
    c, losses = choose_c(collections, ["a"], grid=(1.0,), groups=groups)
    folds = []
    for group in ("x", "y"):
        rest = [col for col, g in zip(collections, groups, strict=True) if g != group]
        model = fit_pair_model(rest, ["a"], c=1.0)
        for (matrices, truth), g in zip(collections, groups, strict=True):
            if g != group:
                continue
            p = np.clip(model.apply(matrices).values, 1e-9, 1 - 1e-9)
            fam = np.array([truth[k] for k in matrices["a"].ids])
            iu = np.triu_indices(len(fam), k=1)
            same = fam[iu[0]] == fam[iu[1]]
            folds.append(-np.mean(np.where(same, np.log(p[iu]), np.log1p(-p[iu]))))
    assert losses[1.0] == pytest.approx(np.mean(folds), rel=1e-9)
    assert losses[1.0] != pytest.approx(choose_c(collections, ["a"], grid=(1.0,))[1][1.0])
    with pytest.raises(ConfigError, match="at least two groups"):
        choose_c(collections, ["a"], groups=["x"] * 4)
    with pytest.raises(ConfigError, match="3 groups given for 4"):
        choose_c(collections, ["a"], groups=["x", "y", "z"])


def test_cross_validation_prefers_little_regularisation_on_clean_families():
    """Well separated families: the held-aside log-loss falls as C grows (a sharper
    model is right), and a grid of one value returns that value."""
    collections = [
        ({"a": block_matrix([3, 4, 5, 2], seed, within=0.9, across=0.1, noise=0.02)[0]},
         block_matrix([3, 4, 5, 2], seed)[1])
        for seed in range(3)
    ]  # fmt: skip
    c, losses = choose_c(collections, ["a"], grid=(0.01, 1.0, 100.0))
    assert c == 100.0 and losses[0.01] > losses[1.0] > losses[100.0]
    assert choose_c(collections, ["a"], grid=(3.0,))[0] == 3.0


def test_model_needs_its_metrics():
    model = PairModel(("a",), ((1.0, 0.5, -1.0),), 0.0)
    with pytest.raises(ConfigError, match="needs the a matrix"):
        model.apply({})
    with pytest.raises(ConfigError, match="3 weights"):
        PairModel(("a", "b"), ((1.0, 0.5, -1.0),), 0.0)


def test_local_scaling_contract():
    m, _ = block_matrix([3, 4, 5], 1)
    s = local_scaling(m, k=3)
    assert np.allclose(s.values, s.values.T) and np.all(np.diag(s.values) == 1.0)
    assert s.values.min() >= 0 and s.values.max() <= 1


def test_fuse_modes_of_the_configuration():
    from similarity import SimilarityConfig

    default = SimilarityConfig()
    assert default.fuse == "auto" and default.fusion() == "learned" and default.fuses()
    assert default.fusion_weights() is None
    other = SimilarityConfig(metrics=("sift", "ssim"))  # auto falls back to equal weights
    assert other.fusion() == "weighted" and other.fusion_weights() == (1.0, 1.0)
    assert SimilarityConfig(metrics=("sift",)).fusion() == "none"
    with pytest.raises(ConfigError, match="combines exactly contour, sift"):
        SimilarityConfig(metrics=("sift", "ssim"), fuse="learned")
    changed = {"contour": {"tolerance": 0.02}, "cw-ssim": {"first_scale": 0, "height": 3}}
    with pytest.raises(ConfigError, match="was fitted on contour with tolerance = 0.01"):
        SimilarityConfig(metric_params=changed, fuse="learned")
    assert SimilarityConfig(metric_params=changed).fusion() == "weighted"
