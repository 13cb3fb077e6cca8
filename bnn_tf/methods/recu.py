"""ReCU: the rectified clamp unit for binary weights (Xu et al., ICCV 2021).

Paper: Z. Xu, M. Lin, J. Liu, J. Chen, L. Shao, Y. Gao, Y. Tian, R. Ji,
"ReCU: Reviving the Dead Weights in Binary Neural Networks", ICCV 2021.
The exact recipe restated for Keras is in docs/methods.md (section ReCU);
docs/recu.md explains how to use these pieces.

Weights (`ReCUWeightQuantizer`), per output channel `o` of a kernel whose
last axis is the output axis (HWIO for convolutions, IO for dense layers):

$$
w_0 = w - \\operatorname{mean}_o(w), \\qquad
w_1 = \\frac{w_0}{\\sqrt{\\operatorname{var}^{\\text{unbiased}}_o(w_0) + 10^{-5}} \\,/\\, (\\sqrt{2}\\, b^*)}
$$

so each channel has standard deviation √2·b* (a Laplace distribution of
scale b*, default b* = 2). One clamp threshold per layer from the Laplace
maximum-likelihood scale `b = mean(|w_1|)` over the whole kernel:

$$
Q(\\tau) = -b \\ln(2 - 2\\tau), \\qquad w_2 = \\operatorname{clip}(w_1, -Q, Q),
\\qquad w_b = \\operatorname{sign}(w_2)
$$

`Q` carries no gradient (stop-gradient); the clip only zeroes the gradient
of weights outside ±Q ("dead" weights are pulled back, the stored latent
weight is never modified), and the sign passes its gradient through
unchanged (identity straight-through estimator). τ = 1 means Q = ∞: no clamp.

Activations (`ReCUActivationQuantizer`): forward `sign(a)` (+1 at 0, as
LCE computes it); during training the backward pass is Bi-Real's ApproxSign
`max(0, 2 − 2|a_0|)` evaluated on the per-sample normalised input
`a_0 = a / sqrt(var^unbiased(a) + 1e-5)` (variance over H, W, C, no mean
subtraction), with the gradient also flowing through that normalisation, as
in the reference implementation. At inference `a_0 = a`; the forward value
is the same in both modes, since dividing by a positive number keeps signs.

`ReCUConv2D` combines both with a learnable per-output-channel scale α
applied right after the convolution (before bias/activation). After
freezing, the kernel path is constant, so LCE folds it into ±1 weights and
α (and a following BatchNorm) into `LceBconv2d`'s output multiplier.

τ lives in a non-trainable variable `tau` of each weight quantizer (initial
value 1: no clamp); `TauScheduler` sets it at the start of every epoch from

$$
\\tau(e) = A\\, e^{e/E} + B, \\quad A = \\frac{\\tau_{max} - \\tau_{min}}{\\mathrm{e} - 1},
\\quad B = \\tau_{min} - A
$$

with `e` the 0-based epoch and `E` the number of epochs (0.85 → 0.99).

## Bop and ReCU's clamp

ReCU acts on *latent* real-valued weights: it standardises them and stops
the gradient of those beyond ±Q so they can drift back and flip again.
Bop (`bnn_tf.optimizers.bop_adam`) has no latent weights: it keeps ±1
weights and flips one when the moving average of its gradient is large
enough. The ReCU weight quantizer reports `precision = 1`, so
`Bop.is_binary_variable` claims ReCU kernels and the default training
pipeline (`training.compile_model`) trains them with Bop. Then the stored
kernel becomes ±1 after the first step; standardising a ±1 channel keeps
every sign (`sign(w − mean) = sign(w)` while the channel is not all one
sign), so the forward pass is exactly a sign conv with a per-channel scale,
and the clamp only masks the gradients of the minority-sign weights of
strongly unbalanced channels (those are the only values beyond Q).
The ReCU gradient then feeds Bop's moving average through the
standardisation Jacobian. `recu_optimizer(kernels="adam")` instead trains
ReCU kernels as latent weights with Adam (the paper's setting, with Adam in
place of its SGD). docs/recu.md reports both on Fashion-MNIST.
"""

from __future__ import annotations

import logging
import math

import larq as lq
import numpy as np
import tensorflow as tf

