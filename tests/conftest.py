"""Shared test set-up: quiet TensorFlow, the real-data directory, deterministic seeds."""

import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]


def _data_dir() -> pathlib.Path:
    env = os.environ.get("TFKD_DATA_DIR")
    # absolute: README's command gives a relative path, and some tests run in a temporary directory
    return (pathlib.Path(env) if env else REPO.parent / "shared" / "data").resolve()


@pytest.fixture(scope="session")
def data_dir() -> pathlib.Path:
    """The real-data directory (``TFKD_DATA_DIR`` or ``../shared/data``); tests that need it fail loudly without it."""
    path = _data_dir()
    if not (path / "mnist.npz").exists():
        pytest.fail(f"real data not found in {path}: set TFKD_DATA_DIR to the folder holding mnist.npz")
    return path


@pytest.fixture(autouse=True)
def _seed():
    import keras

    keras.utils.set_random_seed(1234)
    yield
