"""Real datasets ready for Keras: loading (files, image folders, tensorflow-datasets, scikit-learn), pipelines, splits.

What ``load(name)`` accepts for ``name`` (``Splits.source`` says where the arrays came from):

- a **dataset tfkd knows** (:data:`NAMES`). Its sources are tried in this order, the first that works wins:

  1. a **data directory** (``data_dir=`` argument, ``tfkd run --data-dir``, or ``TFKD_DATA_DIR``) holding
     ``<name>.npz`` (``numpy.savez`` with uint8 ``x_train, y_train, x_test, y_test``), or the original files: the
     four IDX files of MNIST / Fashion-MNIST (``.gz`` or not) or CIFAR's binary batches, in ``<dir>/<name>/``;
  2. **system folders** (:data:`SYSTEM_DIRS`), e.g. ``/usr/share/datasets/fashion-mnist/`` from Debian's
     ``dataset-fashion-mnist`` package;
  3. **tensorflow-datasets**: a dataset already prepared under the data directory or ``TFDS_DATA_DIR``
     (``~/tensorflow_datasets``); it downloads only when asked (``download=True`` or ``TFKD_DOWNLOAD=1``), so an
     offline machine fails in well under a second instead of hanging on the network;
  4. ``digits`` only: scikit-learn's bundled 8x8 handwritten digits (1797 images), which need no file and no
     network;

- any other ``<name>.npz`` in the data directory, or a **path to a .npz file** (absolute or relative, ending in
  ``.npz``). uint8 images load as above; 2-D float arrays ``N x F`` are **tabular features** (``Splits.kind ==
  "features"``): float32 as stored, no scaling and no channel axis;
- an **image folder** (a path, or ``<name>/`` in the data directory) in the layout of
  ``keras.utils.image_dataset_from_directory``: one sub-folder per class holding png / jpg / jpeg / bmp / gif
  files, either ``FOLDER/<class>/...`` (split into train and test by a seeded stratified ``test_fraction``) or
  ``FOLDER/train/<class>/...`` with ``FOLDER/test/<class>/...`` (or ``val/`` or ``validation/``). Classes are the
  sorted sub-folder names (ids 0..K-1, Keras's order); images are decoded by TensorFlow, resized to
  ``image_size`` if given, into uint8 arrays;
- ``tfds:NAME``: any tensorflow-datasets dataset with an image and a class label (``tfds:beans``,
  ``tfds:cifar10``), read offline when prepared, downloaded only when allowed (as in 3. above).

When nothing works, :class:`DatasetNotFoundError` lists what was tried and which file to put where. For a folder
too big for memory, :func:`folder_dataset` streams it as a ``tf.data.Dataset`` instead.

Example:

    from tfkd import data
    (x_train, y_train), (x_test, y_test) = splits = data.load("digits")
    print(splits)                    # sizes, shape, classes, and where the data came from
    ds = data.as_dataset(x_train, y_train, batch_size=64, shuffle=True)

    # Your own data (paths of yours):
    # flowers = data.load("photos/flowers", image_size=(64, 64))  # photos/flowers/<class>/*.jpg, split 80/20
    # print(flowers)  # flowers: 2936 train / 734 test, 64x64x3, 5 classes (daisy, ...), uint8->float32 [0, 1], ...
    # beans = data.load("tfds:beans", image_size=(128, 128))       # prepared by `tfds build beans` beforehand
    # tabular = data.load("features/breast_cancer.npz")           # float x_train N x F: Splits.kind == "features"

Image folders are read by :mod:`tfkd.image_folders` and tensorflow-datasets by :mod:`tfkd.tfds_source`, both
reached through this module (:func:`folder_dataset` is re-exported here, imported on first use). Domain transforms
(:mod:`tfkd.domains`) and corruptions (:mod:`tfkd.corruptions`) are re-exported here too.
"""

from __future__ import annotations

import dataclasses
import gzip
import os
import pathlib
import re
from typing import TYPE_CHECKING

import numpy as np

from tfkd.corruptions import KINDS as CORRUPTIONS
from tfkd.corruptions import corrupt, corrupted_test_set
from tfkd.domains import DomainTransform, domain_transform, parallel_pairs

if TYPE_CHECKING:  # at run time, __getattr__ below
    from tfkd.image_folders import folder_dataset

ENV_DATA_DIR = "TFKD_DATA_DIR"
ENV_DOWNLOAD = "TFKD_DOWNLOAD"
KEYS = ("x_train", "y_train", "x_test", "y_test")
# Folders scanned after the data directory (Debian installs Fashion-MNIST's IDX files under the first).
SYSTEM_DIRS: tuple[str, ...] = ("/usr/share/datasets",)
# Image folders: the file types read (those of keras.utils.image_dataset_from_directory), the names of a test
# folder next to train/ (the first present wins), and the colour modes with their channel counts.
IMAGE_EXTENSIONS: tuple[str, ...] = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
TEST_FOLDERS: tuple[str, ...] = ("test", "val", "validation")
COLOR_MODES: dict[str, int] = {"grayscale": 1, "rgb": 3, "rgba": 4}


def __getattr__(name):
    """``folder_dataset``, from :mod:`tfkd.image_folders` on first use: that module imports this one, so this one
    imports it only when needed (as :func:`load` does for image folders and :mod:`tfkd.tfds_source`)."""
    if name == "folder_dataset":
        from tfkd.image_folders import folder_dataset

        globals()[name] = folder_dataset
        return folder_dataset
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted({*globals(), "folder_dataset"})


class DatasetNotFoundError(FileNotFoundError):
    """No source could provide the dataset; the message lists what was tried and which file to put where."""


DataNotFoundError = DatasetNotFoundError  # the name of the first version of this module


class DataFormatError(ValueError):
    """A data file exists but its layout is wrong (missing keys, wrong dtype or shape, bad IDX header)."""


@dataclasses.dataclass(frozen=True)
class _Spec:
    image_shape: tuple  # (H, W, C) after loading
    num_classes: int
    full_sizes: tuple  # (train, test) of the full official release
    title: str
    folders: tuple = ()  # sub-folder names searched for original files
    idx: bool = False  # original release is four IDX files
    cifar_binary: str | None = None  # "cifar10" / "cifar100" binary batches
    tfds_name: str | None = None
    subset_of: str | None = None
    class_names: tuple | None = None
    max_value: int = 255  # raw pixel maximum (digits: 16)


