"""`python launch.py pull`: list the sweeps in a store, download the best trial's model (or the top k).

    python launch.py pull --list gs://my-bucket/experiments              # sweeps, their trials, best metric
    python launch.py pull gs://my-bucket/experiments/SWEEP --to ./best   # best model + config + metrics
    python launch.py pull gs://my-bucket/experiments/SWEEP --top 3 --to ./top

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

import argparse
import errno
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Optional
from uuid import uuid4

from trainers.job_files import BEST_CHECKPOINT

from cluster.results import layout
from cluster.results.manifest import list_sweeps, read_sweep
from cluster.store import IntegrityError, StorageError, UnsafePath, open_store, parse_uri
from cluster.store.base import Store

MODEL_FILE = BEST_CHECKPOINT.name

EPILOG = """\
Files of one trial: best.keras (its best checkpoint), resolved_config.yaml, metrics.json (once the trial
finished), best.json (metric value, epoch, checksums), and with --tensorboard its event files. --top 1
(default) puts them in DIR; --top K puts each trial's in DIR/<trial>/. A sweep still running (no best.json
at its top yet) is ranked from its trials' own best.json records.
Everything is downloaded and checked (checksums, the safe-mode load) in a staging folder beside DIR, outside
it, and moved into DIR only once all of it passed: a refused pull leaves DIR exactly as it was.
Exit status: 0 done, 1 a download or check failed (DIR left as it was), 2 bad arguments."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python launch.py pull",
        description="List sweeps in a store (local folder or gs://bucket/prefix) or download a sweep's best model(s).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("uri", help="with --list: the store (storage.uri) or one sweep in it; otherwise STORE/SWEEP")
    parser.add_argument("--list", action="store_true", help="list sweeps, their trials and best metric values")
    parser.add_argument("--to", metavar="DIR",
                        help="target folder (created if missing, once every check passed); required unless --list")
    parser.add_argument("--top", type=int, default=1, metavar="K", help="download the K best trials (default 1)")
    parser.add_argument("--overwrite", action="store_true", help="replace files that already exist in DIR")
    parser.add_argument("--tensorboard", action="store_true", help="also download the trials' TensorBoard event files")
    parser.add_argument("--no-load-check", dest="load_check", action="store_false",
                        help="skip loading the model with keras.models.load_model(safe_mode=True)")
    parser.add_argument("--keep-staging", action="store_true",
                        help="when a check refuses the pull, keep the files downloaded so far in the staging folder "
                             "(outside DIR: beside it, or in the system's temporary folder if nothing beside it is "
                             "writable; its path is printed) instead of deleting it")
    return parser


# ---------------------------------------------------------------- helpers
def split_sweep_uri(uri: str) -> tuple[Store, str]:
    """STORE/SWEEP -> (store, sweep)."""
    parsed = parse_uri(uri)
    parent, _, sweep = parsed.prefix.rstrip("/").rpartition("/")
    if not sweep or (parsed.scheme == "gs" and not parsed.prefix):
        raise StorageError(f"{uri!r} names no sweep: expected STORE/SWEEP, e.g. gs://my-bucket/experiments/2026-01-31_12-00-00 "
                           f"(`pull --list STORE` shows the sweeps).")
    layout.check_name("sweep", sweep)
    store_uri = type(parsed)(parsed.scheme, parsed.bucket, parent if parsed.scheme == "gs" else (parent or "/"))
    return open_store(store_uri), sweep


def safe_join(root: Path, relative: str) -> Path:
    """`root/relative`, refusing names that are absolute or climb out of `root` (also through symlinks)."""
    parts = relative.split("/")
    if (not relative or relative.startswith("/") or "\\" in relative or "\x00" in relative
            or any(part in ("", ".", "..") for part in parts)):
        raise UnsafePath(f"Refusing object name {relative!r}: it would land outside {root}.")
    target = root.joinpath(*parts)
    resolved_root = root.resolve()
    if not target.resolve().is_relative_to(resolved_root):
        raise UnsafePath(f"Refusing object name {relative!r}: {target} resolves outside {root}.")
    return target


