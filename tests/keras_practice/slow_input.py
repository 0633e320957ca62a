"""A data source whose speed a test chooses: the digits as a stream whose every example takes `seconds` to read
(a sleep in tf.py_function, as a slow disk or decoder would), or as fast as memory (seconds=0: no py_function).

    python -m tests.keras_practice.slow_input JOB_DIR SECONDS OVERRIDE...   # trains a job on it, in this process
"""

from __future__ import annotations

import sys
import time

import numpy as np


def slow_digits_loader(seconds: float):
    """A stream loader (trainers.datasets.STREAM_LOADERS) of the digits' splits (the same as data=digits)."""

    def load(cfg):
        import tensorflow as tf

        from trainers.datasets import load_splits
        from trainers.splits import Streams

        splits = load_splits(cfg)

        def take(image, label):
            def wait(image):
                time.sleep(seconds)
                return image

            image = tf.py_function(wait, [image], tf.float32)
            image.set_shape(splits.x_train.shape[1:])
            return image, label

        def stream(x, y, slow: bool):
            dataset = tf.data.Dataset.from_tensor_slices((x, y))
            return dataset.map(take) if slow and seconds else dataset

        return Streams(
            train=stream(splits.x_train, splits.y_train, slow=True),
            validation=stream(splits.x_val, splits.y_val, slow=False),
            test=stream(splits.x_test, splits.y_test, slow=False),
            element_shape=tuple(splits.x_train.shape[1:]), num_train_examples=len(splits.x_train),
            num_outputs=int(np.max(splits.y_train)) + 1, class_names=[str(digit) for digit in range(10)],
        )

    return load


def train_on_slow_digits(job_dir: str, seconds: float, overrides: list[str]) -> dict:
    """trainers.job.train on the digits read at `seconds` per training example (data=digits's splits)."""
    from hydra import compose, initialize_config_dir

    from tests.conftest import PROJECT_ROOT
    from trainers import datasets
    from trainers.job import train
    from trainers.schema import register_schemas

    register_schemas()
    with initialize_config_dir(config_dir=str(PROJECT_ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=["data=digits", *overrides])
    previous = datasets.STREAM_LOADERS.get("digits")
    datasets.STREAM_LOADERS["digits"] = slow_digits_loader(seconds)
    try:
        return train(cfg, job_dir)
    finally:
        if previous is None:
            datasets.STREAM_LOADERS.pop("digits")
        else:
            datasets.STREAM_LOADERS["digits"] = previous


if __name__ == "__main__":
    train_on_slow_digits(sys.argv[1], float(sys.argv[2]), sys.argv[3:])
