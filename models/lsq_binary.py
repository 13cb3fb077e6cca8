"""Least-squares binary quantization (Pouransari et al., CVPR-W 2020) at bnn_small size.

| model | method | LCE binary kernels |
|---|---|---|
| `lsq_binary_small` | ls-1 / ls-2 / tree weights (1, 2, 3 bases), sign or residual activations | yes: bases × activation levels `LceBconv2d` per conv |
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
    "lsq_binary_small",
    description="Least-squares binary weights (mode 1bit/2bit/tree, default 2bit) with "
    "sign activations; one LceBconv2d per weight basis",
    lce_binary=True,
    default_input_shape=SHAPE,
    float_twin="bnn_small_float",
    family="multibit",
    paper="Pouransari et al., Least Squares Binary Quantization of Neural Networks, CVPR-W 2020",
    training=TRAINING,
)
def lsq_binary_small(
    *,
    input_shape: Sequence[int] = SHAPE,
    num_classes: int = 10,
    include_top: bool = True,
    stem_width: int = 32,
    widths: Sequence[int] = DEFAULT_WIDTHS,
    mode: str = "2bit",
    activation_levels: int = 1,
) -> tf.keras.Model:
    """bnn_small layout with least-squares binary weight bases.

    Activations: `activation_levels` residual binary levels (1: a plain sign).
    The paper also quantizes activations with its least-squares scales
    computed on the fly; that activation quantizer is not implemented here
    (its scales would be per-sample float ops at inference).

    Args:
        mode: `"1bit"`, `"2bit"` or `"tree"` (1, 2 or 3 weight bases).
        activation_levels: residual sign levels of the activations.
    """
    return multibasis_small(
        input_shape=input_shape,
        num_classes=num_classes,
        include_top=include_top,
        stem_width=stem_width,
        widths=widths,
        kernel_quantizer=lambda: LsqWeight(mode),
        input_quantizer=lambda: ResidualSign(activation_levels),
        name="lsq_binary_small",
    )
