"""`python launch.py push LOCAL gs://BUCKET/PREFIX`: upload a local data set (a folder, or one file) for jobs to
read with `data.path=gs://BUCKET/PREFIX`; the mirror of `pull`.

Files already in the bucket with the same size and crc32c are skipped, so pushing again after adding a few
files sends only those. The rest go up in parallel (google.cloud.storage.transfer_manager, threads), each
verified by Cloud Storage against the crc32c sent with it, and the listing afterwards is compared with the local
checksums. Objects under the prefix that are not in LOCAL are kept (and counted: jobs would read them too), or
deleted with --delete, which makes the prefix a mirror of the folder (each deleted only if unchanged since listed).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from cluster.results.data_transfer import human, pooled_client
from cluster.store import PreconditionFailed, StorageError, parse_uri
from cluster.store.base import checksum_file
from cluster.store.uri import StorageURI

EPILOG = """\
LOCAL a folder: every file under it (names starting with '.' left out) goes to PREFIX/<its path in LOCAL>, e.g.
./photos/cat/1.jpg to gs://BUCKET/data/photos/cat/1.jpg; train on it with data=image_folder
data.path=gs://BUCKET/data/photos. LOCAL a file: it becomes the object PREFIX (PREFIX/<name> if PREFIX ends in /).
Credentials: application-default, as storage.uri. Exit status: 0 done, 1 an upload or check failed, 2 bad
arguments."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python launch.py push", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Upload a local data set (folder or file) to a bucket for data.path=gs://... (the mirror of pull).")
    parser.add_argument("local", help="the folder or file to upload")
    parser.add_argument("uri", help="gs://BUCKET/PREFIX it goes to")
    parser.add_argument("--workers", type=int, default=16, help="parallel uploads (default 16)")
    parser.add_argument("--delete", action="store_true",
                        help="delete objects under the prefix that are not in LOCAL (a folder): the prefix then holds "
                             "exactly the folder, as jobs will read it")
    return parser


def local_files(local: Path) -> dict[str, Path]:
    """Relative '/'-separated name -> file, hidden names left out."""
    if local.is_file():
        return {local.name: local}
    return {path.relative_to(local).as_posix(): path for path in sorted(local.rglob("*"))
            if path.is_file() and not any(part.startswith(".") for part in path.relative_to(local).parts)}


def push(local: Path, uri: str, workers: int = 16, out=print, delete: bool = False) -> dict:
    """Upload what is missing or different (and with `delete`, delete objects under the prefix that are not in the
    folder `local`); return counts. Raises StorageError."""
    from google.cloud.storage import transfer_manager
    from google.cloud.storage.retry import DEFAULT_RETRY

    from cluster.store.gcs import GCSStore

    parsed = parse_uri(uri)
    if parsed.scheme != "gs":
        raise StorageError(f"push uploads to a bucket: {uri!r} is not a gs://BUCKET/PREFIX URI.")
    if delete and local.is_file():
        raise StorageError(f"push --delete mirrors a folder; {local} is a file (its object is replaced as it is).")
    if local.is_file():
        prefix = f"{parsed.prefix}/{local.name}" if uri.endswith("/") or not parsed.prefix else parsed.prefix
        names = {prefix: local}
    else:
        names = {f"{parsed.prefix}/{name}" if parsed.prefix else name: path
                 for name, path in local_files(local).items()}
        if not names:
            raise StorageError(f"{local}: no files to push.")
    store = GCSStore(StorageURI("gs", parsed.bucket, ""))
    listed_prefix = parsed.prefix if local.is_file() else (parsed.prefix + "/" if parsed.prefix else "")
    remote = {info.key: info for info in store.list(listed_prefix)}
    started = time.monotonic()
    checksums = {name: checksum_file(path) for name, path in names.items()}
    todo = [name for name in names if not _same(remote.get(name), checksums[name])]
    size = sum(checksums[name].size for name in todo)
    out(f"push: {len(todo)} of {len(names)} file(s) to upload ({human(size)}) to {parsed}"
        + (f"; {len(names) - len(todo)} already there with the same checksum" if len(todo) < len(names) else ""))
    bucket = pooled_client(workers).bucket(parsed.bucket)
    pairs = [(str(names[name]), bucket.blob(name)) for name in todo]
    results = transfer_manager.upload_many(
        pairs, upload_kwargs={"checksum": "crc32c", "timeout": 120, "retry": DEFAULT_RETRY},
        worker_type=transfer_manager.THREAD, max_workers=workers) if pairs else []
    failed = [(name, result) for name, result in zip(todo, results) if isinstance(result, Exception)]
    if failed:
        name, error = failed[0]
        raise StorageError(f"push: {len(failed)} upload(s) failed, e.g. {names[name]} -> gs://{parsed.bucket}/{name}: "
                           f"{type(error).__name__}: {str(error)[:300]}. Run push again: it skips what arrived.")
    after = {info.key: info for info in store.list(listed_prefix)}
    wrong = [name for name in names if not _same(after.get(name), checksums[name])]
    if wrong:
        raise StorageError(f"push: {len(wrong)} object(s) do not match their local file after the upload, e.g. "
                           f"gs://{parsed.bucket}/{wrong[0]}. Run push again.")
    extra = sorted(set(after) - set(names))
    deleted = 0
    if delete and extra:
        kept = []
        for name in extra:  # only the object as listed: one written since (another push, a job) is kept
            try:
                store.delete(name, if_generation_match=after[name].generation)
            except PreconditionFailed:
                kept.append(name)
        deleted, extra = len(extra) - len(kept), kept
        out(f"push: deleted {deleted} object(s) under {parsed} that are not in {local}")
    seconds = time.monotonic() - started
    out(f"push: done in {seconds:.1f} s ({human(size / max(seconds, 1e-3))}/s); jobs read it with data.path={parsed}"
        + (f"\npush: note: {len(extra)} object(s) under {parsed} are not in {local} (kept; jobs read them too; "
           f"--delete removes them), e.g. gs://{parsed.bucket}/{extra[0]}" if extra else ""))
    return {"uploaded": len(todo), "skipped": len(names) - len(todo), "bytes": size, "extra": len(extra),
            "deleted": deleted}


def _same(info, local) -> bool:
    return info is not None and info.size == local.size and info.crc32c == local.crc32c


def main(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    local = Path(args.local).expanduser()
    if not local.exists():
        parser.error(f"{args.local}: no such file or folder")
    if not args.uri.startswith("gs://"):
        parser.error(f"{args.uri!r}: expected gs://BUCKET/PREFIX")
    if args.delete and local.is_file():
        parser.error(f"--delete mirrors a folder; {args.local} is a file")
    if args.workers < 1:
        parser.error(f"--workers must be at least 1, received {args.workers}")
    try:
        push(local, args.uri, args.workers, delete=args.delete)
    except StorageError as error:
        print(f"push: error: {error}", file=sys.stderr)
        return 1
    return 0
