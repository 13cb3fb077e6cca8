"""ReCU ResNets (Xu et al., ICCV 2021): binary ResNets whose binary convs are `ReCUConv2D`.

Two layouts, as in the ReCU reference code (docs/methods.md, section ReCU):

**Small inputs (CIFAR style), `recu_resnet20` / `recu_resnet18`**: a float
3×3 stem conv → BN → hardtanh, then basic blocks with a shortcut around
*every* binary conv (IR-Net / Bi-Real style):

    y = hardtanh(BN(ReCUConv3×3/s(x)) + shortcut(x))
    out = hardtanh(BN(ReCUConv3×3(y)) + y)

The shortcut is the identity, or where the block halves the resolution
and widens the channels the parameter-free option A
(`bnn_tf.methods.shortcuts.ZeroPadShortcut`: 2×2 average pool + zero channels).
Head: global average pool → BN → Dense (float). ResNet-20: widths 16/32/64,
[3, 3, 3] blocks (18 binary convs); ResNet-18: 64/128/256/512, [2, 2, 2, 2]
(16 binary convs).

**ImageNet, `recu_resnet18_imagenet` / `recu_resnet34_imagenet`**: 7×7/2
float stem conv → BN → 3×3/2 max pool, the same blocks with a real
downsample (1×1 strided float conv → BN), and the BNs after binary convs
start with γ = 1e-8 (as the reference initialises them), so every block
starts as the identity. Head: global average pool → Dense.

For LCE every binary conv pads with +1, has BN directly after it and no
bias, so it becomes `LceBconv2d` with α and BN folded into its output
multiplier (tests/test_recu.py counts them).

`conv=` swaps the binary conv for comparisons on the same graph:
`"recu"` (default), `"ste_sign"` (larq's plain binary conv, ste_sign inputs
and weights, weight clip 1) or `"float"` (no quantizer: the float twin,
registered as `recu_resnet20_float`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import larq as lq
import tensorflow as tf

from bnn_tf.errors import ConfigError
from bnn_tf.methods.recu import HardTanh, ReCUConv2D
from bnn_tf.methods.shortcuts import ZeroPadShortcut
from bnn_tf.models._parts import classifier_head
from bnn_tf.models.registry import Kind, bop_adam, latent_adam, option, register

CONV_TYPES = ("recu", "ste_sign", "float")
FAMILY = "recu"
PAPER = "Xu et al., ReCU: Reviving the Dead Weights in Binary Neural Networks, ICCV 2021"
# The paper trains latent weights with SGD 0.1 + cosine; on our Fashion-MNIST budget
# Bop on the ReCU kernels beat Adam on latent ones (docs/recu.md).
_BOP_WHY = (
    "paper: SGD 0.1 + cosine on latent weights; default follows our benchmark: ReCU + Bop "
    "0.725 vs ReCU + Adam 0.642 (docs/recu.md, recu_fashion_mnist, 2 seeds)"
)


def _conv(
    conv: str, filters: int, kernel_size: int, strides: int, name: str, b_star: float
) -> tf.keras.layers.Layer:
    if conv == "recu":
        return ReCUConv2D(
            filters, kernel_size, strides=strides, padding="same", b_star=b_star, name=name
        )
    if conv == "ste_sign":
        return lq.layers.QuantConv2D(
            filters,
            kernel_size,
            strides=strides,
            padding="same",
            input_quantizer="ste_sign",
            kernel_quantizer="ste_sign",
            kernel_constraint="weight_clip",
            pad_values=1.0,
            use_bias=False,
            name=name,
        )
    return tf.keras.layers.Conv2D(
        filters, kernel_size, strides=strides, padding="same", use_bias=False, name=name
    )


def _bn(name: str, gamma: float = 1.0) -> tf.keras.layers.BatchNormalization:
    return tf.keras.layers.BatchNormalization(
        momentum=0.9, gamma_initializer=tf.keras.initializers.Constant(gamma), name=name
    )


def _hardtanh(name: str) -> tf.keras.layers.Layer:
    # A registered layer, not Activation(lq.activations.hard_tanh): .h5 files keep loading.
    return HardTanh(name=name)


def _basic_block(
    x: tf.Tensor,
    filters: int,
    strides: int,
    *,
    conv: str,
    downsample: str,
    bn_gamma: float,
    b_star: float,
    name: str,
) -> tf.Tensor:
    """Two binary 3×3 convs, each with its own shortcut and hardtanh after the add."""
    shortcut = x
    if strides != 1 or x.shape[-1] != filters:
        if downsample == "zero_pad":
            shortcut = ZeroPadShortcut(filters, strides, name=f"{name}_shortcut")(x)
        else:
            shortcut = tf.keras.layers.Conv2D(
                filters, 1, strides=strides, use_bias=False, name=f"{name}_down_conv"
            )(x)
            shortcut = _bn(f"{name}_down_bn")(shortcut)
    y = _conv(conv, filters, 3, strides, f"{name}_conv1", b_star)(x)
    y = _bn(f"{name}_bn1", bn_gamma)(y)
    y = tf.keras.layers.Add(name=f"{name}_add1")([y, shortcut])
    y = _hardtanh(f"{name}_act1")(y)
    z = _conv(conv, filters, 3, 1, f"{name}_conv2", b_star)(y)
    z = _bn(f"{name}_bn2", bn_gamma)(z)
    z = tf.keras.layers.Add(name=f"{name}_add2")([z, y])
    return _hardtanh(f"{name}_act2")(z)


def _check(conv: str, blocks: Sequence[int], widths: Sequence[int]) -> None:
    if conv not in CONV_TYPES:
        raise ConfigError(f"conv must be one of {CONV_TYPES} (got {conv!r}).")
    if len(blocks) != len(widths) or not blocks:
        raise ConfigError(
            f"blocks and widths must have the same, non-zero length (got {list(blocks)}, {list(widths)})."
        )


# The options of the CIFAR-style ReCU ResNets (recu_resnet20, recu_resnet18).
CIFAR = Kind(
    parameters=(
        option("input_shape", (28, 28, 1), Sequence[int]),
        option("num_classes", 10, int),
        option("include_top", True, bool),
        option("conv", "recu", str),
        option("b_star", 2.0, float),
        option("width_multiplier", 1.0, float),
        option("stem_strides", 1, int),
        option("stem_pool", False, bool),
    ),
    defaults={"default_input_shape": (28, 28, 1)},
    doc="""Options shared by the CIFAR-style ReCU ResNets:
    input_shape: (height, width, channels); 28×28 and 32×32 are intended.
    num_classes: number of logits.
    include_top: add global average pool, BN and the Dense classifier.
    conv: `"recu"`, `"ste_sign"` (plain larq binary conv) or `"float"`.
    b_star: ReCU's Laplace scale b*.
    width_multiplier: scales every stage width (2 = 32/64/128 for ResNet-20).
    stem_strides: 2 makes the stem conv strided (half the resolution, ¼ the compute).
    stem_pool: True adds a 2×2 max pool after the stem (also half the resolution;
        it keeps more of the 28×28 image than a strided stem, docs/recu.md).""",
)


def _stages(
    x: tf.Tensor,
    widths: Sequence[int],
    blocks: Sequence[int],
    *,
    conv: str,
    downsample: str,
    bn_gamma: float,
    b_star: float,
) -> tf.Tensor:
    """ResNet stages of basic blocks; each stage after the first starts with stride 2."""
    for stage, (width, count) in enumerate(zip(widths, blocks, strict=True)):
        for block in range(count):
            strides = 2 if stage > 0 and block == 0 else 1
            x = _basic_block(
                x,
                width,
                strides,
                conv=conv,
                downsample=downsample,
                bn_gamma=bn_gamma,
                b_star=b_star,
                name=f"stage{stage + 1}_block{block + 1}",
            )
    return x


def _cifar_resnet(
    args: Any, *, depth: int, widths: Sequence[int], blocks: Sequence[int]
) -> tf.keras.Model:
    conv, b_star, width_multiplier = args.conv, args.b_star, args.width_multiplier
    stem_strides, stem_pool = args.stem_strides, args.stem_pool
    num_classes, include_top = args.num_classes, args.include_top
    name = f"recu_resnet{depth}" if conv == "recu" else f"resnet{depth}_{conv}"
    if width_multiplier <= 0:
        raise ConfigError(f"width_multiplier must be > 0 (got {width_multiplier}).")
    if stem_strides not in (1, 2):
        raise ConfigError(f"stem_strides must be 1 or 2 (got {stem_strides}).")
    widths = [max(int(round(w * width_multiplier)), 1) for w in widths]
    _check(conv, blocks, widths)
    inputs = tf.keras.Input(shape=tuple(args.input_shape))
    x = tf.keras.layers.Conv2D(
        widths[0], 3, strides=stem_strides, padding="same", use_bias=False, name="stem_conv"
    )(inputs)
    x = _bn("stem_bn")(x)
    x = _hardtanh("stem_act")(x)
    if stem_pool:
        x = tf.keras.layers.MaxPool2D(2, name="stem_pool")(x)
    x = _stages(x, widths, blocks, conv=conv, downsample="zero_pad", bn_gamma=1.0, b_star=b_star)
    if include_top:
        x = tf.keras.layers.GlobalAveragePooling2D(name="gap")(x)
        x = _bn("head_bn")(x)
        x = tf.keras.layers.Dense(num_classes, name="logits")(x)
    return tf.keras.Model(inputs, x, name=name)


def _imagenet_resnet(
    *,
    input_shape: Sequence[int],
    num_classes: int,
    include_top: bool,
    blocks: Sequence[int],
    conv: str,
    b_star: float,
    name: str,
) -> tf.keras.Model:
    widths = (64, 128, 256, 512)
    _check(conv, blocks, widths)
    inputs = tf.keras.Input(shape=tuple(input_shape))
    x = tf.keras.layers.Conv2D(64, 7, strides=2, padding="same", use_bias=False, name="stem_conv")(
        inputs
    )
    x = _bn("stem_bn")(x)
    x = tf.keras.layers.MaxPool2D(3, strides=2, padding="same", name="stem_pool")(x)
    x = _stages(x, widths, blocks, conv=conv, downsample="conv", bn_gamma=1e-8, b_star=b_star)
    return tf.keras.Model(inputs, classifier_head(x, num_classes, include_top), name=name)


@register(
    "recu_resnet20",
    kind=CIFAR,
    description="ReCU ResNet-20 (CIFAR style, 16/32/64, shortcut around every binary conv)",
    lce_binary=True,
    float_twin="recu_resnet20_float",
    training=bop_adam(_BOP_WHY),
)
def recu_resnet20(args) -> tf.keras.Model:
    """ReCU ResNet-20 for small images (18 binary 3×3 convs, float stem and head).

    Outputs logits. Train with `bnn_tf.training.compile_model` (Bop + Adam) or
    `bnn_tf.methods.recu.recu_optimizer`, plus `bnn_tf.methods.recu.TauScheduler(epochs)`.
    """
    return _cifar_resnet(args, depth=20, widths=(16, 32, 64), blocks=(3, 3, 3))


@register(
    "recu_resnet20_float",
    description="Float twin of recu_resnet20 (same graph, full-precision convs)",
    lce_binary=False,
    default_input_shape=(28, 28, 1),
    training=latent_adam("float twin: Adam, cosine"),
)
def recu_resnet20_float(
    *,
    input_shape: Sequence[int] = (28, 28, 1),
    num_classes: int = 10,
    include_top: bool = True,
) -> tf.keras.Model:
    """`recu_resnet20` with every binary conv replaced by a float `Conv2D`."""
    return recu_resnet20(
        input_shape=input_shape, num_classes=num_classes, include_top=include_top, conv="float"
    )


@register("recu_resnet18", kind=CIFAR, lce_binary=True, training=bop_adam(_BOP_WHY))
def recu_resnet18(args) -> tf.keras.Model:
    """ReCU ResNet-18 (CIFAR style, 64..512, shortcut around every binary conv).

    For small images: 16 binary 3×3 convs, float stem and head.
    """
    return _cifar_resnet(args, depth=18, widths=(64, 128, 256, 512), blocks=(2, 2, 2, 2))


def _register_imagenet(depth: int, blocks: tuple[int, ...], top1: float) -> None:
    name = f"recu_resnet{depth}_imagenet"

    @register(
        name,
        description=f"ReCU ResNet-{depth} for ImageNet-size inputs (7×7 stem, real 1×1 downsample)",
        lce_binary=True,
        default_input_shape=(224, 224, 3),
        tags=("large",),
        training=bop_adam(_BOP_WHY),
    )
    def factory(
        *,
        input_shape: Sequence[int] = (224, 224, 3),
        num_classes: int = 1000,
        include_top: bool = True,
        conv: str = "recu",
        b_star: float = 2.0,
    ) -> tf.keras.Model:
        return _imagenet_resnet(
            input_shape=input_shape, num_classes=num_classes, include_top=include_top,
            blocks=blocks, conv=conv, b_star=b_star, name=name,
        )  # fmt: skip

    factory.__name__ = name
    factory.__doc__ = (
        f"ReCU ResNet-{depth}, ImageNet layout (published {top1} % top-1 on ImageNet).\n\n"
        "Args: as `recu_resnet20` (default 224×224×3 inputs, 1000 classes)."
    )
    globals()[name] = factory


_register_imagenet(18, (2, 2, 2, 2), 61.0)
_register_imagenet(34, (3, 4, 6, 3), 65.1)
