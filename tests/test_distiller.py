"""tfkd.Distiller: loss values against numpy, frozen teacher, batch forms, ensembles, caching, saving, bad input."""

import warnings

import keras
import numpy as np
import pytest

import tfkd
from tfkd.distiller import NonFiniteLossError

N, D, C = 64, 6, 4


def _softmax(z):
    z = z - z.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


def _kl_np(s, t, temp):
    pt, ps = _softmax(t / temp), _softmax(s / temp)
    return temp**2 * (pt * (np.log(pt) - np.log(ps))).sum(-1)


def _ce_np(y, s):
    return -np.log(_softmax(s)[np.arange(len(y)), y])


def _data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N, D)).astype("float32")
    y = (np.abs(x[:, :C]).argmax(-1)).astype("int32")
    return x, y


def _mlp(width=16, seed=0, out=C, bn=False, dropout=0.0, reg=None, name=None):
    init = keras.initializers.GlorotUniform(seed=seed)
    layers = [keras.Input((D,)), keras.layers.Dense(width, activation="relu", kernel_initializer=init,
                                                    kernel_regularizer=reg)]
    if bn:
        layers.append(keras.layers.BatchNormalization())
    if dropout:
        layers.append(keras.layers.Dropout(dropout))
    layers.append(keras.layers.Dense(out, kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 1),
                                     kernel_regularizer=reg))
    return keras.Sequential(layers, name=name)


def _distiller(teacher=None, student=None, **kw):
    teacher = teacher if teacher is not None else _mlp(32, seed=1, bn=True, dropout=0.3)
    student = student if student is not None else _mlp(8, seed=2)
    d = tfkd.Distiller(teacher, student, **kw)
    d.compile(optimizer=keras.optimizers.SGD(0.05), metrics=["accuracy"])
    return d


# --- loss values against a hand computation ---------------------------------------------------------------------

@pytest.mark.parametrize("alpha,temperature", [(0.9, 4.0), (0.3, 1.0), (1.0, 2.0), (0.0, 3.0)])
def test_evaluate_loss_matches_numpy(alpha, temperature):
    x, y = _data()
    d = _distiller(alpha=alpha, temperature=temperature)
    logs = d.evaluate(x, y, batch_size=N, verbose=0, return_dict=True)
    s = d.student.predict(x, verbose=0)
    t = d.teacher.predict(x, verbose=0)
    soft, hard = _kl_np(s, t, temperature).mean(), _ce_np(y, s).mean()
    np.testing.assert_allclose(logs["kd_loss"], soft, rtol=1e-4)
    np.testing.assert_allclose(logs["hard_loss"], hard, rtol=1e-4)
    np.testing.assert_allclose(logs["loss"], alpha * soft + (1 - alpha) * hard, rtol=1e-4)
    np.testing.assert_allclose(logs["agreement"], (s.argmax(-1) == t.argmax(-1)).mean(), atol=1e-6)


def test_sample_weights_and_regularisers_are_counted():
    x, y = _data()
    reg = keras.regularizers.L2(0.01)
    d = _distiller(student=_mlp(8, seed=2, reg=reg), alpha=0.5, temperature=2.0)
    sw = np.linspace(0.0, 2.0, N).astype("float32")
    logs = d.evaluate(x, y, sample_weight=sw, batch_size=N, verbose=0, return_dict=True)
    s, t = d.student.predict(x, verbose=0), d.teacher.predict(x, verbose=0)
    soft = (_kl_np(s, t, 2.0) * sw).sum() / N
    hard = (_ce_np(y, s) * sw).sum() / N
    l2 = sum(0.01 * float(np.sum(w.numpy() ** 2)) for w in d.student.trainable_weights if w.path.endswith("kernel"))
    assert l2 > 0.01
    np.testing.assert_allclose(logs["kd_loss"], soft, rtol=1e-4)
    np.testing.assert_allclose(logs["hard_loss"], hard, rtol=1e-4)
    np.testing.assert_allclose(logs["loss"], 0.5 * soft + 0.5 * hard + l2, rtol=1e-4)
    # Zero weight really removes an example: doubling the first (zero-weight) example's input changes nothing.
    x2 = x.copy()
    x2[0] *= 100
    logs2 = d.evaluate(x2, y, sample_weight=sw, batch_size=N, verbose=0, return_dict=True)
    np.testing.assert_allclose(logs2["loss"], logs["loss"], rtol=1e-5)


