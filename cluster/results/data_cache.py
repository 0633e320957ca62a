"""A node's cache of the input data jobs read from a bucket: each data set is downloaded once per node, and every
trial on that node reads the same local copy.

    cache = DataCache.on_this_node()
    local = cache.fetch(listing)      # a Listing of gs:// objects (cluster/results/inputs.py) -> a local path

Life cycle of one data set (an entry, named by a hash of its URI and its objects' generations, so a changed object
makes a new entry, which fetches that object again and links the unchanged ones from the older entry):

  1. `locks/<entry>.lock`, exclusive: concurrent trials wait for one download (they print that they wait); and
     `locks/<entry>.use`, shared, held by every process using the entry until it ends.
  2. Absent: files of an older copy of the same URI whose objects are unchanged are linked in, and the other
     objects are downloaded in parallel (google.cloud.storage.transfer_manager, threads) into
     `partial/<entry>.<pid>.<random>/`, each pinned to the listed generation and checked against its crc32c (md5
     when the object has none), then a manifest is written and the folder renamed to `entries/<entry>`: a node
     killed mid-download leaves a partial folder, never an entry, and the next fetch deletes it.
     Present: every file's size and crc32c are checked against the manifest; a damaged file is fetched again.
  3. An entry whose `.use` lock is held (by a job on this node) is never evicted.
  4. Before a download, entries not in use are evicted, least recently used first, until the new one fits under
     the size limit (RAYLAUNCH_DATA_CACHE_LIMIT, e.g. 50G; default half of the cache's filesystem).

The transfer itself (parallel, verified, the errors it ends with): cluster/results/data_transfer.py.

Where: RAYLAUNCH_DATA_CACHE, else `raylaunch-data-cache` under this node's Ray temp dir (inside a trial), else
under the system's temporary folder. `downloads.jsonl` there has one line per download or repair.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import socket
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Optional

from cluster.results.data_transfer import download_files, human, intact, pooled_client
from cluster.store import StorageError

CACHE_ENV = "RAYLAUNCH_DATA_CACHE"
LIMIT_ENV = "RAYLAUNCH_DATA_CACHE_LIMIT"
FOLDER_NAME = "raylaunch-data-cache"
MANIFEST = "manifest.json"
FILES = "files"
USED = "used"  # its modification time: when the entry was last fetched
DOWNLOADS_LOG = "downloads.jsonl"
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}

# Lock files of the entries this process uses, open until it ends (their shared locks keep the entries).
_held: list = []


@dataclass(frozen=True)
class RemoteFile:
    name: str  # the object's name in the bucket
    relative: str  # its path in the local copy
    size: int
    crc32c: Optional[str]
    md5: Optional[str]
    generation: int


@dataclass(frozen=True)
class Listing:
    """What one gs:// input is: one object (`is_folder` false: the copy is that file) or every object under a
    prefix (the copy is a folder)."""

    uri: str
    bucket: str
    is_folder: bool
    files: tuple[RemoteFile, ...]

    @property
    def size(self) -> int:
        return sum(file.size for file in self.files)

    @property
    def key(self) -> str:
        content = json.dumps([self.uri, self.is_folder, [(f.relative, f.generation, f.crc32c) for f in self.files]])
        slug = re.sub(r"[^A-Za-z0-9._-]+", "-", self.uri.removeprefix("gs://"))[-60:].strip("-.")
        return f"{slug}-{hashlib.sha256(content.encode()).hexdigest()[:20]}"


def parse_size(text: str) -> int:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*", str(text), re.IGNORECASE)
    if not match:
        raise StorageError(f"{LIMIT_ENV}={text!r}: expected a size such as 500M, 50G or 1T (bytes without a unit).")
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])


def node_cache_root() -> Path:
    """RAYLAUNCH_DATA_CACHE, else under this node's Ray temp dir (a trial's node, which may keep it on a local SSD
    of its own: `ray start --temp-dir`), else under the system's temporary folder."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    ray = sys.modules.get("ray")  # only when this process already runs Ray: never imported for that
    if ray is not None and ray.is_initialized():
        return Path(ray.get_runtime_context().get_temp_dir()) / FOLDER_NAME
    return Path(tempfile.gettempdir()) / f"{FOLDER_NAME}-{os.getuid()}"


