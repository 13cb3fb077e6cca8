"""QuickNet's blocks (larq-zoo's state-of-the-art BNN family for LCE).

Bannink et al., "Larq Compute Engine: Design, Benchmark, and Deploy
State-of-the-Art Binarized Neural Networks", MLSys 2021. The network is a
ResNet-style stack of *residual binary blocks* at four widths joined by
*pointwise transitions*, behind a cheap float stem:

- stem: Conv3×3/2 (C/4) → BN → ReLU → Depthwise3×3/2 → BN (no γ, β) →
  Conv1×1 (C) → BN (all float);
- residual block: `y = BN(ReLU(BConv3×3(sign(x)))) + x`, where the sign and the
  kernel are `SteSign(clip=1.25)`, `pad_values=1` and the ReLU is fused into the
  binary conv (LCE fuses ReLU when it comes before any multiplier);
- transition: ReLU → MaxPool(s, stride 1) → anti-aliased subsampling (a fixed
  binomial "blur pool" depthwise 3×3/s, Zhang 2019) → float Conv1×1 → BN.

`BlurPoolInitializer` (alias `"blurpool_initializer"`, larq-zoo's name) makes
the fixed blur kernel `b bᵀ / (Σb)²` with `b` the binomial row of size 2, 3 or 5
(`[1,1]`, `[1,2,1]`, `[1,4,6,4,1]`) for every channel; the depthwise conv
holding it is not trainable, so it is a constant after conversion.
"""

from __future__ import annotations

from math import comb

import larq as lq
import numpy as np
import tensorflow as tf

from bnn_tf.errors import ConfigError

CLIP = 1.25
BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5


@tf.keras.utils.register_keras_serializable(package="bnn_tf", name="blurpool_initializer")
class BlurPoolInitializer(tf.keras.initializers.Initializer):
    """Binomial blur kernel for a depthwise conv of shape `(k, k, C, 1)`, k ∈ {2, 3, 5}.

    `K[i, j, c] = C(k−1, i) · C(k−1, j) / 4^(k−1)` (the outer product of a binomial
    row with itself, normalised to sum 1), identical for every channel c.
    """

    def __call__(self, shape, dtype=None, **kwargs):
        size, channels = int(shape[0]), int(shape[2])
        if size not in (2, 3, 5) or int(shape[1]) != size:
            raise ConfigError(f"blur-pool kernels are 2×2, 3×3 or 5×5 (got shape {shape}).")
        row = np.array([comb(size - 1, i) for i in range(size)], dtype="float64")
        kernel = np.outer(row, row) / row.sum() ** 2
        kernel = np.broadcast_to(kernel[:, :, None], (size, size, channels))
        return tf.constant(np.reshape(kernel, shape), dtype=dtype or tf.float32)

    def get_config(self):
        return {}


def binary_quantizer() -> lq.quantizers.SteSign:
    return lq.quantizers.SteSign(clip_value=CLIP)


def stem(x: tf.Tensor, filters: int, *, name: str = "stem") -> tf.Tensor:
    """Float stem: Conv3×3/2 (filters/4) → BN → ReLU → DWConv3×3/2 → BN(no γ, β) → Conv1×1 → BN."""
    if filters % 4:
        raise ConfigError(f"QuickNet's first width must be a multiple of 4 (got {filters}).")
    x = lq.layers.QuantConv2D(
        filters // 4, 3, strides=2, padding="same", use_bias=False,
        kernel_initializer="he_normal", name=f"{name}_conv",
    )(x)  # fmt: skip
    x = tf.keras.layers.BatchNormalization(name=f"{name}_bn")(x)
    x = tf.keras.layers.Activation("relu", name=f"{name}_relu")(x)
    x = lq.layers.QuantDepthwiseConv2D(
        3, strides=2, padding="same", use_bias=False, name=f"{name}_dwconv"
    )(x)
    x = tf.keras.layers.BatchNormalization(scale=False, center=False, name=f"{name}_dw_bn")(x)
    x = lq.layers.QuantConv2D(
        filters, 1, use_bias=False, kernel_initializer="he_normal", name=f"{name}_pw"
    )(x)
    return tf.keras.layers.BatchNormalization(name=f"{name}_pw_bn")(x)


def residual_block(x: tf.Tensor, *, name: str) -> tf.Tensor:
    """`BN(ReLU(BConv3×3(sign(x)))) + x` (same width, stride 1)."""
    y = lq.layers.QuantConv2D(
        int(x.shape[-1]), 3, padding="same", pad_values=1.0, use_bias=False,
        activation="relu", input_quantizer=binary_quantizer(),
        kernel_quantizer=binary_quantizer(),
        kernel_constraint=lq.constraints.WeightClip(CLIP),
        kernel_initializer="glorot_normal", name=f"{name}_conv",
    )(x)  # fmt: skip
    y = tf.keras.layers.BatchNormalization(
        momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=f"{name}_bn"
    )(y)
    return tf.keras.layers.Add(name=f"{name}_add")([y, x])


def transition_block(x: tf.Tensor, filters: int, *, strides: int = 2, name: str) -> tf.Tensor:
    """ReLU → MaxPool(strides, stride 1) → blur-pool DWConv3×3/strides → Conv1×1 → BN."""
    x = tf.keras.layers.Activation("relu", name=f"{name}_relu")(x)
    x = tf.keras.layers.MaxPool2D(pool_size=strides, strides=1, name=f"{name}_maxpool")(x)
    x = tf.keras.layers.DepthwiseConv2D(
        3, strides=strides, padding="same", use_bias=False,
        depthwise_initializer=BlurPoolInitializer(), trainable=False, name=f"{name}_blurpool",
    )(x)  # fmt: skip
    x = lq.layers.QuantConv2D(
        filters, 1, use_bias=False, kernel_initializer="glorot_normal", name=f"{name}_conv"
    )(x)
    return tf.keras.layers.BatchNormalization(
        momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=f"{name}_bn"
    )(x)
