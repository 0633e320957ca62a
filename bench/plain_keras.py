"""The baseline: the seed tutorials' MNIST CNN trained with plain `model.fit` on numpy arrays.

    python -m bench.plain_keras bench/.data/mnist_like.npz --epochs 4

What a user writes without the launcher: load the .npz, scale to 0..1, Conv2D 32/64/128 (3x3, relu, 'same'
padding as the launcher's cnn builder uses) each followed by 2x2 max pooling, Flatten, Dense 128 relu,
Dropout 0.5, Dense 10 softmax; Adam 1e-3, batch 128, `validation_split=0.1`. Nothing from `trainers/` is
imported. Devices and precision follow the launcher's rules so both sides use the same hardware: several
GPUs -> MirroredStrategy over all of them (global batch = 128 x replicas); `--precision auto` is
mixed_float16 when every GPU has compute capability >= 7.0, float32 otherwise.

Training samples/s are measured exactly as `trainers/callbacks.py` ThroughputLogger does (training part of
each epoch: from epoch begin to the start of validation; mean over the epochs after the first). The last
line printed is a JSON object with the rates, the wall-clock time (time.time()) at which training began
(`on_train_begin`, right before the first step) and the parameter count.
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # as launch.py does

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import layers  # noqa: E402


class Throughput(keras.callbacks.Callback):
    """Same measure as trainers.callbacks.ThroughputLogger, plus the time training begins."""

    def __init__(self, num_train_examples: int):
        super().__init__()
        self.num_train_examples = num_train_examples
        self.train_begin_time = None
        self.epoch_rates: list[float] = []
        self._epoch_start = 0.0
        self._train_seconds = None

    def on_train_begin(self, logs=None):
        self.train_begin_time = time.time()

    def on_epoch_begin(self, epoch, logs=None):
        self._train_seconds = None
        self._epoch_start = time.perf_counter()

    def on_test_begin(self, logs=None):
        if self._train_seconds is None:
            self._train_seconds = time.perf_counter() - self._epoch_start

    def on_epoch_end(self, epoch, logs=None):
        seconds = self._train_seconds or (time.perf_counter() - self._epoch_start)
        self.epoch_rates.append(self.num_train_examples / seconds)

    def steady_rate(self) -> float:
        rates = self.epoch_rates[1:] or self.epoch_rates
        return sum(rates) / len(rates)


def resolve_precision(precision: str) -> str:
    if precision != "auto":
        return precision
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return "float32"
    capabilities = [tf.config.experimental.get_device_details(gpu).get("compute_capability", (0, 0)) for gpu in gpus]
    return "mixed_float16" if all(cap >= (7, 0) for cap in capabilities) else "float32"


def build_model() -> keras.Model:
    return keras.Sequential(
        [
            keras.Input(shape=(28, 28, 1)),
            layers.Conv2D(32, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(64, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(128, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dense(128, activation="relu"),
            layers.Dropout(0.5),
            layers.Dense(10, activation="softmax", dtype="float32"),
        ]
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.plain_keras",
                                     description="Plain Keras baseline for bench/run.py")
    parser.add_argument("data", help=".npz with x_train, y_train, x_test, y_test (MNIST layout)")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=128, help="per replica")
    parser.add_argument("--precision", default="auto", help="auto, float32, mixed_float16 or mixed_bfloat16")
    parser.add_argument("--summary", action="store_true", help="print the model summary and exit")
    return parser.parse_args()


def devices(requested_precision: str) -> tuple[str, tf.distribute.Strategy]:
    """The precision policy (set globally) and the strategy: MirroredStrategy over several GPUs, else the default."""
    for gpu in tf.config.list_physical_devices("GPU"):
        tf.config.experimental.set_memory_growth(gpu, True)
    precision = resolve_precision(requested_precision)
    keras.mixed_precision.set_global_policy(precision)
    gpus = tf.config.list_logical_devices("GPU")
    strategy = tf.distribute.MirroredStrategy([g.name for g in gpus]) if len(gpus) > 1 else tf.distribute.get_strategy()
    return precision, strategy


def load_data(path: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The .npz's train and test arrays, images scaled to 0..1 with a channel axis."""
    with np.load(path) as npz:
        x_train, y_train = npz["x_train"], npz["y_train"]
        x_test, y_test = npz["x_test"], npz["y_test"]
    x_train = (x_train.astype("float32") / 255.0)[..., np.newaxis]
    x_test = (x_test.astype("float32") / 255.0)[..., np.newaxis]
    return x_train, y_train, x_test, y_test


def main() -> None:
    args = parse_args()
    precision, strategy = devices(args.precision)
    with strategy.scope():
        model = build_model()
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
    if args.summary:
        model.summary()
        print(json.dumps({"params": model.count_params()}))
        return

    keras.utils.set_random_seed(0)
    x_train, y_train, x_test, y_test = load_data(args.data)
    validation_split = 0.1
    num_train = len(x_train) - int(len(x_train) * validation_split)

    throughput = Throughput(num_train)
    history = model.fit(
        x_train,
        y_train,
        batch_size=args.batch_size * strategy.num_replicas_in_sync,
        epochs=args.epochs,
        validation_split=validation_split,
        callbacks=[throughput],
        verbose="auto",  # what the launcher uses by default (trainer.verbose=auto)
    )
    test = model.evaluate(x_test, y_test, verbose=0, return_dict=True)
    print(
        json.dumps(
            {
                "train_samples_per_second": throughput.steady_rate(),
                "epoch_rates": throughput.epoch_rates,
                "train_begin_time": throughput.train_begin_time,
                "num_train_examples": num_train,
                "replicas": strategy.num_replicas_in_sync,
                "precision": precision,
                "params": model.count_params(),
                "val_accuracy": history.history["val_accuracy"][-1],
                "test_accuracy": float(test["accuracy"]),
            }
        )
    )

if __name__ == "__main__":
    main()
