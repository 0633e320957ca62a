"""data=reuters (46 topics, word ids, as data=imdb) and data=boston_housing (regression) through launch.py,
offline: data.path is a file in the format keras.datasets downloads, made by the test."""

from __future__ import annotations

import json

import numpy as np

from tests.conftest import run_launch
from tests.keras_practice.makers import write_boston_npz, write_reuters_npz


def train(tmp_path_factory, *overrides):
    job_dir = tmp_path_factory.mktemp("job")
    result = run_launch("model=mlp", "trainer.verbose=0", "storage.uri=null", f"hydra.run.dir={job_dir}", *overrides)
    assert result.returncode == 0, result.stderr[-3000:]
    return job_dir, json.loads((job_dir / "metrics.json").read_text())


def test_reuters_newswires_are_classified_into_46_topics(tmp_path_factory):
    import keras

    reuters = write_reuters_npz(tmp_path_factory.mktemp("data") / "reuters.npz")
    job_dir, metrics = train(tmp_path_factory, "data=reuters", f"data.path={reuters}", "data.sequence_length=40",
                             "model.embedding_dim=16", "trainer.epochs=6", "lr=1e-2")
    # 320 for training (Keras' 80 %), 10 % of them held out for validation.
    assert metrics["num_train_examples"] == 288
    # Four topics in the file; each newswire names its topic three times among twelve common words.
    assert metrics["test"]["accuracy"] >= 0.8
    model = keras.models.load_model(job_dir / "checkpoints" / "best.keras")
    assert model.output.shape[-1] == 46 and model.input.dtype == "int32"


def test_boston_house_prices_are_predicted_in_thousands_of_dollars(tmp_path_factory):
    boston = write_boston_npz(tmp_path_factory.mktemp("data") / "boston_housing.npz")
    _, metrics = train(tmp_path_factory, "data=boston_housing", f"data.path={boston}", "trainer.epochs=20", "lr=1e-2")
    prices = np.load(boston)["y"]
    assert metrics["num_train_examples"] == 343  # 404 of 506 for training (Keras' split), 15 % of them validate
    assert set(metrics["test"]) == {"loss", "mae"}
    assert metrics["test"]["mae"] < 0.3 * prices.std()  # guessing the mean is off by about 0.8 std
