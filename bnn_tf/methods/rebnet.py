"""ReBNet residual binarization: activations in M residual levels with learnable γ's.

Ghasemzadeh, Samragh, Koushanfar, "ReBNet: Residual Binarized Neural
Network", FCCM 2018.

`ResidualSign` (alias `"residual_sign"`), M levels, scales γ₁..γ_M (trained):

    e₀ = x,   sₘ = sign(eₘ₋₁),   eₘ = eₘ₋₁ − γₘ sₘ   (m = 1..M)
    A ≈ Σₘ γₘ sₘ

Each sign has larq's straight-through gradient, ∂sₘ/∂eₘ₋₁ = 1[|eₘ₋₁| ≤ 1]
(`ste_sign`); the γ's and x get the gradient of this recursion through those
estimators (for M = 2: ∂A/∂x = γ₁ g₁ + γ₂ g₂ (1 − γ₁ g₁), ∂A/∂γ₁ = s₁(1 − γ₂ g₂),
∂A/∂γ₂ = s₂, with gₘ = 1[|eₘ₋₁| ≤ 1]). γ starts at `initial_scale`·2^−(m−1)
(the levels halve, as the paper's initialisation of a residual code).
ReBNet binarises weights with one level; the models here use a per-filter
scale α = mean|W| (`lsq_weight` 1-bit, the least-squares optimum).

Every level sₘ is the sign of a float tensor, so in `MultiBasisConv2D` a
layer becomes M `LceBconv2d` (per weight basis).
"""

from __future__ import annotations

import larq as lq
import tensorflow as tf

from bnn_tf.errors import ConfigError
from bnn_tf.methods.multibasis import ActivationBases, register_alias


def residual_levels(x: tf.Tensor, gammas) -> list[tuple[tf.Tensor, tf.Tensor]]:
    """[(sₘ, γₘ)] of ReBNet's residual binarization of `x`."""
    residual = x
    levels = []
    for m in range(len(gammas)):
        s = lq.quantizers.ste_sign(residual)
        levels.append((s, gammas[m]))
        residual = residual - gammas[m] * s
    return levels


@register_alias("residual_sign")
class ResidualSign(ActivationBases):
    r"""ReBNet activation quantizer: M residual binary levels, `A ≈ Σₘ γₘ sign(eₘ₋₁)`.

    Args:
        levels: M (≥ 1).
        initial_scale: γ₁ at initialisation (γₘ = initial_scale · 2^−(m−1)).
    """

    def __init__(self, levels: int = 2, initial_scale: float = 0.8, **kwargs):
        if int(levels) < 1:
            raise ConfigError(f"ResidualSign levels must be ≥ 1 (got {levels}).")
        self.levels = int(levels)
        self.num_bases = self.levels
        self.initial_scale = float(initial_scale)
        super().__init__(**kwargs)

    def build(self, input_shape):
        init = [self.initial_scale * 0.5**m for m in range(self.levels)]
        self.gamma = self.add_weight(
            name="gamma", shape=(self.levels,), initializer=tf.keras.initializers.Constant(init)
        )
        super().build(input_shape)

    def bases(self, x, training=False):
        return residual_levels(x, tf.unstack(self.gamma))

    def get_config(self):
        return {**super().get_config(), "levels": self.levels, "initial_scale": self.initial_scale}
