"""The store interface both backends implement, and the checksums every transfer is verified with.

Keys are '/'-separated names relative to the store's URI (its bucket prefix or folder). Checksums are
base64 like Cloud Storage reports them, so a value recorded from one backend compares with the other.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO, Optional

import google_crc32c

from cluster.store.errors import StorageError
from cluster.store.uri import StorageURI

PROBE_PREFIX = ".raylaunch-probe-"


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    # None only in local listings, which do not read every file.
    crc32c: Optional[str]
    md5: Optional[str]
    # Cloud Storage's object generation; the local backend's equivalent (see LocalStore). 0 means "absent".
    generation: int

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Checksums:
    size: int
    crc32c: str
    md5: str


def checksum_bytes(data: bytes) -> Checksums:
    crc = google_crc32c.Checksum(data)
    return Checksums(len(data), base64.b64encode(crc.digest()).decode(),
                     base64.b64encode(hashlib.md5(data).digest()).decode())


def checksum_stream(source: BinaryIO, copy_to: Optional[BinaryIO] = None, block_size: int = 1 << 20) -> Checksums:
    """Checksums of what is read from an open file, written on to `copy_to` if given (one read for both)."""
    crc, md5, size = google_crc32c.Checksum(), hashlib.md5(), 0
    while block := source.read(block_size):
        crc.update(block)
        md5.update(block)
        size += len(block)
        if copy_to is not None:
            copy_to.write(block)
    return Checksums(size, base64.b64encode(crc.digest()).decode(), base64.b64encode(md5.digest()).decode())


def checksum_file(path: str | Path) -> Checksums:
    with open(path, "rb") as file:
        return checksum_stream(file)


def check_key(key: str) -> str:
    """Refuse keys that are empty, absolute or climb out of the prefix: they could escape a local root."""
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts) or "\\" in key or "\x00" in key:
        raise StorageError(f"Refusing object name {key!r}: names must be relative, without empty, '.' or '..' parts.")
    return key


class Store:
    """A bucket prefix or a local folder holding objects. Every method raises StorageError subclasses."""

    uri: StorageURI

    def upload_file(self, path: str | Path, key: str, *, if_generation_match: Optional[int] = None) -> ObjectInfo:
        """Copy a local file to `key`, verify the stored object's checksum, return its info.
        `if_generation_match=0`: only if absent; `=g`: only if the current object is generation g."""
        raise NotImplementedError

    def write_bytes(self, key: str, data: bytes, *, if_generation_match: Optional[int] = None) -> ObjectInfo:
        raise NotImplementedError

    def read_bytes(self, key: str) -> Optional[tuple[bytes, ObjectInfo]]:
        """The object's verified bytes and info, or None when it does not exist."""
        raise NotImplementedError

    def download_file(self, key: str, path: str | Path) -> ObjectInfo:
        """Write the object to `path` (replacing it); raise IntegrityError if the bytes fail its checksum."""
        raise NotImplementedError

    def stat(self, key: str) -> Optional[ObjectInfo]:
        raise NotImplementedError

    def list(self, prefix: str = "") -> list[ObjectInfo]:
        """Every object whose key starts with `prefix`, sorted by key."""
        raise NotImplementedError

    def list_dirs(self, prefix: str = "") -> list[str]:
        """The next level of 'folder' names under `prefix` ('' or ending in '/')."""
        raise NotImplementedError

    def delete(self, key: str, *, if_generation_match: Optional[int] = None) -> None:
        raise NotImplementedError

    def check_writable(self) -> None:
        """Write and delete a probe object: fails fast, with a fix, when the store cannot be used."""
        import uuid

        key = f"{PROBE_PREFIX}{uuid.uuid4().hex}"
        self.write_bytes(key, b"probe", if_generation_match=0)
        self.delete(key)

    def __str__(self) -> str:
        return str(self.uri)
