"""tfkd.data's other sources on real data: image folders (PNGs written from Fashion-MNIST), tabular float features
(scikit-learn's breast cancer), and tensorflow-datasets by name (offline errors, mock data, a prepared folder)."""

import hashlib
import importlib
import importlib.util
import re
import shutil
import sys
import time

import numpy as np
import pytest

from tfkd import data

N_TRAIN, N_TEST = 30, 10  # PNGs per class


def _safe(name):
    return re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_")


FASHION = data.DATASETS["fashion_mnist"].class_names
FOLDERS = [_safe(n) for n in FASHION]  # label -> folder name ("T-shirt/top" -> "T_shirt_top")
SORTED = sorted(FOLDERS)  # the class order of the folder (and of Keras)


def _sha(a):
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def _write_pngs(folder, images, stem=""):
    import tensorflow as tf

    folder.mkdir(parents=True, exist_ok=True)
    for j, image in enumerate(images):
        tf.io.write_file(str(folder / f"{stem}{j:03d}.png"), tf.io.encode_png(image[..., None]))


@pytest.fixture(scope="module")
def fashion(data_dir):
    return data.load_npz(data_dir / "fashion_mnist.npz", "fashion_mnist")


@pytest.fixture(scope="module")
def per_class(fashion):
    """``{split: [the first N images of class c, for c in 0..9]}``, uint8 28 x 28, in file order."""
    n = {"train": N_TRAIN, "test": N_TEST}
    return {s: [fashion[f"x_{s}"][np.flatnonzero(fashion[f"y_{s}"] == c)[:n[s]]] for c in range(10)]
            for s in ("train", "test")}


@pytest.fixture(scope="module")
def folder(tmp_path_factory, per_class):
    """``fm/train/<class>/NNN.png`` and ``fm/test/<class>/NNN.png``: 30 + 10 real images per class."""
    root = tmp_path_factory.mktemp("images") / "fm"
    for split, images in per_class.items():
        for c, xs in enumerate(images):
            _write_pngs(root / split / FOLDERS[c], xs)
    return root


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """No data directory, an empty tfds directory and downloads off."""
    monkeypatch.delenv("TFKD_DATA_DIR", raising=False)
    monkeypatch.delenv("TFKD_DOWNLOAD", raising=False)
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    return tmp_path


def _expected(per_class, split):
    """The folder's images and labels in its order: classes by sorted name, files by name."""
    order = [FOLDERS.index(name) for name in SORTED]
    x = np.concatenate([per_class[split][c] for c in order])[..., None]
    y = np.repeat(np.arange(10), [len(per_class[split][c]) for c in order])
    return x, y


# ------------------------------------------------------------------------------------------------ image folders
def test_png_folder_gives_the_source_pixels_and_keras_class_order(folder, per_class, capsys):
    raw = data.load(folder, raw=True)
    assert raw.class_names == tuple(SORTED) and raw.num_classes == 10 and raw.kind == "images"
    for split in ("train", "test"):
        x, y = _expected(per_class, split)
        np.testing.assert_array_equal(getattr(raw, f"x_{split}"), x)  # PNG is lossless: bit-exact
        np.testing.assert_array_equal(getattr(raw, f"y_{split}"), y)
    assert raw.x_train.dtype == np.uint8 and raw.x_train.shape == (10 * N_TRAIN, 28, 28, 1)
    # A class id names the same images as the source label: "Trouser" holds the source's class-1 images.
    trouser = SORTED.index("Trouser")
    np.testing.assert_array_equal(raw.x_test[raw.y_test == trouser][..., 0], per_class["test"][1])

    splits = data.load(str(folder))
    assert splits.x_train.dtype == np.float32 and splits.y_train.dtype == np.int64
    np.testing.assert_array_equal(splits.x_train, raw.x_train.astype(np.float32) / np.float32(255))
    assert splits.name == "fm" and splits.input_shape == (28, 28, 1) and not splits.is_subset
    assert splits.summary() == (f"fm: 300 train / 100 test, 28x28x1, 10 classes (Ankle_boot, Bag, Coat, Dress, ..., "
                                f"Trouser), uint8->float32 [0, 1], from image folder {folder} (train/ + test/)")
    assert capsys.readouterr().out == ""  # prints nothing

    import keras

    keras_ds = keras.utils.image_dataset_from_directory(str(folder / "train"), batch_size=8, verbose=False)
    assert keras_ds.class_names == list(splits.class_names)
    arrays, source = data.load_raw(folder)
    assert source == splits.source and arrays["x_test"].shape == (100, 28, 28, 1)


