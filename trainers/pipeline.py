"""tf.data input pipelines: shuffle the training split only (per epoch: trainers/epoch_order.py), batch, cache,
prefetch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

import numpy as np
import tensorflow as tf

from .datasets import Splits, Streams, num_outputs
from .epoch_order import TrainingOrder
from .sharding import by_examples


@dataclass
class DataSpec:
    """What a model builder needs to know about the data."""

    input_shape: tuple[int, ...]
    input_kind: str
    task: str
    num_outputs: int
    vocabulary_size: int
    num_train_examples: int
    # Layers at the front of the model, built from the training split only (see trainers/adapted_layers.py).
    # Raw text: the TextVectorization vocabulary and the token sequence length it pads/cuts to.
    vocabulary: Optional[list[str]] = None
    sequence_length: int = 0
    # Tabular: per-feature mean and variance for a Normalization layer.
    feature_mean: Optional[np.ndarray] = None
    feature_variance: Optional[np.ndarray] = None
    # data=csv with data.impute=median: per numeric feature, what a missing cell (NaN) becomes inside the model,
    # and the positions of those that get a 0/1 was-missing input (a missing cell in training); the cell
    # spellings a categorical column's missing category takes (data.missing_values).
    feature_median: Optional[np.ndarray] = None
    missing_indicators: Optional[list[int]] = None
    missing_spellings: Optional[list[str]] = None
    # data=csv: what each column of the file became (metrics.json's `features`).
    features: Optional[dict] = None
    # Tables with categorical columns: the model takes a dict of columns; per column, in file order,
    # {"name", "encoding": numeric | one_hot | embedding, "vocabulary": training-split categories}.
    columns: Optional[list[dict]] = None
    # Images: factor that brings pixel values to 0..1 (image files give 0..255).
    rescale: Optional[float] = None
    # Regression: training-split mean and standard deviation of the target (lists: one per target column
    # of a multi-column forecast), for the output layer.
    target_mean: Optional[Union[float, list]] = None
    target_std: Optional[Union[float, list]] = None
    # Forecasting with data.target_transform=delta: the standardised output is a change, which the model adds to
    # the last observed value of the target columns (their positions among the window's features).
    target_transform: str = "level"
    target_positions: Optional[list[int]] = None
    # What the saved model takes, for whoever calls it later: the dtype of one example ("string" for raw
    # text, "columns" for a table taken as a dict of columns) and the range of its values in training.
    input_dtype: Optional[str] = None
    input_range: Optional[tuple[float, float]] = None

    def inputs(self) -> dict:
        """The model's input as metrics.json records it (and `pull` prints it)."""
        return {"shape": [None, *self.input_shape], "dtype": self.input_dtype,
                "range": list(self.input_range) if self.input_range is not None else None}


def _input_description(x) -> dict:
    """dtype and value range of the training inputs, as the model receives them (after the loader's own
    scaling, e.g. the digits' 0..16 brought to 0..1)."""
    if not isinstance(x, np.ndarray) or x.dtype.names is not None:  # a table's named columns
        return {"input_dtype": "columns"}
    if x.dtype == object or x.dtype.kind in "US":
        return {"input_dtype": "string"}
    if x.size == 0 or x.dtype.kind not in "biuf":
        return {"input_dtype": str(x.dtype)}
    if x.dtype.kind == "f" and np.isnan(x).all():
        return {"input_dtype": str(x.dtype)}
    # A table's missing cells are NaN: the range is of the values present.
    return {"input_dtype": str(x.dtype), "input_range": (float(np.nanmin(x)), float(np.nanmax(x)))}


@dataclass
class Pipelines:
    train: TrainingOrder  # each epoch's batches in an order of (seed, epoch): a mid-epoch resume is exact
    validation: tf.data.Dataset
    test: tf.data.Dataset
    spec: DataSpec
    # Forecasting: the naive forecast's MAE per part, to report beside the model's.
    naive_forecast_mae: Optional[dict] = None


