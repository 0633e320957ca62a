"""Model builders. Each adapts its input layers to the data (images, token ids, tabular rows, windows of
readings) and ends in the head the task needs; the head stays float32 under mixed precision."""

from __future__ import annotations

import keras
from keras import layers

from .adapted_layers import apply_input_layers, model_inputs, scale_to_target_units
from .pipeline import DataSpec
from .schema import MODEL_INPUTS, ConfigError
from .transfer import transfer_body

# task -> (output activation, loss, metrics factory)
HEADS = {
    "binary": (
        "sigmoid", "binary_crossentropy",
        lambda: [keras.metrics.BinaryAccuracy(name="accuracy"), keras.metrics.AUC(name="auc")],
    ),
    "multiclass": (
        "softmax", "sparse_categorical_crossentropy",
        lambda: [keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    ),
    "multilabel": (
        "sigmoid", "binary_crossentropy",
        lambda: [keras.metrics.BinaryAccuracy(name="accuracy"), keras.metrics.AUC(name="auc", multi_label=True)],
    ),
    "regression": ("linear", "mean_squared_error", lambda: [keras.metrics.MeanAbsoluteError(name="mae")]),
}


def _regularizer(cfg):
    return keras.regularizers.L2(cfg.l2) if cfg.l2 > 0 else None


def _dense_block(x, units: int, cfg):
    x = layers.Dense(units, kernel_regularizer=_regularizer(cfg), use_bias=not cfg.batch_norm)(x)
    if cfg.batch_norm:
        x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    return layers.Dropout(cfg.dropout)(x) if cfg.dropout > 0 else x


def _embed(inputs, cfg, spec: DataSpec, mask_zero: bool):
    return layers.Embedding(spec.vocabulary_size, cfg.embedding_dim, mask_zero=mask_zero)(inputs)


def _mlp_body(inputs, cfg, spec: DataSpec):
    if spec.input_kind == "tokens":
        x = layers.GlobalAveragePooling1D()(_embed(inputs, cfg, spec, mask_zero=True))
    elif spec.input_kind in ("image", "sequence"):
        x = layers.Flatten()(inputs)  # a window of readings: every time step's features side by side
    else:
        x = inputs
    for units in cfg.units:
        x = _dense_block(x, units, cfg)
    return x


def _conv_block(x, filters: int, cfg, conv, pool):
    x = conv(
        filters, cfg.kernel_size, padding="same", kernel_regularizer=_regularizer(cfg), use_bias=not cfg.batch_norm
    )(x)
    if cfg.batch_norm:
        x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    return pool(x) if pool else x


def _cnn_body(inputs, cfg, spec: DataSpec):
    if spec.input_kind == "tokens":
        x = _embed(inputs, cfg, spec, mask_zero=False)
        for filters in cfg.filters:
            x = _conv_block(x, filters, cfg, layers.Conv1D, layers.MaxPooling1D(2))
        x = layers.GlobalMaxPooling1D()(x)
    elif spec.input_kind == "sequence":
        x = inputs
        for filters in cfg.filters:
            x = _conv_block(x, filters, cfg, layers.Conv1D, layers.MaxPooling1D(2) if x.shape[1] >= 4 else None)
        # Flatten, not global pooling: where in the window a pattern sits (how recent it is) matters.
        x = layers.Flatten()(x)
    else:
        x = inputs
        for filters in cfg.filters:
            # Pool only while the feature map can halve: 8x8 digits take two poolings, 28x28 more.
            can_pool = min(x.shape[1], x.shape[2]) >= 4
            x = _conv_block(x, filters, cfg, layers.Conv2D, layers.MaxPooling2D(2) if can_pool else None)
        x = layers.Flatten()(x)
    return _dense_block(x, cfg.dense_units, cfg)


def _rnn_body(inputs, cfg, spec: DataSpec):
    if spec.input_kind == "tokens":
        x = _embed(inputs, cfg, spec, mask_zero=True)
    elif spec.input_kind == "sequence":
        x = inputs  # already (time steps, features)
    else:
        height, width, channels = spec.input_shape
        x = layers.Reshape((height, width * channels))(inputs)  # rows are time steps
    cell = layers.GRU if cfg.name == "gru" else layers.LSTM  # lstm and text_lstm
    for index, units in enumerate(cfg.units):
        recurrent = cell(units, return_sequences=index < len(cfg.units) - 1, kernel_regularizer=_regularizer(cfg))
        x = layers.Bidirectional(recurrent)(x) if cfg.bidirectional else recurrent(x)
        if cfg.batch_norm:
            x = layers.BatchNormalization()(x)
        if cfg.dropout > 0:
            x = layers.Dropout(cfg.dropout)(x)
    return x


BODIES = {
    "mlp": _mlp_body, "cnn": _cnn_body, "lstm": _rnn_body, "gru": _rnn_body, "text_lstm": _rnn_body,
    "transfer": transfer_body,
}


def build_model(model_cfg, spec: DataSpec, augmentation=None) -> keras.Model:
    """`augmentation`: the augmentation config (image data only; None for none)."""
    if spec.input_kind not in MODEL_INPUTS[model_cfg.name]:
        raise ConfigError(f"model={model_cfg.name} cannot take {spec.input_kind!r} inputs.")
    inputs = model_inputs(spec)
    # Text becomes token ids, features normalised, categories encoded, pixels rescaled (and augmented in
    # training) in the model.
    x, body_spec = apply_input_layers(inputs, spec, augmentation, embedding_dim=model_cfg.embedding_dim)
    features = BODIES[model_cfg.name](x, model_cfg, body_spec)
    activation = HEADS[spec.task][0]
    # float32 head: softmax/sigmoid and the loss stay numerically safe under mixed precision. model.l2 covers
    # it too: for model=transfer it is the only kernel trained in the first stage.
    head = {"activation": activation, "dtype": "float32", "kernel_regularizer": _regularizer(model_cfg)}
    if spec.target_mean is None:
        outputs = layers.Dense(spec.num_outputs, name="predictions", **head)(features)
    else:
        standardised = layers.Dense(spec.num_outputs, name="standardised_predictions", **head)(features)
        outputs = scale_to_target_units(standardised, spec, inputs)
    return keras.Model(inputs, outputs, name=f"{model_cfg.name}_{spec.task}")


def compile_model(model: keras.Model, optimizer, task: str, jit_compile: bool, steps_per_execution: int) -> None:
    _, loss, metrics = HEADS[task]
    model.compile(
        optimizer=optimizer, loss=loss, metrics=metrics(), jit_compile=jit_compile,
        steps_per_execution=steps_per_execution,
    )