def test_single_folder_split_is_stratified_deterministic_and_disjoint(folder, per_class):
    one = folder / "train"  # one tree of class folders: split by test_fraction
    splits = data.load(one, raw=True)
    assert len(splits.x_train) == 240 and len(splits.x_test) == 60
    assert np.bincount(splits.y_test).tolist() == [6] * 10 and np.bincount(splits.y_train).tolist() == [24] * 10
    assert splits.source == f"image folder {one} (split 80/20, seed 0)" and splits.name == "train"
    all_x, all_y = _expected(per_class, "train")
    index = {_sha(x): i for i, x in enumerate(all_x)}
    assert len(index) == 300  # the 300 source images are distinct, so an image identifies its file
    train = [index[_sha(x)] for x in splits.x_train]
    test = [index[_sha(x)] for x in splits.x_test]
    assert not set(train) & set(test) and sorted(train + test) == list(range(300))
    np.testing.assert_array_equal(splits.y_test, all_y[test])
    # The split depends on the sorted file list and numpy's PCG64 only, so every machine makes this one: class by
    # class (sorted names), default_rng(seed).choice of each class's quota. Pinned for the first class.
    first_class = [i for i in test if i < N_TRAIN]  # the files of Ankle_boot/ held out with seed 0
    assert first_class == np.sort(np.random.default_rng(0).choice(N_TRAIN, 6, replace=False)).tolist()
    assert first_class == [1, 7, 8, 13, 16, 21]
    again = data.load(one, raw=True)
    np.testing.assert_array_equal(again.x_test, splits.x_test)
    other = data.load(one, raw=True, split_seed=1, test_fraction=0.25)
    assert len(other.x_test) == 75 and "split 75/25, seed 1" in other.source
    assert {_sha(x) for x in other.x_test} != {_sha(x) for x in splits.x_test}
    small = data.subset(data.load(one), n_train=50, n_test=20, seed=0)  # subset works on a folder, stratified
    assert np.bincount(small.y_train).tolist() == [5] * 10 and np.bincount(small.y_test).tolist() == [2] * 10
    assert "stratified subset, seed 0" in small.summary() and small.class_names == tuple(SORTED)



def test_image_size_and_color_mode(folder, per_class):
    import tensorflow as tf

    rgb = data.load(folder, color_mode="rgb", raw=True)
    assert rgb.x_train.shape == (300, 28, 28, 3)
    for c in range(3):  # grey repeated into three equal channels, each the source pixels
        np.testing.assert_array_equal(rgb.x_train[..., c], _expected(per_class, "train")[0][..., 0])
    rgba = data.load(folder, color_mode="rgba", raw=True)
    assert rgba.input_shape == (28, 28, 4) and (rgba.x_test[..., 3] == 255).all()  # opaque alpha added
    same = data.load(folder, image_size=(28, 28), raw=True)  # the native size: left exactly as decoded
    np.testing.assert_array_equal(same.x_test, _expected(per_class, "test")[0])

    small = data.load(folder, image_size=(14, 20), color_mode="rgb")
    assert small.x_train.shape == (300, 14, 20, 3) and small.x_train.dtype == np.float32
    assert "14x20x3" in small.summary()
    x_test = _expected(per_class, "test")[0].astype(np.float32)
    want = np.clip(np.round(tf.image.resize(x_test, (14, 20), method="bilinear").numpy()), 0, 255) / np.float32(255)
    np.testing.assert_array_equal(small.x_test[..., 0], want[..., 0].astype(np.float32))
    assert data.load(folder, image_size="7x7", raw=True).input_shape == (7, 7, 1)
    with pytest.raises(ValueError, match=r"image_size=\(0, 5\): expected \(height, width\)"):
        data.load(folder, image_size=(0, 5))
    with pytest.raises(ValueError, match=r"color_mode='cmyk': expected one of \['grayscale', 'rgb', 'rgba'\]"):
        data.load(folder, color_mode="cmyk")


