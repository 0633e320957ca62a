"""Resume a sweep from its store on any machine: `<app> resume STORE/SWEEP [--dir DIR] [OVERRIDE ...]`.

The sweep's driver recorded its command line in the store (`<STORE>/<SWEEP>/driver/driver.json`,
driver_state.py). This runs that command again, with `hydra.sweep.dir` set to a folder here (DIR, by default
the sweep's folder as it was below its working directory, under the current one) and OVERRIDEs added, e.g.
`hydra.launcher.submit=http://127.0.0.1:8265` to run it on another cluster (an override replaces the
recorded one of the same key). The driver then finds no sweep in that folder, restores the sweep's state from
the store and resumes it: finished trials are kept, unfinished ones continue from their last stored state,
the searcher and scheduler where they were. Only the same sweep resumes: an override that changes its jobs
makes another sweep, which the store refuses under the same name.

An app offers it as a subcommand, then runs as if started with the arguments returned:

    if sys.argv[1:2] == ["resume"]:
        sys.argv[1:] = cluster.launcher.resume.main(sys.argv[2:])
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Optional, Sequence

# Replaced by the resumed run's own (the folder here; the submission, if asked for again).
REPLACED = ("hydra.sweep.dir", "hydra.launcher.submit")


class ResumeError(Exception):
    """The sweep cannot be resumed from there (nothing ran)."""


def _key(argument: str) -> Optional[str]:
    """The config key an override sets (`+a.b=1`, `~a.b` -> a.b); None for a flag such as -m."""
    if argument.startswith("-"):
        return None
    return argument.lstrip("+~").split("=", 1)[0] or None


def split_sweep_uri(uri: str) -> tuple[str, str]:
    """`gs://BUCKET/PREFIX/SWEEP` (or a folder `STORE/SWEEP`) -> (the store's URI, the sweep's name)."""
    from cluster.store import StorageError, StorageURI, parse_uri
    from cluster.store.layout import check_name

    try:
        parsed = parse_uri(uri)
    except StorageError as error:
        raise ResumeError(str(error)) from None
    parent, _, name = parsed.prefix.rstrip("/").rpartition("/")
    if not name:
        raise ResumeError(f"{uri} names no sweep: give the sweep's folder in its store, e.g. gs://BUCKET/PREFIX/SWEEP.")
    try:
        sweep = check_name("sweep", name)
    except ValueError as error:
        raise ResumeError(f"{uri}: {error}") from None
    store = StorageURI(parsed.scheme, parsed.bucket, parent if parsed.scheme == "gs" else parent or "/")
    return str(store), sweep


def read_record(store_uri: str, sweep: str) -> dict:
    """The sweep's driver record in the store; ResumeError when there is none."""
    from cluster.launcher.driver_state import RECORD
    from cluster.store import StorageError, open_store
    from cluster.store.layout import driver_key
    from cluster.store.pointers import read_json

    try:
        record, _ = read_json(open_store(store_uri), driver_key(sweep, RECORD))
    except StorageError as error:
        raise ResumeError(f"Storage error: {error}") from None
    if record is None:
        raise ResumeError(f"{store_uri}/{sweep} holds no sweep driver state ({driver_key(sweep, RECORD)} is missing): "
                          f"it is not a sweep's folder in that store, or its sweep never started on Ray Tune, or it "
                          f"ran with a version that did not keep it there. Rerun its command with "
                          f"hydra.sweep.dir=<its folder> instead.")
    if not isinstance(record.get("argv"), list):
        raise ResumeError(f"{store_uri}/{driver_key(sweep, RECORD)} records no command line.")
    return record


def _check_store(record: dict, store_uri: str) -> None:
    """The recorded command names its store as typed: a relative folder must resolve to the same store here."""
    import os

    from cluster.store import StorageError, parse_uri

    given = record.get("storage")
    if not given or "://" in given or os.path.isabs(given):
        return
    try:
        here = str(parse_uri(given))
    except StorageError:
        return
    if here != store_uri:
        raise ResumeError(f"The sweep's command names its store as the folder {given!r}, relative to where it ran "
                          f"({record.get('cwd')}); from here that is {here}, not {store_uri}. Run the resume from "
                          f"{record.get('cwd')}.")


def resumed_argv(record: dict, sweep: str, folder: Optional[str], overrides: Sequence[str]) -> list[str]:
    """The recorded command line, with the folder here and the overrides given."""
    from cluster.store.layout import sweep_name_of

    folder = folder or record.get("resume_folder") or sweep
    if sweep_name_of(folder) != sweep:
        raise ResumeError(f"--dir {folder} would name the sweep {sweep_name_of(folder)!r} in the store, not {sweep!r}: "
                          f"a sweep's name is its folder's last part (or <date>/<time>); end the folder with {sweep}.")
    replaced = {*REPLACED, *(_key(argument) for argument in overrides)} - {None}
    kept = [argument for argument in record["argv"] if _key(argument) not in replaced]
    return [*kept, *overrides, f"hydra.sweep.dir={folder}"]


def main(arguments: Sequence[str], prog: Optional[str] = None) -> list[str]:
    """The arguments the app runs with to resume the sweep named in `arguments` (prints what it runs). Exits 2
    with one line when the sweep cannot be resumed from there; --help exits 0."""
    prog = prog or f"python {Path(sys.argv[0]).name} resume"
    parser = argparse.ArgumentParser(
        prog=prog, description="Resume a sweep from its store, on this machine or (with hydra.launcher.submit=URL) "
        "on a Ray cluster: its recorded command runs again with its driver state restored from the store.")
    parser.add_argument("uri", help="the sweep in its store, e.g. gs://BUCKET/PREFIX/SWEEP (or STORE_FOLDER/SWEEP)")
    parser.add_argument("--dir", help="the sweep's folder here (default: the folder it had below its working "
                        "directory, under this one); its last part must be the sweep's name")
    parser.add_argument("overrides", nargs="*", help="added to the recorded command, replacing the same keys, e.g. "
                        "hydra.launcher.submit=http://127.0.0.1:8265")
    options = parser.parse_intermixed_args(list(arguments))
    try:
        store_uri, sweep = split_sweep_uri(options.uri)
        record = read_record(store_uri, sweep)
        _check_store(record, store_uri)
        argv = resumed_argv(record, sweep, options.dir, options.overrides)
    except ResumeError as error:
        print(error, file=sys.stderr)
        sys.exit(2)
    app = f"python {record.get('script') or Path(sys.argv[0]).name}"
    print(f"Resuming sweep {sweep} from {store_uri}/{sweep} (last run in {record.get('sweep_dir')} on "
          f"{record.get('host')}): {app} {shlex.join(argv)}", flush=True)
    return argv
