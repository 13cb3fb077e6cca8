"""Bi-Real Net (Liu et al., ECCV 2018) at bnn_small size.

| model | method | LCE binary kernels |
|---|---|---|
| `birealnet_small` | shortcut around every binary conv | yes |

With BatchNorm right after each conv, a positive per-channel weight scale is
absorbed by BN, so the small model uses plain sign weights
(`bnn_tf.models._parts.SIGN_KERNEL`).
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from bnn_tf.models._parts import DEFAULT_WIDTHS, SHAPE, SIGN_KERNEL, residual_small
from bnn_tf.models.registry import register


@register(
    "birealnet_small",
    description="Bi-Real Net: real shortcut around every binary conv, ApproxSign activations",
    lce_binary=True,
    default_input_shape=SHAPE,
    float_twin="bnn_small_float",
    family="bireal",
    paper="Liu et al., Bi-Real Net, ECCV 2018",
    training={
        "name": "adam",
        "learning_rate": 1e-3,
        "lr_schedule": {"kind": "cosine"},
        "why": (
            "Bi-Real Net trains latent weights (weight clip): Adam, cosine; "
            "lr is the library default"
        ),
    },
)
def birealnet_small(
    *,
    input_shape: Sequence[int] = SHAPE,
    num_classes: int = 10,
    include_top: bool = True,
    stem_width: int = 32,
    widths: Sequence[int] = DEFAULT_WIDTHS,
) -> tf.keras.Model:
    """bnn_small layout made of Bi-Real blocks (real 1×1 conv shortcut where channels grow).

    ApproxSign activations; sign weights (the magnitude-aware scale is absorbed by
    the BatchNorm after each conv, see `SIGN_KERNEL`).

    Runs on LCE binary kernels (the shortcut 1×1 convs are float, as in the paper).
    """
    return residual_small(
        input_shape=input_shape,
        num_classes=num_classes,
        include_top=include_top,
        stem_width=stem_width,
        widths=widths,
        block_kwargs=lambda: {"shortcut": "conv", **SIGN_KERNEL},
        name="birealnet_small",
    )
