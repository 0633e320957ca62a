"""A trial's record, `trial.json` in its job folder and, with a store, in the store: which node, pid and GPUs
ran each attempt, its lineage under PBT and, once the job ended, its final report. A driver resumed later (on
a head that cannot read the worker's disk) learns from the store's copy that a job had already finished."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Optional

from cluster.launcher.sweep_plan import SweepPlan
from cluster.store.layout import TRIAL_RECORD

TRIAL_LOG = "trial.log"
# A trial's start never waits longer than this for the store (it may be unreachable for a while).
STORE_DEADLINE_S = 30.0


class TrialStore:
    """The trial runner's own record in the sweep's store (trials/<trial>/trial.json): which node ran each
    attempt and, once the job ended, its final report, so a driver resumed later does not rerun a job that
    finished on a node whose disk it cannot read. Best effort: the store being down never fails a trial."""

    def __init__(self, plan: SweepPlan, sweep_config):
        from cluster.store import open_store
        from cluster.store.layout import job_identity, trial_key

        self.store = open_store(plan.store_uri, retry_deadline=STORE_DEADLINE_S)
        sweep, trial, _ = job_identity(sweep_config.hydra)
        self.key, self.sweep_id = trial_key(sweep, trial, TRIAL_RECORD), plan.sweep_id

    def read(self) -> Optional[dict]:
        from cluster.store import StorageError
        from cluster.store.pointers import read_json

        try:
            record, _ = read_json(self.store, self.key)
        except StorageError as error:
            print(f"[raylaunch] the trial's record in the store could not be read: {error}", flush=True)
            return None
        return record if record and record.get("sweep_id") == self.sweep_id else None

    def write(self, record: dict) -> None:
        from cluster.store import StorageError

        try:
            self.store.write_bytes(self.key, json.dumps({**record, "sweep_id": self.sweep_id}, indent=1).encode())
        except StorageError as error:
            print(f"[raylaunch] the trial's record was not stored ({error}); the job's own files are", flush=True)


def read_record(job_dir: Path, stored: Optional[TrialStore]) -> Optional[dict]:
    """The trial's record, from its job folder or, when the store's has seen more attempts, the store's."""
    record_file = job_dir / TRIAL_RECORD
    try:
        record = json.loads(record_file.read_text()) if record_file.is_file() else None
    except ValueError:
        record = None
    from_store = stored.read() if stored is not None else None
    if record is None or (from_store and len(from_store.get("attempts", [])) > len(record.get("attempts", []))):
        record = from_store
        if record is not None:
            record.pop("sweep_id", None)
    return record


def record_attempt(job_dir: Path, trial_id: str, overrides: list[str], stored: Optional[TrialStore],
                    inherited: Optional[dict] = None) -> dict:
    """Where and as what this attempt runs: node, pid, GPUs (tests and post-mortems read this). Earlier
    attempts on other nodes are known from the store's copy of the record."""
    import ray

    record_file = job_dir / TRIAL_RECORD
    record = read_record(job_dir, stored) or {"attempts": []}
    context = ray.get_runtime_context()
    attempt = {
        "pid": os.getpid(),
        "node_id": context.get_node_id(),
        "node_ip": ray.util.get_node_ip_address(),
        "gpu_ids": [str(gpu) for gpu in ray.get_gpu_ids()],
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        # Which copy of the code ran: a submitted sweep's is the shipped checkout in Ray's package cache.
        "code": str(Path(__file__).resolve().parents[2]),
        "started": time.time(),
    }
    record.update(trial_id=trial_id, overrides=overrides, log=str(job_dir / TRIAL_LOG))
    if inherited is not None:
        attempt["inherited"] = inherited
        record.setdefault("lineage", []).append(inherited)
    record["attempts"].append(attempt)
    record_file.write_text(json.dumps(record, indent=1))
    if stored is not None:
        stored.write(record)
    return attempt


def record_end(job_dir: Path, stored: Optional[TrialStore], final: Optional[dict] = None) -> None:
    record_file = job_dir / TRIAL_RECORD
    record = json.loads(record_file.read_text())
    record["attempts"][-1]["ended"] = time.time()
    if final is not None:  # numbers from Keras' logs may be numpy scalars
        record["result"] = json.loads(json.dumps(final, default=lambda v: v.item() if hasattr(v, "item") else str(v)))
    record_file.write_text(json.dumps(record, indent=1))
    if stored is not None:
        stored.write(record)


def finished_before(job_dir: Path, trial_id: str, overrides: list[str], stored: Optional[TrialStore]) -> Optional[dict]:
    """The final report of this very job if it already finished: Tune's experiment state is saved every
    few seconds, so a driver killed soon after a trial ended restores that trial as unfinished. The job
    folder's record if this node has it, else the store's (the trial may have run on another node)."""
    try:
        record = json.loads((job_dir / TRIAL_RECORD).read_text())
    except (OSError, ValueError):
        record = None
    if (record is None or "result" not in record) and stored is not None:
        record = stored.read()
    if record and record.get("trial_id") == trial_id and record.get("overrides") == overrides:
        return record.get("result")
    return None
