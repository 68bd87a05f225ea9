"""TFLite writer: float32, dynamic-range, float16, full-integer int8 and int16x8, through a SavedModel.

The model is written as a SavedModel (:mod:`tfkd.export.savedmodel`) and converted with
``tf.lite.TFLiteConverter.from_saved_model``. Only TFLite builtin ops are allowed by default: the pip runtime
(``ai_edge_litert``) has no Flex delegate, and neither has a phone app that does not link one, so a model needing
TF ops fails here with :class:`UnsupportedOpsError` listing them, rather than later on the device.

Quantization modes (``quantize=``):

- ``none``: float32 weights and activations.
- ``dynamic``: int8 weights, float activations quantized on the fly (no calibration data).
- ``float16``: float16 weights (half the size; GPU delegates run them natively).
- ``int8``: full-integer int8 weights and activations, calibrated on ``representative_data`` (real training
  examples, in the range and preprocessing the model takes: images, standardized features, ...); input/output
  int8 by default (``io_dtype="float32"`` keeps float I/O with quantize/dequantize ops).
- ``int16x8``: int16 activations, int8 weights: more accurate than int8 where activations have a wide range.

A model with several inputs takes ``representative_data`` as a list of arrays in the Keras input order, or a dict
keyed by input name; each calibration sample is fed by input name, since TFLite keeps a signature's inputs in an
order of its own.

Example:

    from tfkd.export import to_tflite
    to_tflite(model, "out/student_int8.tflite", quantize="int8", representative_data=x_train[:500])
    to_tflite(two_input_model, "out/m_int8.tflite", quantize="int8", representative_data=[x_image, x_features])
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np

from tfkd import console
from tfkd.export.atomic import write_bytes
from tfkd.export.inputs import SINGLE_KEY, InputSpec, as_arrays, as_feed, input_specs, take
from tfkd.export.loading import as_float32, load_model

__all__ = ["to_tflite", "convert", "convert_saved_model", "QUANTIZE_MODES", "UnsupportedOpsError",
           "UnsupportedInputsError"]

QUANTIZE_MODES = ("none", "dynamic", "float16", "int8", "int16x8")
_CALIBRATED = ("int8", "int16x8")
# io_dtype allowed per mode; the first is the default
_IO_DTYPES = {"none": ("float32",), "dynamic": ("float32",), "float16": ("float32",),
              "int8": ("int8", "float32"), "int16x8": ("float32", "int16")}
OPS_DOC = "https://ai.google.dev/edge/litert/models/ops_compatibility"


class UnsupportedInputsError(ValueError):
    """The quantization mode cannot take one of the model's inputs (e.g. int16x8 with integer token ids)."""


class UnsupportedOpsError(ValueError):
    """The model needs ops outside the TFLite builtins; ``ops`` maps each op to ``"flex"`` or ``"custom"``."""

    def __init__(self, message, ops: dict[str, str], where: dict[str, list[str]]):
        super().__init__(message)
        self.ops = ops
        self.where = where


def to_tflite(model, path, *, quantize: str = "none", representative_data=None, io_dtype: str | None = None,
              num_calibration: int = 300, allow_flex_ops: bool = False, safe_mode: bool = True, seed: int = 0) -> Path:
    """Convert ``model`` (a ``keras.Model`` or ``.keras`` path) to a ``.tflite`` file at ``path``, atomically.

    ``representative_data``: real training examples ``[N, *input_shape]``, as the model takes them (a list of
    arrays in Keras input order, or a dict keyed by input name, for several inputs), required for ``int8`` and
    ``int16x8``; ``num_calibration`` of them (a seeded random subset) calibrate the activation ranges.
    ``io_dtype``: ``"int8"`` (default for ``int8``) or ``"float32"`` input/output tensors; ``"int16"`` is allowed
    for ``int16x8``. ``allow_flex_ops=True`` lets TF ops through (the file then needs the Flex delegate, which the
    pip runtime lacks). Returns ``path``; a failed conversion leaves no file under ``path``.

    Example:

        to_tflite("student.keras", "student_f16.tflite", quantize="float16")
    """
    data = convert(model, quantize=quantize, representative_data=representative_data, io_dtype=io_dtype,
                   num_calibration=num_calibration, allow_flex_ops=allow_flex_ops, safe_mode=safe_mode, seed=seed)
    return write_bytes(Path(path), data)


