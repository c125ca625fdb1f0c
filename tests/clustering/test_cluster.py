"""Clustering: right input per method, k recovered, noise, edge cases, determinism."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score, silhouette_score

from clustering import (
    METHODS,
    ClusteringConfig,
    classical_mds,
    cluster,
    evaluate_labels,
    read_labels,
)
from preprocessing import ClusteringError, ConfigError, similarity_to_distance


def block_matrix(sizes=(5, 4, 6), within=0.9, between=0.2, noise=0.03, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(sizes)), sizes)
    s = np.where(labels[:, None] == labels[None, :], within, between)
    e = rng.uniform(-noise, noise, size=s.shape)
    s = np.clip(s + (e + e.T) / 2, 0, 1)
    np.fill_diagonal(s, 1.0)
    return s, labels


def with_outlier(s, truth):
    n = len(s)
    out = np.full((n + 1, n + 1), 0.1)
    out[:n, :n] = s
    out[n, n] = 1.0
    return out, np.append(truth, -1)


K_METHODS = ["spectral", "agglomerative", "kmeans"]
CRITERIA = ["silhouette", "davies-bouldin", "calinski-harabasz"]


@pytest.mark.parametrize("method", K_METHODS)
@pytest.mark.parametrize("criterion", CRITERIA)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auto_k_recovers_blocks(method, criterion, seed):
    s, truth = block_matrix(seed=seed)
    r = cluster(s, ClusteringConfig(method=method, selection=criterion), random_state=0)
    assert r.k == 3 and adjusted_rand_score(truth, r.labels) == 1.0, r.selection
    assert [row["k"] for row in r.selection] == list(range(2, 15))
    assert r.consumes == ("features" if method == "kmeans" else METHODS[method].consumes[0])
    assert sorted(r.exemplars) == [0, 1, 2]
    for lab, idx in r.exemplars.items():
        assert r.labels[idx] == lab


@pytest.mark.parametrize("linkage", ["average", "complete", "single", "weighted"])
def test_every_matrix_linkage_and_the_derivative(linkage):
    s, truth = block_matrix()
    for criterion in ("silhouette", "derivative"):
        r = cluster(
            s, ClusteringConfig(method="agglomerative", linkage=linkage, selection=criterion)
        )
        assert adjusted_rand_score(truth, r.labels) == 1.0, (linkage, criterion)
        assert np.isfinite(r.selection[1]["derivative"])


@pytest.mark.parametrize("linkage", ["ward", "centroid", "median", "average"])
def test_agglomerative_on_features(linkage):
    s, truth = block_matrix()
    r = cluster(s, ClusteringConfig(method="agglomerative", linkage=linkage, features="mds"))
    assert r.consumes == "features" and r.features == "mds"
    assert adjusted_rand_score(truth, r.labels) == 1.0
    rng = np.random.default_rng(0)
    points = np.vstack([rng.normal(c, 0.05, (5, 4)) for c in np.eye(4)[:3]])
    r2 = cluster(
        np.eye(15),
        ClusteringConfig(method="agglomerative", linkage=linkage, features="given"),
        features=points,
    )
    assert adjusted_rand_score(np.repeat([0, 1, 2], 5), r2.labels) == 1.0


@pytest.mark.parametrize("method", ["affinity", "dbscan", "hdbscan"])
def test_methods_that_find_their_own_k(method):
    s, truth = block_matrix()
    r = cluster(s, ClusteringConfig(method=method), random_state=0)
    assert r.criterion == "method" and r.k == 3
    assert adjusted_rand_score(truth, r.labels) == 1.0


@pytest.mark.parametrize("method", ["dbscan", "hdbscan"])
def test_density_methods_mark_an_outlier_as_noise(method):
    s, truth = with_outlier(*block_matrix())
    r = cluster(s, ClusteringConfig(method=method))
    assert r.labels[-1] == -1
    assert adjusted_rand_score(truth[:-1], r.labels[:-1]) == 1.0
    assert r.k == 3


def test_affinity_propagation_exemplars_are_its_own():
    s, truth = block_matrix()
    r = cluster(s, ClusteringConfig(method="affinity"), random_state=0)
    for lab, idx in r.exemplars.items():
        assert r.labels[idx] == lab


def test_threshold_cut_instead_of_k():
    s, truth = block_matrix()
    r = cluster(s, ClusteringConfig(method="agglomerative", threshold=0.5))
    assert r.criterion == "threshold" and r.k == 3
    assert adjusted_rand_score(truth, r.labels) == 1.0
    assert cluster(s, ClusteringConfig(method="agglomerative", threshold=0.99)).k == 15
    assert cluster(s, ClusteringConfig(method="agglomerative", threshold=0.05)).k == 1


def test_fixed_k_and_labels_are_zero_based():
    s, truth = block_matrix((3, 3, 3, 3))
    for method in K_METHODS:
        r = cluster(s, ClusteringConfig(method=method, n_clusters=4))
        assert (
            r.k == 4 and r.criterion == "fixed" and sorted(set(r.labels.tolist())) == [0, 1, 2, 3]
        )
        assert adjusted_rand_score(truth, r.labels) == 1.0


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


def test_davies_bouldin_only_competes_at_two_images_a_cluster():
    """Singletons have zero scatter: unrestricted, DB would pick k = n - 1 here."""
    s, truth = block_matrix()
    r = cluster(s, ClusteringConfig(method="agglomerative", selection="davies-bouldin"))
    db = {row["k"]: row["davies-bouldin"] for row in r.selection}
    assert min(db, key=db.get) == 14  # the degenerate minimum, k = n - 1
    assert r.k == 3  # chosen among k <= n / 2


@pytest.mark.parametrize("method", ["spectral", "kmeans", "affinity"])
def test_seed_reaches_random_methods(method):
    s, _ = block_matrix((6, 6, 6), within=0.6, between=0.45, noise=0.15, seed=5)
    cfg = ClusteringConfig(method=method)
    a = cluster(s, cfg, random_state=11)
    b = cluster(s, cfg, random_state=11)
    np.testing.assert_array_equal(a.labels, b.labels)


@pytest.mark.parametrize("method", sorted(METHODS))
@pytest.mark.parametrize("n", [1, 2, 3])
def test_small_inputs_give_a_defined_result(method, n):
    s = np.full((n, n), 0.3)
    if n == 3:
        s = np.array([[1, 0.95, 0.1], [0.95, 1, 0.12], [0.1, 0.12, 1.0]])
    np.fill_diagonal(s, 1.0)
    r = cluster(s, ClusteringConfig(method=method))
    assert len(r.labels) == n and r.labels.min() >= -1
    if n < 3:
        assert r.k == 1 and "cannot be chosen" in r.warnings[0]


@pytest.mark.parametrize("method", sorted(METHODS))
def test_identical_images_are_one_cluster(method):
    r = cluster(np.ones((4, 4)), ClusteringConfig(method=method))
    assert r.k == 1 and r.labels.tolist() == [0, 0, 0, 0] and "identical" in r.warnings[0]


def test_bad_requests_are_refused_with_a_message():
    with pytest.raises(ClusteringError, match="n_clusters=5 is more than the 3 images"):
        cluster(np.eye(3), ClusteringConfig(method="spectral", n_clusters=5))
    refusals = [
        ({"method": "kmedoids"}, "unknown clustering method 'kmedoids'; valid: "),
        ({"selection": "gap"}, "unknown selection criterion"),
        ({"k_min": 5, "k_max": 3}, "k_max .* must be >= "),
        ({"method": "dbscan", "n_clusters": 3}, "dbscan finds its own number of clusters"),
        ({"method": "affinity", "n_clusters": 3}, "affinity finds its own number"),
        (
            {"method": "spectral", "selection": "derivative"},
            "'derivative' does not choose k for spectral: use it with clustering.method "
            "agglomerative",
        ),
        ({"method": "agglomerative", "linkage": "ward"}, "ward linkage needs Euclidean features"),
        ({"method": "spectral", "threshold": 0.5}, "threshold cuts a dendrogram"),
        ({"method": "agglomerative", "threshold": 0.5, "n_clusters": 3}, "not both"),
        ({"method": "spectral", "features": "hog"}, "clusters the similarity matrix, not features"),
        (
            {"method": "agglomerative", "threshold": 1.5},
            r"threshold must be a number in \[0.0, 1.0\]",
        ),
        ({"method": "affinity", "damping": 0.2}, "damping must be a number"),
    ]
    for kwargs, message in refusals:
        with pytest.raises(ConfigError, match=message) as err:
            ClusteringConfig(**kwargs)
        # the core names settings, never CLI flags (the web user never sees flags)
        assert "--" not in str(err.value), err.value


def test_classical_mds_reproduces_euclidean_distances():
    pts = np.random.default_rng(0).normal(size=(10, 3))
    d = np.linalg.norm(pts[:, None] - pts[None], axis=2)
    x = classical_mds(d)
    np.testing.assert_allclose(np.linalg.norm(x[:, None] - x[None], axis=2), d, atol=1e-9)
    assert classical_mds(d, energy=0.5).shape[1] >= 2


def test_evaluation_against_ground_truth(tmp_path):
    ids = ["a", "b", "c", "d", "e"]
    truth = {"a": "x", "b": "x", "c": "y", "d": "y", "z": "y"}
    perfect = evaluate_labels(ids, np.array([0, 0, 1, 1, 2]), truth)
    assert perfect["adjusted_rand"] == 1.0 and perfect["nmi"] == pytest.approx(1.0)
    assert perfect["missing"] == ["e"] and perfect["not_analysed"] == ["z"]
    noisy = evaluate_labels(ids, np.array([-1, -1, 1, 1, 2]), truth)
    assert noisy["homogeneity"] == pytest.approx(1.0)  # noise = singletons
    assert noisy["completeness"] < 1.0
    path = tmp_path / "fam.csv"
    path.write_text("image,family\na,x\nb,x\n")
    assert read_labels(path) == {"a": "x", "b": "x"}
    path.write_text("name,group\na,x\n")
    with pytest.raises(ConfigError, match="header with columns image,family"):
        read_labels(path)
    path.write_text("image,family\na,x\na,y\n")
    with pytest.raises(ConfigError, match="line 3: image 'a' listed twice"):
        read_labels(path)


def test_labels_written_from_another_folder_are_matched_by_the_end_of_their_paths():
    """A labels file beside the collection names ``images/a.jpg``; analysing the
    ``images`` folder gives ``a.jpg`` (and the other way round). Matched when the end of
    the path is unique; an ambiguous end is left unmatched and reported."""
    truth = {"images/a.jpg": "x", "images/b.jpg": "x", "images/c.jpg": "y", "c/d.jpg": "y"}
    ids = ["a.jpg", "b.jpg", "c.jpg", "more/c/d.jpg"]
    ev = evaluate_labels(ids, np.array([0, 0, 1, 1]), truth)
    assert ev["adjusted_rand"] == 1.0 and ev["evaluated"] == 4
    assert ev["matched_by_path_end"] == 4 and ev["missing"] == [] and ev["not_analysed"] == []
    ambiguous = {"one/a.jpg": "x", "two/a.jpg": "y", "b.jpg": "x", "c.jpg": "y"}
    ev = evaluate_labels(["a.jpg", "b.jpg", "c.jpg"], np.array([0, 0, 1]), ambiguous)
    assert ev["evaluated"] == 2 and ev["missing"] == ["a.jpg"]
    assert ev["not_analysed"] == ["one/a.jpg", "two/a.jpg"] and "matched_by_path_end" not in ev


def test_k_max_auto_lets_a_large_collection_hold_its_families():
    """k_max = "auto": 25 for small sets (as before), a quarter of the images for large
    ones; 150 images in 30 well-separated families are found as 30, not capped at 25."""
    cfg = ClusteringConfig()
    assert cfg.k_max == "auto"
    assert [cfg.k_upper(n) for n in (10, 45, 103, 104, 1000)] == [9, 25, 25, 26, 250]
    assert ClusteringConfig(k_max=12).k_upper(1000) == 12
    truth = np.repeat(np.arange(30), 5)
    rng = np.random.default_rng(0)
    s = np.where(truth[:, None] == truth[None, :], 0.9, 0.05) + rng.uniform(0, 0.05, (150, 150))
    s = np.clip((s + s.T) / 2, 0, 1)
    np.fill_diagonal(s, 1.0)
    found = cluster(s, cfg, random_state=0)
    assert found.k == 30
    assert adjusted_rand_score(truth, found.labels) == 1.0
    capped = cluster(s, ClusteringConfig(k_max=25), random_state=0)
    assert capped.k == 25


@pytest.mark.parametrize("neighbors", [None, 10])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_spectral_search_shares_one_embedding_with_sklearns_labels(seed, neighbors):
    """The automatic k reads every k from one embedding; each k's labels are those of
    scikit-learn's SpectralClustering fitted for that k alone (ARI 1 for every k), on
    every pair or on the same neighbour graph."""
    from sklearn.cluster import SpectralClustering

    from clustering.methods import Spectral, neighbour_graph

    s, _ = block_matrix(sizes=(6, 3, 5, 1, 4, 7, 2, 5), within=0.7, between=0.25,
                        noise=0.3, seed=seed)  # fmt: skip
    search = Spectral(ClusteringConfig(method="spectral", neighbors=neighbors), random_state=0)
    graph = neighbour_graph(s, neighbors)
    assert (graph is s) == (neighbors is None)
    for k in range(2, 15):
        own = SpectralClustering(
            k, affinity="precomputed", assign_labels="cluster_qr", random_state=0
        ).fit_predict(graph)
        assert adjusted_rand_score(own, search.fit(s, "affinity", k).labels) == 1.0, k
    first = search._maps[1]
    search.fit(s, "affinity", 3)
    # one embedding for the whole search: k_upper(33 images) = 25 columns, computed once
    assert search._maps[1] is first and first.shape[1] == 25


def test_spectral_fixed_k_needs_a_k():
    from clustering.methods import Spectral

    s, _ = block_matrix()
    with pytest.raises(ClusteringError, match="needs a number of clusters"):
        Spectral(ClusteringConfig(method="spectral"), random_state=0).fit(s, "affinity")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_davies_bouldin_and_calinski_harabasz_equal_sklearns(seed):
    """The vectorised scores equal scikit-learn's per-cluster loops (within 1e-7: its
    distances go through the |a|^2 + |b|^2 - 2ab expansion, ours are taken directly),
    on random labellings with singletons, noise labels (-1) and a duplicate point."""
    from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score

    from clustering.scores import calinski_harabasz, davies_bouldin

    rng = np.random.default_rng(seed)
    points = rng.normal(size=(60, 7))
    points[1] = points[0]
    for k in (2, 5, 17, 40):
        labels = rng.integers(-1, k, size=60)
        assert davies_bouldin(points, labels) == pytest.approx(
            davies_bouldin_score(points, labels), rel=1e-7
        )
        assert calinski_harabasz(points, labels) == pytest.approx(
            calinski_harabasz_score(points, labels), rel=1e-7
        )
    one_each = np.arange(60)
    one_each[1] = 0  # the duplicate pair together: zero spread everywhere
    assert davies_bouldin(points, one_each) == 0.0
    assert davies_bouldin_score(points, one_each) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_silhouette_equals_sklearns(seed):
    """The silhouette taken in one sparse product equals scikit-learn's per point, on
    labellings with singletons, noise labels (-1), a duplicate point and a pair at
    distance zero (0/0 is a silhouette of 0 in both)."""
    from sklearn.metrics import silhouette_samples

    from clustering.scores import euclidean_distances, silhouette_values

    rng = np.random.default_rng(seed)
    points = rng.normal(size=(60, 7))
    points[1] = points[0]
    distance = euclidean_distances(points)
    for k in (2, 5, 17, 40, 59):
        labels = rng.integers(-1, k, size=60)
        if len(set(labels.tolist())) < 2:
            continue
        theirs = silhouette_samples(distance, labels, metric="precomputed")
        assert np.abs(silhouette_values(distance, labels) - theirs).max() < 1e-12
    pair = np.array([0, 0] + [1] * 58)
    theirs = silhouette_samples(distance, pair, metric="precomputed")
    assert np.abs(silhouette_values(distance, pair) - theirs).max() < 1e-12


def test_neighbour_graph_keeps_each_images_nearest():
    from clustering.methods import neighbour_graph

    rng = np.random.default_rng(3)
    s = rng.uniform(0, 0.9, (40, 40))
    s = (s + s.T) / 2
    np.fill_diagonal(s, 1.0)
    g = neighbour_graph(s, 5)
    assert (g == g.T).all() and (np.diag(g) == 1.0).all()
    kept = (g > 0) & ~np.eye(40, dtype=bool)
    for i in range(40):
        order = np.argsort(-np.where(np.arange(40) == i, -1, s[i]), kind="stable")
        assert kept[i, order[:5]].all()  # its own 5 nearest
        # any other edge is there because i is among that image's 5 nearest
        for j in np.flatnonzero(kept[i]):
            assert j in order[:5] or i in np.argsort(-np.where(np.arange(40) == j, -1, s[j]))[:5]
        assert 5 <= kept[i].sum() < 40 - 1
    assert ((g == s) | (g == 0)).all()  # edges keep their similarity
    # too few images to drop anything: the matrix itself
    assert neighbour_graph(s, 39) is s and neighbour_graph(s, None) is s


@pytest.mark.parametrize("bad", [0, -1, True, 2.5, "10"])
def test_neighbors_must_be_a_positive_integer(bad):
    with pytest.raises(ConfigError, match="clustering.neighbors"):
        ClusteringConfig(neighbors=bad)
    assert ClusteringConfig(neighbors=None).neighbors is None
    assert ClusteringConfig(neighbors="all").neighbors is None  # a config file's "every pair"
    assert ClusteringConfig().neighbors == 20


def test_only_spectral_reads_the_neighbour_graph():
    from clustering import METHODS

    assert [n for n, m in METHODS.items() if m.graph_neighbors] == ["spectral"]


@pytest.mark.parametrize("method", K_METHODS)
def test_search_over_k_on_threads_gives_the_same_result(method):
    """The search over k on two threads: the same labels, k table and notes as one loop."""
    s, truth = block_matrix(sizes=(5, 4, 6, 3, 7), seed=3)
    config = ClusteringConfig(method=method)
    one = cluster(s, config, n_jobs=1)
    two = cluster(s, config, n_jobs=2)
    assert adjusted_rand_score(truth, one.labels) == 1.0
    assert one.labels.tolist() == two.labels.tolist()
    np.testing.assert_equal(one.selection, two.selection)  # NaN (derivative) equal to NaN
    assert one.warnings == two.warnings


def test_warnings_of_a_threaded_search_are_noted_per_k(monkeypatch):
    """A library warning raised while some k is fitted on a worker thread is kept as a
    note naming that k, in k order, and none reaches the screen."""
    import warnings

    cls = METHODS["agglomerative"]
    original = cls.fit

    def noisy(self, data, kind, k=None):
        warnings.warn(f"fitting {k}", RuntimeWarning, stacklevel=1)
        return original(self, data, kind, k)

    monkeypatch.setattr(cls, "fit", noisy)
    s, _ = block_matrix(sizes=(5, 4, 6), seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning that escaped would fail the test
        result = cluster(s, ClusteringConfig(method="agglomerative"), n_jobs=2)
    ks = [int(r["k"]) for r in result.selection]
    expected = [f"agglomerative (k={k}): RuntimeWarning: fitting {k}" for k in ks]
    assert [w for w in result.warnings if "fitting" in w] == expected
