"""HWGQ (Cai et al., CVPR 2017) at bnn_small size: binary weights, half-wave Gaussian k-bit activations.

| model | method | LCE binary kernels |
|---|---|---|
| `hwgq_small` | sign(W) weights, HWGQ 2-bit activations | no (float CONV_2D) |
"""

from __future__ import annotations

import tensorflow as tf

from bnn_tf.methods.hwgq import Hwgq
from bnn_tf.models._parts import SMALL, plain_small
from bnn_tf.models.registry import latent_adam, register

FAMILY = "kbit"
PAPER = "Cai et al., Deep Learning with Low Precision by Half-wave Gaussian Quantization, CVPR 2017"


TRAINING = latent_adam(
    "latent weights (paper: SGD); Adam 2e-3 cosine, the methods-table setting", 0.002
)


@register("hwgq_small", kind=SMALL, lce_binary=False, training=TRAINING)
def hwgq_small(args, *, k_bit: int = 2) -> tf.keras.Model:
    """HWGQ: binary weights (sign W) + half-wave Gaussian k-bit activations (default 2); float
    kernels under LCE.

    bnn_small layout; each conv reads HWGQ(BN output) with sign(W) binary weights."""
    return plain_small(
        args,
        conv_kwargs=lambda: {
            "input_quantizer": Hwgq(k_bit),
            # The paper's α·sign(W); α is dropped because BN follows (a no-op there, see
            # docs/methods_zoo.md) and under Bop it jumps and blows the loss up (measured:
            # 2.30 → 17.0 in 8 steps with XnorWeight).
            "kernel_quantizer": "ste_sign",
            "kernel_constraint": "weight_clip",
        },
    )