def test_rgb_pngs_become_grey_by_luma(tmp_path, data_dir):
    import tensorflow as tf

    cifar = data.load_npz(data_dir / "cifar10_subset.npz")
    x, y = cifar["x_test"][:40], cifar["y_test"][:40]
    for i, (image, label) in enumerate(zip(x, y)):
        (tmp_path / "c" / f"k{label}").mkdir(parents=True, exist_ok=True)
        tf.io.write_file(str(tmp_path / "c" / f"k{label}" / f"{i:03d}.png"), tf.io.encode_png(image))
    colour = data.load(tmp_path / "c", raw=True, test_fraction=0.25)
    assert colour.input_shape == (32, 32, 3)  # detected from the first image
    grey = data.load(tmp_path / "c", raw=True, test_fraction=0.25, color_mode="grayscale")
    luma = np.round(colour.x_train.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32))
    assert grey.input_shape == (32, 32, 1)
    assert np.abs(grey.x_train[..., 0].astype(int) - luma.astype(int)).max() <= 1


def _small_folder(root, fashion, n=5):
    for c in (0, 1):
        _write_pngs(root / FOLDERS[c], fashion["x_test"][fashion["y_test"] == c][:n])
    return root


def test_images_of_another_size_need_image_size(tmp_path, fashion):
    import tensorflow as tf

    root = _small_folder(tmp_path / "mixed", fashion)
    odd = root / FOLDERS[1] / "zz_wide.png"
    tf.io.write_file(str(odd), tf.io.encode_png(np.zeros((28, 40, 1), np.uint8)))
    with pytest.raises(data.DataFormatError, match=r"image_size=\(H, W\) \(--image-size H,W") as err:
        data.load(root)
    assert str(odd) in str(err.value) and "28x40" in str(err.value)
    fixed = data.load(root, image_size=(28, 28), raw=True, test_fraction=0.25)
    assert fixed.input_shape == (28, 28, 1) and len(fixed.x_train) + len(fixed.x_test) == 11
    stream = data.folder_dataset(root)
    with pytest.raises(tf.errors.InvalidArgumentError, match="zz_wide.png"):
        list(stream)


def test_corrupt_and_truncated_files_are_named(tmp_path, fashion):
    root = _small_folder(tmp_path / "bad", fashion)
    bad = root / FOLDERS[0] / "001.png"
    bad.write_bytes(b"this is not a png")
    with pytest.raises(data.DataFormatError, match="not a readable image") as err:
        data.load(root)
    assert str(err.value).startswith(f"{bad}: ")
    good = (root / FOLDERS[1] / "002.png").read_bytes()
    bad.write_bytes(good[:60])
    with pytest.raises(data.DataFormatError, match=re.escape(f"{bad}: not a readable image")):
        data.load(root)
    first = root / FOLDERS[0] / "000.png"  # the first image is read alone for the size: also named
    first.write_bytes(b"GIF89a broken")
    with pytest.raises(data.DataFormatError, match=re.escape(f"{first}: not a readable image")):
        data.load(root)


