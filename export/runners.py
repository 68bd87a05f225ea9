"""Run an exported model on float32 inputs and get float32 logits: TFLite, SavedModel or ONNX, one interface.

:func:`load_runner` picks the runtime from the path: a ``.tflite`` file runs in ``ai_edge_litert`` (the maintained
LiteRT interpreter; ``tf.lite.Interpreter`` is deprecated), a SavedModel directory through its ``serving_default``
signature, an ``.onnx`` file in ``onnxruntime``. Quantized TFLite inputs are quantized with the file's own scale and
zero point, and quantized outputs dequantized, so every runner takes and returns float32 like the Keras model.

A runner takes one array for a one-input model; for several inputs, a dict keyed by input key, or a list / tuple
in :attr:`input_keys` order. Pass ``inputs=input_specs(model)`` and that order is the Keras model's: each Keras
input is matched to the artifact's input by name (signature key, Keras name, tensor name), else by a shape no
other input has, because runtimes reorder inputs (TFLite keeps a signature's inputs in an order of its own).

Example:

    from tfkd.export.runners import load_runner
    run = load_runner("out/student_int8.tflite", num_threads=1)
    logits = run(x_test[:256])          # float32 [256, num_classes]
    run2 = load_runner("out/two_inputs.tflite", inputs=input_specs(model))
    logits = run2([x_image[:256], x_features[:256]])
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


def load_runner(path, *, num_threads: int | None = None, inputs=None):
    """A callable ``run(x) -> float32 logits [N, classes]`` for the artifact at ``path``.

    ``inputs``: the Keras model's :class:`~tfkd.export.inputs.InputSpec` list; a list / tuple ``x`` is then taken in
    the Keras input order whatever order the artifact keeps its inputs in.
    """
    kind = format_of(path)
    return {"tflite": TFLiteRunner, "saved_model": SavedModelRunner, "onnx": OnnxRunner}[kind](
        path, num_threads=num_threads, inputs=inputs)


def _match(path, file_inputs, specs):
    """For each spec (Keras order), the index of its input in ``file_inputs`` [(names, per-example shape)]."""
    if len(file_inputs) != len(specs):
        raise ValueError(f"{path} has {len(file_inputs)} inputs but the Keras model has {len(specs)} "
                         f"({[s.name for s in specs]}); the export is not of this model.")
    if len(specs) == 1:
        return [0]
    found: dict[int, int] = {}
    for i, spec in enumerate(specs):
        hits = [j for j, (names, _) in enumerate(file_inputs) if {spec.key, spec.name} & set(names)]
        if len(hits) == 1:
            found[i] = hits[0]
    free = [j for j in range(len(file_inputs)) if j not in found.values()]
    for i, spec in enumerate(specs):
        if i in found:
            continue
        hits = [j for j in free if _same_shape(file_inputs[j][1], spec.shape)]
        twins = [s for k, s in enumerate(specs) if k not in found and s.shape == spec.shape]
        if len(hits) != 1 or len(twins) > 1:
            raise ValueError(f"{path}: cannot tell which input is the Keras input {spec.name!r} ({spec.describe()}): "
                             f"the file's inputs are {[(n[0], tuple(sh)) for n, sh in file_inputs]}, none named "
                             f"{spec.key!r} and {'none' if not hits else 'several'} of that shape. Export it with "
                             "tfkd.export, which names each input after its Keras input.")
        found[i] = hits[0]
        free.remove(hits[0])
    return [found[i] for i in range(len(specs))]


def _same_shape(file_shape, shape):
    """Equal where the file's size is known (None, -1 or a symbolic ONNX size matches any)."""
    def known(d):
        return isinstance(d, (int, np.integer)) and d >= 0

    return len(file_shape) == len(shape) and all(not known(a) or int(a) == b for a, b in zip(file_shape, shape))


