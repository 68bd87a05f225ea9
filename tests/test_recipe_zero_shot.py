"""Zero-shot learning: the losses and ConSE against hand computations, the attribute table, the config's errors, and
``tfkd run zero-shot`` end to end on real Fashion-MNIST (above chance on classes no training array held)."""

import json

import numpy as np
import pytest

from tfkd import attributes, zero_shot
from tfkd.recipes import config, runner
from tfkd.recipes import zero_shot as recipe

SCORES = np.array([[2.0, 0.5, 1.5, -1.0],
                   [0.0, 3.0, 2.9, 1.0],
                   [1.0, 1.0, 1.0, 1.0]], np.float32)
LABELS = np.array([0, 1, 3])


def test_margin_loss_matches_a_hand_computation():
    # row 0: max(0, 1 - 2.0 + max(0.5, 1.5, -1.0)) = 0.5; row 1: max(0, 1 - 3.0 + 2.9) = 0.9; row 2: 1 - 1 + 1 = 1
    np.testing.assert_allclose(np.asarray(zero_shot.margin_loss(SCORES, LABELS, margin=1.0)), [0.5, 0.9, 1.0],
                               rtol=1e-6)
    expected = [max(0.0, 0.3 - SCORES[i, y] + max(np.delete(SCORES[i], y))) for i, y in enumerate(LABELS)]
    np.testing.assert_allclose(np.asarray(zero_shot.margin_loss(SCORES, LABELS, margin=0.3)), expected, rtol=1e-6)
    loss = zero_shot.MarginLoss(margin=1.0)
    assert float(loss(LABELS, SCORES)) == pytest.approx(np.mean([0.5, 0.9, 1.0]), rel=1e-6)
    assert zero_shot.MarginLoss.from_config(loss.get_config()).margin == 1.0
    with pytest.raises(ValueError, match="at least 2 classes"):
        zero_shot.margin_loss(np.ones((2, 1)), np.zeros(2))


def test_devise_loss_sums_every_wrong_class_within_the_margin():
    # row 0 (margin 1): wrong 0.5 -> max(0, 1 - 2 + 0.5) = 0, 1.5 -> 0.5, -1.0 -> 0; sum 0.5
    # row 1: 0.0 -> 0, 2.9 -> 0.9, 1.0 -> 0; row 2: three wrong classes tied with the right one -> 3 * 1
    np.testing.assert_allclose(np.asarray(zero_shot.devise_loss(SCORES, LABELS, margin=1.0)), [0.5, 0.9, 3.0],
                               rtol=1e-6)
    expected = [sum(max(0.0, 0.1 - SCORES[i, y] + s) for j, s in enumerate(SCORES[i]) if j != y)
                for i, y in enumerate(LABELS)]
    np.testing.assert_allclose(np.asarray(zero_shot.devise_loss(SCORES, LABELS)), expected, rtol=1e-6)


def test_conse_is_the_probability_weighted_mean_of_the_top_t_class_vectors():
    vectors = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0]], np.float32)
    probs = np.array([[0.1, 0.5, 0.3, 0.1], [0.7, 0.0, 0.1, 0.2]])
    # row 0, T=2: classes 1 (0.5) and 2 (0.3) -> (0.5 * [0,1,0] + 0.3 * [0,0,1]) / 0.8
    # row 1, T=2: classes 0 (0.7) and 3 (0.2) -> (0.7 * [1,0,0] + 0.2 * [1,1,0]) / 0.9
    hand = np.array([[0, 0.5 / 0.8, 0.3 / 0.8], [0.9 / 0.9, 0.2 / 0.9, 0]])
    np.testing.assert_allclose(zero_shot.conse(probs, vectors, top=2), hand, rtol=1e-6)
    np.testing.assert_allclose(zero_shot.conse(probs, vectors, top=4), probs @ vectors, rtol=1e-6)  # sums to 1
    np.testing.assert_allclose(zero_shot.conse(probs, vectors, top=1), vectors[[1, 0]])
    unseen = np.array([[0, 1, 1], [1, 0.2, 0]], np.float32)
    np.testing.assert_array_equal(zero_shot.nearest(hand, unseen), [0, 1])  # by cosine
    with pytest.raises(ValueError, match=r"top=5: expected 1..4"):
        zero_shot.conse(probs, vectors, top=5)


