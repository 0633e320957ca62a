"""A pull's files moved from its staging folder into the target all at once, or not at all: the staging folder
is made outside the target (on its filesystem when it can be, so each move is a rename), and a move that fails
undoes the ones before it."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path
from uuid import uuid4

from cluster.store import StorageError


def staging_folder(root: Path) -> Path:
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


def refuse_existing(paths: list[Path], overwrite: bool) -> None:
    """Refuse files already in the target (unless --overwrite) and folders in the way of a file."""
    folders = [str(path) for path in paths if path.is_dir()]
    if folders:
        raise FileExistsError(f"{folders[0]} is a folder where a downloaded file would go; "
                              f"move it or choose another --to.")
    existing = [str(path) for path in paths if os.path.lexists(path)]
    if existing and not overwrite:
        raise FileExistsError(f"{len(existing)} file(s) already exist, e.g. {existing[0]}; "
                              f"pass --overwrite to replace them or choose another --to.")


def move(source: Path, target: Path) -> None:
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


def install(moves: list[tuple[Path, Path]]) -> None:
    """Move every staged file to its place, creating folders as needed. If one move fails, undo the others
    (files moved back to staging, replaced files restored, created folders removed) and raise."""
    created: list[Path] = []
    replaced: list[tuple[Path, Path]] = []  # (kept aside, original place)
    installed: list[tuple[Path, Path]] = []
    try:
        for staged, path in moves:
            _make_folders(path.parent, created)
            if os.path.lexists(path):  # only with --overwrite: set aside until everything is in place
                aside = path.with_name(f".{path.name}.pull-old-{uuid4().hex[:8]}")
                os.replace(path, aside)
                replaced.append((aside, path))
            move(staged, path)
            installed.append((staged, path))
    except BaseException:
        _undo(installed, replaced, created)
        raise
    for aside, _ in replaced:
        aside.unlink(missing_ok=True)


def _make_folders(folder: Path, created: list[Path]) -> None:
    """Create `folder` and its missing parents, appending each to `created` as soon as it exists."""
    missing = []
    while not folder.is_dir():
        missing.append(folder)
        folder = folder.parent
    for folder in reversed(missing):
        folder.mkdir()
        created.append(folder)


def _undo(installed: list[tuple[Path, Path]], replaced: list[tuple[Path, Path]], created: list[Path]) -> None:
    """Put back what `install` did so far, newest first; each step is best effort."""
    for staged, path in reversed(installed):
        try:
            move(path, staged)
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
