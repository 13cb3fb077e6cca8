"""DoReFa-Net (Zhou et al., arXiv 1606.06160) at bnn_small size.

| model | method | LCE binary kernels |
|---|---|---|
| `dorefa_small` | k-bit weights and activations | no (float CONV_2D) |

LCE's only quantized conv is the 1-bit × 1-bit `LceBconv2d`. A k-bit (k ≥ 2)
operand does not lower to it; the converter keeps a float `CONV_2D` on the
de-quantized values, so the model is *emulated* in float: the same accuracy as
in Keras, float speed and float size.
"""

from __future__ import annotations

from collections.abc import Sequence

import larq as lq
import tensorflow as tf

from bnn_tf.errors import ConfigError
from bnn_tf.models._parts import DEFAULT_WIDTHS, SHAPE, plain_small
from bnn_tf.models.registry import register


@register(
    "dorefa_small",
    description="DoReFa-Net k-bit weights and activations (default 2/2); float kernels under LCE",
    lce_binary=False,
    default_input_shape=SHAPE,
    float_twin="bnn_small_float",
    family="dorefa",
    paper="Zhou et al., DoReFa-Net, arXiv 1606.06160",
    training={
        "name": "adam",
        "learning_rate": 1e-3,
        "lr_schedule": {"kind": "cosine"},
        "why": "DoReFa-Net trains latent k-bit weights with Adam; cosine, library-default lr",
    },
)
def dorefa_small(
    *,
    input_shape: Sequence[int] = SHAPE,
    num_classes: int = 10,
    include_top: bool = True,
    stem_width: int = 32,
    widths: Sequence[int] = DEFAULT_WIDTHS,
    k_bit: int = 2,
) -> tf.keras.Model:
    """bnn_small layout with larq's DoReFa quantizers (activations clipped to [0, 1]).

    NOT an LCE binary model: k-bit convs convert to float `CONV_2D` on the
    de-quantized values (same outputs, float speed and size).

    Args:
        k_bit: bits of weights and activations (≥ 1; 1 is still not sign-like: {0, 1} inputs).
    """
    if k_bit < 1:
        raise ConfigError(f"k_bit must be ≥ 1 (got {k_bit}).")
    return plain_small(
        input_shape=input_shape,
        num_classes=num_classes,
        include_top=include_top,
        stem_width=stem_width,
        widths=widths,
        conv_kwargs=lambda: {
            "input_quantizer": lq.quantizers.DoReFa(k_bit=k_bit, mode="activations"),
            "kernel_quantizer": lq.quantizers.DoReFa(k_bit=k_bit, mode="weights"),
        },
        name="dorefa_small",
    )
