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
ONNX_FILE = "model.onnx"
TFJS_DIR = "tfjs"


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


def check_exportable(spec, export_cfg, policy: str) -> None:
    """After the data is read, before training: ONNX and TF.js take float32 models with numeric inputs
    only. A table with categorical columns gives the model string inputs (StringLookup's hash tables
    convert to neither), and mixed precision (also what precision=auto picks on a recent GPU) leaves
    float16/bfloat16 casts in the graph that the TF.js runtime has no type for."""
    from .schema import ConfigError

    wanted = [name for name in ("onnx", "tfjs") if export_cfg is not None and export_cfg.get(name)]
    if wanted and policy != "float32":
        raise ConfigError(
            f"export.{wanted[0]}=true needs a float32 model, but this job trains under {policy}. Set "
            f"precision=float32, or set export.{wanted[0]}=false."
        )
    categorical = [column["name"] for column in spec.columns or [] if column["encoding"] != "numeric"]
    if wanted and categorical:
        raise ConfigError(
            f"export.{wanted[0]}=true cannot export this model: its categorical columns ({', '.join(categorical)}) "
            "are string inputs, which tf2onnx and the TF.js writer do not convert. Use export.saved_model=true "
            f"(TF Serving) or export.tflite=true, or set export.{wanted[0]}=false."
        )


def export_model(model, export_dir, export_cfg) -> dict:
    """Write `model` as a SavedModel at <export_dir>/serving/<version>/ (TF Serving's layout, signature
    `serving_default`), as <export_dir>/model.tflite, <export_dir>/model.onnx and/or a TF.js graph model in
    <export_dir>/tfjs/, as `export_cfg` asks. Returns the paths written, for metrics.json."""
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
    if export_cfg.get("onnx"):
        written["onnx"] = _replace(export_dir / ONNX_FILE, lambda staging: export_onnx(model, staging))
    if export_cfg.get("tfjs"):
        from .tfjs import export_tfjs

        folder = _replace(export_dir / TFJS_DIR, lambda staging: export_tfjs(model, staging))
        written["tfjs"] = str(Path(folder) / "model.json")
    return written


def _replace(target, write) -> str:
    """Write beside `target`, then swap it in: a reader never sees half an export, a rerun replaces it."""
    import shutil
    from pathlib import Path

    target = Path(target)
    staging = target.with_name(f".{target.name}.tmp")
    if staging.is_dir():
        shutil.rmtree(staging)
    staging.unlink(missing_ok=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    write(staging)
    if target.is_dir():
        shutil.rmtree(target)
    staging.replace(target)
    return str(target)


def export_onnx(model, path) -> None:
    """`model` as an ONNX file (tf2onnx) whose inputs and output carry the Keras names (`inputs`, ...,
    `predictions`), for onnxruntime.

    Not Keras' own `model.export(format="onnx")`: it hands tf2onnx every tensor the function captures as
    an extra graph input, so a model with a Normalization layer built from statistics (every tabular and
    forecasting model here) needs its mean and variance fed at inference time. Freezing the function with
    only the real inputs named turns those tensors into constants."""
    import logging

    import tensorflow as tf
    import tf2onnx
    from tf2onnx import tf_loader

    logging.getLogger("tf2onnx").setLevel(logging.ERROR)  # per-node conversion chatter, not the user's concern

    signature = tf.nest.map_structure(
        lambda tensor: tf.TensorSpec(tensor.shape, tensor.dtype, name=tensor.name), model.input
    )
    concrete = tf.function(lambda inputs: model(inputs, training=False)).get_concrete_function(signature)
    keras_names = [tensor.name for tensor in tf.nest.flatten(model.input)]
    # The function's first inputs are the model's; the rest are captured variables and constants.
    input_names = [tensor.name for tensor in concrete.inputs[: len(keras_names)]]
    output_names = [tensor.name for tensor in concrete.outputs]
    renamed = {**dict(zip(input_names, keras_names)), output_names[0]: "predictions"}
    with tf.device("/cpu:0"):
        graph_def = tf_loader.from_function(concrete, input_names, output_names)
        tf2onnx.convert.from_graph_def(
            graph_def,
            input_names=input_names,
            output_names=output_names,
            tensors_to_rename=renamed,
            output_path=str(path),
        )


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
