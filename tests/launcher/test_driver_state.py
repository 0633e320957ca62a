"""A sweep's driver state kept in its store (cluster/launcher/driver_state.py) and the resume from it
(cluster/launcher/resume.py), without Ray: what is copied and when, what a folder without a sweep gets back,
who may take the sweep's name over, and the command `resume` runs. The same against the GCS emulator.
The sweeps themselves, killed and resumed on a cluster: test_sweep_outlives_its_head.py (slow tier)."""

from __future__ import annotations

import json
import os
import pickle
import sys
import time
from pathlib import Path

import pytest

from cluster.launcher.driver_mirror import DriverMirror
from cluster.launcher.driver_state import DriverState, driver_record, restore_driver_state
from cluster.launcher.job_configs import SweepRefused
from cluster.launcher.job_numbers import JobNumbers
from cluster.launcher.resume import ResumeError, resumed_argv, split_sweep_uri
from cluster.launcher.search_space import build_search_space
from cluster.store import open_store
from cluster.store.ownership import LOCAL_MARKER, SweepNameTaken, claim_sweep
from tests.conftest import run_launch

from .test_job_numbers import as_tune_keeps_it, plan, trial

SPEC = {"initial_job_idx": 0, "jobs": [["model=cnn", "seed=0"], ["model=cnn", "seed=1"]]}
PICKLE = pickle.dumps({"searcher": "state"})


@pytest.fixture(params=["folder", "gcs"])
def store_uri(request, tmp_path):
    """A store in a local folder, and one in a bucket of the GCS emulator."""
    if request.param == "folder":
        return str(tmp_path / "store")
    _, bucket = request.getfixturevalue("gcs")
    return f"gs://{bucket}/exp"


def sweep_folder(folder: Path) -> Path:
    """A sweep folder as the driver leaves it: the spec, the ledger, Tune's experiment (and a PBT checkpoint)."""
    (folder / "tune" / "job_0" / "checkpoint_000001").mkdir(parents=True)
    (folder / "sweep_spec.json").write_text(json.dumps(SPEC))
    (folder / "job_numbers.jsonl").write_text('{"trial_id": "a0", "job": 0, "overrides": null}\n')
    (folder / "tune" / "experiment_state-2026.json").write_text(json.dumps({"trial_data": []}))
    (folder / "tune" / "searcher-state-2026.pkl").write_bytes(PICKLE)
    (folder / "tune" / "job_0" / "result.json").write_text('{"epoch": 1}\n')
    (folder / "tune" / "job_0" / "checkpoint_000001" / "state.keras").write_bytes(b"x" * 100)
    return folder


def stored_names(store, sweep: str) -> set[str]:
    prefix = f"{sweep}/driver/"
    return {info.key[len(prefix):] for info in store.list(prefix)}


def mirror_of(store_uri: str, folder: Path) -> DriverMirror:
    store = open_store(store_uri)
    state = DriverState(store, folder.name, folder, store_uri)
    return DriverMirror(state, driver_record(state, claim_sweep(store, folder.name, folder), "~/raylaunch"),
                        period_s=3600)  # looks only when the test asks


def test_the_mirror_copies_what_changed_leaves_out_checkpoints_and_deletes_what_is_gone(store_uri, tmp_path):
    folder = sweep_folder(tmp_path / "multirun" / "s1")
    mirror = mirror_of(store_uri, folder).start()  # the first look copies everything
    store = mirror.state.store
    assert stored_names(store, "s1") == {"driver.json", "sweep_spec.json", "job_numbers.jsonl",
                                         "tune/experiment_state-2026.json", "tune/searcher-state-2026.pkl",
                                         "tune/job_0/result.json"}
    copied = mirror.num_uploads
    # Tune rewrites every file of its folder at each snapshot, most with the same bytes: those are not sent again.
    for path in (folder / "tune").rglob("*.*"):
        path.write_bytes(path.read_bytes())
    with open(folder / "tune" / "job_0" / "result.json", "a") as result:
        result.write('{"epoch": 2}\n')
    assert mirror.sync() == 0 and mirror.num_uploads == copied + 1
    assert store.read_bytes("s1/driver/tune/job_0/result.json")[0].count(b"\n") == 2
    # A file caught half-written (a pickle without its STOP, a line without its end) waits for the next look.
    (folder / "tune" / "searcher-state-2026.pkl").write_bytes(PICKLE[:-1])
    with open(folder / "tune" / "job_0" / "result.json", "a") as result:
        result.write('{"epoch": 3')
    assert mirror.sync() == 2
    assert store.read_bytes("s1/driver/tune/searcher-state-2026.pkl")[0] == PICKLE
    (folder / "tune" / "searcher-state-2026.pkl").write_bytes(PICKLE)
    with open(folder / "tune" / "job_0" / "result.json", "a") as result:
        result.write("}\n")
    assert mirror.sync() == 0
    assert store.read_bytes("s1/driver/tune/job_0/result.json")[0].endswith(b'{"epoch": 3}\n')
    # What Tune deleted (a rerun sets the previous run aside) is deleted in the store too.
    (folder / "tune" / "job_0" / "result.json").unlink()
    mirror.close()
    assert "tune/job_0/result.json" not in stored_names(store, "s1")
    record = json.loads(store.read_bytes("s1/driver/driver.json")[0])
    # The command line the driver was started with (here pytest's own, which may have no arguments at all).
    assert record["sweep_dir"] == str(folder) and record["sweep_id"] and record["argv"] == sys.argv[1:]


