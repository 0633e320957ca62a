"""A trial's resumable state in the store (local folder and the GCS emulator): uploaded so that a pointer
never names a partial state, restored on a node with an empty disk, the local one preferred when at least
as new, damaged copies skipped for the one before, and two sweeps sharing a name never mixing."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from cluster.results.trial_state import restore_state, stage_state, upload_state
from cluster.store import open_store
from cluster.store.ownership import LOCAL_MARKER, SweepNameTaken, claim_sweep
from cluster.store.pointers import read_json
from trainers.job_files import BEST_CHECKPOINT, PREVIOUS_STATE, STATE, STATE_MODEL, Progress, check_state, write_state

SWEEP, TRIAL = "sw", "0"


class BytesModel:
    """Stands in for a Keras model where only the saved bytes matter (the store never reads them)."""

    def __init__(self, epoch: int):
        self.data = os.urandom(20_000) + f"weights after epoch {epoch}".encode()

    def save(self, path) -> None:
        Path(path).write_bytes(self.data)


def train_epochs(job_dir: Path, epochs) -> dict:
    """The trainer's writes, epoch by epoch: returns epoch -> the model bytes saved."""
    saved = {}
    for epoch in epochs:
        model = BytesModel(epoch)
        write_state(job_dir / STATE, model, Progress(epoch, best_value=1.0 / epoch, best_epoch=epoch,
                                                     history=[{"epoch": e} for e in range(1, epoch + 1)]))
        saved[epoch] = model.data
    return saved


def upload_epochs(store, job_dir: Path, sweep_id: str, epochs) -> dict:
    saved = {}
    for epoch in epochs:
        saved.update(train_epochs(job_dir, [epoch]))
        record = upload_state(store, SWEEP, TRIAL, sweep_id, stage_state(job_dir))
        assert record["epoch"] == epoch
    return saved


def state_model_bytes(job_dir: Path) -> bytes:
    return (job_dir / STATE / STATE_MODEL).read_bytes()


def test_a_node_with_an_empty_disk_resumes_from_the_newest_state_in_the_store(store_uri, tmp_path):
    store = open_store(store_uri)
    saved = upload_epochs(store, tmp_path / "node-a", "id-1", [1, 2, 3])
    fresh = tmp_path / "node-b"
    outcome = restore_state(store, SWEEP, TRIAL, "id-1", fresh)
    assert (outcome.source, outcome.epoch) == ("store", 3)
    assert state_model_bytes(fresh) == saved[3]
    assert check_state(fresh / STATE).progress.history[-1] == {"epoch": 3}
    # Only the newest two states stay in the store.
    folders = {info.key.rsplit("/", 1)[0] for info in store.list(f"{SWEEP}/trials/{TRIAL}/state/")}
    pointer, _ = read_json(store, f"{SWEEP}/trials/{TRIAL}/state.json")
    assert folders == {pointer["folder"], pointer["previous"]["folder"]}
    assert pointer["previous"]["epoch"] == 2


def test_the_local_state_wins_when_it_is_at_least_as_new(store_uri, tmp_path):
    store = open_store(store_uri)
    job_dir = tmp_path / "job"
    upload_epochs(store, job_dir, "id-1", [1, 2])
    local = train_epochs(job_dir, [3])  # epoch 3 trained here, its upload not done yet
    outcome = restore_state(store, SWEEP, TRIAL, "id-1", job_dir)
    assert (outcome.source, outcome.epoch) == ("local", 3)
    assert state_model_bytes(job_dir) == local[3]


def test_an_older_local_state_is_replaced_by_the_store_and_kept_as_the_previous_one(store_uri, tmp_path):
    store = open_store(store_uri)
    upload_epochs(store, tmp_path / "node-a", "id-1", [1, 2, 3, 4])
    job_dir = tmp_path / "node-b"
    local = train_epochs(job_dir, [2])  # an earlier attempt of this trial ran here up to epoch 2
    outcome = restore_state(store, SWEEP, TRIAL, "id-1", job_dir)
    assert (outcome.source, outcome.epoch) == ("store", 4)
    assert check_state(job_dir / STATE).epochs_completed == 4
    assert (job_dir / PREVIOUS_STATE / STATE_MODEL).read_bytes() == local[2]


