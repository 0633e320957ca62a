"""Regressions the rest of the default tier let through, each proved by planting it by hand:

- an upload that failed while the store was down must arrive once the store is back (not only be logged as
  retried): tests/results/test_uploader.py's outage test raced its restart against the uploader's retry;
- the local store's conditional write must hold across processes (the flock, the generation check): the
  existing races are threads of one process sharing one store object;
- a corrupt object downloaded from Cloud Storage must be refused by the checksum of the download itself:
  `pull`'s corruption tests also load the model with Keras, which refuses a damaged zip anyway.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time

import pytest

from cluster.results.uploader import TrialUploader
from cluster.store import IntegrityError, open_store
from cluster.store.base import checksum_bytes
from cluster.store.pointers import read_json, replace_if_better
from tests.conftest import wait_for

from .jobdir import JobFolder

POINTER = "sw/trials/3/best.json"
EVENTS = "tensorboard/train/events.out.tfevents.1.host.1.v2"


# ---------------------------------------------------------------- 1. an upload that failed once still arrives
def test_uploads_that_failed_while_the_store_was_down_arrive_once_it_is_back(gcs_disk, tmp_path):
    """The bucket is unreachable when the epoch ends: the checkpoint, the config and the event file each fail.
    Nothing new happens in the job afterwards (no new epoch re-queues them): once the bucket is back, the
    uploader's own retries must store each one, with the job's bytes, and the pointer must name the checkpoint."""
    server, bucket = gcs_disk
    store = open_store(f"gs://{bucket}/exp", request_timeout=2, retry_deadline=1)
    server.stop(kill=True)
    job = JobFolder(tmp_path / "job")
    uploader = TrialUploader(store, "sw", "3", job.path, "val_loss", "min", sync_seconds=0.2)
    try:
        uploader.on_epoch_end(*job.end_epoch(1, 0.4))

        def failed_each():
            failures = list(uploader.report.failures)
            return all(any(what in failure for failure in failures)
                       for what in ("checkpoint of epoch 1", "resolved_config.yaml", EVENTS))

        wait_for(failed_each, timeout=120, what="the checkpoint, the config and the event file to fail once each")
        server.start()

        # Before close(): the retries alone bring everything up (close's final pass re-sends only what changed).
        record = wait_for(lambda: read_json(store, POINTER)[0], timeout=60, what="the pointer after the outage")
        wait_for(lambda: store.stat(f"sw/trials/3/{EVENTS}") and store.stat("sw/trials/3/resolved_config.yaml"),
                 timeout=60, what="the config and the event file after the outage")
    finally:
        job.finish()
        report = uploader.close(timeout=60)

    assert report.finished and not report.unsynced, report.summary()
    assert report.failures  # the outage is reported as retried failures
    assert (record["epoch"], record["value"]) == (1, 0.4)
    data, _ = store.read_bytes(record["checkpoint"]["key"])
    assert data == (job.path / "checkpoints" / "best.keras").read_bytes()
    sums = checksum_bytes(data)
    assert (sums.size, sums.crc32c) == (record["checkpoint"]["size"], record["checkpoint"]["crc32c"])
    assert [info.key for info in store.list("sw/trials/3/checkpoints/")] == [record["checkpoint"]["key"]]
    assert store.read_bytes("sw/trials/3/resolved_config.yaml")[0] == (job.path / "resolved_config.yaml").read_bytes()
    assert store.read_bytes(f"sw/trials/3/{EVENTS}")[0] == job.events.read_bytes()
    assert store.read_bytes("sw/trials/3/metrics.json")[0] == (job.path / "metrics.json").read_bytes()


# ---------------------------------------------------------------- 2. the local store's lock, across processes
ROUNDS = 300
PADDING = 16 * 1024  # a record far bigger than one write() of a small JSON: a torn copy would not parse


def race_record(who: int, round_: int) -> dict:
    # Who holds the better value alternates, so neither process is always the last to write.
    better = (round_ + who) % 2
    return {"value": round_ + (0.75 if better else 0.25), "mode": "max", "trial": f"p{who}", "round": round_,
            "padding": str(who) * PADDING}


class SlowRename:
    """The `os` module as cluster.store.local sees it in a racing process, with a rename that takes 2 ms (a busy
    or network disk): the step between the generation check and the rename is long enough that two processes
    without the lock would both be inside it in most rounds; with the lock the other one waits its turn."""

    def __init__(self, module):
        self._module = module

    def replace(self, *args, **kwargs):
        time.sleep(0.002)
        return self._module.replace(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._module, name)


def race_writer(root: str, who: int, barrier, errors) -> None:
    """One process's side of every round: wait for the other, then replace_if_better on the round's key; then
    the object there must be a whole record at least as good as this one's."""
    from cluster.store import local

    local.os = SlowRename(os)  # this process only (spawned): the test's own process is untouched
    store = open_store(root)
    try:
        for round_ in range(ROUNDS):
            barrier.wait(timeout=60)
            mine = race_record(who, round_)
            key = f"race/{round_}/best.json"
            replace_if_better(store, key, mine)
            found, _ = read_json(store, key)
            if found is None or found["value"] < mine["value"] or found != race_record(int(found["trial"][1:]), round_):
                errors.put(f"round {round_}: p{who} wrote {mine['value']}, then the store held "
                           f"{None if found is None else (found['trial'], found['value'])}")
    except Exception as error:  # noqa: BLE001 - reported to the test
        errors.put(f"p{who}: {type(error).__name__}: {error}")
        barrier.abort()


