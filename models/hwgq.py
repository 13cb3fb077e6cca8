"""HWGQ (Cai et al., CVPR 2017) at bnn_small size: binary weights, half-wave Gaussian k-bit activations.

| model | method | LCE binary kernels |
|---|---|---|
| `hwgq_small` | sign(W) weights, HWGQ 2-bit activations | no (float CONV_2D) |
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from bnn_tf.methods.hwgq import Hwgq
from bnn_tf.models._parts import DEFAULT_WIDTHS, SHAPE, plain_small
from bnn_tf.models.registry import register


@register(
    "hwgq_small",
    description="HWGQ: binary weights (sign W) + half-wave Gaussian k-bit activations "
    "(default 2); float kernels under LCE",
    lce_binary=False,
    default_input_shape=SHAPE,
    float_twin="bnn_small_float",
    family="kbit",
    paper="Cai et al., Deep Learning with Low Precision by Half-wave Gaussian Quantization, CVPR 2017",
    training={"name": "adam", "learning_rate": 2e-3,
              "why": "latent weights (paper: SGD); Adam 2e-3 cosine, the methods-table setting"},
)  # fmt: skip
def hwgq_small(
    *,
    input_shape: Sequence[int] = SHAPE,
    num_classes: int = 10,
    include_top: bool = True,
    stem_width: int = 32,
    widths: Sequence[int] = DEFAULT_WIDTHS,
    k_bit: int = 2,
) -> tf.keras.Model:
    """bnn_small layout; each conv reads HWGQ(BN output) with sign(W) binary weights."""
    return plain_small(
        input_shape=input_shape,
        num_classes=num_classes,
        include_top=include_top,
        stem_width=stem_width,
        widths=widths,
        conv_kwargs=lambda: {
            "input_quantizer": Hwgq(k_bit),
            # The paper's α·sign(W); α is dropped because BN follows (a no-op there, see
            # docs/methods_zoo.md) and under Bop it jumps and blows the loss up (measured:
            # 2.30 → 17.0 in 8 steps with XnorWeight).
            "kernel_quantizer": "ste_sign",
            "kernel_constraint": "weight_clip",
        },
        name="hwgq_small",
    )
