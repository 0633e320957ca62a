"""The local mirror TensorBoard reads for a sweep in a bucket: only trials' event files, laid out as a
sweep folder, and a grown file extended in place (TensorBoard keeps the file it has open)."""

from __future__ import annotations

import os

from cluster.results.event_mirror import EventMirror, local_name
from cluster.store import open_store


def test_only_trials_event_files_are_mirrored_as_a_sweep_folder_lays_them_out():
    assert local_name("trials/3/tensorboard/train/events.out") == "3/tensorboard/train/events.out"
    assert local_name("sw/trials/3/tensorboard/events.out") == "sw/3/tensorboard/events.out"
    assert local_name("trials/3/checkpoints/best-e0001-ab.keras") is None
    assert local_name("trials/3/state/e0001-ab/last.keras") is None
    assert local_name("manifest.json") is None


def test_a_grown_event_file_is_extended_in_place_and_a_rewritten_one_replaced(tmp_path):
    store = open_store(str(tmp_path / "bucket" / "sweep"))
    key = "trials/0/tensorboard/train/events.out.tfevents.1"
    store.write_bytes(key, b"epoch 1;")
    mirror = EventMirror(store, tmp_path / "mirror")
    assert mirror.sync() == 1
    local = tmp_path / "mirror" / "0" / "tensorboard" / "train" / "events.out.tfevents.1"
    assert local.read_bytes() == b"epoch 1;"
    inode = os.stat(local).st_ino
    assert mirror.sync() == 0, "an unchanged object is not fetched again"

    store.write_bytes(key, b"epoch 1;epoch 2;")
    assert mirror.sync() == 1
    assert local.read_bytes() == b"epoch 1;epoch 2;"
    assert os.stat(local).st_ino == inode, "the file a reader has open must grow, not be swapped"

    store.write_bytes(key, b"rewritten")
    mirror.sync()
    assert local.read_bytes() == b"rewritten"
