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


# ------------------------------------------------------------------ serving exports (export.* config)
SERVING_DIR = "serving"
TFLITE_FILE = "model.tflite"


def next_version(serving_dir) -> int:
    """TF Serving serves the highest numeric sub-folder; a new export takes the next number."""
    from pathlib import Path

    versions = [int(path.name) for path in Path(serving_dir).glob("*") if path.is_dir() and path.name.isdigit()]
    return max(versions, default=0) + 1


def check_export_target(export_dir, export_cfg) -> None:
    """Before training: an explicit export.version that already exists would fail only after it."""
    from pathlib import Path

    from .schema import ConfigError

    if export_cfg is None or not export_cfg.saved_model or export_cfg.version is None:
        return
    taken = Path(export_dir) / SERVING_DIR / str(export_cfg.version)
    if taken.exists():
        raise ConfigError(
            f"export.version={export_cfg.version}: {taken} already exists and TF Serving versions are never "
            "overwritten. Choose another number, or leave export.version=null for the next free one."
        )


def export_model(model, export_dir, export_cfg) -> dict:
    """Write `model` as a SavedModel at <export_dir>/serving/<version>/ (TF Serving's layout, signature
    `serving_default`) and/or as <export_dir>/model.tflite. Returns the paths written, for metrics.json."""
    import shutil
    import tempfile
    from pathlib import Path

    import tensorflow as tf

    export_dir = Path(export_dir)
    serving_dir = export_dir / SERVING_DIR
    written: dict = {}
    if export_cfg.saved_model:
        version = export_cfg.version or next_version(serving_dir)
        target = serving_dir / str(version)
        if target.exists():
            raise FileExistsError(f"{target} exists; TF Serving versions are immutable: choose another export.version")
        # Written beside and renamed: TF Serving watching the folder never sees a half-written version.
        staging = serving_dir / f".{version}.tmp"
        shutil.rmtree(staging, ignore_errors=True)
        model.export(str(staging), format="tf_saved_model", verbose=False)
        staging.rename(target)
        written.update(saved_model=str(target), version=version)
    if export_cfg.tflite:
        with tempfile.TemporaryDirectory() as scratch:
            source = written.get("saved_model")
            if source is None:
                source = str(Path(scratch) / "saved_model")
                model.export(source, format="tf_saved_model", verbose=False)
            tflite_path = export_dir / TFLITE_FILE
            tflite_path.parent.mkdir(parents=True, exist_ok=True)
            tflite_path.write_bytes(_convert_to_tflite(tf, source))
        written["tflite"] = str(tflite_path)
    return written


def _convert_to_tflite(tf, saved_model_dir: str) -> bytes:
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir)
    try:
        return converter.convert()
    except Exception:  # noqa: BLE001 - e.g. string ops of TextVectorization: retry with TF ops
        # Ops outside TFLite's builtins (TextVectorization's string ops) run as TF "select" ops; the model
        # then needs an interpreter with the Flex delegate (the tensorflow pip package has it).
        converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
        return converter.convert()
