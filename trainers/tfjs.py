"""A Keras model as a TensorFlow.js graph model: the folder `tf.loadGraphModel('.../model.json')` loads.

The `tensorflowjs` converter cannot be installed beside TensorFlow 2.21 (it requires
tensorflow-decision-forests, whose releases each pin one TensorFlow version, 2.19 at the latest), so the
format is written here with TensorFlow alone, as that converter writes it: the model's inference function
with its variables frozen into constants (`convert_variables_to_constants_v2`, control flow kept as
functions), the graph as JSON (`modelTopology`, protobuf field names in camelCase), and every constant
moved into little-endian binary shards listed in `weightsManifest`. Constants inside the graph's functions
(an LSTM's loop body) are renamed `<function>/<node>` as TF.js looks them up by name in one weight map.

Only numeric inputs: string inputs need TF.js hash tables and string weights, which are not written here.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

MODEL_JSON = "model.json"
# TF.js' converter splits weights into files of at most 4 MB (browsers cache them better).
SHARD_BYTES = 4 * 1024 * 1024
# TensorFlow dtype enum -> (TF.js dtype, numpy dtype the bytes are written in). TF.js has no 64-bit
# integers: int64 constants are written as int32 and their nodes retyped, as the tensorflowjs converter does.
DTYPES = {1: ("float32", "<f4"), 3: ("int32", "<i4"), 9: ("int32", "<i4"), 10: ("bool", "|u1")}
INT64 = 9


def unsupported_inputs(model) -> list[str]:
    """Names of the model's inputs TF.js cannot be given by this writer (strings)."""
    return [tensor.name for tensor in _flat_inputs(model) if str(tensor.dtype) not in ("float32", "int32")]


def _flat_inputs(model) -> list:
    import tensorflow as tf

    return tf.nest.flatten(model.input)


def _frozen_graph(model):
    """The model's inference function with variables and captured tensors as constants."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    signature = tf.nest.map_structure(
        lambda tensor: tf.TensorSpec(tensor.shape, tensor.dtype, name=tensor.name), model.input
    )
    function = tf.function(lambda inputs: model(inputs, training=False))
    concrete = function.get_concrete_function(signature)
    # Control flow stays as While/If with function bodies, which TF.js runs (lowering it is not needed).
    frozen = convert_variables_to_constants_v2(concrete, lower_control_flow=False, aggressive_inlining=True)
    input_keys = [tensor.name for tensor in _flat_inputs(model)]
    return frozen, dict(zip(input_keys, frozen.inputs)), frozen.outputs


def _take_constant(node, weights: list, data: list, name: str) -> None:
    """Move a Const node's value into the weights; leave its dtype and shape in the graph."""
    from tensorflow.core.framework import tensor_pb2, types_pb2
    from tensorflow.python.framework import tensor_util

    tensor = node.attr["value"].tensor
    value = tensor_util.MakeNdarray(tensor)
    if tensor.dtype not in DTYPES:
        raise ValueError(
            f"TF.js export: constant {name} has dtype {types_pb2.DataType.Name(tensor.dtype)}, which is not written"
        )
    js_dtype, byte_dtype = DTYPES[tensor.dtype]
    if tensor.dtype == INT64:
        node.attr["dtype"].type = types_pb2.DT_INT32
    weights.append({"name": name, "shape": list(value.shape), "dtype": js_dtype})
    data.append(np.ascontiguousarray(value.astype(byte_dtype)).tobytes())
    stripped = tensor_pb2.TensorProto(dtype=node.attr["dtype"].type, tensor_shape=tensor.tensor_shape)
    node.attr["value"].tensor.CopyFrom(stripped)


def _retype_int64(node) -> None:
    """Nodes that produce int64 tensors produce int32 in TF.js; say so in their type attributes."""
    from tensorflow.core.framework import types_pb2

    for key in ("T", "dtype", "Tidx", "out_type", "Tindices", "index_type", "output_type", "Tshape", "TI", "Tpaddings"):
        if key in node.attr and node.attr[key].type == types_pb2.DT_INT64:
            node.attr[key].type = types_pb2.DT_INT32


def _rename_in_function(function, renamed: dict[str, str]) -> None:
    # Inside a function a node's output is referred to as "node:output:index" (or "^node" for control).
    for node in function.node_def:
        for position, source in enumerate(node.input):
            control = source.startswith("^")
            base, _, rest = source.lstrip("^").partition(":")
            if base in renamed:
                node.input[position] = ("^" if control else "") + renamed[base] + (":" + rest if rest else "")
    for key, source in list(function.ret.items()):
        base, _, rest = source.partition(":")
        if base in renamed:
            function.ret[key] = renamed[base] + (":" + rest if rest else "")


def _tensor_info(tensor) -> dict:
    from tensorflow.core.framework import types_pb2

    dtype = tensor.dtype.as_datatype_enum
    dtype = types_pb2.DT_INT32 if dtype == types_pb2.DT_INT64 else dtype
    dims = [{"size": str(-1 if size is None else size)} for size in tensor.shape]
    return {"name": tensor.name, "dtype": types_pb2.DataType.Name(dtype), "tensorShape": {"dim": dims}}


def export_tfjs(model, folder) -> str:
    """Write the TF.js graph model of `model` into `folder`; returns the path of its model.json."""
    import tensorflow as tf
    from google.protobuf import json_format

    folder = Path(folder)
    refused = unsupported_inputs(model)
    if refused:
        raise ValueError(f"TF.js export takes numeric inputs only; {', '.join(refused)} are strings")
    frozen, inputs, outputs = _frozen_graph(model)
    graph_def = frozen.graph.as_graph_def()
    weights: list[dict] = []
    data: list[bytes] = []
    for node in graph_def.node:
        _retype_int64(node)
        if node.op == "Const":
            _take_constant(node, weights, data, node.name)
    for function in graph_def.library.function:
        renamed = {}
        for node in function.node_def:
            _retype_int64(node)
            if node.op == "Const":
                renamed[node.name] = f"{function.signature.name}/{node.name}"
                _take_constant(node, weights, data, renamed[node.name])
                node.name = renamed[node.name]
        _rename_in_function(function, renamed)
        for argument in (*function.signature.input_arg, *function.signature.output_arg):
            if argument.type == INT64:
                argument.type = 3

    blob = b"".join(data)
    shards = [blob[start:start + SHARD_BYTES] for start in range(0, len(blob), SHARD_BYTES)] or [b""]
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, shard in enumerate(shards, start=1):
        name = f"group1-shard{index}of{len(shards)}.bin"
        (folder / name).write_bytes(shard)
        paths.append(name)
    manifest = {
        "format": "graph-model",
        "generatedBy": tf.__version__,
        "convertedBy": "raylaunch (trainers/tfjs.py)",
        "modelTopology": json_format.MessageToDict(graph_def),
        "signature": {
            "inputs": {key: _tensor_info(tensor) for key, tensor in inputs.items()},
            "outputs": {"predictions": _tensor_info(outputs[0])},
        },
        "weightsManifest": [{"paths": paths, "weights": weights}],
    }
    path = folder / MODEL_JSON
    path.write_text(json.dumps(manifest))
    return str(path)