_DIGITS = tuple(str(i) for i in range(10))
_CIFAR10_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
DATASETS: dict[str, _Spec] = {
    "digits": _Spec((8, 8, 1), 10, (1438, 359), "scikit-learn 8x8 digits", ("digits",), class_names=_DIGITS,
                    max_value=16),
    "mnist": _Spec((28, 28, 1), 10, (60000, 10000), "MNIST", ("mnist",), idx=True, tfds_name="mnist",
                   class_names=_DIGITS),
    "fashion_mnist": _Spec((28, 28, 1), 10, (60000, 10000), "Fashion-MNIST",
                           ("fashion_mnist", "fashion-mnist", "fashion"), idx=True, tfds_name="fashion_mnist",
                           class_names=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                                        "Sneaker", "Bag", "Ankle boot")),
    "cifar10": _Spec((32, 32, 3), 10, (50000, 10000), "CIFAR-10", ("cifar10", "cifar-10"), cifar_binary="cifar10",
                     tfds_name="cifar10", class_names=_CIFAR10_NAMES),
    # The first 4000 / 1000 images of the official release: real but partial, so its name says so.
    "cifar10_subset": _Spec((32, 32, 3), 10, (50000, 10000), "CIFAR-10", ("cifar10_subset",), subset_of="cifar10",
                            class_names=_CIFAR10_NAMES),
    "cifar100": _Spec((32, 32, 3), 100, (50000, 10000), "CIFAR-100", ("cifar100", "cifar-100"),
                      cifar_binary="cifar100", tfds_name="cifar100"),
}
NAMES = tuple(DATASETS)

# Digits has no official split: a fixed stratified 20 % test split (numpy PCG64, stable across versions).
_DIGITS_SPLIT_SEED = 0
_DIGITS_TEST_FRACTION = 0.2

_IDX_FILES = {  # key -> accepted base names (the canonical hyphen form, and the dotted one of some mirrors)
    "x_train": ("train-images-idx3-ubyte", "train-images.idx3-ubyte"),
    "y_train": ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte"),
    "x_test": ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"),
    "y_test": ("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"),
}
_CIFAR_BINARY = {  # name -> (folder of the official binary release, train files, test files, label bytes)
    "cifar10": ("cifar-10-batches-bin", tuple(f"data_batch_{i}.bin" for i in range(1, 6)), ("test_batch.bin",), 1),
    "cifar100": ("cifar-100-binary", ("train.bin",), ("test.bin",), 2),
}