def test_one_hot_labels_give_the_same_hard_loss_as_sparse():
    x, y = _data()
    d = tfkd.Distiller(_mlp(32, seed=1), _mlp(8, seed=2), alpha=0.5)
    d.compile(optimizer="sgd")  # no compiled accuracy: Keras fixes its sparse/one-hot form on first use
    sparse = d.evaluate(x, y, batch_size=N, verbose=0, return_dict=True)
    one_hot = d.evaluate(x, np.eye(C, dtype="float32")[y], batch_size=N, verbose=0, return_dict=True)
    np.testing.assert_allclose(one_hot["hard_loss"], sparse["hard_loss"], rtol=1e-5)


def test_string_crossentropy_is_built_from_logits():
    x, y = _data()
    d = _distiller(alpha=0.0)
    d.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    logs = d.evaluate(x, y, batch_size=N, verbose=0, return_dict=True)
    np.testing.assert_allclose(logs["hard_loss"], _ce_np(y, d.student.predict(x, verbose=0)).mean(), rtol=1e-4)


# --- training only moves the student ---------------------------------------------------------------------------

def test_fit_changes_student_only_and_leaves_teacher_untouched():
    x, y = _data()
    teacher = _mlp(32, seed=1, bn=True, dropout=0.3)
    teacher.trainable = True
    before_t = [w.numpy().copy() for w in teacher.weights]  # includes BN moving mean/variance
    d = _distiller(teacher=teacher)
    before_s = [w.numpy().copy() for w in d.student.weights]
    d.fit(x, y, epochs=3, batch_size=16, verbose=0)
    for a, w in zip(before_t, teacher.weights):
        np.testing.assert_array_equal(a, w.numpy())
    assert teacher.trainable is True, "the user's teacher object was mutated"
    assert any(not np.array_equal(a, w.numpy()) for a, w in zip(before_s, d.student.weights))
    # The optimizer only tracks student variables (no slots wasted on the teacher).
    assert {id(v) for v in d.trainable_variables} == {id(v) for v in d.student.trainable_variables}


def test_training_reduces_the_loss_and_history_has_every_metric():
    x, y = _data()
    d = _distiller(alpha=0.7)
    h = d.fit(x, y, epochs=8, batch_size=16, verbose=0).history
    assert set(h) >= {"loss", "kd_loss", "hard_loss", "agreement", "accuracy"}
    assert h["loss"][-1] < h["loss"][0]
    assert h["agreement"][-1] >= h["agreement"][0]


# --- batch forms -----------------------------------------------------------------------------------------------

