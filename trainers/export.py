"""Proof that a saved model is usable: the one Keras call `pull` needs, kept out of cluster/."""

from __future__ import annotations


def check_loadable(path: str) -> str:
    """Load a `.keras` file with safe mode on (no arbitrary code from lambdas) and describe it.
    Raises ValueError naming the file when Keras cannot load it."""
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    try:
        model = keras.models.load_model(path, safe_mode=True)
    except Exception as error:  # noqa: BLE001 - any failure means "not usable"; say which file and why
        raise ValueError(f"{path} does not load with keras.models.load_model(safe_mode=True): {error}") from error
    inputs = [tuple(t.shape) for t in model.inputs]
    outputs = [tuple(t.shape) for t in model.outputs]
    return f"loads: {model.count_params():,} parameters, inputs {inputs}, outputs {outputs}"
