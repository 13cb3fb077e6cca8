"""XNOR-Net and XNOR-Net++ scaling: what larq does not already ship.

- `XnorWeight` (alias `"xnor_weight"`): the XNOR-Net weight binarisation
  with a per-output-filter scale,

      W̃ = α_o · sign(W),   α_o = mean_{kh,kw,cin} |W[..., o]|,

  differentiated exactly as written (α keeps its gradient, as in the XNOR-Net
  paper's eq. for ∂C/∂W): for filter o with n weights,

      ∂C/∂W_j = α_o · 1{|W_j| ≤ clip} · ∂C/∂W̃_j + sign(W_j)/n · Σ_i sign(W_i) ∂C/∂W̃_i.

  larq's `magnitude_aware_sign` has the same forward but stops the gradient
  through α (the Bi-Real choice); use that one for Bi-Real/ReActNet.
  Rastegari et al., "XNOR-Net: ImageNet Classification Using Binary
  Convolutional Neural Networks", ECCV 2016.

- `XnorScale`: XNOR-Net++'s learned output scale Γ, multiplied onto a binary
  conv's output instead of the analytic weight/activation scales:
  `mode="channel"`: Γ ∈ R^C (one scale per output channel);
  `mode="factorised"`: Γ = α ⊗ β ⊗ γ with α ∈ R^C, β ∈ R^H, γ ∈ R^W
  (the paper's rank-1 factorisation over channel × height × width).
  Bulat & Tzimiropoulos, "XNOR-Net++: Improved Binary Neural Networks",
  BMVC 2019.

LCE (docs/lce.md): `XnorWeight` as a *kernel* quantizer freezes to ±1 × a
per-channel constant, which becomes LceBconv2d's output multiplier. A
channel-mode `XnorScale` directly after the binary conv is a constant
per-channel Mul and folds into the same multiplier; the factorised Γ varies
over H and W, so it stays a float elementwise MUL after the binary conv
(cheap, but not free). XNOR-Net's activation scale K (a box-filtered mean of
|input|) is deliberately not provided: it needs a float conv per layer at
inference and XNOR-Net++ showed the learned Γ replaces it.
"""

from __future__ import annotations

import larq as lq
import tensorflow as tf
from larq.quantizers import _BaseQuantizer

from bnn_tf.errors import ConfigError
from bnn_tf.methods._aliases import register_aliases


def xnor_weight(w: tf.Tensor, clip_value: float | None = 1.0) -> tf.Tensor:
    """α_o · ste_sign(W) with α_o = mean |W| per output filter (last axis); α keeps its gradient."""
    axes = list(range(len(w.shape) - 1))
    alpha = tf.reduce_mean(tf.abs(w), axis=axes)
    return alpha * lq.quantizers.ste_sign(w, clip_value=clip_value)


@tf.keras.utils.register_keras_serializable(package="bnn_tf", name="xnor_weight")
class XnorWeight(_BaseQuantizer):
    r"""XNOR-Net weight quantizer: `α_o · sign(W)`, α_o = mean |W| of output filter o.

    Forward `α_o · sign(W)` (sign(0) = +1); backward: straight-through sign
    (zero where |W| > `clip_value`) plus the exact gradient through α_o.
    Use as `kernel_quantizer`; as an input quantizer it would not be a plain
    sign and LCE would not emit a binary kernel.

    Args:
        clip_value: |W| above which the sign's straight-through gradient is zero
            (`None`: never clipped).
    """

    precision = 1
    # α is computed from the real-valued weights: Bop (weights kept at ±1) would freeze it.
    latent_weights = True

    def __init__(self, clip_value: float | None = 1.0, **kwargs):
        self.clip_value = clip_value
        super().__init__(**kwargs)

    def call(self, inputs):
        return super().call(xnor_weight(inputs, clip_value=self.clip_value))

    def get_config(self):
        return {**super().get_config(), "clip_value": self.clip_value}


