"""WRPN (Mishra et al., ICLR 2018) at bnn_small layout: widened, k-bit weights and activations.

| model | method | LCE binary kernels |
|---|---|---|
| `wrpn_small` | widths × `width_multiplier` (default 2), k-bit (default 2) | no (float CONV_2D) |
"""

from __future__ import annotations

from types import SimpleNamespace

import tensorflow as tf

from bnn_tf.errors import ConfigError
from bnn_tf.methods.wrpn import WrpnActivation, WrpnWeight
from bnn_tf.models._parts import SMALL, plain_small
from bnn_tf.models.registry import latent_adam, register

FAMILY = "kbit"
PAPER = "Mishra et al., WRPN: Wide Reduced-Precision Networks, ICLR 2018"


TRAINING = latent_adam(
    "k-bit latent weights (paper: the float baseline's recipe); Adam 2e-3 cosine", 0.002
)


@register("wrpn_small", kind=SMALL, lce_binary=False, training=TRAINING)
def wrpn_small(args, *, width_multiplier: float = 2.0, k_bit: int = 2) -> tf.keras.Model:
    """WRPN: bnn_small widened by width_multiplier (default 2) with k-bit weights and
    activations (default 2); float kernels under LCE.

    bnn_small layout with every quantized conv (and the stem) `width_multiplier` times wider.

    Args:
        width_multiplier: > 0; widths are rounded to integers (WRPN uses 2× or 3×).
        k_bit: bits of weights and activations (≥ 2).
    """
    if not width_multiplier > 0:
        raise ConfigError(f"width_multiplier must be > 0 (got {width_multiplier}).")
    wide = SimpleNamespace(
        **{
            **vars(args),
            "stem_width": max(1, round(args.stem_width * width_multiplier)),
            "widths": [max(1, round(w * width_multiplier)) for w in args.widths],
        }
    )
    return plain_small(
        wide,
        conv_kwargs=lambda: {
            "input_quantizer": WrpnActivation(k_bit),
            "kernel_quantizer": WrpnWeight(k_bit),
            # The quantizer's grid on [−1, 1] has steps of 1/(2^(k−1) − 1): Glorot's
            # |w| < 0.06 rounds every weight to 0 for k ≤ 4 (an all-zero kernel, a
            # constant network at chance), so the latent weights start spread over
            # the grid, and stay on it (the STE passes no gradient beyond ±1).
            "kernel_initializer": tf.keras.initializers.RandomUniform(-1.0, 1.0),
            "kernel_constraint": "weight_clip",
        },
    )
