"""`pull STORE/SWEEP --to DIR`: download the best trial's model, config and metrics (or the top k trials').

Every file is downloaded into a staging folder beside the target (outside it, on the same filesystem when
it can be), checked there against the checksum the store reports and the one recorded when it was
uploaded, and each model is loaded there with Keras' safe mode to prove it is usable. Only when every check
of every file passed are the files moved into the target (a rename each). A pull refused by any check
leaves the target as it was: nothing installed, nothing replaced, not even created; the staging folder is
deleted (--keep-staging keeps it for inspection and prints where). Object names that would land outside
the target are refused before anything is downloaded, and existing files are never replaced without
--overwrite.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Optional

from cluster.results import layout
from cluster.results.manifest import read_sweep
from cluster.results.pull_install import install, refuse_existing, staging_folder
from cluster.results.pull_listing import format_value
from cluster.results.pull_paths import safe_join, split_sweep_uri
from cluster.store import IntegrityError, StorageError, UnsafePath
from cluster.store.base import Store
from trainers.job_files import BEST_CHECKPOINT

MODEL_FILE = BEST_CHECKPOINT.name


class PullRefused(StorageError):
    """A check failed after downloading began; the target was left as it was."""


class Transfer(NamedTuple):
    key: str  # the object in the store
    path: Path  # where it goes in the target
    recorded: Optional[dict]  # its checksums as recorded at upload, or None
    local: str  # its name under the target, and under the staging folder


@dataclass(frozen=True)
class PullPlan:
    """What one pull downloads, every name checked before the first byte moves."""

    store: Store
    ranked: list[dict]  # the trials' records, best first
    root: Path  # the target folder (--to)
    top: int
    transfers: list[Transfer]


def local_name(top: int, trial: str, name: str) -> str:
    """A trial's file under the target: DIR/<name> with --top 1, DIR/<trial>/<name> otherwise."""
    return name if top == 1 else f"{trial}/{name}"


def pull_command(uri: str, to: str, top: int, overwrite: bool, with_tensorboard: bool, load_check: bool,
                 keep_staging: bool = False) -> int:
    store, sweep = split_sweep_uri(uri)
    ranked = _ranked_trials(store, sweep, top)
    root = Path(to)
    if os.path.lexists(root) and not root.is_dir():
        raise FileExistsError(f"--to {root} exists and is not a folder; choose another --to.")
    # Everything is planned and checked before the first byte moves; the target is not even created yet.
    plan = PullPlan(store, ranked, root, top, _plan_transfers(store, sweep, ranked, root, top, with_tensorboard))
    refuse_existing([transfer.path for transfer in plan.transfers], overwrite)
    descriptions = _stage_and_install(plan, to, overwrite, load_check, keep_staging)
    _print_pulled(plan, load_check, descriptions)
    _keep_out_of_submissions(root)
    return 0


def _ranked_trials(store: Store, sweep: str, top: int) -> list[dict]:
    """The records of the sweep's `top` best trials, best first."""
    info = read_sweep(store, sweep)
    ranked = info["ranked"][:top]
    if not ranked:
        raise StorageError(f"No trial of {store.uri}/{sweep} has uploaded a checkpoint yet.")
    if not info["finished"]:
        print(f"Note: {sweep} has no best.json yet (still running or interrupted); ranking its trials' own records.")
    return ranked


def _plan_transfers(store: Store, sweep: str, ranked: list[dict], root: Path, top: int,
                    with_tensorboard: bool) -> list[Transfer]:
    transfers = []
    for record in ranked:
        for key, relative, recorded in _trial_files(store, sweep, record, with_tensorboard):
            local = local_name(top, record["trial"], relative)
            transfers.append(Transfer(key, safe_join(root, local), recorded, local))
    return transfers


def _trial_files(store: Store, sweep: str, record: dict,
                 with_tensorboard: bool) -> list[tuple[str, str, Optional[dict]]]:
    """(object key, local relative name, checksums recorded at upload or None) for one trial."""
    trial = layout.check_name("trial", record["trial"])
    checkpoint = record["pointer"].get("checkpoint") or {}
    key = checkpoint.get("key", "")
    own_folder = layout.trial_key(sweep, trial, layout.CHECKPOINTS) + "/"
    if not key.startswith(own_folder) or any(p in ("", ".", "..") for p in key.split("/")):
        raise UnsafePath(f"Refusing checkpoint name {key!r} in {store.uri}/"
                         f"{layout.trial_key(sweep, trial, layout.POINTER)}: it is not inside {own_folder}.")
    files = [(key, MODEL_FILE, checkpoint), (layout.trial_key(sweep, trial, layout.POINTER), layout.POINTER, None),
             (layout.trial_key(sweep, trial, layout.CONFIG), layout.CONFIG, None)]
    if record["finished"]:
        files.append((layout.trial_key(sweep, trial, layout.METRICS), layout.METRICS, None))
    if with_tensorboard:
        prefix = layout.trial_key(sweep, trial, layout.TENSORBOARD) + "/"
        for info in store.list(prefix):
            files.append((info.key, layout.TENSORBOARD + "/" + info.key[len(prefix):], None))
    return files


