"""MeliusNet 22 / 29 / 42 / 59 / A / B / C (224×224) and a small-input variant.

Bethge, Bartz, Yang, Meinel: "MeliusNet: An Improved Network Architecture for
Binary Neural Networks", WACV 2021. Blocks and the LCE-oriented layout are in
`bnn_tf.methods.melius`; this module only holds the published configurations:

| config | blocks per stage | transition widths | transition groups | final width | size (paper) |
|---|---|---|---|---|---|
| 22 | 4, 5, 4, 4   | 160, 224, 256 | 1 | 512  | 3.88 MB  |
| 29 | 4, 6, 8, 6   | 128, 192, 256 | 1 | 640  | 5.07 MB  |
| 42 | 5, 8, 14, 10 | 160, 256, 416 | 1 | 1056 | 10.1 MB  |
| 59 | 6, 12, 24, 12| 192, 320, 544 | 1 | 1312 | 17.39 MB |
| A  | 4, 5, 5, 6   | 160, 256, 288 | 4 + shuffle | 672 | 4.05 MB |
| B  | 4, 6, 8, 6   | 160, 224, 320 | 2 + shuffle | 704 | 5.0 MB  |
| C  | 3, 5, 10, 6  | 128, 192, 288 | 4 + shuffle | 672 | 4.46 MB |

Every configuration: grouped stem (64 channels), growth rate 64, head
BN → ReLU → global average pool → Dense (logits). Model sizes are larq's
(binary weights 1 bit, everything else 32 bits) with 1000 classes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import larq as lq
import tensorflow as tf

from bnn_tf.errors import ConfigError
from bnn_tf.methods import melius
from bnn_tf.models._larq_zoo import IMAGENET, finish, global_pool, zoo_input
from bnn_tf.models._parts import classifier_head
from bnn_tf.models.registry import latent_adam, register

FAMILY = "meliusnet"
PAPER = "Bethge et al., MeliusNet: An Improved Network Architecture for Binary Neural Networks, WACV 2021"
_WHY = (
    "paper: RAdam 2e-3 + cosine on latent weights clipped to 1.3; here Adam 2e-3 + cosine on "
    "latent weights with weight_clip (1.0): at equal budget it beat Bop + Adam by 1.1 points "
    "(benchmarks/results/optimizer_choice.json: 0.8556 vs 0.8449, 2 seeds, 6000 images x 3 epochs)"
)


@dataclass(frozen=True)
class MeliusConfig(melius.StageLayout):
    """One published MeliusNet configuration: its `StageLayout` and published size.

    Attributes:
        paper_size_mb: model size published in the paper (MB, 1000 classes).
    """

    paper_size_mb: float | None = None

    def stage_widths(self, stem_width: int = 64) -> list[tuple[int, int]]:
        """(input width, output width before the transition) of every stage."""
        widths, c = [], stem_width
        for s, n in enumerate(self.num_blocks):
            widths.append((c, c + n * melius.GROWTH_RATE))
            if s < len(self.transition_features):
                c = self.transition_features[s]
        return widths

    @property
    def final_width(self) -> int:
        return self.stage_widths()[-1][1]


CONFIGS: dict[str, MeliusConfig] = {
    "meliusnet22": MeliusConfig((4, 5, 4, 4), (160, 224, 256), paper_size_mb=3.88),
    "meliusnet29": MeliusConfig((4, 6, 8, 6), (128, 192, 256), paper_size_mb=5.07),
    "meliusnet42": MeliusConfig((5, 8, 14, 10), (160, 256, 416), paper_size_mb=10.1),
    "meliusnet59": MeliusConfig((6, 12, 24, 12), (192, 320, 544), paper_size_mb=17.39),
    "meliusnet_a": MeliusConfig((4, 5, 5, 6), (160, 256, 288), 4, melius.SHUFFLE_GROUPS, 4.05),
    "meliusnet_b": MeliusConfig((4, 6, 8, 6), (160, 224, 320), 2, melius.SHUFFLE_GROUPS, 5.0),
    "meliusnet_c": MeliusConfig((3, 5, 10, 6), (128, 192, 288), 4, melius.SHUFFLE_GROUPS, 4.46),
}

SMALL_CONFIG = MeliusConfig((2, 2, 2, 2), (96, 128, 160))


def build_meliusnet(
    config: MeliusConfig,
    *,
    input_shape: Sequence[int],
    num_classes: int,
    include_top: bool,
    name: str,
    binary: bool = True,
    small_input: bool = False,
    stem_strides: int = 2,
    clip: float = melius.STE_CLIP,
    kernel_constraint=None,
) -> tf.keras.Model:
    """Build a MeliusNet from a configuration (the factories call this).

    Args:
        config: blocks and transition widths.
        input_shape: (height, width, channels).
        num_classes: logits of the Dense head.
        include_top: add BN → ReLU → GAP → Dense; otherwise end on the feature map.
        name: model name.
        binary: False builds the float twin (same graph, no quantizers,
            plain BatchNorm): the size/latency/accuracy reference.
        small_input: stem without its max-pool (28×28 / 32×32 inputs).
        stem_strides: stride of the first stem conv (2 as in the paper; 1 keeps
            full resolution for small inputs, 4× the compute).
        clip: STE clip of inputs and weights.
        kernel_constraint: constraint on the binary kernels: None for Bop (the
            default optimizer; it keeps them at ±1), `lq.constraints.WeightClip(1.3)`
            (the paper's) for latent-weight optimizers such as Adam.
    """
    if len(input_shape) != 3:
        raise ConfigError(
            f"input_shape must be (height, width, channels) (got {tuple(input_shape)})."
        )
    if num_classes < 1:
        raise ConfigError(f"num_classes must be ≥ 1 (got {num_classes}).")
    inputs = tf.keras.Input(shape=tuple(input_shape))
    x = melius.grouped_stem(inputs, strides=stem_strides, pool=not small_input)
    x = melius.melius_stages(
        x, config, binary=binary, clip=clip, kernel_constraint=kernel_constraint
    )
    if include_top:
        x = tf.keras.layers.BatchNormalization(momentum=melius.BN_MOMENTUM, name="head_bn")(x)
        x = tf.keras.layers.ReLU(name="head_relu")(x)
    x = classifier_head(
        x, num_classes, include_top, pool_name="head_pool", kernel_initializer="glorot_normal"
    )
    return tf.keras.Model(inputs, x, name=name if binary else f"{name}_float")


def _register_large(name: str, label: str) -> None:
    config = CONFIGS[name]

    @register(
        name,
        description=(
            f"MeliusNet{label} (blocks {list(config.num_blocks)}, transitions "
            f"{list(config.transition_features)}"
            + (
                f", grouped ×{config.transition_groups} + shuffle"
                if config.transition_groups > 1
                else ""
            )
            + f"), ImageNet size, {config.paper_size_mb} MB published"
        ),
        lce_binary=True,
        default_input_shape=(224, 224, 3),
        tags=("large",),
        training=latent_adam(_WHY, 2e-3),
    )
    def factory(
        *,
        input_shape: Sequence[int] = (224, 224, 3),
        num_classes: int = 1000,
        include_top: bool = True,
        binary: bool = True,
        kernel_constraint=None,
    ) -> tf.keras.Model:
        return build_meliusnet(
            config, input_shape=input_shape, num_classes=num_classes,
            include_top=include_top, name=name, binary=binary,
            kernel_constraint=kernel_constraint,
        )  # fmt: skip

    factory.__name__ = name
    factory.__doc__ = (
        f"MeliusNet{label} for 224×224 images (keras.applications-style, logits out).\n\n"
        "Args:\n    input_shape: (height, width, channels).\n    num_classes: logits.\n"
        "    include_top: add the BN → ReLU → GAP → Dense head.\n"
        "    binary: False builds the float twin (reference for size and latency).\n"
        "    kernel_constraint: None for Bop; `lq.constraints.WeightClip(1.3)` for latent weights.\n"
    )
    globals()[name] = factory


for _name, _label in [
    ("meliusnet22", "22"), ("meliusnet29", "29"), ("meliusnet42", "42"), ("meliusnet59", "59"),
    ("meliusnet_a", "A"), ("meliusnet_b", "B"), ("meliusnet_c", "C"),
]:  # fmt: skip
    _register_large(_name, _label)


@register(
    "meliusnet_small",
    description="MeliusNet for 28×28 / 32×32: grouped stem without its max-pool, blocks [2,2,2,2]",
    lce_binary=True,
    default_input_shape=(28, 28, 1),
    training=latent_adam(_WHY, 2e-3),
)
def meliusnet_small(
    *,
    input_shape: Sequence[int] = (28, 28, 1),
    num_classes: int = 10,
    include_top: bool = True,
    num_blocks: Sequence[int] = SMALL_CONFIG.num_blocks,
    transition_features: Sequence[int] = SMALL_CONFIG.transition_features,
    stem_strides: int = 2,
    binary: bool = True,
    kernel_constraint=None,
) -> tf.keras.Model:
    """MeliusNet with the same blocks for small images (28×28 Fashion-MNIST, 32×32 CIFAR).

    The grouped stem keeps its three convs and its stride-2 first conv but
    drops the max-pool, so stage 1 runs at half resolution and the three
    transitions halve it again (28 → 14 → 7 → 4 → 2; 32 → 16 → 8 → 4 → 2).
    `stem_strides=1` starts at full resolution (4× the compute).

    Args:
        input_shape: (height, width, channels).
        num_classes: logits.
        include_top: add the BN → ReLU → GAP → Dense head.
        num_blocks: Melius blocks per stage.
        transition_features: transition widths (one fewer than stages; multiples of 32).
        stem_strides: stride of the first stem conv (1 or 2).
        binary: False builds the float twin.
        kernel_constraint: None for Bop; `lq.constraints.WeightClip(1.3)` for latent weights.
    """
    if stem_strides not in (1, 2):
        raise ConfigError(f"stem_strides must be 1 or 2 (got {stem_strides}).")
    config = MeliusConfig(tuple(num_blocks), tuple(transition_features))
    return build_meliusnet(
        config, input_shape=input_shape, num_classes=num_classes, include_top=include_top,
        name="meliusnet_small", binary=binary, small_input=True, stem_strides=stem_strides,
        kernel_constraint=kernel_constraint,
    )  # fmt: skip


# --- larq-zoo 2.4's MeliusNet22, layer for layer (loads larq-zoo weight files) -------------

_ZOO_BN = {"momentum": melius.BN_MOMENTUM, "epsilon": 1e-5}
_ZOO_WHY = (
    "larq-zoo 2.4 / MeliusNet paper: latent weights clipped to 1.3 (RAdam 2e-3 + cosine in "
    "the paper; Adam 2e-3 + cosine here, as meliusnet22)"
)


def _zoo_norm_relu(x: tf.Tensor, name: str) -> tf.Tensor:
    x = tf.keras.layers.BatchNormalization(**_ZOO_BN, name=f"{name}_bn")(x)
    return tf.keras.layers.Activation("relu", name=f"{name}_relu")(x)


def _zoo_group_conv(x: tf.Tensor, filters: int, groups: int, name: str) -> tf.Tensor:
    """A grouped 3×3 conv as larq-zoo writes it: split, one Conv2D per group, concat."""
    parts = melius.ChannelSplit(groups, name=f"{name}_split")(x)
    conv = {"padding": "same", "use_bias": False, "kernel_initializer": "glorot_normal"}
    outs = [
        tf.keras.layers.Conv2D(filters // groups, 3, **conv, name=f"{name}_conv{i}")(part)
        for i, part in enumerate(parts)
    ]
    return tf.keras.layers.Concatenate(name=f"{name}_concat")(outs)


def _zoo_binconv(x: tf.Tensor, name: str) -> tf.Tensor:
    x = tf.keras.layers.BatchNormalization(**_ZOO_BN, name=f"{name}_bn")(x)
    return lq.layers.QuantConv2D(
        melius.GROWTH_RATE, 3, padding="same", use_bias=False,
        input_quantizer=lq.quantizers.SteSign(melius.STE_CLIP),
        kernel_quantizer=lq.quantizers.SteSign(melius.STE_CLIP),
        kernel_constraint=lq.constraints.WeightClip(melius.STE_CLIP),
        kernel_initializer="glorot_normal", name=f"{name}_binconv",
    )(x)  # fmt: skip


@register(
    "meliusnet22_larq_zoo",
    kind=IMAGENET,
    lce_binary=True,
    family=FAMILY,
    paper=PAPER,
    description="MeliusNet22 exactly as larq-zoo 2.4 builds it (zero padding, 2×2 stem pool); "
    "loads larq-zoo weight files",
    training=latent_adam(_ZOO_WHY, 2e-3),
)
def meliusnet22_larq_zoo(args) -> tf.keras.Model:
    """MeliusNet22, larq-zoo 2.4's graph layer for layer (keras.applications-style, logits out).

    For users moving from larq-zoo with trained weights: `weights="meliusnet22.h5"`
    loads a larq-zoo MeliusNet22 weight file. It differs from `meliusnet22` (the
    LCE layout) in what computes: binary convs pad with 0 (LCE adds a float
    correction), a plain BatchNorm before each sign, one BN after each grouped
    stem conv, a 2×2 stem max-pool (the paper's code: 3×3/2) and the improvement
    merge `x + Pad(i)`. On LCE it runs like larq-zoo's model; `meliusnet22` needs
    3 % fewer instructions (benchmarks/results/larq_zoo_compat.json) but does not
    load these weights.
    """
    inputs = zoo_input(args)
    x = tf.keras.layers.Conv2D(
        32, 3, strides=2, padding="same", use_bias=False, kernel_initializer="glorot_normal",
        name="stem_s0_conv",
    )(inputs)  # fmt: skip
    x = _zoo_norm_relu(x, "stem_s0")
    x = _zoo_norm_relu(_zoo_group_conv(x, 32, 4, "stem_s1_groupconv"), "stem_s1")
    x = _zoo_norm_relu(_zoo_group_conv(x, 64, 8, "stem_s2_groupconv"), "stem_s2")
    x = tf.keras.layers.MaxPool2D(2, strides=2, padding="same", name="stem_pool")(x)
    config = CONFIGS["meliusnet22"]
    widths = (*config.transition_features, None)
    for s, (blocks, width) in enumerate(zip(config.num_blocks, widths, strict=True)):
        for b in range(blocks):
            name = f"section_{s}_block_{b}"
            d = _zoo_binconv(x, f"{name}_dense")
            x = tf.keras.layers.Concatenate(name=f"{name}_dense_concat")([x, d])
            i = _zoo_binconv(x, f"{name}_improve")
            x = melius.AddToLastChannels(name=f"{name}_improve_merge")([x, i])
        if width:
            name = f"section_{s}_transition"
            x = tf.keras.layers.BatchNormalization(**_ZOO_BN, name=f"{name}_bn")(x)
            x = tf.keras.layers.MaxPool2D(2, strides=2, padding="same", name=f"{name}_maxpool")(x)
            x = tf.keras.layers.Activation("relu", name=f"{name}_relu")(x)
            x = tf.keras.layers.Conv2D(
                width, 1, use_bias=False, kernel_initializer="glorot_normal", name=f"{name}_pw"
            )(x)
    x = _zoo_norm_relu(x, "head")
    if args.include_top:
        x = global_pool(x, name="head_globalpool")
        x = tf.keras.layers.Dense(
            args.num_classes, kernel_initializer="glorot_normal", name="head_dense"
        )(x)
    return finish(args, inputs, x)