def test_a_damaged_state_in_the_store_falls_back_to_the_one_before(store_uri, tmp_path, caplog):
    store = open_store(store_uri)
    saved = upload_epochs(store, tmp_path / "node-a", "id-1", [1, 2])
    pointer, _ = read_json(store, f"{SWEEP}/trials/{TRIAL}/state.json")
    # The newest model object replaced by other bytes (what a partial copy or bit rot looks like).
    store.write_bytes(pointer["files"][STATE_MODEL]["key"], b"not the uploaded state")
    job_dir = tmp_path / "node-b"
    outcome = restore_state(store, SWEEP, TRIAL, "id-1", job_dir)
    assert (outcome.source, outcome.epoch) == ("store", 1)
    assert state_model_bytes(job_dir) == saved[1]
    assert any("state of epoch 2" in warning and "unusable" in warning for warning in outcome.warnings)
    assert "unusable" in caplog.text


def test_a_late_attempt_never_moves_the_pointer_back(store_uri, tmp_path):
    """A zombie attempt (its node partitioned, not dead) still uploading epoch 2 after the retry reached 3."""
    store = open_store(store_uri)
    upload_epochs(store, tmp_path / "retry", "id-1", [1, 2, 3])
    zombie = tmp_path / "zombie"
    train_epochs(zombie, [2])
    assert upload_state(store, SWEEP, TRIAL, "id-1", stage_state(zombie)) is None
    assert read_json(store, f"{SWEEP}/trials/{TRIAL}/state.json")[0]["epoch"] == 3


def test_a_state_of_another_sweep_is_never_restored(store_uri, tmp_path):
    store = open_store(store_uri)
    upload_epochs(store, tmp_path / "a", "sweep-a", [1, 2])
    outcome = restore_state(store, SWEEP, TRIAL, "sweep-b", tmp_path / "b")
    assert outcome.source == "none"
    assert any("belongs to another sweep" in warning for warning in outcome.warnings)
    assert not (tmp_path / "b" / STATE).exists()


def test_the_best_checkpoint_comes_back_with_the_state(store_uri, tmp_path):
    from cluster.results.uploader import TrialUploader

    store = open_store(store_uri)
    node_a = tmp_path / "node-a"
    train_epochs(node_a, [1])
    (node_a / BEST_CHECKPOINT).parent.mkdir(parents=True)
    (node_a / BEST_CHECKPOINT).write_bytes(b"best model of epoch 1")
    uploader = TrialUploader(store, SWEEP, TRIAL, node_a, "val_loss", "min", sweep_id="id-1")
    uploader.on_epoch_end(1, {"val_loss": 1.0}, str(node_a / STATE))
    report = uploader.close(60)
    assert not report.failures, report.failures
    node_b = tmp_path / "node-b"
    assert restore_state(store, SWEEP, TRIAL, "id-1", node_b).epoch == 1
    assert (node_b / BEST_CHECKPOINT).read_bytes() == b"best model of epoch 1"


def test_a_sweep_name_is_claimed_once_and_its_own_folder_keeps_the_claim(store_uri, tmp_path):
    store = open_store(store_uri)
    first = claim_sweep(store, SWEEP, tmp_path / "machine-1" / "sweep")
    # The same sweep resumed from its folder (a killed driver rerun) keeps its id.
    assert claim_sweep(store, SWEEP, tmp_path / "machine-1" / "sweep") == first
    assert json.loads((tmp_path / "machine-1" / "sweep" / LOCAL_MARKER).read_text())["sweep_id"] == first
    # Another sweep whose folder has the same name is refused before it trains, with the way out.
    with pytest.raises(SweepNameTaken) as refused:
        claim_sweep(store, SWEEP, tmp_path / "machine-2" / "sweep")
    assert f"{store.uri}/{SWEEP} already holds another sweep's results" in str(refused.value)
    assert "hydra.sweep.dir" in str(refused.value) and str(tmp_path / "machine-1" / "sweep") in str(refused.value)


def test_two_sweeps_claiming_one_name_at_once_get_one_winner(store_uri, tmp_path):
    store = open_store(store_uri)
    barrier, outcomes = threading.Barrier(4), []

    def claim(index: int) -> None:
        barrier.wait()
        try:
            outcomes.append(("won", claim_sweep(store, "race", tmp_path / f"machine-{index}")))
        except SweepNameTaken:
            outcomes.append(("refused", None))

    threads = [threading.Thread(target=claim, args=(index,)) for index in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(kind for kind, _ in outcomes) == ["refused", "refused", "refused", "won"]
