"""A cluster whose worker keeps Ray's temp dir somewhere else than the head (`ray start --temp-dir`, e.g. a
local SSD on GPU nodes): a sweep submitted through Ray Jobs runs its trials on that worker from the worker's
own copy of the checkout. Issue 20: every trial there failed with MissingConfigException naming the head's
path, in about 580 lines of tracebacks, and the failure summary named trial.log files that existed nowhere."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT

from .conftest import RayCluster, launch_env, require_nodes_with_their_own_disk

pytestmark = pytest.mark.slow  # a cluster of its own and a 4-trial sweep: about 1.5 minutes on 2 cores

NOT_IN_CHECKOUT = shutil.ignore_patterns(".venv", ".git", "__pycache__", "*.egg-info", "results", "outputs",
                                         "multirun", "test-artifacts", "runs", ".data", ".pytest_cache", ".ruff_cache")


@pytest.fixture(scope="module")
def head_and_ssd_worker():
    """The worker has a disk of its own (it does not see the head's temp dir) and its temp dir elsewhere."""
    require_nodes_with_their_own_disk()
    ssd = tempfile.mkdtemp(prefix="rl-ssd-", dir="/tmp")
    private = Path(tempfile.mkdtemp(prefix="rl-own-", dir="/tmp"))
    cluster = RayCluster()
    worker = None
    try:
        cluster.start_head(num_cpus=1, num_gpus=0, dashboard=True)
        worker = cluster.add_node_with_own_disk(num_cpus=2, private_dir=private, temp_dir=ssd)
        assert len(cluster.wait_for_nodes(2)) == 2, "the worker with its own temp dir did not join"
        yield cluster, ssd
    finally:
        if worker is not None:
            worker.kill()
        cluster.stop()
        assert not cluster.pids(), "Ray processes of the test cluster survived"
        shutil.rmtree(ssd, ignore_errors=True)
        shutil.rmtree(private, ignore_errors=True)


def test_trials_on_a_worker_with_its_own_temp_dir_use_that_nodes_copy(head_and_ssd_worker, tmp_path):
    cluster, ssd = head_and_ssd_worker
    checkout = tmp_path / "raylaunch"
    shutil.copytree(PROJECT_ROOT, checkout, ignore=NOT_IN_CHECKOUT)
    store = tmp_path / "store"  # one disk here: an absolute folder every node reaches
    ray = str(Path(sys.executable).with_name("ray"))
    result = subprocess.run(
        [ray, "job", "submit", "--address", cluster.jobs_address, "--working-dir", ".", "--", "python", "launch.py",
         "-m", "model=mlp,cnn", "seed=0,1", "data.max_train_samples=300", "trainer.epochs=2", "trainer.verbose=2",
         f"storage.uri={store}", "hydra.sweep.dir=multirun/ssd-sweep",
         f"hydra.launcher.cluster_dir={tmp_path / 'head'}"],
        cwd=checkout, env=launch_env(), capture_output=True, text=True, timeout=900)
    output = result.stdout + result.stderr
    assert result.returncode == 0 and "succeeded" in output, output[-6000:]
    assert "MissingConfigException" not in output and "Traceback" not in output, output[-6000:]
    codes = set()
    for trial in "0123":
        record = json.loads((store / "ssd-sweep" / "trials" / trial / "trial.json").read_text())
        codes.add(record["attempts"][-1]["code"])
        assert json.loads((store / "ssd-sweep" / "trials" / trial / "metrics.json").read_text())["epochs_run"] == 2
    # Some trial ran from the worker's copy under its own temp dir, which the head's paths never name.
    assert any(code.startswith(ssd) for code in codes), codes
    assert any(not code.startswith(ssd) for code in codes), codes
