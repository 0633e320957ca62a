"""A local mirror of the TensorBoard event files a sweep's trials upload to a bucket, kept fresh while
TensorBoard reads it: `python launch.py tensorboard gs://BUCKET/PREFIX/SWEEP`.

Trials on any node upload `trials/<trial>/tensorboard/...` every `storage.sync_seconds`; the mirror
lists them through google-cloud-storage and lays them out as a sweep folder is (`<trial>/tensorboard/...`,
or `<sweep>/<trial>/tensorboard/...` for a prefix holding several sweeps), so TensorBoard shows one run
per trial and the HParams dashboard, whichever node ran it. (TensorFlow's own gs:// reader would also
need credentials of its own and cannot be pointed at another endpoint.)

Event files only grow, so a changed object is appended to its local copy (its new tail): TensorBoard
keeps reading the file it has open. A file that did not just grow (rewritten from the start) is replaced.

    mirror = EventMirror(open_store("gs://b/exp/2026-12-01_10-00-00"), Path("~/.cache/..."))
    mirror.sync()        # one pass; returns the number of files changed
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Optional

from cluster.store import StorageError, Store
from cluster.store.layout import TRIALS
from trainers.job_files import TENSORBOARD

log = logging.getLogger(__name__)


def local_name(key: str) -> Optional[str]:
    """Where an object goes in the mirror, or None for anything but a trial's event files:
    `[<sweep>/]trials/<trial>/tensorboard/<rest>` -> `[<sweep>/]<trial>/tensorboard/<rest>`."""
    parts = key.split("/")
    for index in range(len(parts) - 3):
        if parts[index] == TRIALS and parts[index + 2] == TENSORBOARD:
            if any(part in ("", ".", "..") for part in parts):
                return None
            return "/".join(parts[:index] + parts[index + 1:])
    return None


def default_mirror_dir(uri: str) -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "raylaunch" / "tensorboard" / uri.split("://", 1)[-1].strip("/")


class EventMirror:
    def __init__(self, store: Store, mirror_dir: Path):
        self.store, self.mirror_dir = store, Path(mirror_dir)
        self.mirror_dir.mkdir(parents=True, exist_ok=True)
        self._generations: dict[str, int] = {}

    def sync(self) -> int:
        """Bring every changed event file over; returns how many changed. Raises StorageError when the
        store cannot be listed (the caller keeps the mirror as it is and tries again later)."""
        changed = 0
        for info in self.store.list(""):
            name = local_name(info.key)
            if name is None or self._generations.get(info.key) == info.generation:
                continue
            try:
                self._bring(info.key, self.mirror_dir / name)
            except (StorageError, OSError) as error:
                log.warning("Event file %s/%s not mirrored yet: %s", self.store.uri, info.key, error)
                continue
            self._generations[info.key] = info.generation
            changed += 1
        return changed

    def _bring(self, key: str, target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, staging = tempfile.mkstemp(dir=target.parent, prefix=".mirror-")
        os.close(handle)
        try:
            self.store.download_file(key, staging)
            new_size = os.path.getsize(staging)
            old_size = target.stat().st_size if target.exists() else 0
            if 0 < old_size <= new_size and _same_prefix(target, staging, old_size):
                with open(staging, "rb") as source, open(target, "ab") as destination:
                    source.seek(old_size)
                    shutil.copyfileobj(source, destination)
            else:
                os.replace(staging, target)
        finally:
            Path(staging).unlink(missing_ok=True)


def _same_prefix(old: Path, new: Path, size: int, block: int = 1 << 20) -> bool:
    with open(old, "rb") as a, open(new, "rb") as b:
        remaining = size
        while remaining > 0:
            chunk = min(block, remaining)
            if a.read(chunk) != b.read(chunk):
                return False
            remaining -= chunk
    return True
