"""A sweep outlives its driver's machine (issue 23): the driver's state is kept in the bucket while the sweep
runs, so a sweep whose driver died with its folder (a KubeRay head pod evicted, a VM replaced) is resumed from
the bucket alone, in another folder (`python launch.py resume gs://BUCKET/PREFIX/SWEEP`, here or with
hydra.launcher.submit onto the cluster) or by its own command run again, as a RayJob reruns its entrypoint on
a new head.

On the cloud-like cluster (tests/launcher/conftest.py): trials run on a worker with a disk of its own, the
GCS emulator is the bucket. Needs root; under CI=true a missing capability fails.
"""

from __future__ import annotations

import json
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

from .conftest import RAY_ENV, CloudLikeCluster, launch_env, start_sweep, sweep

# Three killed sweeps, their resumes and an uninterrupted reference: about 4 minutes on 2 cores. CI runs it.
pytestmark = pytest.mark.slow

SEEDED_SEARCH = ["hparams_search=optuna", "lr=tag(log,interval(1e-4,1e-2))", "hydra.sweeper.num_samples=3",
                 "hydra.sweeper.seed=5", "hydra.launcher.max_concurrent_trials=1", "model=cnn", "trainer.epochs=8",
                 "data.max_train_samples=1500", "trainer.verbose=2", "trainer.callbacks.early_stopping.enabled=false",
                 "resources.cpus=1", "storage.sync_seconds=1"]


def store(cloud: CloudLikeCluster, prefix: str):
    from cluster.store import open_store

    return open_store(f"gs://{cloud.bucket}/{prefix}")


def stored_json(cloud: CloudLikeCluster, prefix: str, key: str):
    from cluster.store.pointers import read_json

    return read_json(store(cloud, prefix), key)[0]


def stored_epoch(cloud: CloudLikeCluster, prefix: str, sweep_name: str, job: int) -> int:
    pointer = stored_json(cloud, prefix, f"{sweep_name}/trials/{job}/state.json")
    return pointer["epoch"] if pointer else 0


def driver_knows_jobs(cloud: CloudLikeCluster, prefix: str, sweep_name: str, jobs: int) -> bool:
    """The bucket's copy of the driver's state names this many jobs (its ledger of job numbers)."""
    found = store(cloud, prefix).read_bytes(f"{sweep_name}/driver/job_numbers.jsonl")
    return found is not None and len(found[0].decode().splitlines()) >= jobs


def spec_stored(cloud: CloudLikeCluster, prefix: str, sweep_name: str) -> bool:
    """The bucket's copy of the driver's state has the sweep's spec."""
    return bool(stored_json(cloud, prefix, f"{sweep_name}/driver/sweep_spec.json"))


def wait_for_job_0_done_and_job_1_at_epoch_2(cloud: CloudLikeCluster, prefix: str, sweep_name: str,
                                            driver_state_stored, still_running=lambda: None) -> None:
    """Until the bucket holds job 0's result, a state of job 1 after at least 2 epochs, and what
    `driver_state_stored()` asks of the driver's state. `still_running()` fails the wait at once (its assertion)."""
    def ready():
        still_running()
        return (stored_json(cloud, prefix, f"{sweep_name}/trials/0/metrics.json")
                and stored_epoch(cloud, prefix, sweep_name, 1) >= 2 and driver_state_stored())

    wait_for(ready, 600, f"{sweep_name}: job 0 to finish, job 1 to store 2 epochs and the driver's state to be stored",
             interval=0.5)


def assert_job_0_kept_and_job_1_continued(cloud: CloudLikeCluster, prefix: str, sweep_name: str,
                                          first_result: dict, epoch_at_kill: int) -> None:
    """The finished job was not run again; the unfinished one went on from its stored epoch, without a gap or a
    repeat, to its 8th epoch."""
    record = stored_json(cloud, prefix, f"{sweep_name}/trials/0/trial.json")
    assert len(record["attempts"]) == 1, "the finished job was run again"
    assert stored_json(cloud, prefix, f"{sweep_name}/trials/0/metrics.json") == first_result
    resumed = stored_json(cloud, prefix, f"{sweep_name}/trials/1/metrics.json")
    assert resumed["resumed_from_epoch"] >= epoch_at_kill >= 2
    assert [entry["epoch"] for entry in resumed["history"]] == list(range(1, 9)), "a gap or a repeat"


