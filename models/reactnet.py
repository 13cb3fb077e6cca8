"""ReActNet (Liu et al., ECCV 2020) style model at bnn_small size.

| model | method | LCE binary kernels |
|---|---|---|
| `reactnet_small` | RSign, RPReLU, channel-duplicating shortcuts | yes |
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from bnn_tf.methods.reactnet import RPReLU, RSignThreshold
from bnn_tf.models._parts import DEFAULT_WIDTHS, SHAPE, SIGN_KERNEL, residual_small
from bnn_tf.models.registry import register


@register(
    "reactnet_small",
    description="ReActNet-style: RSign threshold + sign conv, RPReLU, channel-duplicating shortcuts",
    lce_binary=True,
    default_input_shape=SHAPE,
    float_twin="bnn_small_float",
    family="reactnet",
    paper="Liu et al., ReActNet, ECCV 2020",
    training={
        "name": "adam",
        "learning_rate": 1e-3,
        "lr_schedule": {"kind": "linear", "final": 0.0},
        "why": (
            "ReActNet trains latent weights with Adam and a linearly decaying lr; "
            "lr is the library default (the paper's 5e-4 is for batch 256 on ImageNet)"
        ),
    },
)
def reactnet_small(
    *,
    input_shape: Sequence[int] = SHAPE,
    num_classes: int = 10,
    include_top: bool = True,
    stem_width: int = 32,
    widths: Sequence[int] = DEFAULT_WIDTHS,
) -> tf.keras.Model:
    """Bi-Real blocks with ReActNet's RSign (`RSignThreshold` → sign conv) and RPReLU.

    Channel growth uses ReActNet's parameter-free shortcut (the input
    concatenated with itself), so every width must double or stay equal.
    Runs on LCE binary kernels: RSign's threshold is a float Sub before the
    conv, whose input quantizer stays a plain sign.
    """
    return residual_small(
        input_shape=input_shape,
        num_classes=num_classes,
        include_top=include_top,
        stem_width=stem_width,
        widths=widths,
        block_kwargs=lambda: {
            "shortcut": "duplicate",
            **SIGN_KERNEL,
            "pre": lambda n: RSignThreshold(name=n),
            "post": lambda n: RPReLU(name=n),
        },
        name="reactnet_small",
    )
