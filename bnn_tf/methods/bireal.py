"""The Bi-Real block: a real-valued shortcut around every binary convolution.

Liu et al., "Bi-Real Net: Enhancing the Performance of 1-bit CNNs With
Improved Representational Capability and Advanced Training Algorithm",
ECCV 2018:

    y = BN(conv_b(sign(x))) + shortcut(x)

The binary conv sees `sign(x)`, but the real activations `x` are carried
forward by the shortcut, so each block adds real information instead of
replacing it. Defaults follow the paper: ApproxSign activations (gradient
`2 − 2|x|` on |x| ≤ 1) and the magnitude-aware weight scale
(`mean|W|` per output channel × sign(W), larq's `magnitude_aware_sign`).

Shortcuts when the shape changes (`shortcut=`):
- `"conv"` (Bi-Real): AvgPool(stride) → real 1×1 conv → BN. Costs a few float MACs.
- `"pad"` (ResNet option A, used by the CIFAR ResNet-20s of IR-Net/ReCU):
  average-pool subsampling and zero channel padding
  (`bnn_tf.methods.shortcuts.ZeroPadShortcut`); free.
- `"duplicate"` (ReActNet): AvgPool(stride) then the input concatenated with
  itself; needs `filters == 2 × input channels`; free.

`bireal_block` builds Keras functional layers (it is a function, like the
blocks of `keras.applications`), so the binary conv stays a visible
`QuantConv2D` for the converter's checks. Its `pre` and `post` hooks take
layer factories, e.g. ReActNet's `RSignThreshold` before the sign and
`RPReLU` after the add.

LCE: the binary conv has a sign input quantizer, `pad_values=1.0` and BN
directly after it, so it becomes `LceBconv2d` with BN folded in. The add
keeps its output in float (no bitpacked output between blocks), as for every
residual BNN (docs/lce.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import larq as lq
import tensorflow as tf

from bnn_tf.errors import ConfigError
from bnn_tf.methods.shortcuts import ZeroPadShortcut

SHORTCUTS = ("conv", "pad", "duplicate")


def bireal_block(
    x: tf.Tensor,
    filters: int,
    *,
    strides: int = 1,
    kernel_size: int = 3,
    shortcut: str = "conv",
    input_quantizer: Any = "approx_sign",
    kernel_quantizer: Any = "magnitude_aware_sign",
    kernel_constraint: Any = None,
    pre: Callable[[str], tf.keras.layers.Layer] | None = None,
    post: Callable[[str], tf.keras.layers.Layer] | None = None,
    bn_momentum: float = 0.9,
    name: str = "block",
) -> tf.Tensor:
    """One Bi-Real block: `post(BN(conv_b(pre(x))) + shortcut(x))`.

    Args:
        x: input feature map (NHWC).
        filters: output channels.
        strides: stride of the binary conv (and of the shortcut).
        kernel_size: binary conv kernel size.
        shortcut: how to match shapes when they change: `"conv"`, `"pad"` or `"duplicate"`
            (see module docstring); an identity when shapes already match.
        input_quantizer / kernel_quantizer / kernel_constraint: of the binary conv
            (keep the input quantizer a plain sign for LCE).
        pre: factory `name -> layer` applied to the conv branch before the sign.
        post: factory `name -> layer` applied after the add.
        bn_momentum: BatchNorm momentum (Keras convention).
        name: prefix of the layer names.
    """
    if shortcut not in SHORTCUTS:
        raise ConfigError(f"shortcut must be one of {SHORTCUTS} (got {shortcut!r}).")
    in_channels = int(x.shape[-1])
    branch = pre(f"{name}_pre")(x) if pre is not None else x
    branch = lq.layers.QuantConv2D(
        filters,
        kernel_size,
        strides=strides,
        padding="same",
        pad_values=1.0,
        use_bias=False,
        input_quantizer=input_quantizer,
        kernel_quantizer=kernel_quantizer,
        kernel_constraint=kernel_constraint,
        name=f"{name}_conv",
    )(branch)
    branch = tf.keras.layers.BatchNormalization(momentum=bn_momentum, name=f"{name}_bn")(branch)

    skip = x
    if strides != 1 or in_channels != filters:
        if shortcut == "pad":
            skip = ZeroPadShortcut(filters, strides, name=f"{name}_shortcut_pad")(x)
        else:
            if strides != 1:
                skip = tf.keras.layers.AveragePooling2D(
                    strides, padding="same", name=f"{name}_shortcut_pool"
                )(x)
            if shortcut == "conv":
                skip = tf.keras.layers.Conv2D(
                    filters, 1, use_bias=False, name=f"{name}_shortcut_conv"
                )(skip)
                skip = tf.keras.layers.BatchNormalization(
                    momentum=bn_momentum, name=f"{name}_shortcut_bn"
                )(skip)
            elif in_channels != filters:
                if filters != 2 * in_channels:
                    raise ConfigError(
                        f"The 'duplicate' shortcut doubles channels: {in_channels} → {filters} is not "
                        "a doubling. Fix: use shortcut='conv' or 'pad'."
                    )
                skip = tf.keras.layers.Concatenate(name=f"{name}_shortcut_dup")([skip, skip])
    out = tf.keras.layers.Add(name=f"{name}_add")([branch, skip])
    return post(f"{name}_post")(out) if post is not None else out
