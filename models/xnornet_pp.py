"""XNOR-Net++ (Bulat & Tzimiropoulos, BMVC 2019) at bnn_small size.

| model | method | LCE binary kernels |
|---|---|---|
| `xnornet_pp_small` | conv(sign, sign) · learned Γ | yes (factorised Γ: one float MUL per layer) |
"""

from __future__ import annotations

import tensorflow as tf

from bnn_tf.methods.xnor import XnorScale
from bnn_tf.models._parts import SMALL, plain_small
from bnn_tf.models.registry import latent_adam, register

FAMILY = "xnornet"
PAPER = "Bulat & Tzimiropoulos, XNOR-Net++, BMVC 2019"


@register(
    "xnornet_pp_small",
    kind=SMALL,
    lce_binary=True,
    training=latent_adam(
        "XNOR-Net++ trains latent weights with a weight clip: Adam, cosine; lr is the library "
        "default",
    ),
)
def xnornet_pp_small(args, *, scale: str = "factorised") -> tf.keras.Model:
    """XNOR-Net++: sign convs × learned output scale Γ (factorised or per channel)

    bnn_small layout with XNOR-Net++'s learned scale Γ after each binary conv.

    Runs on LCE binary kernels. `scale="channel"` folds into the output
    multiplier (free); `"factorised"` (α⊗β⊗γ over C×H×W, the default) stays
    one float elementwise MUL per binary conv.

    Args:
        scale: `"factorised"` or `"channel"` (see `bnn_tf.methods.xnor.XnorScale`).
    """
    return plain_small(
        args,
        conv_kwargs=lambda: {
            "input_quantizer": "ste_sign",
            "kernel_quantizer": "ste_sign",
            "kernel_constraint": "weight_clip",
            "pad_values": 1.0,
        },
        after_conv=lambda n: XnorScale(scale, name=n),
    )
