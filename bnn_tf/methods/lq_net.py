"""LQ-Net: learned quantizer bases for weights and activations (Zhang, Yang, Ye, Hua, ECCV 2018).

"LQ-Nets: Learned Quantization for Highly Accurate and Compact Deep Neural
Networks". A K-bit value is a binary code on a learned basis v ∈ R^K:

    Q(x) = vᵀ e(x),   e(x) = argmin_{e ∈ {−1, +1}^K} |x − vᵀe|   (the nearest of the 2^K levels)

The paper writes the nearest level with thresholds: sort the levels
q₁ ≤ … ≤ q_{2^K} (each with its code), tₗ = (qₗ + qₗ₊₁)/2, and
Q(x) = qₗ₊₁ for x ∈ [tₗ, tₗ₊₁) — a chain of comparisons. That is how the code
is computed here: bit k is

    eₖ(x) = e₁ₖ + Σₗ (eₗ₊₁,ₖ − eₗₖ) · 1[x ≥ tₗ]   (eₗ the code of the l-th sorted level)

so every op is elementwise on x with per-basis constants. (A kernel × 2^K
distance tensor with an argmin, the literal argmin, is 2^K times the kernel:
LCE's converter does not constant-fold ops that much larger than their
inputs and left conv3–5 of `lqnet_small` as float convs on a run-time
kernel. The two forms agree but for ties exactly at a threshold, where the
comparison picks the upper level.)

The basis is learned by the paper's quantization error minimisation (QEM),
one step per training step, as a moving average:

    B ← e(x; v),   v* = argmin_v ‖x − Σₖ vₖ Bₖ‖² = (BᵀB)⁻¹ Bᵀ x,   v ← m·v + (1 − m)·v*

(m = `momentum`, paper 0.9); the training step then quantizes with the
updated v. v is a non-trainable variable, a constant at inference.
Gradients, as the paper's code (microsoft/LQ-Nets, `learned_quantization.py`):
weights ∂Q/∂W = 1 (straight through); activations ∂Q/∂x = 1[x ≤ q_max], the
top level (the code's `min(x, q_max)`), here also 0 below q_min = −q_max since
our ±1-coded inputs take both signs. Each of the K bases passes 1/Σₖ|vₖ| of
that gradient, so their sum Σₖ vₖ Bₖ has exactly the paper's. v takes none.

- `LqWeight(bits)` (alias `"lq_weight"`): one basis per output filter;
  initial basis vₖ = 2^(k−1) · 2·mean|W| / (2^K − 1), set at the first
  training step (levels evenly spaced over ±2·mean|W|), used until then.
- `LqActivation(bits)` (alias `"lq_activation"`): one basis per layer (a
  per-input-channel scale could not leave the convolution); QEM over every
  value of the batch. The paper's activation codes are {0, 1}^K, for
  non-negative activations after ReLU; the convolutions here read
  BatchNorm outputs of both signs, so the codes are ±1, as the paper's
  weights (and a {0, 1} code would add a constant offset, not a binary
  basis). Initial basis vₖ = 2^(k−1) · 2·Φ⁻¹(0.75) / (2^K − 1) (our choice:
  the weights' rule for a unit Gaussian, what BatchNorm feeds).

In `MultiBasisConv2D` a layer becomes K_w · K_a `LceBconv2d`: every weight
bit is a constant ±1 kernel, every activation bit the sign of a float
tensor (docs/multibit.md).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import larq as lq
import tensorflow as tf

from bnn_tf.errors import ConfigError, check_momentum
from bnn_tf.methods import multibasis
from bnn_tf.methods.multibasis import ActivationBases, Bases, WeightBases, register_alias

# Φ⁻¹(0.75): the quartile of a unit Gaussian.
GAUSSIAN_QUARTILE = 0.6744897501960817

Above = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]


def codes(bits: int) -> tf.Tensor:
    """All 2^K codes in {−1, +1}^K, shape (2^K, K)."""
    return tf.constant(list(itertools.product([-1.0, 1.0], repeat=bits)), tf.float32)


def above_float(x: tf.Tensor, t: tf.Tensor) -> tf.Tensor:
    """1[x ≥ t] from float ops only (folds on a constant kernel of any size; sign(0) = +1)."""
    return (lq.math.sign(x - t) + 1.0) / 2.0


def above_compare(x: tf.Tensor, t: tf.Tensor) -> tf.Tensor:
    """1[x ≥ t] as a comparison (cheap at run time, for activations)."""
    return tf.cast(x >= t, x.dtype)


def nearest_codes(x: tf.Tensor, v: tf.Tensor, bits: int, above: Above = above_float) -> list:
    """[eₖ(x)] (k = 1..K), each ±1 shaped like x: the code of the nearest level vᵀe.

    v has shape (K, G), G broadcasting against x's last axis (G = C per filter, or 1).
    """
    e = codes(bits)
    levels = tf.matmul(e, v)  # (2^K, G)
    order = tf.argsort(levels, axis=0, stable=True)
    ordered = tf.transpose(tf.gather(tf.transpose(levels), tf.transpose(order), batch_dims=1))
    thresholds = (ordered[:-1] + ordered[1:]) / 2.0  # (2^K − 1, G)
    ordered_codes = tf.gather(e, order)  # (2^K, G, K)
    steps = [above(x, thresholds[t]) for t in range(2**bits - 1)]
    bits_out = []
    for k in range(bits):
        c = ordered_codes[..., k]  # (2^K, G)
        bits_out.append(c[0] + tf.add_n([(c[t + 1] - c[t]) * s for t, s in enumerate(steps)]))
    return bits_out


def qem_basis(x: tf.Tensor, v: tf.Tensor, bits: int, axes: list[int], momentum: float, above):
    """m·v + (1 − m)·v*, v* the least-squares basis for x's codes under v (one QEM step)."""
    x = tf.stop_gradient(x)
    v_star = multibasis.least_squares_scales(x, nearest_codes(x, v, bits, above), axes)
    return momentum * v + (1.0 - momentum) * tf.reshape(v_star, v.shape)


