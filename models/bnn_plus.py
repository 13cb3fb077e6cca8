"""BNN+ (Darabi et al., 2018) at bnn_small size: SwishSign gradients + the BNN+ regulariser.

| model | method | LCE binary kernels |
|---|---|---|
| `bnnplus_small` | SwishSign (β = 5) weights and activations, R₂ regulariser | yes |
"""

from __future__ import annotations

from collections.abc import Sequence

import larq as lq
import tensorflow as tf

from bnn_tf.methods.bnn_plus import BnnPlusRegularizer
from bnn_tf.models._parts import DEFAULT_WIDTHS, SHAPE, plain_small
from bnn_tf.models.registry import register


@register(
    "bnnplus_small",
    description="BNN+: SwishSign gradient (beta 5) on weights and activations + BNN+ regulariser",
    lce_binary=True,
    default_input_shape=SHAPE,
    float_twin="bnn_small_float",
    family="bnn_plus",
    paper="Darabi et al., BNN+: Improved Binary Network Training, arXiv 1812.11800",
    training={"name": "adam", "learning_rate": 2e-3,
              "why": "the regulariser acts on latent weights: Adam (paper), 2e-3 cosine"},
)  # fmt: skip
def bnnplus_small(
    *,
    input_shape: Sequence[int] = SHAPE,
    num_classes: int = 10,
    include_top: bool = True,
    stem_width: int = 32,
    widths: Sequence[int] = DEFAULT_WIDTHS,
    beta: float = 5.0,
    regularization: float = 1e-5,
    p: int = 2,
) -> tf.keras.Model:
    """bnn_small layout with SwishSign(β) quantizers and `λ Σ |1 − |w||^p` on the kernels."""
    return plain_small(
        input_shape=input_shape,
        num_classes=num_classes,
        include_top=include_top,
        stem_width=stem_width,
        widths=widths,
        conv_kwargs=lambda: {
            "input_quantizer": lq.quantizers.SwishSign(beta=beta),
            "kernel_quantizer": lq.quantizers.SwishSign(beta=beta),
            "kernel_regularizer": BnnPlusRegularizer(regularization, 1.0, p),
            "kernel_constraint": "weight_clip",
            "pad_values": 1.0,
        },
        name="bnnplus_small",
    )
