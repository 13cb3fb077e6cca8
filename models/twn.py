"""Ternary Weight Networks (Li, Zhang & Liu, arXiv 1605.04711) at bnn_small size.

| model | method | LCE binary kernels |
|---|---|---|
| `twn_small` | ternary weights, float activations | no (float CONV_2D) |
"""

from __future__ import annotations

import larq as lq
import tensorflow as tf

from bnn_tf.models._parts import SMALL, plain_small
from bnn_tf.models.registry import latent_adam, register

FAMILY = "twn"
PAPER = "Li, Zhang & Liu, Ternary Weight Networks, arXiv 1605.04711"


TRAINING = latent_adam(
    "TWN trains latent weights (SGD + momentum in the paper; Adam + cosine here, "
    "OptimizerConfig has no SGD)"
)


@register("twn_small", kind=SMALL, lce_binary=False, training=TRAINING)
def twn_small(args) -> tf.keras.Model:
    """Ternary Weight Networks: {-1,0,+1} weights (Δ=0.7·mean|W|), float activations.

    bnn_small layout with larq's `SteTern(ternary_weight_networks=True)` kernels.

    TWN's scale α (mean of the surviving |W|) is left to the BatchNorm right
    after each conv, which absorbs any positive per-layer scale. NOT an LCE
    binary model: ternary weights with float activations convert to float
    `CONV_2D` (float speed and size).
    """
    return plain_small(
        args,
        conv_kwargs=lambda: {
            "kernel_quantizer": lq.quantizers.SteTern(ternary_weight_networks=True)
        },
    )
