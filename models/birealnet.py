"""Bi-Real Net (Liu et al., ECCV 2018) at bnn_small size.

| model | method | LCE binary kernels |
|---|---|---|
| `birealnet_small` | shortcut around every binary conv | yes |

With BatchNorm right after each conv, a positive per-channel weight scale is
absorbed by BN, so the small model uses plain sign weights
(`bnn_tf.models._parts.SIGN_KERNEL`).
"""

from __future__ import annotations

import tensorflow as tf

from bnn_tf.models._parts import SIGN_KERNEL, SMALL, residual_small
from bnn_tf.models.registry import latent_adam, register

FAMILY = "bireal"
PAPER = "Liu et al., Bi-Real Net, ECCV 2018"


@register(
    "birealnet_small",
    kind=SMALL,
    lce_binary=True,
    training=latent_adam(
        "Bi-Real Net trains latent weights (weight clip): Adam, cosine; lr is the library default",
    ),
)
def birealnet_small(args) -> tf.keras.Model:
    """Bi-Real Net: real shortcut around every binary conv, ApproxSign activations.

    bnn_small layout made of Bi-Real blocks (real 1×1 conv shortcut where channels grow).

    ApproxSign activations; sign weights (the magnitude-aware scale is absorbed by
    the BatchNorm after each conv, see `SIGN_KERNEL`).

    Runs on LCE binary kernels (the shortcut 1×1 convs are float, as in the paper).
    """
    return residual_small(
        args,
        block_kwargs=lambda: {"shortcut": "conv", **SIGN_KERNEL},
    )


# ---------------------------------------------------------------------------------------
# Bi-Real Net 18 at ImageNet size: larq-zoo 2.4's graph (weights= loads its .h5 files).
# ---------------------------------------------------------------------------------------


import larq as lq  # noqa: E402

from bnn_tf.models._larq_zoo import IMAGENET, finish, global_pool, zoo_input  # noqa: E402


def _bireal_zoo_block(x: tf.Tensor, out_filters: int, *, name: str) -> tf.Tensor:
    """larq-zoo's Bi-Real block: `BN(BConv3×3(approx_sign(x))) + shortcut(x)`, momentum 0.8.

    Zero padding and the magnitude-aware kernel, as larq-zoo trains it (the small
    model above uses `pad_values=1`; the two are not weight-compatible).
    """
    in_filters = int(x.shape[-1])
    shortcut = x
    if in_filters != out_filters:
        shortcut = tf.keras.layers.AvgPool2D(2, strides=2, padding="same", name=f"{name}_pool")(x)
        shortcut = tf.keras.layers.Conv2D(
            out_filters, 1, use_bias=False, kernel_initializer="glorot_normal",
            name=f"{name}_shortcut_conv",
        )(shortcut)  # fmt: skip
        shortcut = tf.keras.layers.BatchNormalization(momentum=0.8, name=f"{name}_shortcut_bn")(
            shortcut
        )
    y = lq.layers.QuantConv2D(
        out_filters, 3, strides=1 if in_filters == out_filters else 2, padding="same",
        use_bias=False, input_quantizer="approx_sign", kernel_quantizer="magnitude_aware_sign",
        kernel_constraint="weight_clip", kernel_initializer="glorot_normal", name=f"{name}_conv",
    )(x)  # fmt: skip
    y = tf.keras.layers.BatchNormalization(momentum=0.8, name=f"{name}_bn")(y)
    return tf.keras.layers.Add(name=f"{name}_add")([y, shortcut])


_ZOO_WHY = "larq-zoo TrainBiRealNet: Adam lr 5e-3 decayed linearly to 0, 300 epochs, batch 512"


@register(
    "birealnet",
    kind=IMAGENET,
    lce_binary=True,
    training=latent_adam(_ZOO_WHY, 5e-3, schedule="linear"),
)
def birealnet(args, *, filters: int = 64) -> tf.keras.Model:
    """Bi-Real Net 18 (larq-zoo 2.4 graph), ImageNet size.

    keras.applications-style options; logits out by default.

    Args:
        filters: width of the first stage (doubled at each of the three later stages).
    """
    inputs = zoo_input(args)
    x = tf.keras.layers.Conv2D(
        filters, 7, strides=2, padding="same", use_bias=False,
        kernel_initializer="glorot_normal", name="stem_conv",
    )(inputs)  # fmt: skip
    x = tf.keras.layers.BatchNormalization(momentum=0.8, name="stem_bn")(x)
    x = tf.keras.layers.MaxPool2D(3, strides=2, padding="same", name="stem_pool")(x)
    width, index = filters, 0
    for stage in range(4):
        if stage:
            width *= 2
        for _ in range(4):
            x = _bireal_zoo_block(x, width, name=f"block{index}")
            index += 1
    if args.include_top:
        x = global_pool(x)
        x = tf.keras.layers.Dense(args.num_classes, name="logits")(x)
    return finish(args, inputs, x, name="birealnet18")
