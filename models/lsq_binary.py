"""Least-squares binary quantization (Pouransari et al., CVPR-W 2020) at bnn_small size.

| model | method | LCE binary kernels |
|---|---|---|
| `lsq_binary_small` | ls-1 / ls-2 / tree weights (1, 2, 3 bases), sign or residual activations | yes: bases × activation levels `LceBconv2d` per conv |
"""

from __future__ import annotations

import tensorflow as tf

from bnn_tf.methods.lsq_binary import LsqWeight
from bnn_tf.methods.rebnet import ResidualSign
from bnn_tf.models._multibasis import TRAINING, multibasis_small
from bnn_tf.models._parts import SMALL
from bnn_tf.models.registry import register

FAMILY = "multibit"
PAPER = "Pouransari et al., Least Squares Binary Quantization of Neural Networks, CVPR-W 2020"


@register(
    "lsq_binary_small",
    kind=SMALL,
    lce_binary=True,
    training=TRAINING,
)
def lsq_binary_small(args, *, mode: str = "2bit", activation_levels: int = 1) -> tf.keras.Model:
    """Least-squares binary weights (mode 1bit/2bit/tree, default 2bit) with sign activations; one
    LceBconv2d per weight basis.

    bnn_small layout with least-squares binary weight bases.

    Activations: `activation_levels` residual binary levels (1: a plain sign).
    The paper also quantizes activations with its least-squares scales
    computed on the fly; that activation quantizer is not implemented here
    (its scales would be per-sample float ops at inference).

    Args:
        mode: `"1bit"`, `"2bit"` or `"tree"` (1, 2 or 3 weight bases).
        activation_levels: residual sign levels of the activations.
    """
    return multibasis_small(
        args,
        kernel_quantizer=lambda: LsqWeight(mode),
        input_quantizer=lambda: ResidualSign(activation_levels),
    )