# --------------------------------------------------------------------------------------------------------- Splits
@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Splits:
    """Train and test arrays of one dataset, and where they came from.

    Unpacks like Keras's ``load_data()``: ``(x_train, y_train), (x_test, y_test) = data.load("mnist")``.
    ``print(splits)`` reports the split sizes and flags a subset of a larger release. ``kind`` is ``"images"``
    (N x H x W x C) or ``"features"`` (N x F float features of a tabular ``.npz``); ``class_names`` are the
    dataset's names for the class ids 0..K-1 (an image folder's sub-folders), or None where it has none.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    name: str
    num_classes: int
    source: str
    class_names: tuple | None = None
    notes: str = ""  # how the arrays were derived (e.g. "stratified subset, seed 0")
    kind: str = "images"  # "images" (N x H x W x C) or "features" (N x F)

    def __post_init__(self):
        if self.kind not in ("images", "features"):
            raise ValueError(f"kind={self.kind!r}: expected 'images' or 'features'.")
        if np.ndim(self.x_train) == 2 and self.kind != "features":  # N x F rows are features, whoever built it
            object.__setattr__(self, "kind", "features")

    @property
    def input_shape(self) -> tuple:
        """Shape of one example, without the batch axis, e.g. ``(28, 28, 1)``."""
        return tuple(int(d) for d in self.x_train.shape[1:])

    @property
    def full_sizes(self) -> tuple | None:
        """``(train, test)`` sizes of the full official release, or None for a dataset tfkd does not know."""
        spec = DATASETS.get(self.name) if self.kind == "images" else None
        return spec.full_sizes if spec else None

    @property
    def is_subset(self) -> bool:
        """True when these splits hold fewer images than the full release (``cifar10_subset`` always does)."""
        full = self.full_sizes
        sizes = (len(self.x_train), len(self.x_test))
        named = self.kind == "images" and DATASETS.get(self.name)
        return bool(named and named.subset_of) or (full is not None and sizes != full)

    def __iter__(self):
        yield self.x_train, self.y_train
        yield self.x_test, self.y_test

    def summary(self) -> str:
        """One line: name, split sizes (flagging a subset), image shape, classes, values and source.

        A dataset tfkd knows keeps its short line (``mnist: 60000 train / 10000 test, 28x28x1, 10 classes,
        float32, from ...``); other sources also name their classes and the conversion, e.g. ``flowers: 2936
        train / 734 test, 64x64x3, 5 classes (daisy, dandelion, roses, sunflowers, tulips), uint8->float32
        [0, 1], from image folder /data/flowers (split 80/20, seed 0)``.
        """
        sizes = f"{self.name}: {len(self.x_train)} train / {len(self.x_test)} test"
        notes = f" [{self.notes}]" if self.notes else ""
        if self.kind == "features":
            parts = [x for x in (self.x_train, self.x_test) if x.size]
            lo, hi = min(float(x.min()) for x in parts), max(float(x.max()) for x in parts)
            return (f"{sizes}, {self.input_shape[0]} features, {self.num_classes} classes{notes}, "
                    f"{self.x_train.dtype} features (range [{lo:.4g}, {hi:.4g}]), from {self.source}")
        shape = "x".join(str(d) for d in self.input_shape)
        known = self.name in DATASETS and not self.source.startswith("image folder")
        classes = f"{self.num_classes} classes"
        if self.class_names and not known:
            classes += f" ({abbreviate_names(self.class_names)})"
        text = f"{sizes}, {shape}, {classes}"
        if self.is_subset:
            spec = DATASETS[self.name]
            full = DATASETS[spec.subset_of].title if spec.subset_of else spec.title
            text += f", a SUBSET of {full} (full release: {spec.full_sizes[0]} / {spec.full_sizes[1]})"
        values = str(self.x_train.dtype)
        if not known and self.x_train.dtype == np.float32:
            values = "uint8->float32 [0, 1]"
        return f"{text}{notes}, {values}, from {self.source}"

    def __repr__(self) -> str:
        return f"Splits({self.summary()})"

    __str__ = summary


def abbreviate_names(names, limit: int = 6) -> str:
    """``a, b, c`` for a few names; the first four, ``...`` and the last one for more than ``limit``."""
    names = [str(n) for n in names]
    if len(names) > limit:
        names = [*names[:4], "...", names[-1]]
    return ", ".join(names)


# ------------------------------------------------------------------------------------------------- data directory
def resolve_data_dir(data_dir=None) -> pathlib.Path | None:
    """The data directory: the argument if given, else ``$TFKD_DATA_DIR``, else None.

    A directory that is named but does not exist is an error (a typo should not silently fall through to a
    download).

    Example:

        data.resolve_data_dir(data_dir)   # PosixPath('.../data'), the folder holding mnist.npz
        data.resolve_data_dir()           # $TFKD_DATA_DIR as a path, or None when it is unset
    """
    if data_dir is not None and str(data_dir) != "":
        origin = f"data_dir={str(data_dir)!r}"
        path = pathlib.Path(data_dir).expanduser()
    elif os.environ.get(ENV_DATA_DIR):
        origin = f"{ENV_DATA_DIR}={os.environ[ENV_DATA_DIR]!r}"
        path = pathlib.Path(os.environ[ENV_DATA_DIR]).expanduser()
    else:
        return None
    if not path.is_dir():
        raise DatasetNotFoundError(
            f"{origin}: no such directory. Expected a folder holding <name>.npz files (e.g. mnist.npz) or "
            f"<name>/ folders of original IDX files; fix the path, or unset {ENV_DATA_DIR} / drop --data-dir.")
    return path


def _download_allowed(download) -> bool:
    if download is not None:
        return bool(download)
    return os.environ.get(ENV_DOWNLOAD, "").strip().lower() in ("1", "true", "yes", "on")


# ------------------------------------------------------------------------------------------------------- formats
def load_npz(path, name: str | None = None) -> dict:
    """The raw arrays of a ``.npz`` file, validated: ``{"x_train", "y_train", "x_test", "y_test"}``.

    Images must be uint8 ``N x H x W`` (grey) or ``N x H x W x C``; tabular features float (any float dtype)
    ``N x F``, returned as stored; labels integer, 1-D (``N x 1`` is flattened). With ``name`` the image shape and
    label range are checked against that dataset. Pickles are refused.

    Example:

        raw = data.load_npz(data_dir / "mnist.npz")
        raw["x_train"].shape, raw["x_train"].dtype            # ((60000, 28, 28), dtype('uint8'))
    """
    path = pathlib.Path(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            found = sorted(archive.files)
            missing = [k for k in KEYS if k not in found]
            if missing:
                raise DataFormatError(
                    f"{path}: missing keys {missing}; found keys {found}. Expected exactly {list(KEYS)} "
                    f"(write it with numpy.savez_compressed(path, x_train=..., y_train=..., x_test=..., y_test=...)).")
            arrays = {k: archive[k] for k in KEYS}
    except DataFormatError:
        raise
    except (ValueError, OSError, EOFError) as err:  # not a zip, truncated or empty, or holds pickled objects
        raise DataFormatError(f"{path}: not a readable numpy .npz archive of plain arrays ({type(err).__name__}: "
                              f"{err}; {path.stat().st_size if path.exists() else 0:,} bytes).") from None
    return _validate(arrays, str(path), name)


def _validate(arrays: dict, where: str, name: str | None) -> dict:
    """Check dtypes, ranks and lengths of raw arrays; flatten ``N x 1`` labels.

    x arrays are uint8 images (``N x H x W`` or ``N x H x W x C``) or float features (``N x F``), the same kind in
    both splits: :func:`_kind` tells which.
    """
    layout = ", ".join(f"{k}: {arrays[k].dtype} {arrays[k].shape}" for k in KEYS)
    kinds = {}
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        floating = np.issubdtype(x.dtype, np.floating)
        if floating and x.ndim == 2:
            kinds[split] = "features"
            bad = int(x.size - np.count_nonzero(np.isfinite(x)))
            if bad:
                raise DataFormatError(f"{where}: x_{split} holds {bad} NaN or infinite value(s); tabular features "
                                      f"must be finite numbers (found {layout}).")
        elif floating and x.ndim in (3, 4):
            raise DataFormatError(
                f"{where}: x_{split} has dtype {x.dtype}, expected uint8: an array of image rank (shape {x.shape}) "
                f"must hold uint8 pixels 0..255 (for floats in [0, 1]: (x * 255).round().astype('uint8')), or, for "
                f"tabular data, flatten it to N x F float features (x.reshape(len(x), -1)) (found {layout}).")
        elif x.dtype != np.uint8:
            raise DataFormatError(f"{where}: x_{split} has dtype {x.dtype} and shape {x.shape}, expected uint8 "
                                  f"pixels 0..255 (N x H x W or N x H x W x C images) or float N x F features "
                                  f"(tabular data) (found {layout}).")
        elif x.ndim not in (3, 4) or (x.ndim == 4 and x.shape[-1] not in (1, 3, 4)):
            hint = "; tabular features are float N x F (x.astype('float32'))" if x.ndim == 2 else ""
            raise DataFormatError(f"{where}: x_{split} has shape {x.shape}, expected N x H x W or N x H x W x C "
                                  f"with C in (1, 3, 4) (found {layout}){hint}.")
        else:
            kinds[split] = "images"
        if y.ndim == 2 and y.shape[1] == 1:  # Keras's CIFAR load_data() gives N x 1 labels
            y = arrays[f"y_{split}"] = y.reshape(-1)
        if not np.issubdtype(y.dtype, np.integer) or y.ndim != 1:
            raise DataFormatError(f"{where}: y_{split} has dtype {y.dtype} and shape {y.shape}, expected 1-D "
                                  f"integer class ids (found {layout}).")
        if len(x) != len(y):
            raise DataFormatError(f"{where}: x_{split} has {len(x)} {'rows' if x.ndim == 2 else 'images'} but "
                                  f"y_{split} has {len(y)} labels (found {layout}).")
        if len(y) and y.min() < 0:
            raise DataFormatError(f"{where}: y_{split} holds the label {int(y.min())}; class ids must be 0, 1, 2, ... "
                                  f"(found {layout}).")
    if len(arrays["x_train"]) == 0:
        raise DataFormatError(f"{where}: the training split is empty (found {layout}); there is nothing to train on.")
    x_train, x_test = arrays["x_train"], arrays["x_test"]
    if kinds["train"] != kinds["test"]:
        raise DataFormatError(f"{where}: x_train holds {kinds['train']} but x_test holds {kinds['test']}; both "
                              f"splits must be uint8 images or both float N x F features (found {layout}).")
    if kinds["train"] == "features" and x_train.shape[1] != x_test.shape[1]:
        raise DataFormatError(f"{where}: train rows have {x_train.shape[1]} features but test rows have "
                              f"{x_test.shape[1]}; both splits must have the same features (found {layout}).")
    if kinds["train"] == "images" and _channels(x_train.shape[1:]) != _channels(x_test.shape[1:]):
        raise DataFormatError(f"{where}: train images are {x_train.shape[1:]} but test images are "
                              f"{x_test.shape[1:]}; both splits must have the same image shape (found {layout}).")
    spec = DATASETS.get(name) if name else None
    if spec is not None:
        if kinds["train"] == "features":
            raise DataFormatError(f"{where}: holds {x_train.shape[1]} float features per row, but {name} is an "
                                  f"image dataset ({spec.image_shape} uint8 images); save tabular features under "
                                  f"another name.")
        if _channels(x_train.shape[1:]) != spec.image_shape:
            raise DataFormatError(f"{where}: images are {x_train.shape[1:]}, but {name} images are "
                                  f"{spec.image_shape} (H, W, C); is this the file of another dataset?")
        for split in ("train", "test"):
            y = arrays[f"y_{split}"]
            if len(y) and (y.min() < 0 or y.max() >= spec.num_classes):
                raise DataFormatError(f"{where}: y_{split} holds labels {int(y.min())}..{int(y.max())}, but "
                                      f"{name} has classes 0..{spec.num_classes - 1}.")
    return arrays


def _kind(arrays: dict) -> str:
    """``"features"`` for validated ``N x F`` float x arrays, else ``"images"``."""
    return "features" if arrays["x_train"].ndim == 2 else "images"


def _channels(shape) -> tuple:
    return tuple(shape) if len(shape) == 3 else (*shape, 1)


_IDX_DTYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
               0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def read_idx(path) -> np.ndarray:
    """Read one IDX file (the format of the MNIST / Fashion-MNIST release), gzipped or not.

    Header: two zero bytes, a type code (0x08 = uint8, ...), the number of dimensions, then each dimension as a
    big-endian uint32; the data follows in C order.

    Example:

        data.write_idx("t10k-images-idx3-ubyte.gz", (x_test[..., 0] * 255).astype("uint8"))
        images = data.read_idx("t10k-images-idx3-ubyte.gz")   # (128, 8, 8) uint8; a .gz is decompressed
    """
    path = pathlib.Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            content = f.read()
    except (OSError, EOFError) as err:  # gzip.BadGzipFile is an OSError
        raise DataFormatError(f"{path}: cannot read ({err}).") from err
    if len(content) < 4 or content[0] != 0 or content[1] != 0 or content[2] not in _IDX_DTYPES:
        raise DataFormatError(f"{path}: not an IDX file (magic bytes {content[:4].hex()!r}; expected 0000 then a "
                              f"type code in {[hex(c) for c in _IDX_DTYPES]} and the number of dimensions).")
    dtype, ndim = _IDX_DTYPES[content[2]], content[3]
    header = 4 + 4 * ndim
    dims = tuple(int(d) for d in np.frombuffer(content, ">u4", count=ndim, offset=4))
    expected = int(np.prod(dims)) * dtype.itemsize
    if len(content) - header != expected:
        raise DataFormatError(f"{path}: header says shape {dims} ({expected} bytes of data) but the file holds "
                              f"{len(content) - header}; the file is truncated or not IDX.")
    return np.frombuffer(content, dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def write_idx(path, array: np.ndarray) -> pathlib.Path:
    """Write ``array`` as an IDX file (gzipped when ``path`` ends in ``.gz``); the inverse of :func:`read_idx`.

    Example:

        data.write_idx("t10k-labels-idx1-ubyte.gz", y_test.astype("uint8"))   # gzip, from the name
    """
    path = pathlib.Path(path)
    codes = {v: k for k, v in _IDX_DTYPES.items()}
    dtype = np.dtype(array.dtype).newbyteorder(">") if np.dtype(array.dtype).itemsize > 1 else np.dtype(array.dtype)
    if dtype not in codes:
        raise ValueError(f"array dtype {array.dtype} has no IDX type code; expected one of "
                         f"{sorted(str(d) for d in codes)}.")
    payload = bytes([0, 0, codes[dtype], array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    payload += np.ascontiguousarray(array, dtype).tobytes()
    from tfkd import io

    with io.atomic_path(path) as tmp, (gzip.open if path.suffix == ".gz" else open)(tmp, "wb") as f:
        f.write(payload)
    return path


def read_cifar_binary(paths, label_bytes: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Images ``N x 32 x 32 x 3`` uint8 and labels from CIFAR's binary-version batch files.

    Each record is ``label_bytes`` label bytes (CIFAR-10: 1; CIFAR-100: coarse then fine, the fine label is used)
    followed by 3072 pixel bytes: the red, green and blue 32 x 32 planes in row-major order.

    Example:

        raw = data.load_npz(data_dir / "cifar10_subset.npz")
        images, labels = raw["x_test"][:100], raw["y_test"][:100].astype("uint8")
        planes = images.transpose(0, 3, 1, 2).reshape(100, 3072)   # CIFAR's layout: label byte, R, G, B planes
        np.concatenate([labels[:, None], planes], axis=1).tofile("test_batch.bin")
        x, y = data.read_cifar_binary(["test_batch.bin"])         # x: (100, 32, 32, 3) uint8, equal to images
    """
    xs, ys = [], []
    record = label_bytes + 3072
    for path in paths:
        raw = np.fromfile(path, np.uint8)
        if raw.size == 0 or raw.size % record:
            raise DataFormatError(f"{path}: {raw.size} bytes is not a whole number of {record}-byte CIFAR records "
                                  f"({label_bytes} label byte(s) + 3072 pixels).")
        raw = raw.reshape(-1, record)
        ys.append(raw[:, label_bytes - 1])
        xs.append(raw[:, label_bytes:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    return np.ascontiguousarray(np.concatenate(xs)), np.concatenate(ys)


# ------------------------------------------------------------------------------------------------------- sources
def _folders(root: pathlib.Path, name: str, spec: _Spec | None, *, include_root: bool) -> list[pathlib.Path]:
    names = (spec.folders if spec else ()) or (name,)
    found = [root / f for f in names if (root / f).is_dir()]
    # Original files directly in the root are only taken when the root is named for the dataset: MNIST and
    # Fashion-MNIST use the same IDX file names, so a bare folder of IDX files is ambiguous.
    if include_root and root.name in names:
        found.append(root)
    return found


def _find_idx(folder: pathlib.Path) -> tuple[dict, list]:
    paths, missing = {}, []
    for key, bases in _IDX_FILES.items():
        hits = [folder / (b + ext) for b in bases for ext in ("", ".gz") if (folder / (b + ext)).is_file()]
        if hits:
            paths[key] = hits[0]
        else:
            missing.append(bases[0] + "[.gz]")
    return paths, missing


def _from_directory(root: pathlib.Path, name: str, spec: _Spec | None, tried: list, *, system=False):
    """(raw arrays, source) from ``root``, or None; appends what it looked at to ``tried``."""
    npz = root / f"{name}.npz"
    if not system:
        if npz.is_file():
            return load_npz(npz, name), str(npz)
        tried.append(f"{npz}: not found")
    folders = _folders(root, name, spec, include_root=not system)
    if system and spec is not None and not folders:
        tried.append(f"{root}/{{{','.join(spec.folders)}}}/: not found")
    for folder in folders:
        sub_npz = folder / f"{name}.npz"
        if sub_npz.is_file():
            return load_npz(sub_npz, name), str(sub_npz)
        if spec is not None and spec.idx:
            paths, missing = _find_idx(folder)
            if not missing:
                arrays = _validate({k: read_idx(p) for k, p in paths.items()}, f"IDX files in {folder}", name)
                return arrays, f"IDX files in {folder}"
            tried.append(f"{folder}: " + (f"IDX files incomplete, missing {missing}" if paths else "no IDX files"))
        if spec is not None and spec.cifar_binary:
            sub, train, test, label_bytes = _CIFAR_BINARY[spec.cifar_binary]
            for base in (folder / sub, folder):
                files = [base / f for f in train + test]
                if all(f.is_file() for f in files):
                    x_train, y_train = read_cifar_binary(files[: len(train)], label_bytes)
                    x_test, y_test = read_cifar_binary(files[len(train):], label_bytes)
                    arrays = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
                    return _validate(arrays, f"CIFAR binary files in {base}", name), f"CIFAR binary files in {base}"
            tried.append(f"{folder}: no {sub}/ binary batches")
    return None


# ----------------------------------------------------------------------------------------------- load arguments
def _image_size_arg(image_size) -> tuple | None:
    """``image_size`` as ``(height, width)`` ints (``64`` and ``"64x64"`` mean ``(64, 64)``), or None."""
    if image_size is None:
        return None
    value = image_size
    if isinstance(value, str):
        value = [v for v in re.split(r"[x,\s]+", value.strip().lower()) if v]
        value = value * 2 if len(value) == 1 else value
    elif isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = (value, value)
    try:
        parts = list(value)
    except TypeError:
        parts = []
    ok = len(parts) == 2 and all(
        not isinstance(v, bool) and (isinstance(v, (int, np.integer)) or (isinstance(v, str) and v.isdigit()))
        and int(v) > 0 for v in parts)
    if not ok:
        raise ValueError(f"image_size={image_size!r}: expected (height, width) as two positive integers, e.g. "
                         f"(64, 64) (or 64 for a square, or '64x64'); None keeps the size of the first image.")
    return int(parts[0]), int(parts[1])


_COLOR_ALIASES = {"grey": "grayscale", "gray": "grayscale", "greyscale": "grayscale"}


def _color_mode_arg(color_mode) -> int | None:
    """The channel count of ``color_mode`` (:data:`COLOR_MODES`), or None to take the first image's."""
    if color_mode is None:
        return None
    key = color_mode.strip().lower() if isinstance(color_mode, str) else color_mode
    key = _COLOR_ALIASES.get(key, key)
    if key not in COLOR_MODES:
        raise ValueError(f"color_mode={color_mode!r}: expected one of {list(COLOR_MODES)}, or None to take the "
                         f"first image's (grayscale when it has one channel).")
    return COLOR_MODES[key]


def _split_args(test_fraction, split_seed) -> tuple[float, int]:
    if (isinstance(test_fraction, bool) or not isinstance(test_fraction, (int, float, np.integer, np.floating))
            or not 0.0 < float(test_fraction) < 1.0):
        raise ValueError(f"test_fraction={test_fraction!r}: expected a number strictly between 0 and 1 (the share "
                         f"of each class held out for testing where a dataset has no test split).")
    if isinstance(split_seed, bool) or not isinstance(split_seed, (int, np.integer)) or split_seed < 0:
        raise ValueError(f"split_seed={split_seed!r}: expected a non-negative integer (the seed of the test split).")
    return float(test_fraction), int(split_seed)


def _split_text(test_fraction: float, split_seed: int) -> str:
    return f"split {(1 - test_fraction) * 100:.3g}/{test_fraction * 100:.3g}, seed {split_seed}"


def _train_test_indices(y: np.ndarray, test_fraction: float, split_seed: int, what: str):
    """``(train, test)`` sorted indices: a stratified ``test_fraction`` of each class held out (numpy PCG64).

    The digits split's rule: ``round(N * test_fraction)`` test examples, largest-remainder class quotas, drawn by
    ``numpy.random.default_rng(split_seed)``; the same inputs give the same split on every machine.
    """
    n_test = round(len(y) * test_fraction)
    if not 0 < n_test < len(y):
        raise DataFormatError(f"{what}: test_fraction={test_fraction!r} of its {len(y)} examples leaves "
                              f"{len(y) - n_test} for training and {n_test} for testing; both must be non-empty "
                              f"(add examples, or change test_fraction).")
    test = _stratified_choice(np.asarray(y), n_test, np.random.default_rng(split_seed))
    mask = np.zeros(len(y), bool)
    mask[test] = True
    return np.flatnonzero(~mask), test


# --------------------------------------------------------------------- scikit-learn digits, and how to fix a miss
def _from_sklearn_digits():
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = bunch.images.astype(np.uint8)  # integer counts 0..16 stored as float64
    y = bunch.target.astype(np.int64)
    test = _stratified_choice(y, round(len(y) * _DIGITS_TEST_FRACTION),
                              np.random.default_rng(_DIGITS_SPLIT_SEED))
    mask = np.zeros(len(y), bool)
    mask[test] = True
    arrays = {"x_train": x[~mask], "y_train": y[~mask], "x_test": x[mask], "y_test": y[mask]}
    return arrays, (f"sklearn (sklearn.datasets.load_digits, bundled; fixed stratified "
                    f"{int(_DIGITS_TEST_FRACTION * 100)}% test split, seed {_DIGITS_SPLIT_SEED})")


def _how_to_fix(name: str, spec: _Spec | None, data_dir: pathlib.Path | None) -> str:
    where = str(data_dir) if data_dir else "DIR"
    lines = [(f"  - put {name}.npz (numpy.savez_compressed with uint8 arrays x_train, y_train, x_test, y_test) "
              f"at {where}/{name}.npz")]
    if spec is not None and spec.idx:
        files = ", ".join(b[0] + ".gz" for b in _IDX_FILES.values())
        lines.append(f"  - or put the four original IDX files ({files}; gzipped or not) in {where}/{spec.folders[0]}/")
    if spec is not None and spec.cifar_binary:
        sub = _CIFAR_BINARY[spec.cifar_binary][0]
        lines.append(f"  - or unpack the official binary release so that {where}/{spec.folders[0]}/{sub}/ exists")
    if data_dir is None:
        lines.append(f"    and point tfkd at DIR: set {ENV_DATA_DIR}=DIR, or pass --data-dir DIR (tfkd run) "
                     f"or data_dir=DIR (Python)")
    else:
        lines.append(f"    ({data_dir} is the data directory in use; choose another with data_dir=DIR (Python), "
                     f"--data-dir DIR (tfkd run) or {ENV_DATA_DIR}=DIR)")
    if spec is not None and spec.tfds_name:
        lines.append(f"  - or let tensorflow-datasets download {spec.tfds_name!r} (needs network): set "
                     f"{ENV_DOWNLOAD}=1 or call data.load({name!r}, download=True)")
    if spec is not None and spec.subset_of:
        lines.append(f"  - or use the full dataset: data.load({spec.subset_of!r})")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------- load
def _max_label(arrays: dict) -> int:
    return int(max(int(arrays[k].max()) for k in ("y_train", "y_test") if len(arrays[k])))


def _finish(arrays: dict, *, name: str, source: str, num_classes: int, class_names, raw: bool,
            scale: float = 255.0) -> Splits:
    """Validated raw arrays -> :class:`Splits`: as read (``raw``), else ready for Keras.

    Images: float32 in [0, 1] (divided by ``scale``) with a channel axis; features: float32 as stored; int64 labels.
    """
    kind = _kind(arrays)
    common = dict(name=name, num_classes=num_classes, source=source, class_names=class_names, kind=kind)
    if raw:
        return Splits(**arrays, **common, notes="raw arrays as read")
    ready = {}
    for split in ("train", "test"):
        x = arrays[f"x_{split}"]
        if kind == "features":
            x = x.astype(np.float32)  # as stored: no scaling
        else:
            x = x.reshape(*x.shape, 1) if x.ndim == 3 else x
            x = x.astype(np.float32)
            np.divide(x, scale, out=x)
        ready[f"x_{split}"] = x
        ready[f"y_{split}"] = arrays[f"y_{split}"].astype(np.int64)
    return Splits(**ready, **common)


def _finish_known(arrays: dict, name: str, spec: _Spec | None, source: str, raw: bool) -> Splits:
    """:func:`_finish` for a named dataset or a ``.npz``: classes from the dataset's spec, else from the labels."""
    known = spec is not None and _kind(arrays) == "images"
    return _finish(arrays, name=name, source=source, raw=raw,
                   num_classes=spec.num_classes if known else _max_label(arrays) + 1,
                   class_names=spec.class_names if known else None,
                   scale=float(spec.max_value if known else 255))


def _looks_like_path(text: str) -> bool:
    return "/" in text or "\\" in text or text.startswith(("~", ".")) or text.lower().endswith(".npz")


def _not_resizable(text: str, image_size, color_mode) -> None:
    given = [f"{k}={v!r}" for k, v in (("image_size", image_size), ("color_mode", color_mode)) if v is not None]
    if given:
        raise ValueError(f"{' and '.join(given)}: resizing and colour conversion apply to image folders and tfds:NAME "
                         f"datasets, but {text!r} is read as stored. Drop it (--image-size / --color-mode), or "
                         f"convert the arrays yourself (tf.image.resize).")


def _load_path(text: str, data_dir, *, raw, image_size, color_mode, channels, test_fraction, split_seed) -> Splits:
    """A ``.npz`` file or an image folder named by its path (absolute, relative to the working directory, or for a
    ``.npz``, relative to the data directory)."""
    path = pathlib.Path(text).expanduser()
    if path.is_dir():
        from tfkd.image_folders import _load_image_folder

        return _load_image_folder(path, raw=raw, image_size=image_size, channels=channels,
                                  test_fraction=test_fraction, split_seed=split_seed)
    if not path.exists() and not path.is_absolute() and path.suffix.lower() == ".npz":
        root = resolve_data_dir(data_dir)
        if root is not None and (root / path).is_file():
            path = root / path
    if not path.is_file():
        raise DatasetNotFoundError(
            f"name={text!r}: no such file or folder ({os.path.abspath(path)}). Expected a path to a .npz file "
            f"(numpy.savez with x_train, y_train, x_test, y_test), to an image folder (<folder>/<class>/<image>), "
            f"a dataset name (one of {list(NAMES)}) or tfds:NAME.")
    if path.suffix.lower() != ".npz":
        raise ValueError(f"name={text!r} is a file but not a .npz: expected a .npz file (numpy.savez with x_train, "
                         f"y_train, x_test, y_test) or an image folder (<folder>/<class>/<image>).")
    _not_resizable(text, image_size, color_mode)
    key = path.stem.strip().lower().replace("-", "_")
    spec = DATASETS.get(key)  # a file named for a dataset tfkd knows is checked as that dataset
    source = os.path.abspath(path)
    return _finish_known(load_npz(path, key if spec else None), key if spec else path.stem, spec, source, raw)


def load(name, data_dir=None, *, raw: bool = False, download: bool | None = None, tfds_dir=None,
         image_size=None, color_mode: str | None = None, test_fraction: float = 0.2, split_seed: int = 0) -> Splits:
    """Train and test splits of ``name``, float32 images in [0, 1] with a channel axis (NHWC), int64 labels.

    ``name`` is one of :data:`NAMES` (``digits, mnist, fashion_mnist, cifar10, cifar10_subset, cifar100``), any
    ``<name>.npz`` or image folder ``<name>/`` in the data directory, a path to a ``.npz`` file or an image folder
    (a ``pathlib.Path``, or a string with a ``/``, ending in ``.npz``, or starting with ``.`` or ``~``), or
    ``tfds:NAME`` for a tensorflow-datasets dataset (the module docstring gives the layouts and the order of the
    sources). ``source`` on the result says where the arrays came from. A ``.npz`` of float ``N x F`` x arrays is
    tabular: float32 features as stored, ``kind == "features"``.

    ``raw=True`` returns the arrays exactly as read (uint8 pixels, labels as stored, no channel axis added) for
    hashing and inspection. ``download`` (default: ``$TFKD_DOWNLOAD``) lets tensorflow-datasets fetch a dataset
    that is not prepared yet, into ``tfds_dir`` (default: ``$TFDS_DATA_DIR``, else ``~/tensorflow_datasets``),
    where prepared datasets are also looked for. For image folders and ``tfds:`` only: ``image_size`` ``(H, W)``
    resizes every image (bilinear, as Keras's ``image_dataset_from_directory``, rounded to uint8; None: every
    image must have the first one's size), ``color_mode`` is ``'grayscale'``, ``'rgb'`` or ``'rgba'`` (None:
    the first image's, grayscale when it has one channel), and where there is no test split (one class-folder
    tree; a tfds dataset with neither ``test`` nor ``validation``), a stratified ``test_fraction`` of each class
    is held out, drawn by numpy's PCG64 from ``split_seed`` over the sorted file list: the same split on every
    machine.

    Example:

        splits = data.load("mnist", data_dir=data_dir)   # data_dir: the folder holding mnist.npz
        print(splits)              # mnist: 60000 train / 10000 test, 28x28x1, 10 classes, float32, from ...mnist.npz
        (x_train, y_train), (x_test, y_test) = splits
        # photos = data.load("my_photos", image_size=(64, 64))  # my_photos/<class>/*.jpg: 80/20 split, seed 0
        # photos.class_names                                     # the sorted sub-folder names, ids 0..K-1
    """
    if isinstance(name, os.PathLike):
        text, is_path = os.fsdecode(os.fspath(name)), True
    elif isinstance(name, str) and name.strip():
        text = name.strip()
        is_path = not text.lower().startswith("tfds:") and _looks_like_path(text)
    else:
        raise ValueError(f"name={name!r}: expected a dataset name (one of {list(NAMES)}), a path to a .npz file "
                         f"or an image folder, or tfds:NAME.")
    size = _image_size_arg(image_size)
    channels = _color_mode_arg(color_mode)
    test_fraction, split_seed = _split_args(test_fraction, split_seed)
    folder_options = dict(raw=raw, image_size=size, channels=channels, test_fraction=test_fraction,
                          split_seed=split_seed)
    if is_path:
        return _load_path(text, data_dir, color_mode=color_mode, **folder_options)
    if text.lower().startswith("tfds:"):
        from tfkd.tfds_source import _load_tfds_name

        return _load_tfds_name(text, data_dir, _download_allowed(download), tfds_dir, **folder_options)
    name = text.lower().replace("-", "_")
    root = resolve_data_dir(data_dir)
    spec = DATASETS.get(name)
    if spec is None and not (root is not None and (root / f"{name}.npz").is_file()):
        folders = ([root / text, root / name] if root is not None else []) + [pathlib.Path(text)]
        folder = next((f for f in folders if f.is_dir()), None)
        if folder is not None:
            from tfkd.image_folders import _load_image_folder

            return _load_image_folder(folder, **folder_options)
        raise ValueError(f"name={text!r} is not a dataset tfkd knows: expected one of {list(NAMES)}, a file "
                         f"{name}.npz or an image folder {text}/ in the data directory "
                         f"({root if root else f'none set: {ENV_DATA_DIR} unset'}), a path to a .npz file or to an "
                         f"image folder, or tfds:NAME for a tensorflow-datasets dataset.")
    _not_resizable(text, image_size, color_mode)
    tried: list[str] = []
    found = None
    if root is not None:
        found = _from_directory(root, name, spec, tried)
    else:
        tried.append(f"data directory: none given (data_dir=None and {ENV_DATA_DIR} unset)")
    if found is None and spec is not None and (spec.idx or spec.cifar_binary):
        for system_dir in SYSTEM_DIRS:
            if found is None and pathlib.Path(system_dir).is_dir():
                found = _from_directory(pathlib.Path(system_dir), name, spec, tried, system=True)
    if found is None and spec is not None and spec.tfds_name:
        from tfkd.tfds_source import _from_tfds

        found = _from_tfds(name, spec, root, _download_allowed(download), tried, tfds_dir)
    if found is None and name == "digits":
        found = _from_sklearn_digits()
    if found is None:
        raise DatasetNotFoundError(
            f"could not load dataset {name!r}. Tried, in order:\n" + "\n".join(f"  - {t}" for t in tried)
            + "\nTo fix it, any one of:\n" + _how_to_fix(name, spec, root))
    arrays, source = found
    return _finish_known(arrays, name, spec, source, raw)


def load_raw(name, data_dir=None, *, download: bool | None = None, tfds_dir=None, image_size=None,
             color_mode: str | None = None, test_fraction: float = 0.2, split_seed: int = 0) -> tuple[dict, str]:
    """``(arrays, source)``: the arrays exactly as read (see ``load(raw=True)``) and where they came from.

    Example:

        import hashlib
        arrays, source = data.load_raw("mnist")
        hashlib.sha256(arrays["x_train"].tobytes()).hexdigest()   # '741c9888...' for the canonical release
    """
    splits = load(name, data_dir, raw=True, download=download, tfds_dir=tfds_dir, image_size=image_size,
                  color_mode=color_mode, test_fraction=test_fraction, split_seed=split_seed)
    return {k: getattr(splits, k) for k in KEYS}, splits.source


# ------------------------------------------------------------------------------------------------------ pipelines
def as_dataset(x, y=None, batch_size: int = 128, shuffle: bool = False, seed: int = 0,
               drop_remainder: bool = False):
    """A batched, prefetched ``tf.data.Dataset`` over ``x`` (and ``y``).

    ``x`` may be one array or a tuple of arrays of the same length (e.g. the ``(x_target, x_source)`` views of
    domain adaptation); without ``y`` each element is ``(x,)``, which Keras reads as inputs only. ``shuffle``
    reshuffles every epoch, in an order that depends only on ``seed`` and the epoch (:func:`tfkd.rng.epoch_keyed`;
    :func:`tfkd.training.fit` tells the dataset its epoch, so a resumed run sees the same orders).

    Example:

        ds = data.as_dataset(x_train, y_train, batch_size=64, shuffle=True, seed=0)
        student.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        student.fit(ds, epochs=1, verbose=0)
    """
    import tensorflow as tf

    if int(batch_size) < 1:
        raise ValueError(f"batch_size={batch_size!r}: expected a positive integer.")
    parts = list(x) if isinstance(x, (tuple, list)) else [x]
    lengths = {len(p) for p in parts}
    if len(lengths) != 1:
        raise ValueError(f"x: the arrays of the tuple have different lengths {[len(p) for p in parts]}; "
                         f"every view must hold the same examples.")
    n = lengths.pop()
    if y is not None and len(y) != n:
        raise ValueError(f"y has {len(y)} labels but x has {n} examples; they must match.")
    inputs = tuple(x) if isinstance(x, (tuple, list)) else x
    if shuffle:  # the order of epoch e depends on (seed, e) only, so a run resumed by tfkd.training.fit replays it
        from tfkd import rng

        return rng.epoch_keyed(inputs, y, batch_size=batch_size, seed=seed, drop_remainder=drop_remainder)
    ds = tf.data.Dataset.from_tensor_slices((inputs,) if y is None else (inputs, y))
    return ds.batch(int(batch_size), drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)


# --------------------------------------------------------------------------------------------------------- splits
def _stratified_choice(y: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of ``n`` examples drawn without replacement, each class in proportion to its frequency.

    Quotas are floors of the exact shares, the remainder going to the largest fractional parts (largest-remainder
    apportionment), so the total is exactly ``n``.
    """
    classes, counts = np.unique(y, return_counts=True)
    share = counts * (n / len(y))
    quota = np.floor(share).astype(int)
    order = np.argsort(-(share - quota), kind="stable")
    quota[order[: n - quota.sum()]] += 1
    picks = [rng.choice(np.flatnonzero(y == c), q, replace=False) for c, q in zip(classes, quota) if q]
    return np.sort(np.concatenate(picks)) if picks else np.zeros(0, int)


def _choice(y, n, rng, stratified, what):
    if n is None:
        return np.arange(len(y))
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 0 < n <= len(y):
        raise ValueError(f"{what}={n!r}: expected an integer in 1..{len(y)} (the split holds {len(y)} examples).")
    if stratified:
        return _stratified_choice(np.asarray(y), int(n), rng)
    return np.sort(rng.choice(len(y), int(n), replace=False))


def subset(splits: Splits, n_train: int | None = None, n_test: int | None = None, seed: int = 0,
           stratified: bool = True) -> Splits:
    """A smaller :class:`Splits` of real data: ``n_train`` / ``n_test`` examples drawn with ``seed``.

    Stratified by default (class proportions kept); the original order is kept; ``None`` keeps a whole split.

    Example:

        small = data.subset(data.load("mnist"), n_train=2000, n_test=500, seed=0)   # from $TFKD_DATA_DIR
        print(small)   # mnist: 2000 train / 500 test, ..., a SUBSET of MNIST (full release: 60000 / 10000) ...
    """
    if n_train is None and n_test is None:
        return splits
    train = _choice(splits.y_train, n_train, np.random.default_rng([seed, 0]), stratified, "n_train")
    test = _choice(splits.y_test, n_test, np.random.default_rng([seed, 1]), stratified, "n_test")
    how = f"{'stratified' if stratified else 'random'} subset, seed {seed}"
    notes = f"{splits.notes}; {how}" if splits.notes else how
    return dataclasses.replace(splits, x_train=splits.x_train[train], y_train=splits.y_train[train],
                               x_test=splits.x_test[test], y_test=splits.y_test[test], notes=notes)


def labeled_unlabeled_split(x, y, labeled_fraction: float, seed: int = 0, stratified: bool = True):
    """Split into a labeled part and an unlabeled part whose labels are kept aside (for evaluation only).

    Returns ``(x_labeled, y_labeled, x_unlabeled, y_unlabeled_hidden)``; the same ``seed`` gives the same split.

    Example:

        x_lab, y_lab, x_unlab, _ = data.labeled_unlabeled_split(x_train, y_train, 0.1, seed=0)
    """
    y = np.asarray(y)
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} examples but y has {len(y)} labels; they must match.")
    if not 0.0 < float(labeled_fraction) < 1.0:
        raise ValueError(f"labeled_fraction={labeled_fraction!r}: expected a number strictly between 0 and 1.")
    n = round(len(y) * float(labeled_fraction))
    if not 0 < n < len(y):
        raise ValueError(f"labeled_fraction={labeled_fraction!r} of {len(y)} examples leaves {n} labeled and "
                         f"{len(y) - n} unlabeled; both parts must be non-empty.")
    lab = _choice(y, n, np.random.default_rng(seed), stratified, "labeled_fraction")
    mask = np.zeros(len(y), bool)
    mask[lab] = True
    return x[mask], y[mask], x[~mask], y[~mask]


def filter_classes(x, y, classes=(6, 9)):
    """Keep only ``classes`` and relabel them ``0..k-1`` in the order given (``(6, 9)``: 6 -> 0, 9 -> 1).

    Example:

        x69, y69 = data.filter_classes(x_test, y_test, classes=(6, 9))    # y69 in {0, 1}
    """
    y = np.asarray(y)
    classes = tuple(int(c) for c in classes)
    if not classes or len(set(classes)) != len(classes):
        raise ValueError(f"classes={classes!r}: expected distinct class ids, at least one.")
    absent = [c for c in classes if not np.any(y == c)]
    if absent:
        raise ValueError(f"classes={classes!r}: {absent} never occur in y (labels present: "
                         f"{np.unique(y).tolist()}).")
    lookup = np.full(int(max(y.max(), max(classes))) + 1, -1, np.int64)
    lookup[list(classes)] = np.arange(len(classes))
    mask = np.isin(y, classes)
    return x[mask], lookup[y[mask]].astype(y.dtype)


__all__ = [
    "CORRUPTIONS", "DATASETS", "NAMES", "SYSTEM_DIRS", "DataFormatError", "DataNotFoundError",
    "COLOR_MODES", "DatasetNotFoundError", "DomainTransform", "IMAGE_EXTENSIONS", "Splits", "TEST_FOLDERS",
    "as_dataset", "corrupt", "corrupted_test_set", "domain_transform", "filter_classes", "folder_dataset",
    "labeled_unlabeled_split", "load", "load_npz", "load_raw", "parallel_pairs", "read_cifar_binary", "read_idx",
    "resolve_data_dir", "subset", "write_idx",
]
