"""The trial uploader: uploads while the job trains, off the training thread, and faults it survives.

Nothing here times the uploader: "off the training thread" is shown by the epoch hook returning while the
upload thread is held inside a call to the store (HeldStore), an ordering of events, not a number of seconds.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import pytest

from cluster.results.uploader import TrialUploader
from cluster.store import open_store
from cluster.store.base import checksum_bytes
from cluster.store.pointers import read_json
from tests.conftest import wait_for

from .jobdir import JobFolder

MiB = 1 << 20
POINTER = "sw/trials/3/best.json"


def pointer(store):
    return read_json(store, POINTER)[0]


def assert_pointer_names_a_complete_object(store):
    """What `pull` relies on: the pointer's checkpoint exists with exactly the recorded bytes."""
    record = pointer(store)
    data, _ = store.read_bytes(record["checkpoint"]["key"])
    sums = checksum_bytes(data)
    assert (sums.size, sums.crc32c) == (record["checkpoint"]["size"], record["checkpoint"]["crc32c"])
    return record, data


class HeldStore:
    """The store as the uploader sees it, with a gate: while it is closed, every call from a thread other than
    the test's waits inside the store, as a request to a store that does not answer does. Records which
    threads called it."""

    def __init__(self, store):
        self._store = store
        self._test_thread = threading.get_ident()
        self.entered = threading.Event()  # a call is waiting at the gate
        self._open = threading.Event()
        self._fail = False
        self.inside = 0  # calls waiting at the gate now
        self.callers: set[int] = set()

    def __getattr__(self, name):
        attribute = getattr(self._store, name)
        if not callable(attribute):
            return attribute

        def call(*args, **kwargs):
            self.callers.add(threading.get_ident())
            if threading.get_ident() != self._test_thread and not self._open.is_set():
                self.inside += 1
                self.entered.set()
                self._open.wait()
                self.inside -= 1
            if self._fail:
                from cluster.store.errors import StorageError

                raise StorageError(f"{name}: the test's store is gone")
            return attribute(*args, **kwargs)

        return call

    def release(self, fail: bool = False) -> None:
        """Open the gate: calls go on to the store (or, with `fail`, fail at once, as a store that refuses)."""
        self._fail = fail
        self._open.set()


def returns(function, what: str):
    """function() on a thread of its own; its value, or a failure naming `what` if it never returns (with the
    gate closed, something that waits on the store waits forever: the join is a guard against hanging)."""
    outcome = {}

    def run():
        try:
            outcome["value"] = function()
        except BaseException as error:  # noqa: BLE001 - raised again on the test's thread
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(120)
    if thread.is_alive():
        pytest.fail(f"{what} never returned while an upload waited on the store")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"], thread.ident


def test_uploads_happen_while_training_and_keep_only_the_best(store_uri, tmp_path):
    store = open_store(store_uri)
    job = JobFolder(tmp_path / "job")
    uploader = TrialUploader(store, "sw", "3", job.path, "val_loss", "min", sync_seconds=0.5)

    uploader.on_epoch_end(*job.end_epoch(1, 0.9))
    uploader.on_epoch_end(*job.end_epoch(2, 0.5))
    # Before the job ends: the new best checkpoint and the event file are in the store.
    assert wait_for(lambda: (pointer(store) or {}).get("epoch") == 2)
    assert wait_for(lambda: store.stat("sw/trials/3/tensorboard/train/events.out.tfevents.1.host.1.v2"))
    uploader.on_epoch_end(*job.end_epoch(3, 0.7))  # worse: no new checkpoint
    job.finish()
    report = uploader.close(timeout=30)

    assert report.finished and not report.failures
    record, data = assert_pointer_names_a_complete_object(store)
    assert (record["value"], record["epoch"], record["metric"], record["mode"]) == (0.5, 2, "val_loss", "min")
    assert data == (job.path / "checkpoints" / "best.keras").read_bytes()
    # Superseded checkpoints are deleted once the pointer moved on.
    assert [i.key for i in store.list("sw/trials/3/checkpoints/")] == [record["checkpoint"]["key"]]
    assert store.read_bytes("sw/trials/3/metrics.json")[0] == (job.path / "metrics.json").read_bytes()
    assert store.read_bytes("sw/trials/3/resolved_config.yaml")[0] == (job.path / "resolved_config.yaml").read_bytes()
    # The event file as it was at the end (3 epochs), not the first sync's copy.
    events_key = "sw/trials/3/tensorboard/train/events.out.tfevents.1.host.1.v2"
    assert store.read_bytes(events_key)[0] == job.events.read_bytes()


def test_a_late_worse_attempt_of_the_trial_never_replaces_the_better_checkpoint(store_uri, tmp_path):
    store = open_store(store_uri)
    first = JobFolder(tmp_path / "attempt1")
    uploader = TrialUploader(store, "sw", "3", first.path, "val_loss", "min", sync_seconds=0.2)
    uploader.on_epoch_end(*first.end_epoch(1, 0.3))
    assert not uploader.close(timeout=30).failures
    good = pointer(store)

    # The same trial restarted from scratch elsewhere (say its node died) reaches only 0.6.
    second = JobFolder(tmp_path / "attempt2")
    late = TrialUploader(store, "sw", "3", second.path, "val_loss", "min", sync_seconds=0.2)
    late.on_epoch_end(*second.end_epoch(1, 0.6))
    assert not late.close(timeout=30).failures

    assert pointer(store) == good
    _, data = assert_pointer_names_a_complete_object(store)
    assert data == (first.path / "checkpoints" / "best.keras").read_bytes()


