"""LQ-Net: learned quantizer bases for the weights (Zhang, Yang, Ye, Hua, ECCV 2018).

"LQ-Nets: Learned Quantization for Highly Accurate and Compact Deep Neural
Networks". A K-bit weight is a binary code on a learned basis v ∈ R^K
(one basis per output filter):

    Q(w) = vᵀ e(w),   e(w) = argmin_{e ∈ {−1, +1}^K} |w − vᵀe|   (the nearest of the 2^K levels)

so `LqWeight(bits=K)` (alias `"lq_weight"`) yields K binary bases Bₖ = eₖ(W)
with scales vₖ. The basis is learned by the paper's quantization error
minimisation (QEM), one step per training step, with a moving average:

    B ← e(W; v),   v* = argmin_v ‖W − Σₖ vₖ Bₖ‖² = (BᵀB)⁻¹ Bᵀ W,   v ← m·v + (1 − m)·v*

(m = `momentum`, paper 0.9). v is a non-trainable variable: at inference
(and once frozen for LCE) it is a constant, and so is every Bₖ.
Gradients: each Bₖ passes its gradient straight through to W; v takes none.
Initial basis: vₖ = 2^(k−1) · 2·mean|W| / (2^K − 1), set at the first
training step (levels evenly spaced over ±2·mean|W|), and used until then.

In `MultiBasisConv2D` a layer becomes K `LceBconv2d` per activation basis —
on small layers only: the nearest-level search (a kernel × 2^K tensor) is not
constant-folded by LCE's converter on large ones (measured at 3×3×128→256;
docs/multibit.md), which then stay float convs on a run-time kernel.
The paper's activation quantizer uses {0, 1} codes after ReLU, which are not
sign-like; it is not implemented (the model binarises activations with
ReBNet levels).
"""

from __future__ import annotations

import itertools

import tensorflow as tf

from bnn_tf.errors import ConfigError
from bnn_tf.methods.multibasis import (
    WeightBases,
    least_squares_scales,
    register_alias,
    straight_through,
)


def codes(bits: int) -> tf.Tensor:
    """All 2^K codes in {−1, +1}^K, shape (2^K, K)."""
    return tf.constant(list(itertools.product([-1.0, 1.0], repeat=bits)), tf.float32)


def nearest_codes(w: tf.Tensor, v: tf.Tensor, bits: int) -> list[tf.Tensor]:
    """Bₖ (k = 1..K): the k-th bit of the level nearest to each weight; v has shape (K, C)."""
    e = codes(bits)
    levels = tf.matmul(e, v)  # (2^K, C)
    index = tf.argmin(tf.abs(w[..., None] - tf.transpose(levels)), axis=-1)  # w.shape
    return [tf.gather(e[:, k], index) for k in range(bits)]


@register_alias("lq_weight")
class LqWeight(WeightBases):
    r"""LQ-Net weight quantizer: the nearest level of a learned K-dim basis, per output filter.

    Args:
        bits: K (≥ 1).
        momentum: QEM moving average m of the basis (paper 0.9).
    """

    def __init__(self, bits: int = 2, momentum: float = 0.9, **kwargs):
        if int(bits) < 1:
            raise ConfigError(f"LqWeight bits must be ≥ 1 (got {bits}).")
        if not 0 <= momentum < 1:
            raise ConfigError(f"LqWeight momentum must be in [0, 1) (got {momentum}).")
        self.bits = int(bits)
        self.num_bases = self.bits
        self.momentum = float(momentum)
        super().__init__(**kwargs)

    def build(self, input_shape):
        channels = int(tf.TensorShape(input_shape)[-1])
        self.basis = self.add_weight(
            name="basis", shape=(self.bits, channels), initializer="zeros", trainable=False
        )
        self.initialised = self.add_weight(
            name="initialised", shape=(), initializer="zeros", trainable=False
        )
        super().build(input_shape)

    def initial_basis(self, w: tf.Tensor) -> tf.Tensor:
        axes = list(range(len(w.shape) - 1))
        unit = 2.0 * tf.reduce_mean(tf.abs(w), axis=axes) / (2.0**self.bits - 1.0)
        powers = tf.constant([2.0**k for k in range(self.bits)])[:, None]
        return powers * unit[None]

    def qem_step(self, w: tf.Tensor) -> tf.Tensor:
        """One QEM update of the basis from `w` (moving average); returns the new basis."""
        axes = list(range(len(w.shape) - 1))
        w = tf.stop_gradient(w)
        v = tf.where(self.initialised > 0, self.basis, self.initial_basis(w))
        v_star = least_squares_scales(w, nearest_codes(w, v, self.bits), axes)
        new = self.momentum * v + (1.0 - self.momentum) * v_star
        self.basis.assign(new)
        self.initialised.assign(1.0)
        return new

    def bases(self, w, training=False):
        if not self.built:
            self.build(w.shape)
        if training:
            v = self.qem_step(w)
        else:  # before the first training step: the initial basis, not zeros
            v = tf.where(self.initialised > 0, self.basis, self.initial_basis(w))
        v = tf.stop_gradient(tf.convert_to_tensor(v))
        return [
            (straight_through(w, b), v[k])
            for k, b in enumerate(nearest_codes(tf.stop_gradient(w), v, self.bits))
        ]

    def get_config(self):
        return {**super().get_config(), "bits": self.bits, "momentum": self.momentum}
