"""LQ-Net (Zhang et al., ECCV 2018) weights at bnn_small size, on binary kernels.

| model | method | LCE binary kernels |
|---|---|---|
| `lqnet_small` | K-bit weights on a learned basis (QEM), residual-sign activations | yes: K·levels `LceBconv2d` per conv |
"""

from __future__ import annotations

import tensorflow as tf

from bnn_tf.methods.lq_net import LqWeight
from bnn_tf.methods.rebnet import ResidualSign
from bnn_tf.models._multibasis import TRAINING, multibasis_small
from bnn_tf.models._parts import SMALL
from bnn_tf.models.registry import register

FAMILY = "multibit"
PAPER = (
    "Zhang et al., LQ-Nets: Learned Quantization for Highly Accurate and Compact DNNs, ECCV 2018"
)


@register(
    "lqnet_small",
    kind=SMALL,
    lce_binary=False,
    training=TRAINING,
)
def lqnet_small(args, *, bits: int = 2, activation_levels: int = 1) -> tf.keras.Model:
    """LQ-Net: K-bit weights on a learned basis (default 2) with sign activations; K LceBconv2d per
    conv.

    bnn_small layout with LQ-Net weight bases; activations in ReBNet residual levels.

    Args:
        bits: K weight bits (binary bases of the learned basis).
        activation_levels: residual sign levels of the activations (1: a plain sign).
    """
    return multibasis_small(
        args,
        kernel_quantizer=lambda: LqWeight(bits),
        input_quantizer=lambda: ResidualSign(activation_levels),
    )