class _LearnedBasis:
    """The options both LQ-Net quantizers take: K bits and the QEM momentum m."""

    def __init__(self, bits: int = 2, momentum: float = 0.9, **kwargs):
        if int(bits) < 1:
            raise ConfigError(f"LQ-Net bits must be ≥ 1 (got {bits}).")
        self.bits = self.num_bases = int(bits)
        self.momentum = check_momentum(momentum, "LQ-Net")
        super().__init__(**kwargs)

    def get_config(self):
        return {**super().get_config(), "bits": self.bits, "momentum": self.momentum}


@register_alias("lq_weight")
class LqWeight(_LearnedBasis, WeightBases):
    r"""LQ-Net weight quantizer: the nearest level of a learned K-dim basis, per output filter.

    Bₖ = eₖ(W) (constant ±1 kernels once frozen), αₖ = vₖ (per filter).

    Args:
        bits: K (≥ 1), the weight bases.
        momentum: QEM moving average m of the basis (paper 0.9).
    """

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
        v = tf.where(self.initialised > 0, self.basis, self.initial_basis(w))
        axes = list(range(len(w.shape) - 1))
        new = qem_basis(w, v, self.bits, axes, self.momentum, above_float)
        self.basis.assign(new)
        self.initialised.assign(1.0)
        return new

    def bases(self, w, training=False) -> Bases:
        if not self.built:
            self.build(w.shape)
        if training:
            v = self.qem_step(w)
        else:  # before the first training step: the initial basis, not zeros
            v = tf.where(self.initialised > 0, self.basis, self.initial_basis(w))
        v = tf.stop_gradient(tf.convert_to_tensor(v))
        b = nearest_codes(tf.stop_gradient(w), v, self.bits, above_float)
        share = 1.0 / tf.reduce_sum(tf.abs(v), axis=0)  # ∂Q/∂W = 1, split over the bases
        return [(multibasis.straight_through(w, b[k], share), v[k]) for k in range(self.bits)]


@register_alias("lq_activation")
class LqActivation(_LearnedBasis, ActivationBases):
    r"""LQ-Net activation quantizer: the nearest level of a learned K-dim basis, per layer.

    Hₖ = sign(eₖ(x)), βₖ = vₖ; v learned by QEM over each training batch.

    Args:
        bits: K (≥ 1), the activation bases.
        momentum: m of the basis' moving average over batches.
    """

    def build(self, input_shape):
        unit = 2.0 * GAUSSIAN_QUARTILE / (2.0**self.bits - 1.0)
        self.basis = self.add_weight(
            name="basis",
            shape=(self.bits,),
            initializer=tf.keras.initializers.Constant([unit * 2.0**k for k in range(self.bits)]),
            trainable=False,
        )
        super().build(input_shape)

    def bases(self, x, training=False) -> Bases:
        if not self.built:
            self.build(x.shape)
        v = tf.convert_to_tensor(self.basis)[:, None]  # (K, 1): one basis for every channel
        if training:
            axes = list(range(len(x.shape)))
            v = qem_basis(x, v, self.bits, axes, self.momentum, above_compare)
            self.basis.assign(v[:, 0])
        v = tf.stop_gradient(v)
        b = nearest_codes(tf.stop_gradient(x), v, self.bits, above_compare)
        # sign(·) of the ±1 code: the sign-of-a-float-tensor form LCE lowers to LceQuantize.
        top = tf.reduce_sum(tf.abs(v))  # q_max = −q_min
        inside = tf.cast(tf.abs(tf.stop_gradient(x)) <= top, x.dtype)
        share = inside / top  # ∂Q/∂x = 1[|x| ≤ q_max], split over the bases
        return [
            (multibasis.straight_through(x, lq.math.sign(b[k]), share), v[k, 0])
            for k in range(self.bits)
        ]
