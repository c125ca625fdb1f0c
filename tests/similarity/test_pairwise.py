"""The pairwise engine and the matrix contract."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from preprocessing import AtelierError, MatrixError, WorkImage, similarity_to_distance
from similarity import METRICS, SSIM, SimilarityMatrix, block_tasks, get_metric, pairwise


def images(n, size=48, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.random((size, size), dtype=np.float32)
    out = []
    for i in range(n):
        g = np.clip(base + 0.05 * i * rng.standard_normal((size, size)), 0, 1).astype(np.float32)
        out.append(WorkImage(f"im{i:02d}", g, np.ones((size, size), bool), np.eye(3)))
    return out


@pytest.mark.parametrize("n,b", [(1, 4), (2, 1), (5, 2), (9, 4), (10, 10), (11, 3)])
def test_blocks_cover_every_pair_once(n, b):
    seen = []
    for r0, r1, c0, c1 in block_tasks(n, b):
        seen += [(i, j) for i in range(r0, r1) for j in range(c0, c1) if (r0 != c0 or j > i)]
    assert sorted(seen) == list(itertools.combinations(range(n), 2))


def test_matrix_contract_and_reference_values():
    ims = images(7)
    m = SSIM()
    mat = pairwise(ims, m, n_jobs=1, block_size=3)
    v = mat.values
    assert mat.ids == tuple(i.id for i in ims) and mat.metric == "ssim"
    assert v.shape == (7, 7) and np.all(np.diag(v) == 1.0) and np.array_equal(v, v.T)
    assert v.min() >= 0 and v.max() <= 1
    for i, j in itertools.combinations(range(7), 2):
        assert v[i, j] == m.compare(
            m.extract(ims[i].gray, ims[i].mask), m.extract(ims[j].gray, ims[j].mask)
        )
    d = mat.distance()
    assert np.all(np.diag(d) == 0) and np.array_equal(d, 1.0 - v)


def test_process_pool_equals_serial_and_reports_progress():
    ims = images(12, seed=3)
    calls = []
    serial = pairwise(ims, SSIM(), n_jobs=1, block_size=4)
    pooled = pairwise(
        ims, SSIM(), n_jobs=2, block_size=4, progress=lambda d, t: calls.append((d, t))
    )
    np.testing.assert_array_equal(serial.values, pooled.values)
    assert calls[-1] == (66, 66) and len(calls) == len(block_tasks(12, 4))


@pytest.mark.parametrize(
    "values,match",
    [
        (np.ones((2, 3)), r"square, got shape \(2, 3\)"),
        (np.array([[1.0, np.nan], [np.nan, 1.0]]), "non-finite value"),
        (np.array([[1.0, 1.5], [1.5, 1.0]]), r"in \[0, 1\], found 1.5"),
        (np.array([[1.0, 0.2], [0.3, 1.0]]), "not symmetric"),
        (np.array([[0.9, 0.2], [0.2, 1.0]]), r"diagonal must be 1, found 0.9 at \(0, 0\)"),
    ],
)
def test_matrix_checks_name_the_problem(values, match):
    with pytest.raises(MatrixError, match=match):
        SimilarityMatrix(("a", "b"), values, "t")
    with pytest.raises(MatrixError):
        similarity_to_distance(values)


def test_ids_must_match_matrix():
    with pytest.raises(MatrixError, match="3 ids for a matrix of shape"):
        SimilarityMatrix(("a", "b", "c"), np.eye(2), "t")


@pytest.mark.parametrize("name", sorted(METRICS))
def test_every_metric_pooled_in_blocks_equals_serial(name, tiny_onnx):
    """Diagonal and off-diagonal blocks on a process pool give the serial matrix exactly."""
    metric = get_metric(name, model=str(tiny_onnx)) if name == "embedding" else METRICS[name]
    rng = np.random.default_rng(5)
    base = np.clip(np.kron(rng.random((8, 8)), np.ones((8, 8))), 0, 1).astype(np.float32)
    ims = [
        WorkImage(
            f"im{i}",
            np.clip(base + 0.04 * i * rng.standard_normal(base.shape), 0, 1).astype(np.float32),
            np.ones(base.shape, bool),
            np.eye(3),
        )
        for i in range(7)
    ]
    serial = pairwise(ims, metric, n_jobs=1, block_size=3)
    pooled = pairwise(ims, metric, n_jobs=2, block_size=3)
    np.testing.assert_array_equal(serial.values, pooled.values)


class _LosingCluster:
    """A stand-in for a Dask cluster that loses the first chunk it was given: the
    tasks that take it come back cancelled, as Dask's do when a worker dies with
    the only copy of scattered data."""

    def __init__(self, lose_every_chunk=False):
        from concurrent.futures import Future

        self.lose_every_chunk = lose_every_chunk
        self.Future = Future
        self.shared: list[int] = []
        self.cancelled = 0

    def share(self, data):
        self.shared.append(len(data))
        # a Dask future's status: the first chunk shared is lost at once
        lost = self.lose_every_chunk or len(self.shared) == 1
        return _Handle(data, "lost" if lost else "finished")

    def submit(self, fn, *args):
        future = self.Future()
        if any(isinstance(a, _Handle) and a.status == "lost" for a in args):
            self.cancelled += 1
            future.cancel()
            future.set_running_or_notify_cancel()
            return future
        future.set_result(fn(*(a.data if isinstance(a, _Handle) else a for a in args)))
        return future


class _Handle:
    def __init__(self, data, status):
        self.data, self.status = data, status


def test_blocks_cancelled_with_a_lost_worker_are_sent_again(monkeypatch):
    from preprocessing import parallel

    cluster = _LosingCluster()
    monkeypatch.setattr(parallel, "ClusterExecutor", _LosingCluster)
    ims = images(9)
    got = pairwise(ims, SSIM(), executor=cluster, block_size=3)
    want = pairwise(ims, SSIM(), n_jobs=1, block_size=3)
    np.testing.assert_array_equal(got.values, want.values)
    # 3 chunks of 3 images: the first lost, so its 3 blocks were cancelled and it was
    # shared again once (not once per cancelled block)
    assert cluster.cancelled == 3
    assert cluster.shared == [3, 3, 3, 3]
    # a cluster that loses everything is an error after three more tries a block
    cluster = _LosingCluster(lose_every_chunk=True)
    with pytest.raises(AtelierError, match="cancelled a block of ssim pairs 4 times"):
        pairwise(ims, SSIM(), executor=cluster, block_size=3)
    assert cluster.cancelled <= 6 * 4


@pytest.mark.parametrize("n,b,fraction", [(1, 4, 0.5), (7, 3, 0.0), (11, 4, 0.5), (23, 5, 0.9)])
def test_block_plan_lists_each_unknown_pair_once_in_row_order(n, b, fraction):
    from similarity.pairwise import block_plan

    rng = np.random.default_rng(n)
    known = rng.random((n, n)) < fraction
    known = known | known.T | np.eye(n, dtype=bool)
    plan = block_plan(n, b, known)
    # what the plan held when it was a loop over every pair of every block
    expected = []
    for r0, r1, c0, c1 in block_tasks(n, b):
        pairs = [
            (i - r0, j - c0)
            for i in range(r0, r1)
            for j in range(max(c0, i + 1), c1)
            if not known[i, j]
        ]
        if pairs:
            expected.append(((r0, c0), pairs, (r0, r1), None if r0 == c0 else (c0, c1)))
    assert plan == expected
    assert all(type(i) is int for block in plan for pair in block[1] for i in pair)
    covered = sorted((r0 + i, c0 + j) for (r0, c0), pairs, _, _ in plan for i, j in pairs)
    assert covered == [(i, j) for i, j in itertools.combinations(range(n), 2) if not known[i, j]]


@pytest.mark.parametrize(
    ("n", "b", "fraction"), [(1, 4, 1.0), (7, 3, 0.5), (40, 6, 0.1), (33, 8, 0.0)]
)
def test_the_plan_from_pairs_is_the_plan_from_the_mask(n, b, fraction):
    """sparse_block_plan, from the pairs left to compute, gives block_plan's blocks (in
    its order, with its pairs) without an n x n mask."""
    from similarity.pairwise import block_plan, sparse_block_plan

    rng = np.random.default_rng(n * 100 + b)
    known = rng.random((n, n)) >= fraction
    todo = np.argwhere(np.triu(~known, k=1))
    assert sparse_block_plan(n, b, todo) == block_plan(n, b, known)


def test_a_shortlist_computes_its_pairs_only_and_holds_them_as_pairs(tmp_path):
    """In shortlist mode the matrix is a ShortlistMatrix of the compared pairs, each
    with the value the all-pairs matrix has; a second run reads them from the cache."""
    from similarity import ShortlistMatrix, get_metric
    from similarity.cache import FeatureCache
    from similarity.shortlist import shortlist

    rng = np.random.default_rng(5)
    images = [
        WorkImage(
            str(i), rng.random((48, 48), dtype=np.float32), np.ones((48, 48), bool), np.eye(3)
        )
        for i in range(14)
    ]
    metric = get_metric("ssim")
    full = pairwise(images, metric, n_jobs=1)
    selected = shortlist(images, 3)
    cache = FeatureCache(tmp_path / "c")
    first = pairwise(images, metric, n_jobs=1, selected=selected, cache=cache)
    again = pairwise(images, metric, n_jobs=1, selected=selected, cache=cache)
    for m in (first, again):
        assert isinstance(m, ShortlistMatrix) and m.pairs_compared() == selected.n_pairs
        np.testing.assert_array_equal(m.pairs, selected.pairs)
        np.testing.assert_allclose(
            m.pair_values, full.values[m.pairs[:, 0], m.pairs[:, 1]], rtol=0, atol=1e-12
        )
    assert first.stats["pairs_computed"] == selected.n_pairs and first.stats["pairs_cached"] == 0
    assert again.stats["pairs_computed"] == 0 and again.stats["pairs_cached"] == selected.n_pairs