def sampled_lrs(board: dict) -> list[str]:
    return [re.search(r"\blr=(\S+)", row["overrides"]).group(1) for row in board["trials"]]


def kill_process_group(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGKILL)  # the driver dies; Ray ends its trials with it
    process.wait(timeout=60)


def test_a_killed_driver_whose_folder_is_gone_is_resumed_from_the_bucket_in_another_folder(cloud, tmp_path):
    """Job 0 finishes on the worker and job 1 stores 2 epochs; then the driver is killed and its folder deleted.
    `resume` from another folder, with nothing but the bucket: job 0 is not rerun, job 1 continues from its
    stored epoch, Optuna proposes the third trial it would have, and the leaderboard has the trials of an
    uninterrupted run of the same command."""
    prefix, name = "outlive", "head-lost"
    args = [*SEEDED_SEARCH, f"storage.uri=gs://{cloud.bucket}/{prefix}"]
    sweep_dir = cloud.base / "driver-machine" / name
    sweep_dir.parent.mkdir(parents=True, exist_ok=True)
    cloud.hold_head()  # trials run on the worker, whose disk the driver cannot read
    try:
        driver = start_sweep(args, sweep_dir, address=cloud.cluster.address)
        try:
            wait_for_job_0_done_and_job_1_at_epoch_2(cloud, prefix, name,
                                                     lambda: driver_knows_jobs(cloud, prefix, name, 2))
        finally:
            kill_process_group(driver)
        first_result = stored_json(cloud, prefix, f"{name}/trials/0/metrics.json")
        epoch_at_kill = stored_epoch(cloud, prefix, name, 1)
        shutil.rmtree(sweep_dir)  # the driver's machine and its disk are gone
        time.sleep(2)

        laptop = tmp_path / "laptop"
        laptop.mkdir()
        elsewhere = cloud.base / "another-machine" / name
        started = time.monotonic()
        result = run_launch("resume", f"gs://{cloud.bucket}/{prefix}/{name}", "--dir", str(elsewhere), cwd=laptop,
                            env=launch_env(cloud.cluster.address))
        resume_seconds = time.monotonic() - started
        output = result.stdout + result.stderr
        assert result.returncode == 0, output[-6000:]
        assert "Restored this sweep's driver state" in output and "Resuming the sweep" in output, output[-6000:]

        reference_dir = cloud.base / "uninterrupted" / "reference"
        reference = sweep(args, reference_dir, address=cloud.cluster.address, timeout=900)
        assert reference.returncode == 0, reference.stdout[-3000:] + reference.stderr[-3000:]
    finally:
        cloud.release_head()

    assert_job_0_kept_and_job_1_continued(cloud, prefix, name, first_result, epoch_at_kill)
    board = json.loads((elsewhere / "leaderboard.json").read_text())
    assert [row["job"] for row in board["trials"]] == [0, 1, 2]
    assert [row["status"] for row in board["trials"]] == ["COMPLETED"] * 3
    assert board["trials"][0]["value"] == first_result["best_value"]
    uninterrupted = json.loads((reference_dir / "leaderboard.json").read_text())
    assert sampled_lrs(board) == sampled_lrs(uninterrupted), "the resumed search proposed other trials"
    kept = re.search(r"Driver state kept in .*", output)
    print(f"resume: {resume_seconds:.0f} s for the remaining 1.x trials; {kept and kept.group(0)}")


