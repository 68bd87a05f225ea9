"""``tfkd run multitask`` on real MNIST + Fashion-MNIST subsets: every arm trains on the same labelled images.

Also the parts it is glue over (:mod:`tfkd.multitask`): the union cycles the smaller task and weights each head.
"""

import json

import numpy as np
import pytest

from tfkd.recipes import runner

TINY = ["--n-train", "200", "--n-target-labels", "20", "--n-val", "0", "--n-test", "100", "--epochs", "1",
        "--model", "plain_cnn:2", "--batch-size", "32"]


def test_task_union_cycles_the_smaller_task_and_gives_each_head_its_own_rows():
    from tfkd import multitask

    x_a, y_a = np.arange(10, dtype="float32")[:, None], np.arange(10) % 3
    x_b, y_b = -np.arange(4, dtype="float32")[:, None] - 1, np.arange(4) % 2
    union = multitask.task_union({"a": (x_a, y_a), "b": (x_b, y_b)}, seed=0)
    assert len(union) == 20
    xb, yb, ib = union.rows("b")
    assert sorted(np.bincount(ib, minlength=4).tolist()) == [2, 2, 3, 3]  # 10 rows of 4 images: 2 or 3 times each
    np.testing.assert_array_equal(xb[:, 0], x_b[ib, 0])
    np.testing.assert_array_equal(yb, y_b[ib])
    xa, _, ia = union.rows("a")
    assert sorted(ia.tolist()) == list(range(10))  # the largest task: each image once
    for t, other in (("a", "b"), ("b", "a")):  # a row's loss reaches its own head only, each task half the loss
        w = union.sample_weight[t]
        assert np.all(w[union.task == union.names.index(other)] == 0) and w.sum() == pytest.approx(len(union))
    with pytest.raises(ValueError, match="task names"):
        multitask.task_union({"not a name": (x_a, y_a)})


def test_each_heads_logged_accuracy_counts_its_own_rows_only():
    """Keras weights only ``weighted_metrics`` by sample weight; a plain metric would count the other task's rows."""
    from tfkd import data, multitask, training

    (x, y), (xt, yt) = data.subset(data.load("digits"), n_train=300, n_test=200, seed=0)
    model = multitask.multi_head("mlp:16", (8, 8, 1), {"digit": 10, "parity": 2}, seed=0)
    union = multitask.task_union({"digit": (x, y), "parity": (x[:60], y[:60] % 2)})
    val = multitask.task_union({"digit": (xt[:100], yt[:100]), "parity": (xt[100:], yt[100:] % 2)})
    history = multitask.train_multitask(model, union, epochs=1, batch_size=64, validation_data=val)
    for task, (xv, yv) in (("digit", (xt[:100], yt[:100])), ("parity", (xt[100:], yt[100:] % 2))):
        direct = training.accuracy(multitask.task_model(model, task), xv, yv)
        assert history[f"val_{task}_accuracy"][-1] == pytest.approx(direct, abs=1e-6), task


def test_share_depth_shares_that_many_layer_groups():
    from tfkd import models, multitask

    single = models.build("plain_cnn:2", (28, 28, 1), 10).count_params()
    full = multitask.multi_head("plain_cnn:2", (28, 28, 1), {"a": 10, "b": 3}, seed=0)
    none = multitask.multi_head("plain_cnn:2", (28, 28, 1), {"a": 10, "b": 3}, share_depth=0, seed=0)
    head_b = 7 * 7 * 16 * 3 + 3  # b's own logits layer on the 7x7x16 features
    assert full.count_params() == single + head_b
    assert none.count_params() == single + models.build("plain_cnn:2", (28, 28, 1), 3).count_params()
    assert {"conv1", "conv2", "a_logits", "b_logits"} <= {layer.name for layer in full.layers}
    with pytest.raises(ValueError, match=r"share_depth=3: .* a trunk of 2 layer groups \(conv1, conv2\)"):
        multitask.multi_head("plain_cnn:2", (28, 28, 1), {"a": 10, "b": 3}, share_depth=3)
    with pytest.raises(ValueError, match="not a chain of layers"):
        multitask.multi_head("resnet_cifar:8", (28, 28, 1), {"a": 10, "b": 3})


def test_every_arm_trains_on_exactly_the_same_labelled_images(tmp_path, data_dir):
    from tfkd import data
    from tfkd.teachers import fingerprint

    out = tmp_path / "multitask"
    assert runner.main(["multitask", *TINY, "--data-dir", str(data_dir), "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    arms = {a: r[0] for a, r in report["results"]["arms"].items()}
    assert set(arms) == {"multitask", "separate", "target_only"}
    # The property: per task, every arm that trains it saw the same rows (indices, pixels, labels, repeats).
    target = [arms[a]["seen"]["target"] for a in ("multitask", "separate", "target_only")]
    source = [arms[a]["seen"]["source"] for a in ("multitask", "separate")]
    assert all(t == target[0] for t in target) and all(s == source[0] for s in source)
    assert target[0]["rows"] == source[0]["rows"] == 200 and target[0]["distinct"] == 20  # 20 labels, 10 times each
    assert target[0]["index_sha"] != source[0]["index_sha"]
    # ... and the record is faithful: it hashes the dataset's own images at the reported rows.
    fashion = data.load("fashion_mnist", data_dir=data_dir)
    rows = np.asarray(report["results"]["target_index"])
    assert np.bincount(fashion.y_train[rows], minlength=10).tolist() == [2] * 10  # stratified
    assert target[0]["images_sha"] == fingerprint(np.ascontiguousarray(fashion.x_train[np.sort(np.repeat(rows, 10))]))
    # Same number of steps for every arm; the shared trunk is counted once.
    steps = {arms["multitask"]["steps_per_epoch"], arms["target_only"]["steps_per_epoch"],
             *(n["steps_per_epoch"] for n in arms["separate"]["networks"].values())}
    assert steps == {13}  # 400 rows / batch 32, or 200 rows / batch 16
    assert arms["multitask"]["shared_groups"] == ["conv1", "conv2"]
    assert arms["multitask"]["params"] < arms["separate"]["params"]
    text = (out / "report.md").read_text()
    assert "hashes below agree" in text and "(b) shared trunk + target head, target alone" in text
    assert (out / "plots" / "comparison_target.png").exists()
