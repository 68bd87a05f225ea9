"""tensorflow-datasets as a source for :func:`tfkd.data.load`: ``tfds:NAME``, and a known dataset no file provides.

``tfds:NAME`` is any tensorflow-datasets dataset of an image and a class label; ``mnist``, ``cifar10`` and the other
datasets tfkd knows come from here when neither the data directory nor a system folder has them. A dataset is read
only when it is already prepared (under the data directory or ``TFDS_DATA_DIR``) unless downloading is allowed, and
the file system is checked before tensorflow-datasets is imported, so an offline machine fails in milliseconds.
Images are converted and resized by the ops of image folders (:mod:`tfkd.image_folders`). A module of its own as the
one source that needs tensorflow-datasets; ``tfkd.data`` imports it only when it tries that source.
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
import re

import numpy as np

from tfkd.data import (ENV_DOWNLOAD, DataFormatError, DatasetNotFoundError, Splits, _finish, _max_label, _Spec,
                       _split_text, _train_test_indices, _validate, resolve_data_dir)
from tfkd.image_folders import _DECODE_CHUNK, _image_ops, _size_error

def _tfds_root(tfds_dir=None) -> pathlib.Path:
    return pathlib.Path(tfds_dir or os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets").expanduser()


def _tfds_installed() -> bool:
    """Whether tensorflow-datasets can be imported, found without importing it (fast)."""
    try:
        return importlib.util.find_spec("tensorflow_datasets") is not None
    except (ImportError, ValueError):  # ValueError: a module in sys.modules without a spec (or set to None)
        return False


def _read_supervised(ds, image_size, channels, where: str):
    """``(x uint8 N x H x W x C, y int64)`` of a tf.data dataset of ``(image, label)``, streamed chunk by chunk."""
    import tensorflow as tf

    first = next(iter(ds.take(1)), None)
    if first is None:
        raise ValueError(f"the split {where} is empty")
    h, w, k = (int(d) for d in first[0].shape)
    size = image_size or (h, w)
    channels = channels or (1 if k <= 2 else k)
    _, fit = _image_ops(channels, size)
    n = int(ds.cardinality())  # tfds knows its splits' sizes; if not (negative), chunks are concatenated
    batches = ds.map(lambda x, y: (*fit(x), y), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    batches = batches.batch(_DECODE_CHUNK).prefetch(1)
    x, y = np.empty((max(n, 0), *size, channels), np.uint8), np.empty(max(n, 0), np.int64)
    chunks, start = [], 0
    for images, shapes, labels in batches:
        m = int(images.shape[0])
        if image_size is None:
            shapes = shapes.numpy()
            wrong = np.flatnonzero(np.any(shapes != np.asarray(size), axis=1))
            if wrong.size:
                raise _size_error(f"{where} example #{start + int(wrong[0])}", shapes[wrong[0]], "example #0", size)
        if n < 0:
            chunks.append((images.numpy(), labels.numpy()))
        elif start + m > n:
            raise ValueError(f"the split {where} holds more examples than its announced {n}")
        else:
            x[start:start + m], y[start:start + m] = images.numpy(), labels.numpy()
        start += m
    if n < 0:
        x, y = np.concatenate([c[0] for c in chunks]), np.concatenate([c[1] for c in chunks])
    return x[:start], y[:start]


def _tfds_arrays(tfds_name: str, data_dir, download: bool, tried: list, tfds_dir=None, *, image_size=None,
                 channels=None, test_fraction: float = 0.2, split_seed: int = 0):
    """``(raw arrays, root, class names, how)`` from tensorflow-datasets, or None (``tried`` says why).

    Without ``download`` only a dataset already prepared (under the data directory or the tfds data dir) is read,
    and the file system is checked before tensorflow-datasets is even imported, so an offline machine fails in
    milliseconds. The test split is ``test``, else ``validation``, else a stratified ``test_fraction`` of ``train``.
    """
    if not _tfds_installed():
        tried.append("tensorflow-datasets: not installed (pip install tensorflow-datasets)")
        return None
    roots = [r for r in (data_dir, _tfds_root(tfds_dir)) if r is not None]
    folder = tfds_name.split(":")[0]
    not_prepared = (f"tensorflow-datasets: {tfds_name!r} is not prepared under {' or '.join(str(r) for r in roots)}"
                    f", and downloading is off (download=True or {ENV_DOWNLOAD}=1 lets tfds download it)")
    candidates = [r for r in roots if (r / folder).is_dir()]  # first: tfds.builder logs a warning for a missing one
    if not candidates and not download:
        tried.append(not_prepared)
        return None
    import tensorflow_datasets as tfds

    builder = root = None
    for candidate in candidates:
        try:
            found = tfds.builder(tfds_name, data_dir=str(candidate))
        except Exception as err:  # noqa: BLE001  (an unknown name, a damaged folder: report, go on)
            tried.append(f"tensorflow-datasets: {candidate / folder} is not a dataset tfds can read "
                         f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})")
            continue
        if found.is_prepared():
            builder, root = found, candidate
            break
    if builder is None and not download:
        tried.append(not_prepared)
        return None
    try:
        if builder is None:
            root = _tfds_root(tfds_dir)
            builder = tfds.builder(tfds_name, data_dir=str(root))
            builder.download_and_prepare()
        info = builder.info
        features = info.features
        keys = info.supervised_keys
        if not keys:  # no (input, target) declared: the one image feature and the one class label, if unique
            of = lambda kind: [k for k, f in features.items() if isinstance(f, kind)]
            images, labels = of(tfds.features.Image), of(tfds.features.ClassLabel)
            keys = (images[0], labels[0]) if len(images) == 1 and len(labels) == 1 else None
        if (not keys or len(keys) != 2 or not isinstance(features[keys[0]], tfds.features.Image)
                or not isinstance(features[keys[1]], tfds.features.ClassLabel)):
            raise DataFormatError(f"tfds:{tfds_name}: supervised keys {info.supervised_keys} of features "
                                  f"{list(features.keys())}; tfkd reads datasets whose (input, target) is an image "
                                  f"and a class label (tfds.features.Image, tfds.features.ClassLabel).")
        names = tuple(features[keys[1]].names)
        splits = sorted(info.splits.keys()) if info.splits else []  # none under tfds.testing.mock_data
        if splits and "train" not in splits:
            raise DataFormatError(f"tfds:{tfds_name} has no 'train' split (its splits: {splits}).")
        test_split = next((s for s in ("test", "validation") if s in splits), None) if splits else "test"
        pairs = lambda split: builder.as_dataset(split=split, shuffle_files=False).map(
            lambda example: (example[keys[0]], example[keys[1]]))
        read = lambda split: _read_supervised(pairs(split), image_size, channels, f"tfds:{tfds_name} {split}")
        x_train, y_train = read("train")
        if test_split is not None:
            x_test, y_test = read(test_split)
            how = "" if test_split == "test" else f"{test_split} split as test"
        else:
            train, test = _train_test_indices(y_train, test_fraction, split_seed, f"tfds:{tfds_name} train split")
            x_test, y_test, x_train, y_train = x_train[test], y_train[test], x_train[train], y_train[train]
            how = f"train {_split_text(test_fraction, split_seed)}"
    except (DataFormatError, DatasetNotFoundError):
        raise
    except ModuleNotFoundError as err:
        # tensorflow-datasets 4.9.10 imports importlib_resources when it prepares a dataset but does not declare
        # it for Python >= 3.9 (tensorflow/datasets#11212).
        tried.append(f"tensorflow-datasets: {err}; pip install {err.name or 'the missing module'}")
        return None
    except Exception as err:  # noqa: BLE001  (network down, quota, corrupt files: report, fall through)
        tried.append(f"tensorflow-datasets: loading {tfds_name!r} into {root} failed: "
                     f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}")
        return None
    arrays = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    return arrays, root, names, how


def _from_tfds(name: str, spec: _Spec, data_dir: pathlib.Path | None, download: bool, tried: list,
               tfds_dir=None):
    """(raw arrays, source) of a dataset tfkd knows from tensorflow-datasets, or None."""
    found = _tfds_arrays(spec.tfds_name, data_dir, download, tried, tfds_dir)
    if found is None:
        return None
    arrays, root, _, _ = found
    arrays = _validate(arrays, f"tensorflow-datasets {spec.tfds_name!r}", name)
    return arrays, f"tensorflow-datasets ({spec.tfds_name} under {root})"


def _load_tfds_name(text: str, data_dir, download: bool, tfds_dir, *, raw, image_size, channels, test_fraction,
                    split_seed) -> Splits:
    tfds_name = text.split(":", 1)[1].strip()
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_./:*+-]*", tfds_name):
        raise ValueError(f"name={text!r}: expected tfds:NAME with the name of a tensorflow-datasets dataset, e.g. "
                         f"tfds:beans, tfds:cifar10 or tfds:imagenette/160px.")
    root = resolve_data_dir(data_dir)
    tried: list[str] = []
    found = _tfds_arrays(tfds_name, root, download, tried, tfds_dir, image_size=image_size, channels=channels,
                         test_fraction=test_fraction, split_seed=split_seed)
    if found is None:
        roots = " or ".join(str(r) for r in (root, _tfds_root(tfds_dir)) if r is not None)
        fix = ["  - pip install tensorflow-datasets"] if not _tfds_installed() else []
        fix += [f"  - prepare it once on a machine with network: `tfds build {tfds_name} --data_dir DIR`, then copy "
                f"DIR here and pass tfds_dir=DIR or set TFDS_DATA_DIR=DIR (or use DIR as the data directory); "
                f"prepared datasets are looked for under {roots}",
                f"  - or let tensorflow-datasets download it now (needs network): set {ENV_DOWNLOAD}=1 or call "
                f"data.load({text!r}, download=True)"]
        reason = "; ".join(t.removeprefix("tensorflow-datasets: ") for t in tried)
        if not _tfds_installed():
            reason = "tensorflow-datasets is not installed (pip install tensorflow-datasets)"
        raise DatasetNotFoundError(f"could not load {text!r}: {reason}.\nTo fix it, any one of:\n" + "\n".join(fix))
    arrays, where, names, how = found
    arrays = _validate(arrays, f"tensorflow-datasets {tfds_name!r}", None)
    source = f"tensorflow-datasets ({tfds_name} under {where}{', ' + how if how else ''})"
    return _finish(arrays, name=tfds_name, source=source, num_classes=len(names) or _max_label(arrays) + 1,
                   class_names=names or None, raw=raw)