def test_a_folder_without_a_sweep_gets_its_state_from_the_store_and_takes_the_claim_over(store_uri, tmp_path):
    first = sweep_folder(tmp_path / "head" / "s1")
    mirror = mirror_of(store_uri, first).start()
    mirror.close()
    owner = mirror.record["sweep_id"]

    # Another machine: the same sweep (the same spec) in a new folder of the same name.
    elsewhere = tmp_path / "laptop" / "s1"
    state = restore_driver_state({store_uri}, elsewhere, SPEC)
    assert state.record["sweep_id"] == owner
    assert (elsewhere / "tune" / "searcher-state-2026.pkl").read_bytes() == PICKLE
    assert (elsewhere / "job_numbers.jsonl").read_text() == (first / "job_numbers.jsonl").read_text()
    assert not (elsewhere / "tune" / "job_0" / "checkpoint_000001").exists()
    assert not list(elsewhere.glob(".driver-restore-*"))
    assert claim_sweep(open_store(store_uri), "s1", elsewhere) == owner
    # Its mirror knows what it restored: nothing is sent again.
    assert DriverMirror(state, mirror.record, period_s=3600).start().num_uploads == 0


def test_another_command_under_the_same_name_is_refused_though_its_folder_is_gone(store_uri, tmp_path):
    mirror_of(store_uri, sweep_folder(tmp_path / "head" / "s1")).start().close()
    other = tmp_path / "laptop" / "s1"
    state = restore_driver_state({store_uri}, other, {**SPEC, "jobs": [["model=mlp", "seed=0"]]})
    assert state.record is None and not (other / "tune").exists()
    with pytest.raises(SweepNameTaken, match="already holds another sweep's results"):
        claim_sweep(open_store(store_uri), "s1", other)


def test_a_folder_with_a_sweep_of_its_own_keeps_it(tmp_path):
    store_uri = str(tmp_path / "store")
    mirror_of(store_uri, sweep_folder(tmp_path / "head" / "s1")).start().close()
    own = tmp_path / "laptop" / "s1"
    own.mkdir(parents=True)
    (own / "sweep_spec.json").write_text(json.dumps(SPEC))
    assert restore_driver_state({store_uri}, own, SPEC).record is None
    assert not (own / "tune").exists() and not (own / LOCAL_MARKER).exists()


def test_an_older_copy_of_a_sweep_that_ran_since_elsewhere_is_refused(store_uri, tmp_path):
    """The laptop's folder of a sweep later resumed on a cluster: its Tune state would run again what the cluster
    finished. Refused, naming the newer run and the resume that continues it."""
    old = sweep_folder(tmp_path / "laptop" / "s1")
    mirror_of(store_uri, old).start().close()
    for path in old.rglob("*"):  # the laptop's copy last changed an hour ago
        os.utime(path, (time.time() - 3600, time.time() - 3600))
    # The sweep resumed in another folder (on the cluster) since: the store's record names that folder.
    restore_driver_state({store_uri}, tmp_path / "cluster" / "s1", SPEC)
    resumed = tmp_path / "cluster" / "s1"
    mirror = DriverMirror(DriverState(open_store(store_uri), "s1", resumed, store_uri),
                          driver_record(DriverState(open_store(store_uri), "s1", resumed, store_uri),
                                        claim_sweep(open_store(store_uri), "s1", resumed), "~/raylaunch"),
                          period_s=3600)
    mirror.start().close()
    with pytest.raises(SweepRefused) as refusal:
        restore_driver_state({store_uri}, old, SPEC)
    message = str(refusal.value)
    assert f"{old} holds an older copy of sweep s1: its driver ran since in {resumed}" in message
    assert f"resume {store_uri}/s1 --dir ELSEWHERE/s1" in message and "No job of this sweep was started" in message
    # The folder the store's record names is the sweep's own: it runs on.
    assert restore_driver_state({store_uri}, resumed, SPEC).record is None