def test_evaluate_scores_the_zero_shot_and_generalised_settings():
    y = np.array([0, 0, 1, 2, 2, 3])

    def predict(images, candidates):  # right on class 0 and 2; says 1 for every other image if 1 is a candidate
        return np.array([y[i] if y[i] in (0, 2) or 1 not in candidates else 1 for i in images])

    scores = zero_shot.evaluate(predict, np.arange(6), y, seen=[0, 1], unseen=[2, 3])
    assert scores["unseen"] == 1.0 and scores["seen"] == 1.0
    assert scores["generalised_unseen"] == 2 / 3 and scores["generalised_seen"] == 1.0
    assert scores["generalised_all"] == pytest.approx(5 / 6)
    assert scores["generalised_harmonic"] == pytest.approx(2 * (2 / 3) / (2 / 3 + 1))


def test_the_fashion_mnist_attribute_table_is_binary_and_tells_every_class_apart():
    names, table = attributes.table("fashion_mnist")
    assert table.shape == (10, len(names)) == (10, 14) and table.dtype == np.float32
    assert set(np.unique(table)) == {0.0, 1.0}
    assert len({tuple(row) for row in table}) == 10  # every class distinct
    assert table.sum(axis=0).min() >= 1  # every attribute describes some class
    assert table[[5, 7, 9], names.index("footwear")].tolist() == [1, 1, 1] and table[:, 7].sum() == 3
    with pytest.raises(ValueError, match="dataset='mnist' has no attribute table"):
        attributes.table("mnist")


@pytest.mark.parametrize("values, message", [
    ({"unseen": [10]}, r"^unseen=\[10\] names class\(es\) \[10\], but fashion_mnist has classes 0..9 \(0 T-shirt"),
    ({"unseen": list(range(9))}, r"^unseen=\[0, 1, .*\] leaves 1 seen class\(es\); training needs at least 2"),
    ({"unseen": [2, 2]}, r"^unseen=\[2, 2\]: expected distinct class ids"),
    ({"unseen": []}, r"^unseen=\[\]: expected distinct class ids"),
    ({"top": 8}, r"^top=8 must be in 1..7"),
    ({"dataset": "mnist"}, r"^dataset='mnist' has no class attribute table"),
    ({"export": True}, r"^export=True is not supported by zero-shot"),
    ({"margin": 0.0}, r"^margin=0.0 must be > 0"),
])
def test_config_errors_name_the_argument_the_value_and_what_was_expected(values, message):
    with pytest.raises(ValueError, match=message):
        config.from_dict(recipe.Config, values)


def test_zero_shot_beats_chance_on_classes_no_training_array_held(tmp_path, data_dir):
    out = tmp_path / "zero-shot"
    args = ["--data-dir", str(data_dir), "--n-train", "1500", "--n-test", "600", "--model", "plain_cnn:2",
            "--epochs", "2", "--batch-size", "32", "--unseen", "2,3,9"]
    assert runner.main(["zero-shot", *args, "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    unseen = report["results"]["unseen"]
    assert unseen == [2, 3, 9] and report["results"]["classes_in_training_arrays"] == [0, 1, 4, 5, 6, 7, 8]
    # Recompute what the training arrays must be, independently of the recipe: the same split, unseen rows removed.
    from tfkd.recipes import common
    from tfkd.teachers import fingerprint

    cfg = config.from_dict(recipe.Config, json.loads((out / "config.json").read_text())["config"])
    data = common.load_data(cfg)
    keep = ~np.isin(data.y_fit, unseen)
    for method, runs in report["results"]["methods"].items():
        r = runs[0]
        train = r["training_data"]["train"]
        assert train["classes"] == [0, 1, 4, 5, 6, 7, 8] and train["examples"] == int(keep.sum()), method
        assert train["x_fingerprint"] == fingerprint(data.x_fit[keep]), method  # exactly the seen-class images
        assert r["class_vectors_in_training"] == 7
        assert r["unseen"] > 1 / 3 + 0.1, (method, r["unseen"])  # zero-shot, above chance
        assert r["generalised_all"] > 0.1 and r["seen"] > 1 / 7
    rows = report["tables"][0]["rows"]
    assert rows[0][:2] == ["chance", "0.3333"] and len(rows) == 4
    assert (out / "plots" / "unseen_accuracy.png").exists()
