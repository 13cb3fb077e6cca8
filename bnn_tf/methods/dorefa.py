"""DoReFa-Net's 1-bit weight quantizer and bounded activation, as larq-zoo's graph uses them.

larq ships DoReFa's k-bit quantizer (`lq.quantizers.DoReFa`); what it does not ship:

- `MagnitudeAwareSignUnclipped` (alias `"magnitude_aware_sign_unclipped"`):
  DoReFa-Net's 1-bit weights `E(|W|) · sign(W)`, one scale per layer, with an
  identity (unclipped) gradient: eq. 5 of the paper for k = 1.
- `clip_by_value_activation` (a `ClipByValueActivation` instance): `clip(x, 0, 1)`,
  the bounded activation before the float classifier.

Zhou et al., "DoReFa-Net: Training Low Bitwidth Convolutional Neural Networks
with Low Bitwidth Gradients", arXiv 1606.06160.

LCE: the per-layer scale freezes into a constant multiplier, but DoReFa-Net's
2-bit activations keep the convolutions float (`CONV_2D`), see `bnn_tf.models.dorefa`.
"""

from __future__ import annotations

import larq as lq
import tensorflow as tf
from larq.quantizers import _BaseQuantizer


@tf.custom_gradient
def _scaled_sign_identity_grad(x, scale):
    return lq.math.sign(x) * scale, lambda dy: (dy, tf.zeros_like(scale))


@tf.keras.utils.register_keras_serializable(package="bnn_tf", name="magnitude_aware_sign_unclipped")
class MagnitudeAwareSignUnclipped(_BaseQuantizer):
    r"""DoReFa's 1-bit weights: `E(|W|) · sign(W)` with one scale per layer.

    Forward `mean(|W|) · sign(W)` (the mean over the whole kernel, without
    gradient); backward: identity (no clipping), as in DoReFa-Net's eq. 5 for k = 1
    (larq-zoo's `magnitude_aware_sign_unclipped`).
    """

    precision = 1

    def call(self, inputs):
        scale = tf.stop_gradient(tf.reduce_mean(tf.abs(inputs)))
        return super().call(_scaled_sign_identity_grad(inputs, scale))


@tf.keras.utils.register_keras_serializable(package="bnn_tf")
class ClipByValueActivation:
    """`clip(x, 0, 1)`: DoReFa-Net's bounded activation before the float classifier.

    A callable object rather than a function: tf_keras saves a registered
    activation *function* to `.h5` in its new config format
    (`{"class_name": "function", ...}`) and reads it back with the legacy
    loader, which cannot resolve it. An object saves as its class, which the
    legacy loader finds by class name (`bnn_tf.methods._aliases`).
    """

    # What code that names an activation reads (`activation.__name__`: summaries, the
    # larq-zoo layer table), as for the function this replaces.
    __name__ = "clip_by_value_activation"

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        return tf.clip_by_value(x, 0.0, 1.0)

    def get_config(self) -> dict:
        return {}

    @classmethod
    def from_config(cls, config: dict) -> ClipByValueActivation:
        return cls(**config)

    # Stateless: every instance is the same activation (a reloaded layer's equals ours).
    def __eq__(self, other: object) -> bool:
        return type(other) is type(self)

    def __hash__(self) -> int:
        return hash(type(self))


clip_by_value_activation = ClipByValueActivation()
# The string alias (`Activation("clip_by_value_activation")`), and `.keras` files saved
# while this was a function (`{"class_name": "function", "config":
# "bnn_tf>clip_by_value_activation"}`), resolve to the instance.
tf.keras.utils.get_custom_objects()["bnn_tf>clip_by_value_activation"] = clip_by_value_activation


__all__ = ["ClipByValueActivation", "MagnitudeAwareSignUnclipped", "clip_by_value_activation"]
