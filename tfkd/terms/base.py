"""The distillation term contract: what a term needs, what it owns, and what it returns.

A :class:`Term` is a small Keras layer (so its weight, temperature and adapters are saved with the Distiller and
restored from checkpoints). It declares what it needs (labels, named teacher/student features), builds what it owns
(adapters, from the feature shapes, once) and maps one :class:`TermBatch` to either a ``[batch]`` tensor (reduced by
the Distiller with the sample weights, like the hard loss) or, for relational terms (``batch_level = True``), one
scalar for the whole batch.
"""

from __future__ import annotations

import dataclasses
import math
import re

import keras
import tensorflow as tf


@dataclasses.dataclass
class TermBatch:
    """What a term sees for one batch: logits ``[batch, C]``, features by layer name, labels (or None), epoch."""

    student_logits: tf.Tensor
    teacher_logits: tf.Tensor
    student_features: dict
    teacher_features: dict
    labels: tf.Tensor | None
    epoch: tf.Tensor
    training: bool = False

    def gathered(self, terms) -> "TermBatch | None":
        """The batch gathered over all replicas, as far as the batch-level ``terms`` read it (differentiable).

        Under tf.distribute a batch-level term (DIST, RKD, SP) must see the global batch to give the value one
        device would. The gradient flows into this replica's own slice only, so the Distiller adds batch-level
        values unscaled by the replica's share and the sum over replicas is the one-device gradient. Replicas
        are gathered within one host (MirroredStrategy); for other strategies this returns None and the Distiller
        computes batch-level terms on each replica's own share, weighted like per-example terms.
        """
        context = tf.distribute.get_replica_context()
        if context is None or context.num_replicas_in_sync == 1:
            return self
        if not isinstance(tf.distribute.get_strategy(), tf.distribute.MirroredStrategy):
            return None
        t_names = {n for term in terms for n in term.feature_layers()[0]}
        s_names = {n for term in terms for n in term.feature_layers()[1]}

        def concat_replicas(strategy, *values):
            return [tf.concat(strategy.experimental_local_results(v), axis=0) for v in values]

        def gather(v):
            # Forward values of the global batch, concatenated across the local replicas in cross-replica context
            # (no collective op, so no op-ordering hazard with the step's other collectives); the gradient flows
            # into this replica's own slice only, so replica r's gradient is d(value)/d(slice r) and the sum over
            # replicas is the full gradient, as long as the Distiller adds batch-level values unscaled by the
            # replica's share (see Distiller.train_step).
            local = tf.shape(v)[0]
            whole, sizes = context.merge_call(concat_replicas, args=(tf.stop_gradient(v), tf.reshape(local, [1])))
            before = tf.reduce_sum(sizes[:context.replica_id_in_sync_group])
            return whole + tf.pad(v - tf.stop_gradient(v), [[before, tf.shape(whole)[0] - before - local]]
                                  + [[0, 0]] * (v.shape.rank - 1))

        labels = self.labels
        if labels is not None and any(term.needs_labels for term in terms):
            labels = tf.cast(gather(labels), labels.dtype)
        return TermBatch(gather(self.student_logits), gather(self.teacher_logits),
                         {k: gather(v) for k, v in self.student_features.items() if k in s_names},
                         {k: gather(v) for k, v in self.teacher_features.items() if k in t_names},
                         labels, self.epoch, self.training)


def _check_number(name, value, *, positive=False):
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name}={value!r} must be a number.") from None
    if math.isnan(value) or math.isinf(value) or value < 0 or (positive and value == 0):
        raise ValueError(f"{name}={value!r} must be a finite number {'> 0' if positive else '>= 0'}.")
    return value


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z][a-z])", "_", name).lower()


