"""A user's own data and models, end to end: an image folder and a ``.keras`` teacher with ``Rescaling(1/255)``
inside, a ``keras.applications`` student, a validated int8 ``.tflite`` on the folder's own pixels; a tabular
``.npz``; a ``tf.data`` pipeline through the logits cache."""

import json
import os
import re
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfkd import data

PER_CLASS = {"train": 120, "test": 40}
STUDENT = "keras.applications:MobileNetV3Small,minimalistic=True,bn_momentum=0.9"
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")


def _run(*args, timeout=900):
    return subprocess.run([sys.executable, "-m", "tfkd.recipes.runner", *map(str, args)], capture_output=True,
                          text=True, env=ENV, timeout=timeout)


@pytest.fixture(scope="module")
def folder(tmp_path_factory, data_dir):
    """A PNG folder (train/ and test/, one sub-folder a class) of real Fashion-MNIST images, written here."""
    raw, _ = data.load_raw("fashion_mnist", data_dir)
    names = data.DATASETS["fashion_mnist"].class_names
    root = tmp_path_factory.mktemp("photos")
    for split, per_class in PER_CLASS.items():
        x, y = raw[f"x_{split}"], raw[f"y_{split}"]
        for c, name in enumerate(names):
            sub = root / split / re.sub(r"[^A-Za-z0-9]+", "_", name)
            sub.mkdir(parents=True)
            for i in np.flatnonzero(y == c)[:per_class]:
                tf.io.write_file(str(sub / f"{i:05d}.png"), tf.io.encode_png(x[i][..., None]))
    return root


@pytest.fixture(scope="module")
def teacher_file(folder, tmp_path_factory):
    """A teacher trained the usual Keras way on the folder: [0, 255] pixels, ``Rescaling(1/255)`` inside."""
    (x, y), _ = data.load(str(folder), image_size=(32, 32))
    keras.utils.set_random_seed(0)
    teacher = keras.Sequential([
        keras.Input((32, 32, 1)), keras.layers.Rescaling(1 / 255),
        keras.layers.Conv2D(32, 3, activation="relu"), keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(64, 3, activation="relu"), keras.layers.MaxPooling2D(),
        keras.layers.Flatten(), keras.layers.Dense(10)])
    teacher.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    teacher.fit(x * 255, y, epochs=8, batch_size=32, verbose=0)
    path = tmp_path_factory.mktemp("teacher") / "teacher.keras"
    teacher.save(path)
    return path


# 24 epochs: a briefly trained student has many near-ties between its top two classes, which int8 noise flips
# (12 epochs: 94.5-96.5 % agreement over runs and calibration seeds; 24: 98-99.5 %)
def _compress(folder, teacher, out, *extra):
    return _run("compress", "--dataset", folder, "--image-size", "32,32", "--teacher", teacher, "--student", STUDENT,
                "--methods", "kd", "--no-function-matching", "--epochs", "24", "--batch-size", "32",
                "--quantize", "int8", "--out", out, *extra)


def test_image_folder_and_rescaling_teacher_to_a_validated_int8_tflite(folder, teacher_file, tmp_path):
    out = tmp_path / "run"
    run = _compress(folder, teacher_file, out, "--input-scale", "255")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert re.search(r"data: photos\d* from image folder .*: 1080 train / 120 validation .* / 400 test, input "
                     r"\(32, 32, 1\), pixels in \[0, 255\]", run.stdout), run.stdout
    report = json.loads((out / "report.json").read_text())
    teacher = report["results"]["teacher"]
    assert teacher["accuracy"] > 0.6, teacher  # 10 classes: chance is 0.1
    export = report["results"]["export"]
    row = next(r for r in export["formats"] if r["format"] == "tflite int8")
    assert row["input"]["range"] == [0.0, 255.0] and row["input"]["tensor_dtype"] == "int8", row
    assert row["input"]["scale"] == pytest.approx(1.0, rel=0.02), row  # [0, 255] in 256 int8 steps
    report_md = (out / "report.md").read_text()
    assert "[0, 255]" in report_md and "zero point" in report_md

    # The .tflite in ai_edge_litert on the raw folder pixels, against the Keras student on the same pixels.
    from ai_edge_litert.interpreter import Interpreter

    (_, _), (x_raw, y_test) = data.load(str(folder), image_size=(32, 32), raw=True)
    x_pixels = x_raw.reshape(*x_raw.shape[:3], 1).astype("float32")  # 0..255, as the folder holds them
    student = keras.saving.load_model(out / "models" / f"{export['model']}.keras")
    keras_pred = student.predict(x_pixels, verbose=0).argmax(-1)
    interpreter = Interpreter(model_path=str(out / row["path"]))
    interpreter.allocate_tensors()
    (inp,), (outp,) = interpreter.get_input_details(), interpreter.get_output_details()
    scale, zero = inp["quantization"]
    tflite_pred = []
    for image in x_pixels:
        interpreter.set_tensor(inp["index"], np.round(image[None] / scale + zero).clip(-128, 127).astype(np.int8))
        interpreter.invoke()
        tflite_pred.append(interpreter.get_tensor(outp["index"])[0].argmax())
    agreement = float(np.mean(np.asarray(tflite_pred) == keras_pred))
    assert agreement >= 0.95, agreement
    assert np.mean(keras_pred == y_test) > 0.3  # the student learned something: agreement is not one class twice


