"""A resumed job trains on from the weights (and optimizer) its saved state holds, not only from its epoch
count: the model that enters `fit` after a resume is the one in state/last.keras."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from tests.conftest import PROJECT_ROOT
from trainers.job import train
from trainers.job_files import STATE, STATE_MODEL
from trainers.schema import register_schemas

register_schemas()
QUICK = ["model=mlp", "model.units=[16]", "data.max_train_samples=120", "trainer.verbose=0", "storage.uri=null",
         "trainer.callbacks.early_stopping.enabled=false", "trainer.callbacks.tensorboard.enabled=false"]


def _cfg(*overrides: str):
    with initialize_config_dir(config_dir=str(PROJECT_ROOT / "conf"), version_base="1.3"):
        return compose("config", overrides=[*QUICK, *overrides])


@pytest.fixture
def fit_entries(monkeypatch) -> list[dict]:
    """What the model holds each time the job calls `fit`, before any step of it runs."""
    entries: list[dict] = []
    original_fit = keras.Model.fit

    def recording_fit(model, *args, **kwargs):
        entries.append({"weights": [np.array(w) for w in model.get_weights()],
                        "iterations": int(keras.ops.convert_to_numpy(model.optimizer.iterations)),
                        "initial_epoch": kwargs.get("initial_epoch")})
        return original_fit(model, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "fit", recording_fit)
    return entries


def test_a_resumed_job_starts_fitting_from_the_saved_weights_and_optimizer(tmp_path, fit_entries):
    first = train(_cfg("trainer.epochs=2"), tmp_path)
    assert first["epochs_run"] == 2
    saved = keras.models.load_model(tmp_path / STATE / STATE_MODEL)
    saved_weights = saved.get_weights()
    saved_iterations = int(keras.ops.convert_to_numpy(saved.optimizer.iterations))
    assert saved_iterations > 0
    # The saved weights are not the initial ones: a fresh model would not pass for a restored one.
    assert any(not np.array_equal(a, b) for a, b in zip(fit_entries[0]["weights"], saved_weights))

    resumed = train(_cfg("trainer.epochs=3"), tmp_path)
    assert (resumed["resumed_from_epoch"], resumed["epochs_run"]) == (2, 3)
    entry = fit_entries[-1]
    assert entry["initial_epoch"] == 2
    assert len(entry["weights"]) == len(saved_weights)
    for restored, stored in zip(entry["weights"], saved_weights):
        np.testing.assert_array_equal(restored, stored)
    assert entry["iterations"] == saved_iterations  # the optimizer's step count (and so its moments' age) too
