"""BNN+ (Darabi et al., 2018) at bnn_small size: SwishSign gradients + the BNN+ regulariser.

| model | method | LCE binary kernels |
|---|---|---|
| `bnnplus_small` | SwishSign (β = 5) weights and activations, R₂ regulariser | yes |
"""

from __future__ import annotations

import larq as lq
import tensorflow as tf

from bnn_tf.methods.bnn_plus import BnnPlusRegularizer
from bnn_tf.models._parts import SMALL, plain_small
from bnn_tf.models.registry import latent_adam, register

FAMILY = "bnn_plus"
PAPER = "Darabi et al., BNN+: Improved Binary Network Training, arXiv 1812.11800"


@register(
    "bnnplus_small",
    kind=SMALL,
    lce_binary=True,
    training=latent_adam(
        "the regulariser acts on latent weights: Adam (paper), 2e-3 cosine",
        0.002,
    ),
)
def bnnplus_small(
    args,
    *,
    beta: float = 5.0,
    regularization: float = 1e-5,
    p: int = 2,
) -> tf.keras.Model:
    """BNN+: SwishSign gradient (beta 5) on weights and activations + BNN+ regulariser.

    bnn_small layout with SwishSign(β) quantizers and `λ Σ |1 − |w||^p` on the kernels."""
    return plain_small(
        args,
        conv_kwargs=lambda: {
            "input_quantizer": lq.quantizers.SwishSign(beta=beta),
            "kernel_quantizer": lq.quantizers.SwishSign(beta=beta),
            "kernel_regularizer": BnnPlusRegularizer(regularization, 1.0, p),
            "kernel_constraint": "weight_clip",
            "pad_values": 1.0,
        },
    )
