"""Where a pull reads and writes: a STORE/SWEEP URI split into its store and sweep, and object names joined
under a local folder only when the result stays inside it."""

from __future__ import annotations

from pathlib import Path

from cluster.results import layout
from cluster.store import StorageError, UnsafePath, open_store, parse_uri
from cluster.store.base import Store


def split_sweep_uri(uri: str) -> tuple[Store, str]:
    """STORE/SWEEP -> (store, sweep)."""
    parsed = parse_uri(uri)
    parent, _, sweep = parsed.prefix.rstrip("/").rpartition("/")
    if not sweep or (parsed.scheme == "gs" and not parsed.prefix):
        raise StorageError(f"{uri!r} names no sweep: expected STORE/SWEEP, e.g. "
                           f"gs://my-bucket/experiments/2026-01-31_12-00-00 (`pull --list STORE` shows the sweeps).")
    layout.check_name("sweep", sweep)
    store_uri = type(parsed)(parsed.scheme, parsed.bucket, parent if parsed.scheme == "gs" else (parent or "/"))
    return open_store(store_uri), sweep


def safe_join(root: Path, relative: str) -> Path:
    """`root/relative`, refusing names that are absolute or climb out of `root` (also through symlinks)."""
    parts = relative.split("/")
    if (not relative or relative.startswith("/") or "\\" in relative or "\x00" in relative
            or any(part in ("", ".", "..") for part in parts)):
        raise UnsafePath(f"Refusing object name {relative!r}: it would land outside {root}.")
    target = root.joinpath(*parts)
    resolved_root = root.resolve()
    if not target.resolve().is_relative_to(resolved_root):
        raise UnsafePath(f"Refusing object name {relative!r}: {target} resolves outside {root}.")
    return target