def test_layout_errors_say_what_is_expected(tmp_path, fashion):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(data.DataFormatError, match="no class sub-folders \\(it is empty\\)") as err:
        data.load(empty)
    assert "image_dataset_from_directory" in str(err.value) and f"{empty}/<class>/<image>" in str(err.value)
    loose = tmp_path / "loose"
    _write_pngs(loose, fashion["x_test"][:3])
    with pytest.raises(data.DataFormatError, match="3 image file\\(s\\) directly and no sub-folders; move each"):
        data.load(loose)
    split = tmp_path / "split"
    _small_folder(split / "train", fashion)
    _write_pngs(split / "test" / FOLDERS[0], fashion["x_test"][:2])
    _write_pngs(split / "test" / "Extra", fashion["x_test"][:2])
    with pytest.raises(data.DataFormatError, match=r"only in train/: \['Trouser'\], only in test/: \['Extra'\]"):
        data.load(split)
    shutil.rmtree(split / "test" / "Extra")
    (split / "test" / FOLDERS[1]).mkdir()  # an empty test class is fine
    assert len(data.load(split).x_test) == 2
    (split / "train" / "Nothing").mkdir()
    (split / "train" / "Nothing" / "notes.txt").write_text("no images here")
    with pytest.raises(data.DataFormatError, match=r"class folder\(s\) \['Nothing'\] hold no image files"):
        data.load(split)
    only_test = tmp_path / "only_test"
    _small_folder(only_test / "val", fashion)
    with pytest.raises(data.DataFormatError, match="has a val/ folder but no train/ folder"):
        data.load(only_test)
    with pytest.raises(data.DatasetNotFoundError, match="no such file or folder"):
        data.load(tmp_path / "missing")
    with pytest.raises(data.DataFormatError, match="test_fraction=0.2 of its 2 examples leaves"):
        data.load(_small_folder(tmp_path / "tiny", fashion, n=1))


def test_folder_in_the_data_directory_by_name(folder, per_class, monkeypatch):
    monkeypatch.setenv("TFKD_DATA_DIR", str(folder.parent))
    splits = data.load("fm", raw=True)
    assert splits.name == "fm" and splits.source.startswith(f"image folder {folder} ")
    np.testing.assert_array_equal(splits.x_test, _expected(per_class, "test")[0])
    with pytest.raises(ValueError, match="image_size=64: resizing and colour conversion apply to image folders"):
        data.load("mnist", image_size=64)


def test_folder_dataset_streams_what_load_gives(folder):
    loaded = data.load(folder)
    ds = data.folder_dataset(folder, subset="test", batch_size=32)
    assert ds.class_names == list(SORTED) and len(ds.file_paths) == 100
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds])
    assert xs[0].shape == (32, 28, 28, 1) and xs[0].dtype == np.float32
    np.testing.assert_array_equal(np.concatenate(xs), loaded.x_test)
    np.testing.assert_array_equal(np.concatenate(ys), loaded.y_test)
    order = lambda seed: np.concatenate([y.numpy() for _, y in data.folder_dataset(
        folder, subset="train", shuffle=True, seed=seed, image_size=(8, 8))])
    assert np.array_equal(order(3), order(3)) and not np.array_equal(order(3), loaded.y_train)
    assert sorted(order(3).tolist()) == sorted(loaded.y_train.tolist())
    with pytest.raises(ValueError, match="subset='val'"):
        data.folder_dataset(folder, subset="val")


# ------------------------------------------------------------------------------------------------ float features
@pytest.fixture(scope="module")
def cancer():
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer()
    order = np.random.default_rng(0).permutation(len(bunch.target))
    train, test = order[:455], order[455:]
    mean, std = bunch.data[train].mean(0), bunch.data[train].std(0)
    x = (bunch.data - mean) / std  # standardized: about half the values are negative
    return {"x_train": x[train], "y_train": bunch.target[train], "x_test": x[test], "y_test": bunch.target[test]}


