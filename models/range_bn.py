"""Range BatchNorm (Banner et al., NeurIPS 2018) in the bnn_small binary network.

| model | method | LCE binary kernels |
|---|---|---|
| `rangebn_small` | bnn_small with every BatchNorm replaced by range BN | yes |
"""

from __future__ import annotations

import larq as lq
import tensorflow as tf

from bnn_tf.methods.range_bn import RangeBatchNormalization
from bnn_tf.models._parts import POOL_AFTER, SMALL, check_widths, small_model
from bnn_tf.models.registry import latent_adam, register

FAMILY = "range_bn"
PAPER = "Banner et al., Scalable Methods for 8-bit Training of Neural Networks, NeurIPS 2018"


TRAINING = latent_adam(
    "Adam on latent weights with a weight clip, the methods-table setting", 0.002
)


@register("rangebn_small", kind=SMALL, lce_binary=True, training=TRAINING)
def rangebn_small(args) -> tf.keras.Model:
    """bnn_small with range batch normalisation (variance → C(n)·range) everywhere.

    `bnn_small` (ste_sign inputs and weights, weight clip, +1 padding) with range BN.
    """
    check_widths(args.widths)
    inputs = tf.keras.Input(shape=tuple(args.input_shape))
    x = tf.keras.layers.Conv2D(
        args.stem_width, 3, padding="same", use_bias=False, name="stem_conv"
    )(inputs)
    x = RangeBatchNormalization(name="stem_bn")(x)
    x = tf.keras.layers.MaxPool2D(2, name="stem_pool")(x)
    for i, width in enumerate(args.widths):
        x = lq.layers.QuantConv2D(
            width, 3, padding="same", use_bias=False, input_quantizer="ste_sign",
            kernel_quantizer="ste_sign", kernel_constraint="weight_clip", pad_values=1.0,
            name=f"conv{i + 1}",
        )(x)  # fmt: skip
        x = RangeBatchNormalization(name=f"bn{i + 1}")(x)
        if i in POOL_AFTER:
            x = tf.keras.layers.MaxPool2D(2, name=f"pool{i + 1}")(x)
    return small_model(args, inputs, x)
