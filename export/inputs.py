"""The inputs of a model going into an export: what each one is called, its shape and dtype, and the data fed to it.

A model may take one input (an image ``[H, W, C]``, a feature vector ``[F]``, token ids ``[T]``) or several (a
Functional model over, say, an image and a feature vector). :func:`input_specs` describes them in the Keras
model's order and refuses, before any conversion work, what no export can take: unknown dimensions besides the
batch, and string inputs (``TextVectorization`` and other string preprocessing). Data for a model
(``x_test``, ``x_calibration``) is one array for a one-input model, or a list / tuple of arrays in the Keras input
order, or a dict keyed by input name; :func:`as_arrays` turns any of these into one checked array per input.

Each exported artifact names its inputs by :attr:`InputSpec.key`: ``"inputs"`` for a one-input model (the
SavedModel signature every client already knows), the Keras input name (made a valid identifier) otherwise. The
runners (:mod:`.runners`) map data to an artifact's inputs by these keys, never by position: TFLite, for one,
keeps a signature's inputs in an order of its own, not the Keras model's.

Example:

    from tfkd.export.inputs import input_specs, as_arrays
    specs = input_specs(model)              # [InputSpec(name='image', key='image', shape=(8, 8, 1), ...), ...]
    xs = as_arrays([x_image, x_features], specs, arg="x_test")
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

__all__ = ["InputSpec", "input_specs", "as_arrays", "as_feed", "take", "value_ranges", "SINGLE_KEY"]

SINGLE_KEY = "inputs"  # the signature key of a one-input model's input (see tfkd.export.savedmodel)


@dataclass(frozen=True)
class InputSpec:
    """One model input: its Keras ``name``, its ``key`` in exported signatures, per-example ``shape`` and ``dtype``."""

    name: str
    key: str
    shape: tuple
    dtype: str  # the dtype exported artifacts take: "float32" for any float input, else the integer dtype

    def describe(self) -> str:
        """``"28x28x1, float32"``: shape and dtype, as the report prints them."""
        return f"{'x'.join(map(str, self.shape)) or 'scalar'}, {self.dtype}"


def input_specs(model) -> list[InputSpec]:
    """The inputs of a one-output ``model`` in Keras order; a clear ``ValueError`` for what cannot be exported.

    Example:

        input_specs(keras.Sequential([keras.Input((30,)), keras.layers.Dense(2)]))
        # [InputSpec(name='input_layer', key='inputs', shape=(30,), dtype='float32')]
    """
    inputs, outputs = list(model.inputs or []), list(model.outputs or [])
    if not inputs or len(outputs) != 1:
        raise ValueError(f"model {model.name!r} has {len(inputs)} inputs and {len(outputs)} outputs; tfkd.export "
                         "handles classifiers with one or more inputs and one logits output. Wrap the model in a "
                         "keras.Model(inputs, outputs) with a single output first.")
    names = [_input_name(t, i) for i, t in enumerate(inputs)]
    for name, tensor in zip(names, inputs):
        _check_dtype(model, name, str(tensor.dtype))
    specs = []
    keys = _keys(names)
    for name, key, tensor in zip(names, keys, inputs):
        shape = tuple(tensor.shape[1:])
        if any(d is None for d in shape):
            raise ValueError(f"model {model.name!r} input {name!r} has shape {tuple(tensor.shape)}, with unknown "
                             "dimensions besides the batch; TFLite needs fixed ones. Build it with "
                             "keras.Input(shape=...) giving every size, e.g. (H, W, C) for images or (F,) for "
                             "feature vectors.")
        dtype = str(tensor.dtype)
        specs.append(InputSpec(name, key, tuple(int(d) for d in shape),
                               "float32" if np.issubdtype(np.dtype(dtype), np.floating) else dtype))
    return specs


def _input_name(tensor, index):
    name = getattr(tensor, "name", None) or f"input_{index}"
    return name.split(":")[0]


def _keys(names):
    if len(names) == 1:
        return [SINGLE_KEY]
    keys = []
    for name in names:
        key = re.sub(r"\W", "_", name) or "input"
        key = f"input_{key}" if key[0].isdigit() else key
        while key in keys:  # two inputs whose names differ only in punctuation
            key += "_"
        keys.append(key)
    return keys


def _check_dtype(model, name, dtype):
    if dtype == "string":
        raise ValueError(
            f"model {model.name!r} input {name!r} has dtype string. TFLite builtin ops cannot run string "
            "preprocessing such as keras.layers.TextVectorization or StringLookup (string splitting and lookup "
            "tables need TF/Flex ops the pip runtime and most apps lack), and tfkd.export feeds numeric tensors. "
            "To fix: keep the TextVectorization layer outside the exported graph and export the model from the "
            "vectorized integer input onward, e.g. token_ids = keras.Input(shape=(sequence_length,), "
            "dtype='int32'); logits = head(embedding(token_ids)); export keras.Model(token_ids, logits) and feed "
            "it vectorizer(texts) (the token ids) at validation time and in the app.")
    try:
        kind = np.dtype(dtype)
    except TypeError:
        kind = None
    if kind is None or not (np.issubdtype(kind, np.floating) or np.issubdtype(kind, np.integer)):
        raise ValueError(f"model {model.name!r} input {name!r} has dtype {dtype}; tfkd.export handles float and "
                         "integer inputs: build the model on a float32 (or int32, for token ids) keras.Input.")


def as_arrays(x, specs: list[InputSpec], *, arg: str = "x", min_len: int = 1) -> list[np.ndarray]:
    """``x`` as one array per input of ``specs``, in Keras order, each checked and cast to the input's dtype.

    ``x``: one array (one-input model), a list / tuple of arrays in the Keras input order, or a dict keyed by
    input name (the Keras name or the signature key). ``arg`` names the argument in error messages.

    Example:

        xa, xb = as_arrays({"image": x_image, "features": x_features}, specs, arg="x_test")
    """
    expected = ", ".join(f"{s.name!r} [N, {s.describe()}]" for s in specs)
    if isinstance(x, dict):
        by_name = {}
        for spec in specs:
            key = spec.name if spec.name in x else spec.key if spec.key in x else None
            if key is None and len(specs) == 1 and len(x) == 1:
                key = next(iter(x))
            if key is None:
                raise ValueError(f"{arg} is a dict with keys {sorted(map(str, x))} but has no entry for input "
                                 f"{spec.name!r}; the model takes {expected}.")
            by_name[spec.name] = x[key]
        extra = set(x) - {k for s in specs for k in (s.name, s.key)}
        if extra and len(specs) > 1:
            raise ValueError(f"{arg} has keys {sorted(map(str, extra))} that are no input of the model; it takes "
                             f"{expected}.")
        arrays = [by_name[s.name] for s in specs]
    elif isinstance(x, (list, tuple)) and len(specs) > 1:
        if len(x) != len(specs):
            raise ValueError(f"{arg} holds {len(x)} arrays but the model has {len(specs)} inputs; pass one array "
                             f"per input, in this order: {expected} (or a dict keyed by input name).")
        arrays = list(x)
    elif len(specs) > 1:
        shape = getattr(x, "shape", None)
        raise ValueError(f"{arg} is one array{f' of shape {tuple(shape)}' if shape is not None else ''} but the "
                         f"model has {len(specs)} inputs; pass a list of arrays in this order: {expected}, or a "
                         "dict keyed by input name.")
    elif (isinstance(x, (list, tuple)) and len(x) == 1
          and np.ndim(x[0]) == len(specs[0].shape) + 1):  # [x] for a one-input model
        arrays = [x[0]]
    else:
        arrays = [x]
    out = [_checked(a, spec, arg, len(specs)) for a, spec in zip(arrays, specs)]
    lengths = {len(a) for a in out}
    if len(lengths) > 1:
        raise ValueError(f"{arg} has arrays of different lengths {[len(a) for a in out]} for inputs "
                         f"{[s.name for s in specs]}; every input needs one row per example.")
    if len(out[0]) < min_len:
        raise ValueError(f"{arg} has no examples (length 0); it needs real data, one row per example.")
    return out


def _checked(array, spec, arg, count):
    if isinstance(array, np.ndarray) and not np.issubdtype(array.dtype, np.number) and array.dtype != bool:
        raise ValueError(f"{arg} for input {spec.name!r} has dtype {array.dtype}; expected numbers "
                         f"({spec.dtype}). Strings must be vectorized outside the model (token ids).")
    array = np.asarray(array, dtype=spec.dtype)
    if array.ndim != len(spec.shape) + 1 or tuple(array.shape[1:]) != spec.shape:
        where = f"{arg} for input {spec.name!r}" if count > 1 else arg
        got = tuple(array.shape[1:]) if array.ndim else ()
        hint = ("pass the dataset the model was trained on (e.g. --data mnist for a 28x28x1 model)"
                if len(spec.shape) == 3 else "pass the data the model was trained on, preprocessed the same way")
        raise ValueError(f"{where} has examples of shape {got} but the model takes {spec.shape} "
                         f"(array shape {array.shape}, expected [N, {', '.join(map(str, spec.shape))}]); {hint}.")
    return array


def as_feed(arrays: list[np.ndarray], specs: list[InputSpec]) -> dict:
    """``{key: array}``: what the runners and the TFLite calibrator take, mapped by signature key."""
    return {spec.key: a for spec, a in zip(specs, arrays)}


def take(arrays: list[np.ndarray], index) -> list[np.ndarray]:
    """The same rows (a slice or an index array) of every input."""
    return [a[index] for a in arrays]


def value_ranges(arrays: list[np.ndarray]) -> list[tuple[float, float]]:
    """``(min, max)`` of each input's data, as Python floats."""
    return [(float(np.min(a)), float(np.max(a))) for a in arrays]
