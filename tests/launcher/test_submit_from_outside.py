"""Sweeps submitted from outside the cluster through Ray Jobs, to the head's dashboard on 127.0.0.1, the
worker on a disk of its own and the GCS emulator as the bucket: the laptop's checkout runs on every node,
results land in the bucket and `pull` brings them anywhere; bad input never leaves the laptop; the exit
status is the sweep's; `jobs stop` ends every trial; a missing or wrong token is one line."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil
import pytest

from tests.conftest import PROJECT_ROOT, run_launch, wait_for

from .conftest import CloudLikeCluster, launch_env

# Submissions to a cluster with the Jobs API and a private-disk worker: about 5 minutes on 2 cores. CI runs it.
pytestmark = pytest.mark.slow



def not_in_checkout(folder: str, names: list[str]) -> list[str]:
    """What a laptop's checkout would not ship anyway (.gitignore) or is not part of it: outputs at its root
    only (cluster/results is code)."""
    outputs = {"results", "outputs", "multirun", "test-artifacts", "runs", ".data"} \
        if Path(folder) == PROJECT_ROOT else set()
    return [name for name in names if name in {".venv", ".git", "__pycache__", ".pytest_cache", *outputs}
            or name.endswith(".egg-info")]

QUICK = ["data.max_train_samples=300", "trainer.epochs=2", "trainer.verbose=2", "storage.sync_seconds=1"]


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    """A copy of the project, as a user's laptop holds it, with a model option that exists only there."""
    copy = tmp_path_factory.mktemp("laptop") / "raylaunch"
    shutil.copytree(PROJECT_ROOT, copy, ignore=not_in_checkout)
    return copy


def submit(checkout: Path, args: list[str], cloud: CloudLikeCluster, cwd: Path, env: dict | None = None,
           timeout: float = 900) -> subprocess.CompletedProcess:
    """`python <checkout>/launch.py -m ARGS hydra.launcher.submit=<Jobs API>` from `cwd`, as a user types it."""
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [sys.executable, str(checkout / "launch.py"), "-m", *args,
         f"hydra.launcher.submit={cloud.cluster.jobs_address}"],
        cwd=cwd, env=env or launch_env(), capture_output=True, text=True, timeout=timeout,
    )


def job_id_of(output: str) -> str:
    return re.search(r"as job (raylaunch-\S+)", output).group(1)


def listed_jobs(cloud: CloudLikeCluster, cwd: Path) -> str:
    listing = run_launch("jobs", "--address", cloud.cluster.jobs_address, cwd=cwd, env=launch_env())
    assert listing.returncode == 0, listing.stderr[-2000:]
    return listing.stdout


def stored(cloud: CloudLikeCluster, key: str):
    from cluster.store import open_store
    from cluster.store.pointers import read_json

    return read_json(open_store(f"gs://{cloud.bucket}/submitted"), key)[0]


def test_a_sweep_submitted_from_a_laptop_runs_the_laptops_code_on_every_node(cloud, checkout, tmp_path):
    marker = f"marker_{uuid.uuid4().hex[:8]}"
    (checkout / "conf" / "model" / f"{marker}.yaml").write_text((checkout / "conf" / "model" / "cnn.yaml").read_text())
    uri = f"gs://{cloud.bucket}/submitted"
    sweep_dir = "multirun/laptop-sweep"
    # 2 CPUs a trial: the head takes one trial at a time, the worker two, so four trials need both nodes.
    result = submit(checkout, [f"model=cnn,{marker}", "seed=0,1", f"storage.uri={uri}", "resources.cpus=2", *QUICK,
                               f"hydra.sweep.dir={sweep_dir}"], cloud, cwd=tmp_path / "elsewhere")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert "Traceback" not in output
    job_id = job_id_of(result.stdout)
    assert f"Dashboard: {cloud.cluster.jobs_address}/#/jobs/{job_id}" in result.stdout
    assert f"Watch it: python launch.py tensorboard {uri}/laptop-sweep" in result.stdout
    # The sweep's own console, followed from the laptop, ends with the leaderboard.
    assert "* best: job" in result.stdout and f"{uri}/laptop-sweep/trials/" in result.stdout

    ids = cloud.node_ids()
    nodes = set()
    for trial in "0123":
        record = stored(cloud, f"laptop-sweep/trials/{trial}/trial.json")
        attempt = record["attempts"][-1]
        nodes.add(attempt["node_id"])
        # The shipped checkout ran (Ray's package cache on that node), not the copy installed there.
        assert "runtime_resources" in attempt["code"] and "_ray_pkg_" in attempt["code"], attempt["code"]
        config = stored(cloud, f"laptop-sweep/trials/{trial}/metrics.json")
        assert config["epochs_run"] == 2
    assert nodes == {ids["head"], ids["worker"]}, "trials did not run on both nodes"
    overrides = [stored(cloud, f"laptop-sweep/trials/{trial}/trial.json")["overrides"] for trial in "0123"]
    assert sum(f"model={marker}" in trial for trial in overrides) == 2, \
        "the laptop-only config did not reach the trials"
    # The sweep folder on the head is a real one, outside Ray's package cache.
    manifest = stored(cloud, "laptop-sweep/manifest.json")
    assert ("runtime_resources" not in manifest["sweep_dir"]
            and manifest["sweep_dir"].endswith("raylaunch/multirun/laptop-sweep"))

    assert job_id in listed_jobs(cloud, tmp_path)
    third = tmp_path / "third"
    third.mkdir()
    pulled = run_launch("pull", f"{uri}/laptop-sweep", "--to", str(third / "best"), cwd=third,
                        env={"STORAGE_EMULATOR_HOST": cloud.emulator})
    assert pulled.returncode == 0, pulled.stdout[-2000:] + pulled.stderr[-2000:]
    assert (third / "best" / "best.keras").is_file() and "loads:" in pulled.stdout


