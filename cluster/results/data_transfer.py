"""Bringing a data set's objects from the bucket to this node, for the node's data cache (data_cache.py): in
parallel (google.cloud.storage.transfer_manager, threads, one pooled connection per thread), each object pinned to
its listed generation and checked against its crc32c (md5 when it has none), with a progress line every few seconds;
and the errors a download ends with, each naming the object and what to do.

    client = pooled_client(workers)
    download_files(client, listing, listing.files, folder, workers, log)   # raises StorageError / IntegrityError
"""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import google_crc32c

from cluster.store import IntegrityError, StorageError
from cluster.store.base import checksum_file

if TYPE_CHECKING:
    from cluster.results.data_cache import Listing, RemoteFile

PROGRESS_EVERY = 5.0  # seconds between progress lines


def human(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"


def pooled_client(workers: int):
    """A storage client whose HTTP session keeps a connection per parallel transfer (requests keeps 10)."""
    from requests.adapters import HTTPAdapter

    from cluster.private_apis import storage_http_session
    from cluster.store.gcs import make_client

    client = make_client()
    session = storage_http_session(client)
    if session is not None and hasattr(session, "mount"):
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=max(10, workers))
        for scheme in ("https://", "http://"):
            session.mount(scheme, adapter)
    return client


def download_files(client, listing: Listing, files: list[RemoteFile], folder: Path, workers: int,
                   log: Callable[[str], None]) -> None:
    """Download `files` of `listing` under `folder` in parallel, each its listed generation, each verified."""
    from google.cloud.storage import transfer_manager
    from google.cloud.storage.retry import DEFAULT_RETRY

    bucket = client.bucket(listing.bucket)
    for file in files:
        (folder / file.relative).parent.mkdir(parents=True, exist_ok=True)
    done_files, done_bytes, last = 0, 0, time.monotonic()
    batch = max(4 * workers, 64)
    for start in range(0, len(files), batch):
        part = files[start:start + batch]
        pairs = [(bucket.blob(file.name, generation=file.generation), str(folder / file.relative)) for file in part]
        results = transfer_manager.download_many(
            pairs, download_kwargs={"checksum": "crc32c", "timeout": 120, "retry": DEFAULT_RETRY},
            worker_type=transfer_manager.THREAD, max_workers=workers)
        for file, result in zip(part, results):
            if isinstance(result, Exception):
                raise download_error(listing, file, result)
            if not intact(folder / file.relative, file):
                raise IntegrityError(f"Downloading {listing.uri}: gs://{listing.bucket}/{file.name} does not "
                                     "match its checksum after the download. Run the job again.")
        done_files += len(part)
        done_bytes += sum(file.size for file in part)
        if time.monotonic() - last >= PROGRESS_EVERY and done_files < len(files):
            last = time.monotonic()
            log(f"{listing.uri}: {done_files}/{len(files)} files, {human(done_bytes)}")


def intact(path: Path, file: RemoteFile) -> bool:
    """The file has the object's size and crc32c (its md5 when it has no crc32c). crc32c alone when it can: every
    job on the node checks its copy this way, and md5 would take most of the time."""
    try:
        if path.stat().st_size != file.size:
            return False
        if not file.crc32c:
            return file.md5 is None or checksum_file(path).md5 == file.md5
        crc = google_crc32c.Checksum()
        with open(path, "rb") as source:
            while block := source.read(1 << 20):
                crc.update(block)
    except OSError:
        return False
    return base64.b64encode(crc.digest()).decode() == file.crc32c


def download_error(listing: Listing, file: RemoteFile, error: Exception) -> StorageError:
    from google.api_core import exceptions as api

    where = f"gs://{listing.bucket}/{file.name}"
    if isinstance(error, api.NotFound):
        return StorageError(f"Downloading {listing.uri}: {where} (generation {file.generation}) is gone: it changed "
                            "or was deleted while the job started. Run the job again.")
    if isinstance(error, (api.Forbidden, api.Unauthorized)):
        from cluster.store.gcs import denial_reason, permission_help

        return StorageError(f"Downloading {where}: permission denied ({denial_reason(error)}). "
                            f"{permission_help(listing.bucket, writing=False)}")
    if type(error).__name__ == "DataCorruption":
        return IntegrityError(f"Downloading {where}: checksum mismatch, the bytes are corrupt. Run the job again.")
    return StorageError(f"Downloading {where} failed after retries: {type(error).__name__}: {str(error)[:300]}")
