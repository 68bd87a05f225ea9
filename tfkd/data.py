"""Real datasets ready for Keras: loading (data directory, tensorflow-datasets, scikit-learn), pipelines and splits.

Where a dataset comes from, in this order (the first that works wins; ``Splits.source`` says which):

1. a **data directory** (``data_dir=`` argument, ``tfkd run --data-dir``, or ``TFKD_DATA_DIR``) holding
   ``<name>.npz`` (``numpy.savez`` with uint8 ``x_train, y_train, x_test, y_test``), or the original files: the
   four IDX files of MNIST / Fashion-MNIST (``.gz`` or not) or CIFAR's binary batches, in ``<dir>/<name>/``;
2. **system folders** (:data:`SYSTEM_DIRS`), e.g. ``/usr/share/datasets/fashion-mnist/`` from Debian's
   ``dataset-fashion-mnist`` package;
3. **tensorflow-datasets**: a dataset already prepared under the data directory or ``TFDS_DATA_DIR``
   (``~/tensorflow_datasets``); it downloads only when asked (``download=True`` or ``TFKD_DOWNLOAD=1``), so an
   offline machine fails in well under a second instead of hanging on the network;
4. ``digits`` only: scikit-learn's bundled 8x8 handwritten digits (1797 images), which need no file and no network.

When nothing works, :class:`DatasetNotFoundError` lists what was tried and which file to put where.

Example:

    from tfkd import data
    (x_train, y_train), (x_test, y_test) = splits = data.load("digits")
    print(splits)                    # sizes, shape, classes, and where the data came from
    ds = data.as_dataset(x_train, y_train, batch_size=64, shuffle=True)

Domain transforms (:mod:`tfkd.domains`) and corruptions (:mod:`tfkd.corruptions`) are re-exported here.
"""

from __future__ import annotations

import dataclasses
import gzip
import os
import pathlib

import numpy as np

from tfkd.corruptions import KINDS as CORRUPTIONS
from tfkd.corruptions import corrupt, corrupted_test_set
from tfkd.domains import DomainTransform, domain_transform, parallel_pairs

