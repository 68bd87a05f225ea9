"""``keras.applications:NAME`` specs: logits for the data's classes, offline weights, BatchNorm momentum."""

import warnings

import keras
import numpy as np
import pytest

from tfkd import applications, models

SPEC = "keras.applications:MobileNetV3Small,minimalistic=True,alpha=0.75"


def test_a_spec_builds_an_untrained_logits_model_for_the_data():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = models.build(SPEC, (32, 32, 1), 7)
    assert model.output_shape == (None, 7) and model.input_shape == (None, 32, 32, 1)
    assert model.layers[-1].get_config().get("activation", "linear") == "linear"  # logits, not a softmax
    assert any("momentum 0.999" in str(w.message) and "bn_momentum=0.9" in str(w.message) for w in caught)
    logits = model.predict(np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 1)).astype("float32"), verbose=0)
    assert not np.allclose(logits.sum(-1), 1.0)
    assert applications.expects_255(SPEC) and not applications.expects_255("keras.applications:ResNet50")
    assert not applications.expects_255(SPEC + ",include_preprocessing=False")


def test_bn_momentum_and_a_local_weights_file(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no slow-BatchNorm warning once the momentum is set
        model = models.build(SPEC + ",bn_momentum=0.9", (32, 32, 1), 7, seed=3)
    momenta = {layer.momentum for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)}
    assert momenta == {0.9}
    path = tmp_path / "mine.weights.h5"
    model.save_weights(path)
    other = models.build(f"{SPEC},bn_momentum=0.9,weights={path}", (32, 32, 1), 7, seed=4)
    for a, b in zip(model.get_weights(), other.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_bad_specs_are_refused_with_what_was_expected():
    with pytest.raises(ValueError, match="did you mean 'MobileNetV3Small'"):
        models.build("keras.applications:MobileNetV3Smal", (32, 32, 3), 10)
    with pytest.raises(ValueError, match="option 'alpha' is not key=value"):
        models.build("keras.applications:MobileNetV3Small,alpha", (32, 32, 3), 10)
    with pytest.raises(ValueError, match=r"refused input_shape=\(16, 16, 3\).*at least 32x32"):
        models.build("keras.applications:MobileNetV3Small", (16, 16, 3), 10)
    with pytest.raises(ValueError, match="bn_momentum=2; expected a number in"):
        models.build("keras.applications:MobileNetV3Small,bn_momentum=2", (32, 32, 3), 10)
    with pytest.raises(ValueError, match="could not be loaded"):
        models.build("keras.applications:MobileNetV3Small,weights=/nonexistent.weights.h5", (32, 32, 3), 10)
    with pytest.raises(ValueError, match="Keras 3 only"):
        models.build("keras.applications:MobileNetV3Small", (32, 32, 3), 10, framework="tf_keras")


def test_a_keras_file_is_a_spec_checked_against_the_data(tmp_path):
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(10)])
    model.save(tmp_path / "m.keras")
    loaded = models.build(str(tmp_path / "m.keras"), (8, 8, 1), 10)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)  # a student from a file starts from the file's weights
    with pytest.raises(ValueError, match=r"takes inputs \(8, 8, 1\) and gives 10 outputs, but the data have inputs "
                                         r"\(28, 28, 1\) and 10 classes"):
        models.build(str(tmp_path / "m.keras"), (28, 28, 1), 10)
