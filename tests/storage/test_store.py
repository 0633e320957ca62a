"""Both backends, same behaviour: verified round trips, listing, conditional ("best") replacement."""

from __future__ import annotations

import os
import threading

import pytest

from cluster.storage import PreconditionFailed, open_store, preflight
from cluster.storage.base import checksum_bytes, checksum_file
from cluster.storage.pointers import read_json, replace_if_better

MiB = 1 << 20


def open_small_chunks(uri):
    # Above the library's 8 MiB multipart limit a gs:// upload is resumable, in 256 KiB chunks here.
    return open_store(uri, chunk_size=256 * 1024) if uri.startswith("gs://") else open_store(uri)


def test_round_trip_keeps_bytes_and_checksums(store_uri, tmp_path):
    store = open_small_chunks(store_uri)
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(9 * MiB + 17))
    local = checksum_file(big)

    info = store.upload_file(big, "sweep/trials/0/checkpoints/model.keras", if_generation_match=0)
    assert (info.size, info.crc32c, info.md5) == (local.size, local.crc32c, local.md5)
    assert info.generation > 0
    assert store.stat("sweep/trials/0/checkpoints/model.keras") == info

    back = tmp_path / "back.bin"
    assert store.download_file("sweep/trials/0/checkpoints/model.keras", back).crc32c == local.crc32c
    assert back.read_bytes() == big.read_bytes()

    store.write_bytes("sweep/trials/1/metrics.json", b'{"a": 1}')
    data, small = store.read_bytes("sweep/trials/1/metrics.json")
    assert data == b'{"a": 1}' and small.size == 8
    assert small.crc32c == checksum_bytes(data).crc32c  # the store's checksum of what it returned
    assert store.read_bytes("sweep/nothing.json") is None
    assert [i.key for i in store.list("sweep/")] == ["sweep/trials/0/checkpoints/model.keras", "sweep/trials/1/metrics.json"]
    assert store.list_dirs("sweep/trials/") == ["0", "1"]
    store.delete("sweep/trials/1/metrics.json")
    assert store.stat("sweep/trials/1/metrics.json") is None


def test_create_only_and_generation_match(store_uri):
    store = open_store(store_uri)
    first = store.write_bytes("p.json", b"1", if_generation_match=0)
    with pytest.raises(PreconditionFailed):
        store.write_bytes("p.json", b"2", if_generation_match=0)
    second = store.write_bytes("p.json", b"2", if_generation_match=first.generation)
    assert second.generation != first.generation
    with pytest.raises(PreconditionFailed):  # a writer holding the stale generation loses
        store.write_bytes("p.json", b"3", if_generation_match=first.generation)
    assert store.read_bytes("p.json")[0] == b"2"


def test_best_pointer_is_replaced_only_by_better_values(store_uri):
    store = open_store(store_uri)
    assert replace_if_better(store, "s/best.json", {"value": 0.5, "mode": "min", "trial": "0"})[0]
    assert not replace_if_better(store, "s/best.json", {"value": 0.9, "mode": "min", "trial": "late-worse"})[0]
    assert not replace_if_better(store, "s/best.json", {"value": 0.5, "mode": "min", "trial": "tie"})[0]
    assert replace_if_better(store, "s/best.json", {"value": 0.2, "mode": "min", "trial": "2"})[0]
    assert read_json(store, "s/best.json")[0]["trial"] == "2"


def test_concurrent_writers_leave_the_best_value(store_uri):
    """Eight trials finishing at once, in any order: the pointer ends at the best one."""
    store = open_store(store_uri)
    values = [0.8, 0.3, 0.9, 0.1, 0.5, 0.7, 0.2, 0.6]
    errors = []

    def write(index, value):
        try:
            replace_if_better(store, "race/best.json", {"value": value, "mode": "max", "trial": str(index)})
        except Exception as error:  # noqa: BLE001
            errors.append(error)

    threads = [threading.Thread(target=write, args=(i, v)) for i, v in enumerate(values)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert read_json(store, "race/best.json")[0] == {"value": 0.9, "mode": "max", "trial": "2"}


def test_preflight_leaves_no_probe_behind(store_uri):
    store = preflight(store_uri)
    assert store.list("") == []
