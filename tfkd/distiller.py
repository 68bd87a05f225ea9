"""``tfkd.Distiller``: a ``keras.Model`` that trains a student from a frozen teacher's outputs and from labels."""

from __future__ import annotations

import warnings

import keras
import numpy as np
import tensorflow as tf

from tfkd import augment as kd_augment
from tfkd import losses as kd_losses
from tfkd import precision, rng
from tfkd import terms as kd_terms
from tfkd.features import FeatureExtractor
from tfkd.teachers import LOGITS_KEY, STUDENT_KEY, TEACHER_KEY, TeacherEnsemble

_NONFINITE_MARKER = "tfkd-nonfinite:"

# String hard losses that would silently assume probabilities; the Distiller's student returns logits.
_LOGIT_LOSSES = {
    "sparse_categorical_crossentropy": lambda: keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    "categorical_crossentropy": lambda: keras.losses.CategoricalCrossentropy(from_logits=True),
    "binary_crossentropy": lambda: keras.losses.BinaryCrossentropy(from_logits=True),
}


def _sample_inputs(x, n=512):
    """Up to ``n`` student inputs from a fit's ``x`` (array, or a dataset's first batches), or None."""
    if isinstance(x, tf.data.Dataset):
        out = []
        for batch in x.take(max(1, n // 32)):
            first = batch[0] if isinstance(batch, tuple) else batch
            if isinstance(first, (tuple, dict)):
                return None
            out.append(np.asarray(first))
            if sum(len(o) for o in out) >= n:
                break
        return np.concatenate(out)[:n] if out else None
    if isinstance(x, np.ndarray) or tf.is_tensor(x):
        return np.asarray(x[:n])
    return None


def _weighted_mean(per_example, sample_weight):
    """Keras's "sum over batch size": ``sum(value * weight) / batch``, the same reduction for every term."""
    if sample_weight is not None:
        weight = tf.cast(sample_weight, tf.float32)
        weight = tf.debugging.check_numerics(weight, "sample_weight holds NaN or infinite values")
        check = tf.debugging.Assert(tf.reduce_all(weight >= 0.0), [
            "sample_weight holds a negative weight (the loss would reward errors); weights must be >= 0. Smallest:",
            tf.reduce_min(weight)])
        with tf.control_dependencies([check]):
            weight = tf.identity(weight)
        while weight.shape.rank < per_example.shape.rank:  # [batch] weights on [batch, ...] values
            weight = weight[..., None]
        per_example = per_example * weight
    # divide_no_nan: under tf.distribute a replica can get an empty share of a short last batch (0 / 0 -> 0).
    return tf.math.divide_no_nan(tf.reduce_sum(per_example), tf.cast(tf.size(per_example), tf.float32))


def _finite(value, term, what="loss"):
    """``value``, or abort the step (before any update) if it is NaN/inf; ``fit`` names ``term`` in the error.

    ``check_numerics`` is a single op on the value's path to the gradients, so no update can run after it fails,
    and it needs no control-flow guard in the graph.
    """
    return tf.debugging.check_numerics(value, f"{_NONFINITE_MARKER}{term} {what} became NaN or infinite")


class _FunctionLoss(keras.losses.Loss):
    """A plain ``fn(y_true, y_pred) -> [batch]`` as a Loss, so sample weights and reduction apply as in Keras."""

    def __init__(self, fn):
        super().__init__(name=getattr(fn, "__name__", "hard_loss"))
        self.fn = fn

    def call(self, y_true, y_pred):
        return self.fn(y_true, y_pred)


class NonFiniteLossError(FloatingPointError):
    """A loss term became NaN or infinite; the update was not applied, the student keeps its last good weights."""


DEFAULT_ALPHA = 0.5  # weight of the soft term in the shorthand; the hard (label) loss gets 1 - alpha
DEFAULT_TEMPERATURE = 4.0


def _check_alpha(alpha):
    alpha = float(alpha)
    if not 0.0 <= alpha <= 1.0 or np.isnan(alpha):
        raise ValueError(f"alpha={alpha} is outside [0, 1]; alpha is the weight of the distillation (soft) loss, "
                         "total = alpha * soft + (1 - alpha) * hard.")
    return alpha


def _ends_in_softmax(model) -> bool:
    return _final_activation(model) == "softmax"


def _final_activation(model):
    """``"softmax"`` / ``"sigmoid"`` when the last layer squashes its outputs into probabilities, else None."""
    layers = getattr(model, "layers", None)
    if not layers:
        return None
    last = layers[-1]
    if isinstance(last, keras.layers.Softmax):
        return "softmax"
    if isinstance(last, keras.layers.Activation):
        name = getattr(last.activation, "__name__", "")
        return name if name in ("softmax", "sigmoid") else None
    name = getattr(getattr(last, "activation", None), "__name__", "")
    return name if name in ("softmax", "sigmoid") else None


def _output_dim(model):
    try:
        return model.output_shape[-1]
    except (AttributeError, ValueError, RuntimeError):
        return None


def _shorthand_term(distill_loss, temperature, alpha, num_classes):
    """``temperature=, alpha=, distill_loss=`` as the one term they always meant."""
    kd_terms.logits._refuse_keras_loss(distill_loss, "distill_loss")
    fn = kd_losses.get(distill_loss)
    if fn is kd_losses.kd_kl:
        if num_classes == 1:  # a softmax over one logit is constant: the KD of a sigmoid classifier is binary
            return kd_terms.BinaryKD(temperature, weight=alpha, name="kd")
        return kd_terms.KD(temperature, weight=alpha)
    name = {kd_losses.soft_cross_entropy: "soft_ce", kd_losses.logit_mse: "logit_mse"}.get(fn, "kd")
    return kd_terms.SoftLoss(fn, temperature, weight=alpha, name=name)


def _check_fit_arrays(args, kwargs):
    """What can be seen at once in numpy inputs: weights that train nothing or reward errors, a single class."""
    y = args[1] if len(args) > 1 else kwargs.get("y")
    sw = kwargs.get("sample_weight")
    if sw is not None and isinstance(sw, np.ndarray | list):
        sw = np.asarray(sw, dtype="float64")
        if not np.isfinite(sw).all() or (sw < 0).any():
            raise ValueError(f"sample_weight holds {'NaN/inf' if not np.isfinite(sw).all() else 'negative'} values "
                             f"(smallest {np.nanmin(sw):g}); weights must be finite and >= 0.")
        if sw.size and not sw.any():
            raise ValueError(f"sample_weight is all zeros ({sw.size} examples): every loss would be 0 and nothing "
                             "would train. Give the examples that count a positive weight.")
    if isinstance(y, np.ndarray) and y.ndim <= 2 and y.size and (y.ndim == 1 or y.shape[-1] == 1):
        classes = np.unique(y)
        if len(classes) == 1:
            warnings.warn(f"labels y hold a single class ({classes[0]!r}) in all {len(y)} examples: accuracy on them "
                          "is trivially 100% and says nothing. Check the data or the split.", stacklevel=3)


class _EpochCounter(keras.callbacks.Callback):
    """Keeps ``Distiller._epoch`` at the current (0-based, resume-aware) epoch, for warm-up terms such as DKD."""

    def on_epoch_begin(self, epoch, logs=None):
        self.model._epoch.assign(float(epoch))


@keras.saving.register_keras_serializable(package="tfkd")
class Distiller(keras.Model):
    """Trains ``student`` from a frozen ``teacher``: ``hard_weight * hard + sum(weight_i * term_i) + regularisation``.

    ``terms`` is a list of :mod:`tfkd.terms` (logit terms such as ``KD``, ``DKD``, ``DIST``; feature terms such as
    ``Hint``, ``Attention``, ``RKD``, ``SimilarityPreserving`` that tap layers by name). ``hard`` is the loss given
    to ``compile(loss=...)`` (default: cross-entropy from logits, sparse or one-hot from the label shape; binary
    cross-entropy for a one-logit student). The student's regularisation losses (``student.losses``) are added;
    ``sample_weight`` weights the hard loss and every per-example term (batch-level terms such as DIST, RKD and SP
    relate the examples of a batch and ignore it).

    The shorthand ``temperature=4.0, alpha=0.9, distill_loss="kl"`` (without ``terms``) means
    ``terms=[KD(temperature, weight=alpha)], hard_weight=1 - alpha`` (defaults: ``temperature=4.0, alpha=0.5``;
    ``alpha`` weights the *soft* term, where keras.distillation's ``student_loss_weight`` weights the labels);
    ``alpha`` and ``temperature`` stay settable (and ``tfkd.AlphaSchedule`` / ``TemperatureSchedule`` keep
    working). ``distill_loss`` may be ``"kl"``,
    ``"soft_cross_entropy"``, ``"mse"`` or a callable ``(student_logits, teacher_logits, temperature) -> [batch]``;
    Keras losses are refused (they take probabilities, ``(y_true, y_pred)``).

    The teacher runs with ``training=False`` and is never updated; the user's teacher object is not modified.
    Only student weights (and the adapters feature terms own) change. ``evaluate`` reports the same losses;
    ``predict`` and ``__call__`` run the student. Feature terms tap Functional/Sequential models through one
    multi-output forward per model and step; their adapters are saved with the Distiller, never with the student.

    Batches (from numpy arrays or ``tf.data``) may be:

    - ``(x, y)`` or ``(x, y, sample_weight)``: teacher and student see ``x``;
    - ``x`` alone (no labels): pure distillation; the hard term drops out (a warning says so) and the terms'
      weights are scaled up so they carry the hard term's share too (the shorthand's KD term gets weight 1);
    - ``((x_student, x_teacher), y)`` or ``({"student": xs, "teacher": xt}, y)``: the teacher sees its own view
      (parallel domain-adaptation data, clean inputs for the teacher and noised ones for the student);
    - ``({"student": x, "teacher_logits": t}, y)``: precomputed teacher logits, from :func:`tfkd.cache_teacher_logits`
      (logit terms only: feature terms need the live teacher).

    ``teacher`` may be a list of models: they are blended by :class:`tfkd.TeacherEnsemble` (``teacher_weights``,
    ``ensemble_space``). ``teacher=None`` is allowed when every batch carries cached teacher logits.

    ``augment`` (a Keras layer, e.g. ``tfkd.augment.layer("simple", mixup=0.2)``) makes one random view of each
    training batch that teacher *and* student see: "consistent teaching" / function matching (Beyer et al., 2022).
    It needs a live teacher on the student's input (no cached logits, no separate teacher view). When it ends in
    :class:`tfkd.augment.MixUp`, the hard loss mixes the labels as the images were mixed
    (``lam * loss(y) + (1 - lam) * loss(y[perm])``); terms that read the ground-truth class (DKD) are refused.

    ``teacher_dtype`` runs the teacher's forward in reduced precision (``"bfloat16"`` on CPUs with fast bf16
    kernels, ``"float16"`` on GPUs; see :mod:`tfkd.precision`): a frozen copy computes in that type, its outputs
    are cast to float32, and every loss stays float32. ``"auto"`` times the candidates against float32 on the first
    ``fit``'s inputs and keeps one only if it is faster and agrees with float32 (``teacher_precision_report`` says
    what was measured). The default, float32, reproduces the teacher exactly.

    Metrics: ``loss``, ``hard_loss``, one ``<term name>_loss`` per term (unweighted value; ``kd_loss`` for the
    shorthand), ``agreement`` (teacher-student top-1 agreement) and the metrics given to ``compile``. If a loss term
    becomes NaN or infinite, training stops with :class:`NonFiniteLossError` naming the term, and the update that
    produced it is not applied.

    Example:

        import keras, numpy as np, tfkd
        x = np.random.rand(256, 8).astype("float32"); y = (x.sum(1) > 4).astype("int32")
        teacher = keras.Sequential([keras.Input((8,)), keras.layers.Dense(32, "relu", name="t_hidden"),
                                    keras.layers.Dense(2)])
        student = keras.Sequential([keras.Input((8,)), keras.layers.Dense(8, "relu", name="s_hidden"),
                                    keras.layers.Dense(2)])
        distiller = tfkd.Distiller(teacher, student, terms=[
            tfkd.terms.KD(temperature=4.0, weight=0.9),
            tfkd.terms.Hint("t_hidden", "s_hidden", weight=1.0),   # a dense adapter maps 8 -> 32 features
        ], hard_weight=0.1)
        distiller.compile(optimizer="adam", metrics=["accuracy"])
        distiller.fit(x, y, epochs=2, verbose=0)
        student.predict(x[:4], verbose=0)
    """

    def __init__(self, teacher, student, *, terms=None, hard_weight=None, temperature=None, alpha=None,
                 distill_loss=None, teacher_weights=None, ensemble_space="logits", augment=None,
                 teacher_dtype="float32", **kwargs):
        super().__init__(**kwargs)
        teacher_dtype = precision.check_dtype(teacher_dtype)
        if not isinstance(student, keras.Model):
            raise TypeError(f"student={student!r} must be a keras.Model returning logits.")
        if isinstance(teacher, (list, tuple)):
            teacher = TeacherEnsemble(teacher, weights=teacher_weights, space=ensemble_space)
        elif teacher_weights is not None:
            raise ValueError("teacher_weights is only meaningful when teacher is a list of models.")
        if teacher is not None and not isinstance(teacher, keras.Model):
            raise TypeError(f"teacher={teacher!r} must be a keras.Model, a list of them, or None (cached logits).")
        if teacher is student:
            raise ValueError("teacher and student are the same object; for self-distillation pass a frozen copy "
                             "(keras.models.clone_model + set_weights) as the teacher.")
        if teacher is not None:
            members = teacher.teachers if isinstance(teacher, TeacherEnsemble) else [teacher]
            for t in members:
                squash = _final_activation(t)
                if squash:
                    raise ValueError(
                        f"teacher {t.name!r} ends in a {squash}, so it outputs probabilities, not logits; the "
                        "temperature must divide logits. Build the teacher with a linear last layer "
                        "(activation=None) and use from_logits=True losses for it.")
            t_dim, s_dim = _output_dim(teacher), _output_dim(student)
            if t_dim is not None and s_dim is not None and t_dim != s_dim:
                raise ValueError(f"teacher outputs {t_dim} logits but student outputs {s_dim}; teacher and student "
                                 "must predict the same classes (same last-layer width).")
        if _final_activation(student):
            raise ValueError(f"student {student.name!r} ends in a {_final_activation(student)}; it must return logits "
                             "(activation=None on its last layer). Add the activation only at export or prediction "
                             "time.")
        if augment is not None and not isinstance(augment, keras.layers.Layer):
            raise TypeError(f"augment={augment!r} must be a keras Layer (e.g. tfkd.augment.layer('simple')), so it "
                            "can be saved with the Distiller.")
        self.teacher = teacher
        self.student = student
        self.augment = augment
        if teacher_dtype != "float32" and (teacher is None or isinstance(teacher, TeacherEnsemble)):
            raise ValueError(f"teacher_dtype={teacher_dtype!r} needs one live teacher model; got "
                             f"{'cached logits (teacher=None)' if teacher is None else 'an ensemble'}. Use "
                             "teacher_dtype='float32'.")
        self.teacher_dtype = teacher_dtype
        self.teacher_precision_report = None  # what teacher_dtype="auto" measured, once fit has chosen
        # The teacher's forward runs in this copy (the teacher itself when float32). Not tracked: its weights are
        # the teacher's, copied at the start of every fit, and saved with the teacher.
        object.__setattr__(self, "_forward_teacher", teacher if teacher_dtype in ("float32", "auto") else
                           precision.reduced_precision_copy(teacher, teacher_dtype))
        num_classes = _output_dim(student)
        terms, hard_weight = self._resolve_terms(terms, hard_weight, temperature, alpha, distill_loss, num_classes)
        self.terms = terms
        # Mixup as the last step of augment: its labels are mixed along with the images (see _augment). Not tracked
        # attributes: the layers belong to (and are saved with) self.augment.
        pre_mix, mixup = kd_augment.split_mixup(augment) if augment is not None else (None, None)
        object.__setattr__(self, "_pre_mix", pre_mix)
        object.__setattr__(self, "_mixup", mixup)
        if mixup is not None:
            for term in terms:
                if term.needs_labels:
                    raise ValueError(f"term {term.name!r} ({type(term).__name__}) reads the ground-truth class, but "
                                     f"augment={augment.name!r} mixes images, whose class is then two classes. Use "
                                     "an augment without mixup, or a term that needs no labels (KD, DIST, ...).")
        self._hard_weight = self.add_weight(shape=(), initializer=keras.initializers.Constant(hard_weight),
                                            trainable=False, name="hard_weight")
        self._epoch = self.add_weight(shape=(), initializer="zeros", trainable=False, name="epoch")
        self._build_feature_taps()
        self.hard_loss_tracker = keras.metrics.Mean(name="hard_loss")
        self.term_trackers = [keras.metrics.Mean(name=f"{term.name}_loss") for term in self.terms]
        self.agreement_tracker = keras.metrics.Mean(name="agreement")
        self._hard_loss = None
        self._hard_loss_arg = None
        self._warned_unlabeled = False
        if student.built and (teacher is None or teacher.built):
            self.built = True

    @staticmethod
    def _resolve_terms(terms, hard_weight, temperature, alpha, distill_loss, num_classes):
        if terms is None:
            # 0.5, as in every tfkd recipe and as keras.distillation's student_loss_weight=0.5 implies
            alpha = _check_alpha(DEFAULT_ALPHA if alpha is None else alpha)
            term = _shorthand_term("kl" if distill_loss is None else distill_loss,
                                   DEFAULT_TEMPERATURE if temperature is None else temperature, alpha,
                                   num_classes)
            hard_weight = 1.0 - alpha if hard_weight is None else hard_weight
            terms = [term]
        else:
            given = [n for n, v in (("temperature", temperature), ("alpha", alpha), ("distill_loss", distill_loss))
                     if v is not None]
            if given:
                raise ValueError(f"pass either terms=[...] or the shorthand {', '.join(given)}=, not both: with "
                                 "terms, set each term's temperature and weight, and hard_weight for the labels.")
            terms = list(terms) if isinstance(terms, (list, tuple)) else [terms]
            for term in terms:
                if not isinstance(term, kd_terms.Term):
                    raise TypeError(f"terms contains {term!r}; expected tfkd.terms objects such as "
                                    "tfkd.terms.KD(4.0) or tfkd.terms.Hint('t_layer', 's_layer').")
            hard_weight = 1.0 if hard_weight is None else hard_weight
        names = [t.name for t in terms]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"terms have duplicate names {duplicates}; metrics are named after terms, so give each "
                             "its own, e.g. tfkd.terms.KD(2.0, name='kd_t2').")
        if num_classes is not None:
            for term in terms:
                term.validate_outputs(num_classes)
        return terms, kd_terms.base._check_number("hard_weight", hard_weight)

    def _build_feature_taps(self):
        """One multi-output extractor per model for the layers feature terms read; terms build their adapters."""
        t_names = [n for term in self.terms for n in term.feature_layers()[0]]
        s_names = [n for term in self.terms for n in term.feature_layers()[1]]
        t_ex = s_ex = None
        if t_names or s_names:
            tapping = [t.name for t in self.terms if any(t.feature_layers())]
            if self.teacher is None:
                raise ValueError(f"terms {tapping} read teacher features, so they need a live teacher: teacher=None "
                                 "(cached logits) carries logits only. Pass the teacher model.")
            if isinstance(self.teacher, TeacherEnsemble):
                raise ValueError(f"terms {tapping} read teacher features by layer name; an ensemble of teachers has "
                                 "no single feature map. Use logit terms (KD, DKD, DIST) with an ensemble.")
            t_ex = FeatureExtractor(self._forward_teacher, t_names, role="teacher")
            s_ex = FeatureExtractor(self.student, s_names, role="student")
        # Not tracked attributes: the extractors share the models' layers, whose weights are saved with them.
        object.__setattr__(self, "_teacher_taps", t_ex)
        object.__setattr__(self, "_student_taps", s_ex)
        for term in self.terms:
            term.build_adapters(t_ex.shapes if t_ex else {}, s_ex.shapes if s_ex else {})
            term.built = True

    def get_term(self, name):
        """The term called ``name`` (see ``[t.name for t in distiller.terms]``)."""
        for term in self.terms:
            if term.name == name:
                return term
        raise ValueError(f"no term named {name!r}; this Distiller's terms: {[t.name for t in self.terms]}.")

    # -- hyper-parameters held in variables, so schedules never retrace the step -------------------------------
    @property
    def hard_weight(self) -> float:
        """Weight of the hard (label) loss (>= 0)."""
        return float(keras.ops.convert_to_numpy(self._hard_weight))

    @hard_weight.setter
    def hard_weight(self, value):
        self._hard_weight.assign(kd_terms.base._check_number("hard_weight", value))

    def _single_term(self, attribute):
        if len(self.terms) != 1:
            raise ValueError(f"Distiller.{attribute} is defined for one term (the shorthand); this Distiller has "
                             f"{[t.name for t in self.terms]}: set distiller.get_term(name).weight and "
                             "distiller.hard_weight, or schedule them with tfkd.schedules.TermSchedule.")
        return self.terms[0]

    @property
    def alpha(self) -> float:
        """Weight of the single term, in [0, 1]; setting it also sets ``hard_weight = 1 - alpha``."""
        return self._single_term("alpha").weight

    @alpha.setter
    def alpha(self, value):
        value = _check_alpha(value)
        self._single_term("alpha").weight = value
        self._hard_weight.assign(1.0 - value)

    @property
    def temperature(self) -> float:
        """Temperature of the terms that have one (setting it sets all of them)."""
        tempered = [t for t in self.terms if t.has_temperature]
        if not tempered:
            raise ValueError(f"no term of this Distiller has a temperature: {[t.name for t in self.terms]}.")
        return tempered[0].temperature

    @temperature.setter
    def temperature(self, value):
        tempered = [t for t in self.terms if t.has_temperature]
        if not tempered:
            raise ValueError(f"no term of this Distiller has a temperature: {[t.name for t in self.terms]}.")
        for term in tempered:
            term.temperature = value

    @property
    def distill_loss(self):
        """The soft-loss function of the single logit term (the shorthand's ``distill_loss``)."""
        term = self._single_term("distill_loss")
        if isinstance(term, kd_terms.KD):
            return kd_losses.kd_kl
        return getattr(term, "loss_fn", None)

    # -- only the student (and adapters) train: the optimizer never sees teacher weights ------------------------
    @property
    def trainable_weights(self):
        if not self.trainable:
            return []
        return self.student.trainable_weights + [w for term in self.terms for w in term.trainable_weights]

    @property
    def non_trainable_weights(self):
        trainable = {id(v) for v in self.trainable_weights}
        return [w for w in self.weights if id(w) not in trainable]

    @property
    def trainable_variables(self):
        return self.trainable_weights

    @property
    def non_trainable_variables(self):
        trainable = {id(v) for v in self.trainable_weights}
        return [v for v in self.variables if id(v) not in trainable]

    def build(self, input_shape=None):
        self.built = True

    # -- compile -------------------------------------------------------------------------------------------------
    def compile(self, optimizer="adam", loss=None, metrics=None, *, jit_compile=False, **kwargs):
        """Like ``keras.Model.compile``; ``loss`` is the hard (label) loss on the student's logits.

        ``loss=None`` picks cross-entropy from logits (sparse or one-hot from the label shape; binary for one
        logit). The strings ``"sparse_categorical_crossentropy"``, ``"categorical_crossentropy"`` and
        ``"binary_crossentropy"`` are built with ``from_logits=True``. ``jit_compile`` defaults to False: XLA is
        slower on CPU, and it compiles away the in-step NaN guard.
        """
        if isinstance(loss, str) and loss in _LOGIT_LOSSES:
            hard = _LOGIT_LOSSES[loss]()
        elif loss is None:
            hard = None
        else:
            hard = keras.losses.get(loss)
            if not isinstance(hard, keras.losses.Loss):
                hard = _FunctionLoss(hard)
            if getattr(hard, "from_logits", True) is False:
                warnings.warn(f"loss={loss!r} has from_logits=False, but the student returns logits; pass "
                              "from_logits=True unless you mean it.", stacklevel=2)
        super().compile(optimizer=optimizer, loss=None, metrics=metrics, jit_compile=jit_compile, **kwargs)
        self._hard_loss = hard
        self._hard_loss_arg = loss

    def get_compile_config(self):
        config = super().get_compile_config()
        if config:
            config["loss"] = keras.saving.serialize_keras_object(self._hard_loss_arg)
        return config

    def compile_from_config(self, config):
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**config)
        if self.optimizer is not None and self.built:
            self.optimizer.build(self.trainable_variables)  # student (and adapter) variables only, as during fit

    # -- the step ------------------------------------------------------------------------------------------------
    def _split_inputs(self, x):
        """(student input, teacher input, cached teacher logits or None) from one batch's ``x``."""
        if isinstance(x, dict) and STUDENT_KEY in x:
            unknown = set(x) - {STUDENT_KEY, TEACHER_KEY, LOGITS_KEY}
            if unknown:
                raise ValueError(f"batch input dict has unknown keys {sorted(unknown)}; expected "
                                 f"'{STUDENT_KEY}' and optionally '{TEACHER_KEY}' or '{LOGITS_KEY}'.")
            xs = x[STUDENT_KEY]
            return xs, x.get(TEACHER_KEY, xs), x.get(LOGITS_KEY)
        if isinstance(x, (list, tuple)) and len(x) == 2 and len(getattr(self.student, "inputs", None) or [0]) == 1:
            return x[0], x[1], None
        return x, x, None

    def _teacher_outputs(self, xt, cached):
        """(teacher logits, teacher features): cached logits, or one forward of the (tapped) teacher."""
        features = {}
        if cached is not None:
            if self._teacher_taps is not None:
                raise ValueError("cached teacher logits carry no features, but terms "
                                 f"{[t.name for t in self.terms if any(t.feature_layers())]} read teacher layers: "
                                 "train them with the live teacher (pass x, not cache.inputs(x)).")
            t = tf.cast(cached, tf.float32)
        elif self.teacher is None:
            raise ValueError("teacher=None needs cached logits in every batch: pass "
                             "cache.inputs(x) from tfkd.cache_teacher_logits, or give the Distiller a teacher.")
        elif self._teacher_taps is not None:
            t, features = self._teacher_taps(xt, training=False)
            t = tf.cast(t, tf.float32)
            features = {k: tf.stop_gradient(tf.cast(v, tf.float32)) for k, v in features.items()}
        else:
            t = tf.cast(self._forward_teacher(xt, training=False), tf.float32)
        t = tf.stop_gradient(t)
        if t.shape[-1] != 1:  # one sigmoid logit in [0, 1] is a valid logit
            # An empty batch (a replica's share of a short last batch) proves nothing: reduce_all([]) is True.
            rows_sum_to_one = tf.logical_and(tf.size(t) > 0,
                                             tf.reduce_all(tf.abs(tf.reduce_sum(t, axis=-1) - 1.0) < 1e-3))
            in_unit_range = tf.logical_and(tf.reduce_all(t >= -1e-3), tf.reduce_all(t <= 1.0 + 1e-3))
            tf.debugging.Assert(
                tf.logical_not(tf.logical_and(rows_sum_to_one, in_unit_range)),
                ["tfkd.Distiller: the teacher outputs look like probabilities (rows in [0, 1] summing to 1), not "
                 "logits: remove the final softmax from the teacher (activation=None on its last layer)."])
        return t, features

    def _student_outputs(self, xs, training):
        if self._student_taps is not None:
            return self._student_taps(xs, training=training)
        return self.student(xs, training=training), {}

    def _hard_loss_fn(self, y, logits):
        if self._hard_loss is not None:
            return self._hard_loss
        if logits.shape[-1] == 1:
            return keras.losses.BinaryCrossentropy(from_logits=True)
        # Decided per trace from the label shape, so one Distiller accepts sparse and one-hot labels alike.
        one_hot = y.shape.rank == logits.shape.rank and y.shape[-1] == logits.shape[-1]
        return (keras.losses.CategoricalCrossentropy(from_logits=True) if one_hot
                else keras.losses.SparseCategoricalCrossentropy(from_logits=True))

    def _check_labels(self, y, logits):
        """Static check of one-hot labels; for class indices, an assert op to run before the hard loss."""
        num_classes = logits.shape[-1]
        if num_classes == 1:
            yf = tf.cast(y, tf.float32)
            return tf.debugging.Assert(tf.reduce_all((yf >= 0.0) & (yf <= 1.0)), [
                "labels y of a one-logit (sigmoid) student must be in [0, 1] (0/1 classes or probabilities). "
                "Smallest, largest label:", tf.reduce_min(yf), tf.reduce_max(yf)])
        if y.shape.rank == logits.shape.rank and y.shape[-1] not in (1, None):
            if y.shape[-1] != num_classes:
                raise ValueError(f"labels are one-hot with {y.shape[-1]} classes but the student outputs "
                                 f"{num_classes} logits; they must match.")
            return None
        if y.dtype.is_floating:  # 2.5 would silently become class 2
            whole = tf.debugging.Assert(tf.reduce_all(tf.equal(y, tf.round(y))), [
                "labels y are class indices but hold a fractional value (e.g. 2.5); give integer classes, or one-hot "
                "/ soft label rows of width", num_classes, ". A fractional label:",
                tf.reduce_max(tf.abs(y - tf.round(y)))])
            with tf.control_dependencies([whole]):
                y = tf.identity(y)
        yi = tf.cast(y, tf.int64)
        ok = tf.logical_and(tf.reduce_all(yi < num_classes), tf.reduce_all(yi >= 0))
        return tf.debugging.Assert(ok, [
            f"labels y contain a class index outside 0..{num_classes - 1}, i.e. a class index >= {num_classes} or "
            f"< 0, but the student outputs {num_classes} logits. Check the labels or the student's num_classes. "
            "Largest label:", tf.reduce_max(yi)])

    def _distillation_losses(self, y, student_logits, teacher_logits, s_feats, t_feats, sample_weight, training,
                             mix=None):
        """(per-example part, batch-level part, {term name: value}, hard); a NaN/inf term aborts the step.

        ``mix`` = (lam, perm) of a mixup view: the hard loss is then ``lam loss(y) + (1 - lam) loss(y[perm])``.

        The per-example part (hard loss, per-example terms, regularisation) is this replica's batch mean; the
        batch-level part (relational terms) is computed on the global batch. The total loss is their sum.
        """
        s = tf.cast(student_logits, tf.float32)
        if s.shape.rank is not None and teacher_logits.shape.rank is not None and \
                s.shape[-1] is not None and teacher_logits.shape[-1] is not None and \
                s.shape[-1] != teacher_logits.shape[-1]:
            raise ValueError(f"teacher logits have shape {teacher_logits.shape} but student logits "
                             f"{s.shape}; they must have the same number of classes.")
        if y is not None:
            check = self._check_labels(y, s)
            if check is not None:  # the loss op would otherwise run first and fail with a less helpful message
                with tf.control_dependencies([check]):
                    y = tf.identity(y)
        batch = kd_terms.TermBatch(s, teacher_logits, {k: tf.cast(v, tf.float32) for k, v in s_feats.items()},
                                   t_feats, y, self._epoch, training)
        batch_level = [t for t in self.terms if t.batch_level]
        whole = batch.gathered(batch_level) if batch_level else batch
        per_replica = whole is None  # no gather for this strategy: each replica's share, weighted by the share
        whole = batch if per_replica else whole
        values, weighted, relational = {}, [], []
        for term in self.terms:
            if term.needs_labels and y is None:
                raise ValueError(f"term {term.name!r} ({type(term).__name__}) needs labels, but the batches carry "
                                 "none: pass (x, y), or use a term that needs no labels (KD, DIST, Hint, ...).")
            if term.batch_level:
                value = tf.reshape(tf.cast(term.compute(whole), tf.float32), [])
            else:
                value = _weighted_mean(tf.cast(term.compute(batch), tf.float32), sample_weight)
            values[term.name] = _finite(value, f"{term.name} ({type(term).__name__})")
            relates = term.batch_level and not per_replica
            (relational if relates else weighted).append(term.weight_variable * values[term.name])
        soft = tf.add_n(weighted) if weighted else tf.constant(0.0)
        relation = tf.add_n(relational) if relational else tf.constant(0.0)
        reg = _finite(tf.add_n([tf.cast(l, tf.float32) for l in self.student.losses]), "student regularisation") \
            if self.student.losses else tf.constant(0.0)
        if y is None:
            if not self._warned_unlabeled:
                warnings.warn("tfkd.Distiller: batches carry no labels; training on the distillation terms alone "
                              "(their weights scaled up to carry the hard term's share), hard_loss reported as 0.",
                              stacklevel=2)
                self._warned_unlabeled = True
            term_weights = tf.add_n([t.weight_variable for t in self.terms]) if self.terms else tf.constant(0.0)
            scale = tf.math.divide_no_nan(term_weights + self._hard_weight, term_weights)
            return soft * scale + reg, relation * scale, values, tf.constant(0.0)
        if s.shape[-1] == 1 and y.shape.rank == 1:
            y = y[:, None]  # binary labels [batch] against [batch, 1] logits, not a broadcast [batch, batch]
        # Loss.call gives per-example values; Loss.__call__ would also divide by the replica count under
        # tf.distribute, which must happen once, on the total (see train_step), not hidden in one term.
        loss_fn = self._hard_loss_fn(y, s)
        per_example_hard = tf.cast(loss_fn.call(y, s), tf.float32)
        if mix is not None:
            lam, perm = tf.cast(mix[0], tf.float32), mix[1]
            other = tf.cast(loss_fn.call(tf.gather(y, perm), s), tf.float32)
            per_example_hard = lam * per_example_hard + (1.0 - lam) * other
        hard = _finite(_weighted_mean(per_example_hard, sample_weight), "hard (label)")
        return self._hard_weight * hard + soft + reg, relation, values, hard

    def _update_metrics(self, total, values, hard, student_logits, teacher_logits, x, y, sample_weight):
        n = tf.shape(student_logits)[0]
        self._loss_tracker.update_state(total, sample_weight=n)
        self.hard_loss_tracker.update_state(hard, sample_weight=n)
        for term, tracker in zip(self.terms, self.term_trackers):
            tracker.update_state(values[term.name], sample_weight=n)
        if student_logits.shape[-1] == 1:
            agree = tf.cast(tf.equal(student_logits > 0, teacher_logits > 0), tf.float32)[:, 0]
        else:
            agree = tf.cast(tf.equal(tf.argmax(student_logits, -1), tf.argmax(teacher_logits, -1)), tf.float32)
        self.agreement_tracker.update_state(agree)
        if y is not None:
            return self.compute_metrics(x, y, student_logits, sample_weight=sample_weight)
        # Without labels the compiled (label) metrics mean nothing: report only the distillation ones.
        return {m.name: m.result() for m in (self._loss_tracker, self.hard_loss_tracker, *self.term_trackers,
                                             self.agreement_tracker)}

    def _augment(self, xs, xt, cached):
        """(student view, teacher view, mix): one random view for both; ``mix`` = (lam, perm) when it mixes images."""
        if self.augment is None:
            return xs, xt, None
        if cached is not None or xt is not xs:
            raise ValueError("augment= makes one view for teacher and student, so it needs a live teacher on the "
                             "student's input: not cached teacher logits and not a separate teacher view.")
        if self._mixup is None:
            view = self.augment(xs, training=True)
            return view, view, None
        view = xs
        for layer in self._pre_mix:
            view = layer(view, training=True)
        view, lam, perm = self._mixup.mix(view)
        return view, view, (lam, perm)

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        xs, xt, cached = self._split_inputs(x)
        xs, xt, mix = self._augment(xs, xt, cached)
        t_logits, t_feats = self._teacher_outputs(xt, cached)
        variables = self.trainable_variables
        # Gradients are summed over replicas: weight this replica's mean by its share of the global batch, so the
        # sum is the mean over the global batch even when a short last batch splits unevenly. Batch-level terms see
        # the gathered global batch, and each replica's slice gets its part of their gradient (TermBatch.gathered).
        share = self._replica_share(t_logits)
        with tf.GradientTape() as tape:
            s_logits, s_feats = self._student_outputs(xs, training=True)
            local, relation, values, hard = self._distillation_losses(y, s_logits, t_logits, s_feats, t_feats,
                                                                      sample_weight, True, mix=mix)
            # Relational terms: their gradient reaches each replica through its own slice of the global batch.
            scaled = self.optimizer.scale_loss(local * share + relation)
        total = local + relation
        grads = tape.gradient(scaled, variables)
        # A NaN input behind a ReLU can leave every loss finite and still poison the gradient: refuse the update.
        norm = _finite(tf.linalg.global_norm([g for g in grads if g is not None]), "gradient", "(total loss)")
        with tf.control_dependencies([norm]):
            grads = [None if g is None else tf.identity(g) for g in grads]
        self.optimizer.apply(grads, variables)
        return self._update_metrics(total, values, hard, s_logits, t_logits, xs, y, sample_weight)

    @staticmethod
    def _replica_share(logits):
        """This replica's examples / the global batch's (1 / replicas when the split is even)."""
        context = tf.distribute.get_replica_context()
        if context.num_replicas_in_sync == 1:
            return tf.constant(1.0)
        local = tf.cast(tf.shape(logits)[0], tf.float32)
        return tf.math.divide_no_nan(local, context.all_reduce(tf.distribute.ReduceOp.SUM, local))

    def test_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        xs, xt, cached = self._split_inputs(x)
        t_logits, t_feats = self._teacher_outputs(xt, cached)
        s_logits, s_feats = self._student_outputs(xs, training=False)
        local, relation, values, hard = self._distillation_losses(y, s_logits, t_logits, s_feats, t_feats,
                                                                  sample_weight, False)
        total = local + relation
        return self._update_metrics(total, values, hard, s_logits, t_logits, xs, y, sample_weight)

    def get_metrics_result(self):
        # Compiled (label) metrics stay unbuilt after label-free batches; report the metrics that have values.
        results = {}
        for metric in self.metrics:
            if not getattr(metric, "built", True):
                continue
            value = metric.result()
            results.update(value if isinstance(value, dict) else {metric.name: value})
        return results

    def call(self, inputs, training=False):
        xs, _, _ = self._split_inputs(inputs)
        return self.student(xs, training=training)

    def fit(self, *args, **kwargs):
        """``keras.Model.fit``; a NaN/inf loss term raises :class:`NonFiniteLossError` (no update applied)."""
        if getattr(self, "optimizer", None) is None or not self.compiled:
            raise RuntimeError("call distiller.compile(optimizer=..., metrics=...) before fit().")
        _check_fit_arrays(args, kwargs)
        self._prepare_teacher_precision(args, kwargs)
        kwargs["callbacks"] = [_EpochCounter(), *(kwargs.get("callbacks") or [])]
        x = args[0] if args else kwargs.get("x")
        if hasattr(x, rng.EPOCH_ATTR):  # an epoch-keyed or replayed pipeline: epoch e gets e's order and views
            kwargs["callbacks"].insert(1, rng.epoch_callback(x))
        try:
            return super().fit(*args, **kwargs)
        except tf.errors.InvalidArgumentError as e:
            msg = str(e)
            if _NONFINITE_MARKER not in msg:
                raise
            term = msg.split(_NONFINITE_MARKER, 1)[1].split(" became", 1)[0]
            step = int(keras.ops.convert_to_numpy(self.optimizer.iterations))
            raise NonFiniteLossError(
                f"tfkd.Distiller: the {term} became NaN or infinite at optimizer step {step}; training stopped "
                "and that step's update was not applied, so the student keeps its last good weights. Try a lower "
                "learning rate or temperature, check the inputs for NaN/inf, or clip gradients "
                "(optimizer=keras.optimizers.Adam(clipnorm=1.0))."
            ) from None

    # -- serialisation -------------------------------------------------------------------------------------------
    def _prepare_teacher_precision(self, args, kwargs):
        """Resolve ``teacher_dtype="auto"`` by measuring on the fit inputs (once), and sync the reduced copy."""
        if self.teacher_dtype == "auto":
            sample = _sample_inputs(args[0] if args else kwargs.get("x"))
            if sample is None:
                raise ValueError("teacher_dtype='auto' measures the teacher on the fit inputs, so it needs x as an "
                                 "array or a tf.data.Dataset of (x, ...) batches; pass teacher_dtype='float32' or "
                                 "'bfloat16' explicitly.")
            chosen, report = precision.choose_teacher_dtype(self.teacher, sample)
            self.teacher_precision_report = report
            self.teacher_dtype = chosen
            object.__setattr__(self, "_forward_teacher", precision.reduced_precision_copy(self.teacher, chosen))
            if self._teacher_taps is not None:  # the same taps on the chosen copy; the adapters stay as they are
                object.__setattr__(self, "_teacher_taps", FeatureExtractor(
                    self._forward_teacher, self._teacher_taps.names, role="teacher"))
        elif self._forward_teacher is not self.teacher:
            precision.sync_weights(self.teacher, self._forward_teacher)

    def get_config(self):
        return {
            "name": self.name,
            "teacher": keras.saving.serialize_keras_object(self.teacher) if self.teacher is not None else None,
            "student": keras.saving.serialize_keras_object(self.student),
            "terms": [keras.saving.serialize_keras_object(t) for t in self.terms],
            "hard_weight": self.hard_weight,
            "augment": keras.saving.serialize_keras_object(self.augment) if self.augment is not None else None,
            "teacher_dtype": self.teacher_dtype,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        teacher = config.pop("teacher")
        teacher = keras.saving.deserialize_keras_object(teacher) if teacher is not None else None
        student = keras.saving.deserialize_keras_object(config.pop("student"))
        augment = config.pop("augment", None)
        augment = keras.saving.deserialize_keras_object(augment) if augment is not None else None
        if "terms" in config:
            config["terms"] = [keras.saving.deserialize_keras_object(t) for t in config["terms"]]
        elif isinstance(config.get("distill_loss"), dict):  # a file written before terms existed
            config["distill_loss"] = keras.saving.deserialize_keras_object(config["distill_loss"])
        return cls(teacher, student, augment=augment, **config)
