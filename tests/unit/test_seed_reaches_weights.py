"""`seed` decides a job's initial weights: the same seed gives the same weights and the same first epoch,
whatever ran before in the process; another seed gives other weights (compared weight by weight, not only
through losses, which the data's seeded shuffling alone would already change)."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from tests.conftest import PROJECT_ROOT
from trainers.job import train
from trainers.schema import register_schemas

register_schemas()
QUICK = ["model=mlp", "model.units=[16]", "data.max_train_samples=120", "trainer.epochs=1", "trainer.verbose=0",
         "storage.uri=null", "trainer.callbacks.early_stopping.enabled=false",
         "trainer.callbacks.tensorboard.enabled=false", "trainer.callbacks.checkpoint.enabled=false"]


def _cfg(*overrides: str):
    with initialize_config_dir(config_dir=str(PROJECT_ROOT / "conf"), version_base="1.3"):
        return compose("config", overrides=[*QUICK, *overrides])


@pytest.fixture
def initial_weights(monkeypatch) -> list[list[np.ndarray]]:
    """The weights the model holds each time a job calls `fit`, before its first step."""
    entries: list[list[np.ndarray]] = []
    original_fit = keras.Model.fit

    def recording_fit(model, *args, **kwargs):
        entries.append([np.array(weight) for weight in model.get_weights()])
        return original_fit(model, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "fit", recording_fit)
    return entries


def _run(tmp_path, name: str, seed: int, process_seed: int, initial_weights) -> tuple[list[np.ndarray], float]:
    # Something else in the process drew random numbers first (another job, a test): the job's seed must win.
    keras.utils.set_random_seed(process_seed)
    np.random.random(7)
    metrics = train(_cfg(f"seed={seed}"), tmp_path / name)
    return initial_weights[-1], metrics["history"][0]["loss"]


def test_the_seed_decides_the_initial_weights_and_the_first_epoch(tmp_path, initial_weights):
    weights, loss = _run(tmp_path, "a", seed=3, process_seed=101, initial_weights=initial_weights)
    again, loss_again = _run(tmp_path, "b", seed=3, process_seed=202, initial_weights=initial_weights)
    other, _ = _run(tmp_path, "c", seed=4, process_seed=101, initial_weights=initial_weights)

    assert len(weights) == len(again) == len(other)
    for first, second in zip(weights, again):
        np.testing.assert_array_equal(first, second)
    assert loss == loss_again  # trainer.deterministic (the default): bit for bit

    kernels = [index for index, weight in enumerate(weights) if weight.ndim == 2]
    assert len(kernels) >= 2
    for index in kernels:  # every randomly initialised kernel differs under another seed
        assert not np.allclose(weights[index], other[index]), f"kernel {index} is the same under seeds 3 and 4"
