"""Self-Binarizing Networks (Lahoud et al., 2019) at bnn_small size.

| model | method | LCE binary kernels |
|---|---|---|
| `selfbin_small` | tanh(β·x) weights and activations, β annealed per epoch; sign at inference | yes |
"""

from __future__ import annotations

import tensorflow as tf

from bnn_tf.methods.self_binarizing import SelfBinarizing
from bnn_tf.models._parts import SMALL, plain_small
from bnn_tf.models.registry import latent_adam, register

FAMILY = "self_binarizing"
PAPER = "Lahoud et al., Self-Binarizing Networks, arXiv 1902.00730"


TRAINING = latent_adam("smooth tanh weights are latent reals: Adam, 2e-3 cosine", 0.002)


@register("selfbin_small", kind=SMALL, lce_binary=True, training=TRAINING)
def selfbin_small(args) -> tf.keras.Model:
    """Self-Binarizing: tanh(beta x) weights/activations, beta 1 -> 100 per epoch (declared
    schedule); sign at inference.

    bnn_small layout with `SelfBinarizing` weights and activations (binary at inference)."""
    return plain_small(
        args,
        conv_kwargs=lambda: {
            "input_quantizer": SelfBinarizing(),
            "kernel_quantizer": SelfBinarizing(),
            "kernel_constraint": "weight_clip",  # tanh(β·w) saturates beyond ±1 anyway
            "pad_values": 1.0,
        },
    )
