"""LQ-Net (Zhang et al., ECCV 2018) at bnn_small size, on binary kernels.

| model | method | LCE binary kernels |
|---|---|---|
| `lqnet_small` | K-bit weights on a learned basis (QEM); residual-sign or LQ-Net learned-basis activations | yes: K × activation bases `LceBconv2d` per conv |
"""

from __future__ import annotations

import tensorflow as tf

from bnn_tf.methods.lq_net import LqActivation, LqWeight
from bnn_tf.models._multibasis import TRAINING, activation_choice, multibasis_small
from bnn_tf.models._parts import SMALL
from bnn_tf.models.registry import register

FAMILY = "multibit"
PAPER = (
    "Zhang et al., LQ-Nets: Learned Quantization for Highly Accurate and Compact DNNs, ECCV 2018"
)


@register(
    "lqnet_small",
    kind=SMALL,
    lce_binary=True,
    training=TRAINING,
)
def lqnet_small(
    args, *, bits: int = 2, activation_bits: int | None = None, activation_levels: int = 1
) -> tf.keras.Model:
    """LQ-Net: K-bit weights on a learned basis (default 2) with sign activations; K LceBconv2d per
    conv.

    bnn_small layout with LQ-Net weight bases. Activations: ReBNet residual
    levels (`activation_levels`, 1: a plain sign), or with `activation_bits`
    LQ-Net's learned-basis activation quantizer (bits × activation_bits
    `LceBconv2d` per conv).

    Args:
        bits: K weight bits (binary bases of the learned basis).
        activation_bits: LQ-Net activation bits (None: residual signs).
        activation_levels: residual sign levels of the activations (1: a plain sign).
    """
    return multibasis_small(
        args,
        kernel_quantizer=lambda: LqWeight(bits),
        input_quantizer=activation_choice(
            "lqnet_small", activation_levels, "activation_bits", activation_bits, LqActivation
        ),
    )
