"""Layers built from the training split that make a saved model take and give data as users have it:
raw strings (TextVectorization), raw feature values and readings (Normalization), raw pixels (Rescaling), regression
targets in their own units; plus image augmentation, which Keras' random layers apply only when
training and skip in evaluate/predict."""

from __future__ import annotations

import dataclasses
import re

import keras
import numpy as np
from keras import layers, ops

from .pipeline import DataSpec

INPUT_DTYPES = {"tokens": "int32", "text": "string"}


def input_dtype(input_kind: str) -> str:
    return INPUT_DTYPES.get(input_kind, "float32")


def augmentation_layers(augmentation) -> list[keras.layers.Layer]:
    """Random image transforms for the `augmentation` config; expects pixel values in 0..1."""
    if augmentation is None:
        return []
    chosen = []
    if augmentation.flip:
        chosen.append(layers.RandomFlip(augmentation.flip, name="random_flip"))
    if augmentation.rotation:
        chosen.append(layers.RandomRotation(augmentation.rotation, fill_mode="reflect", name="random_rotation"))
    if augmentation.zoom:
        chosen.append(layers.RandomZoom(augmentation.zoom, fill_mode="reflect", name="random_zoom"))
    if augmentation.translation:
        chosen.append(
            layers.RandomTranslation(
                augmentation.translation, augmentation.translation, fill_mode="reflect", name="random_translation"
            )
        )
    if augmentation.contrast:
        chosen.append(layers.RandomContrast(augmentation.contrast, value_range=(0.0, 1.0), name="random_contrast"))
    return chosen


def model_inputs(spec: DataSpec):
    """The model's input: one tensor, or for a table with categorical columns a dict of (rows, 1) columns
    keyed by column name, so a saved model takes rows as the file has them."""
    if spec.columns:
        return {
            column["name"]: keras.Input(
                shape=(1,),
                dtype="float32" if column["encoding"] == "numeric" else "string",
                name=_layer_name(column["name"]),
            )
            for column in spec.columns
        }
    return keras.Input(shape=spec.input_shape, dtype=input_dtype(spec.input_kind), name="inputs")


def _layer_name(column: str) -> str:
    # Column names such as "T (degC)" are not valid names for every exporter's signature.
    return re.sub(r"[^0-9A-Za-z_]", "_", column)


def encode_columns(inputs: dict, spec: DataSpec, embedding_dim: int):
    """One feature vector from a dict of columns: the numeric ones with missing cells (NaN) filled and
    normalised with training statistics, each categorical one looked up in its training-split vocabulary
    (index 0 is the out-of-vocabulary slot for categories never seen in training; every spelling of a missing
    cell goes to the missing category, or to that slot if training had none) and one-hot encoded or embedded."""
    numeric = [inputs[column["name"]] for column in spec.columns if column["encoding"] == "numeric"]
    parts = []
    if numeric:
        x = layers.Concatenate(name="numeric_features")(numeric) if len(numeric) > 1 else numeric[0]
        parts.extend(normalized_numbers(x, spec))
    for column in spec.columns:
        if column["encoding"] == "numeric":
            continue
        name, vocabulary = _layer_name(column["name"]), column["vocabulary"]
        ids = category_ids(inputs[column["name"]], column, spec.missing_spellings or [], name)
        if column["encoding"] == "one_hot":
            one_hot = layers.CategoryEncoding(len(vocabulary) + 1, output_mode="one_hot", name=f"one_hot_{name}")
            parts.append(one_hot(ids))
        else:
            embedded = layers.Embedding(len(vocabulary) + 1, embedding_dim, name=f"embedding_{name}")(ids)
            parts.append(layers.Flatten(name=f"flat_{name}")(embedded))
    return layers.Concatenate(name="features")(parts) if len(parts) > 1 else parts[0]


def category_ids(strings, column: dict, missing_spellings: list[str], name: str):
    """Ids of a categorical column's raw strings: 1.. in its vocabulary, 0 out of it; each spelling of a
    missing cell that is not itself in the vocabulary goes where the missing category is (0 without one)."""
    vocabulary = column["vocabulary"]
    extra = [spelling for spelling in missing_spellings if spelling not in vocabulary]
    ids = layers.StringLookup(vocabulary=vocabulary + extra, name=f"lookup_{name}")(strings)
    if not extra:
        return ids
    merged = np.arange(len(vocabulary) + len(extra) + 1)
    merged[len(vocabulary) + 1:] = vocabulary.index(column["missing"]) + 1 if column.get("missing") is not None else 0
    return ops.take(merged.astype("int64"), ids)


def normalized_numbers(x, spec: DataSpec) -> list:
    """Numeric features (rows, features) as the model body takes them: missing cells (NaN) filled with the
    training split's medians when the data has them (data=csv, data.impute=median), normalised with the
    training statistics; then a 0/1 was-missing column for each feature with missing cells in training."""
    indicators = None
    if spec.feature_median is not None:
        gaps = ops.isnan(x)
        x = ops.where(gaps, np.asarray(spec.feature_median, "float32"), x)
        if spec.missing_indicators:
            indicators = ops.cast(ops.take(gaps, list(spec.missing_indicators), axis=1), "float32")
    x = layers.Normalization(mean=spec.feature_mean, variance=spec.feature_variance, name="feature_normalization")(x)
    return [x] if indicators is None else [x, indicators]


