"""TTQ: trained ternary quantization with learned scales Wₚ, Wₙ and a threshold t.

Zhu, Han, Mao, Dally, "Trained Ternary Quantization", ICLR 2017.

`TtqWeight(threshold)` (alias `"ttq_weight"`), per layer, Δ = t · max|w̃|:

    wᵗ = Wₚ  if w̃ > Δ,   0  if |w̃| ≤ Δ,   −Wₙ  if w̃ < −Δ

Backward (the paper's eqs. 6–7), with g = ∂L/∂wᵗ and Iₚ, Iₙ, I₀ the three sets:

    ∂L/∂Wₚ = Σ_{Iₚ} g,   ∂L/∂Wₙ = −Σ_{Iₙ} g    (wᵗ = −Wₙ there)
    ∂L/∂w̃ = Wₚ·g on Iₚ,  g on I₀,  Wₙ·g on Iₙ

Δ carries no gradient. Wₚ, Wₙ start at `initial_scale` (the paper
initialises them from the pre-trained model; 1 here, as the latent weights
are glorot-initialised and BatchNorm follows).

LCE: a ternary kernel is not ±1 per channel, so the conv converts to a float
`CONV_2D` on the constant {Wₚ, 0, −Wₙ} kernel (emulated).
"""

from __future__ import annotations

import tensorflow as tf
from larq.quantizers import _BaseQuantizer

from bnn_tf.errors import ConfigError


def ttq(w: tf.Tensor, wp: tf.Tensor, wn: tf.Tensor, threshold: float) -> tf.Tensor:
    """TTQ ternarisation of `w` with scales `wp`, `wn` (the paper's gradients)."""

    @tf.custom_gradient
    def _call(w, wp, wn):
        delta = threshold * tf.reduce_max(tf.abs(w))
        pos = tf.cast(w > delta, w.dtype)
        neg = tf.cast(w < -delta, w.dtype)
        zero = 1.0 - pos - neg

        def grad(dy):
            return (
                dy * (wp * pos + zero + wn * neg),
                tf.reduce_sum(dy * pos),
                -tf.reduce_sum(dy * neg),
            )

        return wp * pos - wn * neg, grad

    return _call(w, wp, wn)


@tf.keras.utils.register_keras_serializable(package="bnn_tf", name="ttq_weight")
class TtqWeight(_BaseQuantizer):
    r"""TTQ kernel quantizer: {Wₚ, 0, −Wₙ} with Δ = t·max|w|, Wₚ and Wₙ trained.

    Args:
        threshold: t (paper: 0.05).
        initial_scale: starting Wₚ = Wₙ.
    """

    precision = 2

    def __init__(self, threshold: float = 0.05, initial_scale: float = 1.0, **kwargs):
        if not 0 <= threshold < 1:
            raise ConfigError(f"TTQ threshold t must be in [0, 1) (got {threshold}).")
        self.threshold = float(threshold)
        self.initial_scale = float(initial_scale)
        super().__init__(**kwargs)

    def build(self, input_shape):
        init = tf.keras.initializers.Constant(self.initial_scale)
        self.wp = self.add_weight(name="w_p", shape=(), initializer=init)
        self.wn = self.add_weight(name="w_n", shape=(), initializer=init)
        super().build(input_shape)

    def call(self, inputs):
        return super().call(ttq(inputs, self.wp, self.wn, self.threshold))

    def get_config(self):
        return {
            **super().get_config(),
            "threshold": self.threshold,
            "initial_scale": self.initial_scale,
        }
