"""HWGQ: the half-wave Gaussian quantizer for activations (Cai, He, Sun, Vasconcelos, CVPR 2017).

"Deep Learning with Low Precision by Half-wave Gaussian Quantization".
BatchNorm'd pre-activations are ≈ N(0, 1); ReLU keeps the positive half. HWGQ
quantizes that half-wave with the uniform k-bit quantizer that is optimal
for it (`Hwgq(k_bit)`, alias `"hwgq"`):

    Q(x) = 0 for x ≤ 0,   Q(x) = Δ* · min(round(x / Δ*), 2^k − 1) for x > 0
    Δ* = argmin_Δ E_{x∼N(0,1)} [(ReLU(x) − Q_Δ(x))²]

computed here by numerical integration (`optimal_step`): 1.224 (1 bit),
0.651 (2 bits), 0.354 (3 bits), 0.193 (4 bits) for levels iΔ with
mid-point thresholds. (The paper fits its quantizer to the half-wave
Gaussian by Lloyd's algorithm; whether its levels sit at iΔ or (i + ½)Δ
could not be re-read: *unverified*. With this parametrisation the 1-bit
level Δ* satisfies Lloyd's condition Δ = E[x | x > Δ/2], which the tests check.)
Backward: the clipped ReLU, ∂Q/∂x = 1[0 < x ≤ (2^k − 1)Δ*] (the paper's
"clipped" variant).

LCE: {0, Δ, …} activations are not sign-like; convs stay float `CONV_2D` (emulated).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import tensorflow as tf

from bnn_tf.errors import ConfigError
from bnn_tf.methods._kbit import KBitQuantizer


def _mse(step: np.ndarray, k_bit: int, x: np.ndarray, pdf: np.ndarray, dx: float) -> np.ndarray:
    top = 2**k_bit - 1
    q = step[:, None] * np.minimum(np.round(x[None] / step[:, None]), top)
    return ((x[None] - q) ** 2 * pdf[None]).sum(1) * dx


@functools.cache
def optimal_step(k_bit: int) -> float:
    """Δ* of the k-bit HWGQ: the MSE-optimal uniform step for ReLU(N(0, 1))."""
    if k_bit < 1:
        raise ConfigError(f"HWGQ k_bit must be ≥ 1 (got {k_bit}).")
    x = np.linspace(0.0, 8.0, 16001)
    dx = x[1] - x[0]
    pdf = np.exp(-0.5 * x**2) / math.sqrt(2 * math.pi)  # the negative half quantizes exactly (0)
    coarse = np.linspace(0.01, 3.0, 300)
    best = coarse[np.argmin(_mse(coarse, k_bit, x, pdf, dx))]
    fine = np.linspace(best - 0.01, best + 0.01, 401)
    return float(fine[np.argmin(_mse(fine, k_bit, x, pdf, dx))])


def hwgq(x: tf.Tensor, k_bit: int) -> tf.Tensor:
    """HWGQ forward, clipped-ReLU backward."""
    step = optimal_step(k_bit)
    top = float(2**k_bit - 1)

    @tf.custom_gradient
    def _call(x):
        q = step * tf.minimum(tf.round(tf.nn.relu(x) / step), top)

        def grad(dy):
            return dy * tf.cast((x > 0) & (x <= top * step), dy.dtype)

        return q, grad

    return _call(x)


@tf.keras.utils.register_keras_serializable(package="bnn_tf", name="hwgq")
class Hwgq(KBitQuantizer):
    r"""Half-wave Gaussian activation quantizer, k bits, step Δ* optimal for ReLU(N(0, 1)).

    Args:
        k_bit: bits (≥ 1).
    """

    def __init__(self, k_bit: int = 2, **kwargs):
        optimal_step(int(k_bit))  # validates
        super().__init__(k_bit, **kwargs)

    def call(self, inputs):
        return super().call(hwgq(inputs, self.k_bit))