ENV_DATA_DIR = "TFKD_DATA_DIR"
ENV_DOWNLOAD = "TFKD_DOWNLOAD"
KEYS = ("x_train", "y_train", "x_test", "y_test")
# Folders scanned after the data directory (Debian installs Fashion-MNIST's IDX files under the first).
SYSTEM_DIRS: tuple[str, ...] = ("/usr/share/datasets",)


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
    ``print(splits)`` reports the split sizes and flags a subset of a larger release.
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

    @property
    def input_shape(self) -> tuple:
        """Shape of one example, without the batch axis, e.g. ``(28, 28, 1)``."""
        return tuple(int(d) for d in self.x_train.shape[1:])

    @property
    def full_sizes(self) -> tuple | None:
        """``(train, test)`` sizes of the full official release, or None for a dataset tfkd does not know."""
        spec = DATASETS.get(self.name)
        return spec.full_sizes if spec else None

    @property
    def is_subset(self) -> bool:
        """True when these splits hold fewer images than the full release (``cifar10_subset`` always does)."""
        full = self.full_sizes
        sizes = (len(self.x_train), len(self.x_test))
        return bool(DATASETS.get(self.name) and DATASETS[self.name].subset_of) or (full is not None and sizes != full)

    def __iter__(self):
        yield self.x_train, self.y_train
        yield self.x_test, self.y_test

    def summary(self) -> str:
        """One line: name, split sizes (flagging a subset), image shape, classes, dtype and source."""
        shape = "x".join(str(d) for d in self.input_shape)
        text = f"{self.name}: {len(self.x_train)} train / {len(self.x_test)} test, {shape}, {self.num_classes} classes"
        if self.is_subset:
            spec = DATASETS[self.name]
            full = DATASETS[spec.subset_of].title if spec.subset_of else spec.title
            text += f", a SUBSET of {full} (full release: {spec.full_sizes[0]} / {spec.full_sizes[1]})"
        if self.notes:
            text += f" [{self.notes}]"
        return f"{text}, {self.x_train.dtype}, from {self.source}"

    def __repr__(self) -> str:
        return f"Splits({self.summary()})"

    __str__ = summary


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
    """The raw uint8 arrays of a ``.npz`` file, validated: ``{"x_train", "y_train", "x_test", "y_test"}``.

    Images must be uint8 ``N x H x W`` (grey) or ``N x H x W x C``; labels integer, 1-D (``N x 1`` is flattened).
    With ``name`` the image shape and label range are checked against that dataset. Pickles are refused.

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
    """Check dtypes, ranks and lengths of raw arrays; flatten ``N x 1`` labels."""
    layout = ", ".join(f"{k}: {arrays[k].dtype} {arrays[k].shape}" for k in KEYS)
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.dtype != np.uint8:
            raise DataFormatError(f"{where}: x_{split} has dtype {x.dtype}, expected uint8 pixels 0..255 "
                                  f"(found {layout}); save (x * 255).round().astype('uint8') instead.")
        if x.ndim not in (3, 4) or (x.ndim == 4 and x.shape[-1] not in (1, 3, 4)):
            raise DataFormatError(f"{where}: x_{split} has shape {x.shape}, expected N x H x W or N x H x W x C "
                                  f"with C in (1, 3, 4) (found {layout}).")
        if y.ndim == 2 and y.shape[1] == 1:  # Keras's CIFAR load_data() gives N x 1 labels
            y = arrays[f"y_{split}"] = y.reshape(-1)
        if not np.issubdtype(y.dtype, np.integer) or y.ndim != 1:
            raise DataFormatError(f"{where}: y_{split} has dtype {y.dtype} and shape {y.shape}, expected 1-D "
                                  f"integer class ids (found {layout}).")
        if len(x) != len(y):
            raise DataFormatError(f"{where}: x_{split} has {len(x)} images but y_{split} has {len(y)} labels "
                                  f"(found {layout}).")
        if len(y) and y.min() < 0:
            raise DataFormatError(f"{where}: y_{split} holds the label {int(y.min())}; class ids must be 0, 1, 2, ... "
                                  f"(found {layout}).")
    if len(arrays["x_train"]) == 0:
        raise DataFormatError(f"{where}: the training split is empty (found {layout}); there is nothing to train on.")
    x_train, x_test = arrays["x_train"], arrays["x_test"]
    if _channels(x_train.shape[1:]) != _channels(x_test.shape[1:]):
        raise DataFormatError(f"{where}: train images are {x_train.shape[1:]} but test images are "
                              f"{x_test.shape[1:]}; both splits must have the same image shape (found {layout}).")
    spec = DATASETS.get(name) if name else None
    if spec is not None:
        if _channels(x_train.shape[1:]) != spec.image_shape:
            raise DataFormatError(f"{where}: images are {x_train.shape[1:]}, but {name} images are "
                                  f"{spec.image_shape} (H, W, C); is this the file of another dataset?")
        for split in ("train", "test"):
            y = arrays[f"y_{split}"]
            if len(y) and (y.min() < 0 or y.max() >= spec.num_classes):
                raise DataFormatError(f"{where}: y_{split} holds labels {int(y.min())}..{int(y.max())}, but "
                                      f"{name} has classes 0..{spec.num_classes - 1}.")
    return arrays


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


def _tfds_root(tfds_dir=None) -> pathlib.Path:
    return pathlib.Path(tfds_dir or os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets").expanduser()


def _from_tfds(name: str, spec: _Spec, data_dir: pathlib.Path | None, download: bool, tried: list,
               tfds_dir=None):
    """(raw arrays, source) from tensorflow-datasets, or None.

    Without ``download`` only a dataset already prepared (under the data directory or the tfds data dir) is read,
    checked on the file system first, so an offline machine never waits on the network.
    """
    try:
        import tensorflow_datasets as tfds
    except ImportError as err:
        tried.append(f"tensorflow-datasets: not importable ({err}); pip install tensorflow-datasets")
        return None
    roots = [r for r in (data_dir, _tfds_root(tfds_dir)) if r is not None]
    prepared = None
    for root in roots:
        if (root / spec.tfds_name).is_dir():  # checked first: tfds.builder logs a warning for a missing folder
            builder = tfds.builder(spec.tfds_name, data_dir=str(root))
            if builder.is_prepared():
                prepared = root
                break
    if prepared is None and not download:
        tried.append(f"tensorflow-datasets: {spec.tfds_name!r} is not prepared under "
                     f"{' or '.join(str(r) for r in roots)}, and downloading is off "
                     f"(download=True or {ENV_DOWNLOAD}=1 lets tfds download it)")
        return None
    root = prepared or _tfds_root(tfds_dir)
    try:
        train, test = tfds.load(spec.tfds_name, split=["train", "test"], data_dir=str(root), as_supervised=True,
                                download=prepared is None, shuffle_files=False)
        arrays = {}
        for split, ds in (("train", train), ("test", test)):
            # Batches rather than batch_size=-1: one big batch crashes under tfds.testing.mock_data.
            batches = list(tfds.as_numpy(ds.batch(4096)))
            if not batches:
                raise ValueError(f"the {split!r} split is empty")
            arrays[f"x_{split}"] = np.concatenate([xb for xb, _ in batches])
            arrays[f"y_{split}"] = np.concatenate([yb for _, yb in batches])
    except ModuleNotFoundError as err:
        # tensorflow-datasets 4.9.10 imports importlib_resources when it prepares a dataset but does not declare
        # it for Python >= 3.9 (tensorflow/datasets#11212).
        tried.append(f"tensorflow-datasets: {err}; pip install {err.name or 'the missing module'}")
        return None
    except Exception as err:  # noqa: BLE001  (network down, quota, corrupt files: report, fall through)
        tried.append(f"tensorflow-datasets: loading {spec.tfds_name!r} into {root} failed: "
                     f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}")
        return None
    arrays = _validate(arrays, f"tensorflow-datasets {spec.tfds_name!r}", name)
    return arrays, f"tensorflow-datasets ({spec.tfds_name} under {root})"


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
def load(name: str, data_dir=None, *, raw: bool = False, download: bool | None = None, tfds_dir=None) -> Splits:
    """Train and test splits of ``name``, float32 images in [0, 1] with a channel axis (NHWC), int64 labels.

    ``name`` is one of :data:`NAMES` (``digits, mnist, fashion_mnist, cifar10, cifar10_subset, cifar100``) or any
    ``<name>.npz`` in the data directory. Sources are tried in the order the module docstring gives; ``source`` on
    the result says which one answered. ``raw=True`` returns the arrays exactly as read (uint8 pixels, labels as
    stored, no channel axis added) for hashing and inspection. ``download`` (default: ``$TFKD_DOWNLOAD``) lets
    tensorflow-datasets fetch a dataset that is not prepared yet, into ``tfds_dir`` (default: ``$TFDS_DATA_DIR``,
    else ``~/tensorflow_datasets``), where prepared datasets are also looked for.

    Example:

        splits = data.load("mnist", data_dir=data_dir)   # data_dir: the folder holding mnist.npz
        print(splits)              # mnist: 60000 train / 10000 test, 28x28x1, 10 classes, float32, from ...mnist.npz
        (x_train, y_train), (x_test, y_test) = splits
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"name={name!r}: expected a dataset name, one of {list(NAMES)}.")
    name = name.strip().lower().replace("-", "_")
    root = resolve_data_dir(data_dir)
    spec = DATASETS.get(name)
    if spec is None and not (root is not None and (root / f"{name}.npz").is_file()):
        raise ValueError(f"name={name!r} is not a dataset tfkd knows: expected one of {list(NAMES)}, or a file "
                         f"{name}.npz in the data directory ({root if root else f'none set: {ENV_DATA_DIR} unset'}).")
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
        found = _from_tfds(name, spec, root, _download_allowed(download), tried, tfds_dir)
    if found is None and name == "digits":
        found = _from_sklearn_digits()
    if found is None:
        raise DatasetNotFoundError(
            f"could not load dataset {name!r}. Tried, in order:\n" + "\n".join(f"  - {t}" for t in tried)
            + "\nTo fix it, any one of:\n" + _how_to_fix(name, spec, root))
    arrays, source = found
    num_classes = spec.num_classes if spec else int(max(arrays["y_train"].max(), arrays["y_test"].max())) + 1
    class_names = spec.class_names if spec else None
    if raw:
        return Splits(**arrays, name=name, num_classes=num_classes, source=source, class_names=class_names,
                      notes="raw arrays as read")
    scale = float(spec.max_value if spec else 255)
    ready = {}
    for split in ("train", "test"):
        x = arrays[f"x_{split}"]
        x = x.reshape(*x.shape, 1) if x.ndim == 3 else x
        x = x.astype(np.float32)
        np.divide(x, scale, out=x)
        ready[f"x_{split}"] = x
        ready[f"y_{split}"] = arrays[f"y_{split}"].astype(np.int64)
    return Splits(**ready, name=name, num_classes=num_classes, source=source, class_names=class_names)


def load_raw(name: str, data_dir=None, *, download: bool | None = None, tfds_dir=None) -> tuple[dict, str]:
    """``(arrays, source)``: the arrays exactly as read (see ``load(raw=True)``) and where they came from.

    Example:

        import hashlib
        arrays, source = data.load_raw("mnist")
        hashlib.sha256(arrays["x_train"].tobytes()).hexdigest()   # '741c9888...' for the canonical release
    """
    splits = load(name, data_dir, raw=True, download=download, tfds_dir=tfds_dir)
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
    "DatasetNotFoundError", "DomainTransform", "Splits", "as_dataset", "corrupt", "corrupted_test_set",
    "domain_transform", "filter_classes", "labeled_unlabeled_split", "load", "load_npz", "load_raw",
    "parallel_pairs", "read_cifar_binary", "read_idx", "resolve_data_dir", "subset", "write_idx",
]
