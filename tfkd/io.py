"""Atomic file writing: an artifact is either absent or complete under its final name, never half-written.

Example:

    from tfkd import io
    io.write_json("runs/x/report.json", {"accuracy": 0.98})
    with io.atomic_path("runs/x/student.keras") as tmp:
        student.save(tmp)        # renamed to the final name only if this block succeeds
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

# The names tfkd's atomic writers give their temporary files and folders, and nothing else: stale-file clean-up
# (after a kill -9) removes exactly these, never a user's ``notes.tmp`` or ``.git/index.tmp123``.
#   .<stem>.<8 random chars>.tfkd.tmp<final suffixes>      the file or folder being written
#   .<final name>.tfkd.old                                  a folder being replaced
_TEMP_INFIX = ".tfkd.tmp"
_OLD_SUFFIX = ".tfkd.old"
_TEMP_NAME = re.compile(r"^\.[^/]*\.[a-z0-9_]{8}\.tfkd\.tmp(\.[^/]*)?$|^\.[^/]+\.tfkd\.old$")


@contextlib.contextmanager
def atomic_path(final, *, suffix=None):
    """Yield a temporary path beside ``final``; on success rename it over ``final``, on error remove it.

    The temporary name keeps ``final``'s suffix (``.keras``, ``.weights.h5``, ``.tflite``...) because some writers
    check it. Works for files and directories (a directory replaces an existing one only after it is complete).
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    suffix = suffix if suffix is not None else "".join(final.suffixes)
    fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=f".{final.name.split('.')[0]}.", suffix=_TEMP_INFIX + suffix)
    os.close(fd)
    os.remove(tmp)  # writers create it themselves (some refuse an existing file)
    tmp = Path(tmp)
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"the writer did not create {tmp} (meant for {final})")
        if tmp.is_dir():
            old = final.with_name(f".{final.name}{_OLD_SUFFIX}")
            if final.exists():
                shutil.rmtree(old, ignore_errors=True)
                os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()


def is_temp_name(name) -> bool:
    """True if ``name`` (a file or folder name) is one that :func:`atomic_path` gives its temporary files."""
    return bool(_TEMP_NAME.match(os.path.basename(os.fspath(name))))


def remove_stale_temp_files(directory) -> list:
    """Delete, under ``directory``, the temporary files and folders of atomic writes a killed process left.

    Only names :func:`atomic_path` makes are touched (see :func:`is_temp_name`); symbolic links are neither
    followed nor removed. Returns the paths removed.

    Example:

        from tfkd import io
        io.remove_stale_temp_files("runs/compress-20261123-101500")   # the paths removed ([] if none)
    """
    removed = []
    for root, dirs, files in os.walk(directory, topdown=True, followlinks=False):
        for name in list(dirs):
            path = Path(root, name)
            if is_temp_name(name) and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
                dirs.remove(name)
        for name in files:
            path = Path(root, name)
            if is_temp_name(name) and not path.is_symlink():
                path.unlink(missing_ok=True)
                removed.append(path)
    return removed


def require_space(path, nbytes: int, what: str = "this file"):
    """Raise ``OSError(ENOSPC)`` naming ``path`` if its file system has less than ``nbytes`` free.

    Checked before writes whose writer does not fail cleanly on a full disk (HDF5: h5py can crash the process
    after ``ENOSPC``), so that the run ends with one line and resumes once space is freed.
    """
    path = Path(path)
    existing = next((p for p in [path.parent, *path.parent.parents] if p.exists()), Path("."))
    free = shutil.disk_usage(existing).free
    if free < nbytes:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC),
                      f"{path} ({what} needs about {nbytes:,} bytes; {free:,} are free)")


def h5_bytes_estimate(model) -> int:
    """A generous upper bound on the bytes of ``model``'s weights (and built optimizer state) in an HDF5 file."""
    variables = list(getattr(model, "weights", []))
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None and getattr(optimizer, "built", False):
        variables += list(optimizer.variables)
    data = 0
    for v in variables:
        size = 1
        for d in v.shape:
            size *= int(d or 1)
        data += size * 8  # at most 8 bytes an element
    return 2 * data + 64 * 1024 + 2048 * len(variables)  # HDF5 groups and attributes per variable


def write_text(path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (fsync'd before the rename, so a crash keeps the old or the new)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
    return path


def write_json(path, obj) -> Path:
    """Write ``obj`` as indented JSON, atomically."""
    return write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_jsonable) + "\n")


def read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _jsonable(value):
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
