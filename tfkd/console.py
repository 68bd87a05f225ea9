"""The ``tfkd`` command's console: TensorFlow's C++ and Python logging quieted before TensorFlow is imported.

TensorFlow prints banners on import (oneDNN, CPU features, "could not find cuda drivers", a CUDA ``cuInit`` error on
a machine without a GPU), some of them through Abseil before any log level applies, and later ``tf.function``
retracing warnings and TFLite converter chatter. None of it is about the run. :func:`quiet` turns it off for this
process (and the processes it starts, through the environment); ``tfkd ... --verbose`` leaves it all on.

Example:

    from tfkd import console
    console.quiet()          # before anything imports TensorFlow
    import tensorflow as tf  # no banner, no CUDA error line
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import logging
import os
import sys
import tempfile

# C++ logging: 3 keeps FATAL only. A value the user set stays as it is.
ENV = {"TF_CPP_MIN_LOG_LEVEL": "3"}
# Python loggers that TensorFlow, Keras and the TFLite converter write through.
LOGGERS = ("tensorflow", "absl", "h5py", "jax")


_quiet = False  # set by quiet(): quiet_native() then silences native libraries' stderr


def quiet() -> None:
    """Quiet TensorFlow for this process: C++ log level, Python loggers, and the Abseil banners of its import.

    Call it before TensorFlow is imported (importing TensorFlow stays lazy: ``tfkd run x --help`` does not pay for
    it). The import of TensorFlow then runs with the process's stderr (file descriptor 2) sent to a temporary
    file, because Abseil writes its pre-initialisation lines there whatever the log level; if that import fails,
    what it wrote is put back on stderr before the error propagates, so nothing is hidden then.
    """
    global _quiet
    _quiet = True
    for key, value in ENV.items():
        os.environ.setdefault(key, value)
    for name in LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    if "tensorflow" in sys.modules:
        _quiet_absl()
    elif not any(isinstance(f, _SilentImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _SilentImport("tensorflow"))


@contextlib.contextmanager
def quiet_native():
    """After :func:`quiet`, the block's writes to stderr (file descriptor 2) are dropped; otherwise nothing changes.

    For native code that prints whatever the log level: the TFLite converter ("fully_quantize: 0, ...") and the
    LiteRT interpreter ("INFO: Created TensorFlow Lite XNNPACK delegate for CPU."). If the block raises, what it
    wrote is put back on stderr first.

    Example:

        import tensorflow as tf
        from tfkd import console
        console.quiet()
        converter = tf.lite.TFLiteConverter.from_keras_model(student)
        with console.quiet_native():
            tflite_bytes = converter.convert()
    """
    if not _quiet:
        yield
        return
    with _stderr_to_file():
        yield


def _quiet_absl():
    try:
        from absl import logging as absl_logging
    except ImportError:  # pragma: no cover - absl comes with TensorFlow
        return
    absl_logging.set_verbosity(absl_logging.ERROR)


class _SilentImport(importlib.abc.MetaPathFinder):
    """Finds ``name`` once (through the other finders) and runs its module code with stderr sent to a file."""

    def __init__(self, name):
        self.name = name

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)  # once; and the lookup below must not find this finder again
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _SilentLoader(spec.loader, spec)
        return spec


class _SilentLoader(importlib.abc.Loader):
    def __init__(self, loader, spec):
        self.loader, self.spec = loader, spec

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        try:
            with _stderr_to_file():
                self.loader.exec_module(module)
        finally:
            # The module keeps its real loader (importlib.resources and friends ask it for files).
            self.spec.loader = module.__loader__ = self.loader
        _quiet_absl()


@contextlib.contextmanager
def _stderr_to_file():
    """File descriptor 2 goes to a temporary file; on an exception its text is written back to stderr."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            sink.seek(0)
            sys.stderr.write(sink.read().decode(errors="replace"))
            sys.stderr.flush()
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
