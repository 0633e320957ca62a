"""The job's resumable state on its own disk: written so a kill at any moment leaves a complete one, read
back only when intact, and a damaged one set aside for the state before it (or a fresh start), never a
traceback on every rerun."""

from __future__ import annotations

import json
import logging
import os

import keras
import numpy as np
import pytest

from trainers.job_files import (
    PREVIOUS_STATE,
    PROGRESS,
    STATE,
    STATE_MODEL,
    Progress,
    Stage,
    check_state,
    update_progress,
    write_state,
)
from trainers.resume import load_resume_point


def tiny_model(seed: int) -> keras.Model:
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    return model


def save_epochs(job_dir, epochs) -> dict:
    """Write one state per epoch, each from a model with its own weights; returns epoch -> weights."""
    weights = {}
    for epoch in epochs:
        model = tiny_model(epoch)
        weights[epoch] = model.get_weights()
        write_state(job_dir / STATE, model, Progress(epoch, history=[{"epoch": e} for e in range(1, epoch + 1)]))
    return weights


def test_each_write_keeps_the_state_before_it_and_records_the_model_file_checksum(tmp_path):
    save_epochs(tmp_path, [1, 2, 3])
    assert check_state(tmp_path / STATE).epochs_completed == 3
    assert check_state(tmp_path / PREVIOUS_STATE).epochs_completed == 2
    progress = json.loads((tmp_path / STATE / PROGRESS).read_text())
    assert progress["files"][STATE_MODEL]["size"] == os.path.getsize(tmp_path / STATE / STATE_MODEL)
    assert not (tmp_path / "state.tmp").exists()


def test_a_truncated_model_file_is_detected_before_keras_reads_it(tmp_path):
    save_epochs(tmp_path, [1])
    model_file = tmp_path / STATE / STATE_MODEL
    os.truncate(model_file, os.path.getsize(model_file) // 2)
    found = check_state(tmp_path / STATE)
    assert not found.usable
    assert "damaged or incomplete" in found.problem and str(model_file) in found.problem


def test_resume_falls_back_to_the_previous_state_when_the_newest_is_damaged(tmp_path, caplog):
    weights = save_epochs(tmp_path, [1, 2])
    os.truncate(tmp_path / STATE / STATE_MODEL, 1000)
    with caplog.at_level(logging.WARNING):
        progress, model = load_resume_point(tmp_path, keras.models.load_model)
    assert progress.epochs_completed == 1
    for loaded, saved in zip(model.get_weights(), weights[1]):
        np.testing.assert_array_equal(loaded, saved)
    assert "damaged or incomplete" in caplog.text and "trying an older state" in caplog.text
    # Set aside, not rotated into state.prev by the next write.
    assert (tmp_path / "state.damaged").is_dir() and not (tmp_path / STATE).exists()


def test_resume_starts_fresh_with_a_warning_when_no_state_can_be_loaded(tmp_path, caplog):
    save_epochs(tmp_path, [1, 2])
    os.truncate(tmp_path / STATE / STATE_MODEL, 1000)
    # Same size and checksum recorded as written, yet not a Keras file: only loading it can tell.
    (tmp_path / PREVIOUS_STATE / STATE_MODEL).write_bytes(b"x" * 10)
    update_progress(tmp_path / PREVIOUS_STATE,
                    files={STATE_MODEL: {"size": 10, "crc32": __import__("zlib").crc32(b"x" * 10)}})
    with caplog.at_level(logging.WARNING):
        progress, model = load_resume_point(tmp_path, keras.models.load_model)
    assert (progress, model) == (None, None)
    assert "cannot be loaded" in caplog.text and "starts from epoch 0" in caplog.text


def test_no_state_is_a_fresh_start_without_warnings(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        assert load_resume_point(tmp_path, keras.models.load_model) == (None, None)
    assert caplog.text == ""


def test_updating_progress_replaces_the_file_so_links_to_the_old_one_keep_it(tmp_path):
    """The uploader hard-links a state's files while the job goes on: an in-place rewrite would change
    the copy it is uploading."""
    save_epochs(tmp_path, [1])
    progress = tmp_path / STATE / PROGRESS
    link = tmp_path / "linked-progress.json"
    os.link(progress, link)
    update_progress(tmp_path / STATE, finished=True)
    assert json.loads(progress.read_text())["finished"] is True
    assert "finished" not in json.loads(link.read_text())


@pytest.mark.parametrize("missing", [PROGRESS, STATE_MODEL])
def test_a_state_missing_a_file_is_not_usable(tmp_path, missing):
    save_epochs(tmp_path, [1])
    (tmp_path / STATE / missing).unlink()
    found = check_state(tmp_path / STATE)
    assert not found.usable and "missing or unreadable" in found.problem


# progress.json as the version before typed records wrote it (a fine-tuning job, ended by early stopping
# in its first stage): a job resumes from states written then.
EARLIER_PROGRESS = {
    "epochs_completed": 4,
    "best_value": 0.25,
    "best_epoch": 3,
    "history": [{"epoch": epoch, "val_loss": 1.0 / epoch} for epoch in range(1, 5)],
    "stages": [
        {"name": "train", "first_epoch": 1, "learning_rate": 0.001, "trainable_weights": 2, "stopped_early": True},
        {"name": "fine_tune", "first_epoch": 4, "learning_rate": 1e-05, "trainable_weights": 30, "unfrozen_layers": 14},
    ],
    "files": {"last.keras": {"size": 10, "crc32": 123}},
    "finished": True,
    "stopped_early": False,
}


def test_progress_reads_and_writes_the_format_states_were_written_in(tmp_path):
    progress = Progress.from_json(EARLIER_PROGRESS)
    assert (progress.epochs_completed, progress.best_value, progress.best_epoch) == (4, 0.25, 3)
    assert progress.stages[0] == Stage("train", 1, 0.001, 2, stopped_early=True)
    assert progress.stages[1].unfrozen_layers == 14 and progress.stages[1].stopped_early is None
    assert progress.finished and not progress.stopped_early
    assert progress.to_json() == EARLIER_PROGRESS
    (tmp_path / PROGRESS).write_text(json.dumps(EARLIER_PROGRESS))
    assert Progress.read(tmp_path) == progress


def test_a_state_from_before_stages_and_checksums_still_loads(tmp_path):
    """The oldest progress.json: no stages, no files, no finished flag."""
    model = tiny_model(0)
    (tmp_path / STATE).mkdir()
    model.save(tmp_path / STATE / STATE_MODEL)
    (tmp_path / STATE / PROGRESS).write_text(json.dumps({"epochs_completed": 2, "best_value": 0.5, "best_epoch": 2,
                                                         "history": [{"epoch": 1}, {"epoch": 2}]}))
    progress, loaded = load_resume_point(tmp_path, keras.models.load_model)
    assert (progress.epochs_completed, progress.stages, progress.finished, progress.files) == (2, [], False, {})
    assert loaded is not None


@pytest.mark.parametrize("record", [{}, {"epochs_completed": "two"},
                                    {"epochs_completed": 1, "stages": [{"first_epoch": 1}]}])
def test_a_progress_record_without_what_a_resume_needs_is_unusable(tmp_path, record):
    save_epochs(tmp_path, [1])
    (tmp_path / STATE / PROGRESS).write_text(json.dumps(record))
    found = check_state(tmp_path / STATE)
    assert not found.usable and "is missing or unreadable" in found.problem