def test_the_same_run_with_the_scale_wrong_stops_before_distilling(folder, teacher_file, tmp_path):
    out = tmp_path / "wrong"
    run = _compress(folder, teacher_file, out)  # --input-scale unit: [0, 1] pixels into Rescaling(1/255)
    assert run.returncode == 2, run.stdout[-3000:] + run.stderr[-3000:]
    assert "TeacherCheckError" in run.stderr and "--input-scale 255" in run.stderr
    assert not list((out / "models").glob("*seed0.keras")) if (out / "models").exists() else True


@pytest.fixture(scope="module")
def tabular(tmp_path_factory):
    """sklearn's breast-cancer features, standardized with the training split's statistics, saved as a .npz."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    x, y = load_breast_cancer(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, stratify=y, random_state=0)
    mean, std = x_train.mean(0), x_train.std(0)
    path = tmp_path_factory.mktemp("tabular") / "cancer.npz"
    np.savez(path, x_train=((x_train - mean) / std).astype("float32"), y_train=y_train,
             x_test=((x_test - mean) / std).astype("float32"), y_test=y_test)
    return path


def test_a_tabular_npz_distils_and_exports(tabular, tmp_path):
    out = tmp_path / "run"
    run = _run("compress", "--dataset", tabular, "--teacher", "mlp:64-32", "--student", "mlp:8", "--methods", "kd",
               "--no-function-matching", "--teacher-epochs", "30", "--epochs", "30", "--quantize", "int8",
               "--out", out)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "30 features" in run.stdout and "as stored" in run.stdout
    report = json.loads((out / "report.json").read_text())
    assert report["results"]["teacher"]["accuracy"] > 0.9
    rows = {r["format"]: r for r in report["results"]["export"]["formats"]}
    assert rows["tflite int8"]["agreement"] >= 0.95 and rows["tflite int8"]["input"]["range"][0] < 0
    refused = _run("compress", "--dataset", tabular, "--input-scale", "255", "--out", tmp_path / "refused")
    assert refused.returncode == 2 and "fed as stored" in refused.stderr


def test_a_tf_data_pipeline_goes_through_the_logits_cache(data_dir, tmp_path):
    import warnings

    import tfkd
    from tfkd import models, training

    (x, y), _ = data.subset(data.load("fashion_mnist", data_dir), n_train=512, n_test=64, seed=0)
    teacher = models.build("plain_cnn:2", x.shape[1:], 10, seed=0)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(100)  # 512 = 5 full batches and one of 12
    cache = tfkd.cache_teacher_logits(teacher, ds)
    direct = tfkd.cache_teacher_logits(teacher, x)
    assert cache.num_examples == 512 and cache.source_fingerprint == direct.source_fingerprint
    np.testing.assert_allclose(cache.logits, direct.logits, atol=1e-5)
    paired = cache.pair(ds)
    features, labels = next(iter(paired.skip(5)))
    np.testing.assert_allclose(features["teacher_logits"].numpy(), direct.logits[500:], atol=1e-5)
    np.testing.assert_array_equal(labels.numpy(), y[500:])
    distiller = tfkd.Distiller(None, models.build("plain_cnn:2", x.shape[1:], 10, seed=1))
    distiller.compile(optimizer="adam")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = training.fit(distiller, paired.shuffle(8, seed=0), epochs=2, checkpoint_dir=tmp_path / "ckpt",
                               verbose=0)
    assert history["kd_loss"][1] < history["kd_loss"][0]
    assert not [w for w in caught if "shuffle" in str(w.message)]  # a pipeline is not told to shuffle again
    with pytest.raises(ValueError, match="not the same inputs in the same order"):
        cache.pair(tf.data.Dataset.from_tensor_slices((x, y)).shuffle(512, seed=1).batch(100))
