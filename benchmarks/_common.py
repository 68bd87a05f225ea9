"""What every benchmark records beside its numbers: the machine, the versions, the command; and how it writes them.

A result is only worth committing with the conditions it was measured under, so each script calls
:func:`environment` at the start and at the end (the load average tells whether other work shared the CPU) and
writes ``<stem>.json`` and ``<stem>.md`` atomically with :func:`write`.

Example:

    from benchmarks import _common
    env = _common.environment()
    _common.write("benchmarks/results", "step_time", {"env": env, ...}, "# Step time\\n...")
"""

from __future__ import annotations

import os
import platform
import shlex
import sys
import tempfile
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
REPO = RESULTS.parents[1]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(module_name):
    try:
        from importlib import metadata

        return metadata.version(module_name)
    except Exception:  # noqa: BLE001 - a missing optional package is reported, not fatal
        return None


def environment() -> dict:
    """Machine, CPU, usable cores, load average and library versions, as one JSON-able dict."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    env = {
        "machine": f"{_cpu_model()}, {usable} usable CPU cores, {platform.platform()}",
        "cpu_cores": usable,
        "load_average_1_5_15": [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
    }
    env["versions"] = {name: _version(name) for name in ("tensorflow", "keras", "numpy", "ai-edge-litert", "tfkd")}
    return env


def versions_line(env) -> str:
    return ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v) + f", Python {env['python']}"


def command(script: str, argv) -> str:
    """The shell command that reproduces this result, from the repository root."""
    args = list(sys.argv[1:] if argv is None else argv)
    return " ".join(["python -m", f"benchmarks.{script}", *map(shlex.quote, args)])


def default_data_dir():
    """``$TFKD_DATA_DIR``, else ``../shared/data`` beside the repository if it exists (as the tests use), else None."""
    env = os.environ.get("TFKD_DATA_DIR")
    if env:
        return env
    shared = REPO.parent / "shared" / "data"
    return str(shared) if shared.is_dir() else None


def out_dir(out, smoke: bool) -> Path:
    """``--out`` if given; a fresh temporary directory for a smoke run (it must not overwrite real results)."""
    if out:
        return Path(out)
    if smoke:
        return Path(tempfile.mkdtemp(prefix="tfkd_bench_smoke_"))
    return RESULTS


def write(directory, stem: str, result: dict, markdown: str) -> dict:
    """Write ``<stem>.json`` and ``<stem>.md`` atomically; returns their paths."""
    from tfkd import io

    directory = Path(directory)
    return {"json": str(io.write_json(directory / f"{stem}.json", result)),
            "markdown": str(io.write_text(directory / f"{stem}.md", markdown))}


def publish(out, smoke: bool, stem: str, result: dict, markdown: str, log) -> int:
    """A script's last step: write ``<stem>.json``/``.md`` (``<stem>_smoke`` for a smoke run) in :func:`out_dir`,
    print the Markdown, ``log`` the two paths; returns the script's exit code, 0."""
    paths = write(out_dir(out, smoke), f"{stem}_smoke" if smoke else stem, result, markdown)
    print(markdown)
    log(f"wrote {paths['json']} and {paths['markdown']}")
    return 0


def rerender(out, smoke: bool, stem: str, to_markdown, update=None) -> int:
    """``--render``: rewrite ``<stem>.md`` (``<stem>_smoke``) from the JSON already in ``out`` (default
    :data:`RESULTS`), measuring nothing; ``update(result)`` may refresh derived fields first. Returns 0."""
    from tfkd import io

    stem = f"{stem}_smoke" if smoke else stem
    directory = Path(out) if out else RESULTS
    result = io.read_json(directory / f"{stem}.json")
    if update is not None:
        update(result)
    write(directory, stem, result, to_markdown(result))
    return 0


def header(title: str, result: dict) -> list[str]:
    """The first lines of every summary: title, machine and load, versions, the exact command."""
    env, end = result["env"], result.get("env_end", {})
    load = f"load average (1/5/15 min) {env['load_average_1_5_15']} at the start"
    if end.get("load_average_1_5_15"):
        load += f", {end['load_average_1_5_15']} at the end"
    return [f"# {title}", "", f"- machine: {env['machine']}; {load}", f"- versions: {versions_line(env)}",
            f"- command (from the repository root): `{result['command']}`"]


def fmt_mean_std(values, scale=100.0, digits=2) -> str:
    """``91.23 ± 0.31`` (sample std over seeds), in points when ``scale=100``: the recipes' report
    :func:`tfkd.recipes.report.mean_std`, at the benchmarks' scale."""
    from tfkd.recipes.report import mean_std

    return mean_std(values, scale=scale, digits=digits)


def paired_points(a, b) -> tuple:
    """``(mean, standard error)`` in points of the per-seed differences ``a - b`` (accuracies in [0, 1], paired by
    seed); the standard error is None for one seed."""
    import numpy as np

    d = (np.asarray(a, float) - np.asarray(b, float)) * 100
    return float(np.mean(d)), (float(np.std(d, ddof=1) / np.sqrt(len(d))) if len(d) > 1 else None)


def accuracy_curve(model, x_test, y_test):
    """A Keras callback logging validation (from the logs) and test accuracy after every epoch in ``.val`` and
    ``.test``: the curves a reader checks for flattening, never a choice. ``model`` is a Distiller (its student is
    measured) or a logits model."""
    import keras
    import numpy as np

    student = getattr(model, "student", model)

    class Curve(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.val, self.test = [], []

        def on_epoch_end(self, epoch, logs=None):
            self.val.append(float(logs["val_accuracy"]))
            logits = student.predict(x_test, batch_size=1024, verbose=0)
            self.test.append(float(np.mean(np.argmax(logits, axis=1) == np.asarray(y_test).reshape(-1))))

    return Curve()
