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
from bnn_tf.models.registry import Kind, option

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


# The options every `*_small` factory takes, in this order, and its registry defaults.
SMALL = Kind(
    parameters=(
        option("input_shape", SHAPE, Sequence[int]),
        option("num_classes", 10, int),
        option("include_top", True, bool),
        option("stem_width", 32, int),
        option("widths", DEFAULT_WIDTHS, Sequence[int]),
    ),
    defaults={"default_input_shape": SHAPE, "float_twin": "bnn_small_float"},
)


def plain_small(
    args: Any,
    *,
    conv_kwargs: Callable[[], dict[str, Any]],
    after_conv: Callable[[str], tf.keras.layers.Layer] | None = None,
    bn_before_conv: bool = False,
) -> tf.keras.Model:
    """The bnn_small layout (`args`: a `SMALL` factory's options) with given quantizers.

    `conv_kwargs()` is called once per conv, so each gets fresh quantizer objects.
    """
    check_widths(args.widths)
    inputs = tf.keras.Input(shape=tuple(args.input_shape))
    x = small_stem(inputs, args.stem_width)
    for i, width in enumerate(args.widths):
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
    return small_model(args, inputs, x)


def small_model(args: Any, inputs: tf.Tensor, features: tf.Tensor) -> tf.keras.Model:
    """The model from `inputs` to `features` with `args`' classifier head and name."""
    head = classifier_head(features, args.num_classes, args.include_top)
    return tf.keras.Model(inputs, head, name=args.name)


def residual_small(args: Any, *, block_kwargs: Callable[[], dict[str, Any]]) -> tf.keras.Model:
    """The bnn_small layout with a Bi-Real shortcut around every quantized conv."""
    check_widths(args.widths)
    inputs = tf.keras.Input(shape=tuple(args.input_shape))
    x = small_stem(inputs, args.stem_width)
    for i, width in enumerate(args.widths):
        x = bireal_block(x, width, name=f"block{i + 1}", **block_kwargs())
        if i in POOL_AFTER:
            x = tf.keras.layers.MaxPool2D(2, name=f"pool{i + 1}")(x)
    return small_model(args, inputs, x)
