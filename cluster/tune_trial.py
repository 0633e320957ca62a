"""What runs inside one Ray Tune trial's process: compose the Hydra job, point its logs at its own file,
run the task function with the trial context it can report epochs through (trial_context.py), and send
its result to Tune. A task that resumes from its own saved state (the app's business) continues there.

Under population-based training (SweepPlan.checkpoint_interval set) the trial also snapshots the job's
resumable state (the paths the task names in report_epoch) as its Tune checkpoint every few epochs; a trial
that PBT restarts from another trial's checkpoint gets those files in its own job folder before the task
runs, so the task resumes from them as after any restart, with the explored values in its overrides. The
exploit is recorded in trial.json (`lineage`) and sent with the final report. Other sweeps use no Tune
checkpoint at all (after a killed driver Tune would restore one its last snapshot named, which rotation
may have deleted); PBT keeps every checkpoint it took (see tuner.py).

Mirrors what Hydra's own launchers do on a worker (Singleton state shipped over, setup_globals, run_job),
so the job sees the same config, output folder and hydra.job.num/id as under the basic launcher.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

from .node_paths import hydra_context_on_this_node, on_this_node
from .private_apis import failed_job_error
from .search_space import SearchSpace, trial_overrides

log = logging.getLogger(__name__)

TRIAL_LOG = "trial.log"
TRIAL_RECORD = "trial.json"
# Final-report keys (besides the metric): the task function's return value and a marker that the job ended.
RETURN_KEY = "return_value"
DONE_KEY = "job_finished"
# Final-report key: the trial's lineage under PBT (JSON list of exploits), for the leaderboard.
LINEAGE_KEY = "lineage"
# Inside a PBT checkpoint: who took it (trial, job, epoch, overrides) and which paths of the job folder it holds.
HANDOVER = "handover"
# A trial's start never waits longer than this for the store (it may be unreachable for a while).
STORE_DEADLINE_S = 30.0
# A trial a scheduler stops (ASHA, HyperBand) ends its process gracefully; the process waits at most this long
# for the task function to unwind (its `finally` blocks: uploads of the epoch it was stopped at).
STOP_GRACE_S = 120.0


@dataclass
class SweepPlan:
    """Everything a trial needs, pickled once and shipped to every trial."""

    hydra_context: Any
    task_function: Any
    config: Any  # the multirun's config (hydra.sweep.dir made absolute)
    singleton_state: Any
    metric: Optional[str] = None
    initial_job_idx: int = 0
    # Grid: each job's overrides, by position. Search: the space a trial's sampled values come from.
    jobs: Optional[list[list[str]]] = None
    space: Optional[SearchSpace] = None
    # The sweep's store (absolute URI) and the id its driver claimed the sweep's name with; None: no store.
    store_uri: Optional[str] = None
    sweep_id: Optional[str] = None
    # Population-based training: snapshot the job's state as a Tune checkpoint every this many epochs.
    checkpoint_interval: Optional[int] = None

    def overrides_of(self, trial_config: dict) -> list[str]:
        if self.jobs is not None:
            return list(self.jobs[int(trial_config["job"])])
        return trial_overrides(self.space, trial_config)

    def job_of(self, trial_config: dict, trial_id: str, trial_name: Optional[str] = None) -> tuple[int, list[str]]:
        """(hydra.job.num, overrides) of the trial."""
        if self.jobs is not None:
            return self.initial_job_idx + int(trial_config["job"]), self.overrides_of(trial_config)
        if trial_name and trial_name.startswith("job_") and trial_name[4:].isdigit():
            return int(trial_name[4:]), self.overrides_of(trial_config)  # numbered by the driver (JobNumbers)
        # Tune's random search numbers the trials it generates in order: <experiment>_<counter>, kept across restores.
        counter = tune_counter(trial_id)
        if counter is None:
            raise ValueError(f"trial {trial_id} ({trial_name}) has no job number: it was not named by the sweep's driver")
        return self.initial_job_idx + counter, self.overrides_of(trial_config)


def tune_counter(trial_id: str) -> Optional[int]:
    """The counter of a trial id Tune's random search made (`<experiment>_<00012>`); None for a searcher's
    random id, even one whose 8 hex digits happen to be all decimal ("81030035" was taken for job 81030035)."""
    experiment, _, counter = trial_id.rpartition("_")
    return int(counter) if experiment and counter.isdigit() else None


class JobNumbers:
    """hydra.job.num of each trial, given in the driver when Tune creates the trial (its name, job_<num>, is
    kept across restores). A grid's trial is numbered by its position and Tune's random search by its counter;
    a searcher's trials have random ids, so they are numbered in creation order from the sweep's ledger of
    numbers (`<sweep dir>/job_numbers.jsonl`, one line appended per number given): never from the folders on
    disk, which the trials of one burst do not create before Tune has named them all.

    Tune deep-copies and pickles its name creator with every trial it creates, and with each trial's state:
    every copy in this process shares one ledger (kept by sweep folder), and a copy holds only small values.

    A resumed driver reads the ledger and knows which trials the restored experiment has. A trial the
    killed driver had numbered after Tune's last save of its experiment is unknown to it; the restored searcher
    proposes the same values again under a new id, and that trial continues the lost one's job number (and so
    its folder and saved state) instead of becoming a new job."""

    LEDGER = "job_numbers.jsonl"
    _ledgers: dict[str, "_Ledger"] = {}

    def __init__(self, plan: SweepPlan, sweep_dir: Path):
        self.grid, self.initial_job_idx, self.sweep_dir = plan.jobs is not None, plan.initial_job_idx, Path(sweep_dir)
        self.space = plan.space
        JobNumbers._ledgers[self._key] = _Ledger(self.sweep_dir / self.LEDGER, self.initial_job_idx)

    @property
    def _key(self) -> str:
        return str(self.sweep_dir.absolute())

    def resuming(self, known_trial_ids: Optional[Iterable[str]]) -> None:
        """Tune is about to restore this sweep's experiment, which knows these trials (None: not known, so
        no new trial is taken for a lost one)."""
        self._ledger.known = None if known_trial_ids is None else set(known_trial_ids)

    @property
    def _ledger(self) -> "_Ledger":
        ledger = JobNumbers._ledgers.get(self._key)
        if ledger is None:  # a copy unpickled in a driver that never built the original (a read of Tune's state)
            ledger = JobNumbers._ledgers[self._key] = _Ledger(self.sweep_dir / self.LEDGER, self.initial_job_idx)
        return ledger

    def number_of(self, trial) -> int:
        counter = tune_counter(trial.trial_id)
        if self.grid:
            return self.initial_job_idx + int(trial.config["job"])
        if counter is not None:
            return self.initial_job_idx + counter
        overrides = None
        if self.space is not None:
            try:
                overrides = trial_overrides(self.space, trial.config)
            except (KeyError, TypeError):
                pass
        return self._ledger.give(trial.trial_id, overrides)

    def name_of(self, trial) -> str:
        return f"job_{self.number_of(trial)}"


class _Ledger:
    """The job numbers a search's drivers gave, appended to one file as they are given. Read once per driver."""

    def __init__(self, path: Path, initial_job_idx: int):
        self.path = path
        self.given: dict[str, int] = {}  # by trial id, every driver's
        self.overrides: dict[str, Optional[list]] = {}
        self.by_this_driver: set[str] = set()
        self.known: Optional[set[str]] = None  # set when resuming: the restored experiment's trial ids
        for line in path.read_text().splitlines() if path.is_file() else ():
            try:
                entry = json.loads(line)
                self.given[entry["trial_id"]], self.overrides[entry["trial_id"]] = int(entry["job"]), entry.get("overrides")
            except (ValueError, KeyError, TypeError):
                continue  # a line cut short by a killed driver
        # Job folders of a sweep run by a version without the ledger (read once, when the driver starts).
        folders = [int(folder.name) for folder in path.parent.glob("*") if folder.is_dir() and folder.name.isdigit()]
        self.next = max([initial_job_idx - 1, *self.given.values(), *folders]) + 1

    def _lost_twin(self, overrides: Optional[list]) -> Optional[int]:
        """In a resumed sweep, the number of a trial with these values that the restored experiment does not
        know and no trial of this driver took."""
        if self.known is None or overrides is None:
            return None
        taken = {self.given[trial_id] for trial_id in (self.known | self.by_this_driver) if trial_id in self.given}
        for trial_id, number in self.given.items():
            if (trial_id not in self.known and trial_id not in self.by_this_driver and number not in taken
                    and self.overrides.get(trial_id) == overrides):
                return number
        return None

    def give(self, trial_id: str, overrides: Optional[list]) -> int:
        if trial_id in self.given:
            return self.given[trial_id]
        number = self._lost_twin(overrides)
        if number is None:
            number, self.next = self.next, self.next + 1
        self.given[trial_id], self.overrides[trial_id] = number, overrides
        self.by_this_driver.add(trial_id)
        with open(self.path, "a") as ledger:
            ledger.write(json.dumps({"trial_id": trial_id, "job": number, "overrides": overrides}) + "\n")
            ledger.flush()
            os.fsync(ledger.fileno())
        return number


