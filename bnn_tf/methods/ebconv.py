"""Expert Binary Convolution (EBConv): N binary experts, one chosen per sample.

Bulat, Martinez, Tzimiropoulos, "High-Capacity Expert Binary Networks", ICLR 2021.

For an input `x` (real, before the sign) the layer keeps N expert kernels
`W ∈ R^{N × kh × kw × Cin/g × Cout}` and a gate:

    z = GAP(x) · G + b                                (Dense(Cin → N), with bias)
    p = σ(z)  (gate_activation="sigmoid")  or  softmax(z)  ("softmax")
    φ = one_hot(argmax p)        forward (winner takes all; the same arg-max for both)
    ∂φ/∂z := ∂p/∂z               backward (straight through σ or the softmax)
    mixing="latent":  W_s = sign(Σ_n φ_n · W_n)   clipped STE: ∂/∂(Σ φ_n W_n) passes where |·| ≤ 1
    mixing="signed":  W_s = Σ_n φ_n · sign(W_n)
    y = α ⊙ conv(pad₁(sign(x)), W_s)      [⊙ SE(x) if use_se]
    SE(x) = sigmoid(W2 · relu(W1 · GAP(x)))   se_layout="official": no biases, hidden C_out // 8
                                              se_layout="biased": biases, hidden C_in // 8

The forward pass is the same for every form (φ is one-hot, so
`sign(Σ φ_n W_n) = sign(W_k) = Σ φ_n sign(W_n)`); the gate's gradient is not:

- latent: `∂L/∂φ_n = ⟨∂L/∂W_s ⊙ 1[|W_k| ≤ 1], W_n⟩` — **the authors' released
  training code** (with the sigmoid gate and the bias-free SE, on by default
  there). Meant for latent-weight training (Adam).
- signed: `∂L/∂φ_n = ⟨∂L/∂W_s, sign(W_n)⟩` — **bnn-tf's own first form**
  (with the softmax gate): under Bop the experts are exactly ±1, there is no
  latent weight to mix, so the mixture is taken over the signed experts.

Right after `expand_experts` all experts are equal, so every `∂L/∂φ_n` is the
same: the softmax Jacobian's rows sum to zero and the exact gate gradient
vanishes; the sigmoid's does not. Which form trains better here is measured
in benchmarks/ebconv_forms.py (docs/ebconv.md).

`α` is a learnable per-output-channel scale (init 1), `pad₁` pads with +1
(`pad_values=1`, LCE's fast path). Only the chosen expert receives gradient
from a sample. The expert kernels are marked `precision = 1`, so
`bnn_tf.optimizers.bop_adam` trains them with Bop and the gate, α and SE with
Adam; `OptimizerConfig(name="adam")` trains everything as latent weights.

Two training implementations (`training=True`) give the same forward:

- `"partition"` (default): the batch is split by chosen expert
  (`tf.dynamic_partition`), each part is convolved with its own expert and
  the parts are stitched back. Costs one convolution. The gate gradient keeps
  only the chosen expert's term: `⟨∂L/∂y, y⟩` (signed) or
  `⟨∂L/∂y, conv(x, α·W_k·1[|W_k| ≤ 1])⟩` (latent: one more convolution, in the
  backward pass only). The unchosen experts' terms would need their outputs too.
- `"grouped"`: the per-sample kernel `W_s` is built with an einsum and the
  whole batch runs as ONE grouped convolution with `batch × groups` groups.
  Exact mixture gradient for the gate (every n), ≈ 3× slower on TF's CPU kernels.

At inference (`training=False`: `predict`, `evaluate`, conversion) every
expert runs and the one-hot gate masks the outputs: the same output, N×
the cost, and a graph LCE converts directly (N `LceBconv2d`).

`padding="symmetric"` pads k // 2 on every side, as PyTorch's
`Conv2d(padding=k // 2)`; TF's `"same"` pads (0, 1) at stride 2 on even
inputs. Use it for kernels ported from PyTorch.

Staging (the paper's recipe): `set_single_expert(model, True)` forces the
gate to expert 0; `expand_experts(model)` copies expert 0 into every expert
and frees the gate. `ExpertExpansion(expand_at_epoch=k)` does both as a
callback. `EBConv2D` declares it (`bnn_tf.introspect.declared_schedules`),
so `bnn-tf train` expands after a third of the run; the declared form only
acts on a model that starts the run in the single-expert phase
(`single_expert=True`, the default of `ebnet` / `ebnet_small`), because the
expansion is a one-off, destructive step (expert 0 overwrites the others)
that must not wipe the experts of a model fine-tuned or trained in several calls.
For LCE, convert `bnn_tf.methods.ebconv_export.export_model(model)`: it
runs the chosen expert only, inside TFLite `IF` subgraphs.
"""

