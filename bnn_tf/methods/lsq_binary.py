"""Least-squares binary quantization: 1-bit, 2-bit (two bases) and tree, with optimal scales.

Pouransari, Tu, Tuzel, "Least Squares Binary Quantization of Neural
Networks", CVPR Workshops 2020.

`LsqWeight(mode)` (alias `"lsq_weight"`), per output filter (`scale="channel"`,
default) or per layer, for x the values of the group:

- `"1bit"`: x̂ = v·sign(x), v* = mean|x| (the least-squares optimum).
- `"2bit"` (ls-2): x̂ = v₁ b₁ + v₂ b₂, b₁ = sign(x), b₂ = sign(x − v₁ b₁).
  The four levels are ±(v₁ + v₂) where |x| > v₁ and ±(v₁ − v₂) where |x| ≤ v₁,
  so the optimum is the best split of |x| into two clusters:

      v₁ + v₂ = mean(|x| : |x| > v₁),   v₁ − v₂ = mean(|x| : |x| ≤ v₁),

  found exactly by scanning every split of the sorted |x| (cumulative sums;
  the optimal 1-D two-means partition is contiguous and satisfies the
  midpoint condition v₁ = (m_hi + m_lo)/2).
- `"tree"`: the second bit's scale depends on the first bit's branch,
  x̂ = v₁ b₁ + v₂(b₁) b₂ with v₂(+1) ≠ v₂(−1): four free levels
  {v₁ ± v₂⁺, −v₁ ± v₂⁻}. With [b₁ = ±1] = (1 ± b₁)/2 this is a sum of three
  ±1 bases, x̂ = c₁ b₁ + c₂ b₂ + c₃ b₁b₂ (c₂ = (v₂⁺ + v₂⁻)/2, c₃ = (v₂⁺ − v₂⁻)/2),
  so it still runs as binary convs (three per activation basis). Here b₁, b₂
  and v₁ come from the ls-2 split and each branch's v₂ is then optimal in
  closed form, v₂± = mean_{branch}(b₁b₂ · (|x| − v₁)) (our reading of the
  paper's tree scheme; whether it also re-optimises v₁ jointly could not be
  re-read: *unverified*).

Gradients: every basis passes its gradient straight through to x (identity
STE), so ∂C/∂x = (Σ scales of the bases) · ∂C/∂x̂; the scales carry none.

`LsqActivation(mode)` (alias `"lsq_activation"`) applies the same three
quantizers to activations, with one set of scales per layer (a scale per
input channel could not leave the convolution). The paper computes the
activation scales on the fly, per input; at inference that is a sort and
cumulative sums of every activation tensor, and the scales would not be
constants LCE can fold into `LceBconv2d`'s multiplier. So, as BatchNorm
does with its statistics: in training the scales (and the threshold v₁)
are those of the batch, computed exactly as above over all its values, and a
moving average of them, s ← m·s + (1 − m)·s_batch, is what inference uses
(our choice, not the paper's). The moving scales start at the optimum for a
unit Gaussian (what BatchNorm feeds): v = √(2/π) (1-bit); v₁ = 0.9816,
v₂ = 0.5288 (2-bit and tree, Lloyd–Max levels ±0.4528, ±1.5104; c₃ = 0).
The tree's third basis b₁b₂ is written sign(b₁b₂) (the same ±1 values), the
sign-of-a-float-tensor form LCE lowers to `LceQuantize`.
"""

from __future__ import annotations

import math

import larq as lq
import tensorflow as tf

from bnn_tf.errors import ConfigError, check_momentum
from bnn_tf.methods.abc_net import SCALES, reduce_axes
from bnn_tf.methods.multibasis import (
    ActivationBases,
    Bases,
    WeightBases,
    register_alias,
    straight_through,
)

MODES = {"1bit": 1, "2bit": 2, "tree": 3}


def _groups(x: tf.Tensor, axes: list[int]) -> tuple[tf.Tensor, list[int]]:
    """|x| as (n, G) with the reduced axes first, and the group shape."""
    keep = [a for a in range(len(x.shape)) if a not in axes]
    t = tf.transpose(tf.abs(x), axes + keep)
    group_shape = [int(x.shape[a]) for a in keep]
    return tf.reshape(t, (-1, math.prod(group_shape))), group_shape


