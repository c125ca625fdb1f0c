"""The pipeline on a Dask cluster started here, on 127.0.0.1: same results as the local run.

The scheduler and two workers are started by the tests (nothing external); one
test kills a worker while pair blocks are running and checks the run still
finishes with the same matrix and labels.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("distributed")

from datasets import write_large_set  # noqa: E402

from app.config import AnalysisConfig  # noqa: E402
from app.pipeline import run_analysis  # noqa: E402
from preprocessing import load_folder  # noqa: E402
from preprocessing.errors import ConfigError  # noqa: E402
from preprocessing.parallel import open_executor  # noqa: E402

pytestmark = pytest.mark.slow

DASK = str(Path(sys.executable).parent / "dask")


def _wait_for(path: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists() or not path.read_text().strip():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} did not appear")
        time.sleep(0.1)


class LocalDask:
    """A scheduler and worker processes on 127.0.0.1, each a `dask` command."""

    def __init__(self, tmp: Path, n_workers: int) -> None:
        self.tmp = tmp
        file = tmp / "scheduler.json"
        env = {**os.environ, "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
        self.procs: list[subprocess.Popen[bytes]] = []
        self.log = (tmp / "dask.log").open("wb")
        self.scheduler = subprocess.Popen(
            [DASK, "scheduler", "--host", "127.0.0.1", "--port", "0"]
            + ["--no-dashboard", "--scheduler-file", str(file)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        _wait_for(file)
        self.address = json.loads(file.read_text())["address"]
        self.workers = [
            subprocess.Popen(
                [DASK, "worker", self.address, "--host", "127.0.0.1", "--nthreads", "1"]
                + ["--no-nanny", "--no-dashboard", "--name", f"w{i}"],
                stdout=self.log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=str(Path(__file__).resolve().parents[2]),
            )
            for i in range(n_workers)
        ]
        from distributed import Client

        with Client(self.address, timeout="30s") as client:
            client.wait_for_workers(n_workers, timeout=60)

    def close(self) -> None:
        for p in [*self.workers, self.scheduler]:
            if p.poll() is None:
                p.terminate()
        for p in [*self.workers, self.scheduler]:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        self.log.close()


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dask_images")
    truth = write_large_set(folder, 40, family_size=4, size=200, seed=3)
    return folder, truth


@pytest.fixture
def dask_cluster(tmp_path):
    cluster = LocalDask(tmp_path, 2)
    yield cluster
    cluster.close()


def _config(**changes) -> AnalysisConfig:
    # rank-fused matrices cluster best on a graph of 5 neighbours (docs/clustering.md;
    # the default 20 is the learned matrix's): here 0.94 with 5, 0.50 with 20
    return AnalysisConfig().replace(
        similarity={"metrics": ["sift", "ssim"], "cache": False, "block_size": 8},
        preprocess={"work_size": 128, "align": "translation"},
        clustering={"neighbors": 5},
        **changes,
    )


def _same(a, b) -> None:
    assert a.ids == b.ids
    for name in a.matrices:
        diff = np.abs(a.matrices[name].values - b.matrices[name].values).max()
        assert diff <= 1e-12, (name, diff)
    np.testing.assert_array_equal(a.clustering.labels, b.clustering.labels)


def test_dask_cluster_gives_the_local_result(image_folder, dask_cluster):
    folder, truth = image_folder
    images = load_folder(folder)
    local = run_analysis(images, _config(n_jobs=1), labels=truth)
    remote = run_analysis(images, _config(scheduler=dask_cluster.address), labels=truth)
    assert remote.compute["kind"] == "dask"
    assert remote.compute["workers"] == 2
    assert local.compute["kind"] == "serial"
    _same(local, remote)
    # the families are found (not only "the same numbers")
    assert local.evaluation["adjusted_rand"] >= 0.8


def test_features_travel_once_per_worker(image_folder, dask_cluster):
    """Every chunk of features is placed on each worker once, then only referenced."""
    from datasets import generated_set
    from distributed import Client

    from preprocessing.parallel import ClusterExecutor
    from similarity import get_metric, pairwise

    image_set, _ = generated_set(n_bases=4, copies=6, size=96)
    from preprocessing.work import work_image_from_rgb

    work = [work_image_from_rgb(r.id, r.pixels, 96) for r in image_set]
    calls: list[int] = []
    with Client(dask_cluster.address) as client:
        executor = ClusterExecutor(client)
        original = executor.share

        def counting_share(data):
            calls.append(len(data))
            return original(data)

        executor.share = counting_share  # type: ignore[method-assign]
        remote = pairwise(work, get_metric("sift"), executor=executor, block_size=6)
    local = pairwise(work, get_metric("sift"), n_jobs=1, block_size=6)
    assert np.abs(remote.values - local.values).max() <= 1e-12
    # 24 images in 4 chunks of 6: 4 shares (one per chunk) for 10 block tasks
    assert calls == [6, 6, 6, 6]


def test_killed_worker_is_survived(image_folder, dask_cluster):
    folder, truth = image_folder
    images = load_folder(folder)
    local = run_analysis(images, _config(n_jobs=1))
    victim = dask_cluster.workers[0]
    killed: list[int] = []

    def progress(stage: str, done: int, total: int) -> None:
        # kill one worker once a quarter of the SIFT pairs is done: blocks are in flight
        if stage == "similarity:sift" and not killed and done >= total // 4 and done < total:
            os.kill(victim.pid, signal.SIGKILL)
            killed.append(done)

    remote = run_analysis(images, _config(scheduler=dask_cluster.address), progress)
    assert killed, "the worker was not killed mid-run"
    assert victim.wait(timeout=10) == -signal.SIGKILL
    _same(local, remote)


def test_local_cluster_through_the_cli(image_folder, tmp_path, capsys):
    from app.cli import main

    folder, _ = image_folder
    code = main(
        ["analyze", str(folder), "--out", str(tmp_path / "out"), "--scheduler", "local"]
        + ["--workers", "2", "--metric", "sift", "--size", "96", "--no-cache", "--no-progress"]
    )
    assert code == 0
    err = capsys.readouterr().err
    assert "dashboard http://127.0.0.1:" in err
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert run["compute"]["kind"] == "dask"
    assert run["compute"]["workers"] == 2
    assert run["compute"]["scheduler"].startswith("tcp://127.0.0.1:")
    assert run["config"]["scheduler"] == "local"


def test_bad_scheduler_is_a_clear_error():
    with pytest.raises(ConfigError, match="tcp://HOST:PORT"):
        AnalysisConfig(scheduler="http://example.org")
    with pytest.raises(ConfigError, match="cannot reach the Dask scheduler"):
        with open_executor("tcp://127.0.0.1:1", None):
            pass
