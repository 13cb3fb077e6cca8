"""BinaryDenseNet's blocks and its from-scratch training schedule.

Bethge, Yang, Bornstein, Meinel: "Back to Simplicity: How to Train Accurate
BNNs from Scratch?" (arXiv 1906.08637, 2019). A DenseNet whose dense layers
are binary and whose transitions stay float:

- dense layer: `y = [x, BConv3×3_g(sign(BN(x)))]` with growth rate g = 64,
  `SteSign(clip=1.3)` on inputs and kernel, no scaling factor, zero padding
  (larq-zoo's layout; LCE runs it as `LceBconv2d` with its same-zero correction);
- transition: BN → MaxPool 2×2/2 (omitted where the next stage is dilated) →
  ReLU → float Conv1×1 to `round(C / reduction / 32) · 32` channels.

From scratch (the paper's point): no pre-trained float model, no
multi-stage schedule and no scaling factors: Adam on latent weights (kept in
[−1.3, 1.3] by a weight clip) with a step-decayed learning rate.
`FROM_SCRATCH` holds that recipe as `bnn_tf.optimizers.OptimizerConfig`
fields; the zoo's BinaryDenseNet models register it as their `training`.
"""

from __future__ import annotations

from typing import Any

import larq as lq
import tensorflow as tf

CLIP = 1.3
GROWTH_RATE = 64
BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5

# larq-zoo's TrainBinaryDenseNet28 (the authors' recipe, as published with the models):
# Adam (ε = 1e-8), lr 4e-3 (8e-3 for the 45), ×0.1 at epochs 100 and 110 of 120,
# batch 256, from random initialisation. The step schedule here is "×0.1 every N
# epochs", which on 120 epochs with N = 100 reproduces the first drop; callers that
# train shorter scale `every_epochs` with their budget.
FROM_SCRATCH: dict = {
    "name": "adam",
    "learning_rate": 4e-3,
    "lr_schedule": {"kind": "step", "factor": 0.1, "every_epochs": 100},
    "why": (
        "Bethge et al. 2019 train from scratch: Adam lr 4e-3 (ε 1e-8), ×0.1 at epochs "
        "100 and 110 of 120, batch 256, weight clip 1.3, no pre-training or scaling factors"
    ),
}


def transition_width(channels: int, reduction: float) -> int:
    """Output width of a transition: `round(channels // reduction / 32) · 32`."""
    return int(round(channels // reduction / 32) * 32)


def binary_conv(
    filters: int, *, clip: float = CLIP, name: str, **options: Any
) -> lq.layers.QuantConv2D:
    """Bethge et al.'s binary 3×3 conv (also ResNetE's): `SteSign(clip)` inputs and kernel,
    weight clip, zero padding, no scaling factor; `options` e.g. strides or dilation_rate."""
    return lq.layers.QuantConv2D(
        filters, 3, padding="same", use_bias=False,
        input_quantizer=lq.quantizers.SteSign(clip_value=clip),
        kernel_quantizer=lq.quantizers.SteSign(clip_value=clip),
        kernel_constraint=lq.constraints.WeightClip(clip),
        kernel_initializer="glorot_normal", name=name, **options,
    )  # fmt: skip


def dense_layer(
    x: tf.Tensor, *, growth_rate: int = GROWTH_RATE, dilation_rate: int = 1, name: str
) -> tf.Tensor:
    """`[x, BConv3×3(sign(BN(x)))]`: the binary dense layer (C → C + growth_rate)."""
    y = tf.keras.layers.BatchNormalization(
        momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=f"{name}_bn"
    )(x)
    y = binary_conv(growth_rate, dilation_rate=dilation_rate, name=f"{name}_conv")(y)
    return tf.keras.layers.Concatenate(name=f"{name}_concat")([x, y])


def transition(x: tf.Tensor, *, reduction: float, pool: bool = True, name: str) -> tf.Tensor:
    """BN → [MaxPool 2×2/2] → ReLU → float Conv1×1 (width `transition_width`)."""
    x = tf.keras.layers.BatchNormalization(
        momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=f"{name}_bn"
    )(x)
    if pool:
        x = tf.keras.layers.MaxPool2D(2, strides=2, name=f"{name}_pool")(x)
    x = tf.keras.layers.Activation("relu", name=f"{name}_relu")(x)
    return tf.keras.layers.Conv2D(
        transition_width(int(x.shape[-1]), reduction), 1, use_bias=False,
        kernel_initializer="he_normal", name=f"{name}_conv",
    )(x)  # fmt: skip
