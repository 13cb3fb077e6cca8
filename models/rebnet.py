"""ReBNet (Ghasemzadeh et al., FCCM 2018) at bnn_small size: residual binary activations.

| model | method | LCE binary kernels |
|---|---|---|
| `rebnet_small` | M residual activation levels (learnable γ), 1-bit weights | yes: M `LceBconv2d` per conv |
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from bnn_tf.methods.lsq_binary import LsqWeight
from bnn_tf.methods.rebnet import ResidualSign
from bnn_tf.models._multibasis import TRAINING, multibasis_small
from bnn_tf.models._parts import DEFAULT_WIDTHS, SHAPE
from bnn_tf.models.registry import register


@register(
    "rebnet_small",
    description="ReBNet: M residual binary activation levels (default 2), 1-bit weights; "
    "M LceBconv2d per conv",
    lce_binary=True,
    default_input_shape=SHAPE,
    float_twin="bnn_small_float",
    family="multibit",
    paper="Ghasemzadeh et al., ReBNet: Residual Binarized Neural Network, FCCM 2018",
    training=TRAINING,
)
def rebnet_small(
    *,
    input_shape: Sequence[int] = SHAPE,
    num_classes: int = 10,
    include_top: bool = True,
    stem_width: int = 32,
    widths: Sequence[int] = DEFAULT_WIDTHS,
    levels: int = 2,
) -> tf.keras.Model:
    """bnn_small layout; activations in `levels` residual binary levels, weights α·sign(W).

    Args:
        levels: M residual levels (learnable γ₁..γ_M per layer).
    """
    return multibasis_small(
        input_shape=input_shape,
        num_classes=num_classes,
        include_top=include_top,
        stem_width=stem_width,
        widths=widths,
        kernel_quantizer=lambda: LsqWeight("1bit"),
        input_quantizer=lambda: ResidualSign(levels),
        name="rebnet_small",
    )
