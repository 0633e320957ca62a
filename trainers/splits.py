"""What data loaders hand to the pipeline: numpy `Splits` held in memory, or `Streams` of examples read
from disk by tf.data. Also the one way splits are cut, so every loader holds out the same way."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from .schema import ConfigError

# Splits do not depend on the job's seed, so trials with different seeds are scored on the same examples.
SPLIT_SEED = 12345


@dataclass
class Splits:
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    x_val: Optional[np.ndarray] = None
    y_val: Optional[np.ndarray] = None
    # data=csv: the model's inputs and what became of each column (trainers.csv_table.TableInfo).
    table: Any = None


@dataclass
class Streams:
    """Unbatched tf.data datasets of (example, label), for data that is read from files as it trains.
    The pipeline caches, shuffles (training only), batches and prefetches them like numpy splits."""

    train: Any
    validation: Any
    test: Any
    element_shape: tuple[int, ...]
    num_train_examples: int
    num_outputs: int
    class_names: list[str]
    # Multiplied into the inputs by the model's first layer (image files give 0..255 pixels), so a saved
    # model takes images as they are read.
    rescale: Optional[float] = None
    # Statistics of the training part for the model's input and output layers (DataSpec fields such as
    # feature_mean, target_std), for streams whose loader computed them.
    adapted: dict = field(default_factory=dict)
    # Forecasting: mean absolute error of the naive forecast (the last observed value) per part.
    naive_forecast_mae: Optional[dict] = None


def holdout(x, y, fraction: float, rng: np.random.Generator):
    """Randomly hold out `fraction` of (x, y): returns x_keep, y_keep, x_held, y_held."""
    order = rng.permutation(len(x))
    cut = int(round(len(x) * (1.0 - fraction)))
    keep, held = order[:cut], order[cut:]
    return x[keep], y[keep], x[held], y[held]


def resolve_data_path(path: Optional[str], name: str, expected: str, example: str) -> Path:
    """`data.path` as an absolute path that exists. Relative paths mean the directory launch.py started in,
    also inside a sweep trial that runs elsewhere."""
    if not path:
        raise ConfigError(f"data={name} needs data.path: {expected}. Set it, e.g. `{example}`.")
    resolved = Path(path).expanduser()
    if not resolved.is_absolute():
        from hydra.utils import to_absolute_path  # outside a Hydra run: the current directory

        resolved = Path(to_absolute_path(str(resolved)))
    if not resolved.exists():
        raise ConfigError(f"data.path: {path!r} does not exist (looked for {resolved}). Expected {expected}.")
    return resolved