def _stage_and_install(plan: PullPlan, to: str, overwrite: bool, load_check: bool, keep_staging: bool) -> dict:
    """Download and check everything outside the target; install only what passed every check. Returns what
    each trial's model loaded as (empty without `load_check`)."""
    staging = staging_folder(plan.root)
    kept = False
    try:
        try:
            for transfer in plan.transfers:
                part = safe_join(staging, transfer.local)
                part.parent.mkdir(parents=True, exist_ok=True)
                _download(plan.store, transfer.key, part, transfer.recorded)
            descriptions = _check_models(plan, staging) if load_check else {}
            # Checked again: a file may have appeared in the target during the download.
            refuse_existing([transfer.path for transfer in plan.transfers], overwrite)
            install([(safe_join(staging, t.local), safe_join(plan.root, t.local)) for t in plan.transfers])
        except (StorageError, ValueError, OSError) as error:
            kept = keep_staging
            where = f"; the files downloaded so far are kept in {staging} (--keep-staging)" if kept else ""
            raise PullRefused(f"pull refused, {to} left as it was{where}: {_one_line(error)}") from error
    finally:
        if not kept:
            shutil.rmtree(staging, ignore_errors=True)
    return descriptions


def _download(store: Store, key: str, target: Path, recorded: Optional[dict]) -> None:
    # The store checks the bytes against its own checksum for the object; what is left to check is that
    # the object is still the one uploaded.
    info = store.download_file(key, target)
    if recorded and (info.size, info.crc32c) != (recorded.get("size"), recorded.get("crc32c")):
        raise IntegrityError(
            f"{store.uri}/{key}: {info.size} bytes with crc32c {info.crc32c}, but {recorded.get('size')} bytes "
            f"with crc32c {recorded.get('crc32c')} were uploaded. The object is corrupt or was replaced; not using it."
        )


def _check_models(plan: PullPlan, staging: Path) -> dict[str, str]:
    """Load each staged model with Keras' safe mode: trial -> what it loaded as. ValueError names the model
    that does not load."""
    from trainers.export import check_loadable

    descriptions = {}
    for record in plan.ranked:
        model = safe_join(staging, local_name(plan.top, record["trial"], MODEL_FILE))
        try:
            descriptions[record["trial"]] = check_loadable(str(model))
        except ValueError as error:
            raise ValueError(
                f"trial {record['trial']}'s model {plan.store.uri}/{record['pointer']['checkpoint']['key']} does "
                f"not load with keras.models.load_model(safe_mode=True): {error.__cause__ or error}"
            ) from error
    return descriptions


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())


def _print_pulled(plan: PullPlan, load_check: bool, descriptions: dict) -> None:
    for rank, record in enumerate(plan.ranked, 1):
        folder = plan.root if plan.top == 1 else safe_join(plan.root, record["trial"])
        pointer = record["pointer"]
        line = (f"#{rank} trial {record['trial']}: {pointer['metric']} {format_value(pointer['value'])} "
                f"at epoch {pointer['epoch']} -> {folder}")
        if load_check:
            line += f"  ({descriptions[record['trial']]})"
        print(line)
        takes = _takes(folder / layout.METRICS)
        if takes:
            print(f"    takes {takes}")
    example = plan.root / local_name(plan.top, "<trial>", MODEL_FILE)
    print(f"Checksums verified for {len(plan.transfers)} file(s); "
          f"load a model with keras.models.load_model('{example}').")


def _takes(metrics_file: Path) -> Optional[str]:
    """What the pulled model takes, from its job's metrics.json ("inputs": shape, dtype, value range), so
    nobody feeds 0..255 pixels to a model trained on 0..1 values."""
    try:
        inputs = json.loads(metrics_file.read_text()).get("inputs") or {}
    except (OSError, ValueError):
        return None
    if not inputs.get("shape"):
        return None
    shape = "(" + ", ".join("None" if size is None else str(size) for size in inputs["shape"]) + ")"
    text = f"inputs of shape {shape}, {inputs.get('dtype') or 'any dtype'}"
    if inputs.get("range"):
        low, high = inputs["range"]
        text += f", values from {low:g} to {high:g} in training"
    return text


def _keep_out_of_submissions(root: Path) -> None:
    """Pulled into the checkout that submits sweeps: a `.rayignore` in the folder keeps every later submission
    (hydra.launcher.submit, ray job submit --working-dir .) from shipping the models back to the cluster."""
    from cluster.submission.submit import project_dir

    checkout = project_dir()
    if not root.resolve().is_relative_to(checkout) or root.resolve() == checkout or (root / ".rayignore").exists():
        return
    (root / ".rayignore").write_text(
        "# Written by `launch.py pull`: models pulled here are not shipped with submitted sweeps.\n*\n")
    print(f"{root} is inside the checkout {checkout}: its .rayignore keeps submitted sweeps from shipping it.")
