"""Self-Binarizing Networks (Lahoud et al., 2019) at bnn_small size.

| model | method | LCE binary kernels |
|---|---|---|
| `selfbin_small` | tanh(β·x) weights and activations, β annealed per epoch; sign at inference | yes |
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from bnn_tf.methods.self_binarizing import SelfBinarizing
from bnn_tf.models._parts import DEFAULT_WIDTHS, SHAPE, plain_small
from bnn_tf.models.registry import register


@register(
    "selfbin_small",
    description="Self-Binarizing: tanh(beta x) weights/activations, beta 1 -> 100 per epoch "
    "(declared schedule); sign at inference",
    lce_binary=True,
    default_input_shape=SHAPE,
    float_twin="bnn_small_float",
    family="self_binarizing",
    paper="Lahoud et al., Self-Binarizing Networks, arXiv 1902.00730",
    training={"name": "adam", "learning_rate": 2e-3,
              "why": "smooth tanh weights are latent reals: Adam, 2e-3 cosine"},
)  # fmt: skip
def selfbin_small(
    *,
    input_shape: Sequence[int] = SHAPE,
    num_classes: int = 10,
    include_top: bool = True,
    stem_width: int = 32,
    widths: Sequence[int] = DEFAULT_WIDTHS,
) -> tf.keras.Model:
    """bnn_small layout with `SelfBinarizing` weights and activations (binary at inference)."""
    return plain_small(
        input_shape=input_shape,
        num_classes=num_classes,
        include_top=include_top,
        stem_width=stem_width,
        widths=widths,
        conv_kwargs=lambda: {
            "input_quantizer": SelfBinarizing(),
            "kernel_quantizer": SelfBinarizing(),
            "kernel_constraint": "weight_clip",  # tanh(β·w) saturates beyond ±1 anyway
            "pad_values": 1.0,
        },
        name="selfbin_small",
    )
