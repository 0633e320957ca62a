"""The export block's schema: the formats the best model is written in after training (trainers/export.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from .fields import AT_LEAST_1, at_least, rule


@dataclass
class ExportConfig:
    """After training, the best model as a SavedModel in TF Serving's layout (export/serving/<version>/),
    a TFLite file (export/model.tflite), an ONNX file (export/model.onnx; needs the `onnx` extra) and/or a
    TensorFlow.js graph model (export/tfjs/model.json), in any combination."""

    saved_model: bool = False
    tflite: bool = False
    onnx: bool = False
    tfjs: bool = False
    # TF Serving serves the highest version number; null: one more than the highest already exported.
    version: Optional[int] = rule(None, at_least(1), AT_LEAST_1, "1")
