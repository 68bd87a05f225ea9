"""A cheaper live teacher: a reduced-precision teacher agrees with float32 on real data, and the Distiller uses it."""

import keras
import numpy as np
import pytest

import tfkd
from tfkd import data, models, precision


@pytest.fixture(scope="module")
def fmnist_teacher(data_dir):
    """A plain_cnn:4 teacher trained 2 epochs on 4000 real Fashion-MNIST images (90 s budget), and test images."""
    splits = data.subset(data.load("fashion_mnist", data_dir=data_dir), n_train=4000, n_test=1000, seed=0)
    keras.utils.set_random_seed(0)
    teacher = models.build("plain_cnn:4", splits.x_train.shape[1:], 10, seed=0)
    teacher.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    teacher.fit(splits.x_train, splits.y_train, epochs=2, batch_size=64, verbose=0)
    return teacher, splits


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_reduced_precision_teacher_agrees_with_float32_on_real_data(fmnist_teacher, dtype):
    teacher, splits = fmnist_teacher
    fast = precision.reduced_precision_copy(teacher, dtype)
    assert all(layer.dtype_policy.name == f"mixed_{dtype}" for layer in fast.layers if layer.weights)
    assert all(v.dtype == "float32" for v in fast.weights)  # variables stay float32
    agree = precision.agreement(teacher, fast, splits.x_test)
    # bfloat16 keeps 8 bits of mantissa, float16 11. Measured here (1000 test images): top-1 agreement 0.997 and
    # 1.000, largest logit difference 0.039 and 0.0044.
    assert agree["top1_agreement"] >= {"bfloat16": 0.98, "float16": 0.995}[dtype], agree
    assert agree["max_abs_logit_diff"] < {"bfloat16": 0.5, "float16": 0.05}[dtype], agree
    accuracy = lambda m: np.mean(precision._logits(m, splits.x_test).argmax(-1) == splits.y_test)
    assert abs(accuracy(fast) - accuracy(teacher)) <= 0.01


def test_distiller_trains_from_the_reduced_copy_and_losses_stay_float32(fmnist_teacher):
    teacher, splits = fmnist_teacher
    x, y = splits.x_train[:256], splits.y_train[:256]
    student = models.build("plain_cnn:2", x.shape[1:], 10, seed=1)
    d = tfkd.Distiller(teacher, student, temperature=4.0, alpha=0.5, teacher_dtype="bfloat16")
    assert d._forward_teacher is not teacher
    assert d._forward_teacher.get_layer("conv1").dtype_policy.name == "mixed_bfloat16"
    d.compile(optimizer="adam", metrics=["accuracy"])
    h = d.fit(x, y, epochs=1, batch_size=64, verbose=0).history
    assert np.isfinite(h["kd_loss"][0]) and h["kd_loss"][0] > 0
    # the teacher itself is untouched: float32, frozen weights equal to the copy's
    assert teacher.get_layer("conv1").dtype_policy.name == "float32"
    for a, b in zip(teacher.get_weights(), d._forward_teacher.get_weights()):
        np.testing.assert_array_equal(a, b)
    # soft loss from the bf16 teacher is close to the float32 teacher's on the same student
    ref = tfkd.Distiller(teacher, student, temperature=4.0, alpha=0.5)
    ref.compile(optimizer="adam")
    fast = tfkd.Distiller(teacher, student, temperature=4.0, alpha=0.5, teacher_dtype="bfloat16")
    fast.compile(optimizer="adam")
    a = ref.evaluate(x, y, verbose=0, return_dict=True)["kd_loss"]
    b = fast.evaluate(x, y, verbose=0, return_dict=True)["kd_loss"]
    assert abs(a - b) < 0.05 * a, (a, b)
    assert fast.get_config()["teacher_dtype"] == "bfloat16"


def test_auto_measures_and_records_its_choice(fmnist_teacher):
    teacher, splits = fmnist_teacher
    x, y = splits.x_train[:256], splits.y_train[:256]
    d = tfkd.Distiller(teacher, models.build("plain_cnn:2", x.shape[1:], 10, seed=1), teacher_dtype="auto")
    d.compile(optimizer="adam")
    d.fit(x, y, epochs=1, batch_size=64, verbose=0)
    report = d.teacher_precision_report
    assert report["chosen"] == d.teacher_dtype in ("float32", "bfloat16")
    cand = report["candidates"]["bfloat16"]
    assert cand["speedup"] > 0 and 0 <= cand["top1_agreement"] <= 1
    assert cand["accepted"] == (cand["speedup"] >= precision.MIN_SPEEDUP
                                and cand["top1_agreement"] >= precision.MIN_AGREEMENT)


def test_bad_teacher_dtype_is_a_clear_error():
    t, s = models.build("mlp:8", (4,), 3, seed=0), models.build("mlp:4", (4,), 3, seed=1)
    with pytest.raises(ValueError, match=r"teacher_dtype='int8' is not supported; expected one of float32"):
        tfkd.Distiller(t, s, teacher_dtype="int8")
    with pytest.raises(ValueError, match="needs one live teacher"):
        tfkd.Distiller(None, s, teacher_dtype="bfloat16")

    class Sub(keras.Model):
        def __init__(self):
            super().__init__()
            self.d = keras.layers.Dense(3)

        def call(self, x):
            return self.d(x)

    sub = Sub()
    sub(np.zeros((1, 4), "float32"))
    with pytest.raises(ValueError, match="needs a Functional or Sequential teacher"):
        tfkd.Distiller(sub, s, teacher_dtype="bfloat16")
