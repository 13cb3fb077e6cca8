"""IR-Net (Qin et al., CVPR 2020): a bnn_small-size model and the CIFAR ResNet-20.

| model | method | LCE binary kernels |
|---|---|---|
| `irnet_small` | Libra-PB weights, EDE gradient, Bi-Real shortcuts | yes |
| `irnet_resnet20` | IR-Net CIFAR ResNet-20 (16/32/64, option-A shortcuts) | yes |

The EDE quantizers declare `EdeSchedule`, so every training path of bnn-tf
raises t per epoch (`bnn_tf.introspect.declared_schedules`). Libra-PB
standardises latent weights: it is meant for a latent-weight optimizer (Adam).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import tensorflow as tf

from bnn_tf.errors import ConfigError
from bnn_tf.methods.bireal import bireal_block
from bnn_tf.methods.irnet import EdeSign, LibraPBWeight
from bnn_tf.models._parts import SHAPE, SMALL, classifier_head, residual_small
from bnn_tf.models.registry import latent_adam, register

FAMILY = "irnet"
PAPER = "Qin et al., IR-Net, CVPR 2020"


def _irnet_block_kwargs(shortcut: str) -> dict[str, Any]:
    return {"shortcut": shortcut, "input_quantizer": EdeSign(), "kernel_quantizer": LibraPBWeight()}


TRAINING = latent_adam(
    "IR-Net trains latent weights (Libra-PB standardises them; Bop makes it constant) "
    "with SGD 0.1 + cosine; OptimizerConfig has no SGD, so Adam + cosine. EDE is declared"
)


@register("irnet_small", kind=SMALL, lce_binary=True, training=TRAINING)
def irnet_small(args) -> tf.keras.Model:
    """IR-Net: Libra-PB weights + EDE gradient on Bi-Real blocks; bnn_small size.

    Bi-Real-block bnn_small layout with IR-Net's quantizers (train with `EdeSchedule`).

    Runs on LCE binary kernels.
    """
    return residual_small(
        args,
        block_kwargs=lambda: _irnet_block_kwargs("conv"),
    )


@register(
    "irnet_resnet20",
    description="IR-Net CIFAR ResNet-20 (16/32/64, shortcut per binary conv, option-A shortcuts)",
    lce_binary=True,
    default_input_shape=SHAPE,
    family="irnet",
    paper="Qin et al., IR-Net, CVPR 2020 (CIFAR-10 ResNet-20: 86.5%)",
    training=latent_adam(
        "IR-Net: latent weights, SGD 0.1 + cosine in the paper; Adam + cosine here "
        "(OptimizerConfig has no SGD). EDE is declared"
    ),
)
def irnet_resnet20(
    *,
    input_shape: Sequence[int] = SHAPE,
    num_classes: int = 10,
    include_top: bool = True,
    widths: Sequence[int] = (16, 32, 64),
    blocks: int = 3,
) -> tf.keras.Model:
    """IR-Net's ResNet-20: float stem conv 16, three stages of `blocks` basic blocks.

    Each basic block is two binary 3×3 convs, each with its own shortcut (the
    IR-Net/Bi-Real layout); stage 2 and 3 start with stride 2 and an option-A
    (average-pool + zero channel pad, `bnn_tf.methods.shortcuts.ZeroPadShortcut`)
    shortcut. Deviation from the reference code: no hardtanh after each add
    (it would bound the real residual stream to [−1, 1]; the signs do not
    change, the shortcut values do). Runs on LCE binary kernels; train with
    `EdeSchedule`.

    Args:
        widths: filters of the three stages.
        blocks: basic blocks per stage (3 → ResNet-20).
    """
    if len(widths) != 3 or blocks < 1:
        raise ConfigError(
            f"irnet_resnet20 needs 3 stage widths and blocks ≥ 1 (got {widths}, {blocks})."
        )
    inputs = tf.keras.Input(shape=tuple(input_shape))
    x = tf.keras.layers.Conv2D(widths[0], 3, padding="same", use_bias=False, name="stem_conv")(
        inputs
    )
    x = tf.keras.layers.BatchNormalization(momentum=0.9, name="stem_bn")(x)
    for s, width in enumerate(widths):
        for b in range(blocks):
            for c in range(2):
                strides = 2 if (s > 0 and b == 0 and c == 0) else 1
                x = bireal_block(
                    x,
                    width,
                    strides=strides,
                    name=f"s{s + 1}b{b + 1}c{c + 1}",
                    **_irnet_block_kwargs("pad"),
                )
    return tf.keras.Model(
        inputs, classifier_head(x, num_classes, include_top), name="irnet_resnet20"
    )