def ls2_scales(x: tf.Tensor, axes: list[int]) -> tuple[tf.Tensor, tf.Tensor]:
    """(v₁, v₂) of the optimal 2-bit ls-2 quantizer per group (exact: all splits scanned)."""
    a, group_shape = _groups(x, axes)
    if a.shape[0] is not None and a.shape[0] < 2:
        raise ConfigError("2-bit least-squares quantization needs at least 2 values per group.")
    size = tf.shape(a)[0]  # unknown while tracing an activation batch
    # float64: near the optimum neighbouring splits explain almost the same ‖x̂‖², closer
    # than float32 cumulative sums resolve, so eager Keras and the converter's folding picked
    # different splits (v₁ off by 5e-4, 1.6 % of lsq_binary_small tree's predictions changed).
    a = tf.cast(a, tf.float64)
    n = tf.cast(size, tf.float64)
    a = tf.sort(a, axis=0)
    cs = tf.cumsum(a, axis=0)
    total = cs[-1]
    k = tf.cast(tf.range(1, size), tf.float64)[:, None]  # size of the low cluster
    lo = cs[:-1] / k
    hi = (total - cs[:-1]) / (n - k)
    # ‖x̂‖² explained by the split; the residual error is Σx² minus it.
    explained = k * lo**2 + (n - k) * hi**2
    best = tf.argmax(explained, axis=0)  # (G,): the low cluster holds best + 1 values
    # Gather per column (not one_hot × sum): LCE's converter stopped constant-folding the
    # (n − 1, G) one-hot of the largest layer (measured: a float CONV_2D and ONE_HOT/SUM ops
    # left in the .tflite, 4.8 MB), which a per-column gather does not build.
    low_sum = tf.gather(tf.transpose(cs[:-1]), best[:, None], batch_dims=1)[:, 0]
    count = tf.cast(best, tf.float64) + 1.0
    m_lo = low_sum / count
    m_hi = (total - low_sum) / (n - count)
    v1 = tf.cast(tf.reshape((m_hi + m_lo) / 2.0, group_shape), x.dtype)
    v2 = tf.cast(tf.reshape((m_hi - m_lo) / 2.0, group_shape), x.dtype)
    return tf.stop_gradient(v1), tf.stop_gradient(v2)


def lsq_signs(x: tf.Tensor, v1: tf.Tensor, mode: str) -> list[tf.Tensor]:
    """The ±1 bases given the threshold v₁: [b₁] / [b₁, b₂] / [b₁, b₂, sign(b₁b₂)]."""
    b1 = lq.math.sign(x)
    if mode == "1bit":
        return [b1]
    b2 = lq.math.sign(x - v1 * b1)
    return [b1, b2] if mode == "2bit" else [b1, b2, lq.math.sign(b1 * b2)]


def lsq_scales(x: tf.Tensor, mode: str, axes: list[int]) -> list[tf.Tensor]:
    """The least-squares scales per group: [v] (1bit), [v₁, v₂] (2bit), [v₁, c₂, c₃] (tree)."""
    if mode == "1bit":
        return [tf.stop_gradient(tf.reduce_mean(tf.abs(x), axis=axes))]
    v1, v2 = ls2_scales(x, axes)
    if mode == "2bit":
        return [v1, v2]
    # Tree: the second bit's scale per branch of the first, optimal given v₁.
    b1, _, level = lsq_signs(x, v1, mode)
    v2p = _branch_scale(x, (1.0 + b1) / 2.0, level, v1, axes)
    v2n = _branch_scale(x, (1.0 - b1) / 2.0, level, v1, axes)
    return [v1, (v2p + v2n) / 2.0, (v2p - v2n) / 2.0]


