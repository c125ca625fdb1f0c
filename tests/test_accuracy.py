"""The accuracy benchmark: its quick subset runs, keeps its halves apart, and the CLI
scores a set exactly as the benchmark does."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from benchsets import KINDS, RECIPES, benchmark_sets, write_set
from sklearn.metrics import adjusted_rand_score

ROOT = Path(__file__).resolve().parent.parent


def _bench():
    spec = importlib.util.spec_from_file_location("accuracy", ROOT / "bench" / "accuracy.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_each_half_holds_every_kind_and_the_halves_share_no_source():
    halves: dict[str, set[str]] = {}
    for _, kinds, _ in RECIPES.values():
        for half in ("development", "held-out"):
            halves.setdefault(half, set()).update(kinds)
    assert halves["development"] == halves["held-out"] == set(KINDS)
    from benchsets import natural_sources

    names = [n for n, _ in natural_sources()]
    assert not set(names[0::2]) & set(names[1::2])


@pytest.mark.slow
def test_quick_benchmark_prints_both_halves_and_the_choice(tmp_path, capsys):
    bench = _bench()
    assert bench.main(["--quick", "--offline", "--no-baselines", "--cache-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "development half: workshop-dev, rehand-dev, prints-dev" in out
    assert "held-out half:    workshop-held, rehand-held, prints-held" in out
    assert "chosen on the development half, every candidate:" in out
    assert "chosen on the development half, the pipeline's options:" in out
    assert "shipped default (AnalysisConfig()) on the first draw equals:" in out


@pytest.mark.slow
def test_cli_labels_gives_the_benchmarks_score(tmp_path):
    labelled = next(benchmark_sets(recipes=("rehand",), quick=True))
    folder = tmp_path / "set"
    write_set(labelled, folder)
    cache = tmp_path / "cache"
    expected = _bench().default_score(labelled.images, labelled.truth, str(cache))
    out = tmp_path / "out"
    done = subprocess.run(
        [
            sys.executable, "-m", "app.cli", "analyze", str(folder), "--out", str(out),
            "--labels", str(folder / "families.csv"), "--cache-dir", str(cache), "--no-progress",
        ],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    run = json.loads((out / "run.json").read_text())
    assert run["evaluation"]["adjusted_rand"] == pytest.approx(expected, abs=1e-12)


def test_clusteval_row_chooses_k_on_ateliers_features():
    """The benchmark's clusteval row: its choice of k on the MDS of Atelier's matrix."""
    pytest.importorskip("clusteval")
    bench = _bench()
    truth = np.repeat(np.arange(4), 5)
    rng = np.random.default_rng(0)
    s = np.where(truth[:, None] == truth[None, :], 0.85, 0.1) + rng.uniform(0, 0.05, (20, 20))
    s = np.clip((s + s.T) / 2, 0, 1)
    np.fill_diagonal(s, 1.0)
    labels = bench.clusteval_labels(s)
    assert labels is not None and adjusted_rand_score(truth, labels) == 1.0


@pytest.mark.parametrize("seed", ["2026", "7", "11"])
def test_confirmation_refuses_the_benchmarks_own_seeds(seed, capsys):
    """A confirmation run must draw new sets: the seed of any of the draws is refused."""
    assert int(seed) in _bench().DRAW_SEEDS
    with pytest.raises(SystemExit) as err:
        _bench().main(["--confirm", seed, "--offline"])
    assert err.value.code == 2
    assert "another seed" in capsys.readouterr().err


def test_ties_go_to_the_shipped_clustering():
    """Candidates that tie on the development half are ordered with the shipped method
    first, so a tie never changes the default."""
    from clustering import ClusteringConfig

    bench = _bench()
    kept = bench._shipped_method()
    assert kept is not None
    for key, value in bench.METHODS[kept].items():
        assert getattr(ClusteringConfig(), key) == value


def test_a_pick_within_the_development_noise_keeps_the_default():
    """The rule's pick replaces the shipped default only when it is better on the worst
    development recipe by more than the standard error of the default's recipes."""
    bench = _bench()
    dev = ["a-dev", "b-dev"]

    def row(name: str, a: list[float], b: list[float]) -> tuple:
        vals = {("a-dev", d): v for d, v in enumerate(a)}
        vals.update({("b-dev", d): v for d, v in enumerate(b)})
        means = [float(np.mean(a)), float(np.mean(b))]
        return (name, "m", vals, (means, min(means), float(np.mean(means)), 0.0), None)

    # the default's b recipe: 0.94 / 0.96 / 0.95, standard error 0.00577
    shipped = row("shipped", [1.0, 1.0, 1.0], [0.94, 0.96, 0.95])
    close = row("close", [1.0, 1.0, 1.0], [0.95, 0.96, 0.955])  # +0.005
    far = row("far", [1.0, 1.0, 1.0], [0.97, 0.96, 0.98])  # +0.02
    assert "kept" in bench._keep_or_change(close, shipped, dev, 3)
    assert "to change" in bench._keep_or_change(far, shipped, dev, 3)
    assert "is the shipped default" in bench._keep_or_change(shipped, shipped, dev, 3)
    assert "0.006" in bench._keep_or_change(close, shipped, dev, 3)  # the noise it printed


def test_works_without_outlines_are_not_drawn(monkeypatch):
    """Every natural work a recipe draws has structure to copy: the colour wheel and the
    dim moon (no outline a template could fix) are left out of both halves."""
    import benchsets

    rejected = {
        name for name, img in benchsets.natural_sources() if not benchsets._informative(img)
    }
    assert {"colorwheel", "moon"} <= rejected
    assert len(rejected) <= 6  # the check removes the featureless few, not a half
    drawn: list[np.ndarray] = []
    _, kinds, draw = benchsets.RECIPES["details"]
    monkeypatch.setitem(
        benchsets.RECIPES, "details", (lambda rng, works, emit: drawn.extend(works), kinds, draw)
    )
    list(benchmark_sets(recipes=("details",)))
    assert len(drawn) >= 20 and all(benchsets._informative(w) for w in drawn)


def test_merge_after_clustering_joins_clusters_the_model_calls_one_template():
    """The bench's measured (not shipped) step: two clusters whose mean similarity is at
    least the threshold are merged, closest first; clusters apart are left alone."""
    bench = _bench()
    s = np.full((6, 6), 0.05)
    s[:2, :2] = s[2:4, 2:4] = s[4:, 4:] = 0.95
    s[:2, 2:4] = s[2:4, :2] = 0.7  # clusters 0 and 1: the model calls them one template
    s[2:4, 4:] = s[4:, 2:4] = 0.45  # cluster 2: below the decision point
    np.fill_diagonal(s, 1.0)
    labels = np.array([0, 0, 1, 1, 2, 2])
    merged = bench.merge_close(s, labels, 0.5)
    # after the first merge, {0, 1} and 2 meet at (0.05 * 4 + 0.45 * 4) / 8 = 0.25: apart
    assert merged.tolist() == [0, 0, 0, 0, 2, 2]
    assert labels.tolist() == [0, 0, 1, 1, 2, 2]  # the input is not changed
    assert bench.merge_close(s, labels, 0.71).tolist() == labels.tolist()