def test_unlabeled_batches_train_on_the_kd_loss_and_say_so():
    x, _ = _data()
    d = _distiller(alpha=0.3, temperature=2.0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        h = d.fit(x, epochs=2, batch_size=16, verbose=0).history
    assert any("no labels" in str(w.message) for w in caught)
    assert h["hard_loss"] == [0.0, 0.0]
    np.testing.assert_allclose(h["loss"], h["kd_loss"], rtol=1e-6)  # full weight on soft, not alpha * soft
    assert "accuracy" not in h


def test_two_view_batches_feed_the_teacher_its_own_input():
    x, y = _data()
    x_teacher = x[::-1].copy()
    d = _distiller(alpha=1.0, temperature=2.0)
    for form in ((x, x_teacher), {"student": x, "teacher": x_teacher}):
        logs = d.evaluate(form, y, batch_size=N, verbose=0, return_dict=True)
        s, t = d.student.predict(x, verbose=0), d.teacher.predict(x_teacher, verbose=0)
        np.testing.assert_allclose(logs["kd_loss"], _kl_np(s, t, 2.0).mean(), rtol=1e-4)
    h = d.fit((x, x_teacher), y, epochs=1, batch_size=16, verbose=0).history
    assert np.isfinite(h["loss"][0])


def test_two_teachers_blend_in_logit_and_probability_space():
    x, y = _data()
    t1, t2 = _mlp(16, seed=3), _mlp(16, seed=5)
    l1, l2 = t1.predict(x, verbose=0), t2.predict(x, verbose=0)
    ens = tfkd.TeacherEnsemble([t1, t2], weights=[3, 1])
    np.testing.assert_allclose(ens.predict(x, verbose=0), 0.75 * l1 + 0.25 * l2, rtol=1e-5, atol=1e-6)
    probs = tfkd.TeacherEnsemble([t1, t2], space="probs")
    np.testing.assert_allclose(_softmax(probs.predict(x, verbose=0)), 0.5 * _softmax(l1) + 0.5 * _softmax(l2),
                               rtol=1e-5, atol=1e-6)
    d = _distiller(teacher=[t1, t2], teacher_weights=[3, 1], alpha=1.0, temperature=3.0)
    assert isinstance(d.teacher, tfkd.TeacherEnsemble)
    logs = d.evaluate(x, y, batch_size=N, verbose=0, return_dict=True)
    s = d.student.predict(x, verbose=0)
    np.testing.assert_allclose(logs["kd_loss"], _kl_np(s, 0.75 * l1 + 0.25 * l2, 3.0).mean(), rtol=1e-4)
    d.fit(x, y, epochs=1, batch_size=16, verbose=0)
    np.testing.assert_array_equal(t1.predict(x, verbose=0), l1)


# --- cached teacher outputs ------------------------------------------------------------------------------------

def test_cached_logits_give_the_same_first_epoch_as_a_live_teacher():
    x, y = _data()
    teacher = _mlp(32, seed=1, bn=True, dropout=0.3)
    runs = {}
    for mode in ("live", "cached"):
        d = _distiller(teacher=teacher, student=_mlp(8, seed=2), alpha=0.8, temperature=3.0)
        if mode == "live":
            runs[mode] = d.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0).history
        else:
            cache = tfkd.cache_teacher_logits(teacher, x)
            runs[mode] = d.fit(cache.inputs(x), y, epochs=1, batch_size=16, shuffle=False, verbose=0).history
        runs[mode + "_w"] = [w.numpy() for w in d.student.weights]
    for key in ("loss", "kd_loss", "hard_loss", "agreement"):
        np.testing.assert_allclose(runs["cached"][key], runs["live"][key], rtol=1e-5)
    for a, b in zip(runs["live_w"], runs["cached_w"]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_cache_refuses_inputs_the_teacher_never_saw(tmp_path):
    x, y = _data()
    cache = tfkd.cache_teacher_logits(_mlp(16, seed=3), x)
    with pytest.raises(ValueError, match="computed on 64"):
        cache.inputs(x[:32])
    with pytest.raises(ValueError, match="different contents or order"):
        cache.inputs(x[::-1].copy())
    cache.save(tmp_path / "c.npz")
    loaded = tfkd.teachers.TeacherCache.load(tmp_path / "c.npz")
    np.testing.assert_array_equal(loaded.logits, cache.logits)
    ds = loaded.dataset(x, y, batch_size=16, shuffle=True)
    d = tfkd.Distiller(None, _mlp(8, seed=2), alpha=0.5)  # no teacher at all: logits come from the cache
    d.compile(optimizer="sgd")
    assert np.isfinite(d.fit(ds, epochs=1, verbose=0).history["loss"][0])
    with pytest.raises(ValueError, match="teacher=None needs cached logits"):
        d.fit(x, y, epochs=1, verbose=0)


# --- schedules -------------------------------------------------------------------------------------------------

def test_alpha_schedule_takes_effect_without_retracing():
    x, y = _data()
    traces = []

    def counting_kl(s, t, temperature):
        traces.append(1)  # Python runs only while tracing
        return tfkd.losses.kd_kl(s, t, temperature)

    d = _distiller(alpha=1.0, distill_loss=counting_kl)
    schedule = tfkd.AlphaSchedule(tfkd.schedules.step({0: 1.0, 2: 0.0}))
    temp = tfkd.TemperatureSchedule(tfkd.schedules.linear_decay(4.0, 1.0, begin_epoch=0, end_epoch=3))
    h = d.fit(x, y, epochs=4, batch_size=16, verbose=0, callbacks=[schedule, temp]).history
    assert h["alpha"] == [1.0, 1.0, 0.0, 0.0]
    np.testing.assert_allclose(h["temperature"], [4.0, 3.0, 2.0, 1.0], rtol=1e-6)
    np.testing.assert_allclose(h["loss"][:2], h["kd_loss"][:2], rtol=1e-5)
    np.testing.assert_allclose(h["loss"][2:], h["hard_loss"][2:], rtol=1e-5)
    traced_once = len(traces)
    d.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[schedule])
    assert len(traces) == traced_once, "changing alpha/temperature retraced the train step"
    bad = tfkd.AlphaSchedule(lambda epoch: 1.5)
    bad.set_model(d)
    with pytest.raises(ValueError, match="alpha=1.5"):
        bad.on_epoch_begin(0)