class DataCache:
    def __init__(self, root: str | Path, limit: Optional[int] = None, workers: int = 16,
                 log: Callable[[str], None] = lambda line: print(f"[raylaunch] data: {line}", flush=True)):
        self.root = Path(root)
        for folder in ("entries", "partial", "locks"):
            (self.root / folder).mkdir(parents=True, exist_ok=True)
        if limit is None:
            limit = parse_size(os.environ[LIMIT_ENV]) if os.environ.get(LIMIT_ENV) else \
                shutil.disk_usage(self.root).total // 2
        self.limit = limit
        self.workers = workers
        self.log = log
        self._client = None

    @classmethod
    def on_this_node(cls) -> "DataCache":
        return cls(node_cache_root())

    # ------------------------------------------------------------ fetch
    def fetch(self, listing: Listing) -> Path:
        """The local copy of `listing` (its folder, or its one file), downloaded or repaired if needed, and held
        in use (never evicted) until this process ends."""
        key = listing.key
        entry = self.root / "entries" / key
        # Two locks per entry: `.lock`, exclusive while one process downloads or checks it (the others wait);
        # `.use`, shared by every process using it, for as long as it runs (an evictor needs it exclusively).
        use = open(self.root / "locks" / f"{key}.use", "a+")
        try:
            with open(self.root / "locks" / f"{key}.lock", "a+") as lock:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    self.log(f"waiting for another process on this node fetching {listing.uri}")
                    fcntl.flock(lock, fcntl.LOCK_EX)
                fcntl.flock(use, fcntl.LOCK_SH)
                if (entry / MANIFEST).is_file():
                    self._repair(listing, entry)
                else:
                    self._download(listing, key, entry)
                (entry / USED).touch()
        except BaseException:
            use.close()
            raise
        _held.append(use)
        files = entry / FILES
        return files if listing.is_folder else files / listing.files[0].relative

    @staticmethod
    def release_all() -> None:
        """Let go of every entry this process holds (tests; a job keeps its own until it ends)."""
        while _held:
            _held.pop().close()

    # ------------------------------------------------------------ download
    def _download(self, listing: Listing, key: str, entry: Path) -> None:
        for stale in (self.root / "partial").glob(f"{key}.*"):  # left by a killed download: never used
            shutil.rmtree(stale, ignore_errors=True)
        partial = self.root / "partial" / f"{key}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
        try:
            started = time.monotonic()
            reused = self._reuse_unchanged(listing, partial / FILES)
            missing = [file for file in listing.files if file.relative not in reused]
            size = sum(file.size for file in missing)
            # After the links: the older copy may go now (its linked files stay), and only the downloads need room.
            self._evict(keep=key, incoming=size)
            if reused:
                self.log(f"{len(reused)} file(s) of {listing.uri} unchanged since this node's previous copy: reused")
            self.log(f"downloading {listing.uri} ({len(missing)} file(s), {human(size)}) into "
                     f"{entry} with {self.workers} parallel downloads")
            self._transfer(listing, missing, partial / FILES)
            manifest = {"uri": listing.uri, "is_folder": listing.is_folder, "size": listing.size,
                        "files": [asdict(file) for file in listing.files]}
            (partial / MANIFEST).write_text(json.dumps(manifest, indent=1))
            os.rename(partial, entry)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
        seconds = time.monotonic() - started
        self.log(f"{listing.uri} ready in {seconds:.1f} s ({human(size / max(seconds, 1e-3))}/s)")
        self._record("download", listing, len(missing), size, seconds, reused=len(reused))

    def _reuse_unchanged(self, listing: Listing, folder: Path) -> set[str]:
        """Link into `folder` the files of this node's newest older copy of the same URI whose objects are unchanged
        (same name, generation and crc32c, and intact on disk): a data set that grew or changed by a few files
        costs those files. Returns their relative paths."""
        wanted = {(file.relative, file.generation, file.crc32c): file for file in listing.files}
        for _, _, old in reversed(self.entries()):
            try:
                manifest = json.loads((old / MANIFEST).read_text())
            except (OSError, ValueError):
                continue
            if manifest.get("uri") != listing.uri or manifest.get("is_folder") != listing.is_folder:
                continue
            reused = set()
            with open(self.root / "locks" / f"{old.name}.use", "a+") as use:
                fcntl.flock(use, fcntl.LOCK_SH)  # an evictor skips an entry in use: it stays while it is read
                for item in manifest.get("files", []):
                    file = wanted.get((item.get("relative"), item.get("generation"), item.get("crc32c")))
                    source = old / FILES / str(item.get("relative"))
                    if file is None or not intact(source, file):
                        continue
                    (folder / file.relative).parent.mkdir(parents=True, exist_ok=True)
                    try:
                        os.link(source, folder / file.relative)  # no second copy; a repair replaces, never edits
                    except OSError:
                        shutil.copy2(source, folder / file.relative)
                    reused.add(file.relative)
            return reused
        return set()

    def _repair(self, listing: Listing, entry: Path) -> None:
        damaged = [file for file in listing.files if not intact(entry / FILES / file.relative, file)]
        if not damaged:
            return
        self.log(f"{len(damaged)} cached file(s) of {listing.uri} damaged ({damaged[0].relative}...): fetching again")
        started = time.monotonic()
        partial = self.root / "partial" / f"{listing.key}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
        try:
            self._transfer(listing, damaged, partial)
            for file in damaged:
                os.replace(partial / file.relative, entry / FILES / file.relative)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
        self._record("repair", listing, len(damaged), sum(f.size for f in damaged), time.monotonic() - started)

    def _transfer(self, listing: Listing, files: list[RemoteFile], folder: Path) -> None:
        """Download `files` under `folder` in parallel, each its listed generation, each verified."""
        if self._client is None:
            self._client = pooled_client(self.workers)
        download_files(self._client, listing, files, folder, self.workers, self.log)

    def _record(self, event: str, listing: Listing, files: int, size: int, seconds: float, reused: int = 0) -> None:
        line = {"event": event, "uri": listing.uri, "entry": listing.key, "files": files, "bytes": size,
                "reused": reused, "seconds": round(seconds, 3), "host": socket.gethostname(), "pid": os.getpid(),
                "time": time.time()}
        with open(self.root / DOWNLOADS_LOG, "a") as log:
            log.write(json.dumps(line) + "\n")

    # ------------------------------------------------------------ eviction
    def entries(self) -> list[tuple[float, int, Path]]:
        """(last used, size, folder) of every complete entry, least recently used first."""
        found = []
        for entry in (self.root / "entries").iterdir():
            try:
                size = json.loads((entry / MANIFEST).read_text())["size"]
                used = (entry / USED).stat().st_mtime if (entry / USED).exists() else 0.0
            except (OSError, ValueError, KeyError):
                continue
            found.append((used, size, entry))
        return sorted(found)

    def _evict(self, keep: str, incoming: int) -> None:
        with open(self.root / "locks" / ".evict.lock", "a+") as evicting:
            fcntl.flock(evicting, fcntl.LOCK_EX)
            entries = self.entries()
            total = sum(size for _, size, _ in entries) + incoming
            for _, size, entry in entries:
                if total <= self.limit:
                    return
                if entry.name == keep:
                    continue
                with open(self.root / "locks" / f"{entry.name}.use", "a+") as use:
                    try:
                        fcntl.flock(use, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except BlockingIOError:
                        continue  # in use by a job on this node
                    doomed = self.root / "partial" / f"{entry.name}.evicted.{uuid.uuid4().hex[:8]}"
                    os.rename(entry, doomed)
                shutil.rmtree(doomed, ignore_errors=True)
                total -= size
                self.log(f"evicted {entry.name} ({human(size)}, least recently used) to stay under {human(self.limit)}")
            if total > self.limit:
                self.log(f"the cache holds {human(total)} with this download, over its limit {human(self.limit)} "
                         f"({LIMIT_ENV}): the entries left are in use")
