"""BinaryDenseNet 28 / 37 / 37-dilated / 45 (larq-zoo 2.4 graphs) and a small-input variant.

Bethge, Yang, Bornstein, Meinel: "Back to Simplicity: How to Train Accurate
BNNs from Scratch?", arXiv 1906.08637 (2019). Blocks and the from-scratch
recipe (`FROM_SCRATCH`, registered as these models' `training`) in
`bnn_tf.methods.binary_densenet`.

| model | dense layers per stage | reductions | dilation |
|---|---|---|---|
| `binary_densenet28` | 6, 6, 6, 5 | 2.7, 2.7, 2.2 | 1, 1, 1, 1 |
| `binary_densenet37` | 6, 8, 12, 6 | 3.3, 3.3, 4 | 1, 1, 1, 1 |
| `binary_densenet37_dilated` | 6, 8, 12, 6 | 3.3, 3.3, 4 | 1, 1, 2, 4 |
| `binary_densenet45` | 6, 12, 14, 8 | 2.7, 3.3, 4 | 1, 1, 1, 1 |
| `binary_densenet_small` | 3, 3, 3 (default) | 2.7, 2.7 | 1, 1, 1 |

Inputs below 50 pixels get larq-zoo's small stem (one Conv3×3, no pooling);
larger ones the 7×7/2 conv → BN → ReLU → MaxPool 3×3/2 stem.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import tensorflow as tf

from bnn_tf.errors import ConfigError
from bnn_tf.methods import binary_densenet as bdn
from bnn_tf.models._larq_zoo import (
    IMAGENET,
    SMALL_INPUT,
    bethge_stem,
    finish,
    global_pool,
    named_factory,
    zoo_input,
)
from bnn_tf.models.registry import register

FAMILY = "binary_densenet"
PAPER = "Bethge et al., Back to Simplicity: How to Train Accurate BNNs from Scratch?, 2019"


@dataclass(frozen=True)
class DenseNetConfig:
    layers: tuple[int, ...]
    reduction: tuple[float, ...]
    dilation_rate: tuple[int, ...]
    learning_rate: float = 4e-3


CONFIGS: dict[str, DenseNetConfig] = {
    "binary_densenet28": DenseNetConfig((6, 6, 6, 5), (2.7, 2.7, 2.2), (1, 1, 1, 1)),
    "binary_densenet37": DenseNetConfig((6, 8, 12, 6), (3.3, 3.3, 4), (1, 1, 1, 1)),
    "binary_densenet37_dilated": DenseNetConfig((6, 8, 12, 6), (3.3, 3.3, 4), (1, 1, 2, 4)),
    "binary_densenet45": DenseNetConfig((6, 12, 14, 8), (2.7, 3.3, 4), (1, 1, 1, 1), 8e-3),
}


def build_binary_densenet(
    config: DenseNetConfig,
    args: Any,
    *,
    initial_filters: int = 64,
    growth_rate: int = bdn.GROWTH_RATE,
) -> tf.keras.Model:
    """Stem → stages of binary dense layers joined by float transitions → BN → ReLU → head."""
    if not (len(config.layers) == len(config.dilation_rate) == len(config.reduction) + 1):
        raise ConfigError(
            "BinaryDenseNet needs one dilation per stage and one reduction per transition "
            f"(got {len(config.layers)} stages, {len(config.dilation_rate)} dilations, "
            f"{len(config.reduction)} reductions)."
        )
    inputs = zoo_input(args)
    x = bethge_stem(inputs, initial_filters)
    for stage, count in enumerate(config.layers):
        for i in range(count):
            x = bdn.dense_layer(
                x, growth_rate=growth_rate, dilation_rate=config.dilation_rate[stage],
                name=f"stage{stage}_dense{i}",
            )  # fmt: skip
        if stage < len(config.layers) - 1:
            x = bdn.transition(
                x, reduction=config.reduction[stage],
                pool=config.dilation_rate[stage + 1] == 1, name=f"transition{stage}",
            )  # fmt: skip
    x = tf.keras.layers.BatchNormalization(
        momentum=bdn.BN_MOMENTUM, epsilon=bdn.BN_EPSILON, name="final_bn"
    )(x)
    x = tf.keras.layers.Activation("relu", name="final_relu")(x)
    if args.include_top:
        x = global_pool(x)
        x = tf.keras.layers.Dense(args.num_classes, kernel_initializer="he_normal", name="logits")(
            x
        )
    return finish(args, inputs, x)


def _training(config: DenseNetConfig) -> dict:
    return {**bdn.FROM_SCRATCH, "learning_rate": config.learning_rate}


def _register(name: str, label: str) -> None:
    config = CONFIGS[name]

    @register(
        name,
        kind=IMAGENET,
        description=f"{label} (larq-zoo 2.4 graph): dense layers {list(config.layers)}, "
        f"reductions {list(config.reduction)}, dilations {list(config.dilation_rate)}",
        lce_binary=True,
        training=_training(config),
    )
    def factory(args) -> tf.keras.Model:
        return build_binary_densenet(config, args)

    globals()[name] = named_factory(factory, name, label)


for _name, _label in [
    ("binary_densenet28", "BinaryDenseNet28"), ("binary_densenet37", "BinaryDenseNet37"),
    ("binary_densenet37_dilated", "BinaryDenseNet37Dilated"),
    ("binary_densenet45", "BinaryDenseNet45"),
]:  # fmt: skip
    _register(_name, _label)

SMALL_CONFIG = DenseNetConfig((3, 3, 3), (2.7, 2.7), (1, 1, 1))


@register(
    "binary_densenet_small", kind=SMALL_INPUT, lce_binary=True, training=_training(SMALL_CONFIG)
)
def binary_densenet_small(
    args,
    *,
    layers: Sequence[int] = SMALL_CONFIG.layers,
    reduction: Sequence[float] = SMALL_CONFIG.reduction,
    growth_rate: int = bdn.GROWTH_RATE,
) -> tf.keras.Model:
    """BinaryDenseNet for 28×28 / 32×32: Conv3×3 stem, 3 stages × 3 dense layers (g=64).

    larq-zoo's small-input stem (one float Conv3×3, no pooling). Same dense layers
    (BN → sign → BConv3×3 → concat) and transitions (BN → MaxPool 2 → ReLU → Conv1×1),
    fewer stages: 28 → 14 → 7 with three stages.
    """
    config = DenseNetConfig(tuple(layers), tuple(reduction), (1,) * len(layers))
    return build_binary_densenet(config, args, growth_rate=growth_rate)
