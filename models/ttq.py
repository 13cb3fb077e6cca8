"""TTQ (Zhu et al., ICLR 2017) at bnn_small size: trained ternary weights, float activations.

| model | method | LCE binary kernels |
|---|---|---|
| `ttq_small` | {Wₚ, 0, −Wₙ} weights, Δ = t·max|w| | no (float CONV_2D) |
"""

from __future__ import annotations

import tensorflow as tf

from bnn_tf.methods.ttq import TtqWeight
from bnn_tf.models._parts import SMALL, plain_small
from bnn_tf.models.registry import latent_adam, register

FAMILY = "ternary"
PAPER = "Zhu et al., Trained Ternary Quantization, ICLR 2017"


TRAINING = latent_adam("the paper trains latent weights and Wp/Wn with Adam", 0.002)


@register("ttq_small", kind=SMALL, lce_binary=False, training=TRAINING)
def ttq_small(args, *, threshold: float = 0.05) -> tf.keras.Model:
    """TTQ: trained ternary weights {Wp, 0, -Wn} (t = 0.05), float activations; float kernels under
    LCE.

    bnn_small layout with TTQ kernels and float activations (emulated under LCE)."""
    return plain_small(
        args,
        conv_kwargs=lambda: {"kernel_quantizer": TtqWeight(threshold)},
    )
