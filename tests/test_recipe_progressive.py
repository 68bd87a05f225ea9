"""Progressive networks: the library's wiring and errors, and ``tfkd run progressive`` end to end on real MNIST."""

import json

import keras
import numpy as np
import pytest

from tfkd import models, progressive
from tfkd.recipes import config, runner
from tfkd.recipes import progressive as recipe


def test_every_target_layer_after_the_first_gets_a_lateral_from_the_source_layer_before_it():
    source = models.plain_cnn(4, (8, 8, 1), 10, seed=0)
    net = progressive.progressive_network(source, models.plain_cnn(4, (8, 8, 1), 3, seed=1))
    adds = {layer.name: layer for layer in net.layers if isinstance(layer, keras.layers.Add)}
    # conv1 sees the image only; conv2..conv4 and the logits also see the source activation entering their twin
    assert sorted(adds) == [f"target_{n}_plus_lateral" for n in ("conv2", "conv3", "conv4", "logits")]
    assert net.output_shape == (None, 3)  # the target head sets the classes
    frozen = net.get_layer(progressive.SOURCE_COLUMN)
    assert not frozen.trainable and [tuple(t.shape[1:]) for t in frozen.outputs] == [
        (8, 8, 16), (4, 4, 16), (4, 4, 32), (128,), (10,)]
    assert source.trainable and all(layer.trainable for layer in source.layers)  # the caller's model untouched
    trainable = sum(int(np.prod(w.shape)) for w in net.trainable_weights)
    assert trainable == models.describe(net)["params"] > models.describe(source)["params"]


def test_progressive_network_refuses_what_it_cannot_wire():
    source = models.plain_cnn(2, (8, 8, 1), 10, seed=0)
    with pytest.raises(ValueError, match="different layer structures"):
        progressive.progressive_network(source, models.plain_cnn(4, (8, 8, 1), 10))
    inputs = keras.Input((8, 8, 1))
    h = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    residual = keras.layers.Add()([h, keras.layers.Conv2D(4, 3, padding="same")(h)])  # a branch, as in a ResNet
    branching = keras.Model(inputs, keras.layers.Dense(10)(keras.layers.Flatten()(residual)))
    with pytest.raises(ValueError, match="not a sequential chain"):
        progressive.progressive_network(branching, branching)
    dense = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(8),
                              keras.layers.Dense(10, activation="relu")])
    with pytest.raises(ValueError, match="has activation relu; a lateral input is added before the non-linearity"):
        progressive.progressive_network(dense, dense)
    with pytest.raises(ValueError, match=r"source takes inputs \(8, 8, 1\) but column takes \(28, 28, 1\)"):
        progressive.progressive_network(source, models.plain_cnn(2, (28, 28, 1), 10))
    with pytest.raises(ValueError, match="reduction=0"):
        progressive.progressive_network(source, models.plain_cnn(2, (8, 8, 1), 10), reduction=0)
    with pytest.raises(ValueError, match="has no 'source_column' layer"):
        progressive.source_column(source)


def test_config_errors_name_the_argument():
    with pytest.raises(ValueError, match="^adapter_width=0 must be > 0"):
        config.from_dict(recipe.Config, {"adapter_width": 0})
    with pytest.raises(ValueError, match="^epochs=0 must be > 0"):
        config.from_dict(recipe.Config, {"epochs": 0})


def test_progressive_keeps_the_source_task_bit_for_bit_while_fine_tuning_forgets(tmp_path, data_dir):
    out = tmp_path / "progressive"
    assert runner.main(["progressive", "--dataset", "mnist", "--data-dir", str(data_dir), "--n-train", "2000",
                        "--n-test", "400", "--model", "plain_cnn:2", "--source-epochs", "2", "--epochs", "3",
                        "--n-target-labels", "100", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    arms = {a: r[0] for a, r in report["results"]["arms"].items()}
    source, finetune, prog = arms["source"], arms["finetune"], arms["progressive"]
    # No forgetting: the frozen column answers the source task exactly as the source model did.
    assert prog["source_column_weights_identical"] and prog["source_logits_identical"]
    assert prog["source"] == prog["source_model_source"] == source["source"]
    # Fine-tuning on the rotated digits forgets the upright ones (measured, not assumed).
    assert finetune["source"] < source["source"] - 0.05, (finetune["source"], source["source"])
    assert prog["target"] > source["target"] + 0.1  # and the target task was learned
    assert prog["describe_total_params"] > prog["describe"]["params"] > finetune["describe"]["params"]
    # Independently of the recorded flags: the saved network's source column is the saved source model.
    saved = keras.models.load_model(out / "models" / "progressive_seed0.keras")
    saved_source = keras.models.load_model(out / "models" / "source_seed0.keras")
    for a, b in zip(progressive.source_column(saved).get_weights(), saved_source.get_weights()):
        np.testing.assert_array_equal(a, b)
    text = (out / "report.md").read_text()
    assert "bit-identical" in text and "it forgot" in text and (out / "plots" / "source_accuracy.png").exists()
    assert len(report["tables"][0]["rows"]) == 4
