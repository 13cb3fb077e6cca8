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
STE); the scales carry none.
"""

from __future__ import annotations

import math

import larq as lq
import tensorflow as tf

from bnn_tf.errors import ConfigError
from bnn_tf.methods.abc_net import SCALES, reduce_axes
from bnn_tf.methods.multibasis import (
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
    n = a.shape[0]
    if n < 2:
        raise ConfigError("2-bit least-squares quantization needs at least 2 values per group.")
    a = tf.sort(a, axis=0)
    cs = tf.cumsum(a, axis=0)
    total = cs[-1]
    k = tf.range(1, n, dtype=x.dtype)[:, None]  # size of the low cluster
    lo = cs[:-1] / k
    hi = (total - cs[:-1]) / (n - k)
    # ‖x̂‖² explained by the split; the residual error is Σx² minus it.
    explained = k * lo**2 + (n - k) * hi**2
    best = tf.argmax(explained, axis=0)  # (G,): the low cluster holds best + 1 values
    # Gather per column (not one_hot × sum): LCE's converter stopped constant-folding the
    # (n − 1, G) one-hot of the largest layer (measured: a float CONV_2D and ONE_HOT/SUM ops
    # left in the .tflite, 4.8 MB), which a per-column gather does not build.
    low_sum = tf.gather(tf.transpose(cs[:-1]), best[:, None], batch_dims=1)[:, 0]
    count = tf.cast(best, x.dtype) + 1.0
    m_lo = low_sum / count
    m_hi = (total - low_sum) / (n - count)
    v1 = tf.reshape((m_hi + m_lo) / 2.0, group_shape)
    v2 = tf.reshape((m_hi - m_lo) / 2.0, group_shape)
    return tf.stop_gradient(v1), tf.stop_gradient(v2)


def lsq_weight_bases(w: tf.Tensor, mode: str = "2bit", scale: str = "channel") -> Bases:
    """[(basis, scale)] of least-squares binary quantization of `w`."""
    axes = reduce_axes(w, scale)
    b1 = straight_through(w, lq.math.sign(w))
    if mode == "1bit":
        return [(b1, tf.stop_gradient(tf.reduce_mean(tf.abs(w), axis=axes)))]
    v1, v2 = ls2_scales(w, axes)
    sign1 = lq.math.sign(w)
    sign2 = lq.math.sign(w - v1 * sign1)
    b2 = straight_through(w, sign2)
    if mode == "2bit":
        return [(b1, v1), (b2, v2)]
    # Tree: the second bit's scale per branch of the first, optimal given v₁. Known gap:
    # on large layers (measured: 3×3×128→256) LCE's converter does not constant-fold these
    # masked sums; the bases still become LceBconv2d, but the .tflite keeps the float
    # kernel and computes the two scales at run time (docs/multibit.md).
    b3 = straight_through(w, sign1 * sign2)
    v2p = _branch_scale(w, sign1 > 0, sign1 * sign2, v1, axes)
    v2n = _branch_scale(w, sign1 < 0, sign1 * sign2, v1, axes)
    return [(b1, v1), (b2, (v2p + v2n) / 2.0), (b3, (v2p - v2n) / 2.0)]


def _branch_scale(w, branch, level, v1, axes) -> tf.Tensor:
    """argmin_v Σ_branch (|x| − v₁ − v·level)²  = Σ level·(|x| − v₁) / |branch| (level = ±1)."""
    mask = tf.cast(branch, w.dtype)
    num = tf.reduce_sum(mask * level * (tf.abs(w) - v1), axis=axes)
    count = tf.reduce_sum(mask, axis=axes)
    return tf.stop_gradient(tf.math.divide_no_nan(num, count))


@register_alias("lsq_weight")
class LsqWeight(WeightBases):
    r"""Least-squares binary weight quantizer: `"1bit"`, `"2bit"` (ls-2) or `"tree"`.

    Args:
        mode: `"1bit"` (1 basis), `"2bit"` (2 bases), `"tree"` (3 bases, 4 free levels).
        scale: `"channel"` (one set of scales per output filter) or `"layer"`.
    """

    def __init__(self, mode: str = "2bit", scale: str = "channel", **kwargs):
        if mode not in MODES:
            raise ConfigError(f"LsqWeight mode must be one of {sorted(MODES)} (got {mode!r}).")
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