# "xnor_weight" (the documented name) and "XnorWeight" (what .h5 configs store).
register_aliases(XnorWeight, "xnor_weight")


@tf.keras.utils.register_keras_serializable(package="bnn_tf", name="xnor_weight_scale")
class XnorWeightScale(_BaseQuantizer):
    r"""larq-zoo's XNOR-Net kernel quantizer: `α_o · ste_sign(clip(W, −1, 1))`.

    α_o = mean |clip(W, −1, 1)| over the filter (kernel axes 0, 1, 2), with its
    gradient. Differs from `XnorWeight` only by clipping W
    before α is taken, which larq-zoo's trained weights expect.
    """

    precision = 1
    latent_weights = True  # α from the real-valued weights, as XnorWeight

    def call(self, inputs):
        w = tf.clip_by_value(inputs, -1.0, 1.0)
        alpha = tf.reduce_mean(tf.abs(w), axis=[0, 1, 2], keepdims=True)
        return super().call(alpha * lq.quantizers.ste_sign(w))


@tf.keras.utils.register_keras_serializable(package="bnn_tf")
class XnorScale(tf.keras.layers.Layer):
    r"""XNOR-Net++ learned output scale Γ: `y = x · Γ`.

    Place it directly after a binary conv (before BatchNorm).

    - `mode="channel"`: Γ[c], shape (C,). Folds into LCE's output multiplier.
    - `mode="factorised"`: Γ[h, w, c] = β[h] · γ[w] · α[c]. Needs a static
      spatial size; stays one float MUL per layer after conversion.

    All factors start at `initial_value` (1 by default), so the layer is the
    identity at initialisation.

    Args:
        mode: `"channel"` or `"factorised"`.
        initial_value: starting value of every factor.
    """

    MODES = ("channel", "factorised")

    def __init__(self, mode: str = "channel", initial_value: float = 1.0, **kwargs):
        if mode not in self.MODES:
            raise ConfigError(f"XnorScale mode must be one of {self.MODES} (got {mode!r}).")
        super().__init__(**kwargs)
        self.mode = mode
        self.initial_value = float(initial_value)

    def build(self, input_shape):
        input_shape = tf.TensorShape(input_shape)
        if input_shape.rank != 4:
            raise ConfigError(
                f"XnorScale expects NHWC feature maps (rank 4), got shape {input_shape}. "
                "Fix: place it directly after a Conv2D."
            )
        init = tf.keras.initializers.Constant(self.initial_value)
        channels = int(input_shape[-1])
        self.alpha = self.add_weight(name="alpha", shape=(channels,), initializer=init)
        if self.mode == "factorised":
            height, width = input_shape[1], input_shape[2]
            if height is None or width is None:
                raise ConfigError(
                    "XnorScale(mode='factorised') needs a static height and width. "
                    "Fix: give the model a fixed input_shape, or use mode='channel'."
                )
            self.beta = self.add_weight(name="beta", shape=(int(height), 1, 1), initializer=init)
            self.gamma = self.add_weight(name="gamma", shape=(1, int(width), 1), initializer=init)
        super().build(input_shape)

    def scale(self) -> tf.Tensor:
        """Γ, broadcastable to the (H, W, C) feature map."""
        if self.mode == "channel":
            return self.alpha
        return self.beta * self.gamma * self.alpha

    def call(self, inputs):
        if self.mode == "channel":
            return inputs * self.alpha
        scaled = inputs * self.alpha  # per channel: folds into LCE's output multiplier
        spatial = tf.reshape(
            self.beta * self.gamma, (1, self.beta.shape[0], self.gamma.shape[1], 1)
        )
        # y·S written as y + y·(S − 1): `y` gets two consumers, which stops LCE 0.16 from
        # folding the (H, W) map into the binary conv's per-channel multiplier (it does not
        # check the shape and writes an invalid model, see docs/methods_zoo.md).
        return scaled + scaled * (spatial - 1.0)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode, "initial_value": self.initial_value}
