"""ReActNet (Liu et al., ECCV 2020) style model at bnn_small size.

| model | method | LCE binary kernels |
|---|---|---|
| `reactnet_small` | RSign, RPReLU, channel-duplicating shortcuts | yes |
"""

from __future__ import annotations

import tensorflow as tf

from bnn_tf.methods.reactnet import RPReLU, RSignThreshold
from bnn_tf.models._parts import SIGN_KERNEL, SMALL, residual_small
from bnn_tf.models.registry import latent_adam, register

FAMILY = "reactnet"
PAPER = "Liu et al., ReActNet, ECCV 2020"


@register(
    "reactnet_small",
    kind=SMALL,
    lce_binary=True,
    training=latent_adam(
        "ReActNet trains latent weights with Adam and a linearly decaying lr; lr is the "
        "library default (the paper's 5e-4 is for batch 256 on ImageNet)",
        schedule="linear",
        final=0.0,
    ),
)
def reactnet_small(args) -> tf.keras.Model:
    """ReActNet-style: RSign threshold + sign conv, RPReLU, channel-duplicating shortcuts.

    Bi-Real blocks with ReActNet's RSign (`RSignThreshold` → sign conv) and RPReLU.

    Channel growth uses ReActNet's parameter-free shortcut (the input
    concatenated with itself), so every width must double or stay equal.
    Runs on LCE binary kernels: RSign's threshold is a float Sub before the
    conv, whose input quantizer stays a plain sign.
    """
    return residual_small(
        args,
        block_kwargs=lambda: {
            "shortcut": "duplicate",
            **SIGN_KERNEL,
            "pre": lambda n: RSignThreshold(name=n),
            "post": lambda n: RPReLU(name=n),
        },
    )
