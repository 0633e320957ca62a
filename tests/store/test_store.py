"""Both backends, same behaviour: verified round trips, listing, conditional ("best") replacement."""

from __future__ import annotations

import os
import threading

import pytest

from cluster.store import PreconditionFailed, StorageError, open_store, preflight
from cluster.store.base import checksum_bytes, checksum_file
from cluster.store.pointers import read_json, replace_if_better

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
    with pytest.raises(StorageError, match="sweep/absent.bin' does not exist|sweep/absent.bin does not exist"):
        store.download_file("sweep/absent.bin", tmp_path / "absent.bin")

    store.write_bytes("sweep/trials/1/metrics.json", b'{"a": 1}')
    data, small = store.read_bytes("sweep/trials/1/metrics.json")
    assert data == b'{"a": 1}' and small.size == 8
    assert small.crc32c == checksum_bytes(data).crc32c  # the store's checksum of what it returned
    assert store.read_bytes("sweep/nothing.json") is None
    assert [i.key for i in store.list("sweep/")] == ["sweep/trials/0/checkpoints/model.keras",
                                                     "sweep/trials/1/metrics.json"]
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


class Writer:
    """One writer's view of the real store, pausing where a race needs it: after its first read of the
    pointer it waits at `read_barrier` (every writer has then read the same generation), and with
    `write_after` set it writes only once that event is set (it then holds a stale generation)."""

    def __init__(self, store, read_barrier: threading.Barrier, write_after: threading.Event | None = None):
        self.store, self.read_barrier, self.write_after = store, read_barrier, write_after
        self.reads = 0
        self.wrote = threading.Event()

    def read_bytes(self, key):
        found = self.store.read_bytes(key)
        self.reads += 1
        if self.reads == 1:
            self.read_barrier.wait(timeout=60)
        return found

    def write_bytes(self, key, data, *, if_generation_match=None):
        if self.write_after is not None:
            assert self.write_after.wait(timeout=60)
        try:
            return self.store.write_bytes(key, data, if_generation_match=if_generation_match)
        finally:
            self.wrote.set()

    def __getattr__(self, name):
        return getattr(self.store, name)


def run_writers(writers_and_records, key: str) -> list:
    errors, results = [], {}

    def write(writer, record):
        try:
            results[record["trial"]] = replace_if_better(writer, key, record)
        except Exception as error:  # noqa: BLE001 - reported below with the others
            errors.append(error)

    threads = [threading.Thread(target=write, args=pair) for pair in writers_and_records]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    return results


def test_a_writer_holding_a_stale_generation_never_replaces_a_better_record(store_uri):
    """Two trials read the pointer at the same moment; the better one writes first, then the worse one
    writes with the generation it read before: the compare-and-swap refuses it, it reads the better
    record and gives up. Without if_generation_match the worse record would overwrite the better."""
    store = open_store(store_uri)
    replace_if_better(store, "race/best.json", {"value": 0.5, "mode": "max", "trial": "first"})
    barrier = threading.Barrier(2)
    better = Writer(store, barrier)
    worse = Writer(store, barrier, write_after=better.wrote)
    results = run_writers([(better, {"value": 0.9, "mode": "max", "trial": "better"}),
                           (worse, {"value": 0.7, "mode": "max", "trial": "worse"})], "race/best.json")
    assert results["better"][0] and not results["worse"][0]
    assert worse.reads == 2  # refused once, it read the pointer again and found the better record
    assert read_json(store, "race/best.json")[0] == {"value": 0.9, "mode": "max", "trial": "better"}


def test_concurrent_writers_leave_the_best_value(store_uri):
    """Eight trials finishing at once, all reading the absent pointer before any writes: the pointer ends
    at the best one, whatever order their writes land in."""
    store = open_store(store_uri)
    values = [0.8, 0.3, 0.9, 0.1, 0.5, 0.7, 0.2, 0.6]
    barrier = threading.Barrier(len(values))
    writers = [(Writer(store, barrier), {"value": value, "mode": "max", "trial": str(index)})
               for index, value in enumerate(values)]
    results = run_writers(writers, "race/best.json")
    assert sum(written for written, _ in results.values()) >= 1
    assert read_json(store, "race/best.json")[0] == {"value": 0.9, "mode": "max", "trial": "2"}


def test_preflight_leaves_no_probe_behind(store_uri):
    store = preflight(store_uri)
    assert store.list("") == []


def test_names_containing_the_word_bucket_are_objects_like_any_other(gcs):
    """A missing object answers 404 like a missing bucket, with the bucket's and the object's names in the
    message: telling them apart by the word "bucket" took every missing object in a bucket named
    my-bucket (or a run folder named bucket) for a missing bucket."""
    server, _ = gcs
    name = server.create_bucket(f"my-bucket-{os.getpid()}")
    store = open_store(f"gs://{name}/exp")
    assert store.read_bytes("bucket/owner.json") is None
    store.delete("bucket/absent.json")  # absent: nothing to do
    store.write_bytes("bucket/owner.json", b"{}")
    assert store.read_bytes("bucket/owner.json")[0] == b"{}"
    with pytest.raises(StorageError, match="bucket 'no-such-bucket' does not exist"):
        open_store("gs://no-such-bucket/exp").read_bytes("owner.json")


def test_a_download_while_the_object_is_replaced_returns_one_whole_version(store_uri, tmp_path):
    """A trial's state is replaced every epoch while a resuming node downloads it: each download is one
    version, whole, with that version's checksum and generation, never an integrity error. (The local store
    checksummed the path and then copied it: a replacement in between failed the check.)"""
    store = open_store(store_uri)
    versions = {}  # generation -> crc32c of what the writer put there
    store.write_bytes("state/last.keras", b"0" * MiB)
    stop = threading.Event()

    def keep_replacing():
        version = 0
        while not stop.is_set():
            version += 1
            data = bytes([version % 251]) * MiB
            info = store.write_bytes("state/last.keras", data)
            versions[info.generation] = info.crc32c

    writer = threading.Thread(target=keep_replacing)
    writer.start()
    try:
        downloads = [store.download_file("state/last.keras", tmp_path / f"copy{index}") for index in range(30)]
    finally:
        stop.set()
        writer.join(timeout=60)
    for index, info in enumerate(downloads):
        copied = checksum_file(tmp_path / f"copy{index}")
        assert (copied.size, copied.crc32c) == (info.size, info.crc32c)
        # The generation returned is the one the writer was told for these very bytes.
        assert info.generation not in versions or versions[info.generation] == info.crc32c
    assert len(versions) > 5, "the writer never replaced the object while downloads ran"
