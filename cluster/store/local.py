"""A local folder laid out like a bucket: the default store, so sweeps and `pull` work offline.

Writes go to a hidden temporary file that is renamed into place, so a reader never sees a partial
object. An object's "generation" is its file's modification time in nanoseconds, kept strictly
increasing on every replacement; conditional writes compare it under a folder-wide lock file.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

from cluster.store.base import ObjectInfo, Store, check_key, checksum_bytes, checksum_file, checksum_stream
from cluster.store.errors import IntegrityError, PreconditionFailed, StorageError
from cluster.store.uri import StorageURI

_HIDDEN = ".raylaunch-"


class LocalStore(Store):
    def __init__(self, uri: StorageURI):
        self.uri = uri
        self.root = Path(uri.prefix)

    # ------------------------------------------------------------ helpers
    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    @contextmanager
    def _lock(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / f"{_HIDDEN}lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _info(self, key: str, path: Path, sums=None) -> ObjectInfo:
        sums = sums or checksum_file(path)
        return ObjectInfo(key, sums.size, sums.crc32c, sums.md5, path.stat().st_mtime_ns)

    def _commit(self, key: str, write, expected_sums, if_generation_match: Optional[int]) -> ObjectInfo:
        """`write(tmp_path)` fills a temporary file beside the target; it is verified, then renamed in."""
        target = self._path(key)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StorageError(f"Cannot create folder {target.parent} in store {self.uri}: {error}") from error
        tmp = target.with_name(f"{_HIDDEN}{uuid.uuid4().hex}.tmp")
        try:
            write(tmp)
            written = checksum_file(tmp)
            if (written.size, written.crc32c) != (expected_sums.size, expected_sums.crc32c):
                raise IntegrityError(f"Writing {key!r} to {self.uri}: the written copy fails its crc32c check.")
            with self._lock():
                current = target.stat().st_mtime_ns if target.exists() else 0
                if if_generation_match is not None and current != if_generation_match:
                    raise PreconditionFailed(
                        f"{self.uri}/{key} is at generation {current}, not {if_generation_match}: "
                        "someone else replaced it."
                    )
                # A replacement must get a newer generation even within the clock's resolution.
                stamp = max(time.time_ns(), current + 1)
                os.utime(tmp, ns=(stamp, stamp))
                # Read under the lock: stat-ing the target afterwards could report a later writer's generation.
                generation = os.stat(tmp).st_mtime_ns
                os.replace(tmp, target)
            return ObjectInfo(key, written.size, written.crc32c, written.md5, generation)
        except OSError as error:
            raise StorageError(f"Cannot write {key!r} to {self.uri}: {error}") from error
        finally:
            tmp.unlink(missing_ok=True)

    # ------------------------------------------------------------ Store
    def upload_file(self, path, key, *, if_generation_match=None) -> ObjectInfo:
        source = checksum_file(path)
        return self._commit(key, lambda tmp: shutil.copyfile(path, tmp), source, if_generation_match)

    def write_bytes(self, key, data, *, if_generation_match=None) -> ObjectInfo:
        return self._commit(key, lambda tmp: tmp.write_bytes(data), checksum_bytes(data), if_generation_match)

    def read_bytes(self, key):
        path = self._path(key)
        try:
            # One open file: its bytes and its generation belong to the same object even while a writer
            # renames a newer one into place (reading, then stat-ing the path, could pair old bytes with the
            # new generation, and a compare-and-swap on that generation would overwrite what it never read).
            with open(path, "rb") as handle:
                generation = os.fstat(handle.fileno()).st_mtime_ns
                data = handle.read()
        except FileNotFoundError:
            return None
        except OSError as error:
            raise StorageError(f"Cannot read {key!r} from {self.uri}: {error}") from error
        sums = checksum_bytes(data)
        return data, ObjectInfo(key, sums.size, sums.crc32c, sums.md5, generation)

    def download_file(self, key, path) -> ObjectInfo:
        source = self._path(key)
        # One open file, as in read_bytes: checksumming the path and then copying it could check one object
        # and copy its successor, a false integrity error (or a true copy under the wrong generation).
        try:
            handle = open(source, "rb")
        except (FileNotFoundError, IsADirectoryError):
            raise StorageError(f"Object {key!r} does not exist in {self.uri}.") from None
        with handle, open(path, "wb") as copy:
            generation = os.fstat(handle.fileno()).st_mtime_ns
            read = checksum_stream(handle, copy_to=copy)
        copied = checksum_file(path)
        if copied.crc32c != read.crc32c:
            raise IntegrityError(f"Copy of {self.uri}/{key} fails its crc32c check ({copied.crc32c} != {read.crc32c}).")
        return ObjectInfo(key, read.size, read.crc32c, read.md5, generation)

    def stat(self, key) -> Optional[ObjectInfo]:
        path = self._path(key)
        return self._info(key, path) if path.is_file() else None

    def list(self, prefix=""):
        infos = []
        if not self.root.is_dir():
            return infos
        for folder, dirs, files in os.walk(self.root):
            dirs.sort()
            for name in sorted(files):
                if name.startswith(_HIDDEN):
                    continue
                key = os.path.relpath(os.path.join(folder, name), self.root).replace(os.sep, "/")
                if key.startswith(prefix):
                    # Listing does not read every byte: checksums come from stat() or a transfer.
                    stat = os.stat(os.path.join(folder, name))
                    infos.append(ObjectInfo(key, stat.st_size, None, None, stat.st_mtime_ns))
        return sorted(infos, key=lambda info: info.key)

    def list_dirs(self, prefix=""):
        folder = self.root / prefix if prefix else self.root
        if not folder.is_dir():
            return []
        return sorted(entry.name for entry in folder.iterdir() if entry.is_dir() and not entry.name.startswith(_HIDDEN))

    def delete(self, key, *, if_generation_match=None) -> None:
        path = self._path(key)
        with self._lock():
            current = path.stat().st_mtime_ns if path.exists() else 0
            if if_generation_match is not None and current != if_generation_match:
                raise PreconditionFailed(f"{self.uri}/{key} is at generation {current}, not {if_generation_match}.")
            path.unlink(missing_ok=True)

    def check_writable(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StorageError(f"Storage folder {self.root} cannot be created: {error}. "
                               "Set storage.uri to a writable folder.") from error
        super().check_writable()
