"""``export_all``: export one Keras model to several formats, validate and time each, and write the report.

This is what ``tfkd export`` runs and what recipes call for their deployable student. Each requested artifact is
written atomically under ``out_dir``, validated against the Keras model on real held-out data, benchmarked,
and becomes one row of the report (:mod:`.report`), after the float32 Keras baseline row. An artifact that cannot
be made (ops outside the TFLite builtins; ONNX packages missing) becomes a row that says why, and the others go on.

Inputs may be images, feature vectors or token ids, one or several (:mod:`.inputs`): ``x_test`` and
``x_calibration`` are then lists of arrays in the Keras input order, or dicts keyed by input name. The report
states, per input, the value range of the validation data and, for TFLite files with integer inputs, the input
tensor's scale and zero point, so a range mismatch between calibration and use shows.

Example:

    from tfkd.export import export_all
    report = export_all("student.keras", "out/", formats=["tflite", "saved_model"], quantize=["none", "int8"],
                        x_calibration=x_train[:1000], x_test=x_test, y_test=y_test)
    print(report["markdown_table"])
    export_all(two_input_model, "out2/", quantize=["none", "int8"], x_calibration=[xa_train, xb_train],
               x_test=[xa_test, xb_test], y_test=y_test)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tfkd.export import report as report_lib
from tfkd.export.bench import benchmark
from tfkd.export.inputs import as_arrays, as_feed, input_specs, take, value_ranges
from tfkd.export.loading import as_float32, load_model
from tfkd.export.onnx import OnnxInputsError, OnnxUnavailableError, to_onnx
from tfkd.export.savedmodel import to_saved_model
from tfkd.export.tflite import QUANTIZE_MODES, UnsupportedInputsError, UnsupportedOpsError, to_tflite
from tfkd.export.validation import validate

__all__ = ["export_all", "tflite_inputs", "FORMATS"]

FORMATS = ("tflite", "saved_model", "onnx")


def _check_choices(name, values, allowed):
    values = [values] if isinstance(values, str) else list(values)
    if "all" in values:
        values = list(allowed)
    bad = [v for v in values if v not in allowed]
    if bad or not values:
        raise ValueError(f"{name}={values!r} is not valid; expected one or more of {allowed} (or 'all').")
    return list(dict.fromkeys(values))


def export_all(model, out_dir, *, formats=("tflite",), quantize=("none",), x_test=None, y_test=None,
               x_calibration=None, io_dtype: str | None = None, num_calibration: int = 300, num_threads: int = 1,
               runs: int = 200, warmup: int = 20, name: str | None = None, allow_flex_ops: bool = False,
               safe_mode: bool = True, data: str | None = None, report_stem: str = "report", log=print) -> dict:
    """Export ``model`` to every ``formats`` x ``quantize`` (quantize applies to TFLite), validate, time, report.

    ``x_test``/``y_test``: real held-out examples and labels for validation (required). ``x_calibration``: real
    training examples for ``int8``/``int16x8`` calibration, in the range and preprocessing the model takes. For a
    model with several inputs, both are lists of arrays in the Keras input order, or dicts keyed by input name.
    Returns the report dict (also written as ``<report_stem>.json`` and ``.md`` in ``out_dir``) with ``rows``,
    ``inputs`` (name, shape, dtype and data range of each input), ``json``, ``markdown`` and ``markdown_table``.

    Example:

        export_all(model, "out", quantize="all", x_calibration=x_train, x_test=x_test, y_test=y_test)
    """
    formats = _check_choices("formats", formats, FORMATS)
    quantize = _check_choices("quantize", quantize, QUANTIZE_MODES)
    if x_test is None:
        raise ValueError("x_test is required: every export is validated against the Keras model on real held-out "
                         "data (e.g. x_test=splits.x_test, y_test=splits.y_test).")
    source = str(model) if isinstance(model, (str, Path)) else None
    keras_model = as_float32(load_model(model, safe_mode=safe_mode))
    specs = input_specs(keras_model)  # refuses string inputs and unknown sizes before any work
    x_tests = as_arrays(x_test, specs, arg="x_test")
    calibrated = "tflite" in formats and any(q in ("int8", "int16x8") for q in quantize)
    if calibrated and x_calibration is not None:  # bad calibration data fails now, not after the first exports
        x_calibration = as_arrays(x_calibration, specs, arg="x_calibration")
    name = name or (Path(source).stem if source else keras_model.name)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    feed = x_tests[0] if len(specs) == 1 else x_tests
    keras_logits = keras_model.predict(feed, batch_size=256, verbose=0)
    ranges = value_ranges(x_tests)
    inputs = [{"name": s.name, "key": s.key, "shape": list(s.shape), "dtype": s.dtype, "range": list(r)}
              for s, r in zip(specs, ranges)]
    rows = [report_lib.keras_row(keras_model, take(x_tests, slice(0, 1)), keras_logits, y_test, runs=runs,
                                 warmup=warmup)]
    rows[0]["input_range"] = {s.name: list(r) for s, r in zip(specs, ranges)}
    log(f"keras float32: accuracy {rows[0].get('accuracy')}, weights {rows[0]['size_bytes']:,} bytes")

    jobs = [("tflite", q) for q in quantize] if "tflite" in formats else []
    jobs += [(f, "none") for f in formats if f != "tflite"]
    for fmt, q in jobs:
        row = {"format": fmt, "quantize": q}
        try:
            if fmt == "tflite":
                path = to_tflite(keras_model, out_dir / f"{name}_{_suffix(q)}.tflite", quantize=q,
                                 representative_data=x_calibration, io_dtype=io_dtype if q in ("int8", "int16x8")
                                 else None, num_calibration=num_calibration, allow_flex_ops=allow_flex_ops)
                row["io_dtype"] = _io_of(path)
            elif fmt == "saved_model":
                path = to_saved_model(keras_model, out_dir / f"{name}_saved_model")
            else:
                path = to_onnx(keras_model, out_dir / f"{name}.onnx")
        except OnnxUnavailableError as err:
            row["skipped"] = str(err)
            log(f"{fmt}: skipped: {err}")
            rows.append(row)
            continue
        except (UnsupportedOpsError, UnsupportedInputsError, OnnxInputsError) as err:
            row["error"] = str(err)
            log(f"{fmt} {q}: FAILED: {err}")
            rows.append(row)
            continue
        check = validate(keras_model, path, feed, y_test, keras_logits=keras_logits, num_threads=num_threads)
        timing = benchmark(path, num_threads=num_threads, runs=runs, warmup=warmup,
                           inputs=as_feed(take(x_tests, slice(0, 1)), specs))
        row.update({"path": str(path.relative_to(out_dir)), **_pick(timing), **_pick_check(check)})
        if fmt == "tflite":
            row["inputs"] = tflite_inputs(path, specs, inputs)
        log(f"{fmt} {q}: {row['size_bytes']:,} bytes, agreement {row['agreement']:.4f}, "
            f"accuracy {row['accuracy'] if row['accuracy'] is None else round(row['accuracy'], 4)}")
        rows.append(row)

    rows = report_lib.with_ratios(rows)
    report = {
        "model": name, "source": source, "data": data,
        "input_shape": list(specs[0].shape) if len(specs) == 1 else {s.name: list(s.shape) for s in specs},
        "inputs": inputs,
        "params": int(keras_model.count_params()),
        "settings": {"num_threads": num_threads, "runs": runs, "warmup": warmup, "n_test": int(len(x_tests[0])),
                     "n_calibration": int(min(num_calibration, len(x_calibration[0])))
                     if calibrated and x_calibration is not None else 0},
        "rows": rows,
        "notes": _notes(rows, inputs) + _rescaling_hints(keras_model, specs, ranges),
    }
    json_path, md_path = report_lib.write(report, out_dir, stem=report_stem)
    report.update({"json": str(json_path), "markdown": str(md_path), "markdown_table": report_lib.markdown(rows)})
    return report


def _suffix(quantize):
    return "float32" if quantize == "none" else quantize


def _io_of(path):
    from tfkd.export.runners import TFLiteRunner

    runner = TFLiteRunner(path)
    return str(runner.input_dtype)


def tflite_inputs(path, specs, inputs):
    """Per Keras input: the data range and, for an integer input tensor, its dtype, scale and zero point."""
    from tfkd.export.runners import TFLiteRunner

    runner = TFLiteRunner(path, inputs=specs)
    by_key = dict(zip(runner.file_keys, runner.inputs))
    out = []
    for spec, info, key in zip(specs, inputs, runner.input_keys):
        detail = by_key[key]
        entry = {"name": spec.name, "shape": list(spec.shape), "dtype": spec.dtype, "range": info["range"],
                 "tensor_dtype": str(np.dtype(detail["dtype"]))}
        scale, zero_point = detail["quantization"]
        if scale != 0.0:
            entry.update({"scale": float(scale), "zero_point": int(zero_point)})
        out.append(entry)
    return out


def _pick(timing):
    keys = ("size_bytes", "gzip_bytes", "latency_median_ms", "latency_p90_ms", "latency_mean_ms", "latency_min_ms")
    return {k: timing[k] for k in keys}


def _pick_check(check):
    return {k: check[k] for k in ("agreement", "max_abs_diff", "mean_abs_diff", "accuracy")}


def _notes(rows, inputs):
    notes = ["Keras row: float32 weights (4 bytes a parameter); latency: batch 1, after warm-up, median and p90; "
             "agreement: top-1 agreement with the Keras model; max abs diff: logits, after dequantization."]
    notes += [_input_line(i) for i in inputs]
    for r in rows:
        for i in r.get("inputs", []):
            if "scale" in i:
                notes.append(f"tflite {r['quantize']}: {_input_line(i)}; {i['tensor_dtype']} input scale "
                             f"{i['scale']:.6g}, zero point {i['zero_point']}" + _clip_warning(i))
    by_q = {r["quantize"]: r for r in rows if r.get("format") == "tflite" and "size_bytes" in r}
    if "none" in by_q:
        for q, r in by_q.items():
            if q != "none":
                notes.append(f"tflite {q} vs tflite float32: size {r['size_bytes'] / by_q['none']['size_bytes']:.1%}"
                             + (f", accuracy {(r['accuracy'] - by_q['none']['accuracy']) * 100:+.2f} points"
                                if r.get("accuracy") is not None else ""))
    return notes


def _num(v):
    return f"{v:.4g}"


def _input_line(i):
    shape = "x".join(map(str, i["shape"])) or "scalar"
    return f"input {i['name']!r} ({shape}, {i['dtype']}): data range [{_num(i['range'][0])}, {_num(i['range'][1])}]"


def _clip_warning(i):
    """A warning when the validation data reach past what the integer input tensor can represent."""
    info = np.iinfo(np.dtype(i["tensor_dtype"]))
    low, high = (info.min - i["zero_point"]) * i["scale"], (info.max - i["zero_point"]) * i["scale"]
    lo, hi = i["range"]
    if lo < low - i["scale"] or hi > high + i["scale"]:
        return (f" (WARNING: it represents [{_num(low)}, {_num(high)}] only, so data outside are clipped: calibrate "
                "on data in the range the model is fed)")
    return ""


def _rescaling_hints(model, specs, ranges):
    """A note when an input goes straight into a strong Rescaling (e.g. 1/255) but its data are already in [0, 1]."""
    import keras

    by_name = {s.name: r for s, r in zip(specs, ranges) if len(s.shape) == 3}  # image inputs only
    hints = []
    for layer in model.layers:
        if not isinstance(layer, keras.layers.Rescaling):
            continue
        try:
            source = layer.input.name
        except (AttributeError, ValueError):  # a layer used several times has no single input
            continue
        scale = np.asarray(layer.scale, dtype=np.float64)
        lo, hi = by_name.get(source, (None, None))
        if hi is not None and scale.size == 1 and 0 < float(scale) <= 0.01 and -1.0 <= lo and hi <= 1.0:
            hints.append(f"input {source!r} goes through Rescaling(scale={float(scale):.4g}) but its data lie in "
                         f"[{_num(lo)}, {_num(hi)}]: the model expects unscaled values (e.g. 0-255 pixels), so feed "
                         "those (tfkd export --input-scale 255).")
    return hints
