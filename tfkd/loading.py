"""Loading a saved Keras model safely: ``safe_mode`` on, and a clear error for a damaged or truncated file.

A ``.keras`` file is loaded with ``safe_mode=True`` (no arbitrary code from ``Lambda`` layers) unless the caller opts
out. Keras itself reports "File not found" for a truncated archive; here every member's CRC is checked first, and an
unreadable file fails with a message naming it, its size and what to do. Recipes (a ``--teacher`` file, ``--resume``)
and :mod:`tfkd.export` load models through this module.

Example:

    from tfkd.loading import load_model
    teacher.save("teacher.keras")
    teacher = load_model("teacher.keras")   # safe_mode=True: Lambda layers are refused
"""

from __future__ import annotations

import zipfile
from pathlib import Path

__all__ = ["load_model"]


def load_model(model, *, safe_mode: bool = True):
    """A Keras model from ``model`` (a ``keras.Model`` is returned as is, a path is loaded); clear errors on bad files.

    Example:

        from tfkd.loading import load_model
        student.save("student.keras")
        model = load_model("student.keras")                 # safe_mode=True: Lambda layers are refused
    """
    import keras

    if isinstance(model, keras.Model):
        return model
    if not isinstance(model, (str, Path)):
        raise TypeError(f"model must be a keras.Model or a path to a .keras file, got {type(model).__name__}.")
    path = Path(model)
    if not path.is_file():
        raise FileNotFoundError(f"model={str(path)!r} does not exist or is not a file; expected a .keras archive "
                                "written by model.save('name.keras').")
    if path.suffix == ".keras":
        _check_archive(path)
    try:
        return keras.models.load_model(path, safe_mode=safe_mode)
    except Exception as err:
        if "safe_mode" in str(err):  # Keras's own message already says what to do
            raise
        raise ValueError(f"model={str(path)!r} could not be loaded as a Keras model ({type(err).__name__}: "
                         f"{_first_line(err)}). Expected a complete .keras archive written by model.save(); if the "
                         "model uses custom layers, register them with keras.saving.register_keras_serializable "
                         "and import them before loading the model.") from err


def _check_archive(path: Path):
    size = path.stat().st_size
    hint = (f"model={str(path)!r} ({size:,} bytes) is not a readable .keras archive: the file is truncated or "
            "corrupted, or was not written by model.save(). Re-save the model (model.save('name.keras')) "
            "or copy the file again.")
    if not zipfile.is_zipfile(path):
        raise ValueError(hint)
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()  # CRC of every member: catches a damaged body with an intact directory
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise ValueError(hint) from err
    if bad is not None:
        raise ValueError(f"{hint} (member {bad!r} fails its CRC check)")


def _first_line(err) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:300] if text else type(err).__name__
