"""tfkd.terms in a Distiller: the total as a weighted sum, feature taps and adapters, one forward per model,
saving, schedules, sample weights, one-logit models and the errors a user meets."""

import keras
import numpy as np
import pytest

import tfkd
from tfkd import losses as L

N, C = 32, 4


def _cnn(width, seed, prefix, out=C):
    init = lambda k: keras.initializers.GlorotUniform(seed=seed + k)  # noqa: E731
    x = inp = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(width, 3, padding="same", activation="relu", kernel_initializer=init(0),
                            name=f"{prefix}_block1")(x)
    x = keras.layers.MaxPooling2D(name=f"{prefix}_pool1")(x)
    x = keras.layers.Conv2D(2 * width, 3, padding="same", activation="relu", kernel_initializer=init(1),
                            name=f"{prefix}_block2")(x)
    x = keras.layers.GlobalAveragePooling2D(name=f"{prefix}_gap")(x)
    return keras.Model(inp, keras.layers.Dense(out, kernel_initializer=init(2), name=f"{prefix}_logits")(x),
                       name=f"{prefix}_cnn")


def _data(seed=0, n=N):
    rng = np.random.default_rng(seed)
    x = rng.random((n, 8, 8, 1)).astype("float32")
    y = (x.reshape(n, -1)[:, :C].argmax(-1)).astype("int32")
    return x, y


def _pair():
    return _cnn(8, 10, "t"), _cnn(4, 20, "s")


def _np(t):
    return np.asarray(t)


def test_the_issue_api_runs_and_the_total_is_the_weighted_sum():
    teacher, student = _pair()
    terms = [tfkd.terms.KD(temperature=4.0, weight=0.9),
             tfkd.terms.Hint("t_block2", "s_block2", weight=1.0),
             tfkd.terms.Attention([("t_block1", "s_block1"), ("t_block2", "s_block2")], weight=1000.0),
             tfkd.terms.DKD(temperature=4.0, warmup_epochs=0, weight=0.5),
             tfkd.terms.DIST(weight=2.0),
             tfkd.terms.RKD("t_gap", "s_gap", weight=1.0),
             tfkd.terms.SimilarityPreserving([("t_block2", "s_block2")], weight=30.0)]
    d = tfkd.Distiller(teacher, student, terms=terms, hard_weight=0.1)
    d.compile(optimizer="sgd", metrics=["accuracy"])
    x, y = _data()
    logs = d.evaluate(x, y, batch_size=N, verbose=0, return_dict=True)
    assert set(logs) >= {"loss", "hard_loss", "agreement", "kd_loss", "hint_loss", "attention_loss", "dkd_loss",
                         "dist_loss", "rkd_loss", "sp_loss"}
    # Recompute every term from the pure functions on the tapped features.
    t_taps = keras.Model(teacher.inputs, [teacher.output] + [teacher.get_layer(n).output
                                                              for n in ("t_block1", "t_block2", "t_gap")])
    s_taps = keras.Model(student.inputs, [student.output] + [student.get_layer(n).output
                                                              for n in ("s_block1", "s_block2", "s_gap")])
    t, t1, t2, tg = (_np(v) for v in t_taps(x))
    s, s1, s2, sg = (_np(v) for v in s_taps(x))
    adapted = _np(d.get_term("hint").adapter(s2, training=False))
    expected = {
        "kd": _np(L.kd_kl(s, t, 4.0)).mean(),
        "hint": _np(L.hint_mse(adapted, t2)).mean(),
        "attention": (_np(L.attention_transfer(s1, t1)) + _np(L.attention_transfer(s2, t2))).mean(),
        "dkd": _np(L.dkd(s, t, y, 4.0)).mean(),
        "dist": float(L.dist(s, t)),
        "rkd": float(L.rkd_distance(sg, tg)) + 2.0 * float(L.rkd_angle(sg, tg)),
        "sp": float(L.similarity_preserving(s2, t2)),
    }
    for name, value in expected.items():
        np.testing.assert_allclose(logs[f"{name}_loss"], value, rtol=2e-4, atol=1e-6, err_msg=name)
    hard = -np.log(np.exp(s - s.max(1, keepdims=True))[np.arange(N), y]
                   / np.exp(s - s.max(1, keepdims=True)).sum(1)).mean()
    weights = {"kd": 0.9, "hint": 1.0, "attention": 1000.0, "dkd": 0.5, "dist": 2.0, "rkd": 1.0, "sp": 30.0}
    total = 0.1 * hard + sum(weights[k] * v for k, v in expected.items())
    np.testing.assert_allclose(logs["hard_loss"], hard, rtol=1e-4)
    np.testing.assert_allclose(logs["loss"], total, rtol=2e-4)