def _batched(dataset: tf.data.Dataset, size: int, batch_size: int, cache: bool, shuffle_buffer: int | None, seed: int):
    if cache:
        dataset = dataset.cache()
    if shuffle_buffer:
        dataset = dataset.shuffle(min(shuffle_buffer, size), seed=seed, reshuffle_each_iteration=True)
    return by_examples(dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE))


def _adapted_to_training_split(data_cfg, splits: Splits) -> dict:
    """Statistics for the model's input layers, from the training examples only."""
    adapted = {}
    if data_cfg.input_kind == "text":
        from .text import build_vocabulary

        adapted["vocabulary"] = build_vocabulary(splits.x_train, data_cfg.num_words)
        adapted["sequence_length"] = data_cfg.sequence_length
    if data_cfg.input_kind == "tabular":
        from .tabular import column_encodings, describe_features, is_table, numeric_statistics

        table = splits.table
        impute = table is not None and table.impute
        statistics = numeric_statistics(splits.x_train, impute)
        adapted.update({key: value for key, value in statistics.items() if key != "missing_counts"})
        token = table.missing_spellings[0] if impute and table.missing_spellings else None
        if is_table(splits.x_train):
            adapted["columns"] = column_encodings(splits.x_train, data_cfg.max_one_hot_categories, token)
        if impute:
            adapted["missing_spellings"] = list(table.missing_spellings)
        if table is not None:
            adapted["features"] = describe_features(table, splits.x_train, adapted.get("columns"), statistics)
    if data_cfg.task == "regression":
        y = splits.y_train.astype("float64")
        # A constant target keeps scale 1 rather than dividing by zero.
        adapted["target_mean"], adapted["target_std"] = float(y.mean()), float(y.std()) or 1.0
    return adapted


def build_pipelines(data_cfg, data: Union[Splits, Streams], global_batch_size: int, seed: int) -> Pipelines:
    if isinstance(data, Streams):
        spec = DataSpec(
            input_shape=data.element_shape,
            input_kind=data_cfg.input_kind,
            task=data_cfg.task,
            num_outputs=data.num_outputs,
            vocabulary_size=data_cfg.num_words,
            num_train_examples=data.num_train_examples,
            rescale=data.rescale,
            # Streams give images as read: the model's first layer rescales them.
            input_dtype="float32",
            input_range=(0.0, float(round(1 / data.rescale))) if data.rescale else None,
            **data.adapted,
        )
        train, validation, test = data.train, data.validation, data.test
    else:
        spec = DataSpec(
            input_shape=tuple(data.x_train.shape[1:]),
            input_kind=data_cfg.input_kind,
            task=data_cfg.task,
            num_outputs=num_outputs(data_cfg.task, data.y_train, data.y_val, data.y_test),
            vocabulary_size=data_cfg.num_words,
            num_train_examples=len(data.x_train),
            **_input_description(data.x_train),
            **_adapted_to_training_split(data_cfg, data),
        )
        from .tabular import is_table, table_columns

        # A table with categorical columns goes in as a dict of columns (numbers and raw strings).
        as_input = table_columns if is_table(data.x_train) else (lambda x: x)
        train, validation, test = (
            tf.data.Dataset.from_tensor_slices((as_input(x), y))
            for x, y in ((data.x_train, data.y_train), (data.x_val, data.y_val), (data.x_test, data.y_test))
        )
    cache = data_cfg.cache
    size = spec.num_train_examples  # bounds the shuffle buffer, used for training only
    return Pipelines(
        train=TrainingOrder(train.cache() if cache else train, size, global_batch_size, data_cfg.shuffle_buffer, seed),
        validation=_batched(validation, size, global_batch_size, cache, None, seed),
        test=_batched(test, size, global_batch_size, cache, None, seed),
        spec=spec,
        naive_forecast_mae=data.naive_forecast_mae if isinstance(data, Streams) else None,
    )
