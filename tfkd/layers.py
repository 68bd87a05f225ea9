"""Layers that distillation methods need and Keras does not ship: gradient reversal and stochastic depth.

Example:

    features = keras.layers.Flatten()(keras.Input((8, 8, 1)))
    reversed_features = tfkd.layers.GradientReversal(weight=1.0)(features)   # DANN: the domain head trains the
    domain_logits = keras.layers.Dense(2)(reversed_features)                 # features to confuse it
    residual = keras.layers.Dense(64, activation="relu")(features)
    x = tfkd.layers.StochasticDepth(0.2)([features, residual])   # Noisy Student: drop whole residual branches
"""

from __future__ import annotations

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="tfkd")
class GradientReversal(keras.layers.Layer):
    """Identity in the forward pass; multiplies the gradient by ``-weight`` in the backward pass (Ganin et al., 2016).

    ``weight`` is held in a non-trainable variable, so a schedule (DANN ramps it from 0 to 1) can change it
    during training without retracing.
    """

    def __init__(self, weight=1.0, **kwargs):
        super().__init__(**kwargs)
        self._initial_weight = float(weight)
        self.weight = self.add_weight(shape=(), initializer=keras.initializers.Constant(float(weight)),
                                      trainable=False, name="reversal_weight")

    def call(self, inputs):
        weight = tf.cast(self.weight, inputs.dtype)

        @tf.custom_gradient
        def reverse(x):
            def grad(upstream):
                return -weight * upstream

            return tf.identity(x), grad

        return reverse(inputs)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "weight": float(keras.ops.convert_to_numpy(self.weight))}


@keras.saving.register_keras_serializable(package="tfkd")
class StochasticDepth(keras.layers.Layer):
    """``shortcut + residual``, where training drops the residual branch per example with probability ``rate``.

    Huang et al. (2016), as used by Noisy Student: at training time each example keeps its residual branch with
    probability ``1 - rate`` and the kept branch is scaled by ``1 / (1 - rate)`` so the expected output equals the
    inference output; at inference the branch is always kept, unscaled.
    """

    def __init__(self, rate=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"rate={rate} must be in [0, 1): the probability of dropping the residual branch.")
        self.rate = float(rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=False):
        shortcut, residual = inputs
        if not training or self.rate == 0.0:
            return shortcut + residual
        keep = 1.0 - self.rate
        shape = [keras.ops.shape(residual)[0]] + [1] * (len(residual.shape) - 1)
        mask = keras.ops.cast(keras.random.uniform(shape, seed=self.seed_generator) < keep, residual.dtype)
        return shortcut + residual * mask / keep

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}