def test_float_features_load_as_stored(tmp_path, cancer, capsys):
    stored = {k: (v.astype(np.float32) if k.startswith("x") else v) for k, v in cancer.items()}
    path = tmp_path / "breast_cancer.npz"
    np.savez(path, **stored)
    splits = data.load(str(path))
    assert splits.kind == "features" and splits.input_shape == (30,) and splits.num_classes == 2
    assert splits.x_train.dtype == np.float32 and splits.y_train.dtype == np.int64
    np.testing.assert_array_equal(splits.x_train, stored["x_train"])  # no /255, no channel axis: exactly as saved
    np.testing.assert_array_equal(splits.x_test, stored["x_test"])
    assert (splits.x_train < 0).mean() > 0.3
    lo = min(stored["x_train"].min(), stored["x_test"].min())
    hi = max(stored["x_train"].max(), stored["x_test"].max())
    assert splits.summary() == (f"breast_cancer: 455 train / 114 test, 30 features, 2 classes, float32 features "
                                f"(range [{lo:.4g}, {hi:.4g}]), from {path}")
    assert not splits.is_subset and splits.full_sizes is None and capsys.readouterr().out == ""
    by_name = data.load("breast_cancer", tmp_path)  # <name>.npz in the data directory, as for images
    np.testing.assert_array_equal(by_name.x_test, splits.x_test)
    assert by_name.kind == "features"
    small = data.subset(splits, n_train=100, n_test=40)
    assert small.kind == "features" and abs(np.bincount(small.y_train)[1] - 100 * stored["y_train"].mean()) < 1
    arrays, source = data.load_raw(path)
    assert arrays["x_train"].dtype == np.float32 and source == str(path)
    built = data.Splits(*stored.values(), name="cancer", num_classes=2, source="sklearn")  # N x F: features
    assert built.kind == "features" and "30 features, 2 classes, float32 features" in built.summary()
    with pytest.raises(ValueError, match="kind='tabular': expected 'images' or 'features'"):
        data.Splits(*stored.values(), name="cancer", num_classes=2, source="sklearn", kind="tabular")


def test_float64_features_relative_path_and_bad_arrays(tmp_path, cancer, monkeypatch):
    monkeypatch.delenv("TFKD_DATA_DIR", raising=False)  # CI gives a relative one, which the chdir would break
    monkeypatch.chdir(tmp_path)
    np.savez(tmp_path / "f64.npz", **cancer)
    splits = data.load("f64.npz")  # relative to the working directory
    np.testing.assert_array_equal(splits.x_train, cancer["x_train"].astype(np.float32))
    assert data.load("f64.npz", raw=True).x_train.dtype == np.float64  # raw: as stored
    assert splits.source == str(tmp_path / "f64.npz")
    bad = dict(cancer, x_train=cancer["x_train"].copy())
    bad["x_train"][3, 4] = np.nan
    np.savez(tmp_path / "nan.npz", **bad)
    with pytest.raises(data.DataFormatError, match="x_train holds 1 NaN or infinite value"):
        data.load("./nan.npz")
    images = np.zeros((4, 6, 6), np.float32)
    np.savez(tmp_path / "img.npz", x_train=images, y_train=np.zeros(4, int), x_test=images, y_test=np.zeros(4, int))
    with pytest.raises(data.DataFormatError, match="x_train has dtype float32, expected uint8") as err:
        data.load("img.npz")
    assert "flatten it to N x F float features" in str(err.value)
    np.savez(tmp_path / "mixed.npz", x_train=cancer["x_train"], y_train=cancer["y_train"],
             x_test=np.zeros((114, 5, 6), np.uint8), y_test=cancer["y_test"])
    with pytest.raises(data.DataFormatError, match="x_train holds features but x_test holds images"):
        data.load("mixed.npz")
    np.savez(tmp_path / "mnist.npz", **cancer)  # a file named for an image dataset must hold its images
    with pytest.raises(data.DataFormatError, match="but mnist is an image dataset"):
        data.load(tmp_path / "mnist.npz")
    with pytest.raises(data.DatasetNotFoundError, match="no such file or folder"):
        data.load("missing.npz")


