"""ReBNet (Ghasemzadeh et al., FCCM 2018) at bnn_small size: residual binary activations.

| model | method | LCE binary kernels |
|---|---|---|
| `rebnet_small` | M residual activation levels (learnable γ), 1-bit weights | yes: M `LceBconv2d` per conv |
"""

from __future__ import annotations

import tensorflow as tf

from bnn_tf.methods.lsq_binary import LsqWeight
from bnn_tf.methods.rebnet import ResidualSign
from bnn_tf.models._multibasis import TRAINING, multibasis_small
from bnn_tf.models._parts import SMALL
from bnn_tf.models.registry import register

FAMILY = "multibit"
PAPER = "Ghasemzadeh et al., ReBNet: Residual Binarized Neural Network, FCCM 2018"


@register(
    "rebnet_small",
    kind=SMALL,
    lce_binary=True,
    training=TRAINING,
)
def rebnet_small(args, *, levels: int = 2) -> tf.keras.Model:
    """ReBNet: M residual binary activation levels (default 2), 1-bit weights; M LceBconv2d per
    conv.

    bnn_small layout; activations in `levels` residual binary levels, weights α·sign(W).

    Args:
        levels: M residual levels (learnable γ₁..γ_M per layer).
    """
    return multibasis_small(
        args,
        kernel_quantizer=lambda: LsqWeight("1bit"),
        input_quantizer=lambda: ResidualSign(levels),
    )