class InDriver:
    """A function of the driver that Tune keeps in its trainable and specs, which it pickles and unpickles for
    every trial it creates: pickled as a name, so that costs the same however much the function holds (the
    sweep's plan and composed configs made it about 0.5 s per trial). Tune calls it in the driver only, where
    the name was registered (again by a resumed driver before Tune restores)."""

    _functions: dict[str, Callable] = {}

    def __init__(self, name: str, function: Callable) -> None:
        self.name = name
        InDriver._functions[name] = function

    def __call__(self, *arguments):
        return InDriver._functions[self.name](*arguments)

    def __getstate__(self) -> dict:
        return {"name": self.name}

    def __setstate__(self, state: dict) -> None:
        self.name = state["name"]


def compose(plan: SweepPlan, overrides: list[str], num: int, trial_id: str, hydra_context=None):
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    hydra_context = hydra_context or plan.hydra_context
    sweep_config = hydra_context.config_loader.load_sweep_config(plan.config, list(overrides))
    with open_dict(sweep_config):
        sweep_config.hydra.job.id = trial_id
        sweep_config.hydra.job.num = num
        # Hydra re-composes in Tune's trial folder (runtime.cwd = os.getcwd()): take the driver's absolute sweep
        # dir and working directory, so the job folder and relative config paths (storage.uri=results) are the user's.
        sweep_config.hydra.sweep.dir = str(plan.config.hydra.sweep.dir)
        # The driver's working directory is in Ray's copy of the checkout when it runs as a Ray job: this node's copy.
        sweep_config.hydra.runtime.cwd = on_this_node(str(plan.config.hydra.runtime.cwd))
    HydraConfig.instance().set_config(sweep_config)
    job_dir = Path(str(sweep_config.hydra.sweep.dir)) / str(sweep_config.hydra.sweep.subdir)
    return sweep_config, job_dir


