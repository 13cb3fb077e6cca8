"""BinaryResNetE18 (larq-zoo 2.4 graph).

Bethge, Yang, Bornstein, Meinel: "Back to Simplicity: How to Train Accurate
BNNs from Scratch?", arXiv 1906.08637 (2019), ResNetE: a ResNet-18 whose every
3×3 conv is binary and has its own shortcut (twice the shortcuts of a
ResNet block), with a float AvgPool 2×2/2 → Conv1×1 → BN shortcut where the
width doubles. Binary convs: `SteSign(clip=1.25)` inputs and kernel, weight
clip, zero padding; BN after each; stem Conv7×7/2 → BN → ReLU → MaxPool 3×3/2
→ BN (larq-zoo's layout).
"""

from __future__ import annotations

import tensorflow as tf

from bnn_tf.methods.binary_densenet import binary_conv
from bnn_tf.models._larq_zoo import IMAGENET, bethge_stem, finish, global_pool, zoo_input
from bnn_tf.models.registry import latent_adam, register

FAMILY = "binary_resnet_e"
PAPER = "Bethge et al., Back to Simplicity: How to Train Accurate BNNs from Scratch?, 2019"
CLIP = 1.25
BN = {"momentum": 0.9, "epsilon": 1e-5}


def resnet_e_block(x: tf.Tensor, filters: int, *, strides: int = 1, name: str) -> tf.Tensor:
    """`BN(BConv3×3(sign(x))) + shortcut(x)`, shortcut AvgPool → Conv1×1 → BN on a width change."""
    residual = x
    if int(x.shape[-1]) != filters:
        residual = tf.keras.layers.AvgPool2D(2, strides=2, name=f"{name}_shortcut_pool")(x)
        residual = tf.keras.layers.Conv2D(
            filters, 1, use_bias=False, kernel_initializer="glorot_normal",
            name=f"{name}_shortcut_conv",
        )(residual)  # fmt: skip
        residual = tf.keras.layers.BatchNormalization(**BN, name=f"{name}_shortcut_bn")(residual)
    y = binary_conv(filters, clip=CLIP, strides=strides, name=f"{name}_conv")(x)
    y = tf.keras.layers.BatchNormalization(**BN, name=f"{name}_bn")(y)
    return tf.keras.layers.Add(name=f"{name}_add")([y, residual])


_WHY = (
    "Bethge et al. 2019 (larq-zoo TrainBinaryResNetE18): from scratch, Adam lr 4e-3, "
    "×0.3 at epochs 70, 90, 110 of 120, batch 1024, weight clip 1.25"
)
TRAINING = latent_adam(_WHY, 4e-3, schedule="step", factor=0.3, every_epochs=70)


@register("binary_resnet_e18", kind=IMAGENET, lce_binary=True, training=TRAINING)
def binary_resnet_e18(args, *, initial_filters: int = 64) -> tf.keras.Model:
    """BinaryResNetE18 (larq-zoo 2.4 graph): a shortcut around every binary 3×3 conv.

    keras.applications-style options; logits out by default.
    """
    inputs = zoo_input(args)
    x = bethge_stem(inputs, initial_filters, pool_bn=True)
    for stage, filters in enumerate((64, 128, 256, 512)):
        for i in range(4):  # two ResNet-18 blocks, each with a shortcut per conv
            strides = 2 if stage > 0 and i == 0 else 1
            x = resnet_e_block(x, filters, strides=strides, name=f"stage{stage}_block{i}")
    x = tf.keras.layers.Activation("relu", name="final_relu")(x)
    if args.include_top:
        x = global_pool(x)
        x = tf.keras.layers.Dense(
            args.num_classes, kernel_initializer="glorot_normal", name="logits"
        )(x)
    return finish(args, inputs, x)