def test_no_store_no_driver_state(tmp_path):
    assert restore_driver_state({None}, tmp_path / "s1", SPEC) is None


def test_a_store_that_cannot_be_read_refuses_the_sweep(tmp_path, monkeypatch):
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "http://127.0.0.1:9")  # nobody answers
    monkeypatch.setattr("cluster.launcher.driver_state.RETRY_DEADLINE_S", 1.0)
    with pytest.raises(SweepRefused, match="Storage error"):
        restore_driver_state({"gs://some-bucket/exp"}, tmp_path / "s1", SPEC)


RECORD = {"argv": ["-m", "model=cnn", "seed=0,1", "hydra.sweep.dir=/home/ray/raylaunch/multirun/s1",
                   "hydra.launcher.submit=null", "hydra.launcher.address=10.0.0.5:6379"],
          "resume_folder": "multirun/s1"}


def test_resume_runs_the_recorded_command_in_a_folder_here_with_the_overrides_given():
    assert resumed_argv(RECORD, "s1", None, []) == [
        "-m", "model=cnn", "seed=0,1", "hydra.launcher.address=10.0.0.5:6379", "hydra.sweep.dir=multirun/s1"]
    # An override replaces the recorded one of the same key; a submission is asked for anew.
    assert resumed_argv(RECORD, "s1", "/data/s1", ["hydra.launcher.address=null",
                                                   "hydra.launcher.submit=http://127.0.0.1:8265"]) == [
        "-m", "model=cnn", "seed=0,1", "hydra.launcher.address=null", "hydra.launcher.submit=http://127.0.0.1:8265",
        "hydra.sweep.dir=/data/s1"]
    with pytest.raises(ResumeError, match="would name the sweep 'other'"):
        resumed_argv(RECORD, "s1", "runs/other", [])


def test_resume_names_the_sweep_by_its_uri():
    assert split_sweep_uri("gs://bucket/exp/2026-12-01_10-00-00") == ("gs://bucket/exp", "2026-12-01_10-00-00")
    assert split_sweep_uri("gs://bucket/s1/") == ("gs://bucket", "s1")
    with pytest.raises(ResumeError, match="names no sweep"):
        split_sweep_uri("gs://bucket")


def test_resume_of_a_sweep_without_driver_state_is_one_line_and_status_2(tmp_path):
    result = run_launch("resume", str(tmp_path / "store" / "s1"), cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "holds no sweep driver state" in result.stderr and "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0
    helped = run_launch("resume", "--help", cwd=tmp_path)
    assert helped.returncode == 0 and "--dir" in helped.stdout


def test_a_copy_of_the_name_creator_from_a_sweep_run_in_another_folder_numbers_from_this_driver_s_ledger(tmp_path):
    """Tune's state restored from the store holds name creators naming the folder the sweep ran in before."""
    space = build_search_space(["model=cnn", "lr=tag(log,interval(1e-4,1e-2))"])
    before = JobNumbers(plan(space), tmp_path / "head" / "s1")
    (tmp_path / "head" / "s1").mkdir(parents=True)
    assert as_tune_keeps_it(before)(trial("a0", 0.001)) == "job_0"
    restored_copy = pickle.dumps(before.name_of)
    here = tmp_path / "laptop" / "s1"
    here.mkdir(parents=True)
    (here / JobNumbers.LEDGER).write_text((tmp_path / "head" / "s1" / JobNumbers.LEDGER).read_text())
    JobNumbers._ledgers.clear()  # a new driver process
    JobNumbers(plan(space), here).resuming({"a0"})
    assert pickle.loads(restored_copy)(trial("b1", 0.002)) == "job_1"
    assert len((here / JobNumbers.LEDGER).read_text().splitlines()) == 2
