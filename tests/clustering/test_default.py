"""The measured default on labelled sets the tests generate, and clusteval as a reference."""

from __future__ import annotations

import numpy as np
import pytest
from datasets import generated_set
from sklearn.metrics import adjusted_rand_score

from app.config import AnalysisConfig
from app.pipeline import run_analysis
from clustering import ClusteringConfig, cluster


@pytest.mark.slow
@pytest.mark.parametrize(
    "kwargs,floor",
    [
        ({"n_bases": 8, "copies": 4, "seed": 1}, 0.9),
        ({"n_bases": 8, "copies": 4, "seed": 2, "strength": 1.6, "hard": True}, 0.9),
    ],
)
def test_default_finds_generated_families(kwargs, floor):
    images, truth = generated_set(**kwargs)
    result = run_analysis(images, AnalysisConfig(), labels=truth)
    assert result.evaluation["adjusted_rand"] >= floor, result.evaluation
    assert result.clustering.method == "spectral" and result.clustering_metric == "fused"
    assert result.matrices["fused"].params["fusion"].startswith("learned")


def test_feature_agglomerative_agrees_with_clusteval():
    """Where clusteval fits (agglomerative on features, silhouette), it is the reference."""
    clusteval = pytest.importorskip("clusteval")
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 3, size=(4, 5))
    points = np.vstack([rng.normal(c, 0.3, size=(6, 5)) for c in centres])
    truth = np.repeat(np.arange(4), 6)
    ours = cluster(
        np.eye(len(points)),
        ClusteringConfig(method="agglomerative", linkage="ward", features="given", k_max=10),
        features=points,
    )
    ce = clusteval.clusteval(
        cluster="agglomerative",
        evaluate="silhouette",
        linkage="ward",
        min_clust=2,
        max_clust=10,
        verbose="warning",
    )
    theirs = ce.fit(points)
    assert ours.k == len(set(theirs["labx"].tolist())) == 4
    assert adjusted_rand_score(theirs["labx"], ours.labels) == 1.0
    assert adjusted_rand_score(truth, ours.labels) == 1.0