from bnn_tf import introspect
from bnn_tf.errors import ConfigError
from bnn_tf.methods._aliases import register_aliases
from bnn_tf.methods._schedule import EpochSchedule

DEFAULT_B_STAR = 2.0
EPS = 1e-5
TAU_MIN = 0.85
TAU_MAX = 0.99


def _sign(x: tf.Tensor) -> tf.Tensor:
    # sign(sign(x) + 0.1): +1 at 0 (LCE's convention), and the pattern LCE's
    # converter lowers to LceQuantize (a select on ones_like/fill does not).
    return lq.math.sign(x)


@tf.custom_gradient
def sign_identity(x: tf.Tensor) -> tf.Tensor:
    """`sign(x)` (+1 at 0) with an identity straight-through gradient."""

    def grad(dy):
        return dy

    return _sign(x), grad


@tf.custom_gradient
def approx_sign(x: tf.Tensor) -> tf.Tensor:
    """`sign(x)` with Bi-Real's ApproxSign gradient `max(0, 2 − 2|x|)`."""

    def grad(dy):
        return dy * tf.nn.relu(2.0 - 2.0 * tf.abs(x))

    return _sign(x), grad


def _unbiased_variance(x: tf.Tensor, axis, n: int) -> tf.Tensor:
    # tf.math.reduce_variance divides by n; the reference (PyTorch) uses n - 1.
    correction = n / max(n - 1, 1)
    return tf.math.reduce_variance(x, axis=axis, keepdims=True) * correction


def clamp_threshold(w1: tf.Tensor, tau: tf.Tensor | float) -> tf.Tensor:
    """`Q(τ) = −mean(|w1|)·ln(2 − 2τ)` (∞ for τ ≥ 1), without gradient."""
    tau = tf.cast(tau, w1.dtype)
    b = tf.reduce_mean(tf.abs(w1))
    # Guard the log so τ = 1 gives +∞ instead of 0·∞ = NaN for an all-zero kernel.
    safe = tf.maximum(2.0 - 2.0 * tau, tf.constant(1e-30, w1.dtype))
    q = tf.where(tau < 1.0, -b * tf.math.log(safe), tf.constant(np.inf, w1.dtype))
    return tf.stop_gradient(q)


def standardize_weights(
    w: tf.Tensor, b_star: float = DEFAULT_B_STAR, eps: float = EPS
) -> tf.Tensor:
    """Per-output-channel (last axis) standardisation to std √2·b*, unbiased variance."""
    w = tf.convert_to_tensor(w)
    axes = list(range(w.shape.rank - 1))
    n = int(np.prod(w.shape[:-1]))
    w0 = w - tf.reduce_mean(w, axis=axes, keepdims=True)
    std = tf.sqrt(_unbiased_variance(w0, axes, n) + eps)
    return w0 / (std / (math.sqrt(2.0) * b_star))


def recu_weights(
    w: tf.Tensor, tau: tf.Tensor | float, *, b_star: float = DEFAULT_B_STAR, eps: float = EPS
) -> tf.Tensor:
    """ReCU's binary weights: standardise → clip to ±Q(τ) → sign (identity gradient)."""
    w1 = standardize_weights(w, b_star, eps)
    q = clamp_threshold(w1, tau)
    return sign_identity(tf.clip_by_value(w1, -q, q))


def normalize_per_sample(a: tf.Tensor, eps: float = EPS) -> tf.Tensor:
    """`a / sqrt(var_unbiased(a) + eps)`, variance per sample over all non-batch axes."""
    a = tf.convert_to_tensor(a)
    axes = list(range(1, a.shape.rank))
    n = int(np.prod(a.shape[1:]))
    return a / tf.sqrt(_unbiased_variance(a, axes, n) + eps)