def convert(model, *, quantize: str = "none", representative_data=None, io_dtype: str | None = None,
            num_calibration: int = 300, allow_flex_ops: bool = False, safe_mode: bool = True, seed: int = 0) -> bytes:
    """The ``.tflite`` flatbuffer of ``model`` as bytes; see :func:`to_tflite` for the arguments."""
    import tempfile

    from tfkd.export.savedmodel import write_saved_model

    _check_mode(quantize)
    _check_io_dtype(quantize, io_dtype)
    model = as_float32(load_model(model, safe_mode=safe_mode))
    specs = input_specs(model)
    _check_inputs(quantize, specs, model.name)
    if quantize in _CALIBRATED:  # fail on bad data before the (slower) SavedModel export
        _calibration_set(representative_data, specs, num_calibration, seed, quantize)
    with tempfile.TemporaryDirectory(prefix="tfkd_export_") as tmp:
        saved = write_saved_model(model, Path(tmp) / "saved_model")
        return convert_saved_model(saved, inputs=specs, quantize=quantize,
                                   representative_data=representative_data, io_dtype=io_dtype,
                                   num_calibration=num_calibration, allow_flex_ops=allow_flex_ops, seed=seed,
                                   name=model.name)


def convert_saved_model(saved_dir, *, input_shape=None, inputs: list[InputSpec] | None = None,
                        quantize: str = "none", representative_data=None, io_dtype: str | None = None,
                        num_calibration: int = 300, allow_flex_ops: bool = False, seed: int = 0,
                        name: str = "model") -> bytes:
    """Convert a SavedModel directory (one ``serving_default`` signature) to ``.tflite`` bytes.

    The framework-free half of :func:`convert`: the pruning/QAT track (tf_keras, its own process) uses it too.
    ``input_shape`` is the per-example shape of a one-input model (signature key ``inputs``, float32); ``inputs``
    describes several (:func:`tfkd.export.inputs.input_specs`). Either checks ``representative_data``.

    Example:

        data = convert_saved_model("out/saved", input_shape=(28, 28, 1), quantize="float16")
    """
    import tensorflow as tf

    _check_mode(quantize)
    io_dtype = _check_io_dtype(quantize, io_dtype)
    if inputs is None:
        if input_shape is None:
            raise ValueError("convert_saved_model needs input_shape=(...) for a one-input model, or inputs=[InputSpec"
                             ", ...] (tfkd.export.inputs.input_specs(model)) for several; got neither.")
        inputs = [InputSpec(SINGLE_KEY, SINGLE_KEY, tuple(int(d) for d in input_shape), "float32")]
    _check_inputs(quantize, inputs, name)
    calibration = None
    if quantize in _CALIBRATED:
        calibration = _calibration_set(representative_data, inputs, num_calibration, seed, quantize)
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_dir))
    _configure(converter, quantize, io_dtype, calibration, inputs, allow_flex_ops)
    try:
        with console.quiet_native(), warnings.catch_warnings():  # the converter prints "fully_quantize: ..."
            # its calibrator runs dict samples (several inputs) in the deprecated tf.lite.Interpreter, and says so
            warnings.filterwarnings("ignore", message=r"\s*Warning: tf\.lite\.Interpreter is deprecated")
            return converter.convert()
    except Exception as err:
        ops, where = _unsupported_ops(str(err))
        if ops:
            raise UnsupportedOpsError(_ops_message(name, quantize, ops, where), ops, where) from None
        raise


def _check_mode(quantize):
    if quantize not in QUANTIZE_MODES:
        raise ValueError(f"quantize={quantize!r} is not a TFLite quantization mode; expected one of {QUANTIZE_MODES}.")


def _check_io_dtype(quantize, io_dtype):
    allowed = _IO_DTYPES[quantize]
    if io_dtype is None:
        return allowed[0]
    if io_dtype not in allowed:
        raise ValueError(f"io_dtype={io_dtype!r} does not go with quantize={quantize!r}; expected one of {allowed} "
                         "(int8 input/output tensors need full-integer quantization: quantize='int8').")
    return io_dtype


def _check_inputs(quantize, specs, name):
    integer = [s.name for s in specs if s.dtype != "float32"]
    if quantize == "int16x8" and integer:  # the converter would fail late, with "Empty min/max for tensor ..."
        raise UnsupportedInputsError(
            f"quantize='int16x8' cannot take the integer input(s) {integer} of model {name!r} (token ids): its "
            "calibration records the ranges of float inputs only. Use quantize='int8' (integer inputs stay "
            "integers) or 'dynamic' / 'float16'.")


