"""XNOR-Net (Rastegari et al., ECCV 2016) at bnn_small size.

| model | method | LCE binary kernels |
|---|---|---|
| `xnornet_small` | BN → sign → conv(α_o·sign W) → pool | yes |

XNOR-Net's α scales latent weights: it is meant for a latent-weight
optimizer (Adam); Bop sets binary weights to exactly ±1, which makes α constant.
"""

from __future__ import annotations

import tensorflow as tf

from bnn_tf.methods.xnor import XnorWeight, XnorWeightScale
from bnn_tf.models._parts import SMALL, plain_small
from bnn_tf.models.registry import latent_adam, register

FAMILY = "xnornet"
PAPER = "Rastegari et al., XNOR-Net, ECCV 2016"


@register(
    "xnornet_small",
    kind=SMALL,
    lce_binary=True,
    training=latent_adam(
        "XNOR-Net trains latent weights (α = mean|W| needs them; Bop makes α constant): "
        "Adam, cosine; lr is the library default (methods.md records none)"
    ),
)
def xnornet_small(args) -> tf.keras.Model:
    """XNOR-Net: BN→sign→conv(α·sign W, α=mean|W| per filter)→pool; bnn_small size

    Runs on LCE binary kernels: the input quantizer is `ste_sign` and the
    kernel freezes to ±α_o, whose α becomes LceBconv2d's output multiplier.
    """
    return plain_small(
        args,
        conv_kwargs=lambda: {
            "input_quantizer": "ste_sign",
            "kernel_quantizer": XnorWeight(),
            "pad_values": 1.0,
        },
        bn_before_conv=True,
    )


# ---------------------------------------------------------------------------------------
# XNOR-Net (AlexNet) at ImageNet size: larq-zoo 2.4's graph (weights= loads its .h5 files).
# ---------------------------------------------------------------------------------------


import larq as lq  # noqa: E402

from bnn_tf.models._larq_zoo import IMAGENET, finish, zoo_input  # noqa: E402

_ZOO_WHY = (
    "larq-zoo TrainXNORNet: Adam lr 1e-3, alternately ×0.5 and ×0.2 at epochs "
    "19/30/44/53/66/76/86 of 100, batch 1200, l2 5e-7"
)


@register(
    "xnornet",
    kind=IMAGENET,
    lce_binary=True,
    # fc6 is a "valid" 6×6 conv on the last feature map: smaller inputs leave it no output.
    min_input_size=217,
    training=latent_adam(_ZOO_WHY, 1e-3, schedule="step", factor=0.5, every_epochs=19),
)
def xnornet(args) -> tf.keras.Model:
    """XNOR-Net AlexNet (larq-zoo 2.4 graph): BN→sign→conv(α·sign W), ImageNet size.

    keras.applications-style options; logits out by default.
    """

    def regularizer():
        return tf.keras.regularizers.l2(5e-7)

    def quant_conv(filters, kernel, padding, name):
        return lq.layers.QuantConv2D(
            filters, kernel, padding=padding, use_bias=False, input_quantizer="ste_sign",
            kernel_quantizer=XnorWeightScale(), kernel_constraint="weight_clip",
            kernel_regularizer=regularizer(), name=name,
        )  # fmt: skip

    def bn(epsilon, name):
        return tf.keras.layers.BatchNormalization(
            momentum=0.9, scale=False, epsilon=epsilon, name=name
        )

    inputs = zoo_input(args)
    x = tf.keras.layers.Conv2D(
        96, 11, strides=4, padding="same", use_bias=False,
        kernel_regularizer=regularizer(), name="stem_conv",
    )(inputs)  # fmt: skip
    x = bn(1e-5, "stem_bn")(x)
    x = tf.keras.layers.Activation("relu", name="stem_relu")(x)
    x = tf.keras.layers.MaxPool2D(3, strides=2, name="stem_pool")(x)
    # (name, filters, kernel, padding, max-pool after): BN → sign → conv each.
    binary_layers = (
        ("conv2", 256, 5, "same", True),
        ("conv3", 384, 3, "same", False),
        ("conv4", 384, 3, "same", False),
        ("conv5", 256, 3, "same", True),
        ("fc6", 4096, 6, "valid", False),
    )
    for name, filters, kernel, padding, pool in binary_layers:
        x = bn(1e-4, f"{name}_pre_bn")(x)
        x = quant_conv(filters, kernel, padding, name)(x)
        if pool:
            x = tf.keras.layers.MaxPool2D(3, strides=2, name=f"{name}_pool")(x)
    x = bn(1e-4, "fc7_pre_bn")(x)
    if args.include_top:
        x = quant_conv(4096, 1, "valid", "fc7")(x)
        x = bn(1e-3, "fc7_bn")(x)
        x = tf.keras.layers.Activation("relu", name="fc7_relu")(x)
        x = tf.keras.layers.Flatten(name="flatten")(x)
        x = tf.keras.layers.Dense(
            args.num_classes, use_bias=False, kernel_regularizer=regularizer(), name="logits"
        )(x)
    return finish(args, inputs, x)
