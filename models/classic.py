"""The classic BNN methods as small-input (28×28 / 32×32) models.

All `*_small` models share `bnn_small`'s size so they can be compared at
equal cost: a float 3×3 stem conv (32 filters) → BN → MaxPool 2, then five
3×3 quantized convs of widths (64, 64, 128, 128, 256) with MaxPool 2 after
the 2nd and 4th, then global average pooling and a float Dense classifier.
The first and last layers stay float, as in every paper below.
BinaryNet/BNN itself is `bnn_small` (ste_sign activations and weights, weight
clip), so it is not repeated here.

| model | method | LCE binary kernels |
|---|---|---|
| `xnornet_small` | XNOR-Net: BN → sign → conv(α_o·sign W) → pool | yes |
| `xnornet_pp_small` | XNOR-Net++: conv(sign, sign) · learned Γ | yes (factorised Γ: one float MUL per layer) |
| `birealnet_small` | Bi-Real: shortcut around every binary conv | yes |
| `reactnet_small` | ReActNet: RSign, RPReLU, channel-duplicating shortcuts | yes |
| `irnet_small` | IR-Net: Libra-PB weights, EDE gradient, Bi-Real shortcuts | yes |
| `irnet_resnet20` | IR-Net CIFAR ResNet-20 (16/32/64, option-A shortcuts) | yes |
| `dorefa_small` | DoReFa: k-bit weights and activations | no (float CONV_2D) |
| `twn_small` | TWN: ternary weights, float activations | no (float CONV_2D) |

Why DoReFa and TWN are not LCE binary: LCE's only quantized conv is the
1-bit × 1-bit `LceBconv2d`. A k-bit (k ≥ 2) or ternary operand does not lower
to it; the converter keeps a float `CONV_2D` on the de-quantized values, so
those models are *emulated* in float: the same accuracy as in Keras, float
speed and float size.

IR-Net models contain EDE quantizers: train them with
`bnn_tf.irnet.EdeSchedule(epochs)` among the callbacks, otherwise EDE keeps
its initial t = 0.1 (a wide, nearly identity gradient) for the whole run.
Methods that scale latent weights (XNOR-Net's α, IR-Net's standardisation)
are meant for latent-weight optimizers (Adam); Bop sets binary weights to
exactly ±1, which makes those scales constant. With BatchNorm right after
each conv, a positive per-channel weight scale is absorbed by BN anyway (see
`_SIGN_KERNEL`), so Bi-Real/ReActNet here use plain sign weights.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import larq as lq
import tensorflow as tf

from bnn_tf.bireal import bireal_block
from bnn_tf.errors import ConfigError
from bnn_tf.irnet import EdeSign, LibraPBWeight
from bnn_tf.models.registry import register
from bnn_tf.reactnet import RPReLU, RSignThreshold
from bnn_tf.xnor import XnorScale, XnorWeight

DEFAULT_WIDTHS = (64, 64, 128, 128, 256)
POOL_AFTER = (1, 3)  # MaxPool 2 after the 2nd and 4th quantized conv, as bnn_small
SHAPE = (28, 28, 1)


# Bi-Real and ReActNet scale binary weights by mean|W| per output channel (larq's
# `magnitude_aware_sign`, α without gradient). With BatchNorm directly after the conv that
# scale is a no-op in training (BN is invariant to a positive per-channel scale, and Adam to
# the gradient's scale) and LCE folds both into one multiplier; but under Bop, which sets
# weights to exactly ±1, α jumps from ≈ 0.04 to 1 in one step and inference-mode BN
# statistics lag behind. So the small models use the plain sign with a weight clip; pass
# `kernel_quantizer="magnitude_aware_sign"` to `bireal_block` for the paper's form.
_SIGN_KERNEL = {"kernel_quantizer": "ste_sign", "kernel_constraint": "weight_clip"}


def _check_widths(widths: Sequence[int]) -> None:
    if len(widths) != 5:
        raise ConfigError(f"widths must have 5 entries (got {len(widths)}).")


def _stem(inputs: tf.Tensor, stem_width: int) -> tf.Tensor:
    x = tf.keras.layers.Conv2D(stem_width, 3, padding="same", use_bias=False, name="stem_conv")(
        inputs
    )
    x = tf.keras.layers.BatchNormalization(momentum=0.9, name="stem_bn")(x)
    return tf.keras.layers.MaxPool2D(2, name="stem_pool")(x)


def _head(x: tf.Tensor, num_classes: int, include_top: bool) -> tf.Tensor:
    if include_top:
        x = tf.keras.layers.GlobalAveragePooling2D(name="gap")(x)
        x = tf.keras.layers.Dense(num_classes, name="logits")(x)
    return x


def _plain_small(
    *,
    input_shape: Sequence[int],
    num_classes: int,
    include_top: bool,
    stem_width: int,
    widths: Sequence[int],
    conv_kwargs: Callable[[], dict[str, Any]],
    after_conv: Callable[[str], tf.keras.layers.Layer] | None = None,
    bn_before_conv: bool = False,
    name: str,
) -> tf.keras.Model:
    """The bnn_small layout with given quantizers (fresh quantizer objects per conv)."""
    _check_widths(widths)
    inputs = tf.keras.Input(shape=tuple(input_shape))
    x = _stem(inputs, stem_width)
    for i, width in enumerate(widths):
        if bn_before_conv and i > 0:
            # XNOR-Net order BN → sign → conv → pool (the stem's BN serves the first conv).
            x = tf.keras.layers.BatchNormalization(momentum=0.9, name=f"bn{i + 1}")(x)
        x = lq.layers.QuantConv2D(
            width, 3, padding="same", use_bias=False, name=f"conv{i + 1}", **conv_kwargs()
        )(x)
        if after_conv is not None:
            x = after_conv(f"scale{i + 1}")(x)
        if not bn_before_conv:
            x = tf.keras.layers.BatchNormalization(momentum=0.9, name=f"bn{i + 1}")(x)
        if i in POOL_AFTER:
            x = tf.keras.layers.MaxPool2D(2, name=f"pool{i + 1}")(x)
    if bn_before_conv:
        x = tf.keras.layers.BatchNormalization(momentum=0.9, name="bn_out")(x)
    return tf.keras.Model(inputs, _head(x, num_classes, include_top), name=name)


def _residual_small(
    *,
    input_shape: Sequence[int],
    num_classes: int,
    include_top: bool,
    stem_width: int,
    widths: Sequence[int],
    block_kwargs: Callable[[], dict[str, Any]],
    name: str,
) -> tf.keras.Model:
    """The bnn_small layout with a Bi-Real shortcut around every quantized conv."""
    _check_widths(widths)
    inputs = tf.keras.Input(shape=tuple(input_shape))
    x = _stem(inputs, stem_width)
    for i, width in enumerate(widths):
        x = bireal_block(x, width, name=f"block{i + 1}", **block_kwargs())
        if i in POOL_AFTER:
            x = tf.keras.layers.MaxPool2D(2, name=f"pool{i + 1}")(x)
    return tf.keras.Model(inputs, _head(x, num_classes, include_top), name=name)


# --- XNOR-Net -------------------------------------------------------------------------


@register(
    "xnornet_small",
    description="XNOR-Net: BN→sign→conv(α·sign W, α=mean|W| per filter)→pool; bnn_small size",
    lce_binary=True,
    default_input_shape=SHAPE,
    float_twin="bnn_small_float",
    family="xnornet",
    paper="Rastegari et al., XNOR-Net, ECCV 2016",
)
def xnornet_small(
    *,
    input_shape: Sequence[int] = SHAPE,
    num_classes: int = 10,
    include_top: bool = True,
    stem_width: int = 32,
    widths: Sequence[int] = DEFAULT_WIDTHS,
) -> tf.keras.Model:
    """XNOR-Net block order (BN → sign → conv → pool) with the per-filter weight scale α.

    Runs on LCE binary kernels: the input quantizer is `ste_sign` and the
    kernel freezes to ±α_o, whose α becomes LceBconv2d's output multiplier.
    """
    return _plain_small(
        input_shape=input_shape,
        num_classes=num_classes,
        include_top=include_top,
        stem_width=stem_width,
        widths=widths,
        conv_kwargs=lambda: {
            "input_quantizer": "ste_sign",
            "kernel_quantizer": XnorWeight(),
            "pad_values": 1.0,
        },
        bn_before_conv=True,
        name="xnornet_small",
    )


@register(
    "xnornet_pp_small",
    description="XNOR-Net++: sign convs × learned output scale Γ (factorised or per channel)",
    lce_binary=True,
    default_input_shape=SHAPE,
    float_twin="bnn_small_float",
    family="xnornet",
    paper="Bulat & Tzimiropoulos, XNOR-Net++, BMVC 2019",
)
def xnornet_pp_small(
    *,
    input_shape: Sequence[int] = SHAPE,
    num_classes: int = 10,
    include_top: bool = True,
    stem_width: int = 32,
    widths: Sequence[int] = DEFAULT_WIDTHS,
    scale: str = "factorised",
) -> tf.keras.Model:
    """bnn_small layout with XNOR-Net++'s learned scale Γ after each binary conv.

    Runs on LCE binary kernels. `scale="channel"` folds into the output
    multiplier (free); `"factorised"` (α⊗β⊗γ over C×H×W, the default) stays
    one float elementwise MUL per binary conv.

    Args:
        scale: `"factorised"` or `"channel"` (see `bnn_tf.xnor.XnorScale`).
    """
    return _plain_small(
        input_shape=input_shape,
        num_classes=num_classes,
        include_top=include_top,
        stem_width=stem_width,
        widths=widths,
        conv_kwargs=lambda: {
            "input_quantizer": "ste_sign",
            "kernel_quantizer": "ste_sign",
            "kernel_constraint": "weight_clip",
            "pad_values": 1.0,
        },
        after_conv=lambda n: XnorScale(scale, name=n),
        name="xnornet_pp_small",
    )


# --- Bi-Real, ReActNet, IR-Net ----------------------------------------------------------


@register(
    "birealnet_small",
    description="Bi-Real Net: real shortcut around every binary conv, ApproxSign activations",
    lce_binary=True,
    default_input_shape=SHAPE,
    float_twin="bnn_small_float",
    family="bireal",
    paper="Liu et al., Bi-Real Net, ECCV 2018",
)
def birealnet_small(
    *,
    input_shape: Sequence[int] = SHAPE,
    num_classes: int = 10,
    include_top: bool = True,
    stem_width: int = 32,
    widths: Sequence[int] = DEFAULT_WIDTHS,
) -> tf.keras.Model:
    """bnn_small layout made of Bi-Real blocks (real 1×1 conv shortcut where channels grow).

    ApproxSign activations; sign weights (the magnitude-aware scale is absorbed by
    the BatchNorm after each conv, see `_SIGN_KERNEL`).

    Runs on LCE binary kernels (the shortcut 1×1 convs are float, as in the paper).
    """
    return _residual_small(
        input_shape=input_shape,
        num_classes=num_classes,
        include_top=include_top,
        stem_width=stem_width,
        widths=widths,
        block_kwargs=lambda: {"shortcut": "conv", **_SIGN_KERNEL},
        name="birealnet_small",
    )


@register(
    "reactnet_small",
    description="ReActNet-style: RSign threshold + sign conv, RPReLU, channel-duplicating shortcuts",
    lce_binary=True,
    default_input_shape=SHAPE,
    float_twin="bnn_small_float",
    family="reactnet",
    paper="Liu et al., ReActNet, ECCV 2020",
)
def reactnet_small(
    *,
    input_shape: Sequence[int] = SHAPE,
    num_classes: int = 10,
    include_top: bool = True,
    stem_width: int = 32,
    widths: Sequence[int] = DEFAULT_WIDTHS,
) -> tf.keras.Model:
    """Bi-Real blocks with ReActNet's RSign (`RSignThreshold` → sign conv) and RPReLU.

    Channel growth uses ReActNet's parameter-free shortcut (the input
    concatenated with itself), so every width must double or stay equal.
    Runs on LCE binary kernels: RSign's threshold is a float Sub before the
    conv, whose input quantizer stays a plain sign.
    """
    return _residual_small(
        input_shape=input_shape,
        num_classes=num_classes,
        include_top=include_top,
        stem_width=stem_width,
        widths=widths,
        block_kwargs=lambda: {
            "shortcut": "duplicate",
            **_SIGN_KERNEL,
            "pre": lambda n: RSignThreshold(name=n),
            "post": lambda n: RPReLU(name=n),
        },
        name="reactnet_small",
    )


def _irnet_block_kwargs(shortcut: str) -> dict[str, Any]:
    return {"shortcut": shortcut, "input_quantizer": EdeSign(), "kernel_quantizer": LibraPBWeight()}


@register(
    "irnet_small",
    description="IR-Net: Libra-PB weights + EDE gradient on Bi-Real blocks; bnn_small size",
    lce_binary=True,
    default_input_shape=SHAPE,
    float_twin="bnn_small_float",
    family="irnet",
    paper="Qin et al., IR-Net, CVPR 2020",
)
def irnet_small(
    *,
    input_shape: Sequence[int] = SHAPE,
    num_classes: int = 10,
    include_top: bool = True,
    stem_width: int = 32,
    widths: Sequence[int] = DEFAULT_WIDTHS,
) -> tf.keras.Model:
    """Bi-Real-block bnn_small layout with IR-Net's quantizers (train with `EdeSchedule`).

    Runs on LCE binary kernels.
    """
    return _residual_small(
        input_shape=input_shape,
        num_classes=num_classes,
        include_top=include_top,
        stem_width=stem_width,
        widths=widths,
        block_kwargs=lambda: _irnet_block_kwargs("conv"),
        name="irnet_small",
    )


@register(
    "irnet_resnet20",
    description="IR-Net CIFAR ResNet-20 (16/32/64, shortcut per binary conv, option-A shortcuts)",
    lce_binary=True,
    default_input_shape=SHAPE,
    family="irnet",
    paper="Qin et al., IR-Net, CVPR 2020 (CIFAR-10 ResNet-20: 86.5%)",
)
def irnet_resnet20(
    *,
    input_shape: Sequence[int] = SHAPE,
    num_classes: int = 10,
    include_top: bool = True,
    widths: Sequence[int] = (16, 32, 64),
    blocks: int = 3,
) -> tf.keras.Model:
    """IR-Net's ResNet-20: float stem conv 16, three stages of `blocks` basic blocks.

    Each basic block is two binary 3×3 convs, each with its own shortcut (the
    IR-Net/Bi-Real layout); stage 2 and 3 start with stride 2 and an option-A
    (average-pool + zero channel pad, `bnn_tf.shortcuts.ZeroPadShortcut`)
    shortcut. Deviation from the reference code: no hardtanh after each add
    (it would bound the real residual stream to [−1, 1]; the signs do not
    change, the shortcut values do). Runs on LCE binary kernels; train with
    `EdeSchedule`.

    Args:
        widths: filters of the three stages.
        blocks: basic blocks per stage (3 → ResNet-20).
    """
    if len(widths) != 3 or blocks < 1:
        raise ConfigError(
            f"irnet_resnet20 needs 3 stage widths and blocks ≥ 1 (got {widths}, {blocks})."
        )
    inputs = tf.keras.Input(shape=tuple(input_shape))
    x = tf.keras.layers.Conv2D(widths[0], 3, padding="same", use_bias=False, name="stem_conv")(
        inputs
    )
    x = tf.keras.layers.BatchNormalization(momentum=0.9, name="stem_bn")(x)
    for s, width in enumerate(widths):
        for b in range(blocks):
            for c in range(2):
                strides = 2 if (s > 0 and b == 0 and c == 0) else 1
                x = bireal_block(
                    x,
                    width,
                    strides=strides,
                    name=f"s{s + 1}b{b + 1}c{c + 1}",
                    **_irnet_block_kwargs("pad"),
                )
    return tf.keras.Model(inputs, _head(x, num_classes, include_top), name="irnet_resnet20")


# --- k-bit and ternary (not LCE binary) -------------------------------------------------


@register(
    "dorefa_small",
    description="DoReFa-Net k-bit weights and activations (default 2/2); float kernels under LCE",
    lce_binary=False,
    default_input_shape=SHAPE,
    float_twin="bnn_small_float",
    family="dorefa",
    paper="Zhou et al., DoReFa-Net, arXiv 1606.06160",
)
def dorefa_small(
    *,
    input_shape: Sequence[int] = SHAPE,
    num_classes: int = 10,
    include_top: bool = True,
    stem_width: int = 32,
    widths: Sequence[int] = DEFAULT_WIDTHS,
    k_bit: int = 2,
) -> tf.keras.Model:
    """bnn_small layout with larq's DoReFa quantizers (activations clipped to [0, 1]).

    NOT an LCE binary model: k-bit convs convert to float `CONV_2D` on the
    de-quantized values (same outputs, float speed and size).

    Args:
        k_bit: bits of weights and activations (≥ 1; 1 is still not sign-like: {0, 1} inputs).
    """
    if k_bit < 1:
        raise ConfigError(f"k_bit must be ≥ 1 (got {k_bit}).")
    return _plain_small(
        input_shape=input_shape,
        num_classes=num_classes,
        include_top=include_top,
        stem_width=stem_width,
        widths=widths,
        conv_kwargs=lambda: {
            "input_quantizer": lq.quantizers.DoReFa(k_bit=k_bit, mode="activations"),
            "kernel_quantizer": lq.quantizers.DoReFa(k_bit=k_bit, mode="weights"),
        },
        name="dorefa_small",
    )


@register(
    "twn_small",
    description="Ternary Weight Networks: {-1,0,+1} weights (Δ=0.7·mean|W|), float activations",
    lce_binary=False,
    default_input_shape=SHAPE,
    float_twin="bnn_small_float",
    family="twn",
    paper="Li, Zhang & Liu, Ternary Weight Networks, arXiv 1605.04711",
)
def twn_small(
    *,
    input_shape: Sequence[int] = SHAPE,
    num_classes: int = 10,
    include_top: bool = True,
    stem_width: int = 32,
    widths: Sequence[int] = DEFAULT_WIDTHS,
) -> tf.keras.Model:
    """bnn_small layout with larq's `SteTern(ternary_weight_networks=True)` kernels.

    TWN's scale α (mean of the surviving |W|) is left to the BatchNorm right
    after each conv, which absorbs any positive per-layer scale. NOT an LCE
    binary model: ternary weights with float activations convert to float
    `CONV_2D` (float speed and size).
    """
    return _plain_small(
        input_shape=input_shape,
        num_classes=num_classes,
        include_top=include_top,
        stem_width=stem_width,
        widths=widths,
        conv_kwargs=lambda: {
            "kernel_quantizer": lq.quantizers.SteTern(ternary_weight_networks=True)
        },
        name="twn_small",
    )
