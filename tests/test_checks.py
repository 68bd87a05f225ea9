"""The teacher check: a teacher fed the wrong input scale, or at chance, stops before any distillation."""

import keras
import numpy as np
import pytest

from tfkd import checks, data, models


@pytest.fixture(scope="module")
def digits_teacher_255(data_dir):
    """A real-digits teacher with Rescaling(1/255) inside: trained on [0, 255] pixels, as a Keras user would."""
    (x, y), (xt, yt) = data.load("digits")
    keras.utils.set_random_seed(0)
    core = models.build("mlp:64", x.shape[1:], 10, seed=0)
    inputs = keras.Input(x.shape[1:])
    teacher = keras.Model(inputs, core(keras.layers.Rescaling(1 / 255)(inputs)))
    teacher.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    teacher.fit(x * 255, y, epochs=20, verbose=0)
    return teacher, xt, yt


def test_a_teacher_fed_unit_images_but_trained_on_255_is_stopped_with_the_fix(digits_teacher_255):
    teacher, xt, yt = digits_teacher_255
    with pytest.raises(checks.TeacherCheckError, match=r"in \[0, 1\] but 0\.9\d+ on the same images in \[0, 255\].*"
                                                       r"--input-scale 255"):
        checks.check_teacher(teacher, xt, yt, num_classes=10)
    report = checks.check_teacher(teacher, xt * 255, yt, num_classes=10, input_scale="255")
    assert report["val_accuracy"] > 0.9 and report["other_scale"] == "unit"
    assert report["other_scale_val_accuracy"] < report["val_accuracy"] - 0.1


def test_a_teacher_at_chance_is_stopped_unless_allowed():
    rng = np.random.default_rng(0)
    x = rng.random((300, 6)).astype("float32")
    y = rng.integers(0, 3, 300)
    teacher = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3, kernel_initializer="zeros")])
    with pytest.raises(checks.TeacherCheckError, match="at chance .*--allow-weak-teacher"):
        checks.check_teacher(teacher, x, y, num_classes=3)
    report = checks.check_teacher(teacher, x, y, num_classes=3, allow_weak=True)
    assert report["val_accuracy"] == pytest.approx(np.mean(y == 0)) and report["chance"] >= 1 / 3
    with pytest.raises(ValueError, match="input_scale='bytes'"):
        checks.check_teacher(teacher, x, y, num_classes=3, input_scale="bytes")


def test_tfkd_run_stops_a_teacher_fed_the_wrong_scale_and_runs_with_input_scale_255(digits_teacher_255, tmp_path,
                                                                                    data_dir):
    """The silent failure of a ``Rescaling(1/255)`` teacher fed [0, 1] images: ``tfkd run compress --teacher t.keras``
    now stops before distilling (exit 2, one line with the fix), and ``--input-scale 255`` feeds it what it expects."""
    import json
    import os
    import subprocess
    import sys

    teacher, _, _ = digits_teacher_255
    path = tmp_path / "t.keras"
    teacher.save(path)
    common = ["compress", "--teacher", str(path), "--epochs", "2", "--methods", "kd", "--no-function-matching",
              "--no-export", "--data-dir", str(data_dir)]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")

    def run(*extra):
        return subprocess.run([sys.executable, "-m", "tfkd.recipes.runner", *common, *extra], capture_output=True,
                              text=True, env=env, timeout=600)

    wrong = run("--out", str(tmp_path / "wrong"))
    assert wrong.returncode == 2, wrong.stdout[-2000:] + wrong.stderr[-2000:]
    assert "TeacherCheckError" in wrong.stderr and "--input-scale 255" in wrong.stderr
    assert not (tmp_path / "wrong" / "models" / "kd_seed0.keras").exists()  # nothing was distilled
    right = run("--out", str(tmp_path / "right"), "--input-scale", "255")
    assert right.returncode == 0, right.stdout[-2000:] + right.stderr[-2000:]
    report = json.loads((tmp_path / "right" / "report.json").read_text())
    assert report["results"]["teacher"]["accuracy"] > 0.9
    assert "in [0, 255]" in right.stdout
