"""ONNX writer, optional: Keras's own ``model.export(format="onnx")`` (tf2onnx underneath), checked in onnxruntime.

Neither tf2onnx nor onnxruntime is a core dependency (``pip install 'tfkd[onnx]'``). Without them :func:`to_onnx`
raises :class:`OnnxUnavailableError` (an ``ImportError``) saying what to install, and ``tfkd export`` reports the
ONNX row as skipped instead of failing the other formats.

Example:

    from tfkd.export import to_onnx
    to_onnx(model, "out/student.onnx")    # input "inputs" [batch, H, W, C] float32 -> logits
"""

from __future__ import annotations

import importlib
from pathlib import Path

from tfkd.export.atomic import atomic_file
from tfkd.export.inputs import input_specs
from tfkd.export.loading import as_float32, load_model

__all__ = ["to_onnx", "onnx_missing", "require_onnxruntime", "OnnxUnavailableError", "OnnxInputsError"]

_INSTALL = "pip install 'tfkd[onnx]' (tf2onnx and onnxruntime)"


class OnnxUnavailableError(ImportError):
    """tf2onnx or onnxruntime is not installed; the message says what to install."""


class OnnxInputsError(ValueError):
    """The model has several inputs, which the ONNX writer does not handle (TFLite and SavedModel do)."""


def onnx_missing() -> list[str]:
    """Names of the missing ONNX packages (empty when ONNX export and checking are available)."""
    missing = []
    for module in ("tf2onnx", "onnxruntime"):
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(module)
    return missing


def _require(module):
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise OnnxUnavailableError(f"ONNX export needs {module}, which is not installed ({err}); {_INSTALL}. "
                                   "TFLite and SavedModel export work without it.") from err


def require_onnxruntime():
    """The ``onnxruntime`` module, or :class:`OnnxUnavailableError` saying how to install it."""
    return _require("onnxruntime")


def to_onnx(model, path, *, opset: int | None = None, safe_mode: bool = True) -> Path:
    """Export ``model`` (a ``keras.Model`` or ``.keras`` path) to an ``.onnx`` file at ``path``, atomically.

    The graph takes ``inputs`` ``[batch, *input_shape]`` float32 with a dynamic batch and returns the logits.
    A mixed-precision model is rebuilt in float32 first (Keras's ONNX export requires it). A model with several
    inputs is refused with :class:`OnnxInputsError`: export it as TFLite or SavedModel.

    Example:

        to_onnx("student.keras", "student.onnx", opset=17)
    """
    model = as_float32(load_model(model, safe_mode=safe_mode))
    specs = input_specs(model)
    if len(specs) != 1:
        raise OnnxInputsError(f"model {model.name!r} has {len(specs)} inputs ({', '.join(repr(s.name) for s in specs)})"
                              "; tfkd's ONNX export handles one-input models only. Export it with "
                              "format='tflite' or 'saved_model' (both take several inputs), or convert the SavedModel "
                              "with python -m tf2onnx.convert --saved-model DIR yourself.")
    _require("tf2onnx")
    import tensorflow as tf

    path = Path(path)
    with atomic_file(path) as tmp:
        model.export(str(tmp), format="onnx", verbose=False, opset_version=opset,
                     input_signature=[tf.TensorSpec((None, *specs[0].shape), specs[0].dtype, name="inputs")])
    return path
