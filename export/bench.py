"""Latency, size on disk and download size (gzip) of an exported model.

Latency is timed per invocation after warm-up on one real-shaped input (batch 1 by default: what an app on a phone
does), in the deployment runtime (:mod:`.runners`), with ``num_threads`` interpreter threads. Input preparation
(quantizing) happens once outside the timed loop, as an app that feeds the interpreter directly would do. The gzip
size is what an app store or a model download actually moves: pruned weights (runs of zeros) only pay off there.

Example:

    from tfkd.export import benchmark
    b = benchmark("out/student_int8.tflite", num_threads=1)
    b["latency_median_ms"], b["latency_p90_ms"], b["size_bytes"], b["gzip_bytes"]
"""

from __future__ import annotations

import gzip
import io
import tarfile
import time
from pathlib import Path

import numpy as np

from tfkd.export.runners import format_of, load_runner

__all__ = ["benchmark", "size_bytes", "gzip_bytes", "time_calls"]


def size_bytes(path) -> int:
    """Bytes on disk: the file, or the sum of the files in a directory (SavedModel)."""
    path = Path(path)
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def gzip_bytes(path, *, level: int = 9) -> int:
    """Bytes after gzip (a directory is tarred first, deterministically: sorted names, zero mtimes)."""
    path = Path(path)
    if path.is_file():
        return len(gzip.compress(path.read_bytes(), compresslevel=level, mtime=0))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for item in sorted(p for p in path.rglob("*") if p.is_file()):
            info = tar.gettarinfo(str(item), arcname=str(item.relative_to(path)))
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            with open(item, "rb") as f:
                tar.addfile(info, f)
    return len(gzip.compress(buffer.getvalue(), compresslevel=level, mtime=0))


def time_calls(fn, *, runs: int, warmup: int) -> dict:
    """Call ``fn()`` ``warmup`` times untimed, then ``runs`` times timed; median, p90, mean and min in ms."""
    if runs < 1 or warmup < 0:
        raise ValueError(f"runs={runs!r} must be >= 1 and warmup={warmup!r} >= 0.")
    for _ in range(warmup):
        fn()
    times = np.empty(runs)
    for i in range(runs):
        start = time.perf_counter_ns()
        fn()
        times[i] = (time.perf_counter_ns() - start) / 1e6
    return {"latency_median_ms": float(np.median(times)), "latency_p90_ms": float(np.percentile(times, 90)),
            "latency_mean_ms": float(times.mean()), "latency_min_ms": float(times.min())}


def benchmark(path, *, num_threads: int = 1, runs: int = 200, warmup: int = 20, batch_size: int = 1,
              inputs=None, seed: int = 0, keras_inputs=None) -> dict:
    """Time the exported model at ``path`` and measure its size.

    ``inputs``: an example batch (e.g. ``x_test[:1]``; for several inputs a dict keyed by input name, or a list in
    the order of ``keras_inputs``, the Keras model's :func:`~tfkd.export.inputs.input_specs`, else the file's);
    without it, uniform [0, 1) values of each input's shape (timing does not depend on the values for these
    models). Returns ``latency_median_ms``, ``latency_p90_ms``, ``latency_mean_ms``, ``latency_min_ms``,
    ``size_bytes``, ``gzip_bytes`` and the settings.

    Example:

        benchmark("student_float32.tflite", num_threads=2, runs=500)["latency_p90_ms"]
    """
    if not isinstance(num_threads, int) or num_threads < 1:
        raise ValueError(f"num_threads={num_threads!r} must be a positive int (1 is what a phone app often uses).")
    kind = format_of(path)
    run = load_runner(path, num_threads=num_threads, inputs=keras_inputs)
    if inputs is None:
        rng = np.random.default_rng(seed)
        inputs = {key: rng.random((batch_size, *_input_shape(run, i)), dtype=np.float32)
                  for i, key in enumerate(run.file_keys)}
    if isinstance(inputs, dict):
        inputs = {k: np.asarray(v)[:batch_size] for k, v in inputs.items()}
    elif isinstance(inputs, (list, tuple)) and len(run.file_keys) > 1:
        inputs = [np.asarray(v)[:batch_size] for v in inputs]
    else:
        inputs = np.asarray(inputs)[:batch_size]
    feed = run.feed(inputs)
    prepared = run.prepare(feed)
    if kind == "saved_model":
        fn = lambda: run.invoke(prepared).numpy()  # .numpy() waits for the result
    else:
        fn = lambda: run.invoke(prepared)
    result = time_calls(fn, runs=runs, warmup=warmup)
    result.update({"format": kind, "size_bytes": size_bytes(path), "gzip_bytes": gzip_bytes(path),
                   "num_threads": num_threads, "runs": runs, "warmup": warmup,
                   "batch_size": len(next(iter(feed.values())))})
    return result


def _input_shape(run, i) -> tuple:
    shape = run.input_shape(i)
    if any(d is None or not isinstance(d, (int, np.integer)) or d < 1 for d in shape):
        raise ValueError(f"the model's input {run.file_keys[i]!r} has shape {tuple(shape)}, not fully known; "
                         "pass inputs=x[:1].")
    return tuple(int(d) for d in shape)
