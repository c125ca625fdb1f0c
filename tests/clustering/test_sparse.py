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
    with pytest.raises(ClusteringError, match="sparse graph cuts at clustering.threshold"):
        cluster_sparse(sim, mask, ClusteringConfig(method="agglomerative"))
    with pytest.raises(ClusteringError, match="cuts at clustering.threshold"):
        cluster_sparse(sim, mask, ClusteringConfig(method="agglomerative", n_clusters=3))
    with pytest.raises(ClusteringError, match="average, complete or single linkage"):
        config = ClusteringConfig(method="agglomerative", linkage="weighted", threshold=0.5)
        cluster_sparse(sim, mask, config)
    with pytest.raises(ClusteringError, match="sparse graph"):
        cluster_sparse(sim, mask, ClusteringConfig(method="affinity"))
    with pytest.raises(ClusteringError, match="fixed clustering.n_clusters"):
        cluster_sparse(sim, mask, ClusteringConfig(method="spectral"))


def _random_graph(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distances of families with some pairs compared (most within a family), the
    mask, and the dense matrix with every other pair at 1."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 120))
    fam = rng.integers(0, max(1, n // 5), n)
    same = fam[:, None] == fam[None, :]
    d = np.where(same, rng.uniform(0.0, 0.6, (n, n)), rng.uniform(0.3, 1.0, (n, n)))
    mask = (rng.uniform(size=(n, n)) < 0.3) | (same & (rng.uniform(size=(n, n)) < 0.9))
    upper = np.triu(mask, 1)
    mask = upper | upper.T
    d = np.triu(d, 1)
    d = d + d.T
    dense = np.where(mask, d, 1.0)
    np.fill_diagonal(dense, 0.0)
    return d, mask, dense


@pytest.mark.parametrize("linkage", ["average", "complete", "single"])
def test_sparse_linkage_cuts_as_scipy_cuts_the_dense_matrix(linkage):
    """The cut from the compared pairs alone equals SciPy's linkage of the dense matrix
    with every pair not compared at 1, cut at the same height: 20 random graphs of 5-120
    images, three heights, the same partition every time."""
    from scipy.cluster.hierarchy import fcluster
    from scipy.cluster.hierarchy import linkage as scipy_linkage
    from scipy.spatial.distance import squareform

    from clustering.sparse_linkage import cut_sparse_linkage

    for seed in range(20):
        d, mask, dense = _random_graph(seed)
        graph = sparse_graph(1.0 - d, mask, kind="distance")
        tree = scipy_linkage(squareform(dense, checks=False), method=linkage)
        for t in (0.2, 0.5, 0.8):
            ours = cut_sparse_linkage(graph, t, linkage)
            theirs = fcluster(tree, t, criterion="distance")
            assert adjusted_rand_score(theirs, ours) == 1.0, (seed, t)
            assert ours[0] == 0 and set(ours.tolist()) == set(range(ours.max() + 1))
    assert (cut_sparse_linkage(graph, 1.0) == 0).all()  # at 1 every pair merges


def test_agglomerative_on_the_graph_with_a_threshold():
    """Through cluster_sparse: the same labels as the dense path's cut of the matrix with
    missing pairs dissimilar, the families found, the cut said."""
    sim, truth = _blocks(4)
    mask = _knn_mask(sim, 6)
    config = ClusteringConfig(method="agglomerative", threshold=0.5)
    sparse = cluster_sparse(sim, mask, config)
    dense = cluster(np.where(mask, sim, 0.0), config)
    assert adjusted_rand_score(dense.labels, sparse.labels) == 1.0
    assert adjusted_rand_score(truth, sparse.labels) == 1.0
    assert sparse.k == 5 and sparse.criterion == "threshold" and sparse.consumes == "distance"


def test_shortlist_mode_clusters_the_pair_model_by_its_cut_and_other_matrices_by_hdbscan():
    from app.pipeline import SHORTLIST_CUT, _shortlist_clustering
    from similarity import SimilarityMatrix

    sim, _ = _blocks(0)
    ids = tuple(f"im{i}" for i in range(len(sim)))
    default = ClusteringConfig()  # spectral, k by silhouette
    learned = SimilarityMatrix(ids, sim, "fused", {"fusion": "learned: logistic pair ..."})
    chosen, why = _shortlist_clustering(learned, default)
    assert (chosen.method, chosen.linkage, chosen.threshold) == (
        "agglomerative",
        "average",
        SHORTLIST_CUT,
    )
    assert "probability of the same template falls below 0.5" in why
    ranked = SimilarityMatrix(ids, sim, "fused", {"fusion": "rank"})
    chosen, why = _shortlist_clustering(ranked, default)
    assert chosen.method == "hdbscan" and "HDBSCAN on the sparse graph was used" in why


def test_graph_keeps_identical_pairs():
    sim = np.ones((3, 3))
    g = sparse_graph(sim, np.ones((3, 3), bool), kind="distance")
    assert g.nnz == 6 and g.data.min() > 0  # a zero distance is stored, not dropped


@pytest.mark.parametrize("seed", range(6))
def test_silhouettes_and_medoids_from_the_pairs_are_the_dense_ones(seed):
    """sparse_scores reads the compared pairs only: the same silhouettes (to rounding) and
    medoids as the dense distances with every pair not compared at 1, noise and
    single-image clusters included."""
    from clustering.scores import medoids, per_image_silhouette
    from clustering.sparse import PairGraph, sparse_scores

    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 60))
    iu = np.triu_indices(n, k=1)
    keep = rng.random(len(iu[0])) < rng.uniform(0.1, 0.9)
    graph = PairGraph(n, np.column_stack([iu[0][keep], iu[1][keep]]), rng.random(keep.sum()))
    labels = rng.integers(-1, max(2, n // 4), n)
    silhouette, exemplars = sparse_scores(graph, labels)
    distance = graph.dense_distance()
    np.testing.assert_allclose(silhouette, per_image_silhouette(distance, labels), atol=1e-12)
    assert exemplars == medoids(distance, labels)