# --- saving ----------------------------------------------------------------------------------------------------

def test_save_load_predicts_identically_and_training_continues(tmp_path):
    x, y = _data()
    d = _distiller(alpha=0.6, temperature=2.5, distill_loss="mse")
    d.fit(x, y, epochs=1, batch_size=16, verbose=0)
    path = tmp_path / "distiller.keras"
    d.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, tfkd.Distiller)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), d.predict(x, verbose=0))
    assert (loaded.alpha, loaded.temperature) == pytest.approx((0.6, 2.5))
    assert loaded.distill_loss is tfkd.losses.logit_mse
    cfg = d.get_config()
    clone = tfkd.Distiller.from_config(cfg)
    assert clone.alpha == pytest.approx(0.6) and clone.hard_weight == pytest.approx(0.4)
    # Loading restores the compile state and optimizer slots: continuing gives the same step as the original.
    h_loaded = loaded.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0).history
    h_orig = d.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0).history
    np.testing.assert_allclose(h_loaded["loss"], h_orig["loss"], rtol=1e-5)
    # The student alone saves and loads as a plain Keras model (what gets deployed).
    d.student.save(tmp_path / "student.keras")
    np.testing.assert_array_equal(keras.models.load_model(tmp_path / "student.keras").predict(x, verbose=0),
                                  d.student.predict(x, verbose=0))


# --- bad input -------------------------------------------------------------------------------------------------

def test_mismatched_output_shapes_are_refused():
    with pytest.raises(ValueError, match="teacher outputs 5 logits but student outputs 4"):
        tfkd.Distiller(_mlp(8, out=5), _mlp(8))


def test_softmax_teacher_is_refused_statically_and_at_the_first_batch():
    soft_teacher = keras.Sequential([keras.Input((D,)), keras.layers.Dense(C, activation="softmax")])
    with pytest.raises(ValueError, match="ends in a softmax"):
        tfkd.Distiller(soft_teacher, _mlp(8))
    # Hidden softmax (inside a wrapper layer the static check cannot see): caught on the first batch.
    hidden = keras.Sequential([keras.Input((D,)), keras.layers.Dense(C), keras.layers.Activation("softmax"),
                               keras.layers.Identity()])
    d = _distiller(teacher=hidden)
    x, y = _data()
    with pytest.raises(Exception, match="look like probabilities"):
        d.fit(x, y, epochs=1, verbose=0)


@pytest.mark.parametrize("kw,match", [
    ({"temperature": 0.0}, "temperature=0.0 must be"),
    ({"temperature": -2}, "temperature=-2.0 must be"),
    ({"alpha": 1.2}, r"alpha=1.2 is outside \[0, 1\]"),
    ({"alpha": -0.1}, r"alpha=-0.1 is outside"),
    ({"distill_loss": "nope"}, "distill_loss='nope'"),
])
def test_bad_hyperparameters_are_refused(kw, match):
    with pytest.raises(ValueError, match=match):
        tfkd.Distiller(_mlp(8), _mlp(8, seed=3), **kw)


def test_setting_a_bad_alpha_later_is_refused_and_keeps_the_old_value():
    d = _distiller(alpha=0.5)
    with pytest.raises(ValueError, match="alpha=2.0"):
        d.alpha = 2.0
    assert d.alpha == pytest.approx(0.5)


