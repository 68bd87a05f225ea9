"""Adapters: small trainable layers that map a student feature into the teacher's feature space (FitNets).

An adapter belongs to the term that built it, trains with the student, is saved in the Distiller's checkpoints and
``.keras`` file, and is never part of ``distiller.student`` (so the exported student has its own parameter count).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfkd.losses import pool_to


def _static(shape):
    return tuple(None if d is None else int(d) for d in shape)


@keras.saving.register_keras_serializable(package="tfkd")
class FeatureAdapter(keras.layers.Layer):
    """Student feature ``[batch, h, w, c]`` -> teacher shape ``[batch, H, W, C]`` (resize, then a 1x1 conv + BN),
    or ``[batch, d]`` -> ``[batch, D]`` (a dense layer). Parts that already match are skipped.

    Spatial sizes are matched by average pooling when the student map is larger (:func:`tfkd.losses.pool_to`) and
    a bilinear resize when it is smaller. The 1x1 convolution with batch normalisation is the regressor
    of torchdistill's and mdistiller's FitNets (without their final ReLU, so teacher features of any sign can be
    matched).

    Example:

        adapter = tfkd.terms.FeatureAdapter(student_shape=(None, 7, 7, 16), teacher_shape=(None, 7, 7, 64))
        adapter(np.zeros((2, 7, 7, 16), "float32")).shape   # (2, 7, 7, 64)
    """

    def __init__(self, student_shape, teacher_shape, **kwargs):
        super().__init__(**kwargs)
        self.student_shape, self.teacher_shape = _static(student_shape), _static(teacher_shape)
        s, t = self.student_shape, self.teacher_shape
        if len(s) != len(t) or len(s) not in (2, 4):
            raise ValueError(f"cannot adapt a student feature of shape {s} to a teacher feature of shape {t}: both "
                             "must be [batch, height, width, channels] maps or [batch, width] vectors. Tap layers "
                             "of the same kind, or pass adapter=<your keras layer>.")
        self.resize = len(s) == 4 and s[1:3] != t[1:3]
        if len(s) == 4:
            self.project = keras.layers.Conv2D(t[-1], 1, use_bias=False, name="conv") if s[-1] != t[-1] else None
            self.norm = keras.layers.BatchNormalization(name="bn") if self.project is not None else None
        else:
            self.project = keras.layers.Dense(t[-1], name="dense") if s[-1] != t[-1] else None
            self.norm = None
        shape = s if not self.resize else (s[0], *t[1:3], s[-1])
        if self.project is not None:
            self.project.build(shape)
            if self.norm is not None:
                self.norm.build((*shape[:-1], t[-1]))
        self.built = True

    def call(self, x, training=False):
        x = tf.cast(x, tf.float32)
        if self.resize:
            larger = self.student_shape[1] * self.student_shape[2] > self.teacher_shape[1] * self.teacher_shape[2]
            x = pool_to(x, self.teacher_shape[1:3]) if larger else tf.image.resize(x, self.teacher_shape[1:3])
        if self.project is not None:
            x = self.project(x)
        if self.norm is not None:
            x = self.norm(x, training=training)
        return x

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *self.teacher_shape[1:])

    def get_config(self):
        return {**super().get_config(), "student_shape": list(self.student_shape),
                "teacher_shape": list(self.teacher_shape)}


def needs_adapter(student_shape, teacher_shape) -> bool:
    return _static(student_shape)[1:] != _static(teacher_shape)[1:]