def _fmt(value) -> str:
    return f"{value:.4f}" if isinstance(value, float) else ("-" if value is None else str(value))


# ---------------------------------------------------------------- list
def list_command(uri: str) -> int:
    store = open_store(uri)
    sweeps = list_sweeps(store)
    single = None
    if not sweeps:
        # Maybe the URI is one sweep.
        try:
            store, single = split_sweep_uri(uri)
            sweeps = [single] if list_sweeps_in(store, single) else []
        except StorageError:
            sweeps = []
    if not sweeps:
        print(f"No sweeps in {uri}.")
        return 0
    for sweep in sweeps:
        info = read_sweep(store, sweep)
        best = info["best"] or (info["ranked"][0]["pointer"] if info["ranked"] else None)
        state = "finished" if info["finished"] else "running or interrupted (no best.json yet)"
        head = f"{store.uri}/{sweep}  [{state}]"
        if best:
            head += f"  best: trial {best['trial']}, {best['metric']} {_fmt(best['value'])} ({best['mode']})"
        print(head)
        rows = [("", "trial", "value", "epoch", "finished", "checkpoint")]
        top = info["ranked"][0]["trial"] if info["ranked"] else None
        for record in info["records"]:
            pointer = record["pointer"] or {}
            checkpoint = (pointer.get("checkpoint") or {}).get("key", "-").rpartition(f"/{record['trial']}/")[2]
            rows.append(("*" if record["trial"] == top else "", record["trial"], _fmt(pointer.get("value")),
                         _fmt(pointer.get("epoch")), "yes" if record["finished"] else "no", checkpoint))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            print("  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    return 0


def list_sweeps_in(store: Store, sweep: str) -> bool:
    return bool(store.list_dirs(f"{sweep}/{layout.TRIALS}/"))


# ---------------------------------------------------------------- download
def _plan(store: Store, sweep: str, record: dict, with_tensorboard: bool) -> list[tuple[str, str, Optional[dict]]]:
    """(object key, local relative name, checksums recorded at upload or None) for one trial."""
    trial = layout.check_name("trial", record["trial"])
    pointer = record["pointer"]
    checkpoint = pointer.get("checkpoint") or {}
    key = checkpoint.get("key", "")
    own_folder = layout.trial_key(sweep, trial, layout.CHECKPOINTS) + "/"
    if not key.startswith(own_folder) or any(p in ("", ".", "..") for p in key.split("/")):
        raise UnsafePath(f"Refusing checkpoint name {key!r} in {store.uri}/{layout.trial_key(sweep, trial, layout.POINTER)}: "
                         f"it is not inside {own_folder}.")
    plan = [(key, MODEL_FILE, checkpoint), (layout.trial_key(sweep, trial, layout.POINTER), layout.POINTER, None),
            (layout.trial_key(sweep, trial, layout.CONFIG), layout.CONFIG, None)]
    if record["finished"]:
        plan.append((layout.trial_key(sweep, trial, layout.METRICS), layout.METRICS, None))
    if with_tensorboard:
        prefix = layout.trial_key(sweep, trial, layout.TENSORBOARD) + "/"
        for info in store.list(prefix):
            plan.append((info.key, layout.TENSORBOARD + "/" + info.key[len(prefix):], None))
    return plan


def _download(store: Store, key: str, target: Path, recorded: Optional[dict]) -> None:
    # The store checks the bytes against its own checksum for the object; what is left to check is that
    # the object is still the one uploaded.
    info = store.download_file(key, target)
    if recorded and (info.size, info.crc32c) != (recorded.get("size"), recorded.get("crc32c")):
        raise IntegrityError(
            f"{store.uri}/{key}: {info.size} bytes with crc32c {info.crc32c}, but {recorded.get('size')} bytes "
            f"with crc32c {recorded.get('crc32c')} were uploaded. The object is corrupt or was replaced; not using it."
        )


class PullRefused(StorageError):
    """A check failed after downloading began; the target was left as it was."""


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())


