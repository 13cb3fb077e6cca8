"""LQ-Net (Zhang et al., ECCV 2018) weights at bnn_small size, on binary kernels.

| model | method | LCE binary kernels |
|---|---|---|
| `lqnet_small` | K-bit weights on a learned basis (QEM), residual-sign activations | yes: K·levels `LceBconv2d` per conv |
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from bnn_tf.methods.lq_net import LqWeight
from bnn_tf.methods.rebnet import ResidualSign
from bnn_tf.models._multibasis import TRAINING, multibasis_small
from bnn_tf.models._parts import DEFAULT_WIDTHS, SHAPE
from bnn_tf.models.registry import register


@register(
    "lqnet_small",
    description="LQ-Net: K-bit weights on a learned basis (default 2) with sign activations; "
    "K LceBconv2d per conv",
    lce_binary=False,  # at bnn_small width LCE keeps float kernels for conv3-5 (docs/multibit.md)
    default_input_shape=SHAPE,
    float_twin="bnn_small_float",
    family="multibit",
    paper="Zhang et al., LQ-Nets: Learned Quantization for Highly Accurate and Compact DNNs, ECCV 2018",
    training=TRAINING,
)
def lqnet_small(
    *,
    input_shape: Sequence[int] = SHAPE,
    num_classes: int = 10,
    include_top: bool = True,
    stem_width: int = 32,
    widths: Sequence[int] = DEFAULT_WIDTHS,
    bits: int = 2,
    activation_levels: int = 1,
) -> tf.keras.Model:
    """bnn_small layout with LQ-Net weight bases; activations in ReBNet residual levels.

    Args:
        bits: K weight bits (binary bases of the learned basis).
        activation_levels: residual sign levels of the activations (1: a plain sign).
    """
    return multibasis_small(
        input_shape=input_shape,
        num_classes=num_classes,
        include_top=include_top,
        stem_width=stem_width,
        widths=widths,
        kernel_quantizer=lambda: LqWeight(bits),
        input_quantizer=lambda: ResidualSign(activation_levels),
        name="lqnet_small",
    )