def test_labels_with_more_classes_than_outputs_are_refused():
    x, y = _data()
    d = _distiller()
    with pytest.raises(Exception, match="class index >= 4"):
        d.fit(x, np.where(y == 0, 7, y), epochs=1, verbose=0)
    with pytest.raises(ValueError, match="one-hot with 6 classes but the student outputs 4"):
        d.fit(x, np.eye(6, dtype="float32")[y], epochs=1, verbose=0)


def test_nan_loss_stops_names_the_term_and_keeps_the_last_good_weights():
    x, y = _data()
    d = _distiller(alpha=0.5)
    d.fit(x, y, epochs=1, batch_size=16, verbose=0)
    good = [w.numpy().copy() for w in d.student.weights]
    t_bad = d.teacher.predict(x, verbose=0)
    t_bad[20] = np.nan  # in the second batch of 16
    with pytest.raises(NonFiniteLossError, match=r"the kd \(KD\) loss became NaN") as err:
        d.fit({"student": x, "teacher_logits": t_bad}, y, epochs=1, batch_size=16, shuffle=False, verbose=0)
    assert "last good weights" in str(err.value)
    # Only the first (clean) batch of this epoch was applied; the NaN batch's update was not.
    assert all(np.isfinite(w.numpy()).all() for w in d.student.weights)
    assert any(not np.array_equal(a, w.numpy()) for a, w in zip(good, d.student.weights))


def test_hard_term_nan_is_named():
    x, y = _data()
    d = _distiller(alpha=0.5)

    def nan_hard(y_true, y_pred):
        return keras.ops.sum(y_pred, axis=-1) * np.float32("nan")

    d.compile(optimizer="sgd", loss=nan_hard)
    with pytest.raises(NonFiniteLossError, match=r"hard \(label\) loss"):
        d.fit(x, y, epochs=1, verbose=0)


def test_compile_is_required_and_non_models_are_refused():
    with pytest.raises(TypeError, match="student="):
        tfkd.Distiller(_mlp(8), "student")
    m = _mlp(8)
    with pytest.raises(ValueError, match="same object"):
        tfkd.Distiller(m, m)
    d = tfkd.Distiller(_mlp(8), _mlp(8, seed=4))
    x, y = _data()
    with pytest.raises(RuntimeError, match="compile"):
        d.fit(x, y, verbose=0)


# --- consistent teaching -----------------------------------------------------------------------------------------

def test_augment_gives_teacher_and_student_the_same_random_view(tmp_path):
    from tfkd import augment

    x = np.random.default_rng(0).random((64, 8, 8, 1)).astype("float32")
    y = np.zeros(64, "int32")

    def conv_net():
        return keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                                 keras.layers.Dense(4, kernel_initializer=keras.initializers.GlorotUniform(3))])

    teacher, student = conv_net(), conv_net()
    student.set_weights(teacher.get_weights())
    layer = augment.layer("simple", magnitude=0.9, mixup=0.4, seed=1)
    assert np.abs(keras.ops.convert_to_numpy(layer(x, training=True)) - x).mean() > 0.01  # the view does change
    d = tfkd.Distiller(teacher, student, alpha=1.0, temperature=1.0, augment=layer)
    d.compile(optimizer=keras.optimizers.SGD(0.0))  # no update: student stays equal to the teacher
    h = d.fit(x, y, epochs=2, batch_size=16, verbose=0).history
    # Identical networks on the same augmented view: zero KL. Different views would give a positive loss.
    np.testing.assert_allclose(h["kd_loss"], 0.0, atol=1e-6)
    d.save(tmp_path / "aug.keras")
    loaded = keras.models.load_model(tmp_path / "aug.keras")
    assert isinstance(loaded.augment.layers[-1], augment.MixUp)
    cache = tfkd.cache_teacher_logits(teacher, x)
    with pytest.raises(ValueError, match="needs a live teacher"):
        d.fit(cache.inputs(x), y, epochs=1, verbose=0)
    with pytest.raises(TypeError, match="augment="):
        tfkd.Distiller(teacher, conv_net(), augment=lambda v: v)



