"""Objects that stand for "the best": replaced only by a strictly better value, by compare-and-swap on
the object's generation, so a late, worse writer never overwrites a better one."""

from __future__ import annotations

import json
import math
from typing import Optional

from cluster.store.base import Store
from cluster.store.errors import PreconditionFailed, StorageError


def is_better(value: Optional[float], than: Optional[float], mode: str) -> bool:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    if than is None or (isinstance(than, float) and math.isnan(than)):
        return True
    return value < than if mode == "min" else value > than


def read_json(store: Store, key: str) -> tuple[Optional[dict], int]:
    """The object's JSON and generation; (None, 0) when absent."""
    found = store.read_bytes(key)
    if found is None:
        return None, 0
    data, info = found
    try:
        return json.loads(data), info.generation
    except ValueError as error:
        raise StorageError(f"{store.uri}/{key} is not valid JSON: {error}") from error


def replace_if_better(store: Store, key: str, record: dict, attempts: int = 8) -> tuple[bool, Optional[dict]]:
    """Write `record` (with "value" and "mode") to `key` unless the object there is at least as good.
    Returns (written, the record that was there before)."""
    for _ in range(attempts):
        current, generation = read_json(store, key)
        if current is not None and not is_better(record["value"], current.get("value"), record["mode"]):
            return False, current
        try:
            store.write_bytes(key, json.dumps(record, indent=1).encode(), if_generation_match=generation)
            return True, current
        except PreconditionFailed:
            continue  # someone wrote in between: compare against their record
    raise StorageError(f"{store.uri}/{key}: gave up after {attempts} concurrent replacements.")
