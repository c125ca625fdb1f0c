"""The method registry is the one list: docs, config checks and a new method in one class."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from sklearn.cluster import Birch
from sklearn.metrics import adjusted_rand_score

from clustering import METHODS, ClusteringConfig, ClusteringMethod, cluster
from clustering.methods import Fit, Input
from preprocessing import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_docs_table_is_the_registry():
    spec = importlib.util.spec_from_file_location("mt", ROOT / "docs" / "make_method_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    page = (ROOT / "docs" / "clustering.md").read_text(encoding="utf-8")
    assert module.method_table() in page


def test_every_method_declares_itself():
    for name, m in METHODS.items():
        assert m.name == name and m.summary and m.consumes
        assert set(m.consumes) <= {"affinity", "distance", "features"}
        assert not (m.chooses_k and m.criteria), name
        assert not (m.sparse_needs_k and not m.sparse), name


class BirchMethod(ClusteringMethod):
    """A method added the documented way: one class, one registry entry."""

    name = "birch"
    summary = "BIRCH on features"
    consumes = ("features",)

    def fit(self, data: np.ndarray, kind: Input, k: int | None = None) -> Fit:
        return Fit(Birch(n_clusters=k, threshold=0.3).fit_predict(data))


def test_a_new_method_is_one_class_and_one_entry(monkeypatch):
    monkeypatch.setitem(METHODS, "birch", BirchMethod)
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 4, size=(3, 4))
    points = np.vstack([rng.normal(c, 0.2, size=(5, 4)) for c in centres])
    truth = np.repeat(np.arange(3), 5)
    config = ClusteringConfig(method="birch", features="given")
    r = cluster(np.eye(15), config, features=points)
    assert r.k == 3 and adjusted_rand_score(truth, r.labels) == 1.0
    assert r.criterion == "silhouette" and [row["k"] for row in r.selection] == list(range(2, 15))
    with pytest.raises(ConfigError, match="does not choose k for birch"):
        ClusteringConfig(method="birch", selection="derivative")
    with pytest.raises(
        ConfigError, match="threshold cuts a dendrogram: use clustering.method agglo"
    ):
        ClusteringConfig(method="birch", threshold=0.5)
