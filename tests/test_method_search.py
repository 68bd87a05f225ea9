"""Method and hyperparameters chosen on validation with keras-tuner, and the labels-only baseline's equal search."""

import types

import numpy as np
import pytest

from tfkd import data, models, teachers, tuning


@pytest.fixture(scope="module")
def digits_split():
    """Real digits: 600 fit / 200 validation images, and a plain_cnn:2 teacher's cached logits for both."""
    import keras

    (x, y), _ = data.load("digits")
    d = types.SimpleNamespace(x_fit=x[:600], y_fit=y[:600], x_val=x[600:800], y_val=y[600:800],
                              input_shape=x.shape[1:], num_classes=10)
    keras.utils.set_random_seed(0)
    teacher = models.build("plain_cnn:2", d.input_shape, 10, seed=0)
    teacher.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    teacher.fit(d.x_fit, d.y_fit, epochs=3, verbose=0)
    return d, teachers.cache_teacher_logits(teacher, d.x_fit), teachers.cache_teacher_logits(teacher, d.x_val)


def _hp(**values):
    import keras_tuner

    hp = keras_tuner.HyperParameters()
    for name, value in values.items():
        hp.Fixed(name, value)
    return hp


def test_each_method_gets_only_its_own_knobs():
    import keras_tuner

    for method, expected in [("kd", {"temperature", "alpha"}), ("kd_std", {"temperature", "alpha"}),
                             ("dkd", {"beta"}), ("dist", {"temperature"})]:
        hp = keras_tuner.HyperParameters()
        hp.Fixed("method", method)
        setting, terms, hard = tuning.method_setting(hp, [method], epochs=24)
        assert set(setting) == {"method", "lr"} | expected
        assert len(terms) == 1 and 0 <= hard <= 1
        active = {k for k in hp.values if hp.is_active(k)}
        assert active == {"method", "lr"} | {f"{method.split('_')[0]}_{k}" for k in expected}, active
    setting, terms, hard = tuning.method_setting(_hp(method="kd", lr=1e-3, kd_temperature=2.0, kd_alpha=0.9),
                                                 ["kd"], epochs=10)
    assert terms[0].temperature == 2.0 and terms[0].weight == pytest.approx(0.9) and hard == pytest.approx(0.1)
    with pytest.raises(ValueError, match=r"methods=\['fitnet'\].*feature methods need the live teacher"):
        tuning.MethodSearch("mlp:8", None, None, None, methods=["fitnet"])


def test_both_searches_run_the_same_budget_and_the_best_trial_is_reported(digits_split, tmp_path):
    d, fit_cache, val_cache = digits_split
    kd = tuning.MethodSearch("mlp:16", fit_cache, val_cache, d, methods=("kd", "dist"), epochs=2, seed=3,
                             default={"method": "kd", "lr": 2e-3, "temperature": 3.0, "alpha": 0.5})
    labels = tuning.LabelsOnlySearch("mlp:16", d, epochs=2, seed=3, default={"lr": 2e-3})
    first = {"kd": {"method": "kd", "lr": 2e-3, "kd_temperature": 3.0, "kd_alpha": 0.5},
             "labels": {"lr": 2e-3, "label_smoothing": 0.0}}
    results = {}
    for name, hm in (("kd", kd), ("labels", labels)):
        tuner = tuning.search_tuner(hm, directory=tmp_path, project_name=name, max_trials=3, seed=0)
        tuner.search()
        trials = sorted(tuner.oracle.trials.values(), key=lambda t: t.trial_id)
        assert len(trials) == 3 and all(t.status == "COMPLETED" for t in trials)
        # the first trial is the untuned default (values outside the search space are added to it)
        hp0 = trials[0].hyperparameters
        assert {k: v for k, v in hp0.values.items() if hp0.is_active(k)} == first[name]
        best = tuning.best_setting(tuner)
        assert best["val_accuracy"] == max(t.score for t in trials)
        results[name] = best
    best = results["kd"]
    assert best["method"] in ("kd", "dist") and "label_smoothing" in results["labels"]
    # only the knobs of the chosen method, under the setting's names; the setting rebuilds the trial's terms
    assert set(best) - {"val_accuracy", "trial_id"} == ({"method", "lr", "temperature", "alpha"}
                                                       if best["method"] == "kd" else {"method", "lr", "temperature"})
    terms, hard = tuning.setting_terms(best, epochs=2)
    assert terms[0].temperature == best["temperature"]
    assert tuning.describe_setting(best).startswith({"kd": "KD (T=", "dist": "DIST (T="}[best["method"]])
    # a second tuner on the same directory reloads the finished trials instead of training again
    again = tuning.search_tuner(labels, directory=tmp_path, project_name="labels", max_trials=3, seed=0)
    again.search()
    assert tuning.best_setting(again) == results["labels"]
    assert 0.0 < results["labels"]["val_accuracy"] <= 1.0 and np.isfinite(results["kd"]["val_accuracy"])


