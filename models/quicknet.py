"""QuickNetSmall / QuickNet / QuickNetLarge (larq-zoo 2.4 graphs) and a small-input QuickNet.

Bannink et al., "Larq Compute Engine: Design, Benchmark, and Deploy
State-of-the-Art Binarized Neural Networks", MLSys 2021. Blocks in
`bnn_tf.methods.quicknet`. Layer for layer larq-zoo's graph (checked against
larq-zoo's own per-layer table in `tests/test_larq_zoo_compat.py`), so
`weights="quicknet.h5"` loads a larq-zoo weight file.

| model | blocks per section | widths | params (1000 classes) |
|---|---|---|---|
| `quicknet_small` | 4, 4, 4, 4 | 32, 64, 256, 512 | 12,655,688 |
| `quicknet` | 4, 4, 4, 4 | 64, 128, 256, 512 | 13,234,088 |
| `quicknet_large` | 6, 8, 12, 6 | 64, 128, 256, 512 | 23,342,248 |
| `quicknet_small_input` | 2, 2, 2 (default) | 64, 128, 256 | 28×28 / 32×32 |
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import larq as lq
import tensorflow as tf

from bnn_tf.errors import ConfigError
from bnn_tf.methods import quicknet as qn
from bnn_tf.models._larq_zoo import (
    IMAGENET,
    SMALL_INPUT,
    finish,
    global_pool,
    named_factory,
    zoo_input,
)
from bnn_tf.models.registry import register

FAMILY = "quicknet"
PAPER = "Bannink et al., Larq Compute Engine, MLSys 2021 (QuickNet, larq-zoo 2.4)"

# larq-zoo's TrainQuickNet: Adam on binary kernels (lr 1e-2) and SGD with momentum 0.9
# on the rest (lr 0.1), both cosine-decayed after 5 warm-up epochs, 600 epochs, batch 2048.
# OptimizerConfig has one latent-weight optimizer, so Adam at 1e-2 trains everything.
TRAINING = {
    "name": "adam",
    "learning_rate": 1e-2,
    "lr_schedule": {"kind": "cosine"},
    "why": (
        "larq-zoo TrainQuickNet: Adam lr 1e-2 on binary kernels + SGD(0.9) lr 0.1 on the rest, "
        "cosine decay after 5 warm-up epochs, 600 epochs, batch 2048, clip 1.25; here one Adam"
    ),
}

SECTIONS: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "quicknet_small": ((4, 4, 4, 4), (32, 64, 256, 512)),
    "quicknet": ((4, 4, 4, 4), (64, 128, 256, 512)),
    "quicknet_large": ((6, 8, 12, 6), (64, 128, 256, 512)),
}


def build_quicknet(
    args: Any, *, section_blocks: Sequence[int], section_filters: Sequence[int]
) -> tf.keras.Model:
    """Stem → sections of residual blocks (a transition where the width changes) → head.

    Head: ReLU → global average pool → float Dense (`classifier_activation`
    "softmax" adds larq-zoo's final softmax).
    """
    if len(section_blocks) != len(section_filters):
        raise ConfigError(
            f"section_blocks {tuple(section_blocks)} and section_filters "
            f"{tuple(section_filters)} must have the same length."
        )
    inputs = zoo_input(args)
    x = qn.stem(inputs, section_filters[0])
    for s, (blocks, filters) in enumerate(zip(section_blocks, section_filters, strict=True)):
        for b in range(blocks):
            if filters != x.shape[-1]:
                x = qn.transition_block(x, filters, strides=2, name=f"section{s}_transition")
            x = qn.residual_block(x, name=f"section{s}_block{b}")
    if args.include_top:
        x = tf.keras.layers.Activation("relu", name="head_relu")(x)
        x = global_pool(x)
        x = lq.layers.QuantDense(
            args.num_classes, kernel_initializer="glorot_normal", name="logits"
        )(x)
    return finish(args, inputs, x)


def _register(name: str, label: str) -> None:
    blocks, filters = SECTIONS[name]

    @register(
        name,
        kind=IMAGENET,
        description=f"{label} (larq-zoo 2.4 graph): blocks {list(blocks)}, widths {list(filters)}",
        lce_binary=True,
        training=TRAINING,
    )
    def factory(args) -> tf.keras.Model:
        return build_quicknet(args, section_blocks=blocks, section_filters=filters)

    globals()[name] = named_factory(factory, name, label)


for _name, _label in [
    ("quicknet_small", "QuickNetSmall"), ("quicknet", "QuickNet"), ("quicknet_large", "QuickNetLarge")
]:  # fmt: skip
    _register(_name, _label)


@register(
    "quicknet_small_input",
    kind=SMALL_INPUT,
    description="QuickNet blocks for 28×28 / 32×32: stride-1 stem conv, sections [2,2,2] × 64/128/256",
    lce_binary=True,
    training=TRAINING,
)
def quicknet_small_input(
    args,
    *,
    section_blocks: Sequence[int] = (2, 2, 2),
    section_filters: Sequence[int] = (64, 128, 256),
) -> tf.keras.Model:
    """QuickNet for small images: the same stem, residual blocks and transitions.

    The stem keeps its two stride-2 convs (28 → 7), so each section halves
    again from there (7 → 4 → 2 with three sections). Binary convs: SteSign(1.25),
    `pad_values=1`, fused ReLU, BN after: every one becomes `LceBconv2d`.
    """
    return build_quicknet(args, section_blocks=section_blocks, section_filters=section_filters)
