"""Pseudo-label selection (threshold, balancing) and student-only noise in cached-teacher datasets."""

import numpy as np
import pytest

import tfkd
from tfkd import augment, pseudo


def _probs():
    # 3 classes; class 0 has 4 confident rows, class 1 has 2, class 2 has 1 confident and 1 unsure row.
    rows = [[0.9, 0.05, 0.05], [0.8, 0.1, 0.1], [0.7, 0.2, 0.1], [0.6, 0.3, 0.1],
            [0.1, 0.85, 0.05], [0.2, 0.75, 0.05],
            [0.1, 0.1, 0.8], [0.34, 0.33, 0.33]]
    return np.array(rows)


def test_threshold_filters_and_counts_per_class():
    sel = pseudo.select(_probs(), threshold=0.5, balance=False)
    assert sorted(sel.indices.tolist()) == [0, 1, 2, 3, 4, 5, 6]
    assert sel.passed_per_class == [4, 2, 1]
    sel = pseudo.select(_probs(), threshold=0.3, balance=False)
    assert len(sel.indices) == 8 and sel.passed_per_class == [5, 2, 1]


def test_balancing_trims_the_most_confident_and_duplicates_the_rest():
    sel = pseudo.select(_probs(), threshold=0.5, balance=True, per_class=3)
    assert sel.kept_per_class == [3, 3, 3]
    chosen_class0 = [i for i in sel.indices if i < 4]
    assert sorted(chosen_class0) == [0, 1, 2]  # the three most confident of class 0
    assert sorted(i for i in sel.indices if i in (4, 5)) in ([4, 4, 5], [4, 5, 5])  # duplicated up to 3
    assert [i for i in sel.indices if i == 6] == [6, 6, 6]
    default = pseudo.select(_probs(), threshold=0.5, balance=True)
    assert default.kept_per_class == [2, 2, 2]  # mean of (4, 2, 1) rounded
    with pytest.raises(ValueError, match="threshold=1.0"):
        pseudo.select(_probs(), threshold=1.0)


def test_student_transform_noises_only_the_student_view():
    x = np.random.default_rng(0).random((16, 8, 8, 1)).astype("float32")
    logits = np.random.default_rng(1).normal(size=(16, 3)).astype("float32")
    cache = tfkd.teachers.cache_from_logits(x, logits)
    noise = augment.make("randaugment", magnitude=0.5, seed=0)
    (features,) = next(iter(cache.dataset(x, batch_size=16, shuffle=False, student_transform=noise)))
    assert np.abs(features["student"].numpy() - x).mean() > 0.01
    np.testing.assert_array_equal(features["teacher_logits"].numpy(), logits)
    assert augment.make("none") is None
    with pytest.raises(ValueError, match="kind='cutout'"):
        augment.make("cutout")


def test_degrade_noise_keeps_shape_and_range_is_identity_at_inference_and_seeded():
    x = np.random.default_rng(0).random((32, 12, 12, 1)).astype("float32")
    layer = augment.layer("degrade", magnitude=0.5, seed=3)
    noised = np.asarray(layer(x, training=True))
    assert noised.shape == x.shape and noised.dtype == np.float32
    assert noised.min() >= 0.0 and noised.max() <= 1.0
    changed = np.abs(noised - x).reshape(len(x), -1).max(1) > 1e-6
    assert 0 < changed.sum() < len(x)  # each degradation hits an image with probability 1/2: some stay clean
    np.testing.assert_array_equal(np.asarray(layer(x, training=False)), x)
    again = np.asarray(augment.layer("degrade", magnitude=0.5, seed=3)(x, training=True))
    np.testing.assert_array_equal(again, noised)  # the same seed: the same noise
    other = np.asarray(augment.layer("degrade", magnitude=0.5, seed=4)(x, training=True))
    assert not np.array_equal(other, noised)
    # blur alone keeps a constant image's value and spreads a single bright pixel around itself
    blur = augment.Degrade(0.5, seed=0)
    dot = np.zeros((1, 9, 9, 1), "float32")
    dot[0, 4, 4, 0] = 1.0
    out = np.asarray(blur._blur(dot, np.full((1, 1, 1, 1), 1.0, "float32")))
    assert abs(out.sum() - 1.0) < 1e-5 and out[0, 4, 4, 0] < 0.5 and out[0, 4, 5, 0] > 0.05
    np.testing.assert_allclose(np.asarray(blur._blur(np.full((2, 5, 5, 1), 0.7, "float32"),
                                                     np.full((2, 1, 1, 1), 0.8, "float32"))), 0.7, atol=1e-6)
    restored = augment.Degrade.from_config(blur.get_config())
    assert (restored.magnitude, restored.p, restored.value_range) == (0.5, 0.5, (0.0, 1.0))
    with pytest.raises(ValueError, match="magnitude=1.5"):
        augment.Degrade(1.5)