@pytest.mark.parametrize("override, words", [
    ("model=nosuch", "model=nosuch: there is no such option in conf/model/"),
    ("trainer.epochs=-1", "trainer.epochs"),
    ("storage.uri=results", "with storage.uri=results a relative folder would be inside the job's copy"),
])
def test_bad_input_is_refused_on_the_laptop_and_nothing_is_submitted(cloud, checkout, tmp_path, override, words):
    before = listed_jobs(cloud, tmp_path)
    extra = [] if override.startswith("storage.uri") else [f"storage.uri=gs://{cloud.bucket}/submitted"]
    result = submit(checkout, [*extra, *QUICK, override], cloud, cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert words in output, output[-3000:]
    assert "Traceback" not in output and "Submitting to" not in output
    assert listed_jobs(cloud, tmp_path) == before


def test_the_submitting_command_exits_with_the_sweeps_status(cloud, checkout, tmp_path):
    """A bucket that does not exist is only seen on the cluster when the laptop has no credentials to check it."""
    no_credentials = {key: value for key, value in launch_env().items() if key != "STORAGE_EMULATOR_HOST"}
    result = submit(checkout, ["storage.uri=gs://no-such-bucket/x", *QUICK], cloud, cwd=tmp_path, env=no_credentials)
    output = result.stdout + result.stderr
    assert "Submitted sweep" in result.stdout
    assert result.returncode == 2, output[-3000:]  # what the sweep itself exits with: bad input (the store) is 2
    assert "bucket 'no-such-bucket' does not exist" in output


def test_a_missing_bucket_is_refused_on_a_laptop_that_can_check_it(cloud, checkout, tmp_path):
    """Issue 20: with credentials on the laptop (here the emulator's), nothing is submitted to learn that."""
    before = listed_jobs(cloud, tmp_path)
    result = submit(checkout, ["storage.uri=gs://no-such-bucket/x", *QUICK], cloud, cwd=tmp_path)
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    assert "bucket 'no-such-bucket' does not exist" in result.stderr and "Submitted sweep" not in result.stdout
    assert listed_jobs(cloud, tmp_path) == before


def test_data_missing_from_the_bucket_is_refused_on_a_laptop_that_can_check_it(cloud, checkout, tmp_path):
    """Issue 22: a data.path the bucket does not hold is named on the laptop, and nothing is submitted."""
    before = listed_jobs(cloud, tmp_path)
    missing = f"gs://{cloud.bucket}/datasets/never-pushed"
    result = submit(checkout, ["data=image_folder", f"data.path={missing}", f"storage.uri=gs://{cloud.bucket}/submitted",
                               *QUICK], cloud, cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output[-3000:]
    assert missing in result.stderr and "python launch.py push" in result.stderr, output[-3000:]
    assert "Submitted sweep" not in result.stdout and "Traceback" not in output
    assert listed_jobs(cloud, tmp_path) == before


def test_data_missing_from_the_bucket_is_refused_by_the_driver_before_any_trial(cloud, checkout, tmp_path):
    """Without credentials on the laptop the check runs on the cluster: the driver refuses the sweep before it
    starts a trial, and the submitting command exits with that refusal."""
    no_credentials = {key: value for key, value in launch_env().items() if key != "STORAGE_EMULATOR_HOST"}
    missing = f"gs://{cloud.bucket}/datasets/never-pushed"
    result = submit(checkout, ["data=image_folder", f"data.path={missing}", f"storage.uri=gs://{cloud.bucket}/submitted",
                               "hydra.sweep.dir=multirun/no-data", *QUICK], cloud, cwd=tmp_path, env=no_credentials)
    output = result.stdout + result.stderr
    assert "Submitted sweep" in result.stdout, output[-3000:]
    assert result.returncode == 2, output[-3000:]
    assert missing in output and "no job of this sweep was started" in output, output[-3000:]
    # No trial reached the store: the refusal came before Ray started one.
    from cluster.store import open_store

    store = open_store(f"gs://{cloud.bucket}/submitted")
    assert not [info.key for info in store.list("no-data/") if "/trials/" in info.key]


def test_stopping_a_submitted_sweep_ends_its_trials_on_every_node(cloud, checkout, tmp_path):
    log_path = tmp_path / "submit.log"
    with open(log_path, "w") as log:
        submitter = subprocess.Popen(
            [sys.executable, str(checkout / "launch.py"), "-m", "seed=0,1,2",
             f"storage.uri=gs://{cloud.bucket}/submitted", "hydra.sweep.dir=multirun/to-stop",
             "data.max_train_samples=1500", "trainer.epochs=50", "trainer.verbose=2",
             "resources.cpus=2", f"hydra.launcher.submit={cloud.cluster.jobs_address}"],
            cwd=tmp_path, env=launch_env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        def running_trials():
            pids = []
            for trial in "012":
                record = stored(cloud, f"to-stop/trials/{trial}/trial.json")
                if record:
                    pids.append(record["attempts"][-1]["pid"])
            return len(pids) == 3 and pids

        pids = wait_for(running_trials, 600, "the three trials to start", interval=1)
        assert all(psutil.pid_exists(pid) for pid in pids)
        job_id = job_id_of(log_path.read_text())
        stop = run_launch("jobs", "--address", cloud.cluster.jobs_address, "stop", job_id, cwd=tmp_path,
                          env=launch_env())
        assert stop.returncode == 0 and f"Stopping {job_id}" in stop.stdout, stop.stderr[-2000:]
        stopped_at = time.monotonic()
        wait_for(lambda: not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
                                 for pid in pids), 30, "every trial process to end")
        print(f"trials gone {time.monotonic() - stopped_at:.1f} s after `jobs stop`")
        assert submitter.wait(timeout=60) != 0, "a stopped sweep is not a success"
    finally:
        if submitter.poll() is None:
            os.killpg(submitter.pid, signal.SIGKILL)


@pytest.mark.parametrize("token, words", [
    ("not-the-clusters-token-4711", "refused the token found here"),
    (None, "requires its token and none was found here"),
])
def test_a_wrong_or_missing_token_is_one_line(cloud, checkout, tmp_path, token, words):
    env = {**launch_env(), "HOME": str(tmp_path)}  # no ~/.ray/auth_token either
    env.pop("RAY_AUTH_TOKEN")
    if token is not None:
        env["RAY_AUTH_TOKEN"] = token
    result = submit(checkout, [f"storage.uri=gs://{cloud.bucket}/submitted", *QUICK], cloud, cwd=tmp_path, env=env)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if words in line]
    assert len(errors) == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert token is None or token not in result.stdout + result.stderr.replace(words, "")


def ray_job_submit(cloud: CloudLikeCluster, checkout: Path, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """Ray's own route, as Ray's documentation (and a KubeRay RayJob) runs a script: `ray job submit
    --working-dir . -- python launch.py -m ...`, typed in the checkout."""
    ray = str(Path(sys.executable).with_name("ray"))
    return subprocess.run([ray, "job", "submit", "--address", cloud.cluster.jobs_address, "--working-dir", ".", "--",
                           "python", "launch.py", "-m", *args], cwd=checkout, env=launch_env(), capture_output=True,
                          text=True, timeout=900)


def test_rays_own_job_submit_runs_the_sweep_with_its_folder_outside_rays_package_cache(cloud, checkout, tmp_path):
    """Issue 20: the sweep folder landed in Ray's copy of the checkout and the job died with a traceback.
    Now it runs as `hydra.launcher.submit` runs it: the folder under hydra.launcher.cluster_dir on the head,
    trials on both nodes, results in the bucket."""
    prefix = f"gs://{cloud.bucket}/ray-submit-{uuid.uuid4().hex[:6]}"
    result = ray_job_submit(cloud, checkout, ["model=cnn,lstm", "lr=1e-3", f"storage.uri={prefix}", *QUICK], tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 0 and "succeeded" in output, output[-6000:]
    assert "Traceback" not in output
    assert "its folder is" in output and "/raylaunch/multirun/" in output
    from cluster.store import open_store
    from cluster.store.pointers import read_json

    store = open_store(prefix)
    (sweep,) = {info.key.split("/", 1)[0] for info in store.list("")}
    manifest = read_json(store, f"{sweep}/manifest.json")[0]
    assert "runtime_resources" not in manifest["sweep_dir"] and "/raylaunch/multirun/" in manifest["sweep_dir"]
    assert sorted(row["status"] for row in manifest["leaderboard"]) == ["COMPLETED", "COMPLETED"]
    for trial in "01":
        assert read_json(store, f"{sweep}/trials/{trial}/metrics.json")[0]["epochs_run"] == 2


def test_rays_own_job_submit_with_a_relative_store_is_one_line(cloud, checkout, tmp_path):
    result = ray_job_submit(cloud, checkout, ["model=mlp", "storage.uri=results", *QUICK], tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "The store results is a relative folder, and this sweep runs as a Ray job" in output, output[-4000:]
    assert "Traceback" not in output, output[-4000:]