def _branch_scale(x, mask, level, v1, axes) -> tf.Tensor:
    """argmin_v Σ_branch (|x| − v₁ − v·level)²  = Σ level·(|x| − v₁) / |branch| (level = ±1).

    `mask` is the branch as a float 0/1 tensor computed from float signs, not a cast of a
    boolean: MLIR's constant folder skips an op whose result is over 1 MiB and more than
    twice its operands, so a kernel-sized bool→float cast stayed a run-time op on large
    layers (3×3×128→256: the float kernel and CAST/SUM/DIV ops left in a 3.1 MB .tflite).
    """
    num = tf.reduce_sum(mask * level * (tf.abs(x) - v1), axis=axes)
    count = tf.reduce_sum(mask, axis=axes)
    return tf.stop_gradient(tf.math.divide_no_nan(num, count))


def lsq_bases(x: tf.Tensor, scales: list[tf.Tensor], mode: str) -> Bases:
    """[(basis, scale)]: each basis straight through to x, its threshold v₁ = scales[0]."""
    signs = lsq_signs(tf.stop_gradient(x), scales[0], mode)
    return [(straight_through(x, b), s) for b, s in zip(signs, scales, strict=True)]


def lsq_weight_bases(w: tf.Tensor, mode: str = "2bit", scale: str = "channel") -> Bases:
    """[(basis, scale)] of least-squares binary quantization of `w`."""
    return lsq_bases(w, lsq_scales(w, mode, reduce_axes(w, scale)), mode)


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ConfigError(f"least-squares mode must be one of {sorted(MODES)} (got {mode!r}).")


@register_alias("lsq_weight")
class LsqWeight(WeightBases):
    r"""Least-squares binary weight quantizer: `"1bit"`, `"2bit"` (ls-2) or `"tree"`.

    Args:
        mode: `"1bit"` (1 basis), `"2bit"` (2 bases), `"tree"` (3 bases, 4 free levels).
        scale: `"channel"` (one set of scales per output filter) or `"layer"`.
    """

    def __init__(self, mode: str = "2bit", scale: str = "channel", **kwargs):
        _check_mode(mode)
        if scale not in SCALES:
            raise ConfigError(f"scale must be one of {SCALES} (got {scale!r}).")
        self.mode = mode
        self.scale = scale
        self.num_bases = MODES[mode]
        super().__init__(**kwargs)

    def bases(self, w, training=False):
        return lsq_weight_bases(w, self.mode, self.scale)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode, "scale": self.scale}


# The least-squares scales of a unit Gaussian: mean|x| = √(2/π); ls-2 = the Lloyd–Max
# levels ±0.4528, ±1.5104 (v₁ is their mid-point, v₂ half their gap); the tree's c₃ = 0.
GAUSSIAN_SCALES = {"1bit": [0.7978846], "2bit": [0.9816, 0.5288], "tree": [0.9816, 0.5288, 0.0]}


@register_alias("lsq_activation")
class LsqActivation(ActivationBases):
    r"""Least-squares binary activation quantizer, per layer: `"1bit"`, `"2bit"` or `"tree"`.

    Training: the batch's least-squares scales; inference: their moving average
    (s ← m·s + (1 − m)·s_batch, as BatchNorm), so LCE sees constant scales.

    Args:
        mode: `"1bit"` (1 basis), `"2bit"` (2 bases), `"tree"` (3 bases, 4 free levels).
        momentum: m of the moving scales.
    """

    def __init__(self, mode: str = "2bit", momentum: float = 0.9, **kwargs):
        _check_mode(mode)
        self.mode = mode
        self.momentum = check_momentum(momentum, "LsqActivation")
        self.num_bases = MODES[mode]
        super().__init__(**kwargs)

    def build(self, input_shape):
        self.moving_scales = self.add_weight(
            name="moving_scales",
            shape=(self.num_bases,),
            initializer=tf.keras.initializers.Constant(GAUSSIAN_SCALES[self.mode]),
            trainable=False,
        )
        super().build(input_shape)

    def bases(self, x, training=False) -> Bases:
        if not self.built:
            self.build(x.shape)
        if training:
            scales = lsq_scales(tf.stop_gradient(x), self.mode, list(range(len(x.shape))))
            m = self.momentum
            self.moving_scales.assign(m * self.moving_scales + (1.0 - m) * tf.stack(scales))
        else:
            scales = tf.unstack(tf.convert_to_tensor(self.moving_scales))
        return lsq_bases(x, scales, self.mode)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode, "momentum": self.momentum}
