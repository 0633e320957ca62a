"""tf.data input pipelines: shuffle the training split only, batch, cache, prefetch."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from .datasets import Splits, num_outputs


@dataclass
class DataSpec:
    """What a model builder needs to know about the data."""

    input_shape: tuple[int, ...]
    input_kind: str
    task: str
    num_outputs: int
    vocabulary_size: int
    num_train_examples: int


@dataclass
class Pipelines:
    train: tf.data.Dataset
    validation: tf.data.Dataset
    test: tf.data.Dataset
    spec: DataSpec


def _batched(x: np.ndarray, y: np.ndarray, batch_size: int, cache: bool, shuffle_buffer: int | None, seed: int):
    dataset = tf.data.Dataset.from_tensor_slices((x, y))
    if cache:
        dataset = dataset.cache()
    if shuffle_buffer:
        dataset = dataset.shuffle(min(shuffle_buffer, len(x)), seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def build_pipelines(data_cfg, splits: Splits, global_batch_size: int, seed: int) -> Pipelines:
    spec = DataSpec(
        input_shape=tuple(splits.x_train.shape[1:]),
        input_kind=data_cfg.input_kind,
        task=data_cfg.task,
        num_outputs=num_outputs(data_cfg.task, splits.y_train),
        vocabulary_size=data_cfg.num_words,
        num_train_examples=len(splits.x_train),
    )
    cache = data_cfg.cache
    return Pipelines(
        train=_batched(splits.x_train, splits.y_train, global_batch_size, cache, data_cfg.shuffle_buffer, seed),
        validation=_batched(splits.x_val, splits.y_val, global_batch_size, cache, None, seed),
        test=_batched(splits.x_test, splits.y_test, global_batch_size, cache, None, seed),
        spec=spec,
    )
