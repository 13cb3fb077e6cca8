"""Multi-basis binarization: one k-bit conv as M·N binary convs, each an LCE `LceBconv2d`.

A weight approximated by M binary bases and an activation by N,

    W ≈ Σᵢ αᵢ Bᵢ,   A ≈ Σⱼ βⱼ Hⱼ,   Bᵢ, Hⱼ ∈ {−1, +1},

turn one convolution into a sum of M·N binary ones:

    conv(A, W) ≈ Σᵢ Σⱼ αᵢ βⱼ · conv(Hⱼ, Bᵢ).

`MultiBasisConv2D` computes exactly that right-hand side, term by term, with
the weight bases from a `WeightBases` quantizer (ABC-Net's shifted means,
least-squares binary quantization) and the activation bases from an
`ActivationBases` quantizer (ABC-Net's shifted signs, ReBNet's residual
levels). Every term is written the way LCE 0.16 recognises a binary conv
(docs/lce.md): its input is `sign(·)` of a float tensor, padded with +1
("SAME" with `pad_values=1`) or not at all ("VALID"); its kernel is ±1 and
constant after freezing; the scale αᵢβⱼ is a constant per-channel Mul after
the single-use conv, which LCE folds into the conv's output multiplier. So
the converted model holds M·N `LceBconv2d` per layer, their float outputs
summed by M·N − 1 ADDs (measured: tests/test_multibit.py).

Padding: each basis is padded with +1, so the padded activation of the sum
is Σⱼ βⱼ (not 0): the same function in Keras and in LCE, and the cheap path.

Gradients: each Bᵢ passes its gradient straight through to the latent
weight (identity), so ∂C/∂W = Σᵢ ∂C/∂Bᵢ where ∂C/∂Bᵢ already carries αᵢ (the
ABC-Net paper's ∂C/∂W = Σᵢ αᵢ ∂C/∂Bᵢ for the unscaled conv). The scales αᵢ
are closed-form functions of W and carry no gradient. The activation
quantizers define their own (straight-through) gradients and learnable
scales βⱼ get the exact gradient of the sum.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import larq as lq
import tensorflow as tf
from larq.quantizers import _BaseQuantizer

from bnn_tf.errors import ConfigError

Bases = list[tuple[tf.Tensor, tf.Tensor]]


@tf.custom_gradient
def identity_sign(x: tf.Tensor) -> tf.Tensor:
    """sign(x) ∈ {−1, +1} (sign(0) = +1) forward; identity straight-through gradient."""

    def grad(dy):
        return dy

    return lq.math.sign(x), grad


def straight_through(
    x: tf.Tensor, value: tf.Tensor, gradient: tf.Tensor | None = None
) -> tf.Tensor:
    """`value` forward (exactly); backward `dy · gradient` to `x` (identity STE if None).

    `gradient` (broadcasting against x) lets a quantizer whose paper defines the
    straight-through gradient of the *sum* Σₖ vₖ Bₖ, not of each basis, split it
    over its bases (LQ-Net: ∂Q/∂x = 1, so each basis passes 1/Σₖ|vₖ|).
    """
    scale = None if gradient is None else tf.stop_gradient(gradient)

    @tf.custom_gradient
    def _call(x):
        def grad(dy):
            return dy if scale is None else dy * tf.cast(scale, dy.dtype)

        return tf.identity(tf.stop_gradient(value)), grad

    return _call(x)


def least_squares_scales(
    w: tf.Tensor, bases: Sequence[tf.Tensor], axes: Sequence[int], ridge: float = 1e-6
) -> tf.Tensor:
    """α = argmin ‖w − Σᵢ αᵢ Bᵢ‖² over each group (reduced over `axes`); shape (M, *group).

    Solves the normal equations (BᵀB) α = Bᵀw per group. A tiny ridge term
    (`ridge` · n) keeps the system solvable when two bases coincide (the
    minimum-norm-like split of the scale between them then gives the same
    approximation). No gradient flows through α.
    """
    axes = list(axes)
    m = len(bases)
    stacked = tf.stack(bases)  # (M, *w.shape)
    keep = [a for a in range(len(w.shape)) if a not in axes]
    # Move the reduced axes first and flatten them: (M, n, G). n may be unknown (a batch).
    perm = axes + keep
    b = tf.transpose(stacked, [0, *[p + 1 for p in perm]])
    wt = tf.transpose(w, perm)
    group_shape = [int(w.shape[a]) for a in keep]
    g = 1
    for d in group_shape:
        g *= d
    b = tf.reshape(b, (m, -1, g))
    wt = tf.reshape(wt, (-1, g))
    n = tf.cast(tf.shape(wt)[0], w.dtype)
    gram = tf.einsum("ing,jng->gij", b, b) + ridge * n * tf.eye(m, dtype=w.dtype)
    rhs = tf.einsum("ing,ng->gi", b, wt)[..., None]
    alpha = tf.linalg.solve(gram, rhs)[..., 0]  # (G, M)
    alpha = tf.reshape(tf.transpose(alpha), (m, *group_shape))
    return tf.stop_gradient(alpha)


class _SumOfBases(_BaseQuantizer):
    """A larq quantizer that writes its input as Σ scale·basis with ±1 bases."""

    num_bases: int = 1

    def bases(self, x: tf.Tensor, training: bool = False) -> Bases:
        """[(basis, scale)]; `training`: use batch statistics, update state (LQ-Net's basis)."""
        raise NotImplementedError

    def call(self, inputs, training=None):
        if training is None:
            training = tf.keras.backend.learning_phase()
        return super().call(tf.add_n([s * b for b, s in self.bases(inputs, training=training)]))

    @property
    def non_trainable_weights(self):
        # larq's _BaseQuantizer reports none (to hide its flip-ratio metric's variables), so
        # LQ-Net's basis and the moving scales were neither saved nor copied by set_weights
        # (a rebuilt lqnet_small then quantized with its initial basis). Ours are kept.
        return list(self._non_trainable_weights)


class WeightBases(_SumOfBases):
    """Base class: a kernel quantizer that writes `W ≈ Σᵢ αᵢ Bᵢ` with ±1 bases.

    Subclasses implement `bases(w, training) -> [(Bᵢ, αᵢ)]` with αᵢ broadcastable
    to the kernel's output axis (shape (C_out,) per channel, or () per layer).
    Calling the quantizer returns the approximation Σᵢ αᵢ Bᵢ (usable as a
    plain larq `kernel_quantizer`, then emulated in float by LCE).
    """


class ActivationBases(_SumOfBases):
    """Base class: an input quantizer that writes `A ≈ Σⱼ βⱼ Hⱼ` with ±1 bases.

    Subclasses implement `bases(x, training) -> [(Hⱼ, βⱼ)]`, each Hⱼ = sign(float
    tensor) so LCE lowers it to `LceQuantize`, and βⱼ a scalar.
    """


_ALIASES: dict[str, type] = {}


def register_alias(name: str):
    """Class decorator: make `name` resolve in `get_quantizer` (and register with Keras)."""

    def decorator(cls):
        cls = tf.keras.utils.register_keras_serializable(package="bnn_tf", name=name)(cls)
        _ALIASES[name] = cls
        return cls

    return decorator


def get_quantizer(identifier: Any, kind: type) -> Any:
    """A `kind` quantizer from an instance, a registered alias (`"abc_weight"`) or a config dict."""
    if isinstance(identifier, kind):
        return identifier
    if isinstance(identifier, str):
        cls = _ALIASES.get(identifier.split(">")[-1])
        if cls is None or not issubclass(cls, kind):
            names = sorted(n for n, c in _ALIASES.items() if issubclass(c, kind))
            raise ConfigError(
                f"Unknown {kind.__name__} quantizer {identifier!r}. Fix: use one of {names} "
                "or pass a quantizer object."
            )
        return cls()
    if isinstance(identifier, dict):
        q = tf.keras.utils.deserialize_keras_object(identifier)
        if isinstance(q, kind):
            return q
    raise ConfigError(
        f"{identifier!r} is not a {kind.__name__} quantizer. Fix: pass an instance of a "
        f"{kind.__name__} subclass (e.g. from bnn_tf.methods.abc_net) or its alias."
    )


@tf.keras.utils.register_keras_serializable(package="bnn_tf")
class MultiBasisConv2D(tf.keras.layers.Layer):
    r"""`y = Σᵢ Σⱼ αᵢ βⱼ · conv(Hⱼ(x), Bᵢ(W))`: M·N binary convs, each an LCE `LceBconv2d`.

    Args:
        filters, kernel_size, strides: as `Conv2D` (NHWC, no groups, no dilation).
        padding: `"same"` (each basis padded with +1: LCE's fast path) or `"valid"`.
        kernel_quantizer: a `WeightBases` (instance or alias, e.g. `"abc_weight"`).
        input_quantizer: an `ActivationBases` (instance or alias, e.g. `"abc_activation"`).
        kernel_initializer, kernel_regularizer, kernel_constraint: for the latent kernel W.

    The latent kernel W is real-valued (train it with Adam, not Bop: the
    bases are functions of its real values). No bias: put BatchNorm after it.
    """

    def __init__(
        self,
        filters: int,
        kernel_size: int | Sequence[int],
        strides: int | Sequence[int] = 1,
        padding: str = "same",
        *,
        kernel_quantizer: Any = "abc_weight",
        input_quantizer: Any = "abc_activation",
        kernel_initializer: Any = "glorot_uniform",
        kernel_regularizer: Any = None,
        kernel_constraint: Any = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if padding not in ("same", "valid"):
            raise ConfigError(
                f"MultiBasisConv2D padding must be 'same' or 'valid' (got {padding!r})."
            )
        self.filters = int(filters)
        self.kernel_size = (
            tuple(kernel_size) if not isinstance(kernel_size, int) else (kernel_size,) * 2
        )
        self.strides = tuple(strides) if not isinstance(strides, int) else (strides,) * 2
        self.padding = padding
        self.kernel_quantizer = get_quantizer(kernel_quantizer, WeightBases)
        self.input_quantizer = get_quantizer(input_quantizer, ActivationBases)
        self.kernel_initializer = tf.keras.initializers.get(kernel_initializer)
        self.kernel_regularizer = tf.keras.regularizers.get(kernel_regularizer)
        self.kernel_constraint = tf.keras.constraints.get(kernel_constraint)

    @property
    def num_binary_convs(self) -> int:
        """M·N: the `LceBconv2d` ops this layer becomes."""
        return self.kernel_quantizer.num_bases * self.input_quantizer.num_bases

    def build(self, input_shape):
        input_shape = tf.TensorShape(input_shape)
        if input_shape.rank != 4 or input_shape[-1] is None:
            raise ConfigError(
                f"MultiBasisConv2D expects NHWC inputs with known channels, got {input_shape}."
            )
        self.kernel = self.add_weight(
            name="kernel",
            shape=(*self.kernel_size, int(input_shape[-1]), self.filters),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        # Their shifts/scales/bases state: bases() bypasses __call__, which would build them.
        if not self.input_quantizer.built:
            self.input_quantizer.build(input_shape)
        if not self.kernel_quantizer.built:
            self.kernel_quantizer.build(self.kernel.shape)
        super().build(input_shape)

    def _paddings(self, shape: tf.TensorShape) -> list[list[int]] | None:
        if self.padding == "valid":
            return None
        pads = [[0, 0]]
        for size, k, s in zip(shape[1:3], self.kernel_size, self.strides, strict=True):
            if size is None:
                if s != 1:
                    raise ConfigError(
                        "MultiBasisConv2D with strides > 1 and 'same' padding needs a static "
                        "input height and width. Fix: give the model a fixed input_shape."
                    )
                total = k - 1
            else:
                total = max((-(-int(size) // s) - 1) * s + k - int(size), 0)
            pads.append([total // 2, total - total // 2])
        return [*pads, [0, 0]]

    def call(self, inputs, training=None):
        if training is None:
            training = tf.keras.backend.learning_phase()
        weight_bases = self.kernel_quantizer.bases(self.kernel, training=training)
        paddings = self._paddings(inputs.shape)
        terms = []
        for h, beta in self.input_quantizer.bases(inputs, training=training):
            if paddings is not None:
                # +1 padding: LCE's bitpacked fast path (docs/lce.md, rule 4).
                h = tf.pad(h, paddings, constant_values=1.0)
            for b, alpha in weight_bases:
                y = tf.nn.conv2d(h, b, strides=(1, *self.strides, 1), padding="VALID")
                terms.append(y * (alpha * beta))
        return tf.add_n(terms) if len(terms) > 1 else terms[0]

    def effective_kernel(self) -> tf.Tensor:
        """Σᵢ αᵢ Bᵢ: the kernel the bases approximate."""
        return self.kernel_quantizer(self.kernel)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "padding": self.padding,
            "kernel_quantizer": tf.keras.utils.serialize_keras_object(self.kernel_quantizer),
            "input_quantizer": tf.keras.utils.serialize_keras_object(self.input_quantizer),
            "kernel_initializer": tf.keras.initializers.serialize(self.kernel_initializer),
            "kernel_regularizer": tf.keras.regularizers.serialize(self.kernel_regularizer),
            "kernel_constraint": tf.keras.constraints.serialize(self.kernel_constraint),
        }
