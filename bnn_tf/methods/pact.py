"""PACT: parameterized clipping activation with a learned clipping level α.

Choi, Wang, Venkataramani, Chuang, Srinivasan, Gopalakrishnan, "PACT:
Parameterized Clipping Activation for Quantized Neural Networks", arXiv
1805.06085, 2018.

`Pact(k_bit, alpha)` (alias `"pact"`), α a trainable scalar per layer:

    y   = clip(x, 0, α) = 0.5 (|x| − |x − α| + α)
    y_q = round(y · (2^k − 1) / α) · α / (2^k − 1)

Backward (round straight through): ∂y_q/∂x = 1[0 ≤ x < α],
∂y_q/∂α = 1[x ≥ α]. The paper regularises α with L2 (`alpha_regularizer`,
default 1e-4·α²) and initialises α = 10.

LCE: a k-bit {0, …, 2^k − 1}·α/(2^k − 1) input is not sign-like, so the
conv stays a float `CONV_2D` (emulated).
"""

from __future__ import annotations

import tensorflow as tf

from bnn_tf.errors import ConfigError
from bnn_tf.methods._kbit import KBitQuantizer


def pact_quantize(x: tf.Tensor, alpha: tf.Tensor, k_bit: int) -> tf.Tensor:
    """k-bit PACT with the paper's gradients (STE through round, 1[x ≥ α] to α)."""
    levels = float(2**k_bit - 1)

    @tf.custom_gradient
    def _call(x, alpha):
        y = tf.clip_by_value(x, 0.0, alpha)
        yq = tf.round(y * levels / alpha) * alpha / levels

        def grad(dy):
            inside = tf.cast((x >= 0) & (x < alpha), dy.dtype)
            above = tf.cast(x >= alpha, dy.dtype)
            return dy * inside, tf.reduce_sum(dy * above)

        return yq, grad

    return _call(x, alpha)


@tf.keras.utils.register_keras_serializable(package="bnn_tf", name="pact")
class Pact(KBitQuantizer):
    r"""PACT activation quantizer: `round(clip(x, 0, α)·(2^k−1)/α)·α/(2^k−1)`, α learned.

    Args:
        k_bit: bits (≥ 1).
        alpha: initial clipping level (paper: 10).
        alpha_l2: L2 weight decay on α (paper: the same as the weights').
    """

    def __init__(self, k_bit: int = 2, alpha: float = 10.0, alpha_l2: float = 1e-4, **kwargs):
        if int(k_bit) < 1:
            raise ConfigError(f"PACT k_bit must be ≥ 1 (got {k_bit}).")
        if not alpha > 0:
            raise ConfigError(f"PACT alpha must be > 0 (got {alpha}).")
        self.alpha_init = float(alpha)
        self.alpha_l2 = float(alpha_l2)
        super().__init__(k_bit, **kwargs)

    def build(self, input_shape):
        self.alpha = self.add_weight(
            name="alpha",
            shape=(),
            initializer=tf.keras.initializers.Constant(self.alpha_init),
            regularizer=tf.keras.regularizers.l2(self.alpha_l2) if self.alpha_l2 else None,
        )
        super().build(input_shape)

    def call(self, inputs):
        return super().call(pact_quantize(inputs, self.alpha, self.k_bit))

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha_init, "alpha_l2": self.alpha_l2}
