"""ABC-Net: M shifted-mean weight bases and N shifted-sign activation bases.

Lin, Zhao, Pan, "Towards Accurate Binary Convolutional Neural Network",
NeurIPS 2017.

Weights (`AbcWeight`, alias `"abc_weight"`): with W̄ = W − mean(W) and
std(W) over the layer (paper) or over each output filter (`scale="channel"`),

    Bᵢ = sign(W̄ + uᵢ · std(W)),   uᵢ = −1 + 2(i − 1)/(M − 1)   (i = 1..M; u₁ = 0 if M = 1)
    α = argmin_α ‖W − Σᵢ αᵢ Bᵢ‖²  = (BᵀB)⁻¹ Bᵀ vec(W)   (least squares, no gradient)

and ∂C/∂W = Σᵢ αᵢ ∂C/∂Bᵢ (straight-through: each Bᵢ passes its gradient to W unchanged).

Activations (`AbcActivation`, alias `"abc_activation"`): N bases with learnable
shifts vⱼ and scales βⱼ,

    Hⱼ(x) = 2 · 1[h_vⱼ(x) ≥ 0.5] − 1 = sign(x + vⱼ − 0.5),   h_v(x) = clip(x + v, 0, 1)
    A ≈ Σⱼ βⱼ Hⱼ(x)

Backward: the rounding's straight-through estimator through the clip,
∂Hⱼ/∂x = ∂Hⱼ/∂vⱼ = 2 · 1[0 ≤ x + vⱼ ≤ 1]; βⱼ gets the exact gradient.
Initialisation (not given in the paper): thresholds 0.5 − vⱼ evenly spread
at (2j − N + 1)/N for j = 0..N−1 (N = 1: a plain sign at 0) and βⱼ = 1/N.

In `MultiBasisConv2D` a layer becomes M·N `LceBconv2d` (docs/multibit.md).
"""

from __future__ import annotations

import larq as lq
import tensorflow as tf

from bnn_tf.errors import ConfigError
from bnn_tf.methods.multibasis import (
    ActivationBases,
    Bases,
    WeightBases,
    least_squares_scales,
    register_alias,
    straight_through,
)

SCALES = ("layer", "channel")


def _check(num_bases: int, scale: str | None = None) -> None:
    if int(num_bases) < 1:
        raise ConfigError(f"num_bases must be ≥ 1 (got {num_bases}).")
    if scale is not None and scale not in SCALES:
        raise ConfigError(f"scale must be one of {SCALES} (got {scale!r}).")


def reduce_axes(w: tf.Tensor, scale: str) -> list[int]:
    """Axes a statistic reduces over: all (one per layer) or all but the output axis."""
    rank = len(w.shape)
    return list(range(rank)) if scale == "layer" else list(range(rank - 1))


def abc_shifts(num_bases: int) -> list[float]:
    """uᵢ = −1 + 2(i − 1)/(M − 1), i = 1..M (0 for M = 1)."""
    if num_bases == 1:
        return [0.0]
    return [-1.0 + 2.0 * i / (num_bases - 1) for i in range(num_bases)]


def abc_weight_bases(w: tf.Tensor, num_bases: int, scale: str = "layer") -> Bases:
    """[(Bᵢ, αᵢ)]: ABC-Net's shifted-mean bases with least-squares scales."""
    axes = reduce_axes(w, scale)
    centred = w - tf.reduce_mean(w, axis=axes, keepdims=True)
    std = tf.math.reduce_std(w, axis=axes, keepdims=True)
    # Straight through to W itself: the mean and std shift the thresholds, not the gradient.
    bases = [straight_through(w, lq.math.sign(centred + u * std)) for u in abc_shifts(num_bases)]
    alphas = least_squares_scales(w, bases, axes)
    return list(zip(bases, tf.unstack(alphas), strict=True))


@register_alias("abc_weight")
class AbcWeight(WeightBases):
    r"""ABC-Net weight bases: `Bᵢ = sign(W̄ + uᵢ·std W)`, α by least squares.

    Args:
        num_bases: M.
        scale: `"layer"` (the paper: one mean/std and one αᵢ per layer) or
            `"channel"` (per output filter; LCE folds either into its multiplier).
    """

    def __init__(self, num_bases: int = 3, scale: str = "layer", **kwargs):
        _check(num_bases, scale)
        self.num_bases = int(num_bases)
        self.scale = scale
        super().__init__(**kwargs)

    def bases(self, w, training=False):
        return abc_weight_bases(w, self.num_bases, self.scale)

    def get_config(self):
        return {**super().get_config(), "num_bases": self.num_bases, "scale": self.scale}


@tf.custom_gradient
def abc_sign(z: tf.Tensor) -> tf.Tensor:
    """sign(z) forward (z = x + v − 0.5); backward 2·1[|z| ≤ 0.5] (clip-window STE)."""

    def grad(dy):
        return dy * 2.0 * tf.cast(tf.abs(z) <= 0.5, dy.dtype)

    return lq.math.sign(z), grad


def abc_thresholds(num_bases: int) -> list[float]:
    """Initial thresholds 0.5 − vⱼ = (2j − N + 1)/N, j = 0..N−1."""
    return [(2 * j - num_bases + 1) / num_bases for j in range(num_bases)]


@register_alias("abc_activation")
class AbcActivation(ActivationBases):
    r"""ABC-Net activation bases `Hⱼ = sign(x + vⱼ − 0.5)`, learnable shifts vⱼ and scales βⱼ.

    Args:
        num_bases: N.
    """

    def __init__(self, num_bases: int = 3, **kwargs):
        _check(num_bases)
        self.num_bases = int(num_bases)
        super().__init__(**kwargs)

    def build(self, input_shape):
        n = self.num_bases
        shifts = [0.5 - t for t in abc_thresholds(n)]
        self.shift = self.add_weight(
            name="shift", shape=(n,), initializer=tf.keras.initializers.Constant(shifts)
        )
        self.beta = self.add_weight(
            name="beta", shape=(n,), initializer=tf.keras.initializers.Constant(1.0 / n)
        )
        super().build(input_shape)

    def bases(self, x, training=False):
        return [(abc_sign(x + self.shift[j] - 0.5), self.beta[j]) for j in range(self.num_bases)]

    def get_config(self):
        return {**super().get_config(), "num_bases": self.num_bases}