def test_one_teacher_and_one_student_forward_per_step_whatever_the_number_of_terms():
    calls = {"t": 0, "s": 0}

    class Count(keras.layers.Layer):
        def __init__(self, key, **kw):
            super().__init__(**kw)
            self.key = key

        def call(self, x):
            calls[self.key] += 1
            return x

    def model(prefix, width, seed):
        inp = keras.Input((8, 8, 1))
        x = Count(prefix, name=f"{prefix}_count")(inp)
        x = keras.layers.Conv2D(width, 3, padding="same", activation="relu", name=f"{prefix}_block1",
                                kernel_initializer=keras.initializers.GlorotUniform(seed))(x)
        x = keras.layers.GlobalAveragePooling2D(name=f"{prefix}_gap")(x)
        return keras.Model(inp, keras.layers.Dense(C, name=f"{prefix}_logits")(x))

    teacher, student = model("t", 8, 1), model("s", 4, 2)
    d = tfkd.Distiller(teacher, student, hard_weight=1.0, terms=[
        tfkd.terms.KD(2.0), tfkd.terms.Hint("t_block1", "s_block1"), tfkd.terms.Attention(("t_block1", "s_block1")),
        tfkd.terms.RKD("t_gap", "s_gap"), tfkd.terms.SimilarityPreserving([("t_block1", "s_block1")])])
    d.compile(optimizer="sgd", run_eagerly=True)
    x, y = _data()
    calls.update(t=0, s=0)
    d.fit(x, y, batch_size=16, epochs=1, verbose=0)  # two steps
    assert calls == {"t": 2, "s": 2}