def _calibration_set(data, specs, count, seed, quantize):
    """One array per input (Keras order), the same seeded random rows of each: the examples stay paired."""
    if data is None:
        several = len(specs) > 1
        shapes = " and ".join(f"[N, {', '.join(map(str, s.shape))}]" + (f" for {s.name!r}" if several else "")
                              for s in specs)
        several = " (a list of arrays in the Keras input order, or a dict keyed by input name)" if several else ""
        raise ValueError(f"quantize={quantize!r} needs representative_data: a few hundred real training examples "
                         f"shaped {shapes}{several}, preprocessed like the model's input and in the same value "
                         "range, e.g. representative_data=x_train[:500]. Random data would calibrate the wrong "
                         "ranges.")
    arrays = as_arrays(data, specs, arg="representative_data")
    if count < 1:
        raise ValueError(f"num_calibration={count!r} must be >= 1 (a few hundred examples is typical).")
    if len(arrays[0]) > count:
        arrays = take(arrays, np.random.default_rng(seed).choice(len(arrays[0]), count, replace=False))
    return arrays


def _configure(converter, quantize, io_dtype, calibration, specs, allow_flex_ops):
    import tensorflow as tf

    ops = {"int8": tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
           "int16x8": tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8}.get(
        quantize, tf.lite.OpsSet.TFLITE_BUILTINS)
    converter.target_spec.supported_ops = [ops] + ([tf.lite.OpsSet.SELECT_TF_OPS] if allow_flex_ops else [])
    if quantize == "none":
        return
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if calibration is not None:
        def representative_dataset():
            for i in range(len(calibration[0])):
                sample = take(calibration, slice(i, i + 1))
                # several inputs go by signature key: the converter's input order is not the Keras one
                yield sample if len(specs) == 1 else as_feed(sample, specs)

        converter.representative_dataset = representative_dataset
    if io_dtype != "float32":
        converter.inference_input_type = converter.inference_output_type = getattr(tf, io_dtype)


# The converter's message, e.g. "TF Select ops: MatrixInverse" / "Custom ops: Erfinv", and per-op locations like
# fused["MatrixInverse:", "functional_1/my_layer_1/MatrixInverse@__inference_..."]
_KIND_LINES = {"flex": re.compile(r"TF Select ops: ([^\n]+)"), "custom": re.compile(r"Custom ops: ([^\n]+)")}
_LOCATION = re.compile(r'fused\["(\w+):", "([^"@]+)@')
_NOT_BUILTIN = re.compile(r"'tf\.(\w+)' op is neither a custom op nor a flex op")


def _unsupported_ops(message: str):
    ops: dict[str, str] = {}
    for kind, pattern in _KIND_LINES.items():
        for line in pattern.findall(message):
            for op in line.split(","):
                if op.strip():
                    ops.setdefault(op.strip(), kind)
    for op in _NOT_BUILTIN.findall(message):
        ops.setdefault(op, "custom")
    where: dict[str, list[str]] = {}
    for op, scope in _LOCATION.findall(message):
        if op in ops:
            layer = "/".join(scope.split("/")[1:-1]) or scope  # drop the model name and the op name
            if layer not in where.setdefault(op, []):
                where[op].append(layer)
    return ops, where


def _ops_message(name, quantize, ops, where):
    listed = "; ".join(f"{op} ({'TF op, needs the Flex delegate' if kind == 'flex' else 'no TFLite kernel at all'}"
                       + (f", in layer {', '.join(where[op])}" if where.get(op) else "") + ")"
                       for op, kind in ops.items())
    fixes = ["replace the layer(s) above with ops that have TFLite builtin kernels (list: " + OPS_DOC + ")",
             "or export for servers instead: format='saved_model' (TF Serving runs every TF op)"]
    if all(kind == "flex" for kind in ops.values()):
        fixes.append("or, if your app links the Flex delegate (tensorflow-lite-select-tf-ops), pass "
                     "allow_flex_ops=True (--allow-flex-ops); the pip runtime ai_edge_litert cannot run such a file")
    return (f"model {name!r} cannot be converted to TFLite (quantize={quantize!r}) with builtin ops only: it "
            f"needs {listed}. To fix: " + "; ".join(fixes) + ".")
