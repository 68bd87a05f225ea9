"""Run an exported model on float32 images and get float32 logits: TFLite, SavedModel or ONNX, one interface.

:func:`load_runner` picks the runtime from the path: a ``.tflite`` file runs in ``ai_edge_litert`` (the maintained
LiteRT interpreter; ``tf.lite.Interpreter`` is deprecated), a SavedModel directory through its ``serving_default``
signature, an ``.onnx`` file in ``onnxruntime``. Quantized TFLite inputs are quantized with the file's own scale and
zero point, and quantized outputs dequantized, so every runner takes and returns float32 like the Keras model.

Example:

    from tfkd.export.runners import load_runner
    run = load_runner("out/student_int8.tflite", num_threads=1)
    logits = run(x_test[:256])          # float32 [256, num_classes]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tfkd import console

__all__ = ["load_runner", "format_of", "TFLiteRunner", "SavedModelRunner", "OnnxRunner"]


def format_of(path) -> str:
    """``"tflite"``, ``"saved_model"`` or ``"onnx"`` for an exported artifact at ``path``; clear error otherwise."""
    path = Path(path)
    if path.is_dir() and (path / "saved_model.pb").exists():
        return "saved_model"
    if path.is_file() and path.suffix == ".tflite":
        return "tflite"
    if path.is_file() and path.suffix == ".onnx":
        return "onnx"
    raise ValueError(f"exported_path={str(path)!r} is not an exported model: expected a .tflite file, a SavedModel "
                     "directory (with saved_model.pb) or an .onnx file"
                     + ("" if path.exists() else "; it does not exist")
                     + ".")


def load_runner(path, *, num_threads: int | None = None):
    """A callable ``run(x: float32 [N, ...]) -> float32 logits [N, classes]`` for the artifact at ``path``."""
    kind = format_of(path)
    return {"tflite": TFLiteRunner, "saved_model": SavedModelRunner, "onnx": OnnxRunner}[kind](
        path, num_threads=num_threads)


class TFLiteRunner:
    """A ``.tflite`` model in ``ai_edge_litert``: quantizes inputs, dequantizes outputs, any batch size."""

    format = "tflite"

    def __init__(self, path, *, num_threads: int | None = None):
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(model_path=str(path), num_threads=num_threads)
        inputs, outputs = self.interpreter.get_input_details(), self.interpreter.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ValueError(f"{path} has {len(inputs)} inputs and {len(outputs)} outputs; expected one of each.")
        self.input, self.output = inputs[0], outputs[0]
        self.input_dtype, self.output_dtype = np.dtype(self.input["dtype"]), np.dtype(self.output["dtype"])
        self._batch = None

    def prepare(self, x):
        """``x`` as the input tensor wants it: float32, or quantized with the file's scale and zero point."""
        x = np.asarray(x, dtype=np.float32)
        if self.input_dtype == np.float32:
            return x
        scale, zero_point = self.input["quantization"]
        info = np.iinfo(self.input_dtype)
        return np.clip(np.round(x / scale + zero_point), info.min, info.max).astype(self.input_dtype)

    def invoke(self, prepared):
        """Run one prepared batch; returns the raw output tensor (what an app gets before dequantizing)."""
        if self._batch != len(prepared):
            self.interpreter.resize_tensor_input(self.input["index"], list(prepared.shape), strict=False)
            with console.quiet_native():  # LiteRT announces its XNNPACK delegate on stderr
                self.interpreter.allocate_tensors()
            self._batch = len(prepared)
        self.interpreter.set_tensor(self.input["index"], prepared)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.output["index"])

    def finish(self, raw):
        if self.output_dtype == np.float32:
            return raw
        scale, zero_point = self.output["quantization"]
        return ((raw.astype(np.float32) - zero_point) * scale).astype(np.float32)

    def __call__(self, x):
        return self.finish(self.invoke(self.prepare(x)))


class SavedModelRunner:
    """A SavedModel through its ``serving_default`` signature (the one TF Serving calls)."""

    format = "saved_model"

    def __init__(self, path, *, num_threads: int | None = None):
        import tensorflow as tf

        del num_threads  # TF's thread pools are process-wide; set them with tf.config.threading before loading
        self._loaded = tf.saved_model.load(str(path))  # keep a reference: the signature needs its variables alive
        if "serving_default" not in self._loaded.signatures:
            raise ValueError(f"{path} has no 'serving_default' signature (it has {list(self._loaded.signatures)}); "
                             "export it with tfkd.export.to_saved_model.")
        self.signature = self._loaded.signatures["serving_default"]
        _, kwargs = self.signature.structured_input_signature
        if len(kwargs) != 1 or len(self.signature.structured_outputs) != 1:
            raise ValueError(f"{path}: serving_default takes {list(kwargs)} and returns "
                             f"{list(self.signature.structured_outputs)}; expected one input and one output.")
        self.input_key = next(iter(kwargs))
        self.output_key = next(iter(self.signature.structured_outputs))

    def prepare(self, x):
        import tensorflow as tf

        return tf.constant(np.asarray(x, dtype=np.float32))

    def invoke(self, prepared):
        return self.signature(**{self.input_key: prepared})[self.output_key]

    def finish(self, raw):
        return np.asarray(raw, dtype=np.float32)

    def __call__(self, x):
        return self.finish(self.invoke(self.prepare(x)))


class OnnxRunner:
    """An ``.onnx`` model in ``onnxruntime`` (CPU), when it is installed (``pip install 'tfkd[onnx]'``)."""

    format = "onnx"

    def __init__(self, path, *, num_threads: int | None = None):
        from tfkd.export.onnx import require_onnxruntime

        ort = require_onnxruntime()
        options = ort.SessionOptions()
        if num_threads:
            options.intra_op_num_threads = num_threads
            options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def prepare(self, x):
        return np.asarray(x, dtype=np.float32)

    def invoke(self, prepared):
        return self.session.run(None, {self.input_name: prepared})[0]

    def finish(self, raw):
        return np.asarray(raw, dtype=np.float32)

    def __call__(self, x):
        return self.finish(self.invoke(self.prepare(x)))
