"""Terms on the output logits: KD (with logit standardisation), logit MSE, DKD, DIST, binary KD, any soft loss.

They need no live teacher: cached teacher logits (:func:`tfkd.cache_teacher_logits`) serve them all.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfkd import losses as kd_losses
from tfkd.terms.base import TemperatureTerm, Term, _check_number


def _refuse_keras_loss(fn, argument):
    """Keras losses take ``(y_true, y_pred)`` probabilities: as a soft loss they would train the wrong objective."""
    keras_functions = {id(v) for v in vars(keras.losses).values() if callable(v)}
    if isinstance(fn, keras.losses.Loss) or (id(fn) in keras_functions and fn not in kd_losses._REGISTRY.values()):
        raise TypeError(
            f"{argument}={fn!r} is a Keras loss: it takes (y_true, y_pred) probabilities, while a distillation loss "
            "takes (student_logits, teacher_logits, temperature) logits, so it would silently train the wrong "
            "objective (keras.losses.KLDivergence() on logits applies no softmax and no T^2). Use "
            f"{argument}=\"kl\" (Hinton's T^2-scaled KL on tempered softmaxes), \"mse\" or \"soft_cross_entropy\", "
            "or a callable (student_logits, teacher_logits, temperature) -> [batch].")


def _check_multiclass(term, num_classes):
    if num_classes == 1:
        raise ValueError(f"{type(term).__name__} needs at least 2 logits, but the models output 1: a softmax over "
                         "one logit is constant. For a one-logit sigmoid classifier use tfkd.terms.BinaryKD.")


@keras.saving.register_keras_serializable(package="tfkd")
class SoftLoss(TemperatureTerm):
    """Any soft loss ``fn(student_logits, teacher_logits, temperature) -> [batch]`` as a term (``distill_loss=``).

    ``loss``: ``"kl"``, ``"soft_cross_entropy"``, ``"mse"`` (see :mod:`tfkd.losses`) or a callable; a callable that
    returns a scalar is broadcast to the batch.

    Example:

        tfkd.terms.SoftLoss("soft_cross_entropy", temperature=2.0, weight=0.5)
    """

    default_name = "kd"

    def __init__(self, loss="kl", temperature=4.0, weight=1.0, **kwargs):
        if isinstance(loss, dict):
            loss = keras.saving.deserialize_keras_object(loss)
        _refuse_keras_loss(loss, "distill_loss")
        self.loss_fn = kd_losses.get(loss)
        super().__init__(temperature, weight, **kwargs)

    def validate_outputs(self, num_classes):
        if self.loss_fn is not kd_losses.logit_mse:
            _check_multiclass(self, num_classes)

    def compute(self, batch):
        value = self.loss_fn(batch.student_logits, batch.teacher_logits, self._temperature)
        if value.shape.rank == 0:
            value = tf.fill(tf.shape(batch.student_logits)[:1], value)
        return value

    def get_config(self):
        name = kd_losses.name_of(self.loss_fn)
        return {**super().get_config(),
                "loss": name if name is not None else keras.saving.serialize_keras_object(self.loss_fn)}


@keras.saving.register_keras_serializable(package="tfkd")
class KD(TemperatureTerm):
    """Hinton et al. (2015): ``T^2 * KL(softmax(t/T) || softmax(s/T))`` per example; :func:`tfkd.losses.kd_kl`.

    ``standardize=True``: logit standardisation (Sun et al., CVPR 2024): both logit rows are z-scored before the
    tempered softmax, so the student matches the teacher's logit relations rather than their scale (the paper pairs
    it with higher temperatures, e.g. ``T=2..4`` on the z-scores).

    Example:

        tfkd.Distiller(teacher, student, terms=[tfkd.terms.KD(4.0, weight=0.9)], hard_weight=0.1)
    """

    default_name = "kd"

    def __init__(self, temperature=4.0, standardize=False, weight=1.0, **kwargs):
        super().__init__(temperature, weight, **kwargs)
        self.standardize = bool(standardize)

    def validate_outputs(self, num_classes):
        _check_multiclass(self, num_classes)

    def compute(self, batch):
        return kd_losses.kd_kl(batch.student_logits, batch.teacher_logits, self._temperature, self.standardize)

    def get_config(self):
        return {**super().get_config(), "standardize": self.standardize}


@keras.saving.register_keras_serializable(package="tfkd")
class LogitMSE(Term):
    """Logit matching (Ba & Caruana 2014): mean squared difference of raw logits per example.

    Example:

        tfkd.terms.LogitMSE(weight=1.0)
    """

    default_name = "logit_mse"

    def compute(self, batch):
        return kd_losses.logit_mse(batch.student_logits, batch.teacher_logits)


@keras.saving.register_keras_serializable(package="tfkd")
class DKD(TemperatureTerm):
    """Decoupled KD (Zhao et al., CVPR 2022): ``alpha * TCKD + beta * NCKD`` per example; needs labels.

    The target-class and non-target-class parts of KD get separate weights; ``beta`` (8 in the paper for CIFAR-100)
    lifts the "dark knowledge" among wrong classes that plain KD suppresses when the teacher is confident. As in
    the authors' code, the term ramps up linearly over the first ``warmup_epochs`` epochs (factor
    ``min((epoch + 1) / warmup_epochs, 1)``; 0 turns the ramp off). See :func:`tfkd.losses.dkd`.

    Example:

        tfkd.terms.DKD(temperature=4.0, alpha=1.0, beta=8.0, warmup_epochs=20)
    """

    default_name = "dkd"
    needs_labels = True

    def __init__(self, temperature=4.0, alpha=1.0, beta=8.0, warmup_epochs=20, weight=1.0, **kwargs):
        super().__init__(temperature, weight, **kwargs)
        self.alpha = _check_number("alpha", alpha)
        self.beta = _check_number("beta", beta)
        if isinstance(warmup_epochs, bool) or not isinstance(warmup_epochs, int) or warmup_epochs < 0:
            raise ValueError(f"warmup_epochs={warmup_epochs!r} must be an int >= 0 (0: no warm-up).")
        self.warmup_epochs = warmup_epochs

    def validate_outputs(self, num_classes):
        _check_multiclass(self, num_classes)

    def compute(self, batch):
        value = kd_losses.dkd(batch.student_logits, batch.teacher_logits, batch.labels, self._temperature,
                              self.alpha, self.beta)
        if self.warmup_epochs:
            ramp = tf.minimum((tf.cast(batch.epoch, tf.float32) + 1.0) / float(self.warmup_epochs), 1.0)
            value = value * ramp
        return value

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha, "beta": self.beta, "warmup_epochs": self.warmup_epochs}


@keras.saving.register_keras_serializable(package="tfkd")
class DIST(TemperatureTerm):
    """DIST (Huang et al., NeurIPS 2022): Pearson relations of tempered probabilities, inter- and intra-class.

    A batch-level term (one scalar per batch; sample weights do not apply; under ``tf.distribute`` it is computed
    on the whole global batch, gathered from the replicas). See :func:`tfkd.losses.dist`.

    Example:

        tfkd.terms.DIST(temperature=1.0, beta=1.0, gamma=1.0, weight=1.0)
    """

    default_name = "dist"
    batch_level = True

    def __init__(self, temperature=1.0, beta=1.0, gamma=1.0, weight=1.0, **kwargs):
        super().__init__(temperature, weight, **kwargs)
        self.beta = _check_number("beta", beta)
        self.gamma = _check_number("gamma", gamma)

    def validate_outputs(self, num_classes):
        _check_multiclass(self, num_classes)

    def compute(self, batch):
        return kd_losses.dist(batch.student_logits, batch.teacher_logits, self._temperature, self.beta, self.gamma)

    def get_config(self):
        return {**super().get_config(), "beta": self.beta, "gamma": self.gamma}


@keras.saving.register_keras_serializable(package="tfkd")
class BinaryKD(TemperatureTerm):
    """KD for one-logit sigmoid classifiers (and independent multi-label logits): tempered Bernoulli KL, ``T^2``.

    Compile the Distiller with ``loss="binary_crossentropy"`` (built ``from_logits=True``) or leave ``loss=None``:
    with one output logit the default hard loss is binary cross-entropy. See :func:`tfkd.losses.binary_kd`.

    Example:

        teacher, student = models.mlp((32,), (8, 8, 1), 1, seed=0), models.mlp((8,), (8, 8, 1), 1, seed=1)  # 1 logit
        tfkd.Distiller(teacher, student, terms=[tfkd.terms.BinaryKD(2.0, weight=0.5)], hard_weight=0.5)
    """

    default_name = "binary_kd"

    def compute(self, batch):
        return kd_losses.binary_kd(batch.student_logits, batch.teacher_logits, self._temperature)
