"""A job resumed with other values of lr, optimizer.* or model.dropout than its saved state (what a PBT exploit
hands a trial) trains on with the new values from the next epoch, and records the change; resumed with the
same values, nothing changes."""

from __future__ import annotations

import json
import shutil

from hydra import compose, initialize_config_dir

from tests.conftest import PROJECT_ROOT
from trainers.job import train
from trainers.schema import register_schemas

register_schemas()
QUICK = ["model=mlp", "data.max_train_samples=200", "trainer.verbose=0", "storage.uri=null",
         "trainer.callbacks.early_stopping.enabled=false", "model.dropout=0.2"]


def _cfg(*overrides: str):
    with initialize_config_dir(config_dir=str(PROJECT_ROOT / "conf"), version_base="1.3"):
        return compose("config", overrides=[*QUICK, *overrides])


def _tensorboard_learning_rates(job_dir) -> dict[int, float]:
    import tensorflow as tf
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    rates = {}
    for events in sorted((job_dir / "tensorboard" / "train").glob("events.out.tfevents.*")):
        accumulator = EventAccumulator(str(events), size_guidance={"tensors": 0})
        accumulator.Reload()
        for event in (accumulator.Tensors("epoch_learning_rate")
                      if "epoch_learning_rate" in accumulator.Tags()["tensors"] else []):
            rates[event.step] = float(tf.make_ndarray(event.tensor_proto))
    return rates


def test_a_state_resumed_with_other_values_trains_on_with_them(tmp_path):
    donor = tmp_path / "donor"
    train(_cfg("lr=0.001", "trainer.epochs=2"), donor)
    # The state of another job, resumed with explored values (as a PBT exploit hands it over).
    exploiter = tmp_path / "exploiter"
    exploiter.mkdir()
    for name in ("state", "checkpoints"):
        shutil.copytree(donor / name, exploiter / name)
    metrics = train(_cfg("lr=0.0012", "model.dropout=0.3", "optimizer.beta_1=0.8", "trainer.epochs=4"), exploiter)
    history = metrics["history"]
    assert [item["epoch"] for item in history] == [1, 2, 3, 4]
    assert [round(item["learning_rate"], 7) for item in history] == [0.001, 0.001, 0.0012, 0.0012]
    stage = metrics["stages"][0]
    assert stage["changes"] == [{"after_epoch": 2, "changed": {"lr": [0.001, 0.0012], "model.dropout": [0.2, 0.3],
                                                               "optimizer.beta_1": [0.9, 0.8]}}]
    assert stage["hyperparameters"]["lr"] == 0.0012
    rates = _tensorboard_learning_rates(exploiter)
    assert rates[2] == rates[3] and abs(rates[2] - 0.0012) < 1e-9, rates

    # Saved with the new values: resumed again with them, nothing more changes.
    progress = json.loads((exploiter / "state" / "progress.json").read_text())
    assert progress["stages"][0]["hyperparameters"]["model.dropout"] == 0.3
    again = train(_cfg("lr=0.0012", "model.dropout=0.3", "optimizer.beta_1=0.8", "trainer.epochs=5"), exploiter)
    assert again["stages"][0]["changes"] == stage["changes"]
    assert round(again["history"][-1]["learning_rate"], 7) == 0.0012