def test_adapters_train_save_with_the_distiller_and_never_join_the_student(tmp_path):
    teacher, student = _pair()
    student_params = student.count_params()
    d = tfkd.Distiller(teacher, student, terms=[tfkd.terms.Hint("t_block2", "s_block2")], hard_weight=0.5)
    adapter = d.get_term("hint").adapter
    assert isinstance(adapter, tfkd.terms.FeatureAdapter) and adapter.project is not None  # 8 -> 16 channels
    assert {id(w) for w in adapter.trainable_weights} <= {id(w) for w in d.trainable_weights}
    d.compile(optimizer=keras.optimizers.SGD(0.1))
    x, y = _data()
    before = [w.numpy().copy() for w in adapter.trainable_weights]
    d.fit(x, y, batch_size=16, epochs=1, verbose=0)
    assert any(not np.array_equal(a, w.numpy()) for a, w in zip(before, adapter.trainable_weights))
    assert student.count_params() == student_params
    path = tmp_path / "d.keras"
    d.save(path)
    loaded = keras.models.load_model(path)
    for a, b in zip(adapter.weights, loaded.get_term("hint").adapter.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    np.testing.assert_allclose(loaded.evaluate(x, y, verbose=0, return_dict=True)["loss"],
                               d.evaluate(x, y, verbose=0, return_dict=True)["loss"], rtol=1e-5)
    # The exported student is the student alone: the same TFLite file as a never-distilled copy of it.
    from tfkd.export import to_tflite

    twin = keras.models.clone_model(student)
    twin.set_weights(student.get_weights())
    a, b = to_tflite(d.student, tmp_path / "a.tflite"), to_tflite(twin, tmp_path / "b.tflite")
    assert (tmp_path / "a.tflite").stat().st_size == (tmp_path / "b.tflite").stat().st_size
    del a, b


def test_adapter_auto_none_and_shapes():
    teacher, student = _pair()
    with pytest.raises(ValueError, match=r"adapter=None.*\(None, 4, 4, 8\).*\(None, 4, 4, 16\)"):
        tfkd.Distiller(teacher, student, terms=[tfkd.terms.Hint("t_block2", "s_block2", adapter=None)])
    d = tfkd.Distiller(teacher, student, terms=[tfkd.terms.Hint("t_block1", "s_block2")])  # 8x8x8 <- 4x4x8
    adapter = d.get_term("hint").adapter
    assert adapter.resize and adapter.project is None
    assert tuple(adapter(np.zeros((2, 4, 4, 8), "float32")).shape) == (2, 8, 8, 8)
    with pytest.raises(ValueError, match="Attention needs feature maps"):
        tfkd.Distiller(teacher, student, terms=[tfkd.terms.Attention(("t_gap", "s_gap"))])


def test_feature_terms_explain_what_they_need():
    teacher, student = _pair()
    with pytest.raises(ValueError, match=r"no layer named 'nope'.*s_block1"):
        tfkd.Distiller(teacher, student, terms=[tfkd.terms.Hint("t_block1", "nope")])

    class Sub(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(C)

        def call(self, x):
            return self.dense(keras.ops.reshape(x, (-1, 64)))

    sub = Sub()
    sub(np.zeros((1, 8, 8, 1), "float32"))
    with pytest.raises(ValueError, match="subclassed model.*Functional or Sequential"):
        tfkd.Distiller(teacher, sub, terms=[tfkd.terms.Hint("t_block1", "dense")])
    with pytest.raises(ValueError, match="need a live teacher"):
        tfkd.Distiller(None, student, terms=[tfkd.terms.Hint("t_block1", "s_block1")])
    d = tfkd.Distiller(teacher, student, terms=[tfkd.terms.Hint("t_block1", "s_block1")])
    d.compile(optimizer="sgd")
    x, y = _data()
    cache = tfkd.cache_teacher_logits(teacher, x)
    with pytest.raises(ValueError, match="cached teacher logits carry no features"):
        d.fit(cache.inputs(x), y, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="needs labels"):
        dkd = tfkd.Distiller(teacher, student, terms=[tfkd.terms.DKD()])
        dkd.compile(optimizer="sgd")
        dkd.fit(x, epochs=1, verbose=0)


def test_bad_term_lists_are_refused():
    teacher, student = _pair()
    with pytest.raises(ValueError, match="either terms=.*temperature="):
        tfkd.Distiller(teacher, student, terms=[tfkd.terms.KD(2.0)], temperature=3.0)
    with pytest.raises(ValueError, match=r"duplicate names \['kd'\]"):
        tfkd.Distiller(teacher, student, terms=[tfkd.terms.KD(2.0), tfkd.terms.KD(4.0)])
    tfkd.Distiller(teacher, student, terms=[tfkd.terms.KD(2.0), tfkd.terms.KD(4.0, name="kd_t4")])
    with pytest.raises(TypeError, match="expected tfkd.terms objects"):
        tfkd.Distiller(teacher, student, terms=["kd"])
    with pytest.raises(ValueError, match="weight=-1.0 must be a finite number >= 0"):
        tfkd.terms.KD(2.0, weight=-1.0)
    with pytest.raises(ValueError, match="temperature=0.0 must be a finite number > 0"):
        tfkd.terms.DIST(temperature=0.0)


@pytest.mark.parametrize("loss", [keras.losses.KLDivergence(), keras.losses.kl_divergence])
def test_keras_losses_are_refused_as_distill_loss(loss):
    teacher, student = _pair()
    with pytest.raises(TypeError, match=r"is a Keras loss.*distill_loss=\"kl\""):
        tfkd.Distiller(teacher, student, distill_loss=loss)


def test_sample_weights_weight_per_example_terms_and_leave_batch_level_ones():
    teacher, student = _pair()
    x, y = _data()
    sw = np.where(np.arange(N) < N // 2, 1.0, 0.0).astype("float32")
    d = tfkd.Distiller(teacher, student, terms=[tfkd.terms.KD(2.0), tfkd.terms.DIST()])
    d.compile(optimizer="sgd")
    full = d.evaluate(x, y, batch_size=N, verbose=0, return_dict=True)
    weighted = d.evaluate(x, y, sample_weight=sw, batch_size=N, verbose=0, return_dict=True)
    s, t = _np(student(x)), _np(teacher(x))
    # Keras's "sum over batch size": sum(w * value) / batch.
    np.testing.assert_allclose(weighted["kd_loss"], (_np(L.kd_kl(s, t, 2.0)) * sw).sum() / N, rtol=1e-4)
    np.testing.assert_allclose(weighted["dist_loss"], full["dist_loss"], rtol=1e-6)


def test_dkd_warms_up_by_epoch_and_schedules_reach_terms_by_name():
    teacher, student = _pair()
    x, y = _data()
    d = tfkd.Distiller(teacher, student, terms=[tfkd.terms.DKD(warmup_epochs=4), tfkd.terms.KD(2.0)])
    d.compile(optimizer=keras.optimizers.SGD(0.0))  # no updates: only the ramp and the schedule change values
    full = _np(L.dkd(student(x), teacher(x), y, 4.0)).mean()
    sched = tfkd.TermSchedule("kd", "temperature", lambda epoch: 1.0 + epoch)
    weight = tfkd.TermSchedule("kd", "weight", lambda epoch: 0.5 * epoch)
    h = d.fit(x, y, batch_size=N, epochs=3, shuffle=False, verbose=0, callbacks=[sched, weight]).history
    np.testing.assert_allclose(h["dkd_loss"], [full / 4, 2 * full / 4, 3 * full / 4], rtol=1e-4)
    assert h["kd_temperature"] == [1.0, 2.0, 3.0] and h["kd_weight"] == [0.0, 0.5, 1.0]
    assert d.get_term("kd").temperature == 3.0
    with pytest.raises(ValueError, match="defined for one term"):
        d.alpha = 0.5
    with pytest.raises(ValueError, match="no term named 'hint'"):
        d.get_term("hint")


def test_shorthand_is_one_kd_term_and_alpha_moves_both_weights():
    teacher, student = _pair()
    d = tfkd.Distiller(teacher, student, temperature=3.0, alpha=0.7)
    assert [type(t).__name__ for t in d.terms] == ["KD"] and d.hard_weight == pytest.approx(0.3)
    d.alpha = 0.2
    assert (d.get_term("kd").weight, d.hard_weight) == pytest.approx((0.2, 0.8))
    d.temperature = 5.0
    assert d.get_term("kd").temperature == 5.0


def test_logit_standardisation_term_matches_the_function():
    teacher, student = _pair()
    x, y = _data()
    d = tfkd.Distiller(teacher, student, terms=[tfkd.terms.KD(2.0, standardize=True)], hard_weight=0.0)
    d.compile(optimizer="sgd")
    logs = d.evaluate(x, y, batch_size=N, verbose=0, return_dict=True)
    np.testing.assert_allclose(logs["kd_loss"], _np(L.kd_kl(student(x), teacher(x), 2.0, True)).mean(), rtol=1e-4)
    np.testing.assert_allclose(logs["loss"], logs["kd_loss"], rtol=1e-6)


def test_one_logit_sigmoid_models_train_with_binary_kd():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 5)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("float32")

    def mlp(width, seed):
        return keras.Sequential([keras.Input((5,)), keras.layers.Dense(
            width, "relu", kernel_initializer=keras.initializers.GlorotUniform(seed)),
            keras.layers.Dense(1, kernel_initializer=keras.initializers.GlorotUniform(seed + 1))])

    teacher, student = mlp(16, 1), mlp(4, 3)
    for d in (tfkd.Distiller(teacher, student, terms=[tfkd.terms.BinaryKD(2.0, weight=0.5)], hard_weight=0.5),
              tfkd.Distiller(teacher, student, temperature=2.0, alpha=0.5)):  # the shorthand picks BinaryKD
        d.compile(optimizer="sgd", loss="binary_crossentropy", metrics=["binary_accuracy"])
        logs = d.evaluate(x, y, batch_size=64, verbose=0, return_dict=True)
        s, t = _np(student(x)), _np(teacher(x))
        bce = np.mean(np.maximum(s[:, 0], 0) - s[:, 0] * y + np.log1p(np.exp(-np.abs(s[:, 0]))))
        kd = _np(L.binary_kd(s, t, 2.0)).mean()
        np.testing.assert_allclose(logs["hard_loss"], bce, rtol=1e-4)
        np.testing.assert_allclose(logs["loss"], 0.5 * bce + 0.5 * kd, rtol=1e-4)
        assert 0.0 <= logs["agreement"] <= 1.0
        d.fit(x, y, epochs=1, batch_size=16, verbose=0)
    with pytest.raises(ValueError, match="BinaryKD"):
        tfkd.Distiller(teacher, student, terms=[tfkd.terms.KD(2.0)])


def test_auto_pairs_matches_stages_by_resolution_and_mlps_by_depth(capsys):
    from tfkd import models

    teacher = models.build("plain_cnn:4", (28, 28, 1), 10, seed=0)
    student = models.build("plain_cnn:2", (28, 28, 1), 10, seed=1)
    pairs = tfkd.terms.auto_pairs(teacher, student)
    assert pairs == [("relu2", "relu1"), ("relu4", "relu2"), ("pool2", "pool2")]
    assert "matched by spatial resolution" in capsys.readouterr().out
    for t, s in pairs:
        assert teacher.get_layer(t).output.shape[1:3] == student.get_layer(s).output.shape[1:3]
    d = tfkd.Distiller(teacher, student, terms=[tfkd.terms.Attention(pairs)])  # usable as proposed
    assert len(d.terms[0].pairs) == 3
    m1, m2 = models.build("mlp:64", (28, 28, 1), 10), models.build("mlp:16", (28, 28, 1), 10)
    assert tfkd.terms.auto_pairs(m1, m2, verbose=False) == [("fc1", "fc1")]


@pytest.mark.parametrize("method", tfkd.terms.METHODS)
def test_every_named_method_builds_and_evaluates(method):
    teacher, student = _pair()
    terms, hard_weight = tfkd.terms.method_terms(method, teacher, student, epochs=24)
    d = tfkd.Distiller(teacher, student, terms=terms, hard_weight=hard_weight)
    d.compile(optimizer="sgd")
    x, y = _data()
    logs = d.evaluate(x, y, batch_size=16, verbose=0, return_dict=True)
    assert np.isfinite(logs["loss"]) and f"{terms[0].name}_loss" in logs
    assert tfkd.terms.needs_live_teacher(method) == (method in tfkd.terms.FEATURE_METHODS)
    if method == "dkd":
        assert terms[0].warmup_epochs == 2  # the authors' 20 of 240 epochs, scaled
    with pytest.raises(ValueError, match="not a known distillation method"):
        tfkd.terms.method_terms("crd")
