"""ABC-Net (Lin et al., NeurIPS 2017) at bnn_small size: M weight × N activation bases.

| model | method | LCE binary kernels |
|---|---|---|
| `abcnet_small` | M shifted-mean weight bases × N shifted-sign activation bases | yes: M·N `LceBconv2d` per conv |
"""

from __future__ import annotations

import tensorflow as tf

from bnn_tf.methods.abc_net import AbcActivation, AbcWeight
from bnn_tf.models._multibasis import TRAINING, multibasis_small
from bnn_tf.models._parts import SMALL
from bnn_tf.models.registry import register

FAMILY = "multibit"
PAPER = "Lin et al., Towards Accurate Binary Convolutional Neural Network (ABC-Net), NeurIPS 2017"


@register(
    "abcnet_small",
    kind=SMALL,
    lce_binary=True,
    training=TRAINING,
)
def abcnet_small(
    args,
    *,
    weight_bases: int = 3,
    activation_bases: int = 3,
    scale: str = "channel",
) -> tf.keras.Model:
    """ABC-Net: M weight × N activation binary bases per conv (default 3×3); M·N LceBconv2d each.

    bnn_small layout with ABC-Net convs: `weight_bases` × `activation_bases` binary convs each.

    Args:
        weight_bases: M (shifted-mean bases, least-squares α).
        activation_bases: N (shifted signs with learnable shifts and β).
        scale: α per `"channel"` (default here; LCE folds it for free) or per `"layer"` (paper).
    """
    return multibasis_small(
        args,
        kernel_quantizer=lambda: AbcWeight(weight_bases, scale),
        input_quantizer=lambda: AbcActivation(activation_bases),
    )