class Term(keras.layers.Layer):
    """One weighted distillation term of a :class:`tfkd.Distiller`; subclass it to add a method.

    Subclasses set the class attributes below, implement :meth:`compute`, and, if they own layers (adapters),
    :meth:`build_adapters`. ``weight`` lives in a non-trainable variable, so a schedule changes it without a retrace.

    Class attributes:
        default_name: the term's name when none is given; its metric is ``f"{name}_loss"``.
        needs_labels: compute reads ``batch.labels`` (such a term cannot train on unlabeled batches).
        batch_level: compute returns one scalar for the batch (a relation between examples), not ``[batch]``.
        has_temperature: the term has a ``temperature`` that ``Distiller.temperature`` / schedules set.

    Example (a custom term: cosine distance between logits):

        import tensorflow as tf
        class CosineLogits(tfkd.terms.Term):
            default_name = "cosine"
            def compute(self, batch):
                s = tf.math.l2_normalize(batch.student_logits, -1)
                t = tf.math.l2_normalize(batch.teacher_logits, -1)
                return 1.0 - tf.reduce_sum(s * t, -1)
        distiller = tfkd.Distiller(teacher, student, terms=[CosineLogits(weight=1.0)])   # logs "cosine_loss"
    """

    default_name = "term"
    needs_labels = False
    batch_level = False
    has_temperature = False

    def __init__(self, weight=1.0, *, name=None, **kwargs):
        kwargs.pop("trainable", None)
        super().__init__(name=name or self.default_name, **kwargs)
        self._weight = self.add_weight(shape=(), initializer=keras.initializers.Constant(
            _check_number("weight", weight)), trainable=False, name="weight")

    # -- what the term needs --------------------------------------------------------------------------------------
    def feature_layers(self) -> tuple[list[str], list[str]]:
        """``(teacher layer names, student layer names)`` whose outputs :meth:`compute` reads; logit terms: none."""
        return [], []

    def build_adapters(self, teacher_shapes: dict, student_shapes: dict) -> None:
        """Create the layers this term owns from the feature shapes (``{layer name: shape}``); called once."""

    def validate_outputs(self, num_classes) -> None:
        """Raise a clear error if this term cannot work with ``num_classes`` output logits."""

    def compute(self, batch: TermBatch) -> tf.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__}.compute(batch) must return a [batch] tensor or a scalar.")

    def call(self, batch):
        return self.compute(batch)

    # -- hyper-parameters held in variables ----------------------------------------------------------------------
    @property
    def weight(self) -> float:
        """Weight of this term in the total loss (>= 0)."""
        return float(keras.ops.convert_to_numpy(self._weight))

    @weight.setter
    def weight(self, value):
        self._weight.assign(_check_number(f"{self.name}.weight", value))

    @property
    def weight_variable(self):
        return self._weight

    def get_config(self):
        config = super().get_config()
        for key in ("trainable", "dtype"):
            config.pop(key, None)
        config["weight"] = self.weight
        return config


class TemperatureTerm(Term):
    """A term with a softmax ``temperature`` held in a variable (settable by ``tfkd.TemperatureSchedule``)."""

    has_temperature = True

    def __init__(self, temperature=4.0, weight=1.0, **kwargs):
        super().__init__(weight, **kwargs)
        self._temperature = self.add_weight(shape=(), initializer=keras.initializers.Constant(
            _check_temperature(temperature)), trainable=False, name="temperature")

    @property
    def temperature(self) -> float:
        """Softmax temperature (> 0): divides the logits before the softmax."""
        return float(keras.ops.convert_to_numpy(self._temperature))

    @temperature.setter
    def temperature(self, value):
        self._temperature.assign(_check_temperature(value))

    def get_config(self):
        return {**super().get_config(), "temperature": self.temperature}


def _check_temperature(temperature):
    try:
        value = float(temperature)
    except (TypeError, ValueError):
        raise TypeError(f"temperature={temperature!r} must be a number.") from None
    if not value > 0 or math.isinf(value):
        raise ValueError(f"temperature={value} must be a finite number > 0 (typical values 1 to 20); it "
                         "divides the logits before the softmax.")
    if value < MIN_TEMPERATURE:
        raise ValueError(f"temperature={value:g} is too small: logits / T overflow float32, the tempered softmax "
                         f"becomes one-hot and the soft loss 0 or NaN. Use T >= {MIN_TEMPERATURE:g} (typical 1 to 20).")
    return value


MIN_TEMPERATURE = 0.01
