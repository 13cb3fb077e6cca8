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
from bnn_tf.models._larq_zoo import finish, global_pool, zoo_input
from bnn_tf.models.registry import register

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
    *,
    section_blocks: Sequence[int],
    section_filters: Sequence[int],
    input_shape: Sequence[int | None],
    num_classes: int,
    include_top: bool,
    weights: Any = None,
    classifier_activation: str | None = None,
    name: str,
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
    inputs = zoo_input(input_shape, num_classes)
    x = qn.stem(inputs, section_filters[0])
    for s, (blocks, filters) in enumerate(zip(section_blocks, section_filters, strict=True)):
        for b in range(blocks):
            if filters != x.shape[-1]:
                x = qn.transition_block(x, filters, strides=2, name=f"section{s}_transition")
            x = qn.residual_block(x, name=f"section{s}_block{b}")
    if include_top:
        x = tf.keras.layers.Activation("relu", name="head_relu")(x)
        x = global_pool(x)
        x = lq.layers.QuantDense(num_classes, kernel_initializer="glorot_normal", name="logits")(x)
    return finish(
        inputs, x, name=name, include_top=include_top,
        classifier_activation=classifier_activation, weights=weights,
    )  # fmt: skip


def _register(name: str, label: str) -> None:
    blocks, filters = SECTIONS[name]

    @register(
        name,
        description=f"{label} (larq-zoo 2.4 graph): blocks {list(blocks)}, widths {list(filters)}",
        lce_binary=True,
        default_input_shape=(224, 224, 3),
        family="quicknet",
        paper=PAPER,
        tags=("large", "larq_zoo"),
        training=TRAINING,
    )
    def factory(
        *,
        input_shape: Sequence[int | None] = (224, 224, 3),
        num_classes: int = 1000,
        include_top: bool = True,
        weights: Any = None,
        classifier_activation: str | None = None,
    ) -> tf.keras.Model:
        return build_quicknet(
            section_blocks=blocks, section_filters=filters, input_shape=input_shape,
            num_classes=num_classes, include_top=include_top, weights=weights,
            classifier_activation=classifier_activation, name=name,
        )  # fmt: skip

    factory.__name__ = name
    factory.__doc__ = (
        f"{label}, larq-zoo 2.4's graph (keras.applications-style; logits out by default).\n\n"
        "Args:\n    input_shape: (height, width, channels).\n    num_classes: classes.\n"
        "    include_top: add ReLU → global pool → Dense.\n"
        "    weights: None (random) or the path of a larq-zoo `.h5` weight file.\n"
        '    classifier_activation: None (logits) or "softmax" (larq-zoo\'s output).\n'
    )
    globals()[name] = factory


for _name, _label in [
    ("quicknet_small", "QuickNetSmall"), ("quicknet", "QuickNet"), ("quicknet_large", "QuickNetLarge")
]:  # fmt: skip
    _register(_name, _label)


@register(
    "quicknet_small_input",
    description="QuickNet blocks for 28×28 / 32×32: stride-1 stem conv, sections [2,2,2] × 64/128/256",
    lce_binary=True,
    default_input_shape=(28, 28, 1),
    family="quicknet",
    paper=PAPER,
    training=TRAINING,
)
def quicknet_small_input(
    *,
    input_shape: Sequence[int] = (28, 28, 1),
    num_classes: int = 10,
    include_top: bool = True,
    weights: Any = None,
    section_blocks: Sequence[int] = (2, 2, 2),
    section_filters: Sequence[int] = (64, 128, 256),
) -> tf.keras.Model:
    """QuickNet for small images: the same stem, residual blocks and transitions.

    The stem keeps its two stride-2 convs (28 → 7), so each section halves
    again from there (7 → 4 → 2 with three sections). Binary convs: SteSign(1.25),
    `pad_values=1`, fused ReLU, BN after: every one becomes `LceBconv2d`.
    """
    return build_quicknet(
        section_blocks=section_blocks, section_filters=section_filters,
        input_shape=input_shape, num_classes=num_classes, include_top=include_top,
        weights=weights, name="quicknet_small_input",
    )  # fmt: skip