def test_local_store_keeps_the_best_record_when_two_processes_race(tmp_path):
    """Two processes (each its own LocalStore, as two trials on one machine) write different values to the same
    key at the same moment, round after round: the better value always stays and every record is whole."""
    root = str(tmp_path / "store")
    context = multiprocessing.get_context("spawn")
    barrier, errors = context.Barrier(2), context.Queue()
    processes = [context.Process(target=race_writer, args=(root, who, barrier, errors)) for who in (0, 1)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    alive = [process for process in processes if process.is_alive()]
    for process in alive:
        process.kill()
        process.join()
    assert not alive, "a racing process did not finish"
    assert [process.exitcode for process in processes] == [0, 0]
    reported = []
    while not errors.empty():
        reported.append(errors.get())

    store = open_store(root)
    lost = []
    for round_ in range(ROUNDS):
        best = max((race_record(who, round_) for who in (0, 1)), key=lambda record: record["value"])
        data, _ = store.read_bytes(f"race/{round_}/best.json")
        if json.loads(data) != best:
            lost.append(round_)
    assert not reported and not lost, (f"the worse record stayed in {len(lost)} of {ROUNDS} rounds, e.g. {lost[:5]}; "
                                       f"{len(reported)} violation(s) seen by the writers, e.g. {reported[:3]}")
    assert not [name for name in os.listdir(root) if name.endswith(".tmp")]


# ---------------------------------------------------------------- 3. a corrupt download from GCS
def corrupt_on_the_server(server, bucket: str, key: str) -> None:
    """Flip one byte of the stored object (same size): the server keeps the crc32c and md5 it recorded at upload
    and sends them with the damaged bytes, as a bucket would after silent corruption."""
    on_disk = server.object_file(bucket, f"exp/{key}")
    data = bytearray(on_disk.read_bytes())
    data[len(data) // 2] ^= 0xFF
    on_disk.write_bytes(bytes(data))


def test_a_corrupt_download_from_gcs_fails_its_checksum_and_leaves_no_file(gcs_disk, tmp_path):
    server, bucket = gcs_disk
    store = open_store(f"gs://{bucket}/exp")
    key = "sw/trials/1/checkpoints/e1-abc.keras"
    original = os.urandom(256 * 1024)
    uploaded = store.write_bytes(key, original, if_generation_match=0)
    corrupt_on_the_server(server, bucket, key)
    served = store.stat(key)
    assert (served.size, served.crc32c) == (uploaded.size, uploaded.crc32c)  # the metadata still vouches for it

    target = tmp_path / "download" / "best.keras"
    target.parent.mkdir()
    with pytest.raises(IntegrityError, match="checksum mismatch") as raised:
        store.download_file(key, target)
    assert key in str(raised.value)
    assert sorted(target.parent.iterdir()) == []  # no partial or corrupt file at the destination

    with pytest.raises(IntegrityError, match="checksum mismatch") as raised:
        store.read_bytes(key)
    assert key in str(raised.value)