def test_a_mixing_augment_mixes_the_labels_of_the_hard_loss():
    """With mixup in ``augment=``, the hard loss is ``lam CE(y) + (1 - lam) CE(y[perm])`` on the mixed view, checked
    by replaying the same seeded mixup by hand; a label-reading term (DKD) and a MixUp not last are refused."""
    from tfkd import augment

    rng = np.random.default_rng(0)
    x = rng.random((16, D)).astype("float32")
    y = rng.integers(0, C, 16).astype("int32")
    teacher, student = _mlp(8, seed=1), _mlp(8, seed=2)
    d = tfkd.Distiller(teacher, student, alpha=0.0, augment=augment.MixUp(0.4, seed=5))
    d.compile(optimizer=keras.optimizers.SGD(0.0))
    h = d.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0).history
    replay = augment.MixUp(0.4, seed=5)
    mixed, lam, perm = (keras.ops.convert_to_numpy(v) for v in replay.mix(x))
    logits = keras.ops.convert_to_numpy(student(mixed))
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    ce = lambda labels: -logp[np.arange(16), labels]
    expected = np.mean(lam * ce(y) + (1 - lam) * ce(y[perm]))
    assert np.sum((lam > 0.1) & (lam < 0.9)) >= 3  # the batch is really mixed
    np.testing.assert_allclose(h["hard_loss"][0], expected, rtol=1e-5)
    assert not np.isclose(expected, np.mean(ce(y)), rtol=1e-3)  # unmixed labels would give another value
    with pytest.raises(ValueError, match="'dkd' .*mixes images"):
        tfkd.Distiller(teacher, student, terms=[tfkd.terms.DKD()], augment=augment.layer("none", mixup=0.2))
    inner_mix = keras.Sequential([augment.MixUp(0.2), keras.layers.Identity()])
    with pytest.raises(ValueError, match="not its last layer"):
        tfkd.Distiller(teacher, student, augment=inner_mix)

# --- silent wrong results a careless user could meet (Reliability II, item 8) -----------------------------------

def test_a_nan_pixel_behind_a_relu_stops_plain_fit_before_its_update():
    x, y = _data()
    d = _distiller()
    d.fit(x, y, epochs=1, batch_size=16, verbose=0)
    good = [w.numpy().copy() for w in d.student.weights]
    x_bad = x.copy()
    x_bad[3, 1] = np.nan  # the first batch: no update of this epoch may land
    with pytest.raises(NonFiniteLossError, match="became NaN or infinite at optimizer step"):
        d.fit(x_bad, y, epochs=1, batch_size=16, shuffle=False, verbose=0)
    for a, w in zip(good, d.student.weights):
        np.testing.assert_array_equal(a, w.numpy())


def test_sample_weights_that_train_nothing_or_reward_errors_are_refused():
    x, y = _data()
    d = _distiller()
    with pytest.raises(ValueError, match="sample_weight is all zeros"):
        d.fit(x, y, sample_weight=np.zeros(N, "float32"), epochs=1, verbose=0)
    with pytest.raises(ValueError, match="negative values"):
        d.fit(x, y, sample_weight=-np.ones(N, "float32"), epochs=1, verbose=0)
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((x, y, -np.ones(N, "float32"))).batch(16)
    with pytest.raises(tf.errors.InvalidArgumentError, match="negative weight"):
        d.fit(ds, epochs=1, verbose=0)


def test_fractional_labels_are_refused_not_truncated():
    import tensorflow as tf

    x, y = _data()
    d = _distiller()
    with pytest.raises(tf.errors.InvalidArgumentError, match="fractional value"):
        d.fit(x, y.astype("float32") + 0.5, epochs=1, verbose=0)


def test_squashed_teachers_tiny_temperatures_and_one_class_labels_are_called_out():
    x, y = _data()
    sigmoid = keras.Sequential([keras.Input((D,)), keras.layers.Dense(C, activation="sigmoid")])
    with pytest.raises(ValueError, match="ends in a sigmoid, so it outputs probabilities"):
        tfkd.Distiller(sigmoid, _mlp(8, seed=2))
    with pytest.raises(ValueError, match="temperature=1e-30 is too small"):
        tfkd.Distiller(_mlp(32, seed=1), _mlp(8, seed=2), temperature=1e-30)
    d = _distiller()
    with pytest.warns(UserWarning, match="single class"):
        d.fit(x, np.full(N, 2, "int32"), epochs=1, verbose=0)