def _redirect_output(path: Path) -> None:
    """Everything this process prints from now on (Python, TensorFlow's C++ logs, Keras progress bars)
    goes to the trial's own log file instead of the sweep's console. The process serves this trial only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


class _TrialStore:
    """The trial runner's own record in the sweep's store (trials/<trial>/trial.json): which node ran each
    attempt and, once the job ended, its final report, so a driver resumed later does not rerun a job that
    finished on a node whose disk it cannot read. Best effort: the store being down never fails a trial."""

    def __init__(self, plan: SweepPlan, sweep_config):
        from .storage import open_store
        from .storage.layout import TRIAL_RECORD as RECORD_NAME
        from .storage.layout import trial_key
        from .storage.session import job_identity

        self.store = open_store(plan.store_uri, retry_deadline=STORE_DEADLINE_S)
        sweep, trial, _ = job_identity(sweep_config.hydra)
        self.key, self.sweep_id = trial_key(sweep, trial, RECORD_NAME), plan.sweep_id

    def read(self) -> Optional[dict]:
        from .storage import StorageError
        from .storage.pointers import read_json

        try:
            record, _ = read_json(self.store, self.key)
        except StorageError as error:
            print(f"[raylaunch] the trial's record in the store could not be read: {error}", flush=True)
            return None
        return record if record and record.get("sweep_id") == self.sweep_id else None

    def write(self, record: dict) -> None:
        from .storage import StorageError

        try:
            self.store.write_bytes(self.key, json.dumps({**record, "sweep_id": self.sweep_id}, indent=1).encode())
        except StorageError as error:
            print(f"[raylaunch] the trial's record was not stored ({error}); the job's own files are", flush=True)


def _read_record(job_dir: Path, stored: Optional[_TrialStore]) -> Optional[dict]:
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


def _record_attempt(job_dir: Path, trial_id: str, overrides: list[str], stored: Optional[_TrialStore],
                    inherited: Optional[dict] = None) -> dict:
    """Where and as what this attempt runs: node, pid, GPUs (tests and post-mortems read this). Earlier
    attempts on other nodes are known from the store's copy of the record."""
    import ray

    record_file = job_dir / TRIAL_RECORD
    record = _read_record(job_dir, stored) or {"attempts": []}
    context = ray.get_runtime_context()
    attempt = {
        "pid": os.getpid(),
        "node_id": context.get_node_id(),
        "node_ip": ray.util.get_node_ip_address(),
        "gpu_ids": [str(gpu) for gpu in ray.get_gpu_ids()],
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        # Which copy of the code ran: a submitted sweep's is the shipped checkout in Ray's package cache.
        "code": str(Path(__file__).resolve().parents[1]),
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


def _record_end(job_dir: Path, stored: Optional[_TrialStore], final: Optional[dict] = None) -> None:
    record_file = job_dir / TRIAL_RECORD
    record = json.loads(record_file.read_text())
    record["attempts"][-1]["ended"] = time.time()
    if final is not None:  # numbers from Keras' logs may be numpy scalars
        record["result"] = json.loads(json.dumps(final, default=lambda v: v.item() if hasattr(v, "item") else str(v)))
    record_file.write_text(json.dumps(record, indent=1))
    if stored is not None:
        stored.write(record)


def _finished_before(job_dir: Path, trial_id: str, overrides: list[str], stored: Optional[_TrialStore]) -> Optional[dict]:
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


def _take_over(job_dir: Path, trial_id: str, overrides: list[str], stored: Optional[_TrialStore]) -> Optional[dict]:
    """PBT: when Tune starts this trial from another trial's checkpoint (an exploit), put that trial's state
    files into this job's folder, in place of its own. A checkpoint of this very trial (a retry, a resumed
    driver) or one already taken over changes nothing: the task resumes from its own state."""
    import shutil

    from ray import tune

    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        return None
    try:
        handover = (checkpoint.get_metadata() or {}).get(HANDOVER)
    except Exception as error:  # noqa: BLE001 - e.g. rotated away (tuner.py): keep this job's own state
        print(f"[raylaunch] checkpoint {checkpoint.path} cannot be read ({error}); the job resumes from its own state",
              flush=True)
        return None
    if not handover or handover.get("trial_id") == trial_id:
        return None
    record = _read_record(job_dir, stored) or {}
    if any(entry.get("checkpoint") == checkpoint.path for entry in record.get("lineage", [])):
        return None
    with checkpoint.as_directory() as folder:
        for relative in handover["paths"]:
            source, target = Path(folder) / relative, job_dir / relative
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
            if source.is_dir():
                shutil.copytree(source, target)
            elif source.is_file():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)
    inherited = {"job": handover["job"], "trial_id": handover["trial_id"], "epoch": handover["epoch"],
                 "overrides_before": record.get("overrides"), "overrides": overrides, "checkpoint": checkpoint.path,
                 "time": time.time()}
    print(f"[raylaunch] exploit: continuing from job #{handover['job']}'s state at epoch {handover['epoch']} "
          f"(its {' '.join(handover['overrides'])}), with {' '.join(overrides)}", flush=True)
    return inherited


