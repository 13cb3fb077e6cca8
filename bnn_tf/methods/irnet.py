"""IR-Net: Libra-PB weight binarisation and the EDE gradient with its schedule.

Qin et al., "Forward and Backward Information Retention for Accurate Binary
Neural Networks", CVPR 2020.

- EDE (Error Decay Estimator): forward `sign(x)` (sign(0) = +1); backward

      ∂sign/∂x ≈ k · t · (1 − tanh²(t · x)),

  with `t` raised log-linearly once per epoch e ∈ [0, E) from t_min to t_max,
  `t = t_min · 10^(e/E · log10(t_max / t_min))`, and `k = max(1/t, 1)`
  (paper: t_min = 0.1, t_max = 10). Early on the gradient is a wide, flat
  identity-like estimator; late it approaches the true sign's derivative.
  `EdeSchedule` (a Keras callback) sets t and k on every EDE quantizer of the
  model at the start of each epoch.
- Libra-PB weights, per output channel o (Keras kernels: reduce over
  kh, kw, cin):

      ŵ = (w − mean_o(w)) / std_o(w)         (unbiased std, as the reference code)
      Q(w) = sign(ŵ) · 2^round(log2(mean_o |ŵ|))

  Standardising maximises the entropy of the binary weights (balanced ±1);
  the power-of-two scale is a shift in hardware. The scale takes no gradient
  (it is piecewise constant); the sign takes the EDE gradient.

LCE: `EdeSign` as input quantizer is a plain sign forward, so the conv lowers
to `LceBconv2d`; `LibraPBWeight` folds to ±1 × a per-channel constant after
freezing (the output multiplier).
"""

from __future__ import annotations

import math

import larq as lq
import tensorflow as tf
from larq.quantizers import _BaseQuantizer

from bnn_tf import introspect
from bnn_tf.errors import ConfigError
from bnn_tf.methods._aliases import register_aliases
from bnn_tf.methods._schedule import EpochSchedule

T_MIN = 0.1
T_MAX = 10.0


def ede_sign(x: tf.Tensor, t: tf.Tensor | float, k: tf.Tensor | float) -> tf.Tensor:
    """sign(x) forward; `dy · k · t · (1 − tanh²(t x))` backward (no gradient to t, k)."""

    @tf.custom_gradient
    def _call(x):
        def grad(dy):
            tt = tf.cast(t, x.dtype)
            kk = tf.cast(k, x.dtype)
            return dy * kk * tt * (1.0 - tf.square(tf.tanh(tt * x)))

        return lq.math.sign(x), grad

    return _call(x)


def ede_parameters(
    epoch: float, epochs: int, t_min: float = T_MIN, t_max: float = T_MAX
) -> tuple[float, float]:
    """(t, k) of IR-Net's EDE for `epoch` (0-based) of `epochs`."""
    if epochs < 1:
        raise ConfigError(f"epochs must be ≥ 1 (got {epochs}).")
    if not 0 < t_min <= t_max:
        raise ConfigError(f"EDE needs 0 < t_min ≤ t_max (got t_min={t_min}, t_max={t_max}).")
    t = t_min * 10 ** (epoch / epochs * math.log10(t_max / t_min))
    return t, max(1.0 / t, 1.0)


class _EdeQuantizer(_BaseQuantizer):
    """Holds the EDE parameters t and k as non-trainable variables (set by `EdeSchedule`)."""

    precision = 1

    def __init__(self, t: float = T_MIN, k: float | None = None, **kwargs):
        super().__init__(**kwargs)
        k = max(1.0 / t, 1.0) if k is None else k
        # Plain variables (not layer weights): schedule state, not model state, so they are
        # neither saved in checkpoints nor touched by optimizers; the callback resets them.
        self.ede_t = tf.Variable(float(t), trainable=False, name="ede_t", dtype=tf.float32)
        self.ede_k = tf.Variable(float(k), trainable=False, name="ede_k", dtype=tf.float32)

    def set_ede(self, t: float, k: float) -> None:
        self.ede_t.assign(t)
        self.ede_k.assign(k)

    def get_config(self):
        return {
            **super().get_config(),
            "t": float(self.ede_t.numpy()),
            "k": float(self.ede_k.numpy()),
        }


@tf.keras.utils.register_keras_serializable(package="bnn_tf", name="ede_sign")
class EdeSign(_EdeQuantizer):
    r"""IR-Net activation quantizer: `sign(x)`, EDE gradient `k·t·(1 − tanh²(t x))`.

    Args:
        t, k: initial EDE parameters (`EdeSchedule` overwrites them each epoch).
    """

    def call(self, inputs):
        return super().call(ede_sign(inputs, self.ede_t, self.ede_k))