from __future__ import annotations

from collections.abc import Sequence

import larq as lq
import numpy as np
import tensorflow as tf

from bnn_tf import introspect
from bnn_tf.errors import ConfigError

IMPLEMENTATIONS = ("partition", "grouped")
PADDINGS = ("same", "symmetric", "valid")
GATES = ("sigmoid", "softmax")
MIXINGS = ("latent", "signed")
SE_LAYOUTS = ("official", "biased")
# What a config saved before these options existed meant (bnn-tf's first form).
LEGACY_FORM = {"gate_activation": "softmax", "mixing": "signed", "se_layout": "biased"}


@tf.custom_gradient
def winner_takes_all(probs: tf.Tensor) -> tf.Tensor:
    """One-hot of `argmax(probs)` forward; identity (straight-through) gradient backward."""
    onehot = tf.one_hot(tf.argmax(probs, axis=-1), tf.shape(probs)[-1], dtype=probs.dtype)

    def grad(dy):
        return dy

    return onehot, grad


@tf.custom_gradient
def _winner_of(logits: tf.Tensor, probs: tf.Tensor) -> tf.Tensor:
    """One-hot of `argmax(logits)` forward; the gradient goes straight to `probs`.

    The arg-max is taken on the logits, not on `probs`: a saturated sigmoid rounds
    several large logits to exactly 1.0 in float32, and an arg-max over those ties
    would pick another expert than the converted model's `argmax(GAP(x)·G + b)`.
    """
    onehot = tf.one_hot(tf.argmax(logits, axis=-1), tf.shape(logits)[-1], dtype=probs.dtype)

    def grad(dy):
        return tf.zeros_like(logits), dy

    return onehot, grad


@tf.custom_gradient
def _times_chosen(y: tf.Tensor, chosen: tf.Tensor) -> tf.Tensor:
    """`y · φ_k` for the chosen expert's φ_k, which is exactly 1 in the forward pass.

    So the forward returns `y` unchanged (no full-size multiply) and the
    backward passes `dy` through and routes `∂L/∂φ_k = ⟨dy, y⟩` into the gate.
    """

    def grad(dy):
        return dy, tf.reduce_sum(dy * y, axis=[1, 2, 3])

    return tf.identity(y), grad


def _times_chosen_lazy(y: tf.Tensor, chosen: tf.Tensor, term) -> tf.Tensor:
    """`y · φ_k` (φ_k = 1 forward) whose gate gradient is `⟨dy, term()⟩`, built in the backward pass."""

    @tf.custom_gradient
    def times(y, chosen):
        def grad(dy):
            return dy, tf.reduce_sum(dy * term(), axis=[1, 2, 3])

        return tf.identity(y), grad

    return times(y, chosen)