class _StateSnapshots:
    """PBT: the job's state as a Tune checkpoint every `interval` epochs (hard links: the task replaces its
    state files rather than rewriting them, so a link keeps the epoch's version)."""

    def __init__(self, job_dir: Path, interval: int, info: dict):
        self.job_dir, self.interval, self.info = job_dir, max(1, int(interval)), info

    def checkpoint(self, epoch: int, paths: list[str]):
        import shutil
        import tempfile

        from ray.tune import Checkpoint

        if epoch % self.interval or not paths:
            return None, None
        relative = []
        for path in paths:
            path = Path(path)
            path = path if path.is_absolute() else self.job_dir / path
            try:
                relative.append(str(path.resolve().relative_to(self.job_dir.resolve())))
            except ValueError:
                raise RuntimeError(f"report_epoch(state=...) names {path}, which is outside the job folder {self.job_dir}") from None
        folder = Path(tempfile.mkdtemp(prefix=".pbt-", dir=self.job_dir))
        for name in relative:
            source, target = self.job_dir / name, folder / name
            if source.is_dir():
                shutil.copytree(source, target, copy_function=_link_or_copy)
            elif source.is_file():
                target.parent.mkdir(parents=True, exist_ok=True)
                _link_or_copy(source, target)
        checkpoint = Checkpoint.from_directory(str(folder))
        checkpoint.set_metadata({HANDOVER: {**self.info, "epoch": epoch, "paths": relative}})
        return checkpoint, folder


