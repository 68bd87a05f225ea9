"""Export a Keras student for phones and servers: TFLite, SavedModel, ONNX; validated, sized and timed.

Writers (each writes atomically: a failed export never leaves a half-written file under the final name):
:func:`to_tflite` (``quantize`` none / dynamic / float16 / int8 / int16x8), :func:`to_saved_model`
(``serving_default``, dynamic batch) and :func:`to_onnx` (optional packages). :func:`validate` runs an export in its
deployment runtime against the Keras model; :func:`benchmark` times it and measures its size and gzip size;
:func:`export_all` does all of it and writes the report (what ``tfkd export`` runs). Inputs may be images,
feature vectors or token ids, one or several (:func:`input_specs`; data as a list or dict of arrays). Pruning and
quantization-aware training run in their own process: ``python -m tfkd.export.tfmot_track``.

Example:

    from tfkd.export import to_tflite, validate, benchmark
    path = to_tflite(model, "student_int8.tflite", quantize="int8", representative_data=x_train[:500])
    validate(model, path, x_test, y_test)     # agreement, max_abs_diff, accuracy, keras_accuracy
    benchmark(path, num_threads=1)            # latency_median_ms, latency_p90_ms, size_bytes, gzip_bytes
"""

import importlib

# public name -> module; loaded on first use so `import tfkd.export` (and the tfmot subprocess) stays light
_LAZY = {
    "to_tflite": "tfkd.export.tflite",
    "QUANTIZE_MODES": "tfkd.export.tflite",
    "UnsupportedOpsError": "tfkd.export.tflite",
    "UnsupportedInputsError": "tfkd.export.tflite",
    "to_saved_model": "tfkd.export.savedmodel",
    "to_onnx": "tfkd.export.onnx",
    "OnnxUnavailableError": "tfkd.export.onnx",
    "validate": "tfkd.export.validation",
    "benchmark": "tfkd.export.bench",
    "export_all": "tfkd.export.pipeline",
    "load_runner": "tfkd.export.runners",
    "input_specs": "tfkd.export.inputs",
    "tflite_inputs": "tfkd.export.pipeline",
    "InputSpec": "tfkd.export.inputs",
    "as_float32": "tfkd.export.loading",
    "load_model": "tfkd.export.loading",
    "run_track": "tfkd.export.tfmot_track",
}

__all__ = list(_LAZY)


def __getattr__(name):
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'tfkd.export' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(__all__)
