"""Check an exported model against the Keras model it came from, on real held-out data.

Reports top-1 agreement with the Keras model, the largest absolute difference of the logits (after dequantization)
and, with labels, the accuracy of both. The exported model runs in its deployment runtime (:mod:`.runners`):
``ai_edge_litert`` for TFLite, the ``serving_default`` signature for a SavedModel, onnxruntime for ONNX. ``x`` is
one array for a one-input model, or a list / tuple (Keras input order) or dict (by input name) of arrays.

Example:

    from tfkd.export import validate
    report = validate(model, "out/student_int8.tflite", x_test, y_test)
    report["agreement"], report["max_abs_diff"], report["accuracy"], report["keras_accuracy"]
    validate(two_input_model, "out/m.tflite", [x_image, x_features], y_test)
"""

from __future__ import annotations

import numpy as np

from pathlib import Path

from tfkd.export.inputs import as_arrays, input_specs
from tfkd.export.loading import as_float32, load_model
from tfkd.export.runners import load_runner

__all__ = ["validate", "predict_batched"]


def predict_batched(run, x, batch_size: int = 256) -> np.ndarray:
    """``run`` over ``x`` (an array, or a list / dict of arrays, one per input) in batches of ``batch_size``;
    float32 logits ``[N, classes]``."""
    if isinstance(x, dict):
        n, rows = len(next(iter(x.values()))), lambda s: {k: v[s] for k, v in x.items()}
    elif isinstance(x, (list, tuple)):
        n, rows = len(x[0]), lambda s: [v[s] for v in x]
    else:
        n, rows = len(x), lambda s: x[s]
    return np.concatenate([np.asarray(run(rows(slice(i, i + batch_size))), dtype=np.float32)
                           for i in range(0, n, batch_size)], axis=0)


def validate(keras_model, exported_path, x, y=None, *, batch_size: int = 256, num_threads: int | None = None,
             keras_logits=None, safe_mode: bool = True) -> dict:
    """Compare the model at ``exported_path`` with ``keras_model`` on held-out inputs ``x`` (and labels ``y``).

    Returns ``{"format", "n", "agreement", "max_abs_diff", "mean_abs_diff", "accuracy", "keras_accuracy"}``;
    the accuracies are ``None`` without ``y``. ``keras_logits`` (the Keras model's logits on ``x``) skips re-running
    Keras when validating several exports of one model.

    Example:

        validate("student.keras", "student_float32.tflite", x_test[:1000], y_test[:1000])["max_abs_diff"]  # ~1e-6
    """
    # a model on file need not be loaded just to learn its inputs when its logits are given for one array
    model = specs = None
    if keras_logits is None or not isinstance(keras_model, (str, Path)) or not isinstance(x, np.ndarray):
        model = as_float32(load_model(keras_model, safe_mode=safe_mode))
        specs = input_specs(model)
    if specs is not None:
        xs = as_arrays(x, specs, arg="x", min_len=0)
    else:
        xs = [np.asarray(x, dtype=np.float32)]
    n = len(xs[0])
    if n == 0:
        raise ValueError("x is empty; validate needs real held-out examples, e.g. x_test[:1000].")
    if y is not None:
        y = np.asarray(y).reshape(-1)
        if len(y) != n:
            raise ValueError(f"y has {len(y)} labels but x has {n} examples; pass matching arrays.")
    feed = xs[0] if len(xs) == 1 else xs
    if keras_logits is None:
        keras_logits = model.predict(feed, batch_size=batch_size, verbose=0)
    keras_logits = np.asarray(keras_logits, dtype=np.float32)
    run = load_runner(exported_path, num_threads=num_threads, inputs=specs)
    logits = predict_batched(run, feed, batch_size)
    if logits.shape != keras_logits.shape:
        raise ValueError(f"{exported_path} returns logits of shape {logits.shape} but the Keras model gives "
                         f"{keras_logits.shape}: the export is not of this model.")
    pred, keras_pred = logits.argmax(-1), keras_logits.argmax(-1)
    diff = np.abs(logits - keras_logits)
    return {
        "format": run.format,
        "n": int(n),
        "agreement": float(np.mean(pred == keras_pred)),
        "max_abs_diff": float(diff.max()),
        "mean_abs_diff": float(diff.mean()),
        "accuracy": float(np.mean(pred == y)) if y is not None else None,
        "keras_accuracy": float(np.mean(keras_pred == y)) if y is not None else None,
    }