def _staging_folder(root: Path) -> Path:
    """A new empty folder beside `root` (in its nearest existing ancestor, so the final moves are renames on
    one filesystem), else in the system's temporary folder; never inside `root`."""
    resolved = root.resolve()
    base = resolved.parent
    while not base.is_dir() and base != base.parent:
        base = base.parent
    try:
        staging = Path(tempfile.mkdtemp(dir=base, prefix=f".{resolved.name or 'pull'}.pull-staging-"))
    except OSError:
        staging = Path(tempfile.mkdtemp(prefix="raylaunch-pull-staging-"))
    if staging.resolve().is_relative_to(resolved):
        shutil.rmtree(staging, ignore_errors=True)
        raise StorageError(f"No folder outside {root} to stage the download in ({base} is not writable); "
                           f"choose another --to.")
    return staging


def _move(source: Path, target: Path) -> None:
    """Rename `source` to `target`; across filesystems, copy beside `target` and rename there."""
    try:
        os.replace(source, target)
        return
    except OSError as error:
        if error.errno != errno.EXDEV:
            raise
    part = target.with_name(f".{target.name}.pull-part-{uuid4().hex[:8]}")
    try:
        shutil.copyfile(source, part)
        os.replace(part, target)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    source.unlink()


def _install(moves: list[tuple[Path, Path]]) -> None:
    """Move every staged file to its place, creating folders as needed. If one move fails, undo the others
    (files moved back to staging, replaced files restored, created folders removed) and raise."""
    created: list[Path] = []
    replaced: list[tuple[Path, Path]] = []  # (kept aside, original place)
    installed: list[tuple[Path, Path]] = []
    try:
        for staged, path in moves:
            missing = []
            folder = path.parent
            while not folder.is_dir():
                missing.append(folder)
                folder = folder.parent
            for folder in reversed(missing):
                folder.mkdir()
                created.append(folder)
            if os.path.lexists(path):  # only with --overwrite: set aside until everything is in place
                aside = path.with_name(f".{path.name}.pull-old-{uuid4().hex[:8]}")
                os.replace(path, aside)
                replaced.append((aside, path))
            _move(staged, path)
            installed.append((staged, path))
    except BaseException:
        for staged, path in reversed(installed):
            try:
                _move(path, staged)
            except OSError:
                path.unlink(missing_ok=True)
        for aside, path in reversed(replaced):
            try:
                os.replace(aside, path)
            except OSError:
                pass
        for folder in reversed(created):
            try:
                folder.rmdir()
            except OSError:
                pass
        raise
    for aside, _ in replaced:
        aside.unlink(missing_ok=True)


def _existing(paths: list[Path], overwrite: bool) -> None:
    """Refuse files already in the target (unless --overwrite) and folders in the way of a file."""
    folders = [str(path) for path in paths if path.is_dir()]
    if folders:
        raise FileExistsError(f"{folders[0]} is a folder where a downloaded file would go; move it or choose another --to.")
    existing = [str(path) for path in paths if os.path.lexists(path)]
    if existing and not overwrite:
        raise FileExistsError(
            f"{len(existing)} file(s) already exist, e.g. {existing[0]}; pass --overwrite to replace them or choose another --to."
        )