class _Runner:
    """Shared feeding logic: ``x`` (array, list in :attr:`input_keys` order, or dict by key) -> one array per input."""

    def _bind(self, path, file_inputs, specs):
        """``file_inputs``: [(names, per-example shape)] in the artifact's order; the first name is its key."""
        self.file_keys = [names[0] for names, _ in file_inputs]
        if specs is None:
            self.input_keys = list(self.file_keys)
            self._aliases = {}
        else:
            order = _match(path, file_inputs, specs)
            self.input_keys = [self.file_keys[j] for j in order]
            # the Keras names and keys are accepted as dict keys too
            self._aliases = {alias: self.file_keys[j] for s, j in zip(specs, order) for alias in (s.name, s.key)}

    def feed(self, x) -> dict:
        """``x`` as ``{file key: array}``."""
        keys = self.file_keys
        if isinstance(x, dict):
            if len(keys) == 1 and len(x) == 1:
                return {keys[0]: next(iter(x.values()))}
            feed = {self._aliases.get(k, k): v for k, v in x.items()}
            missing = [k for k in keys if k not in feed]
            if missing:
                raise ValueError(f"x has keys {sorted(map(str, x))} but the model's inputs are {self.input_keys}; "
                                 f"missing {missing}.")
            return {k: feed[k] for k in keys}
        if len(keys) == 1:
            if isinstance(x, (list, tuple)) and len(x) == 1 and np.ndim(x[0]) == len(self.input_shape(0)) + 1:
                x = x[0]  # [batch]: the one input's batch in a list
            return {keys[0]: x}
        if not isinstance(x, (list, tuple)) or len(x) != len(keys):
            got = f"{len(x)} arrays" if isinstance(x, (list, tuple)) else "one array"
            raise ValueError(f"the model has {len(keys)} inputs {self.input_keys} but x is {got}; pass a list in "
                             "that order or a dict keyed by input name.")
        return dict(zip(self.input_keys, x))

    def __call__(self, x):
        return self.finish(self.invoke(self.prepare(x)))


class TFLiteRunner(_Runner):
    """A ``.tflite`` model in ``ai_edge_litert``: quantizes inputs, dequantizes outputs, any batch size."""

    format = "tflite"

    def __init__(self, path, *, num_threads: int | None = None, inputs=None):
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(model_path=str(path), num_threads=num_threads)
        details, outputs = self.interpreter.get_input_details(), self.interpreter.get_output_details()
        if len(outputs) != 1:
            raise ValueError(f"{path} has {len(outputs)} outputs; expected one (the logits).")
        self.inputs, self.output = details, outputs[0]
        self.input, self.input_dtype = details[0], np.dtype(details[0]["dtype"])  # the first (often only) input
        self.output_dtype = np.dtype(self.output["dtype"])
        signatures = self.interpreter.get_signature_list()
        by_signature = (self.interpreter.get_signature_runner(next(iter(signatures))).get_input_details()
                        if len(signatures) == 1 else {})
        key_of = {d["index"]: key for key, d in by_signature.items()}

        def names(detail):  # the signature key first (what tfkd.export named the input), then its tensor name
            tensor = detail["name"].split(":")[0]
            signature = [key_of[detail["index"]]] if detail["index"] in key_of else []
            return signature + [tensor, tensor.removeprefix("serving_default_")]

        self._bind(path, [(names(d), list(d["shape_signature"][1:])) for d in details], inputs)
        self._shapes = None

    def input_shape(self, i):
        """The per-example shape of the file's ``i``-th input (``None`` or -1 where it is not fixed)."""
        return self.inputs[i]["shape_signature"][1:]

    def prepare(self, x):
        """``x`` as the input tensors want it, in the file's order: float32, quantized with the file's scale and
        zero point, or cast to the integer type of token-id inputs."""
        feed = self.feed(x)
        return [_as_tensor(np.asarray(feed[key]), d) for key, d in zip(self.file_keys, self.inputs)]

    def invoke(self, prepared):
        """Run one prepared batch; returns the raw output tensor (what an app gets before dequantizing)."""
        shapes = [a.shape for a in prepared]
        if self._shapes != shapes:
            for d, a in zip(self.inputs, prepared):
                self.interpreter.resize_tensor_input(d["index"], list(a.shape), strict=False)
            with console.quiet_native():  # LiteRT announces its XNNPACK delegate on stderr
                self.interpreter.allocate_tensors()
            self._shapes = shapes
        for d, a in zip(self.inputs, prepared):
            self.interpreter.set_tensor(d["index"], a)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.output["index"])

    def finish(self, raw):
        if self.output_dtype == np.float32:
            return raw
        scale, zero_point = self.output["quantization"]
        return ((raw.astype(np.float32) - zero_point) * scale).astype(np.float32)


