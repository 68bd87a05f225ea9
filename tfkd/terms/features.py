"""Terms on intermediate features, tapped by layer name: FitNets hints, attention transfer, RKD, SP.

They need a live teacher (cached logits carry no features) and Functional or Sequential models, whose layers'
outputs the Distiller can tap (one multi-output forward per model and step, whatever the number of terms).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfkd import losses as kd_losses
from tfkd.terms.adapters import FeatureAdapter, needs_adapter
from tfkd.terms.base import Term, _check_number


def _pairs(pairs, argument):
    if isinstance(pairs, tuple) and len(pairs) == 2 and all(isinstance(p, str) for p in pairs):
        pairs = [pairs]
    pairs = [tuple(p) for p in pairs]
    if not pairs or any(len(p) != 2 or not all(isinstance(n, str) for n in p) for p in pairs):
        raise ValueError(f"{argument}={pairs!r} must be a non-empty list of (teacher_layer, student_layer) name "
                         "pairs; tfkd.terms.auto_pairs(teacher, student) proposes some.")
    return pairs


class FeatureTerm(Term):
    """A term on ``(teacher_layer, student_layer)`` feature pairs; the Distiller taps both layers."""

    def __init__(self, pairs, weight=1.0, **kwargs):
        super().__init__(weight, **kwargs)
        self.pairs = _pairs(pairs, "pairs")

    def feature_layers(self):
        return [t for t, _ in self.pairs], [s for _, s in self.pairs]

    def get_config(self):
        return {**super().get_config(), "pairs": [list(p) for p in self.pairs]}


@keras.saving.register_keras_serializable(package="tfkd")
class Hint(FeatureTerm):
    """FitNets (Romero et al., ICLR 2015): the student's feature, through an adapter, regresses the teacher's.

    ``adapter="auto"`` builds a :class:`FeatureAdapter` (1x1 conv + BN for maps, dense for vectors, resizing when
    spatial sizes differ) only when the shapes differ; ``None`` requires equal shapes; a Keras layer is used as
    given. Per example: :func:`tfkd.losses.hint_mse`.

    Example:

        hint = tfkd.terms.Hint("relu4", "relu2", weight=1.0)   # (teacher layer, student layer): plain_cnn 4 and 2
        tfkd.Distiller(teacher, student, terms=[hint])
    """

    default_name = "hint"

    def __init__(self, teacher_layer, student_layer, adapter="auto", weight=1.0, **kwargs):
        if isinstance(adapter, dict):
            adapter = keras.saving.deserialize_keras_object(adapter)
        if not (adapter in ("auto", None) or isinstance(adapter, keras.layers.Layer)):
            raise ValueError(f"adapter={adapter!r} must be 'auto', None or a keras Layer.")
        super().__init__([(teacher_layer, student_layer)], weight, **kwargs)
        self.teacher_layer, self.student_layer = teacher_layer, student_layer
        self._adapter_arg = adapter if isinstance(adapter, str) or adapter is None else "layer"
        self.adapter = adapter if isinstance(adapter, keras.layers.Layer) else None

    def build_adapters(self, teacher_shapes, student_shapes):
        t, s = teacher_shapes[self.teacher_layer], student_shapes[self.student_layer]
        if self.adapter is not None:
            return
        if needs_adapter(s, t):
            if self._adapter_arg is None:
                raise ValueError(f"Hint({self.teacher_layer!r}, {self.student_layer!r}, adapter=None): the student "
                                 f"feature has shape {tuple(s)} and the teacher's {tuple(t)}; they must be equal "
                                 "without an adapter. Use adapter='auto' or pass a keras layer.")
            self.adapter = FeatureAdapter(s, t, name="adapter")

    def compute(self, batch):
        fs = batch.student_features[self.student_layer]
        if self.adapter is not None:
            fs = self.adapter(fs, training=batch.training)
        return kd_losses.hint_mse(fs, batch.teacher_features[self.teacher_layer])

    def get_config(self):
        config = {k: v for k, v in super().get_config().items() if k != "pairs"}
        adapter = self._adapter_arg
        if adapter == "layer":
            adapter = keras.saving.serialize_keras_object(self.adapter)
        return {**config, "teacher_layer": self.teacher_layer, "student_layer": self.student_layer,
                "adapter": adapter}


@keras.saving.register_keras_serializable(package="tfkd")
class Attention(FeatureTerm):
    """Attention transfer (Zagoruyko & Komodakis, ICLR 2017), summed over the feature-map pairs.

    Per pair and example: :func:`tfkd.losses.attention_transfer` (channel counts may differ; differing spatial sizes
    are pooled to the smaller). ``weight=1000`` is the paper's scale (``beta = 1000 / 2`` with their halved sum).

    Example:

        at = tfkd.terms.Attention([("relu2", "relu1"), ("relu4", "relu2")], weight=1000.0)   # (teacher, student)
        tfkd.Distiller(teacher, student, terms=[at])
    """

    default_name = "attention"

    def __init__(self, pairs, p=2, weight=1000.0, **kwargs):
        super().__init__(pairs, weight, **kwargs)
        self.p = _check_number("p", p, positive=True)

    def build_adapters(self, teacher_shapes, student_shapes):
        for t, s in self.pairs:
            for role, name, shape in (("teacher", t, teacher_shapes[t]), ("student", s, student_shapes[s])):
                if len(shape) != 4:
                    raise ValueError(f"Attention needs feature maps [batch, height, width, channels], but the "
                                     f"{role} layer {name!r} outputs shape {tuple(shape)}. Tap a convolutional "
                                     "layer (tfkd.terms.auto_pairs lists candidates).")

    def compute(self, batch):
        return tf.add_n([kd_losses.attention_transfer(batch.student_features[s], batch.teacher_features[t], self.p)
                         for t, s in self.pairs])

    def get_config(self):
        return {**super().get_config(), "p": self.p}


@keras.saving.register_keras_serializable(package="tfkd")
class RKD(FeatureTerm):
    """Relational KD (Park et al., CVPR 2019): distance and angle relations between the batch's embeddings.

    ``distance_weight * rkd_distance + angle_weight * rkd_angle`` of the flattened features of one layer pair (the
    penultimate layer is usual); widths may differ. Batch-level (sample weights do not apply; gathered over
    replicas under ``tf.distribute``). The angle part costs ``batch^2 * width`` memory.

    Example:

        rkd = tfkd.terms.RKD("flatten", "flatten", distance_weight=1.0, angle_weight=2.0)   # penultimate layers
        tfkd.Distiller(teacher, student, terms=[rkd])
    """

    default_name = "rkd"
    batch_level = True

    def __init__(self, teacher_layer, student_layer, distance_weight=1.0, angle_weight=2.0, weight=1.0, **kwargs):
        super().__init__([(teacher_layer, student_layer)], weight, **kwargs)
        self.teacher_layer, self.student_layer = teacher_layer, student_layer
        self.distance_weight = _check_number("distance_weight", distance_weight)
        self.angle_weight = _check_number("angle_weight", angle_weight)

    def compute(self, batch):
        es, et = batch.student_features[self.student_layer], batch.teacher_features[self.teacher_layer]
        value = tf.constant(0.0)
        if self.distance_weight:
            value += self.distance_weight * kd_losses.rkd_distance(es, et)
        if self.angle_weight:
            value += self.angle_weight * kd_losses.rkd_angle(es, et)
        return value

    def get_config(self):
        config = {k: v for k, v in super().get_config().items() if k != "pairs"}
        return {**config, "teacher_layer": self.teacher_layer, "student_layer": self.student_layer,
                "distance_weight": self.distance_weight, "angle_weight": self.angle_weight}


@keras.saving.register_keras_serializable(package="tfkd")
class SimilarityPreserving(FeatureTerm):
    """Similarity-preserving KD (Tung & Mori, ICCV 2019): batch Gram matrices of features, summed over pairs.

    Batch-level (sample weights do not apply; gathered over replicas under ``tf.distribute``). The authors'
    CIFAR setting uses ``weight=3000``. See :func:`tfkd.losses.similarity_preserving`.

    Example:

        sp = tfkd.terms.SimilarityPreserving([("relu4", "relu2")], weight=3000.0)   # (teacher, student) layers
        tfkd.Distiller(teacher, student, terms=[sp])
    """

    default_name = "sp"
    batch_level = True

    def __init__(self, pairs, weight=3000.0, **kwargs):
        super().__init__(pairs, weight, **kwargs)

    def compute(self, batch):
        return tf.add_n([kd_losses.similarity_preserving(batch.student_features[s], batch.teacher_features[t])
                         for t, s in self.pairs])
