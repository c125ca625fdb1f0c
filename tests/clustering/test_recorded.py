"""Every clustering method gives the labels it gave before the estimator refactor.

``data/recorded_labels.json`` was written by this module (``python
tests/clustering/test_recorded.py --record``) on the commit before clustering
methods became estimator classes, from the matrices in ``data/matrices.npz``:
the samples' fused and SIFT matrices and the fused matrix of a generated set
(``generated_set(n_bases=8, copies=4, seed=2, strength=1.6, hard=True)``), plus
seeded block matrices made here. Re-record only for a change meant to alter labels.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from clustering import ClusteringConfig, cluster
from clustering.sparse import cluster_sparse

DATA = Path(__file__).parent / "data"
RECORDED = DATA / "recorded_labels.json"

#: (name, config keyword arguments); every method, criterion and linkage once or more.
#: Spectral clustering on every pair (``neighbors = None``), as recorded; its neighbour
#: graph, the default since, is pinned against scikit-learn in test_cluster.py.
CONFIGS: list[tuple[str, dict]] = [
    ("spectral-sil", {"method": "spectral", "neighbors": None}),
    ("spectral-db", {"method": "spectral", "selection": "davies-bouldin", "neighbors": None}),
    ("spectral-ch", {"method": "spectral", "selection": "calinski-harabasz", "neighbors": None}),
    ("spectral-k5", {"method": "spectral", "n_clusters": 5, "neighbors": None}),
    ("affinity", {"method": "affinity"}),
    ("affinity-pref", {"method": "affinity", "preference": 0.3, "damping": 0.7}),
    *[
        (f"agglo-{link}-{crit}", {"method": "agglomerative", "linkage": link, "selection": crit})
        for link in ("average", "complete", "single", "weighted")
        for crit in ("silhouette", "davies-bouldin", "calinski-harabasz", "derivative")
    ],
    ("agglo-threshold", {"method": "agglomerative", "threshold": 0.5}),
    ("agglo-k6", {"method": "agglomerative", "n_clusters": 6}),
    ("agglo-ward-mds", {"method": "agglomerative", "linkage": "ward", "features": "mds"}),
    ("agglo-centroid-mds", {"method": "agglomerative", "linkage": "centroid", "features": "mds"}),
    ("kmeans", {"method": "kmeans"}),
    ("kmeans-db", {"method": "kmeans", "selection": "davies-bouldin"}),
    ("kmeans-k4", {"method": "kmeans", "n_clusters": 4}),
    ("dbscan", {"method": "dbscan"}),
    ("dbscan-eps", {"method": "dbscan", "eps": 0.3, "min_samples": 3}),
    ("dbscan-mds", {"method": "dbscan", "features": "mds"}),
    ("hdbscan", {"method": "hdbscan"}),
    ("hdbscan-3", {"method": "hdbscan", "min_cluster_size": 3, "min_samples": 1}),
    ("hdbscan-mds", {"method": "hdbscan", "features": "mds"}),
]

SPARSE_CONFIGS: list[tuple[str, dict]] = [
    ("sparse-hdbscan", {"method": "hdbscan"}),
    ("sparse-dbscan", {"method": "dbscan"}),
    ("sparse-dbscan-eps", {"method": "dbscan", "eps": 0.4}),
    ("sparse-spectral-k6", {"method": "spectral", "n_clusters": 6}),
]


def _blocks(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(5), [6, 4, 5, 3, 2])
    s = np.where(labels[:, None] == labels[None, :], 0.8, 0.25)
    e = rng.uniform(-0.2, 0.2, size=s.shape)
    s = np.clip(s + (e + e.T) / 2, 0, 1)
    np.fill_diagonal(s, 1.0)
    return s


def matrices() -> dict[str, np.ndarray]:
    with np.load(DATA / "matrices.npz") as z:
        out = {name: z[name] for name in z.files}
    out.update({f"blocks{seed}": _blocks(seed) for seed in (0, 1)})
    return out


def _shortlist(sim: np.ndarray, k: int = 6) -> np.ndarray:
    order = np.argsort(-sim, axis=1)[:, : k + 1]
    compared = np.zeros(sim.shape, bool)
    compared[np.repeat(np.arange(len(sim)), k + 1), order.ravel()] = True
    return compared | compared.T


def run_all() -> dict[str, dict]:
    out: dict[str, dict] = {}
    for mname, sim in matrices().items():
        for cname, kwargs in CONFIGS:
            r = cluster(sim, ClusteringConfig(**kwargs), random_state=3)
            out[f"{mname}/{cname}"] = _summary(r)
        for cname, kwargs in SPARSE_CONFIGS:
            r = cluster_sparse(sim, _shortlist(sim), ClusteringConfig(**kwargs), random_state=3)
            out[f"{mname}/{cname}"] = _summary(r)
    return out


def _summary(r) -> dict:
    return {
        "labels": r.labels.tolist(),
        "k": int(r.k),
        "criterion": r.criterion,
        "consumes": r.consumes,
        "exemplars": {str(a): int(b) for a, b in sorted(r.exemplars.items())},
    }


@pytest.fixture(scope="module")
def current() -> dict[str, dict]:
    return run_all()


def test_recorded_cases_cover_every_config():
    recorded = json.loads(RECORDED.read_text())
    assert len(recorded) == len(matrices()) * (len(CONFIGS) + len(SPARSE_CONFIGS)) == 195


@pytest.mark.parametrize(
    "name", sorted(json.loads(RECORDED.read_text())) if RECORDED.exists() else []
)
def test_same_labels_as_recorded(name, current):
    recorded = json.loads(RECORDED.read_text())[name]
    assert current[name] == recorded


if __name__ == "__main__" and "--record" in sys.argv:
    RECORDED.write_text(json.dumps(run_all(), indent=0, sort_keys=True) + "\n")
