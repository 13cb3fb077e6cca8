"""Least-squares binary quantization (Pouransari et al., CVPR-W 2020) at bnn_small size.

| model | method | LCE binary kernels |
|---|---|---|
| `lsq_binary_small` | ls-1 / ls-2 / tree weights (1, 2, 3 bases); sign, residual or least-squares activations | yes: weight × activation bases `LceBconv2d` per conv |
"""

from __future__ import annotations

import tensorflow as tf

from bnn_tf.methods.lsq_binary import LsqActivation, LsqWeight
from bnn_tf.models._multibasis import TRAINING, activation_choice, multibasis_small
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
def lsq_binary_small(
    args, *, mode: str = "2bit", activation_levels: int = 1, activation_mode: str | None = None
) -> tf.keras.Model:
    """Least-squares binary weights (mode 1bit/2bit/tree, default 2bit) with sign activations; one
    LceBconv2d per weight basis.

    bnn_small layout with least-squares binary weight bases.

    Activations: `activation_levels` residual binary levels (1: a plain sign),
    or with `activation_mode` the paper's least-squares activation quantizer
    (1, 2 or 3 bases; batch scales in training, their moving average at
    inference, so LCE folds them: bnn_tf.methods.lsq_binary.LsqActivation).

    Args:
        mode: `"1bit"`, `"2bit"` or `"tree"` (1, 2 or 3 weight bases).
        activation_levels: residual sign levels of the activations.
        activation_mode: `"1bit"`, `"2bit"` or `"tree"` least-squares activations
            (None: residual signs).
    """
    return multibasis_small(
        args,
        kernel_quantizer=lambda: LsqWeight(mode),
        input_quantizer=activation_choice(
            "lsq_binary_small", activation_levels, "activation_mode", activation_mode, LsqActivation
        ),
    )
