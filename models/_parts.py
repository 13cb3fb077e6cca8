"""Parts shared by the small zoo models: the bnn_small stem, layout and classifier head.

The `*_small` models share `bnn_small`'s size so they can be compared at
equal cost: a float 3×3 stem conv (32 filters) → BN → MaxPool 2, then five
3×3 quantized convs of widths (64, 64, 128, 128, 256) with MaxPool 2 after
the 2nd and 4th, then global average pooling and a float Dense classifier.
The first and last layers stay float, as in the papers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import larq as lq
import tensorflow as tf

from bnn_tf.errors import ConfigError
from bnn_tf.methods.bireal import bireal_block

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
SIGN_KERNEL = {"kernel_quantizer": "ste_sign", "kernel_constraint": "weight_clip"}


def classifier_head(
    x: tf.Tensor,
    num_classes: int,
    include_top: bool,
    *,
    pool_name: str = "gap",
    kernel_initializer: str = "glorot_uniform",
) -> tf.Tensor:
    """Global average pooling → float Dense logits (keras.applications' `include_top`).

    With `include_top=False` the feature map is returned unchanged. Layer names
    stay `gap`/`logits` so weights saved by earlier versions load by name.
    """
    if include_top:
        x = tf.keras.layers.GlobalAveragePooling2D(name=pool_name)(x)
        x = tf.keras.layers.Dense(
            num_classes, kernel_initializer=kernel_initializer, name="logits"
        )(x)
    return x


def check_widths(widths: Sequence[int]) -> None:
    if len(widths) != 5:
        raise ConfigError(f"widths must have 5 entries (got {len(widths)}).")


def small_stem(inputs: tf.Tensor, stem_width: int) -> tf.Tensor:
    x = tf.keras.layers.Conv2D(stem_width, 3, padding="same", use_bias=False, name="stem_conv")(
        inputs
    )
    x = tf.keras.layers.BatchNormalization(momentum=0.9, name="stem_bn")(x)
    return tf.keras.layers.MaxPool2D(2, name="stem_pool")(x)


def plain_small(
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
    check_widths(widths)
    inputs = tf.keras.Input(shape=tuple(input_shape))
    x = small_stem(inputs, stem_width)
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
    return tf.keras.Model(inputs, classifier_head(x, num_classes, include_top), name=name)


def residual_small(
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
    check_widths(widths)
    inputs = tf.keras.Input(shape=tuple(input_shape))
    x = small_stem(inputs, stem_width)
    for i, width in enumerate(widths):
        x = bireal_block(x, width, name=f"block{i + 1}", **block_kwargs())
        if i in POOL_AFTER:
            x = tf.keras.layers.MaxPool2D(2, name=f"pool{i + 1}")(x)
    return tf.keras.Model(inputs, classifier_head(x, num_classes, include_top), name=name)
