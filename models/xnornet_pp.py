"""XNOR-Net++ (Bulat & Tzimiropoulos, BMVC 2019) at bnn_small size.

| model | method | LCE binary kernels |
|---|---|---|
| `xnornet_pp_small` | conv(sign, sign) · learned Γ | yes (factorised Γ: one float MUL per layer) |
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from bnn_tf.methods.xnor import XnorScale
from bnn_tf.models._parts import DEFAULT_WIDTHS, SHAPE, plain_small
from bnn_tf.models.registry import register


@register(
    "xnornet_pp_small",
    description="XNOR-Net++: sign convs × learned output scale Γ (factorised or per channel)",
    lce_binary=True,
    default_input_shape=SHAPE,
    float_twin="bnn_small_float",
    family="xnornet",
    paper="Bulat & Tzimiropoulos, XNOR-Net++, BMVC 2019",
    training={
        "name": "adam",
        "learning_rate": 1e-3,
        "lr_schedule": {"kind": "cosine"},
        "why": (
            "XNOR-Net++ trains latent weights with a weight clip: Adam, cosine; "
            "lr is the library default"
        ),
    },
)
def xnornet_pp_small(
    *,
    input_shape: Sequence[int] = SHAPE,
    num_classes: int = 10,
    include_top: bool = True,
    stem_width: int = 32,
    widths: Sequence[int] = DEFAULT_WIDTHS,
    scale: str = "factorised",
) -> tf.keras.Model:
    """bnn_small layout with XNOR-Net++'s learned scale Γ after each binary conv.

    Runs on LCE binary kernels. `scale="channel"` folds into the output
    multiplier (free); `"factorised"` (α⊗β⊗γ over C×H×W, the default) stays
    one float elementwise MUL per binary conv.

    Args:
        scale: `"factorised"` or `"channel"` (see `bnn_tf.methods.xnor.XnorScale`).
    """
    return plain_small(
        input_shape=input_shape,
        num_classes=num_classes,
        include_top=include_top,
        stem_width=stem_width,
        widths=widths,
        conv_kwargs=lambda: {
            "input_quantizer": "ste_sign",
            "kernel_quantizer": "ste_sign",
            "kernel_constraint": "weight_clip",
            "pad_values": 1.0,
        },
        after_conv=lambda n: XnorScale(scale, name=n),
        name="xnornet_pp_small",
    )
