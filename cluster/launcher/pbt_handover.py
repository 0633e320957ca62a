"""Population-based training: a trial's job state snapshot as its Tune checkpoint every few epochs
(StateSnapshots), and a trial that PBT restarts from another trial's checkpoint given that trial's state files
in its own job folder before the task runs (take_over), so the task resumes from them as after any restart."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

from cluster.launcher.trial_record import TrialStore, read_record

# Inside a PBT checkpoint: who took it (trial, job, epoch, overrides) and which paths of the job folder it holds.
HANDOVER = "handover"


def take_over(job_dir: Path, trial_id: str, overrides: list[str], stored: Optional[TrialStore]) -> Optional[dict]:
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
    record = read_record(job_dir, stored) or {}
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


class StateSnapshots:
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
                raise RuntimeError(f"report_epoch(state=...) names {path}, which is outside the job folder "
                                   f"{self.job_dir}") from None
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
