"""Clustering the sparse graph of a shortlist."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from clustering import ClusteringConfig, cluster
from clustering.sparse import cluster_sparse, sparse_graph
from preprocessing.errors import ClusteringError


def _blocks(seed: int, sizes=(5, 4, 6, 3, 5)):
    rng = np.random.default_rng(seed)
    truth = np.repeat(np.arange(len(sizes)), sizes)
    n = len(truth)
    sim = rng.uniform(0.0, 0.25, (n, n))
    same = truth[:, None] == truth[None, :]
    sim[same] = rng.uniform(0.7, 0.95, same.sum())
    sim = (sim + sim.T) / 2
    np.fill_diagonal(sim, 1.0)
    return sim, truth


def _knn_mask(sim: np.ndarray, k: int) -> np.ndarray:
    order = np.argsort(-sim, axis=1)[:, 1 : k + 1]
    mask = np.eye(len(sim), dtype=bool)
    for i, row in enumerate(order):
        mask[i, row] = mask[row, i] = True
    return mask


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hdbscan_on_the_graph_equals_dense_with_missing_pairs_dissimilar(seed):
    sim, truth = _blocks(seed)
    mask = _knn_mask(sim, 6)
    sparse = cluster_sparse(sim, mask, ClusteringConfig(method="hdbscan"))
    dense = cluster(np.where(mask, sim, 0.0), ClusteringConfig(method="hdbscan"))
    np.testing.assert_array_equal(sparse.labels, dense.labels)
    assert adjusted_rand_score(truth, sparse.labels) == 1.0
    assert sparse.k == 5 and sparse.consumes == "distance"
    assert set(sparse.exemplars) == set(range(5))
    assert "shortlist mode" in sparse.warnings[0]


def test_dbscan_and_spectral_on_the_graph():
    sim, truth = _blocks(3)
    mask = _knn_mask(sim, 6)
    db = cluster_sparse(sim, mask, ClusteringConfig(method="dbscan"))
    assert adjusted_rand_score(truth, db.labels) == 1.0
    sp = cluster_sparse(
        sim, mask, ClusteringConfig(method="spectral", n_clusters=5), random_state=0
    )
    assert adjusted_rand_score(truth, sp.labels) == 1.0


def test_methods_that_need_every_pair_are_refused():
    sim, _ = _blocks(0)
    mask = _knn_mask(sim, 4)
    with pytest.raises(ClusteringError, match="sparse graph"):
        cluster_sparse(sim, mask, ClusteringConfig(method="agglomerative"))
    with pytest.raises(ClusteringError, match="fixed clustering.n_clusters"):
        cluster_sparse(sim, mask, ClusteringConfig(method="spectral"))


def test_graph_keeps_identical_pairs():
    sim = np.ones((3, 3))
    g = sparse_graph(sim, np.ones((3, 3), bool), kind="distance")
    assert g.nnz == 6 and g.data.min() > 0  # a zero distance is stored, not dropped
