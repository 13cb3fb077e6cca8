"""WRPN (Mishra et al., ICLR 2018) at bnn_small layout: widened, k-bit weights and activations.

| model | method | LCE binary kernels |
|---|---|---|
| `wrpn_small` | widths × `width_multiplier` (default 2), k-bit (default 2) | no (float CONV_2D) |
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from bnn_tf.errors import ConfigError
from bnn_tf.methods.wrpn import WrpnActivation, WrpnWeight
from bnn_tf.models._parts import DEFAULT_WIDTHS, SHAPE, plain_small
from bnn_tf.models.registry import register


@register(
    "wrpn_small",
    description="WRPN: bnn_small widened by width_multiplier (default 2) with k-bit weights and "
    "activations (default 2); float kernels under LCE",
    lce_binary=False,
    default_input_shape=SHAPE,
    float_twin="bnn_small_float",
    family="kbit",
    paper="Mishra et al., WRPN: Wide Reduced-Precision Networks, ICLR 2018",
    training={"name": "adam", "learning_rate": 2e-3,
              "why": "k-bit latent weights (paper: the float baseline's recipe); Adam 2e-3 cosine"},
)  # fmt: skip
def wrpn_small(
    *,
    input_shape: Sequence[int] = SHAPE,
    num_classes: int = 10,
    include_top: bool = True,
    stem_width: int = 32,
    widths: Sequence[int] = DEFAULT_WIDTHS,
    width_multiplier: float = 2.0,
    k_bit: int = 2,
) -> tf.keras.Model:
    """bnn_small layout with every quantized conv (and the stem) `width_multiplier` times wider.

    Args:
        width_multiplier: > 0; widths are rounded to integers (WRPN uses 2× or 3×).
        k_bit: bits of weights and activations (≥ 2).
    """
    if not width_multiplier > 0:
        raise ConfigError(f"width_multiplier must be > 0 (got {width_multiplier}).")
    wide = [max(1, round(w * width_multiplier)) for w in widths]
    return plain_small(
        input_shape=input_shape,
        num_classes=num_classes,
        include_top=include_top,
        stem_width=max(1, round(stem_width * width_multiplier)),
        widths=wide,
        conv_kwargs=lambda: {
            "input_quantizer": WrpnActivation(k_bit),
            "kernel_quantizer": WrpnWeight(k_bit),
        },
        name="wrpn_small",
    )
