"""Clustering: right input per method, k recovered, edge cases, determinism."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score, silhouette_score

from clustering import METHODS, SELECTION_CRITERIA, ClusteringConfig, classical_mds, cluster
from preprocessing import ClusteringError, ConfigError, similarity_to_distance


def block_matrix(sizes=(5, 4, 6), within=0.9, between=0.2, noise=0.03, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(sizes)), sizes)
    s = np.where(labels[:, None] == labels[None, :], within, between)
    e = rng.uniform(-noise, noise, size=s.shape)
    s = np.clip(s + (e + e.T) / 2, 0, 1)
    np.fill_diagonal(s, 1.0)
    return s, labels


@pytest.mark.parametrize("method", sorted(METHODS))
@pytest.mark.parametrize("selection", sorted(SELECTION_CRITERIA))
def test_auto_k_recovers_blocks(method, selection):
    s, truth = block_matrix()
    r = cluster(s, ClusteringConfig(method=method, selection=selection), random_state=0)
    assert r.k == 3
    assert adjusted_rand_score(truth, r.labels) == 1.0
    assert [row["k"] for row in r.selection] == list(range(2, 15))
    assert r.consumes == METHODS[method].consumes
    assert sorted(r.exemplars) == [0, 1, 2]
    for lab, idx in r.exemplars.items():
        assert r.labels[idx] == lab


def test_fixed_k_and_labels_are_zero_based():
    s, truth = block_matrix((3, 3, 3, 3))
    r = cluster(s, ClusteringConfig(n_clusters=4))
    assert r.k == 4 and r.criterion == "fixed" and sorted(set(r.labels.tolist())) == [0, 1, 2, 3]
    assert adjusted_rand_score(truth, r.labels) == 1.0


def test_davies_bouldin_is_reported_but_not_offered_for_choosing_k():
    """Singletons have zero scatter, so DB prefers k = n - 1 here: not a selector (yet)."""
    s, _ = block_matrix()
    r = cluster(s, ClusteringConfig(method="agglomerative"))
    db = {row["k"]: row["davies-bouldin"] for row in r.selection}
    assert min(db, key=db.get) == 14 and db[3] < db[2]
    with pytest.raises(ConfigError, match="unknown selection criterion 'davies-bouldin'"):
        ClusteringConfig(selection="davies-bouldin")


def test_silhouette_is_taken_on_distances():
    """On 1 - S the true labels score high; on S itself (the classic bug) they score negative."""
    s, truth = block_matrix()
    d = similarity_to_distance(s)
    assert silhouette_score(d, truth, metric="precomputed") > 0.6
    s_diag0 = s.copy()
    np.fill_diagonal(s_diag0, 0)
    assert silhouette_score(s_diag0, truth, metric="precomputed") < 0
    r = cluster(s)
    assert r.scores["silhouette"] == pytest.approx(silhouette_score(d, truth, metric="precomputed"))
    assert np.all(r.silhouette > 0.5)


def test_seed_reaches_spectral_and_results_are_deterministic():
    s, _ = block_matrix((6, 6, 6), within=0.6, between=0.45, noise=0.15, seed=5)
    a = cluster(s, ClusteringConfig(n_clusters=3), random_state=11)
    b = cluster(s, ClusteringConfig(n_clusters=3), random_state=11)
    np.testing.assert_array_equal(a.labels, b.labels)


@pytest.mark.parametrize("n", [1, 2])
def test_one_and_two_images_give_one_cluster_with_a_note(n):
    r = cluster(np.eye(n) + (1 - np.eye(n)) * 0.3)
    assert r.k == 1 and r.labels.tolist() == [0] * n
    assert "cannot be chosen automatically" in r.warnings[0]


def test_three_images_and_identical_images():
    s = np.array([[1, 0.95, 0.1], [0.95, 1, 0.12], [0.1, 0.12, 1.0]])
    r = cluster(s)
    assert r.k == 2 and r.labels[0] == r.labels[1] != r.labels[2]
    same = cluster(np.ones((4, 4)))
    assert same.k == 1 and "identical" in same.warnings[0]


def test_bad_requests_are_refused_with_a_message():
    with pytest.raises(ClusteringError, match="n_clusters=5 is more than the 3 images"):
        cluster(np.eye(3), ClusteringConfig(n_clusters=5))
    with pytest.raises(ConfigError, match="unknown clustering method 'kmedoids'; valid: "):
        ClusteringConfig(method="kmedoids")
    with pytest.raises(ConfigError, match="unknown selection criterion"):
        ClusteringConfig(selection="gap")
    with pytest.raises(ConfigError, match="k_max .* must be >= "):
        ClusteringConfig(k_min=5, k_max=3)


def test_classical_mds_reproduces_euclidean_distances():
    pts = np.random.default_rng(0).normal(size=(10, 3))
    d = np.linalg.norm(pts[:, None] - pts[None], axis=2)
    x = classical_mds(d)
    np.testing.assert_allclose(np.linalg.norm(x[:, None] - x[None], axis=2), d, atol=1e-9)
