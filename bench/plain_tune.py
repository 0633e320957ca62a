"""The baseline for the ASHA figure: Ray Tune's own ASHA against FIFO, with a plain Keras trainable and nothing
of the launcher (no Hydra, no trainers/, no cluster/).

    python -m bench.plain_tune --scheduler asha --seed 0 --samples 8 --epochs 20
    python -m bench.plain_tune --scheduler fifo --seed 0 --samples 8 --epochs 20

What a Ray Tune user writes: a function trainable that trains the launcher's `model=cnn` on scikit-learn's digits
(Conv2D 32 and 64, 3x3 'same', relu, 2x2 max pooling; Flatten; Dense 128 relu; Dropout 0.3; Dense 10 softmax;
Adam at the trial's lr, batch 64; 20 % test and 15 % validation held out) and calls `tune.report` after every
epoch; lr log-uniform in [1e-4, 3e-2] drawn by a BasicVariantGenerator seeded with --seed; one CPU per trial;
ASHA as conf/hparams_search/asha.yaml sets it (time_attr epoch, max_t = epochs, grace_period 1,
reduction_factor 2). bench/search_figures.py runs it beside the launcher's sweeps so that the launcher's
ASHA gain can be read against Tune's own on the same jobs. The last line printed is a JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def train(config: dict) -> None:
    import keras
    import numpy as np
    from keras import layers
    from ray import tune
    from sklearn.datasets import load_digits

    digits = load_digits()
    images, labels = (digits.images / 16.0).astype("float32")[..., np.newaxis], digits.target.astype("int32")
    order = np.random.RandomState(config["seed"]).permutation(len(images))
    test = int(0.2 * len(order))
    validation = int(0.15 * (len(order) - test))
    val_idx, train_idx = order[test:test + validation], order[test + validation:]

    keras.utils.set_random_seed(config["seed"])
    model = keras.Sequential([
        keras.Input(images.shape[1:]),
        layers.Conv2D(32, 3, padding="same", activation="relu"), layers.MaxPooling2D(2),
        layers.Conv2D(64, 3, padding="same", activation="relu"), layers.MaxPooling2D(2),
        layers.Flatten(), layers.Dense(128, activation="relu"), layers.Dropout(0.3),
        layers.Dense(10, activation="softmax"),
    ])
    model.compile(keras.optimizers.Adam(config["lr"]), "sparse_categorical_crossentropy", metrics=["accuracy"])

    class Report(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            tune.report({"epoch": epoch + 1, "val_loss": float(logs["val_loss"])})

    model.fit(images[train_idx], labels[train_idx], validation_data=(images[val_idx], labels[val_idx]),
              batch_size=64, epochs=config["epochs"], verbose=0, callbacks=[Report()])


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.plain_tune", description=__doc__.split("\n")[0])
    parser.add_argument("--scheduler", choices=["asha", "fifo"], required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--storage", default=None, help="Tune's storage_path (default: Ray's ~/ray_results)")
    args = parser.parse_args()

    import ray
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
    from ray.tune.search import BasicVariantGenerator

    started = time.time()
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    scheduler = (ASHAScheduler(time_attr="epoch", max_t=args.epochs, grace_period=1, reduction_factor=2)
                 if args.scheduler == "asha" else FIFOScheduler())
    tuner = tune.Tuner(
        tune.with_resources(train, {"cpu": 1}),
        param_space={"lr": tune.loguniform(1e-4, 3e-2), "seed": args.seed, "epochs": args.epochs},
        tune_config=tune.TuneConfig(metric="val_loss", mode="min", num_samples=args.samples, scheduler=scheduler,
                                    search_alg=BasicVariantGenerator(random_state=args.seed)),
        run_config=tune.RunConfig(name=f"plain-{args.scheduler}-{args.seed}-{int(started)}", storage_path=args.storage,
                                  verbose=0),
    )
    results = tuner.fit()
    wall = time.time() - started
    trials = [{"lr": result.config["lr"], "epochs": int(result.metrics.get("epoch", 0)),
               "best": float(result.metrics_dataframe["val_loss"].min())} for result in results]
    ray.shutdown()
    print(json.dumps({"wall_s": wall, "best": min(trial["best"] for trial in trials),
                      "epochs_run": sum(trial["epochs"] for trial in trials), "trials": trials}))


if __name__ == "__main__":
    main()