def _link_or_copy(source, target) -> None:
    import os
    import shutil

    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _as_json(value: Any) -> Optional[str]:
    """One string, not a nested dict: Tune would print and log every nested key as its own column."""
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return None


def returned_value(result_metrics: dict) -> Any:
    """The task function's return value from a trial's final report (None when it did not finish)."""
    text = (result_metrics or {}).get(RETURN_KEY)
    return json.loads(text) if isinstance(text, str) else None


def _final_report(value: Any, held_back: dict, metric: Optional[str], lineage: Optional[list] = None) -> dict:
    """The trial's last report: the task's return value, the held-back last epoch if there was one, and
    the metric (from that epoch, else from the return value: a number, or a dict holding the metric)."""
    final = {DONE_KEY: True, RETURN_KEY: _as_json(value), **held_back}
    if lineage:
        final[LINEAGE_KEY] = _as_json([{key: entry.get(key) for key in ("job", "epoch", "overrides_before", "overrides")}
                                       for entry in lineage])
    if metric is not None and metric not in final:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            final[metric] = float(value)
        elif isinstance(value, dict) and isinstance(value.get(metric), (int, float)):
            final[metric] = float(value[metric])
    if "epoch" not in final and isinstance(value, dict) and isinstance(value.get("epochs"), int):
        final["epoch"] = value["epochs"]
    return final


def _wait_at_exit_for_the_task():
    """Tune ends a stopped trial's process gracefully, without waiting for its training thread, which is then
    unwinding from its last report: the process's exit waits (bounded) until the task function has returned,
    so what its `finally` blocks do (the job's last uploads) is done. The returned event marks that."""
    import atexit
    import threading

    unwound = threading.Event()
    atexit.register(unwound.wait, STOP_GRACE_S)
    return unwound


