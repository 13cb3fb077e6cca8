"""TTQ (Zhu et al., ICLR 2017) at bnn_small size: trained ternary weights, float activations.

| model | method | LCE binary kernels |
|---|---|---|
| `ttq_small` | {Wₚ, 0, −Wₙ} weights, Δ = t·max|w| | no (float CONV_2D) |
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from bnn_tf.methods.ttq import TtqWeight
from bnn_tf.models._parts import DEFAULT_WIDTHS, SHAPE, plain_small
from bnn_tf.models.registry import register


@register(
    "ttq_small",
    description="TTQ: trained ternary weights {Wp, 0, -Wn} (t = 0.05), float activations; "
    "float kernels under LCE",
    lce_binary=False,
    default_input_shape=SHAPE,
    float_twin="bnn_small_float",
    family="ternary",
    paper="Zhu et al., Trained Ternary Quantization, ICLR 2017",
    training={"name": "adam", "learning_rate": 2e-3,
              "why": "the paper trains latent weights and Wp/Wn with Adam"},
)  # fmt: skip
def ttq_small(
    *,
    input_shape: Sequence[int] = SHAPE,
    num_classes: int = 10,
    include_top: bool = True,
    stem_width: int = 32,
    widths: Sequence[int] = DEFAULT_WIDTHS,
    threshold: float = 0.05,
) -> tf.keras.Model:
    """bnn_small layout with TTQ kernels and float activations (emulated under LCE)."""
    return plain_small(
        input_shape=input_shape,
        num_classes=num_classes,
        include_top=include_top,
        stem_width=stem_width,
        widths=widths,
        conv_kwargs=lambda: {"kernel_quantizer": TtqWeight(threshold)},
        name="ttq_small",
    )