def job_processes(name: str) -> list[psutil.Process]:
    """The processes of a Ray job's entrypoint (its shell and the driver) running this sweep."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if "launch.py" in cmdline and f"hydra.sweep.dir=multirun/{name}" in cmdline and "ray job" not in cmdline:
            found.append(process)
    return found


def not_in_checkout(folder: str, names: list[str]) -> list[str]:
    """What a laptop's checkout would not ship (.gitignore): outputs at its root only (cluster/results is code)."""
    at_root = Path(folder) == PROJECT_ROOT
    outputs = {"results", "outputs", "multirun", "test-artifacts", "runs", ".data"} if at_root else set()
    return [name for name in names if name in {".venv", ".git", "__pycache__", ".pytest_cache", *outputs}
            or name.endswith(".egg-info")]


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    """A copy of the project, as a laptop's checkout: what a submission ships."""
    copy = tmp_path_factory.mktemp("checkout") / "raylaunch"
    shutil.copytree(PROJECT_ROOT, copy, ignore=not_in_checkout)
    return copy


def ray_job_submit(cloud: CloudLikeCluster, checkout: Path, args: list[str], *options: str):
    """`ray job submit --working-dir . -- python launch.py -m ARGS`, as a KubeRay RayJob runs its entrypoint."""
    ray = str(Path(sys.executable).with_name("ray"))
    return subprocess.run([ray, "job", "submit", "--address", cloud.cluster.jobs_address, *options,
                           "--working-dir", ".", "--", "python", "launch.py", "-m", *args], cwd=checkout,
                          env=launch_env(), capture_output=True, text=True, timeout=900)


def job_status(cloud: CloudLikeCluster, job_id: str) -> str:
    from ray.job_submission import JobSubmissionClient

    return str(JobSubmissionClient(cloud.cluster.jobs_address).get_job_status(job_id).value)


def job_logs(cloud: CloudLikeCluster, job_id: str) -> str:
    from ray.job_submission import JobSubmissionClient

    return JobSubmissionClient(cloud.cluster.jobs_address).get_job_logs(job_id)


def test_the_same_submitted_command_on_a_head_that_lost_its_disk_resumes_instead_of_being_refused(cloud, checkout,
                                                                                                 monkeypatch):
    """A RayJob's entrypoint runs the sweep's driver on the head, its folder on the head's disk. The head goes:
    driver killed, folder deleted. The same entrypoint run again (what KubeRay does on a new head) resumes the
    sweep from the bucket: the claim on its name is proved there. Another command under that name is refused."""
    for variable, value in RAY_ENV.items():  # this process asks the Jobs API how the job is doing
        monkeypatch.setenv(variable, value)
    name = f"rayjob-{uuid.uuid4().hex[:6]}"
    prefix = "rayjobs"
    args = ["model=cnn", "seed=0,1", f"storage.uri=gs://{cloud.bucket}/{prefix}", f"hydra.sweep.dir=multirun/{name}",
            "data.max_train_samples=1500", "trainer.epochs=8", "trainer.verbose=2", "resources.cpus=1",
            "storage.sync_seconds=1", "hydra.launcher.max_concurrent_trials=1",
            "trainer.callbacks.early_stopping.enabled=false"]
    head_folder = Path(cloud.cluster.env["HOME"]) / "raylaunch" / "multirun" / name
    cloud.hold_head()
    try:
        submitted = ray_job_submit(cloud, checkout, args, "--no-wait")
        assert submitted.returncode == 0, submitted.stdout + submitted.stderr
        job_id = re.search(r"Job '(\S+)' submitted successfully", submitted.stdout + submitted.stderr).group(1)

        def job_running():
            assert job_status(cloud, job_id) in ("PENDING", "RUNNING"), job_logs(cloud, job_id)[-5000:]

        wait_for_job_0_done_and_job_1_at_epoch_2(cloud, prefix, name, lambda: spec_stored(cloud, prefix, name),
                                                 still_running=job_running)
        drivers = job_processes(name)
        assert drivers, "the job's driver was not found"
        for process in drivers:  # the head node goes: its driver dies at once...
            process.kill()
        first_result = stored_json(cloud, prefix, f"{name}/trials/0/metrics.json")
        epoch_at_kill = stored_epoch(cloud, prefix, name, 1)
        assert head_folder.is_dir()
        shutil.rmtree(head_folder)  # ...and its disk with the sweep's folder
        time.sleep(3)

        rerun = ray_job_submit(cloud, checkout, args)
        output = rerun.stdout + rerun.stderr
        assert rerun.returncode == 0 and "succeeded" in output, output[-6000:]
        assert "already holds another sweep's results" not in output
        assert "Restored this sweep's driver state" in output, output[-6000:]

        # Another command under the same name, its folder gone too: refused before it trains.
        shutil.rmtree(head_folder)
        other = ray_job_submit(cloud, checkout, [*args[:1], "seed=0,2", *args[2:]])
        assert other.returncode != 0 and "already holds another sweep's results" in other.stdout + other.stderr
    finally:
        cloud.release_head()

    assert_job_0_kept_and_job_1_continued(cloud, prefix, name, first_result, epoch_at_kill)
    manifest = stored_json(cloud, prefix, f"{name}/manifest.json")
    assert [row["status"] for row in manifest["leaderboard"]] == ["COMPLETED", "COMPLETED"]