def run_trial(config: dict, plan: SweepPlan) -> None:
    """The Tune function trainable: one Hydra job."""
    from hydra.core.singleton import Singleton
    from hydra.core.utils import JobStatus, run_job, setup_globals
    from ray import tune

    from .trial_context import TrialInfo, enter_trial, leave_trial

    trial_id = tune.get_context().get_trial_id()
    num, overrides = plan.job_of(config, trial_id, tune.get_context().get_trial_name())
    Singleton.set_state(plan.singleton_state)
    setup_globals()
    hydra_context = hydra_context_on_this_node(plan.hydra_context)  # nodes may unpack the app elsewhere
    sweep_config, job_dir = compose(plan, overrides, num, trial_id, hydra_context)
    _redirect_output(job_dir / TRIAL_LOG)
    print(f"[raylaunch] trial {trial_id}, job #{num}: {' '.join(overrides)}", flush=True)
    stored = _TrialStore(plan, sweep_config) if plan.store_uri else None
    finished = _finished_before(job_dir, trial_id, overrides, stored)
    if finished is not None:
        print(f"[raylaunch] job #{num} had finished before the sweep was interrupted: its result is reported "
              f"again, the job is not rerun", flush=True)
        tune.report(finished)
        return
    inherited = _take_over(job_dir, trial_id, overrides, stored) if plan.checkpoint_interval else None
    attempt = _record_attempt(job_dir, trial_id, overrides, stored, inherited)
    # Relative paths in the job config mean the same as for a local Hydra job (Tune runs the trial in its own folder).
    runtime_cwd = str(sweep_config.hydra.runtime.cwd)
    if os.path.isdir(runtime_cwd):
        os.chdir(runtime_cwd)

    held_back: dict = {}
    snapshots = _StateSnapshots(job_dir, plan.checkpoint_interval, {"trial_id": trial_id, "job": num, "overrides": overrides}) \
        if plan.checkpoint_interval else None

    stopped_at: list[int] = []

    def report(epoch: int, metrics: dict, last: bool, state_paths: list) -> None:
        if last:
            # Sent with the job's result after its final work: a scheduler that ends trials at their last
            # epoch (ASHA at max_t) would otherwise stop it before the task returns.
            held_back.update(metrics, epoch=epoch)
            return
        checkpoint, folder = snapshots.checkpoint(epoch, state_paths) if snapshots else (None, None)
        try:
            tune.report({**metrics, "epoch": epoch}, checkpoint=checkpoint)
        except SystemExit:  # Tune stopped the trial (a scheduler's decision) while it waited on this report
            stopped_at.append(epoch)
            raise
        finally:
            if folder is not None:  # Tune copied it into the experiment's folder
                import shutil

                shutil.rmtree(folder, ignore_errors=True)

    enter_trial(TrialInfo(sweep_id=plan.sweep_id, gpu_ids=tuple(attempt["gpu_ids"]), inherited=inherited), report)
    unwound = _wait_at_exit_for_the_task()
    try:
        result = run_job(
            hydra_context=hydra_context,
            task_function=plan.task_function,
            config=sweep_config,
            job_dir_key="hydra.sweep.dir",
            job_subdir_key="hydra.sweep.subdir",
        )
    except SystemExit as exit_:
        if stopped_at:
            print(f"[raylaunch] job #{num} was stopped by the sweep's scheduler after epoch {stopped_at[0]}; its "
                  f"final work (uploads) is done", flush=True)
            raise
        # The task function's own error exit; Tune must see a failure.
        raise RuntimeError(f"job #{num} exited with status {exit_.code}; see {job_dir / TRIAL_LOG}") from None
    finally:
        leave_trial()
        unwound.set()
    if result.status == JobStatus.FAILED:
        _record_end(job_dir, stored)
        raise RuntimeError(f"job #{num} failed; see {job_dir / TRIAL_LOG}") from failed_job_error(result)

    lineage = (_read_record(job_dir, None) or {}).get("lineage")
    final = _final_report(result.return_value, held_back, plan.metric, lineage)
    _record_end(job_dir, stored, final)
    tune.report(final)
