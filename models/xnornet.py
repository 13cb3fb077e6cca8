"""XNOR-Net (Rastegari et al., ECCV 2016) at bnn_small size.

| model | method | LCE binary kernels |
|---|---|---|
| `xnornet_small` | BN → sign → conv(α_o·sign W) → pool | yes |

XNOR-Net's α scales latent weights: it is meant for a latent-weight
optimizer (Adam); Bop sets binary weights to exactly ±1, which makes α constant.
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from bnn_tf.methods.xnor import XnorWeight
from bnn_tf.models._parts import DEFAULT_WIDTHS, SHAPE, plain_small
from bnn_tf.models.registry import register


@register(
    "xnornet_small",
    description="XNOR-Net: BN→sign→conv(α·sign W, α=mean|W| per filter)→pool; bnn_small size",
    lce_binary=True,
    default_input_shape=SHAPE,
    float_twin="bnn_small_float",
    family="xnornet",
    paper="Rastegari et al., XNOR-Net, ECCV 2016",
    training={
        "name": "adam",
        "learning_rate": 1e-3,
        "lr_schedule": {"kind": "cosine"},
        "why": (
            "XNOR-Net trains latent weights (α = mean|W| needs them; Bop makes α constant): "
            "Adam, cosine; lr is the library default (methods.md records none)"
        ),
    },
)
def xnornet_small(
    *,
    input_shape: Sequence[int] = SHAPE,
    num_classes: int = 10,
    include_top: bool = True,
    stem_width: int = 32,
    widths: Sequence[int] = DEFAULT_WIDTHS,
) -> tf.keras.Model:
    """XNOR-Net block order (BN → sign → conv → pool) with the per-filter weight scale α.

    Runs on LCE binary kernels: the input quantizer is `ste_sign` and the
    kernel freezes to ±α_o, whose α becomes LceBconv2d's output multiplier.
    """
    return plain_small(
        input_shape=input_shape,
        num_classes=num_classes,
        include_top=include_top,
        stem_width=stem_width,
        widths=widths,
        conv_kwargs=lambda: {
            "input_quantizer": "ste_sign",
            "kernel_quantizer": XnorWeight(),
            "pad_values": 1.0,
        },
        bn_before_conv=True,
        name="xnornet_small",
    )
