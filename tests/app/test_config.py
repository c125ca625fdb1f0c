"""Configuration: defaults, TOML/JSON round trip, clear errors."""

from __future__ import annotations

import json

import pytest

from app.config import AnalysisConfig, config_from_dict, load_config
from preprocessing import ConfigError


def test_round_trip_through_dict_and_json(tmp_path):
    cfg = AnalysisConfig().replace(
        clustering={"method": "agglomerative", "n_clusters": 4}, random_state=9
    )
    again = config_from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg and again.clustering.n_clusters == 4 and again.random_state == 9
    path = tmp_path / "c.json"
    path.write_text(json.dumps(cfg.to_dict()))
    assert load_config(path) == cfg


def test_toml_file(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(
        "random_state = 3\n[preprocess]\nwork_size = 128\n"
        '[similarity]\nmetrics = ["ssim"]\nmetric_params = { ssim = { sigma = 2.0 } }\n'
        '[clustering]\nn_clusters = "auto"\nselection = "calinski-harabasz"\n'
    )
    cfg = load_config(path)
    assert cfg.preprocess.work_size == 128 and cfg.random_state == 3
    assert cfg.similarity.metric("ssim").sigma == 2.0
    assert cfg.clustering.selection == "calinski-harabasz"


@pytest.mark.parametrize(
    "text,match",
    [
        (
            "[preprocess]\nwork_sise = 128\n",
            r"unknown key\(s\) preprocess.work_sise; valid keys in \[preprocess\]: .*work_size",
        ),
        ("colour = 1\n", r"unknown key\(s\) colour; valid top-level keys"),
        (
            "[preprocess]\nwork_size = 'big'\n",
            r"preprocess.work_size must be an integer >= 32, got 'big'",
        ),
        ("[preprocess]\nwork_size = 8\n", r"preprocess.work_size must be an integer >= 32, got 8"),
        ("[clustering]\nmethod = 'magic'\n", r"unknown clustering method 'magic'"),
        ("[similarity]\nmetrics = ['sift2']\n", r"unknown metric 'sift2'"),
        ("random_state = -1\n", r"random_state must be an integer"),
        ("[load]\nmax_pixels = 0\n", r"load.max_pixels must be an integer >= 1"),
        ("this is = not toml [", r"not valid TOML"),
        (
            "[similarity]\nfuse = [1, -1]\n",
            r"similarity.fuse needs 2 non-negative weights "
            r"\(one per metric: contour, sift\)",
        ),
        ("[similarity]\ncalibration = 'zscore'\n", r"calibration must be 'rank' or 'minmax'"),
        ("[similarity]\ncache = 'yes'\n", r"similarity.cache must be true or false"),
        ("[similarity]\nmetrics = ['embedding']\n", r"embedding metric needs a model"),
    ],
)
def test_bad_config_files_name_the_key(tmp_path, text, match):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=match) as info:
        load_config(path)
    assert str(path) in str(info.value)
