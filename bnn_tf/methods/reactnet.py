"""ReActNet's activations: RSign (learned per-channel threshold) and RPReLU.

Liu et al., "ReActNet: Towards Precise Binary Neural Networks with
Generalized Activation Functions", ECCV 2020.

- RSign: `sign(x − α_c)`, α learned per channel. Backward through the sign is
  Bi-Real's ApproxSign, `2 − 2|x − α_c|` on |x − α_c| ≤ 1, else 0, for both
  x and (with opposite sign) α.
- RPReLU: `y = PReLU_β(x − γ_c) + ζ_c`, i.e. `x − γ + ζ` where `x > γ` and
  `β_c (x − γ) + ζ` elsewhere; β starts at 0.25, γ and ζ at 0.

Keeping LCE's binary kernel (docs/lce.md, verified by counting ops in
tests/test_classic.py): models write RSign in two halves, `RSignThreshold`
(the learnable `x − α_c`, one float elementwise SUB) followed by a
`QuantConv2D(input_quantizer="approx_sign", pad_values=1.0)`. The result is
exactly `conv(sign(x − α))` with ReActNet's gradient; the conv declares its
binary input, so the lint/report and Bop see it, and it gets the
`pad_values=1` fast path. (Measured: LCE matches the sign pattern in the
graph, so the fused `RSign` layer before a conv without input quantizer also
becomes `LceBconv2d`; but larq then pads the ±1 map with zeros, and our
reports do not count that conv as binary.)
"""

from __future__ import annotations

import larq as lq
import tensorflow as tf


def _channels(input_shape) -> int:
    return int(tf.TensorShape(input_shape)[-1])


@tf.keras.utils.register_keras_serializable(package="bnn_tf")
class RSignThreshold(tf.keras.layers.Layer):
    r"""The threshold half of RSign: `y = x − α_c` (α learned per channel, starts at 0).

    Follow it with a binary conv whose input quantizer is `approx_sign`
    (ReActNet's gradient) or `ste_sign`: together they compute
    `conv(sign(x − α))` and the conv stays an LCE binary kernel.
    """

    def build(self, input_shape):
        self.alpha = self.add_weight(
            name="alpha", shape=(_channels(input_shape),), initializer="zeros"
        )
        super().build(input_shape)

    def call(self, inputs):
        return inputs - self.alpha


@tf.keras.utils.register_keras_serializable(package="bnn_tf")
class RSign(RSignThreshold):
    r"""ReActNet RSign: `sign(x − α_c)` in {−1, +1} (sign(0) = +1), ApproxSign gradient.

    For LCE models prefer `RSignThreshold` + a conv with a sign input
    quantizer (same function; the conv then declares its binary input).
    """

    def call(self, inputs):
        return lq.quantizers.approx_sign(inputs - self.alpha)


@tf.keras.utils.register_keras_serializable(package="bnn_tf")
class RPReLU(tf.keras.layers.Layer):
    r"""ReActNet RPReLU: `y = PReLU_β(x − γ_c) + ζ_c`, per channel.

    Args:
        slope_initial: initial negative slope β (0.25, as PReLU).
    """

    def __init__(self, slope_initial: float = 0.25, **kwargs):
        super().__init__(**kwargs)
        self.slope_initial = float(slope_initial)

    def build(self, input_shape):
        c = _channels(input_shape)
        self.gamma = self.add_weight(name="gamma", shape=(c,), initializer="zeros")
        self.beta = self.add_weight(
            name="beta", shape=(c,), initializer=tf.keras.initializers.Constant(self.slope_initial)
        )
        self.zeta = self.add_weight(name="zeta", shape=(c,), initializer="zeros")
        super().build(input_shape)

    def call(self, inputs):
        shifted = inputs - self.gamma
        # relu(s) − β·relu(−s) is TF's PReLU pattern: the TFLite converter fuses it to PRELU.
        return tf.nn.relu(shifted) - self.beta * tf.nn.relu(-shifted) + self.zeta

    def get_config(self):
        return {**super().get_config(), "slope_initial": self.slope_initial}