def _as_tensor(x, detail):
    dtype = np.dtype(detail["dtype"])
    scale, zero_point = detail["quantization"]
    if dtype == np.float32 or scale == 0.0:  # float, or an integer input that is not quantized (token ids)
        return x.astype(dtype, copy=False)
    info = np.iinfo(dtype)
    return np.clip(np.round(x.astype(np.float32) / scale + zero_point), info.min, info.max).astype(dtype)


class SavedModelRunner(_Runner):
    """A SavedModel through its ``serving_default`` signature (the one TF Serving calls)."""

    format = "saved_model"

    def __init__(self, path, *, num_threads: int | None = None, inputs=None):
        import tensorflow as tf

        del num_threads  # TF's thread pools are process-wide; set them with tf.config.threading before loading
        self._loaded = tf.saved_model.load(str(path))  # keep a reference: the signature needs its variables alive
        if "serving_default" not in self._loaded.signatures:
            raise ValueError(f"{path} has no 'serving_default' signature (it has {list(self._loaded.signatures)}); "
                             "export it with tfkd.export.to_saved_model.")
        self.signature = self._loaded.signatures["serving_default"]
        _, kwargs = self.signature.structured_input_signature
        if len(self.signature.structured_outputs) != 1:
            raise ValueError(f"{path}: serving_default returns {list(self.signature.structured_outputs)}; expected "
                             "one output (the logits).")
        self.specs = dict(kwargs)
        self._bind(path, [([key], list(spec.shape[1:])) for key, spec in kwargs.items()], inputs)
        self.input_key = self.file_keys[0]  # the first (often only) input
        self.output_key = next(iter(self.signature.structured_outputs))

    def input_shape(self, i):
        """The per-example shape of the file's ``i``-th input (``None`` or -1 where it is not fixed)."""
        return self.specs[self.file_keys[i]].shape[1:]

    def prepare(self, x):
        import tensorflow as tf

        return {key: tf.constant(np.asarray(value, dtype=self.specs[key].dtype.as_numpy_dtype))
                for key, value in self.feed(x).items()}

    def invoke(self, prepared):
        return self.signature(**prepared)[self.output_key]

    def finish(self, raw):
        return np.asarray(raw, dtype=np.float32)


class OnnxRunner(_Runner):
    """An ``.onnx`` model in ``onnxruntime`` (CPU), when it is installed (``pip install 'tfkd[onnx]'``)."""

    format = "onnx"

    def __init__(self, path, *, num_threads: int | None = None, inputs=None):
        from tfkd.export.onnx import require_onnxruntime

        ort = require_onnxruntime()
        options = ort.SessionOptions()
        if num_threads:
            options.intra_op_num_threads = num_threads
            options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self._inputs = self.session.get_inputs()
        self._bind(path, [([i.name], list(i.shape[1:])) for i in self._inputs], inputs)
        self.input_name = self.file_keys[0]

    def input_shape(self, i):
        """The per-example shape of the file's ``i``-th input (``None`` or -1 where it is not fixed)."""
        return self._inputs[i].shape[1:]

    def prepare(self, x):
        types = {i.name: (np.float32 if "float" in i.type else np.int64 if "int64" in i.type else np.int32)
                 for i in self._inputs}
        return {key: np.asarray(value, dtype=types[key]) for key, value in self.feed(x).items()}

    def invoke(self, prepared):
        return self.session.run(None, prepared)[0]

    def finish(self, raw):
        return np.asarray(raw, dtype=np.float32)
