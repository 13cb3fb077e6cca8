"""ABC-Net (Lin et al., NeurIPS 2017) at bnn_small size: M weight × N activation bases.

| model | method | LCE binary kernels |
|---|---|---|
| `abcnet_small` | M shifted-mean weight bases × N shifted-sign activation bases | yes: M·N `LceBconv2d` per conv |
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from bnn_tf.methods.abc_net import AbcActivation, AbcWeight
from bnn_tf.models._multibasis import TRAINING, multibasis_small
from bnn_tf.models._parts import DEFAULT_WIDTHS, SHAPE
from bnn_tf.models.registry import register


@register(
    "abcnet_small",
    description="ABC-Net: M weight × N activation binary bases per conv (default 3×3); "
    "M·N LceBconv2d each",
    lce_binary=True,
    default_input_shape=SHAPE,
    float_twin="bnn_small_float",
    family="multibit",
    paper="Lin et al., Towards Accurate Binary Convolutional Neural Network (ABC-Net), NeurIPS 2017",
    training=TRAINING,
)
def abcnet_small(
    *,
    input_shape: Sequence[int] = SHAPE,
    num_classes: int = 10,
    include_top: bool = True,
    stem_width: int = 32,
    widths: Sequence[int] = DEFAULT_WIDTHS,
    weight_bases: int = 3,
    activation_bases: int = 3,
    scale: str = "channel",
) -> tf.keras.Model:
    """bnn_small layout with ABC-Net convs: `weight_bases` × `activation_bases` binary convs each.

    Args:
        weight_bases: M (shifted-mean bases, least-squares α).
        activation_bases: N (shifted signs with learnable shifts and β).
        scale: α per `"channel"` (default here; LCE folds it for free) or per `"layer"` (paper).
    """
    return multibasis_small(
        input_shape=input_shape,
        num_classes=num_classes,
        include_top=include_top,
        stem_width=stem_width,
        widths=widths,
        kernel_quantizer=lambda: AbcWeight(weight_bases, scale),
        input_quantizer=lambda: AbcActivation(activation_bases),
        name="abcnet_small",
    )
