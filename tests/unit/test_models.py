"""Every model builds for every kind of data it accepts, with the head and loss the task needs, under
every precision policy."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from omegaconf import OmegaConf

from trainers import devices
from trainers.models import HEADS, build_model, compile_model
from trainers.pipeline import DataSpec
from trainers.schema import MODEL_INPUTS, CNNConfig, MLPConfig, RNNConfig, TransferConfig

MODEL_CONFIGS = {
    "mlp": MLPConfig(name="mlp", units=[16], dropout=0.1),
    "cnn": CNNConfig(name="cnn", filters=[8, 8], dense_units=16, dropout=0.1, batch_norm=True),
    "lstm": RNNConfig(name="lstm", units=[8, 8], l2=1e-4),
    "gru": RNNConfig(name="gru", units=[8], bidirectional=True),
    "text_lstm": RNNConfig(name="text_lstm", units=[8], bidirectional=True),
    # No weight download in tests; the 8x8 images are resized to the backbone's minimum inside the model.
    "transfer": TransferConfig(name="transfer", backbone="mobilenet_v2", weights=None, input_size=32, alpha=0.35),
}
SHAPES = {"image": (8, 8, 1), "tokens": (20,), "text": (), "tabular": (30,), "sequence": (12, 3)}
WORDS = ["good", "bad", "film", "plot"]


def spec(input_kind: str, task: str, outputs: int = 1) -> DataSpec:
    # Raw text: the vectorizer inside the model needs a vocabulary (normally adapted on the training split).
    text = {"vocabulary": ["", "[UNK]", *WORDS], "sequence_length": 12} if input_kind == "text" else {}
    return DataSpec(SHAPES[input_kind], input_kind, task, outputs, vocabulary_size=100, num_train_examples=32, **text)


def example_batch(input_kind: str, size: int = 4) -> np.ndarray:
    rng = np.random.default_rng(0)
    if input_kind == "text":
        return tf.constant([" ".join(rng.choice(WORDS + ["unseen"], size=6)) for _ in range(size)])
    if input_kind == "tokens":
        return rng.integers(1, 100, size=(size, *SHAPES["tokens"])).astype("int32")
    return rng.random((size, *SHAPES[input_kind])).astype("float32")


def model_cfg(name: str):
    return OmegaConf.structured(MODEL_CONFIGS[name])


@pytest.fixture(autouse=True)
def float32_policy():
    keras.mixed_precision.set_global_policy("float32")
    yield
    keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("name,input_kind", [(name, kind) for name, kinds in MODEL_INPUTS.items() for kind in kinds])
def test_model_builds_and_predicts_for_every_input_kind_it_accepts(name, input_kind):
    model = build_model(model_cfg(name), spec(input_kind, "multiclass", outputs=5))
    predictions = model.predict(example_batch(input_kind), verbose=0)
    assert predictions.shape == (4, 5)
    np.testing.assert_allclose(predictions.sum(axis=1), 1.0, rtol=1e-5)  # softmax head


def test_lstm_reads_image_rows_as_time_steps():
    model = build_model(model_cfg("lstm"), spec("image", "multiclass", 10))
    reshape = next(layer for layer in model.layers if isinstance(layer, keras.layers.Reshape))
    assert tuple(reshape.output.shape[1:]) == (8, 8)  # 8 time steps of 8 pixels


@pytest.mark.parametrize(
    "task,outputs,activation,loss",
    [
        ("binary", 1, "sigmoid", "binary_crossentropy"),
        ("multiclass", 10, "softmax", "sparse_categorical_crossentropy"),
        ("multilabel", 3, "sigmoid", "binary_crossentropy"),
        ("regression", 1, "linear", "mean_squared_error"),
    ],
)
def test_head_and_loss_follow_the_task(task, outputs, activation, loss):
    model = build_model(model_cfg("mlp"), spec("tabular", task, outputs))
    head = model.get_layer("predictions")
    assert head.units == outputs and head.activation.__name__ == activation
    assert HEADS[task][1] == loss
    compile_model(model, keras.optimizers.Adam(), task, jit_compile=False, steps_per_execution=1)
    labels = {
        "binary": np.array([0, 1, 1, 0], "float32"),
        "multiclass": np.array([0, 3, 9, 2]),
        "multilabel": np.array([[1, 0, 1], [0, 0, 1], [1, 1, 0], [0, 1, 0]], "float32"),
        "regression": np.array([1.5, -2.0, 0.3, 10.0], "float32"),
    }[task]
    history = model.fit(example_batch("tabular"), labels, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_l2_dropout_and_batch_norm_come_from_config():
    cfg = OmegaConf.structured(CNNConfig(name="cnn", filters=[8], dense_units=16, dropout=0.4, l2=1e-3,
                                         batch_norm=True))
    model = build_model(cfg, spec("image", "multiclass", 10))
    kinds = {type(layer).__name__ for layer in model.layers}
    assert {"BatchNormalization", "Dropout"} <= kinds
    assert any(getattr(layer, "kernel_regularizer", None) is not None for layer in model.layers)
    assert model.losses  # the L2 penalty is part of the loss


@pytest.mark.parametrize("policy,compute_dtype",
                         [("float32", "float32"), ("mixed_float16", "float16"), ("mixed_bfloat16", "bfloat16")])
def test_precision_policy_is_applied_and_head_stays_float32(policy, compute_dtype):
    assert devices.apply_precision(policy) == policy
    model = build_model(model_cfg("cnn"), spec("image", "multiclass", 10))
    conv = next(layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D))
    assert conv.compute_dtype == compute_dtype and conv.variable_dtype == "float32"
    assert model.get_layer("predictions").compute_dtype == "float32"
    compile_model(model, keras.optimizers.Adam(), "multiclass", jit_compile=False, steps_per_execution=1)
    history = model.fit(example_batch("image", 16), np.arange(16) % 10, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    # Keras wraps the optimizer for dynamic loss scaling under float16 only.
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer) == (policy == "mixed_float16")
    assert model.predict(example_batch("image"), verbose=0).dtype == np.float32


@pytest.mark.parametrize("capabilities, expected", [
    ([], "float32"),  # no GPU
    ([(7, 0), (8, 6)], "mixed_float16"),  # tensor cores on every GPU
    ([(8, 6), (6, 1)], "float32"),  # one without
    ([None], "float32"),  # a GPU that does not say
])
def test_auto_precision_follows_the_gpus(monkeypatch, capabilities, expected):
    """The GPUs TensorFlow sees are given here, not this machine's (which ran the test with a skip before)."""
    gpus = [f"GPU:{index}" for index in range(len(capabilities))]
    details = {gpu: ({} if capability is None else {"compute_capability": capability})
               for gpu, capability in zip(gpus, capabilities)}
    monkeypatch.setattr(devices.tf.config, "list_physical_devices", lambda kind=None: gpus if kind == "GPU" else [])
    monkeypatch.setattr(devices.tf.config.experimental, "get_device_details", details.__getitem__)
    assert devices.resolve_precision("auto") == expected
