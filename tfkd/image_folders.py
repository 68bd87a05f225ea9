"""Image folders, the ``FOLDER/<class>/<image>`` trees of Keras's ``image_dataset_from_directory``: arrays or a stream.

:func:`tfkd.data.load` reads a folder here into uint8 arrays (``data.load("photos/flowers", image_size=(64, 64))``);
:func:`folder_dataset` streams one too big for memory as a ``tf.data.Dataset``. Both index the folder the same way
(``FOLDER/<class>/...`` split by a seeded stratified ``test_fraction``, or ``FOLDER/train/<class>/...`` beside
``test/``, ``val/`` or ``validation/``) and decode, convert and resize images with the same TensorFlow ops, which
tensorflow-datasets reuses (:mod:`tfkd.tfds_source`). A module of its own so that :mod:`tfkd.data` keeps to where a
dataset comes from; use it through ``tfkd.data``, which re-exports :func:`folder_dataset`. It imports ``tfkd.data``
(errors, :class:`~tfkd.data.Splits`, argument checks); ``tfkd.data`` imports it only when a folder is read, and
TensorFlow is imported only when an image is.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import re

import numpy as np

from tfkd.data import (IMAGE_EXTENSIONS, TEST_FOLDERS, DataFormatError, DatasetNotFoundError, Splits, abbreviate_names,
                       _color_mode_arg, _finish, _image_size_arg, _split_args, _split_text, _train_test_indices,
                       _validate)

_DECODE_CHUNK = 256  # images decoded per tf.data batch before they are copied into the uint8 array

@dataclasses.dataclass(frozen=True)
class _FolderIndex:
    """The files of an image folder: class names, (paths, labels) of each split, and how the split was made."""

    classes: tuple
    train: tuple  # (list of paths, int64 labels)
    test: tuple
    how: str  # "train/ + test/" or "split 80/20, seed 0"


def _layout_help(folder) -> str:
    exts = ", ".join(e[1:] for e in IMAGE_EXTENSIONS)
    return (f"Expected the layout of keras.utils.image_dataset_from_directory: one sub-folder per class holding its "
            f"images ({exts}), either {folder}/<class>/<image> (e.g. {folder}/cat/001.png and {folder}/dog/002.jpg; "
            f"split into train and test by test_fraction) or {folder}/train/<class>/... with "
            f"{folder}/test/<class>/... (or val/ or validation/).")


def _subfolders(folder) -> list[str]:
    with os.scandir(folder) as entries:
        return sorted(e.name for e in entries if not e.name.startswith(".") and e.is_dir())


def _is_image_name(name: str) -> bool:
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def _images_under(folder) -> list[str]:
    """Image files under ``folder`` (recursively, hidden entries skipped), sorted by their relative path."""
    found = []
    for parent, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found += [os.path.join(parent, f) for f in files if _is_image_name(f)]
    return sorted(found, key=lambda p: pathlib.PurePath(os.path.relpath(p, folder)).parts)


def _class_files(folder: pathlib.Path, top: pathlib.Path) -> tuple[list, dict]:
    classes = _subfolders(folder)
    if not classes:
        entries = [e for e in os.listdir(folder) if not e.startswith(".")]
        images = [e for e in entries if _is_image_name(e)]
        if not entries:
            found = "it is empty"
        elif images:
            found = (f"it holds {len(images)} image file(s) directly and no sub-folders; move each image into a "
                     f"sub-folder named for its class")
        else:
            found = f"it holds {len(entries)} file(s) and no sub-folders"
        raise DataFormatError(f"image folder {folder}: no class sub-folders ({found}). {_layout_help(top)}")
    return classes, {c: _images_under(folder / c) for c in classes}


def _index_image_folder(folder: pathlib.Path, test_fraction: float, split_seed: int) -> _FolderIndex:
    """Classes and files of an image folder, in either layout, checked; the single-folder layout split."""
    if not folder.is_dir():
        raise DatasetNotFoundError(f"image folder {folder}: no such folder. {_layout_help(folder)}")
    lower = {s.lower(): s for s in _subfolders(folder)}
    train_dir = lower.get("train")
    test_dir = next((lower[t] for t in TEST_FOLDERS if t in lower), None)
    if train_dir is None and test_dir is not None:
        raise DataFormatError(f"image folder {folder}: has a {test_dir}/ folder but no train/ folder beside it. "
                              f"{_layout_help(folder)}")
    base = folder / train_dir if train_dir else folder
    classes, files = _class_files(base, folder)
    empty = [c for c in classes if not files[c]]
    exts = ", ".join(IMAGE_EXTENSIONS)
    if len(empty) == len(classes):
        raise DataFormatError(f"image folder {base}: its class folders ({abbreviate_names(classes)}) hold no image "
                              f"files (names ending in {exts}). {_layout_help(folder)}")
    if empty:
        raise DataFormatError(f"image folder {base}: class folder(s) {empty} hold no image files ({exts}); every "
                              f"class needs training images: add some, or remove the folder(s).")
    paths = [p for c in classes for p in files[c]]
    labels = np.repeat(np.arange(len(classes), dtype=np.int64), [len(files[c]) for c in classes])
    if test_dir is not None:
        test_classes, test_files = _class_files(folder / test_dir, folder)
        if test_classes != classes:
            only_train = sorted(set(classes) - set(test_classes))
            only_test = sorted(set(test_classes) - set(classes))
            raise DataFormatError(
                f"image folder {folder}: the class folders of {test_dir}/ differ from those of {train_dir}/: only in "
                f"{train_dir}/: {only_train}, only in {test_dir}/: {only_test}. Both must hold the same class "
                f"sub-folders (class ids follow their sorted names); an empty folder is fine for a class without "
                f"test images.")
        test_paths = [p for c in classes for p in test_files[c]]
        test_labels = np.repeat(np.arange(len(classes), dtype=np.int64), [len(test_files[c]) for c in classes])
        return _FolderIndex(tuple(classes), (paths, labels), (test_paths, test_labels), f"{train_dir}/ + {test_dir}/")
    train, test = _train_test_indices(labels, test_fraction, split_seed, f"image folder {base}")
    how = (f"{train_dir}/ " if train_dir else "") + _split_text(test_fraction, split_seed)
    return _FolderIndex(tuple(classes), ([paths[i] for i in train], labels[train]),
                        ([paths[i] for i in test], labels[test]), how)


def _image_ops(channels: int, size: tuple):
    """TensorFlow functions ``decode(path)`` and ``fit(image)``, each giving ``(uint8 H x W x channels, (h, w))``.

    ``(h, w)`` is the size before resizing. Channels: grey is repeated into RGB, alpha dropped or added opaque,
    RGB made grey by ITU-R 601-2 luma (PIL's ``convert("L")`` weights), rounded. An image of another size than
    ``size`` is resized bilinearly (as Keras's ``image_dataset_from_directory``), then rounded and clipped to
    uint8; one of that size is left exactly as decoded.
    """
    import tensorflow as tf

    luma = tf.constant([0.299, 0.587, 0.114], tf.float32)

    def to_uint8(x):
        return tf.cast(tf.clip_by_value(tf.round(x), 0.0, 255.0), tf.uint8)

    def convert(image):
        k = tf.shape(image)[-1]
        rgb = tf.cond(k >= 3, lambda: image[..., :3], lambda: tf.tile(image[..., :1], [1, 1, 3]))
        if channels == 3:
            return rgb
        if channels == 1:
            grey = lambda: to_uint8(tf.reduce_sum(tf.cast(rgb, tf.float32) * luma, axis=-1, keepdims=True))
            return tf.cond(k >= 3, grey, lambda: image[..., :1])
        opaque = lambda: tf.fill(tf.concat([tf.shape(image)[:2], [1]], 0), tf.constant(255, tf.uint8))
        alpha = tf.cond(tf.equal(k % 2, 0), lambda: image[..., -1:], opaque)  # grey + alpha, or RGBA
        return tf.concat([rgb, alpha], -1)

    def fit(image):
        hw = tf.shape(image)[:2]
        image = convert(image)
        same = tf.reduce_all(tf.equal(hw, size))
        # bilinear without antialiasing, as keras.utils.image_dataset_from_directory resizes: a teacher trained on
        # Keras's pipeline is then fed the pixels it learned from (up to the rounding to uint8)
        resized = lambda: to_uint8(tf.image.resize(tf.cast(image, tf.float32), size, method="bilinear"))
        return tf.ensure_shape(tf.cond(same, lambda: image, resized), (*size, channels)), hw

    def decode(path):
        return fit(tf.io.decode_image(tf.io.read_file(path), channels=0, dtype=tf.uint8, expand_animations=False))

    return decode, fit


def _tf_message(err) -> str:
    text = getattr(err, "message", None) or str(err)
    text = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", text.splitlines()[0] if text else "")
    return re.sub(r"\s*\[Op:\w+\]|\s*name:\s*$", "", text).strip()


def _unreadable(path, err) -> DataFormatError:
    return DataFormatError(f"{path}: not a readable image ({_tf_message(err)}); replace or remove the file (image "
                           f"folders are read as {', '.join(e[1:] for e in IMAGE_EXTENSIONS)} files).")


def _peek_image(path) -> tuple:
    """``(height, width, channels)`` of one image file as TensorFlow decodes it."""
    import tensorflow as tf

    try:
        image = tf.io.decode_image(tf.io.read_file(path), channels=0, dtype=tf.uint8, expand_animations=False)
    except tf.errors.OpError as err:
        raise _unreadable(path, err) from None
    return tuple(int(d) for d in image.shape)


def _size_error(what, hw, first, size) -> DataFormatError:
    return DataFormatError(
        f"{what}: image is {int(hw[0])}x{int(hw[1])} (height x width) but the first image, {first}, is "
        f"{size[0]}x{size[1]}; without image_size every image must have the first one's size. Pass "
        f"image_size=(H, W) (--image-size H,W on tfkd run) to resize every image to one size.")


def _decode_files(paths: list, size: tuple, channels: int, *, strict: bool, first) -> np.ndarray:
    """uint8 ``N x H x W x channels`` array of image files, decoded in a parallel tf.data map chunk by chunk.

    Each chunk is copied into one preallocated array, so memory holds the uint8 images and one chunk, never a
    float copy or a list of every image. ``strict``: an image of another size than ``size`` is an error.
    """
    import tensorflow as tf

    out = np.empty((len(paths), *size, channels), np.uint8)
    if not paths:
        return out
    decode, _ = _image_ops(channels, size)
    ds = tf.data.Dataset.from_tensor_slices(list(paths))
    ds = ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).batch(_DECODE_CHUNK).prefetch(1)
    iterator, start = iter(ds), 0
    while True:
        try:
            images, shapes = next(iterator)
        except StopIteration:
            break
        except tf.errors.OpError as err:  # find the file: decode the chunk's files one by one
            for path in paths[start:start + _DECODE_CHUNK]:
                try:
                    decode(path)
                except tf.errors.OpError as one:
                    raise _unreadable(path, one) from None
            raise DataFormatError(f"decoding the images {paths[start]} ... failed: {_tf_message(err)}") from None
        n = int(images.shape[0])
        out[start:start + n] = images.numpy()
        if strict:
            shapes = shapes.numpy()
            wrong = np.flatnonzero(np.any(shapes != np.asarray(size), axis=1))
            if wrong.size:
                raise _size_error(paths[start + int(wrong[0])], shapes[wrong[0]], first, size)
        start += n
    return out


def _load_image_folder(folder, *, raw, image_size, channels, test_fraction, split_seed) -> Splits:
    folder = pathlib.Path(os.path.abspath(pathlib.Path(folder).expanduser()))
    index = _index_image_folder(folder, test_fraction, split_seed)
    (train_paths, y_train), (test_paths, y_test) = index.train, index.test
    first = train_paths[0]
    h, w, k = _peek_image(first)
    size = image_size or (h, w)
    channels = channels or (1 if k <= 2 else k)
    options = dict(strict=image_size is None, first=first)
    arrays = {"x_train": _decode_files(train_paths, size, channels, **options), "y_train": y_train,
              "x_test": _decode_files(test_paths, size, channels, **options), "y_test": y_test}
    where = f"image folder {folder}"
    arrays = _validate(arrays, where, None)
    return _finish(arrays, name=folder.name or str(folder), source=f"{where} ({index.how})",
                   num_classes=len(index.classes), class_names=index.classes, raw=raw)


def folder_dataset(path, image_size=None, color_mode=None, *, subset: str | None = None, batch_size: int = 64,
                   shuffle: bool = False, seed: int = 0, test_fraction: float = 0.2, split_seed: int = 0):
    """A streaming ``tf.data.Dataset`` of ``(images, labels)`` batches from an image folder too big for memory.

    The folder layout, classes, split (``subset="train"`` or ``"test"``; None: every image), decoding, colour
    mode and resizing are those of :func:`load`, but images are read from disk as they are consumed. Batches are
    float32 in [0, 1], N x H x W x C (what ``load`` gives, so a model trained on one takes the other; Keras's
    ``image_dataset_from_directory`` gives 0..255), with int64 labels. The dataset carries ``class_names`` and
    ``file_paths``, as Keras's does. ``shuffle`` reshuffles the files every epoch from ``seed``. Without
    ``image_size`` every image must have the first image's size; one that differs stops the iteration with an
    InvalidArgumentError naming the file, and an unreadable file stops it with TensorFlow's decode error
    (``load`` names that file; run it once on a sample to check a new folder).

    Example:

        import pathlib, tensorflow as tf
        for i, (image, label) in enumerate(zip(x_train[:100], y_train[:100])):   # a PNG folder: digits/<class>/
            (pathlib.Path("digits") / str(label)).mkdir(parents=True, exist_ok=True)
            tf.io.write_file(f"digits/{label}/{i}.png", tf.io.encode_png((image * 255).round().astype("uint8")))
        train = data.folder_dataset("digits", subset="train", shuffle=True)   # 80 % of each class, streamed
        test = data.folder_dataset("digits", subset="test")
        student.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        student.fit(train, validation_data=test, epochs=1, verbose=0)
        train.class_names      # ['0', '1', ..., '9']
    """
    import tensorflow as tf

    size = _image_size_arg(image_size)
    channels = _color_mode_arg(color_mode)
    test_fraction, split_seed = _split_args(test_fraction, split_seed)
    if subset not in (None, "train", "test"):
        raise ValueError(f"subset={subset!r}: expected 'train', 'test', or None for every image of the folder.")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r}: expected a positive integer.")
    folder = pathlib.Path(os.path.abspath(pathlib.Path(path).expanduser()))
    index = _index_image_folder(folder, test_fraction, split_seed)
    parts = [index.train, index.test] if subset is None else [index.train if subset == "train" else index.test]
    paths = [p for ps, _ in parts for p in ps]
    labels = np.concatenate([y for _, y in parts]).astype(np.int64)
    if not paths:
        raise DataFormatError(f"image folder {folder}: the {subset} split holds no images ({index.how}).")
    first = index.train[0][0]
    h, w, k = _peek_image(first)
    target = size or (h, w)
    channels = channels or (1 if k <= 2 else k)
    decode, _ = _image_ops(channels, target)
    message = (f"an image is not {target[0]}x{target[1]}, the size of the first image ({first}); pass "
               f"image_size=(H, W) to resize every image to one size. The file and its (height, width):")

    def read(file, label):
        image, hw = decode(file)
        if size is None:
            check = tf.debugging.Assert(tf.reduce_all(tf.equal(hw, target)), [message, file, hw])
            with tf.control_dependencies([check]):
                image = tf.identity(image)
        return tf.cast(image, tf.float32) / 255.0, label

    ds = tf.data.Dataset.from_tensor_slices((paths, labels))
    if shuffle:
        ds = ds.shuffle(len(paths), seed=int(seed), reshuffle_each_iteration=True)
    ds = ds.map(read, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.batch(int(batch_size)).prefetch(tf.data.AUTOTUNE)
    ds.class_names = list(index.classes)
    ds.file_paths = paths
    return ds
