"""Real-to-Binary Net blocks (Martinez, Yang, Bulat, Tzimiropoulos, ICLR 2020).

"Training binary neural networks with real-to-binary convolutions". Each half
of a binary block (Fig. 1) is

    z = BN(x)
    y = BConv3×3(sign(z)) · s(z),   s(z) = σ(W₂ ReLU(W₁ GAP(z)))   (per channel)
    out = PReLU(y) + shortcut(x)

where `s` is the data-driven, squeeze-and-excite-style gating of Section 4.3
(reduction r = 8) computed from the *real* input of the binary conv, and
the shortcut is AvgPool 2×2/2 → float Conv1×1 → BN where the width doubles.
Binary conv: `ste_sign` inputs and kernel, weight clip, zero padding (larq-zoo's
layout). Layer names follow larq-zoo's (`{block}{a|b}_…`), which the
attention-transfer losses of the paper's multi-stage training refer to.

`block_output` marks a block's output with a named `Identity` (larq-zoo uses a
`Lambda` there, which does not survive `safe_mode` loading); it adds no op.
"""

from __future__ import annotations

import larq as lq
import tensorflow as tf

MOMENTUM = 0.99
SCALING_R = 8
KERNEL_INITIALIZER = "glorot_normal"


def global_pool(x: tf.Tensor, name: str) -> tf.Tensor:
    """Average over the whole feature map, as `AveragePooling2D` + `Flatten` (larq-zoo's layout).

    The same values as `GlobalAveragePooling2D`, kept in this form so the graph
    and its layer names match larq-zoo's and its weight files load.
    """
    x = tf.keras.layers.AveragePooling2D(pool_size=tuple(x.shape[1:3]), name=f"{name}_pool")(x)
    return tf.keras.layers.Flatten(name=f"{name}_flatten")(x)


def shortcut(x: tf.Tensor, out_channels: int, *, name: str) -> tf.Tensor:
    """Identity, or AvgPool 2×2/2 → Conv1×1 → BN where the width changes."""
    if int(x.shape[-1]) == out_channels:
        return x
    x = tf.keras.layers.AvgPool2D(2, strides=2, padding="same", name=f"{name}_shortcut_pool")(x)
    x = tf.keras.layers.Conv2D(
        out_channels, 1, use_bias=False, kernel_initializer=KERNEL_INITIALIZER,
        name=f"{name}_shortcut_conv2d",
    )(x)  # fmt: skip
    return tf.keras.layers.BatchNormalization(
        momentum=MOMENTUM, name=f"{name}_shortcut_batch_norm"
    )(x)


def data_driven_scale(
    conv_input: tf.Tensor, conv_output: tf.Tensor, *, scaling_r: int = SCALING_R, name: str
) -> tf.Tensor:
    """`conv_output · σ(W₂ ReLU(W₁ GAP(conv_input)))`, one gate per output channel."""
    in_filters, out_filters = int(conv_input.shape[-1]), int(conv_output.shape[-1])
    z = global_pool(conv_input, f"{name}_scaling_pool")
    z = tf.keras.layers.Dense(
        in_filters // scaling_r, activation="relu", use_bias=False,
        kernel_initializer="he_normal", name=f"{name}_scaling_dense_reduce",
    )(z)  # fmt: skip
    z = tf.keras.layers.Dense(
        out_filters, activation="sigmoid", use_bias=False,
        kernel_initializer="he_normal", name=f"{name}_scaling_dense_expand",
    )(z)  # fmt: skip
    z = tf.keras.layers.Reshape((1, 1, out_filters), name=f"{name}_scaling_reshape")(z)
    return tf.keras.layers.Multiply(name=f"{name}_scaling_multiplication")([conv_output, z])


def half_binary_block(x: tf.Tensor, *, downsample: bool = False, name: str) -> tf.Tensor:
    """One half of Fig. 1's binary block (width ×2 and stride 2 when `downsample`)."""
    in_channels = int(x.shape[-1])
    out_channels = 2 * in_channels if downsample else in_channels
    skip = shortcut(x, out_channels, name=name)
    conv_input = tf.keras.layers.BatchNormalization(momentum=MOMENTUM, name=f"{name}_batch_norm")(x)
    y = lq.layers.QuantConv2D(
        out_channels, 3, strides=2 if downsample else 1, padding="same", use_bias=False,
        input_quantizer="ste_sign", kernel_quantizer="ste_sign",
        kernel_constraint="weight_clip", kernel_initializer=KERNEL_INITIALIZER,
        name=f"{name}_conv2d",
    )(conv_input)  # fmt: skip
    y = data_driven_scale(conv_input, y, name=name)
    y = tf.keras.layers.PReLU(shared_axes=[1, 2], name=f"{name}_prelu")(y)
    return tf.keras.layers.Add(name=f"{name}_skip_add")([y, skip])


def binary_block(x: tf.Tensor, *, downsample: bool = False, name: str) -> tf.Tensor:
    """Two halves (`{name}a`, `{name}b`), output named `{name}_out`."""
    x = half_binary_block(x, downsample=downsample, name=f"{name}a")
    x = half_binary_block(x, name=f"{name}b")
    return tf.keras.layers.Identity(name=f"{name}_out")(x)
