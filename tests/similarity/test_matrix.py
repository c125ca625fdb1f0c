"""A shortlist's matrix held as its compared pairs: the same answers as the n x n form."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from app._digest import feed
from preprocessing import MatrixError
from similarity import ShortlistMatrix, SimilarityMatrix


def _pair(n=9, seed=0, fraction=0.4):
    rng = np.random.default_rng(seed)
    iu = np.triu_indices(n, k=1)
    keep = rng.random(len(iu[0])) < fraction
    pairs = np.column_stack([iu[0][keep], iu[1][keep]])
    values = rng.random(len(pairs))
    ids = tuple(f"im{k}" for k in range(n))
    sparse = ShortlistMatrix(ids, pairs, values, "m", {"p": 1}, {"s": 2})
    dense = SimilarityMatrix(ids, sparse.values, "m", compared=sparse.compared)
    return sparse, dense


@pytest.mark.parametrize("seed", range(4))
def test_every_reading_agrees_with_the_dense_matrix(seed):
    sparse, dense = _pair(n=12, seed=seed)
    v = sparse.values
    assert np.array_equal(v, v.T) and np.all(np.diag(v) == 1.0) and v.min() >= 0
    assert np.array_equal(sparse.compared, dense.compared) and sparse.partial and dense.partial
    assert sparse.pairs_compared() == dense.pairs_compared() == len(sparse.pairs)
    assert np.array_equal(np.sort(sparse.off_diagonal()), np.sort(dense.off_diagonal()))
    for got, want in zip(sparse.upper(), dense.upper(), strict=True):
        assert np.array_equal(got, want)
    n = len(sparse)
    for i in range(n):
        assert np.array_equal(sparse.row(i), dense.row(i))
        for j in range(n):
            assert sparse.value(i, j) == dense.value(i, j) == v[i, j]
    rows, cols = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    assert np.array_equal(sparse.values_at(rows.ravel(), cols.ravel()), v.ravel())
    np.testing.assert_array_equal(sparse.distance(), dense.distance())


def test_a_matrix_of_no_pairs_reads_as_nothing_compared():
    m = ShortlistMatrix(("a", "b", "c"), np.zeros((0, 2), int), np.zeros(0), "m")
    assert m.pairs_compared() == 0 and m.value(0, 2) == 0.0 and m.value(1, 1) == 1.0
    assert np.array_equal(m.values, np.eye(3)) and m.values_at([0, 1], [2, 1]).tolist() == [0, 1]


@pytest.mark.parametrize(
    ("pairs", "values", "message"),
    [
        ([[1, 0]], [0.5], "i < j"),
        ([[0, 3]], [0.5], "i < j"),
        ([[0, 2], [0, 1]], [0.5, 0.5], "sorted"),
        ([[0, 1], [0, 1]], [0.5, 0.5], "sorted"),
        ([[0, 1]], [1.5], r"\[0, 1\]"),
        ([[0, 1]], [np.nan], "non-finite"),
        ([[0, 1]], [0.5, 0.2], "2 values"),
    ],
)
def test_bad_pairs_are_refused(pairs, values, message):
    with pytest.raises(MatrixError, match=message):
        ShortlistMatrix(("a", "b", "c"), np.array(pairs), np.array(values), "m")


def test_copies_keep_the_pairs_and_digests_never_make_the_square(monkeypatch):
    sparse, _ = _pair()
    again = pickle.loads(pickle.dumps(sparse))
    assert np.array_equal(again.values, sparse.values) and again.stats == {"s": 2}
    bare = sparse.with_stats({})
    assert isinstance(bare, ShortlistMatrix) and bare.stats == {} and bare.params == {"p": 1}

    import hashlib

    def refuse(self):  # noqa: ANN001, ANN202
        raise AssertionError("the n x n values were made")

    digests = []
    for m in (sparse, again):
        h = hashlib.sha256()
        monkeypatch.setattr(ShortlistMatrix, "values", property(refuse))
        feed(h, m)
        digests.append(h.hexdigest())
    assert digests[0] == digests[1]
