"""WRPN: wide reduced-precision networks (Mishra, Nurvitadhi, Cook, Marr, ICLR 2018).

Widen every layer by a multiplier and quantize weights and activations to k
bits; the models take `width_multiplier` as an option (`wrpn_small`).
The quantizers (straight-through rounding):

- weights (`WrpnWeight`, alias `"wrpn_weight"`): w_q = round(clip(w, −1, 1)·(2^(k−1) − 1)) / (2^(k−1) − 1)
  (k − 1 magnitude bits and a sign; gradient 1[|w| ≤ 1]);
- activations (`WrpnActivation`, alias `"wrpn_activation"`):
  a_q = round(clip(a, 0, 1)·(2^k − 1)) / (2^k − 1) (gradient 1[0 ≤ a ≤ 1]).

LCE: k-bit operands (k ≥ 2) are not binary: the convs stay float `CONV_2D` (emulated).
"""

from __future__ import annotations

import tensorflow as tf

from bnn_tf.errors import ConfigError
from bnn_tf.methods._kbit import KBitQuantizer


def _quantize(x: tf.Tensor, low: float, levels: float) -> tf.Tensor:
    @tf.custom_gradient
    def _call(x):
        def grad(dy):
            return dy * tf.cast((x >= low) & (x <= 1.0), dy.dtype)

        return tf.round(tf.clip_by_value(x, low, 1.0) * levels) / levels, grad

    return _call(x)


class _Wrpn(KBitQuantizer):
    def __init__(self, k_bit: int = 2, **kwargs):
        if int(k_bit) < 2:
            raise ConfigError(
                f"WRPN quantizers need k_bit ≥ 2 (got {k_bit}). Fix: for 1 bit use the binary "
                "models (bnn_small) with a wider `widths`."
            )
        super().__init__(k_bit, **kwargs)


@tf.keras.utils.register_keras_serializable(package="bnn_tf", name="wrpn_weight")
class WrpnWeight(_Wrpn):
    """WRPN weights: `round(clip(w, −1, 1)·(2^(k−1) − 1)) / (2^(k−1) − 1)`."""

    def call(self, inputs):
        return super().call(_quantize(inputs, -1.0, float(2 ** (self.k_bit - 1) - 1)))


@tf.keras.utils.register_keras_serializable(package="bnn_tf", name="wrpn_activation")
class WrpnActivation(_Wrpn):
    """WRPN activations: `round(clip(a, 0, 1)·(2^k − 1)) / (2^k − 1)`."""

    def call(self, inputs):
        return super().call(_quantize(inputs, 0.0, float(2**self.k_bit - 1)))
