"""Ternary Weight Networks (Li, Zhang & Liu, arXiv 1605.04711) at bnn_small size.

| model | method | LCE binary kernels |
|---|---|---|
| `twn_small` | ternary weights, float activations | no (float CONV_2D) |
"""

from __future__ import annotations

from collections.abc import Sequence

import larq as lq
import tensorflow as tf

from bnn_tf.models._parts import DEFAULT_WIDTHS, SHAPE, plain_small
from bnn_tf.models.registry import register


@register(
    "twn_small",
    description="Ternary Weight Networks: {-1,0,+1} weights (Δ=0.7·mean|W|), float activations",
    lce_binary=False,
    default_input_shape=SHAPE,
    float_twin="bnn_small_float",
    family="twn",
    paper="Li, Zhang & Liu, Ternary Weight Networks, arXiv 1605.04711",
    training={
        "name": "adam",
        "learning_rate": 1e-3,
        "lr_schedule": {"kind": "cosine"},
        "why": (
            "TWN trains latent weights (SGD + momentum in the paper; Adam + cosine here, "
            "OptimizerConfig has no SGD)"
        ),
    },
)
def twn_small(
    *,
    input_shape: Sequence[int] = SHAPE,
    num_classes: int = 10,
    include_top: bool = True,
    stem_width: int = 32,
    widths: Sequence[int] = DEFAULT_WIDTHS,
) -> tf.keras.Model:
    """bnn_small layout with larq's `SteTern(ternary_weight_networks=True)` kernels.

    TWN's scale α (mean of the surviving |W|) is left to the BatchNorm right
    after each conv, which absorbs any positive per-layer scale. NOT an LCE
    binary model: ternary weights with float activations convert to float
    `CONV_2D` (float speed and size).
    """
    return plain_small(
        input_shape=input_shape,
        num_classes=num_classes,
        include_top=include_top,
        stem_width=stem_width,
        widths=widths,
        conv_kwargs=lambda: {
            "kernel_quantizer": lq.quantizers.SteTern(ternary_weight_networks=True)
        },
        name="twn_small",
    )