def test_trials_on_replayed_views_train_on_the_cached_view_logits_without_a_teacher(digits_split):
    """A search over a :class:`tfkd.replay.ReplayCache`: every trial trains on the augmented views whose teacher
    logits were computed once (epoch e on view epoch e), validates on the clean images, and cannot train past the
    epochs the cache holds."""
    import keras
    import keras_tuner

    from tfkd import replay

    d, _, val_cache = digits_split
    keras.utils.set_random_seed(0)
    teacher = models.build("plain_cnn:2", d.input_shape, 10, seed=0)
    teacher.compile(keras.optimizers.Adam(1e-2), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    teacher.fit(d.x_fit, d.y_fit, epochs=5, verbose=0)
    views = replay.compute_replay_cache(teacher, d.x_fit, views=replay.ViewConfig(seed=1, pad=1, mixup=0.2),
                                        epochs=4)
    kd = _hp(method="kd", lr=1e-2, kd_temperature=4.0, kd_alpha=0.5)
    search = tuning.MethodSearch("mlp:16", views, val_cache, d, methods=("kd",), epochs=4, seed=0)
    model = search.build(kd)
    assert model.teacher is None  # the trial has no teacher to run: its soft targets are the cached view logits
    score = search.fit(kd, model)
    assert 0.3 < score["val_accuracy"] <= 1.0  # well above chance (0.1) after 4 epochs
    seen = []
    search.fit(kd, search.build(kd), callbacks=[keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: seen.append(epoch))])
    assert seen == [0, 1, 2, 3]
    sizes = tuning.DistilledStudent(tuning.SearchSpace(family="mlp", mlp_widths=(16,), mlp_layers=(1,)), views,
                                    val_cache, d, lr=1e-2)
    hp = keras_tuner.HyperParameters()
    assert 0.3 < sizes.fit(hp, sizes.build(hp), epochs=4)["val_accuracy"] <= 1.0
    longer = tuning.MethodSearch("mlp:16", views, val_cache, d, methods=("kd",), epochs=5, seed=0)
    with pytest.raises(Exception, match="replay cache holds epochs 0..3: the teacher never saw those views"):
        longer.fit(kd, longer.build(kd))


def _assert_cosine(optimizer, lr, steps):
    """The learning rate (its value at chosen iterations) starts at lr, is half at mid-way and 0 at the end."""
    for step, expected in ((0, lr), (steps // 2, lr / 2), (steps, 0.0)):
        optimizer.iterations.assign(step)
        assert float(optimizer.learning_rate) == pytest.approx(expected, abs=1e-9), step


def test_cosine_adam_decays_to_zero_over_the_batches_of_its_epochs():
    from tfkd import training

    _assert_cosine(training.cosine_adam(1e-2, epochs=2, examples=10, batch_size=4), 1e-2, steps=2 * 3)


def test_a_cosine_schedule_decays_every_trial_to_zero_over_its_epochs(digits_split):
    d, fit_cache, val_cache = digits_split
    hp = _hp(method="kd", lr=2e-3, kd_temperature=2.0, kd_alpha=0.5)
    kd = tuning.MethodSearch("mlp:16", fit_cache, val_cache, d, methods=("kd",), epochs=3, batch_size=100,
                             schedule="cosine")
    labels = tuning.LabelsOnlySearch("mlp:16", d, epochs=3, batch_size=100, schedule="cosine")
    for model in (kd.build(hp), labels.build(_hp(lr=2e-3, label_smoothing=0.0))):
        _assert_cosine(model.optimizer, 2e-3, steps=3 * 6)  # 3 epochs of 6 batches (the last one short)
    constant = tuning.LabelsOnlySearch("mlp:16", d, epochs=3).build(_hp(lr=2e-3, label_smoothing=0.0))
    assert float(constant.optimizer.learning_rate) == pytest.approx(2e-3)
    with pytest.raises(ValueError, match=r"schedule='step'; expected one of constant, cosine"):
        tuning.LabelsOnlySearch("mlp:16", d, schedule="step")
