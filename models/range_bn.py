"""Range BatchNorm (Banner et al., NeurIPS 2018) in the bnn_small binary network.

| model | method | LCE binary kernels |
|---|---|---|
| `rangebn_small` | bnn_small with every BatchNorm replaced by range BN | yes |
"""

from __future__ import annotations

from collections.abc import Sequence

import larq as lq
import tensorflow as tf

from bnn_tf.methods.range_bn import RangeBatchNormalization
from bnn_tf.models._parts import (
    DEFAULT_WIDTHS,
    POOL_AFTER,
    SHAPE,
    check_widths,
    classifier_head,
)
from bnn_tf.models.registry import register


@register(
    "rangebn_small",
    description="bnn_small with range batch normalisation (variance → C(n)·range) everywhere",
    lce_binary=True,
    default_input_shape=SHAPE,
    float_twin="bnn_small_float",
    family="range_bn",
    paper="Banner et al., Scalable Methods for 8-bit Training of Neural Networks, NeurIPS 2018",
    training={"name": "adam", "learning_rate": 2e-3,
              "why": "Adam on latent weights with a weight clip, the methods-table setting"},
)  # fmt: skip
def rangebn_small(
    *,
    input_shape: Sequence[int] = SHAPE,
    num_classes: int = 10,
    include_top: bool = True,
    stem_width: int = 32,
    widths: Sequence[int] = DEFAULT_WIDTHS,
) -> tf.keras.Model:
    """`bnn_small` (ste_sign inputs and weights, weight clip, +1 padding) with range BN."""
    check_widths(widths)
    inputs = tf.keras.Input(shape=tuple(input_shape))
    x = tf.keras.layers.Conv2D(stem_width, 3, padding="same", use_bias=False, name="stem_conv")(
        inputs
    )
    x = RangeBatchNormalization(name="stem_bn")(x)
    x = tf.keras.layers.MaxPool2D(2, name="stem_pool")(x)
    for i, width in enumerate(widths):
        x = lq.layers.QuantConv2D(
            width, 3, padding="same", use_bias=False, input_quantizer="ste_sign",
            kernel_quantizer="ste_sign", kernel_constraint="weight_clip", pad_values=1.0,
            name=f"conv{i + 1}",
        )(x)  # fmt: skip
        x = RangeBatchNormalization(name=f"bn{i + 1}")(x)
        if i in POOL_AFTER:
            x = tf.keras.layers.MaxPool2D(2, name=f"pool{i + 1}")(x)
    return tf.keras.Model(
        inputs, classifier_head(x, num_classes, include_top), name="rangebn_small"
    )