def test_store_down_does_not_block_training_and_failures_are_logged(gcs_disk, tmp_path, caplog):
    server, bucket = gcs_disk
    store = open_store(f"gs://{bucket}/exp", request_timeout=2, retry_deadline=3)
    job = JobFolder(tmp_path / "job")
    caplog.set_level(logging.WARNING, logger="cluster.results.uploader")
    held = HeldStore(store)
    uploader = TrialUploader(held, "sw", "3", job.path, "val_loss", "min", sync_seconds=0.5)
    server.stop(kill=True)

    def train():
        uploader.on_epoch_end(*job.end_epoch(1, 0.9))
        assert held.entered.wait(120), "the upload of epoch 1 never started"
        # The upload thread now waits inside the store; training goes on regardless.
        uploader.on_epoch_end(*job.end_epoch(2, 0.8))
        uploader.on_epoch_end(*job.end_epoch(3, 0.7))
        return held.inside

    inside_when_trained, training_thread = returns(train, "the epoch hook")
    # Every epoch ended while an upload was waiting on the store, and the training thread never called it.
    assert inside_when_trained == 1 and held.inside == 1
    assert training_thread not in held.callers and held.callers
    held.release()  # on to the stopped server
    wait_for(lambda: "Upload failed" in caplog.text, timeout=30, what="the failure in the trial's log")
    assert "sw/trials/3" in caplog.text

    # The bucket comes back: the pending checkpoint goes up before close() returns.
    server.start()
    job.finish()
    report = uploader.close(timeout=60)
    assert report.finished and report.failures and not report.unsynced  # the outage is in the report...
    record, _ = assert_pointer_names_a_complete_object(store)  # ...and the final state is complete
    assert (record["epoch"], record["value"]) == (3, 0.7)
    assert store.stat("sw/trials/3/metrics.json") is not None


def test_close_gives_up_at_its_deadline_when_the_store_stays_down(gcs_disk, tmp_path, caplog):
    server, bucket = gcs_disk
    store = open_store(f"gs://{bucket}/exp", request_timeout=2, retry_deadline=30)
    job = JobFolder(tmp_path / "job")
    held = HeldStore(store)
    uploader = TrialUploader(held, "sw", "3", job.path, "val_loss", "min", sync_seconds=0.5)
    server.stop(kill=True)
    uploader.on_epoch_end(*job.end_epoch(1, 0.9))
    assert held.entered.wait(120), "the upload of epoch 1 never started"
    # The upload waits inside the store for as long as the test keeps the gate closed (for ever, for close()).
    report, _ = returns(lambda: uploader.close(timeout=3), "close(timeout=3)")
    assert held.inside == 1, "close() returned only once the upload had"
    assert not report.finished
    assert "did not finish within 3 s" in caplog.text
    # The abandoned thread is let go against a store that refuses, so that it ends here and not during a later test.
    held.release(fail=True)
    assert uploader.close(timeout=120).unsynced


def upload_read_position(folder: Path) -> int | None:
    """How far this process has read a file in `folder` (an uploader's snapshots of checkpoints), or None when
    no such file is open. The library reads the next chunk of a resumable upload only after the server took
    the one before: beyond one chunk, the upload is under way. Only this uploader's folder: an earlier test's
    uploader may still be retrying against its own, stopped server, with a file of its own open."""
    root = os.path.realpath(folder) + os.sep
    positions = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith(root):
                with open(f"/proc/self/fdinfo/{fd}") as info:
                    positions.append(int(info.readline().split()[1]))  # "pos:\t<offset>"
        except (OSError, ValueError, IndexError):
            continue  # closed meanwhile
    return max(positions, default=None)


def test_server_killed_mid_upload_never_leaves_a_pointer_to_a_partial_object(gcs_disk, tmp_path, caplog):
    server, bucket = gcs_disk
    chunk = 256 * 1024
    # 12 MiB in 256 KiB chunks: a resumable upload of 48 requests.
    store = open_store(f"gs://{bucket}/exp", chunk_size=chunk, request_timeout=5, retry_deadline=20)
    job = JobFolder(tmp_path / "job")
    caplog.set_level(logging.INFO, logger="cluster.results.uploader")
    uploader = TrialUploader(store, "sw", "3", job.path, "val_loss", "min", sync_seconds=0.5)
    uploader.on_epoch_end(*job.end_epoch(1, 0.9, checkpoint=os.urandom(64 * 1024)))
    assert wait_for(lambda: (pointer(store) or {}).get("epoch") == 1)

    big = os.urandom(12 * MiB)
    uploader.on_epoch_end(*job.end_epoch(2, 0.5, checkpoint=big))
    def under_way():  # more than one chunk sent
        position = upload_read_position(uploader.staging_dir)
        return position if position and position > chunk else None

    read = wait_for(under_way, timeout=60, interval=0.005, what="the checkpoint's upload to get under way")
    assert read < len(big) // 2, f"{read} bytes read already: the upload was about to finish"
    assert pointer(store)["epoch"] == 1
    server.stop(kill=True)  # returns once the server process is gone
    server.start()
    # After the outage: the pointer only ever names a complete object.
    assert_pointer_names_a_complete_object(store)

    job.finish()
    report = uploader.close(timeout=90)
    assert report.finished and not report.unsynced
    record, data = assert_pointer_names_a_complete_object(store)
    assert (record["epoch"], data) == (2, big)  # completed after the restart (resumed or re-sent)...
    whole = checksum_bytes(big)
    for info in store.list("sw/trials/3/checkpoints/"):  # ...and no partial object anywhere
        assert (info.size, info.crc32c) == (whole.size, whole.crc32c), info
    # The upload session died with the server: that transfer failed loudly, and the next sync re-sent it.
    assert report.failures and "Upload failed" in caplog.text