def libra_pb(w: tf.Tensor, t: tf.Tensor | float = 1.0, k: tf.Tensor | float = 1.0) -> tf.Tensor:
    """IR-Net Libra-PB: `sign(ŵ) · 2^round(log2 mean|ŵ|)`, ŵ standardised per output channel.

    Computed in float32 whatever `w`'s dtype: a bfloat16 mean/std would move the sign of
    weights near the channel mean. The result, ±2^n, is exact in bfloat16.
    """
    dtype = w.dtype
    w = tf.cast(w, tf.float32)
    axes = list(range(len(w.shape) - 1))
    n = tf.cast(tf.reduce_prod(tf.shape(w)[:-1]), w.dtype)
    centred = w - tf.reduce_mean(w, axis=axes, keepdims=True)
    # Unbiased (N − 1) std, as torch.std in the reference code; eps guards constant filters.
    std = tf.sqrt(tf.reduce_sum(tf.square(centred), axis=axes, keepdims=True) / (n - 1.0) + 1e-12)
    standardised = centred / std
    mean_abs = tf.reduce_mean(tf.abs(standardised), axis=axes)
    scale = tf.stop_gradient(tf.pow(2.0, tf.round(tf.math.log(mean_abs) / math.log(2.0))))
    return tf.cast(ede_sign(standardised, t, k) * scale, dtype)


@tf.keras.utils.register_keras_serializable(package="bnn_tf", name="libra_pb_weight")
class LibraPBWeight(_EdeQuantizer):
    r"""IR-Net weight quantizer (Libra-PB + EDE gradient); use as `kernel_quantizer`.

    Args:
        t, k: initial EDE parameters (`EdeSchedule` overwrites them each epoch).
    """

    # Standardisation and scale act on the real-valued weights: constant under Bop.
    latent_weights = True

    def call(self, inputs):
        return super().call(libra_pb(inputs, self.ede_t, self.ede_k))


# The documented string names, and the class names .h5 configs store.
register_aliases(EdeSign, "ede_sign")
register_aliases(LibraPBWeight, "libra_pb_weight")


def ede_quantizers(model: tf.keras.Model) -> list[_EdeQuantizer]:
    """Every EDE quantizer used by `model` (as a layer, input or kernel quantizer; nested too)."""
    return introspect.find(model, _EdeQuantizer)


@tf.keras.utils.register_keras_serializable(package="bnn_tf")
class EdeSchedule(EpochSchedule):
    """Set IR-Net's EDE (t, k) on every EDE quantizer at the start of each epoch.

    Args:
        epochs: total epochs E of the run (t reaches t_max·(t_min/t_max)^(1/E) in the last epoch).
        t_min, t_max: the schedule's range (paper: 0.1 and 10).
    """

    def __init__(self, epochs: int, *, t_min: float = T_MIN, t_max: float = T_MAX):
        super().__init__()
        ede_parameters(0, epochs, t_min, t_max)  # validate now, not mid-training
        self.epochs = epochs
        self.t_min = t_min
        self.t_max = t_max
        self.history: list[tuple[float, float]] = []

    def on_train_begin(self, logs=None):
        if not ede_quantizers(self.model):
            raise ConfigError(
                "EdeSchedule found no EDE quantizer (EdeSign / LibraPBWeight) in the model. "
                "Fix: drop the callback, or build the model with IR-Net quantizers."
            )

    def on_epoch_begin(self, epoch, logs=None):
        t, k = ede_parameters(self.scheduled_epoch(epoch), self.epochs, self.t_min, self.t_max)
        for q in ede_quantizers(self.model):
            q.set_ede(t, k)
        self.history.append((t, k))

    def get_config(self):
        return {"epochs": self.epochs, "t_min": self.t_min, "t_max": self.t_max}

    @staticmethod
    def scheduled_variables(model: tf.keras.Model) -> list[tf.Variable]:
        """The t and k variables this schedule sets."""
        return [v for q in ede_quantizers(model) for v in (q.ede_t, q.ede_k)]


# EDE's t must rise from t_min to t_max during training; without the schedule the
# gradient keeps its initial (almost flat) shape. Training collects this declaration
# from the model (bnn_tf.introspect.declared_schedules), so every run applies it.
_EdeQuantizer.declared_schedules = (EdeSchedule,)