# ------------------------------------------------------------------------------------------ tensorflow-datasets
def test_tfds_name_offline_fails_fast_and_says_how_to_fix(offline, monkeypatch):
    start = time.perf_counter()
    with pytest.raises(data.DatasetNotFoundError) as err:
        data.load("tfds:beans")
    assert time.perf_counter() - start < 2.0
    message = str(err.value)
    if importlib.util.find_spec("tensorflow_datasets") is not None:
        assert "'beans' is not prepared under" in message and "downloading is off" in message
        assert str(offline / "tfds") in message
    assert "tfds build beans --data_dir DIR" in message and "TFKD_DOWNLOAD=1" in message
    assert "data.load('tfds:beans', download=True)" in message
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)  # as if it were not installed
    start = time.perf_counter()
    with pytest.raises(data.DatasetNotFoundError, match="tensorflow-datasets is not installed") as err:
        data.load("tfds:beans", download=True)
    assert time.perf_counter() - start < 2.0 and "pip install tensorflow-datasets" in str(err.value)
    with pytest.raises(ValueError, match="expected tfds:NAME"):
        data.load("tfds:")


def test_tfds_any_image_dataset_with_mock_data(offline):
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=6):
        beans = data.load("tfds:beans", image_size=(32, 32), download=True)
        assert beans.x_train.shape == (6, 32, 32, 3) and beans.x_train.dtype == np.float32
        assert beans.class_names == ("angular_leaf_spot", "bean_rust", "healthy") and beans.num_classes == 3
        assert beans.name == "beans" and beans.source.startswith("tensorflow-datasets (beans under")
        assert "3 classes (angular_leaf_spot, bean_rust, healthy)" in beans.summary()
        with pytest.raises(data.DataFormatError, match=r"tfds:tf_flowers train example #1: image is .*image_size"):
            data.load("tfds:tf_flowers", download=True)  # its images differ in size
        flowers = data.load("tfds:tf_flowers", download=True, image_size=16, color_mode="grayscale", raw=True)
        assert flowers.x_train.shape == (6, 16, 16, 1) and flowers.x_train.dtype == np.uint8


def test_tfds_prepared_train_only_dataset_is_split(tmp_path, fashion, offline, monkeypatch):
    """A real prepared tfds folder of a dataset tfds has no code for, with only a train split, read offline."""
    tfds = pytest.importorskip("tensorflow_datasets")
    import tensorflow as tf

    if importlib.util.find_spec("importlib_resources") is None:  # tfds 4.9.10 needs it to prepare (see test_data)
        monkeypatch.setitem(sys.modules, "importlib_resources", importlib.import_module("importlib.resources"))
    take = np.concatenate([np.flatnonzero(fashion["y_train"] == c)[:10] for c in range(10)])
    x, y = fashion["x_train"][take], fashion["y_train"][take].astype(np.int64)
    root = tmp_path / "prepared"
    tfds.dataset_builders.store_as_tfds_dataset(
        name="tiny_fashion", version="1.0.0", data_dir=str(root),
        features=tfds.features.FeaturesDict({"image": tfds.features.Image(shape=(28, 28, 1)),
                                             "label": tfds.features.ClassLabel(names=FOLDERS)}),
        split_datasets={"train": tf.data.Dataset.from_tensor_slices({"image": x[..., None], "label": y})})
    splits = data.load("tfds:tiny_fashion", tfds_dir=root, raw=True)  # downloading is off (offline fixture)
    assert splits.class_names == tuple(FOLDERS) and splits.num_classes == 10
    assert len(splits.x_train) == 80 and np.bincount(splits.y_test).tolist() == [2] * 10
    assert splits.source == f"tensorflow-datasets (tiny_fashion under {root}, train split 80/20, seed 0)"
    got = sorted(_sha(a[..., 0]) + str(b) for a, b in zip(np.concatenate([splits.x_train, splits.x_test]),
                                                          np.concatenate([splits.y_train, splits.y_test])))
    assert got == sorted(_sha(a) + str(b) for a, b in zip(x, y))  # every real image once, with its label
