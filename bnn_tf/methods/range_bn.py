"""Range batch normalisation (Banner, Hubara, Hoffer, Soudry, NeurIPS 2018).

"Scalable Methods for 8-bit Training of Neural Networks". The variance of
BatchNorm is replaced by the range of the centred batch, which is robust to
low precision. Per channel c, over the n = batch·H·W values of a batch:

    μ = mean(x),   x̂ = (x − μ) / (C(n) · range(x − μ) + ε),   C(n) = 1 / √(2 ln n)
    y = γ x̂ + β,   range(v) = max(v) − min(v)

(for Gaussian x, C(n)·range ≈ σ). Inference uses moving averages of μ and
of s = C(n)·range (`momentum` as Keras BatchNormalization). The gradient is
that of the expression (max/min route it to the extreme values).

LCE: at inference the layer is a per-channel affine map with constant
coefficients, like BatchNorm: directly after a binary conv it folds into
`LceBconv2d`'s output multiplier and bias.
"""

from __future__ import annotations

import math

import tensorflow as tf

from bnn_tf.errors import ConfigError, check_momentum


def range_scale_constant(n: int) -> float:
    """C(n) = 1 / √(2 ln n)."""
    if n < 2:
        raise ConfigError(f"Range BN needs at least 2 values per channel in a batch (got {n}).")
    return 1.0 / math.sqrt(2.0 * math.log(n))


@tf.keras.utils.register_keras_serializable(package="bnn_tf")
class RangeBatchNormalization(tf.keras.layers.Layer):
    r"""Range BN: `γ (x − μ) / (C(n)·range(x − μ) + ε) + β`, per channel (last axis).

    Args:
        momentum: of the moving averages of μ and C(n)·range.
        epsilon: added to the scale.
    """

    def __init__(self, momentum: float = 0.9, epsilon: float = 1e-5, **kwargs):
        momentum = check_momentum(momentum)
        super().__init__(**kwargs)
        self.momentum = momentum
        self.epsilon = float(epsilon)

    def build(self, input_shape):
        c = int(tf.TensorShape(input_shape)[-1])
        self.gamma = self.add_weight(name="gamma", shape=(c,), initializer="ones")
        self.beta = self.add_weight(name="beta", shape=(c,), initializer="zeros")
        self.moving_mean = self.add_weight(
            name="moving_mean", shape=(c,), initializer="zeros", trainable=False
        )
        self.moving_scale = self.add_weight(
            name="moving_scale", shape=(c,), initializer="ones", trainable=False
        )
        super().build(input_shape)

    def call(self, inputs, training=None):
        if training is None:
            training = tf.keras.backend.learning_phase()
        if not training:
            return (inputs - self.moving_mean) / (
                self.moving_scale + self.epsilon
            ) * self.gamma + self.beta
        axes = list(range(len(inputs.shape) - 1))
        n = 1
        for d in inputs.shape[1:-1]:
            n *= int(d)
        n_total = tf.cast(tf.shape(inputs)[0] * n, inputs.dtype)
        c_n = tf.math.rsqrt(2.0 * tf.math.log(n_total))
        mean = tf.reduce_mean(inputs, axis=axes)
        centred = inputs - mean
        scale = c_n * (tf.reduce_max(centred, axis=axes) - tf.reduce_min(centred, axis=axes))
        m = self.momentum
        self.moving_mean.assign(m * self.moving_mean + (1 - m) * tf.stop_gradient(mean))
        self.moving_scale.assign(m * self.moving_scale + (1 - m) * tf.stop_gradient(scale))
        return centred / (scale + self.epsilon) * self.gamma + self.beta

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "epsilon": self.epsilon}
