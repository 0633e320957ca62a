"""The object store results go to: a local folder (default) or `gs://bucket/prefix`, the same in both. Imports
nothing else of the project.

    store = open_store("gs://my-bucket/experiments")   # or "results", "/abs/folder", "file:///abs/folder"
    store.check_writable()                              # before any training: fails fast with a fix

Modules: uri (parsing), base (interface, checksums), local / gcs (backends), layout (sweep and trial names),
pointers (conditional "best" objects), ownership (which sweep writes a folder).
"""

from __future__ import annotations

import os

from cluster.store.base import ObjectInfo, Store
from cluster.store.errors import IntegrityError, PreconditionFailed, StorageError, UnsafePath
from cluster.store.uri import StorageURI, parse_uri

__all__ = [
    "IntegrityError",
    "ObjectInfo",
    "PreconditionFailed",
    "Store",
    "StorageError",
    "StorageURI",
    "UnsafePath",
    "open_store",
    "parse_uri",
    "preflight",
]


def open_store(uri: str | StorageURI, base_dir: str | os.PathLike | None = None, **gcs_options) -> Store:
    parsed = uri if isinstance(uri, StorageURI) else parse_uri(uri, base_dir)
    if parsed.scheme == "gs":
        from cluster.store.gcs import GCSStore

        return GCSStore(parsed, **gcs_options)
    from cluster.store.local import LocalStore

    return LocalStore(parsed)


def preflight(uri: str, base_dir: str | os.PathLike | None = None, **gcs_options) -> Store:
    """Open the store and prove it is writable (a probe object is written and deleted). Run it before
    any training: a malformed URI, a missing bucket or missing credentials fail here in seconds."""
    store = open_store(uri, base_dir, **gcs_options)
    store.check_writable()
    return store