@tf.function(jit_compile=True)
def _recu_activation_grad(x: tf.Tensor, dy: tf.Tensor, eps: float) -> tf.Tensor:
    # XLA fuses these ~12 element-wise passes into a few loops; unfused they
    # cost more than the binary conv itself on narrow layers (measured on
    # six 32-channel convs: 1.35× → 1.15× a plain ste_sign step).
    axes = list(range(1, x.shape.rank))
    n = tf.cast(tf.size(x) // tf.shape(x)[0], x.dtype)
    mean, var = tf.nn.moments(x, axes, keepdims=True)
    s = tf.sqrt(var * n / tf.maximum(n - 1.0, 1.0) + eps)
    u = dy * tf.nn.relu(2.0 - 2.0 * tf.abs(x) / s)
    dot = tf.reduce_sum(u * x, axis=axes, keepdims=True)
    return u / s - (x - mean) * dot / (tf.maximum(n - 1.0, 1.0) * s * s * s)


def recu_activation(a: tf.Tensor, eps: float = EPS) -> tf.Tensor:
    """`approx_sign(normalize_per_sample(a))` as one op with a hand-written gradient.

    Same value and gradient as composing the two (the gradient also flows
    through the per-sample variance), but it skips the forward division and
    runs the backward pass as one XLA-compiled function. With
    `s = sqrt(v + eps)`, `u = dy · max(0, 2 − 2|a|/s)` and `n` elements per
    sample:

    `da = u / s − (a − mean(a)) · Σ(u·a) / ((n − 1) s³)`.
    """
    a = tf.convert_to_tensor(a)

    @tf.custom_gradient
    def _op(x):
        def grad(dy):
            return _recu_activation_grad(x, dy, eps)

        return _sign(x), grad

    return _op(a)


@tf.keras.utils.register_keras_serializable(package="bnn_tf")
class ReCUWeightQuantizer(lq.quantizers.Quantizer):
    """ReCU weight quantizer: per-channel standardise, clamp to ±Q(τ), sign.

    Usable as `kernel_quantizer` of any larq layer (`QuantConv2D`,
    `QuantDense`, ...); statistics are per output channel (the kernel's last
    axis). It owns a non-trainable variable `tau` (initial value `tau`,
    default 1 = no clamp) that `TauScheduler` updates every epoch.

    Its `precision` is 1, so `Bop.is_binary_variable` claims the kernel (see
    the module docstring for how Bop and the clamp combine).

    Args:
        b_star: Laplace scale the weights are standardised to (std √2·b*).
        tau: initial τ.
        eps: added to the variance before the square root.
    """

    precision = 1

    def __init__(
        self, b_star: float = DEFAULT_B_STAR, tau: float = 1.0, eps: float = EPS, **kwargs
    ):
        if b_star <= 0:
            raise ConfigError(f"b_star must be > 0 (got {b_star}); the paper uses 2.")
        if not 0.5 <= tau <= 1.0:
            raise ConfigError(f"tau must be in [0.5, 1] (got {tau}); 1 means no clamp.")
        # The standardisation's statistics need the float32 latent weights whatever the
        # policy (bfloat16 would move the sign of weights near a channel's mean), so
        # Keras must not cast the inputs; ReCUConv2D casts the ±1 result.
        super().__init__(autocast=False, **kwargs)
        self.b_star = float(b_star)
        self.initial_tau = float(tau)
        self.eps = float(eps)

    def build(self, input_shape):
        self.tau = self.add_weight(
            name="tau",
            shape=(),
            initializer=tf.keras.initializers.Constant(self.initial_tau),
            trainable=False,
        )
        super().build(input_shape)

    def call(self, inputs):
        return recu_weights(inputs, self.tau, b_star=self.b_star, eps=self.eps)

    def get_config(self):
        return {
            **super().get_config(),
            "b_star": self.b_star,
            "tau": self.initial_tau,
            "eps": self.eps,
        }


@tf.keras.utils.register_keras_serializable(package="bnn_tf")
class ReCUActivationQuantizer(lq.quantizers.Quantizer):
    """ReCU activation quantizer: sign forward, ApproxSign backward on `a / std(a)`.

    During training the gradient is ApproxSign's `max(0, 2 − 2|a_0|)` at
    `a_0 = a / sqrt(var_unbiased(a) + eps)` (per sample over all non-batch
    axes), back-propagated through the normalisation; at inference `a_0 = a`.
    The forward value is `sign(a)` (+1 at 0) in both modes, which LCE lowers
    to `LceQuantize`.

    Args:
        eps: added to the variance before the square root.
    """

    precision = 1

    def __init__(self, eps: float = EPS, **kwargs):
        super().__init__(**kwargs)
        self.eps = float(eps)

    def call(self, inputs, training=None):
        if training is None:
            training = tf.keras.backend.learning_phase()
        if isinstance(training, (bool, int)):
            return recu_activation(inputs, self.eps) if training else approx_sign(inputs)
        return tf.cond(
            tf.cast(training, tf.bool),
            lambda: recu_activation(inputs, self.eps),
            lambda: approx_sign(inputs),
        )

    def get_config(self):
        return {**super().get_config(), "eps": self.eps}


# String names (`kernel_quantizer="recu_weight"`), and the class names .h5 configs store.
register_aliases(ReCUWeightQuantizer, "recu_weight")
register_aliases(ReCUActivationQuantizer, "recu_activation")


@tf.keras.utils.register_keras_serializable(package="bnn_tf")
class HardTanh(tf.keras.layers.Layer):
    """`y = clip(x, −1, 1)`: PyTorch's `nn.Hardtanh` (larq's `hard_tanh`) as a layer.

    The activation of the ReCU ResNets. A layer rather than
    `Activation(lq.activations.hard_tanh)`: tf_keras writes a non-Keras
    activation function into `.h5` configs in a form its own `.h5` loader
    rejects ("Unknown activation function: 'function'").
    """

    def call(self, inputs):
        return tf.clip_by_value(inputs, -1.0, 1.0)


@tf.keras.utils.register_keras_serializable(package="bnn_tf")
class ReCUConv2D(lq.layers.QuantConv2D):
    """A binary 2-D convolution trained with ReCU, laid out for LCE.

    `y = α ⊙ conv(sign(x), sign(clip(standardise(W), ±Q(τ))))` with a
    learnable per-output-channel α (init `alpha_initializer`, default
    `"fan_in"` = 1/√(kh·kw·C_in), so the output has roughly unit variance
    and a following BatchNorm's initial moving statistics (0, 1) are about
    right at inference from the first steps; the reference draws uniform
    [0, 1)). Inputs are padded with +1
    (`pad_values=1.0`, LCE's fast path), there is no bias by default, and the
    kernel is ±1 after freezing, so LCE emits `LceBconv2d` with α (and a
    BatchNorm right after) folded into its output multiplier.

    Any other `QuantConv2D` argument is accepted (strides, padding,
    dilation_rate, ...). `input_quantizer`/`kernel_quantizer` default to the
    ReCU quantizers; passing others makes this a plain larq conv with α.

    Args:
        filters: output channels.
        kernel_size: int or (kh, kw).
        b_star: ReCU's Laplace scale b* (default 2).
        alpha_initializer: initializer of α, or `"fan_in"` (1/√(kh·kw·C_in)).
        alpha_regularizer: optional regularizer of α.
    """

    def __init__(
        self,
        filters: int,
        kernel_size,
        *,
        b_star: float = DEFAULT_B_STAR,
        alpha_initializer="fan_in",
        alpha_regularizer=None,
        input_quantizer=None,
        kernel_quantizer=None,
        pad_values: float = 1.0,
        use_bias: bool = False,
        **kwargs,
    ):
        if input_quantizer is None:
            input_quantizer = ReCUActivationQuantizer()
        if kernel_quantizer is None:
            kernel_quantizer = ReCUWeightQuantizer(b_star=b_star)
        kwargs.pop("kernel_constraint", None)  # ReCU never clips the stored weight
        # larq warns about "starved weights" for a binary kernel without a
        # constraint; ReCU's clamp is exactly what revives them, so mute it.
        larq_log = logging.getLogger("larq.layers_base")
        level = larq_log.level
        larq_log.setLevel(logging.ERROR)
        try:
            super().__init__(
                filters,
                kernel_size,
                input_quantizer=input_quantizer,
                kernel_quantizer=kernel_quantizer,
                pad_values=pad_values,
                use_bias=use_bias,
                kernel_constraint=None,
                **kwargs,
            )
        finally:
            larq_log.setLevel(level)
        self.b_star = float(b_star)
        self.alpha_initializer = (
            alpha_initializer
            if alpha_initializer == "fan_in"
            else tf.keras.initializers.get(alpha_initializer)
        )
        self.alpha_regularizer = tf.keras.regularizers.get(alpha_regularizer)

    def add_weight(self, name=None, *args, **kwargs):
        if name == "kernel":
            # Under a bfloat16 policy the quantizer must still see float32 latent
            # weights: standardising bfloat16-rounded weights moves the sign of those
            # near a channel's mean. The ±1 kernel is cast in convolution_op (exact).
            kwargs["experimental_autocast"] = False
        return super().add_weight(name, *args, **kwargs)

    def build(self, input_shape):
        super().build(input_shape)
        self.alpha = self.add_weight(
            name="alpha",
            shape=(self.filters,),
            initializer=self._alpha_init(input_shape),
            regularizer=self.alpha_regularizer,
            trainable=True,
            # α stays float32 under a bfloat16 policy: see convolution_op.
            experimental_autocast=False,
        )
        # Create τ now (not at the first kernel read) so it exists for the
        # scheduler, checkpoints and `load_model` right after building.
        quantizer = self.kernel_quantizer
        if isinstance(quantizer, tf.keras.layers.Layer) and not quantizer.built:
            quantizer.build(self.kernel.shape)

    def _alpha_init(self, input_shape):
        if self.alpha_initializer != "fan_in":
            return self.alpha_initializer
        fan_in = int(np.prod(self.kernel_size)) * int(input_shape[-1])
        return tf.keras.initializers.Constant(1.0 / math.sqrt(fan_in))

    def call(self, inputs, training=None):
        # Where α is applied depends on the mode (the values are the same):
        # training scales the small kernel, conv(x, sign(W)·α), much cheaper
        # on a CPU than scaling the output and its gradient; inference (what
        # LCE converts) multiplies the output, α ⊙ conv(x, sign(W)). LCE 0.16
        # folds that Mul into the output multiplier correctly, whereas a
        # kernel holding ±α with unequal α per channel gives wrong results
        # when the bconv writes bitpacked output (measured, docs/recu.md).
        self._alpha_in_kernel = isinstance(training, bool) and training
        return super().call(inputs)

    def convolution_op(self, inputs, kernel):
        if getattr(self, "_alpha_in_kernel", False):
            return super().convolution_op(inputs, tf.cast(kernel * self.alpha, inputs.dtype))
        outputs = super().convolution_op(inputs, tf.cast(kernel, inputs.dtype))
        if outputs.dtype == self.alpha.dtype:
            return outputs * self.alpha
        # A bfloat16 conv of ±1 operands yields integer sums (exact up to 256 terms);
        # scaling them by α in bfloat16 would round every output by up to 2⁻⁸, so the
        # scale is applied in float32 and the layer's output stays float32.
        outputs = tf.cast(outputs, self.alpha.dtype) * self.alpha
        return outputs if not self.use_bias else tf.cast(outputs, self.compute_dtype)

    def get_config(self):
        return {
            **super().get_config(),
            "b_star": self.b_star,
            "alpha_initializer": (
                "fan_in"
                if self.alpha_initializer == "fan_in"
                else tf.keras.initializers.serialize(self.alpha_initializer)
            ),
            "alpha_regularizer": tf.keras.regularizers.serialize(self.alpha_regularizer),
        }


def tau_schedule(
    epoch: float, epochs: int, tau_min: float = TAU_MIN, tau_max: float = TAU_MAX
) -> float:
    """ReCU's exponential τ schedule: `A·exp(epoch/epochs) + B`, τ_min at 0, τ_max at `epochs`."""
    if epochs < 1:
        raise ConfigError(f"epochs must be ≥ 1 (got {epochs}).")
    if not 0.5 <= tau_min <= tau_max <= 1.0:
        raise ConfigError(f"need 0.5 ≤ tau_min ≤ tau_max ≤ 1 (got {tau_min}, {tau_max}).")
    a = (tau_max - tau_min) / (math.e - 1.0)
    b = tau_min - a
    return float(a * math.exp(epoch / epochs) + b)


def tau_variables(model: tf.keras.layers.Layer) -> list[tf.Variable]:
    """Every ReCU τ variable in `model` (nested models and layers included)."""
    found: dict[int, tf.Variable] = {}
    for quantizer in introspect.find(model, ReCUWeightQuantizer):
        if hasattr(quantizer, "tau"):
            found[id(quantizer.tau)] = quantizer.tau
    return list(found.values())


def set_tau(model: tf.keras.layers.Layer, tau: float) -> int:
    """Set τ on every ReCU layer of `model`; returns how many were set."""
    variables = tau_variables(model)
    for var in variables:
        var.assign(tau)
    return len(variables)


@tf.keras.utils.register_keras_serializable(package="bnn_tf")
class TauScheduler(EpochSchedule):
    """Set ReCU's τ at the start of every epoch and log it as `recu_tau`.

    `tau(e) = A·exp(e/epochs) + B` (see `tau_schedule`), from `tau_min`
    (epoch 0) towards `tau_max`. Pass the total number of epochs of the run,
    so a resumed run continues the same schedule.

    Raises:
        ConfigError: at the start of training, when the model has no ReCU layer.
    """

    def __init__(
        self, epochs: int, *, tau_min: float = TAU_MIN, tau_max: float = TAU_MAX, verbose: int = 0
    ):
        super().__init__()
        tau_schedule(0, epochs, tau_min, tau_max)  # validate now, not mid-training
        self.epochs = int(epochs)
        self.tau_min = float(tau_min)
        self.tau_max = float(tau_max)
        self.verbose = verbose
        self.current = float("nan")

    def on_train_begin(self, logs=None):
        if not tau_variables(self.model):
            raise ConfigError(
                f"TauScheduler: model {self.model.name!r} has no ReCU layer (no ReCUWeightQuantizer). "
                "Fix: use ReCUConv2D / kernel_quantizer=ReCUWeightQuantizer(), or drop the callback."
            )

    def on_epoch_begin(self, epoch, logs=None):
        self.current = tau_schedule(
            self.scheduled_epoch(epoch), self.epochs, self.tau_min, self.tau_max
        )
        count = set_tau(self.model, self.current)
        if self.verbose:
            print(
                f"TauScheduler: epoch {epoch + 1}: tau = {self.current:.4f} on {count} ReCU layers"
            )

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["recu_tau"] = self.current

    def get_config(self):
        return {
            "epochs": self.epochs,
            "tau_min": self.tau_min,
            "tau_max": self.tau_max,
            "verbose": self.verbose,
        }

    @staticmethod
    def scheduled_variables(model: tf.keras.Model) -> list[tf.Variable]:
        """The τ variables this schedule sets."""
        return tau_variables(model)


# Without the schedule τ stays at its initial value 1 (no clamp) and the run silently
# trains without ReCU's clamp; training collects this declaration from the model.
ReCUWeightQuantizer.declared_schedules = (TauScheduler,)


def is_recu_kernel(var: tf.Variable) -> bool:
    """True for a kernel quantized by `ReCUWeightQuantizer` (a larq QuantizedVariable)."""
    return isinstance(getattr(var, "quantizer", None), ReCUWeightQuantizer)


def recu_optimizer(
    *,
    kernels: str = "bop",
    threshold: float = 1e-6,
    gamma: float = 1e-3,
    learning_rate=1e-3,
) -> tf.keras.optimizers.Optimizer:
    """The optimizer for a ReCU model, choosing who trains the ReCU kernels.

    Args:
        kernels: `"bop"`: Bop flips every binary kernel (ReCU's included),
            Adam trains the rest (same as `bnn_tf.optimizers.bop_adam`).
            `"adam"`: every variable, ReCU kernels included, is a latent real
            weight trained by Adam (the paper's setting; ReCU's clamp acts on
            these latent weights). For a model that mixes ReCU kernels with
            other Bop-trained binary kernels, build a `CaseOptimizer` whose
            Bop predicate is `Bop.is_binary_variable(v) and not is_recu_kernel(v)`.
        threshold, gamma: Bop's τ and γ (ignored for `"adam"`).
        learning_rate: Adam's learning rate (float or schedule).
    """
    if kernels not in ("bop", "adam"):
        raise ConfigError(f"kernels must be 'bop' or 'adam' (got {kernels!r}).")
    adam = tf.keras.optimizers.legacy.Adam(learning_rate)
    if kernels == "adam":
        return adam
    return lq.optimizers.CaseOptimizer(
        (lq.optimizers.Bop.is_binary_variable, lq.optimizers.Bop(threshold=threshold, gamma=gamma)),
        default_optimizer=adam,
    )
