"""Parse a storage URI: `gs://bucket/prefix`, or a local folder (`/abs/path`, `rel/path`, `file:///abs/path`)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from cluster.store.errors import StorageError

# Cloud Storage bucket naming rules (without the dotted, domain-named form's 222-character variant).
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$")
SCHEMES = ("gs://", "file://", "a local path")


@dataclass(frozen=True)
class StorageURI:
    scheme: str  # "gs" or "file"
    bucket: Optional[str]  # gs only
    prefix: str  # "" or "a/b" (no leading/trailing slash); for file: the absolute folder path

    def __str__(self) -> str:
        if self.scheme == "gs":
            return f"gs://{self.bucket}/{self.prefix}".rstrip("/")
        return self.prefix

    def child(self, *parts: str) -> "StorageURI":
        joined = "/".join(p.strip("/") for p in (self.prefix, *parts) if p.strip("/"))
        if self.scheme == "file":
            joined = "/" + joined.lstrip("/")
        return StorageURI(self.scheme, self.bucket, joined)


def _bad(uri: str, why: str) -> StorageError:
    return StorageError(
        f"Invalid storage URI {uri!r}: {why}. Allowed: gs://BUCKET[/PREFIX] or a local folder path, "
        f"e.g. `storage.uri=gs://my-bucket/experiments` or `storage.uri=results`."
    )


def parse_uri(uri: str, base_dir: str | os.PathLike | None = None) -> StorageURI:
    """Relative local paths resolve against `base_dir` (default: the current directory)."""
    if not isinstance(uri, str) or not uri.strip():
        raise _bad(str(uri), "it is empty")
    uri = uri.strip()
    if uri.startswith("gs://"):
        rest = uri[len("gs://"):]
        bucket, _, prefix = rest.partition("/")
        if not bucket:
            raise _bad(uri, "no bucket name after gs://")
        if not _BUCKET.match(bucket) or ".." in bucket:
            raise _bad(
                uri,
                f"bucket name {bucket!r} breaks Cloud Storage's rules (3-63 characters: lowercase letters, "
                f"digits, '-', '_' and '.', starting and ending with a letter or digit)",
            )
        parts = [p for p in prefix.split("/") if p]
        if any(p in (".", "..") for p in parts):
            raise _bad(uri, "the prefix contains '.' or '..' segments")
        if "\n" in prefix or "\r" in prefix or "#" in prefix or "?" in prefix:
            raise _bad(uri, "the prefix contains '#', '?' or line breaks")
        return StorageURI("gs", bucket, "/".join(parts))
    match = re.match(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://", uri)
    if match and match.group(1) != "file":
        raise _bad(uri, f"scheme {match.group(1)!r}:// is not supported (supported: gs://, file://, a local path)")
    if uri.startswith("file://"):
        path = uri[len("file://"):]
        if not path.startswith("/"):
            raise _bad(uri, "file:// URIs need an absolute path, e.g. file:///data/results")
    else:
        path = uri
    resolved = Path(base_dir or os.getcwd(), os.path.expanduser(path)).resolve()
    return StorageURI("file", None, str(resolved))
