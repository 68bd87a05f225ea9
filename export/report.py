"""The export report: one row per exported format, ratios against the float32 Keras model, JSON and Markdown.

The baseline row is the Keras model itself in float32: its size is the float32 weights (4 bytes a parameter,
non-trainable ones such as BN statistics included), its gzip size that of those bytes, its latency one batch-1
call of the model as a ``tf.function``. Every other row carries ``size_ratio``, ``gzip_ratio`` and
``latency_ratio`` against it and ``accuracy_delta_points`` (percentage points, negative = lost accuracy).

Example:

    from tfkd.export import report
    rows = [report.keras_row(model, x_test[:1], keras_logits, y_test), tflite_row, ...]
    text = report.markdown(report.with_ratios(rows))
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from tfkd import io
from tfkd.export.bench import time_calls

__all__ = ["keras_row", "with_ratios", "markdown", "write", "COLUMNS"]

# (key, Markdown header, formatter)
COLUMNS = [
    ("format", "format", str),
    ("quantize", "quantize", str),
    ("size_bytes", "size (bytes)", lambda v: f"{v:,}"),
    ("gzip_bytes", "gzip (bytes)", lambda v: f"{v:,}"),
    ("size_ratio", "size / Keras", lambda v: f"{v:.3f}"),
    ("gzip_ratio", "gzip / Keras", lambda v: f"{v:.3f}"),
    ("latency_median_ms", "latency median (ms)", lambda v: f"{v:.4f}"),
    ("latency_p90_ms", "latency p90 (ms)", lambda v: f"{v:.4f}"),
    ("latency_ratio", "latency / Keras", lambda v: f"{v:.3f}"),
    ("agreement", "top-1 agreement", lambda v: f"{v:.4f}"),
    ("max_abs_diff", "max abs diff", lambda v: f"{v:.3g}"),
    ("accuracy", "accuracy", lambda v: f"{v:.4f}"),
    ("accuracy_delta_points", "Δ accuracy (points)", lambda v: f"{v:+.2f}"),
]


def keras_row(model, example, keras_logits, y=None, *, runs: int = 200, warmup: int = 20) -> dict:
    """The float32 Keras baseline row: weight bytes, their gzip size, batch-1 latency, accuracy on ``y``.

    ``example``: one array, or a list of arrays (one per input, Keras order) for a model with several inputs.
    """
    import tensorflow as tf

    weights = [np.asarray(w, dtype=np.float32) for w in model.get_weights()]
    raw = b"".join(w.tobytes() for w in weights)
    call = tf.function(lambda t: model(t, training=False))
    examples = list(example) if isinstance(example, (list, tuple)) else [example]
    tensors = [tf.constant(_numeric(e)[:1]) for e in examples]
    batch = tensors[0] if len(tensors) == 1 else tensors
    timing = time_calls(lambda: call(batch).numpy(), runs=runs, warmup=warmup)
    row = {"format": "keras", "quantize": "float32", "path": None, "size_bytes": len(raw),
           "gzip_bytes": len(gzip.compress(raw, compresslevel=9, mtime=0)), **timing,
           "agreement": 1.0, "max_abs_diff": 0.0}
    if y is not None:
        row["accuracy"] = float(np.mean(np.asarray(keras_logits).argmax(-1) == np.asarray(y).reshape(-1)))
    return row


def _numeric(array):
    array = np.asarray(array)
    return array if np.issubdtype(array.dtype, np.integer) else array.astype(np.float32)  # token ids stay integers


def with_ratios(rows: list[dict]) -> list[dict]:
    """``rows`` with ratios to the first row whose ``format`` is ``"keras"`` (skipped rows get none)."""
    base = next((r for r in rows if r.get("format") == "keras"), None)
    if base is None:
        raise ValueError("rows have no Keras baseline row (format 'keras'); build one with keras_row().")
    out = []
    for row in rows:
        row = dict(row)
        if "size_bytes" in row:
            row["size_ratio"] = row["size_bytes"] / base["size_bytes"]
            row["gzip_ratio"] = row["gzip_bytes"] / base["gzip_bytes"]
            row["latency_ratio"] = row["latency_median_ms"] / base["latency_median_ms"]
            if row.get("accuracy") is not None and base.get("accuracy") is not None:
                row["accuracy_delta_points"] = (row["accuracy"] - base["accuracy"]) * 100.0
        out.append(row)
    return out


def markdown(rows: list[dict]) -> str:
    """A Markdown table, one line per row; skipped or failed rows say why in place of the numbers."""
    lines = ["| " + " | ".join(header for _, header, _ in COLUMNS) + " |",
             "|" + "|".join("---" for _ in COLUMNS) + "|"]
    for row in rows:
        if "size_bytes" not in row:
            why = row.get("skipped") or row.get("error") or "not exported"
            cells = [str(row.get("format", "")), str(row.get("quantize", "")), _one_line(why)]
            cells += [""] * (len(COLUMNS) - 3)
        else:
            cells = ["" if row.get(key) is None else fmt(row[key]) for key, _, fmt in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _one_line(text, limit=160):
    text = " ".join(str(text).split()).replace("|", "/")
    return text if len(text) <= limit else text[:limit - 3] + "..."


def write(report: dict, out_dir, *, stem: str = "report") -> tuple[Path, Path]:
    """Write ``report`` as ``<stem>.json`` and ``<stem>.md`` (title, settings, table) in ``out_dir``, atomically."""
    out_dir = Path(out_dir)
    json_path, md_path = out_dir / f"{stem}.json", out_dir / f"{stem}.md"
    io.write_json(json_path, report)
    header = [f"# Export report: {report.get('model', '')}", ""]
    for key in ("source", "data", "input_shape", "params", "settings"):
        if report.get(key) is not None:
            header.append(f"- {key}: {_plain(report[key])}")
    text = "\n".join(header) + "\n\n" + markdown(report["rows"])
    notes = report.get("notes") or []
    if notes:
        text += "\n" + "\n".join(f"- {note}" for note in notes) + "\n"
    io.write_text(md_path, text)
    return json_path, md_path


def _plain(value):
    if isinstance(value, dict):
        return ", ".join(f"{k}={_plain(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return "x".join(str(v) for v in value) if all(isinstance(v, int) for v in value) else ", ".join(map(str, value))
    return str(value)