def apply_input_layers(inputs, spec: DataSpec, augmentation=None, embedding_dim: int = 64):
    """Run `inputs` through the front layers the data needs. Returns the result and the DataSpec the model
    body should see (raw text leaves as token ids, a table's columns as one feature vector, so bodies only
    know tokens, images, tabular rows and windows of readings)."""
    if spec.columns:
        return encode_columns(inputs, spec, embedding_dim), dataclasses.replace(spec, columns=None)
    x = inputs
    if spec.input_kind == "text":
        _refuse_text_on_several_replicas()
        # A fixed vocabulary (adapted on the training split) is saved with the model as an asset.
        x = layers.TextVectorization(
            vocabulary=spec.vocabulary, output_sequence_length=spec.sequence_length, name="text_vectorization"
        )(x)
        return x, dataclasses.replace(
            spec, input_kind="tokens", input_shape=(spec.sequence_length,), vocabulary_size=len(spec.vocabulary)
        )
    if spec.input_kind == "tabular" and spec.feature_mean is not None:
        parts = normalized_numbers(x, spec)
        x = layers.Concatenate(name="features")(parts) if len(parts) > 1 else parts[0]
    if spec.input_kind == "sequence" and spec.feature_mean is not None:
        if spec.target_transform == "delta":
            x = relative_to_latest(x, spec)
        else:
            # Per feature (the last axis): a window's time steps share their columns' statistics.
            x = layers.Normalization(
                mean=spec.feature_mean, variance=spec.feature_variance, name="feature_normalization"
            )(x)
    if spec.input_kind == "image":
        if spec.rescale:
            x = layers.Rescaling(spec.rescale, name="rescale_pixels")(x)
        for layer in augmentation_layers(augmentation):
            x = layer(x)
    return x, spec


def relative_to_latest(window, spec: DataSpec):
    """A window of readings (batch, time steps, features) as each reading's difference from the window's latest
    reading, over the feature's standard deviation in training: what a model forecasting the change
    (target_transform=delta) reads, so a series that trends beyond its training levels still looks familiar.
    float32 whatever the precision policy (a level of 373.9 in bfloat16 is 374, so its small differences would be
    lost); plain Keras layers, so best.keras takes raw windows."""
    steps, _ = spec.input_shape
    latest = layers.Cropping1D((steps - 1, 0), dtype="float32", name="window_latest")(window)
    # Broadcast over the time steps; the latest step becomes zeros.
    relative = layers.Subtract(dtype="float32", name="window_minus_latest")([window, latest])
    return layers.Normalization(
        mean=np.zeros_like(spec.feature_mean), variance=spec.feature_variance, dtype="float32",
        name="relative_normalization",
    )(relative)


def _refuse_text_on_several_replicas() -> None:
    import tensorflow as tf

    from .schema import ConfigError

    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    if replicas > 1:
        # Measured with Keras 3.15/TF 2.21: fit and evaluate fail in an AddN over the string inputs.
        raise ConfigError(
            f"Raw-text data (input_kind 'text') trains on one replica only; this job has {replicas}. "
            "Keras 3 MirroredStrategy cannot take string inputs. Use one GPU or "
            "distribution.cpu_replicas=null."
        )


def scale_to_target_units(standardised, spec: DataSpec, inputs=None):
    """Regression: the body learns the standardised target (well conditioned for any units, e.g. prices
    in the 100,000s) and this layer maps it back, so losses, metrics and predictions are in the target's
    own units. float32 like the rest of the head. A forecast with target_transform=delta learns the change
    from the last observed value: it is mapped to the target's units and added to that value, read from the
    raw window `inputs`, so the model still returns levels."""
    if spec.target_transform != "delta":
        return layers.Rescaling(
            spec.target_std, offset=spec.target_mean, dtype="float32", name="predictions"
        )(standardised)
    change = layers.Rescaling(spec.target_std, offset=spec.target_mean, dtype="float32", name="predicted_change")(
        standardised
    )
    return layers.Add(dtype="float32", name="predictions")([last_observed_targets(inputs, spec), change])


def last_observed_targets(inputs, spec: DataSpec):
    """The target columns of a window's latest time step, as they are: (batch, time steps, features) ->
    (batch, targets). Built from cropping and reshaping layers only (no matrix product, which TF32 on a GPU
    would round; no custom layer, so `keras.models.load_model` needs nothing but Keras)."""
    steps, num_features = spec.input_shape
    latest = layers.Cropping1D((steps - 1, 0), dtype="float32", name="latest_reading")(inputs)
    features = layers.Reshape((num_features, 1), dtype="float32", name="latest_features")(latest)
    columns = [
        layers.Cropping1D((position, num_features - 1 - position), dtype="float32", name=f"last_observed_{index}")(
            features
        )
        for index, position in enumerate(spec.target_positions)
    ]
    joined = columns[0] if len(columns) == 1 else layers.Concatenate(axis=1, dtype="float32")(columns)
    return layers.Reshape((len(columns),), dtype="float32", name="last_observed_targets")(joined)