def _pair(value: int | Sequence[int], name: str) -> tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
    value = tuple(int(v) for v in value)
    if len(value) != 2:
        raise ConfigError(f"{name} must be an int or a pair of ints (got {value!r}).")
    return value  # type: ignore[return-value]


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """(before, after) padding of TF's "same" convolution along one axis."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


@tf.keras.utils.register_keras_serializable(package="bnn_tf")
class EBConv2D(tf.keras.layers.Conv2D):
    """Expert binary 2-D convolution with a winner-takes-all gate (see the module docstring).

    A config saved before `gate_activation`, `mixing` and `se_layout` existed
    loads as softmax + signed + biased SE, which is what it meant.

    Args:
        filters: output channels.
        kernel_size: int or (kh, kw).
        num_experts: N (1 = a plain binary conv with α, no gate).
        strides: int or (sh, sw).
        padding: `"same"` (TF: at stride 2 and an even input, pads (0, 1): the extra row
            and column go after), `"symmetric"` (PyTorch's `padding=k // 2`: (1, 1) for a
            3×3, for kernels ported from PyTorch) or `"valid"`.
        groups: grouped convolution (divides the input channels and `filters`).
            LCE needs input channels per group to be a multiple of 32.
        pad_values: value used for "same" padding after the sign (1.0 = LCE's fast path).
        input_quantizer / kernel_quantizer: larq quantizers (default `ste_sign`).
        kernel_initializer / kernel_constraint: for the expert kernels (no
            constraint by default: Bop keeps them at ±1).
        alpha_initializer: initial α (default ones, as in the paper).
        use_se: multiply the output by an SE-style per-channel scale.
        se_reduction: SE bottleneck reduction.
        se_layout: `"official"` (the authors' SE: no biases, hidden C_out // r) or
            `"biased"` (biases, hidden C_in // r: bnn-tf's first form).
        gate_activation: `"sigmoid"` (the authors' training code) or `"softmax"`.
        mixing: `"latent"` (`sign(Σ φₙ Wₙ)`, the authors' code; for Adam) or
            `"signed"` (`Σ φₙ sign(Wₙ)`; for Bop).
        single_expert: start in the staging phase that forces expert 0.
        implementation: `"partition"` (fast) or `"grouped"` (exact gate gradient).
    """

    # The gate picks an expert by arg-max over its logits: computed in bfloat16 it can pick
    # another one, so `--precision binary_bfloat16` leaves this layer in float32.
    bfloat16_exact = False

    def __init__(
        self,
        filters: int,
        kernel_size: int | Sequence[int],
        *,
        num_experts: int = 4,
        strides: int | Sequence[int] = 1,
        padding: str = "same",
        groups: int = 1,
        pad_values: float = 1.0,
        input_quantizer="ste_sign",
        kernel_quantizer="ste_sign",
        kernel_initializer="glorot_uniform",
        kernel_constraint=None,
        alpha_initializer="ones",
        use_se: bool = False,
        se_reduction: int = 8,
        se_layout: str = "official",
        gate_activation: str = "sigmoid",
        mixing: str = "latent",
        single_expert: bool = False,
        implementation: str = "partition",
        **kwargs,
    ):
        if int(filters) < 1:
            raise ConfigError(f"EBConv2D: filters must be ≥ 1 (got {filters}).")
        if int(num_experts) < 1:
            raise ConfigError(f"EBConv2D: num_experts must be ≥ 1 (got {num_experts}).")
        if padding.lower() not in PADDINGS:
            raise ConfigError(f"EBConv2D: padding must be one of {PADDINGS} (got {padding!r}).")
        if implementation not in IMPLEMENTATIONS:
            raise ConfigError(
                f"EBConv2D: implementation must be one of {IMPLEMENTATIONS} (got {implementation!r})."
            )
        if int(groups) < 1 or int(filters) % int(groups):
            raise ConfigError(
                f"EBConv2D: groups={groups} must be ≥ 1 and divide filters={filters}. "
                "Fix: choose groups that divide both the input channels and filters."
            )
        for value, allowed, what in (
            (gate_activation, GATES, "gate_activation"),
            (mixing, MIXINGS, "mixing"),
            (se_layout, SE_LAYOUTS, "se_layout"),
        ):
            if value not in allowed:
                raise ConfigError(f"EBConv2D: {what} must be one of {allowed} (got {value!r}).")
        if int(se_reduction) < 1:
            raise ConfigError(f"EBConv2D: se_reduction must be ≥ 1 (got {se_reduction}).")
        # A Conv2D subclass, so tools that look for 2-D convolutions (bnn_tf.converters'
        # lint and report) see it; build, call and config are all our own.
        super().__init__(
            int(filters),
            kernel_size,
            strides=strides,
            padding="valid" if padding.lower() == "valid" else "same",
            groups=int(groups),
            use_bias=False,
            **kwargs,
        )
        self.filters = int(filters)
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.num_experts = int(num_experts)
        self.strides = _pair(strides, "strides")
        self.padding = padding.lower()
        self.groups = int(groups)
        self.pad_values = float(pad_values)
        self.input_quantizer = lq.quantizers.get(input_quantizer)
        self.kernel_quantizer = lq.quantizers.get(kernel_quantizer)
        self.kernel_initializer = tf.keras.initializers.get(kernel_initializer)
        self.kernel_constraint = tf.keras.constraints.get(kernel_constraint)
        self.alpha_initializer = tf.keras.initializers.get(alpha_initializer)
        self.use_se = bool(use_se)
        self.se_reduction = int(se_reduction)
        self.se_layout = se_layout
        self.gate_activation = gate_activation
        self.mixing = mixing
        self.single_expert_init = bool(single_expert)
        self.implementation = implementation

    @property
    def latent_weights(self) -> bool:
        """Whether the experts train as latent weights (`mixing="latent"`: sign of the mixture)."""
        return self.mixing == "latent"

    # ------------------------------------------------------------------ build
    def build(self, input_shape):
        cin = input_shape[-1]
        if cin is None:
            raise ConfigError("EBConv2D needs a known number of input channels.")
        cin = int(cin)
        if cin % self.groups:
            raise ConfigError(
                f"EBConv2D {self.name}: groups={self.groups} does not divide the {cin} input "
                "channels. Fix: choose groups that divide both input channels and filters."
            )
        kh, kw = self.kernel_size
        self.kernel = self.add_weight(
            "kernel",
            shape=(self.num_experts, kh, kw, cin // self.groups, self.filters),
            initializer=self.kernel_initializer,
            constraint=self.kernel_constraint,
        )
        if getattr(self.kernel_quantizer, "precision", None) == 1:
            # Bop (larq's is_binary_variable) trains variables marked precision 1.
            self.kernel.precision = 1
        self.alpha = self.add_weight(
            "alpha", shape=(self.filters,), initializer=self.alpha_initializer
        )
        if self.num_experts > 1:
            self.gate_kernel = self.add_weight(
                "gate_kernel", shape=(cin, self.num_experts), initializer="glorot_uniform"
            )
            self.gate_bias = self.add_weight(
                "gate_bias", shape=(self.num_experts,), initializer="zeros"
            )
            # A variable, not a Python flag: switching stages needs no retracing,
            # and the stage is saved with the weights.
            self.single_expert = self.add_weight(
                "single_expert",
                shape=(),
                initializer=tf.keras.initializers.Constant(float(self.single_expert_init)),
                trainable=False,
            )
        if self.use_se:
            # official: hidden C_out // r, no biases (the authors' code); biased: C_in // r
            # with biases (bnn-tf's first form, what older saved models hold).
            official = self.se_layout == "official"
            hidden = max((self.filters if official else cin) // self.se_reduction, 1)
            self.se_kernel1 = self.add_weight("se_kernel1", shape=(cin, hidden))
            self.se_kernel2 = self.add_weight("se_kernel2", shape=(hidden, self.filters))
            self.se_bias1 = self.se_bias2 = None
            if not official:
                self.se_bias1 = self.add_weight("se_bias1", shape=(hidden,), initializer="zeros")
                self.se_bias2 = self.add_weight(
                    "se_bias2", shape=(self.filters,), initializer="zeros"
                )
        # Conv2D.build would create a 4-D kernel: skip it, keep Layer.build.
        tf.keras.layers.Layer.build(self, input_shape)

    # ------------------------------------------------------------ components
    def gate_logits(self, pooled: tf.Tensor) -> tf.Tensor:
        """Gate logits `GAP(x) · G + b` from the pooled real input, shape (batch, N)."""
        return tf.matmul(pooled, self.gate_kernel) + self.gate_bias

    def gate_probs(self, pooled: tf.Tensor) -> tf.Tensor:
        """`sigmoid` or `softmax` of the gate logits (batch, N); same arg-max either way."""
        logits = self.gate_logits(pooled)
        return tf.sigmoid(logits) if self.gate_activation == "sigmoid" else tf.nn.softmax(logits)

    def gate(self, inputs: tf.Tensor) -> tf.Tensor:
        """The forward gate φ (batch, N): one-hot winner, straight-through gradient to `gate_probs`."""
        pooled = tf.reduce_mean(inputs, axis=[1, 2])
        logits = self.gate_logits(pooled)
        probs = tf.sigmoid(logits) if self.gate_activation == "sigmoid" else tf.nn.softmax(logits)
        onehot = _winner_of(logits, probs)
        forced = tf.one_hot(
            tf.zeros_like(tf.shape(pooled)[:1]), self.num_experts, dtype=onehot.dtype
        )
        # single_expert = 1 → expert 0 and no gradient into the gate.
        single = tf.cast(self.single_expert, onehot.dtype)
        return single * forced + (1.0 - single) * onehot

    def select_experts(self, inputs: tf.Tensor) -> tf.Tensor:
        """Index of the expert each sample uses (batch,), int32."""
        if self.num_experts == 1:
            return tf.zeros(tf.shape(inputs)[:1], tf.int32)
        return tf.argmax(self.gate(inputs), axis=-1, output_type=tf.int32)

    def binary_kernels(self) -> tf.Tensor:
        """sign(W) of every expert, (N, kh, kw, Cin/g, Cout)."""
        if self.kernel_quantizer is None:
            return tf.convert_to_tensor(self.kernel)
        return self.kernel_quantizer(self.kernel)

    def quantize_and_pad(
        self, inputs: tf.Tensor, spatial: Sequence[int | None] | None = None
    ) -> tf.Tensor:
        """sign(x), then "same"/"symmetric" padding with `pad_values` (VALID conv afterwards).

        `spatial` overrides the (height, width) the padding is computed for.
        """
        x = self.input_quantizer(inputs) if self.input_quantizer is not None else inputs
        if self.padding == "valid":
            return x
        if self.padding == "symmetric":
            kh, kw = self.kernel_size
            pads = [[0, 0], [kh // 2, kh // 2], [kw // 2, kw // 2], [0, 0]]
            return tf.pad(x, pads, constant_values=self.pad_values)
        spatial = tuple(x.shape[1:3]) if spatial is None else tuple(spatial)
        pads = [[0, 0]]
        for axis, (k, s) in enumerate(zip(self.kernel_size, self.strides, strict=True)):
            size = spatial[axis]
            if size is None:
                raise ConfigError(
                    f"EBConv2D {self.name}: 'same' padding needs known spatial sizes. "
                    "Fix: build the model with a fixed input_shape."
                )
            pads.append(list(same_padding(int(size), k, s)))
        pads.append([0, 0])
        if not any(p for pair in pads for p in pair):
            return x
        return tf.pad(x, pads, constant_values=self.pad_values)

    def se_scale(self, pooled: tf.Tensor) -> tf.Tensor:
        """SE-style per-sample, per-channel scale in (0, 1), shape (batch, Cout)."""
        hidden = tf.matmul(pooled, self.se_kernel1)
        if self.se_bias1 is not None:
            hidden = hidden + self.se_bias1
        out = tf.matmul(tf.nn.relu(hidden), self.se_kernel2)
        if self.se_bias2 is not None:
            out = out + self.se_bias2
        return tf.sigmoid(out)

    def _conv(self, x: tf.Tensor, kernel: tf.Tensor) -> tf.Tensor:
        # The kernel's input depth (Cin/g) makes tf.nn.conv2d a grouped convolution.
        return tf.nn.conv2d(x, kernel, strides=(1, *self.strides, 1), padding="VALID")

    # ------------------------------------------------------------------ call
    def call(self, inputs, training=None):
        x = self.quantize_and_pad(inputs)
        w = self.binary_kernels()
        # Training scales the small kernel by α (conv(x, W)·α = conv(x, W·α)),
        # which saves a full-size multiply and its gradient per step. Inference
        # keeps α on the output: that is the form LCE folds into LceBconv2d's
        # output multiplier (a ±α kernel is not binary for the converter).
        alpha_in_kernel = isinstance(training, bool) and training
        if alpha_in_kernel:
            w = w * self.alpha
        if self.num_experts == 1:
            y = self._conv(x, w[0])
        else:
            phi = self.gate(inputs)
            latent = self.mixing == "latent"
            if not training:
                # One-hot φ: sign(Σ φₙWₙ) = Σ φₙ sign(Wₙ), so both mixings share this path.
                y = self._all_experts_call(x, w, phi)
            elif self.implementation == "grouped":
                alpha = self.alpha if alpha_in_kernel else None
                mix = (lambda p: self._latent_mix(p, alpha)) if latent else w
                y = self._grouped_call(x, mix, phi)
            else:
                alpha = self.alpha if alpha_in_kernel else None
                y = self._partition_call(x, w, phi, latent=latent, alpha=alpha)
        if not alpha_in_kernel:
            y = y * self.alpha
        if self.use_se:
            y = y * self.se_scale(tf.reduce_mean(inputs, axis=[1, 2]))[:, None, None, :]
        return y

    def _all_experts_call(self, x, w, phi):
        # Inference: every expert, masked by the one-hot gate. Same output as the
        # training paths and it converts as is (N LceBconv2d), where LCE's
        # converter crashes on DynamicPartition and keeps the grouped path's
        # per-sample kernel as a float conv. `ebconv_export.export_model` gives
        # the form that runs one expert.
        outs = tf.stack([self._conv(x, w[n]) for n in range(self.num_experts)], axis=1)
        return tf.einsum("bnhwc,bn->bhwc", outs, phi)

    def _clip_value(self) -> float:
        return float(getattr(self.kernel_quantizer, "clip_value", 1.0) or 1.0)

    def _latent_mix(self, phi: tf.Tensor, alpha: tf.Tensor | None) -> tf.Tensor:
        """[α·]sign(Σₙ φₙ Wₙ) laid out (kh, kw, Cin/g, batch, Cout): the authors' mixing.

        The kernel quantizer's STE passes the gradient where |Σ φₙ Wₙ| ≤ clip (1), so
        ∂L/∂φₙ = ⟨∂L/∂W_s ⊙ 1[|W_k| ≤ 1], Wₙ⟩ for every expert n.
        """
        mixed = tf.einsum("bn,nhwio->hwibo", phi, self.kernel)
        w = self.kernel_quantizer(mixed) if self.kernel_quantizer is not None else mixed
        return w if alpha is None else w * alpha

    def _partition_call(self, x, w, phi, latent: bool = False, alpha=None):
        idx = tf.argmax(phi, axis=-1, output_type=tf.int32)
        parts = tf.dynamic_partition(x, idx, self.num_experts)
        positions = tf.dynamic_partition(tf.range(tf.shape(x)[0]), idx, self.num_experts)
        # x is already padded, so the conv is VALID.
        out_shape = [
            (x.shape[axis + 1] - k) // s + 1
            for axis, (k, s) in enumerate(zip(self.kernel_size, self.strides, strict=True))
        ] + [self.filters]
        outs = [self._conv_or_empty(part, w[n], out_shape) for n, part in enumerate(parts)]
        y = tf.dynamic_stitch(positions, outs)
        chosen = tf.gather(phi, idx, axis=1, batch_dims=1)
        if not latent:
            return _times_chosen(y, chosen)
        # Latent mixing: ∂L/∂φ_k = ⟨∂L/∂W_s ⊙ 1[|W_k| ≤ 1], W_k⟩·α = ⟨dy, conv(x, α·W_k·1[|W_k| ≤ 1])⟩
        # per sample (conv is linear in the kernel). Computed in the backward pass only.
        kernel = tf.stop_gradient(self.kernel)
        clipped = kernel * tf.cast(tf.abs(kernel) <= self._clip_value(), kernel.dtype)
        if alpha is not None:  # α is inside w (training): the gate term carries it too
            clipped = clipped * tf.stop_gradient(alpha)

        def chosen_term():
            terms = [
                self._conv_or_empty(part, clipped[n], out_shape) for n, part in enumerate(parts)
            ]
            return tf.dynamic_stitch(positions, terms)

        return _times_chosen_lazy(y, chosen, chosen_term)

    def _conv_or_empty(self, part, kernel, out_shape):
        # TF's CPU conv returns a wrongly shaped tensor for an empty batch (an
        # expert no sample chose), and grappler drops a fixing reshape; skip it.
        return tf.cond(
            tf.shape(part)[0] > 0,
            lambda: self._conv(part, kernel),
            lambda: tf.zeros((0, *out_shape), part.dtype),
        )

    def _grouped_call(self, x, w, phi):
        """`w`: the quantized experts (signed mixing) or a callable φ → per-sample kernels."""
        batch = tf.shape(x)[0]
        kh, kw = self.kernel_size
        cin = x.shape[-1]
        # Per-sample kernels laid out sample-major along the output axis, so that
        # group (b, j) of the batch-as-groups conv is group j of sample b.
        kernels = w(phi) if callable(w) else tf.einsum("bn,nhwio->hwibo", phi, w)
        kernels = tf.reshape(kernels, (kh, kw, cin // self.groups, batch * self.filters))
        height, width = x.shape[1], x.shape[2]
        stacked = tf.reshape(tf.transpose(x, (1, 2, 0, 3)), (1, height, width, batch * cin))
        y = self._conv(stacked, kernels)
        out_h, out_w = y.shape[1], y.shape[2]
        y = tf.reshape(y, (out_h, out_w, batch, self.filters))
        return tf.transpose(y, (2, 0, 1, 3))

    def compute_output_shape(self, input_shape):
        input_shape = tf.TensorShape(input_shape)
        dims = []
        for axis, (k, s) in enumerate(zip(self.kernel_size, self.strides, strict=True)):
            size = input_shape[axis + 1]
            if size is None:
                dims.append(None)
            elif self.padding == "same":
                dims.append(-(-size // s))
            elif self.padding == "symmetric":
                dims.append((size + 2 * (k // 2) - k) // s + 1)
            else:
                dims.append((size - k) // s + 1)
        return tf.TensorShape([input_shape[0], *dims, self.filters])

    def get_config(self):
        return {
            # Layer's config only: Conv2D's keys (activation, bias, ...) don't apply.
            **tf.keras.layers.Layer.get_config(self),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "num_experts": self.num_experts,
            "strides": self.strides,
            "padding": self.padding,
            "groups": self.groups,
            "pad_values": self.pad_values,
            "input_quantizer": lq.quantizers.serialize(self.input_quantizer),
            "kernel_quantizer": lq.quantizers.serialize(self.kernel_quantizer),
            "kernel_initializer": tf.keras.initializers.serialize(self.kernel_initializer),
            "kernel_constraint": tf.keras.constraints.serialize(self.kernel_constraint),
            "alpha_initializer": tf.keras.initializers.serialize(self.alpha_initializer),
            "use_se": self.use_se,
            "se_reduction": self.se_reduction,
            "se_layout": self.se_layout,
            "gate_activation": self.gate_activation,
            "mixing": self.mixing,
            "single_expert": self.single_expert_init,
            "implementation": self.implementation,
        }

    @classmethod
    def from_config(cls, config):
        # A config saved before the form options existed meant softmax + signed + biased SE.
        config = {**LEGACY_FORM, **config}
        return cls(**config)


# ---------------------------------------------------------------- staging
def ebconv_layers(model: tf.keras.layers.Layer) -> list[EBConv2D]:
    """Every `EBConv2D` in `model` (nested models included), in layer order."""
    return introspect.find(model, EBConv2D)


def _gated_layers(model) -> list[EBConv2D]:
    layers = [layer for layer in ebconv_layers(model) if layer.num_experts > 1]
    unbuilt = [layer.name for layer in layers if not layer.built]
    if unbuilt:
        raise ConfigError(f"EBConv2D layers {unbuilt} are not built. Fix: build the model first.")
    return layers


def set_single_expert(model: tf.keras.layers.Layer, enabled: bool) -> int:
    """Force (or free) the gate of every EBConv2D: expert 0 for every sample.

    Returns:
        How many layers were switched.
    """
    layers = _gated_layers(model)
    for layer in layers:
        layer.single_expert.assign(1.0 if enabled else 0.0)
    return len(layers)


def expand_experts(model: tf.keras.layers.Layer) -> int:
    """The expansion step: copy expert 0 into every expert and free the gate.

    After it, all experts start from the single-expert solution and the gate
    learns to specialise them (each sample trains only its chosen expert).

    Returns:
        How many layers were expanded.
    """
    layers = _gated_layers(model)
    for layer in layers:
        first = layer.kernel[0]
        layer.kernel.assign(tf.repeat(first[None], layer.num_experts, axis=0))
        layer.single_expert.assign(0.0)
    return len(layers)


def is_single_expert(model: tf.keras.layers.Layer) -> bool:
    """True if any gated EBConv2D is still forced to expert 0."""
    return any(float(layer.single_expert.numpy()) > 0.5 for layer in _gated_layers(model))


class ExpertExpansion(tf.keras.callbacks.Callback):
    """Two-phase EBConv training: single expert for `expand_at_epoch` epochs, then all experts.

    Epochs `< expand_at_epoch` run with the gate forced to expert 0; at the
    first epoch `≥ expand_at_epoch` that still finds the model in the single
    phase (also after a resume), expert 0 is copied into every expert.

    `EBConv2D` declares this schedule, so every bnn-tf training path runs it
    (`for_run`: expansion after the first third of the run). That declared form
    has `force_single=False`: it never forces the gate, it only expands a model
    that *starts* in the single-expert phase (built with `single_expert=True`,
    as `ebnet` / `ebnet_small` are by default). A model already expanded, or
    fine-tuned from one, is left alone, so the one-off, destructive copy of
    expert 0 happens once, where the paper's staging asks for it.

    Args:
        expand_at_epoch: first epoch with all experts (0-based).
        force_single: force expert 0 in the epochs before (True), or only expand
            a model that is in the single-expert phase already (False).
    """

    def __init__(self, expand_at_epoch: int, *, force_single: bool = True):
        super().__init__()
        if expand_at_epoch < 0:
            raise ConfigError(f"expand_at_epoch must be ≥ 0 (got {expand_at_epoch}).")
        self.expand_at_epoch = int(expand_at_epoch)
        self.force_single = bool(force_single)
        self.expanded_at: int | None = None

    # Set by a time-budgeted run that re-plans its length (see `EpochSchedule`).
    epoch_clock = None

    def on_epoch_begin(self, epoch, logs=None):
        at = epoch if self.epoch_clock is None else self.epoch_clock(epoch)
        if at < self.expand_at_epoch:
            if self.force_single:
                set_single_expert(self.model, True)
        elif is_single_expert(self.model):
            expand_experts(self.model)
            self.expanded_at = epoch

    def get_config(self):
        return {"expand_at_epoch": self.expand_at_epoch, "force_single": self.force_single}

    @classmethod
    def for_run(cls, *, epochs: int, steps_per_epoch: int | None = None) -> ExpertExpansion:
        """The declared staging: single expert for the first third of the run, then all experts."""
        return cls(max(1, epochs // 3) if epochs > 1 else 0, force_single=False)

    @staticmethod
    def scheduled_variables(model: tf.keras.Model) -> list[tf.Variable]:
        """Each gated layer's `single_expert` switch (1 → 0 at the expansion)."""
        return [layer.single_expert for layer in _gated_layers(model)]


# The paper's staging (one expert, then expansion) is declared, so `bnn-tf train`, every
# recipe stage and the budget planner run it; it acts only on single-expert models.
EBConv2D.declared_schedules = (ExpertExpansion,)


def expert_usage(
    model: tf.keras.Model, x: np.ndarray, *, batch_size: int = 256
) -> dict[str, np.ndarray]:
    """How often each expert wins, per EBConv2D layer, on the images `x`.

    Returns:
        `{layer name: counts}` with `counts[n]` = number of images routed to expert n.
    """
    layers = [layer for layer in ebconv_layers(model) if layer.num_experts > 1]
    if not layers:
        return {}
    probe = tf.keras.Model(model.inputs, [layer.input for layer in layers])
    counts = {layer.name: np.zeros(layer.num_experts, np.int64) for layer in layers}
    for start in range(0, len(x), batch_size):
        feats = probe(x[start : start + batch_size], training=False)
        if len(layers) == 1:
            feats = [feats]
        for layer, feat in zip(layers, feats, strict=True):
            idx = layer.select_experts(feat).numpy()
            counts[layer.name] += np.bincount(idx, minlength=layer.num_experts)
    return counts
