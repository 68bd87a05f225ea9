"""What a run directory leaves that must not depend on where it was interrupted, and an exact comparison of two.

Shared by the kill/resume tests (test_recipe_compress, test_reliability, test_resume_exact): weights of every
``.keras``/``.h5`` file, arrays of ``.npz``/``.npy`` files, exported ``.tflite`` bytes (sha256), the results in
``report.json`` and ``state.json``, CSV/JSON logs as text. Timings are left out: TensorBoard event files, the
exported model's measured latency, a teacher pass's seconds, report.md's run time; plots are checked for presence only.
"""

import hashlib
import io
import json
import zipfile
from pathlib import Path

import h5py
import numpy as np

_TIMED_KEYS = ("latency_ms", "teacher_seconds")


def h5_arrays(source) -> dict:
    """Every dataset of an HDF5 file (a path or a file object), by its path inside the file."""
    arrays = {}
    with h5py.File(source, "r") as f:
        f.visititems(lambda name, obj: arrays.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return arrays


def _untimed(value):
    if isinstance(value, dict):
        return {k: _untimed(v) for k, v in value.items() if k not in _TIMED_KEYS}
    return [_untimed(v) for v in value] if isinstance(value, list) else value


def artifacts(run: Path) -> dict:
    """The comparable content of every file under ``run``, keyed by its relative path."""
    found = {}
    for path in sorted(p for p in Path(run).rglob("*") if p.is_file() and "/tensorboard/" not in p.as_posix()):
        rel = path.relative_to(run).as_posix()
        if path.suffix == ".keras":
            with zipfile.ZipFile(path) as archive:
                found[rel] = h5_arrays(io.BytesIO(archive.read("model.weights.h5")))
        elif path.suffix == ".h5":
            found[rel] = h5_arrays(path)
        elif path.suffix == ".npz":
            with np.load(path) as z:
                found[rel] = {k: z[k] for k in z.files}
        elif path.suffix == ".npy":
            found[rel] = np.load(path)
        elif path.suffix == ".tflite":
            found[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
        elif rel == "report.json":
            found[rel] = _untimed(json.loads(path.read_text())["results"])
        elif rel == "state.json":
            found[rel] = {k: _untimed(v["result"]) for k, v in json.loads(path.read_text())["stages"].items()}
        elif path.suffix in (".csv", ".json"):
            found[rel] = path.read_text()
        else:  # plots, report.md, SavedModel files: present, content not compared
            found[rel] = None
    return found


def assert_same(a, b, where=""):
    """``a == b`` through nested dicts, numpy arrays compared exactly; a failure names the path that differs."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and sorted(a) == sorted(b), (where, sorted(set(a) ^ set(b)))
        for key in a:
            assert_same(a[key], b[key], f"{where}/{key}")
    elif isinstance(a, np.ndarray):
        np.testing.assert_array_equal(a, b, err_msg=where)
    else:
        assert a == b, where