def test_a_sweep_whose_driver_machine_died_is_resumed_from_a_laptop_onto_the_cluster(cloud, checkout, tmp_path):
    """The driver ran on a machine that is gone with its folder. From a laptop, `resume ... hydra.launcher.submit=`
    ships the sweep to the cluster as a Ray job, whose driver on the head restores it from the bucket."""
    prefix, name = "onto-cluster", f"machine-gone-{uuid.uuid4().hex[:6]}"
    args = ["model=cnn", "seed=0,1", f"storage.uri=gs://{cloud.bucket}/{prefix}", "data.max_train_samples=1500",
            "trainer.epochs=8", "trainer.verbose=2", "resources.cpus=1", "storage.sync_seconds=1",
            "hydra.launcher.max_concurrent_trials=1", "trainer.callbacks.early_stopping.enabled=false"]
    sweep_dir = cloud.base / "machine-gone" / name
    sweep_dir.parent.mkdir(parents=True, exist_ok=True)
    cloud.hold_head()
    try:
        driver = start_sweep(args, sweep_dir, address=cloud.cluster.address)
        try:
            wait_for_job_0_done_and_job_1_at_epoch_2(cloud, prefix, name, lambda: spec_stored(cloud, prefix, name))
        finally:
            kill_process_group(driver)
        first_result = stored_json(cloud, prefix, f"{name}/trials/0/metrics.json")
        epoch_at_kill = stored_epoch(cloud, prefix, name, 1)
        shutil.rmtree(sweep_dir)
        time.sleep(2)

        laptop = tmp_path / "laptop"
        laptop.mkdir()
        result = subprocess.run([sys.executable, str(checkout / "launch.py"), "resume",
                                 f"gs://{cloud.bucket}/{prefix}/{name}",
                                 f"hydra.launcher.submit={cloud.cluster.jobs_address}"],
                                cwd=laptop, env=launch_env(), capture_output=True, text=True, timeout=900)
        output = result.stdout + result.stderr
        assert result.returncode == 0, output[-6000:]
        assert f"Submitted sweep {name}" in output and "Restored this sweep's driver state" in output, output[-6000:]
        assert "/raylaunch/" in stored_json(cloud, prefix, f"{name}/driver/driver.json")["sweep_dir"]
    finally:
        cloud.release_head()

    assert_job_0_kept_and_job_1_continued(cloud, prefix, name, first_result, epoch_at_kill)
    manifest = stored_json(cloud, prefix, f"{name}/manifest.json")
    assert [row["status"] for row in manifest["leaderboard"]] == ["COMPLETED", "COMPLETED"]