def pull_command(uri: str, to: str, top: int, overwrite: bool, with_tensorboard: bool, load_check: bool,
                 keep_staging: bool = False) -> int:
    store, sweep = split_sweep_uri(uri)
    info = read_sweep(store, sweep)
    ranked = info["ranked"][:top]
    if not ranked:
        raise StorageError(f"No trial of {store.uri}/{sweep} has uploaded a checkpoint yet.")
    if not info["finished"]:
        print(f"Note: {sweep} has no best.json yet (still running or interrupted); ranking its trials' own records.")
    root = Path(to)
    if os.path.lexists(root) and not root.is_dir():
        raise FileExistsError(f"--to {root} exists and is not a folder; choose another --to.")

    # Everything is planned and checked before the first byte moves; the target is not even created yet.
    jobs: list[tuple[str, Path, Optional[dict], str]] = []
    for record in ranked:
        for key, relative, recorded in _plan(store, sweep, record, with_tensorboard):
            local = relative if top == 1 else f"{record['trial']}/{relative}"
            jobs.append((key, safe_join(root, local), recorded, local))
    _existing([path for _, path, _, _ in jobs], overwrite)

    # Download and check everything outside the target; install only what passed every check.
    staging = _staging_folder(root)
    kept = False
    descriptions: dict[str, str] = {}
    try:
        try:
            for key, _, recorded, local in jobs:
                part = safe_join(staging, local)
                part.parent.mkdir(parents=True, exist_ok=True)
                _download(store, key, part, recorded)
            if load_check:
                from trainers.export import check_loadable

                for record in ranked:
                    model = safe_join(staging, MODEL_FILE if top == 1 else f"{record['trial']}/{MODEL_FILE}")
                    try:
                        descriptions[record["trial"]] = check_loadable(str(model))
                    except ValueError as error:
                        raise ValueError(
                            f"trial {record['trial']}'s model {store.uri}/{record['pointer']['checkpoint']['key']} does "
                            f"not load with keras.models.load_model(safe_mode=True): {error.__cause__ or error}"
                        ) from error
            # Checked again: a file may have appeared in the target during the download.
            _existing([path for _, path, _, _ in jobs], overwrite)
            _install([(safe_join(staging, local), safe_join(root, local)) for _, _, _, local in jobs])
        except (StorageError, ValueError, OSError) as error:
            kept = keep_staging
            where = f"; the files downloaded so far are kept in {staging} (--keep-staging)" if kept else ""
            raise PullRefused(f"pull refused, {to} left as it was{where}: {_one_line(error)}") from error
    finally:
        if not kept:
            shutil.rmtree(staging, ignore_errors=True)

    for rank, record in enumerate(ranked, 1):
        folder = root if top == 1 else safe_join(root, record["trial"])
        pointer = record["pointer"]
        line = (f"#{rank} trial {record['trial']}: {pointer['metric']} {_fmt(pointer['value'])} at epoch {pointer['epoch']} "
                f"-> {folder}")
        if load_check:
            line += f"  ({descriptions[record['trial']]})"
        print(line)
        takes = _takes(folder / layout.METRICS)
        if takes:
            print(f"    takes {takes}")
    print(f"Checksums verified for {len(jobs)} file(s); load a model with keras.models.load_model('{root / (MODEL_FILE if top == 1 else '<trial>/' + MODEL_FILE)}').")
    _keep_out_of_submissions(root)
    return 0


def _keep_out_of_submissions(root: Path) -> None:
    """Pulled into the checkout that submits sweeps: a `.rayignore` in the folder keeps every later submission
    (hydra.launcher.submit, ray job submit --working-dir .) from shipping the models back to the cluster."""
    from cluster.submission.submit import project_dir

    checkout = project_dir()
    if not root.resolve().is_relative_to(checkout) or root.resolve() == checkout or (root / ".rayignore").exists():
        return
    (root / ".rayignore").write_text("# Written by `launch.py pull`: models pulled here are not shipped with submitted sweeps.\n*\n")
    print(f"{root} is inside the checkout {checkout}: its .rayignore keeps submitted sweeps from shipping it.")


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


def main(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.top < 1:
        parser.error(f"--top must be at least 1, received {args.top}")
    if not args.list and not args.to:
        parser.error("--to DIR is required to download (or pass --list to list sweeps)")
    try:
        if args.list:
            return list_command(args.uri)
        return pull_command(args.uri, args.to, args.top, args.overwrite, args.tensorboard, args.load_check,
                            args.keep_staging)
    except (StorageError, FileExistsError, ValueError) as error:
        print(f"pull: error: {error}", file=sys.stderr)
        return 1
