"""``tfkd run self-taught`` on real MNIST -> Fashion-MNIST subsets: the same labelled target images for every arm,
and no source label anywhere near the autoencoder."""

import inspect
import json

import keras
import numpy as np

from tfkd.recipes import runner

TINY = ["--n-train", "300", "--n-target-labels", "30", "--n-val", "0", "--n-test", "100", "--epochs", "2",
        "--pretrain-epochs", "1", "--model", "plain_cnn:2"]


def test_arms_share_the_target_labels_and_the_autoencoder_never_sees_a_source_label(tmp_path, data_dir,
                                                                                    monkeypatch):
    from tfkd import data, training
    from tfkd.recipes import self_taught
    from tfkd.teachers import fingerprint

    fits, readers = [], []
    real_fit, real_labels = training.fit, self_taught.source_labels

    def fit(model, x, y=None, **kwargs):  # every training of the run goes through tfkd.training.fit
        fits.append({"label": kwargs.get("label"), "targets_are_inputs": y is x, "x": fingerprint(x)})
        return real_fit(model, x, y, **kwargs)

    def source_labels(cfg, rows):  # the one function that reads source labels
        readers.append((inspect.stack()[1].function, [f["label"] for f in fits]))
        return real_labels(cfg, rows)

    monkeypatch.setattr(training, "fit", fit)
    monkeypatch.setattr(self_taught, "source_labels", source_labels)
    out = tmp_path / "self-taught"
    assert runner.main(["self-taught", *TINY, "--data-dir", str(data_dir), "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())

    # The autoencoder trained on the source images with themselves as targets: no label array reached it.
    source_x = data.load("mnist", data_dir=data_dir).x_train[np.asarray(report["results"]["source_index"])]
    (ae,) = [f for f in fits if f["label"] == "autoencoder_seed0"]
    assert ae["targets_are_inputs"] and ae["x"] == fingerprint(source_x)
    # Source labels were read once, by the source-supervised arm, after the self-taught arm had finished.
    assert len(readers) == 1
    caller, done_before = readers[0]
    assert caller == "_source_pretrain_stage"
    assert {"autoencoder_seed0", "self_taught_seed0"} <= set(done_before)

    # Every arm trained on the same labelled target images: the 30 stratified rows the report names.
    arms = {a: r[0] for a, r in report["results"]["arms"].items()}
    assert set(arms) == {"self_taught", "scratch", "random_frozen", "source_supervised"}
    seen = [arms[a]["seen"] for a in arms]
    assert all(s == seen[0] for s in seen) and seen[0]["rows"] == 30
    fashion = data.load("fashion_mnist", data_dir=data_dir)
    rows = np.asarray(report["results"]["target_index"])
    assert np.bincount(fashion.y_train[rows], minlength=10).tolist() == [3] * 10
    assert seen[0]["images_sha"] == fingerprint(np.ascontiguousarray(fashion.x_train[rows]))
    classifier_x = {f["x"] for f in fits if f["label"] in {f"{a}_seed0" for a in arms}}
    assert classifier_x == {seen[0]["images_sha"]} == {fingerprint(fashion.x_train[rows])}

    # The self-taught classifier's trunk is the autoencoder's encoder, kept frozen while the head trained.
    encoder = keras.models.load_model(out / "models" / "encoder_ae_seed0.keras")
    classifier = keras.models.load_model(out / "models" / "self_taught_seed0.keras")
    assert arms["self_taught"]["frozen_layers"] == ["conv1", "bn1", "conv2", "bn2"]
    for name in ("conv1", "conv2"):
        for a, b in zip(encoder.get_layer(name).get_weights(), classifier.get_layer(name).get_weights()):
            np.testing.assert_array_equal(a, b)
    assert arms["self_taught"]["trainable_params"] == arms["random_frozen"]["trainable_params"] == 7 * 7 * 16 * 10 + 10
    assert "Self-taught learning from 300 unlabeled mnist images" in (out / "report.md").read_text()
