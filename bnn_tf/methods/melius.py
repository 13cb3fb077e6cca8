"""MeliusNet building blocks, laid out so LCE keeps few float ops.

MeliusNet (Bethge, Bartz, Yang, Meinel: "MeliusNet: An Improved Network
Architecture for Binary Neural Networks", WACV 2021) alternates two binary
blocks on a growing feature map `x` with `C` channels:

- **Dense block**: `d = BConv3×3_64(sign(BN(x)))`, `y = [x, d]` (C → C + 64).
- **Improvement block**: `i = BConv3×3_64(sign(BN(y)))`, added to the last
  64 channels only: `z = [x, d + i]` (the first C channels pass through).
- **Transition**: `BN → MaxPool 2×2/2 → ReLU → float Conv1×1` to a width
  rounded to a multiple of 32; variants A/B/C shuffle channels (16 groups, as
  the authors' BMXNet-v2 code) and use a grouped 1×1 conv.
- **Grouped stem**: `Conv3×3/2 32 → BN → ReLU → Conv3×3 32 (g4) → BN → ReLU →
  Conv3×3 64 (g8) → BN → ReLU → MaxPool 3×3/2`.

Binary convs: sign inputs with a straight-through gradient clipped at 1.3,
±1 kernels, no scaling factor, padded with +1 (`pad_values=1.0`: LCE's fast
path; the paper's BMXNet pads with -1 after binarisation, equally valid).

LCE-oriented choices (see docs/meliusnet.md for the op counts they buy):

- The improvement add is written as `Concatenate([x, Add([d, i])])`: an ADD
  on 64 channels plus the concat the next block needs anyway, instead of
  larq-zoo's `x + Pad(i)` (a PAD and an ADD over all C + 64 channels).
- The BatchNorm in front of each binary conv is a `PreSignBatchNorm`: a
  BatchNorm (γ ≥ 0) whose inference output is `x + t` with
  `t = β·σ/γ − μ`, the same sign as `BN(x)`. Only the sign reaches the binary
  conv, so predictions are unchanged and LCE keeps one ADD instead of MUL + ADD.
- Grouped convolutions are split into per-group `Conv2D → BN → ReLU`
  (`grouped_conv_bn_relu`): TFLite runs a grouped CONV_2D on its slow
  reference kernel (measured 3× slower for the stem), and a BatchNorm after a
  concat cannot fold into the convs; per group it folds. Per-channel BN and
  ReLU make the split form the same function with the same parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import larq as lq
import tensorflow as tf

from bnn_tf.errors import ConfigError

GROWTH_RATE = 64
STE_CLIP = 1.3
SHUFFLE_GROUPS = 16
BN_MOMENTUM = 0.9
# Keeps the folded threshold finite when a γ is driven to 0 by the NonNeg constraint.
_GAMMA_FLOOR = 1e-6


def _check_divisible(what: str, value: int, divisor: int, fix: str) -> None:
    if value % divisor:
        raise ConfigError(f"{what} ({value}) is not divisible by {divisor}. Fix: {fix}")


@tf.keras.utils.register_keras_serializable(package="bnn_tf")
class ChannelShuffle(tf.keras.layers.Layer):
    """Channel shuffle (Zhang et al., ShuffleNet, CVPR 2018).

    With `g = groups` and `C` channels, channel `a·(C/g) + k` moves to position
    `k·g + a`: reshape `C → (g, C/g)`, transpose to `(C/g, g)`, flatten. In
    TFLite: RESHAPE → TRANSPOSE → RESHAPE.

    Args:
        groups: number of groups `g`; the channel count must be divisible by it.
    """

    def __init__(self, groups: int = SHUFFLE_GROUPS, **kwargs):
        super().__init__(**kwargs)
        if groups < 1:
            raise ConfigError(f"ChannelShuffle groups must be ≥ 1 (got {groups}).")
        self.groups = int(groups)

    def build(self, input_shape):
        channels = int(input_shape[-1])
        _check_divisible(
            f"{self.name}: channel count", channels, self.groups,
            "use a channel count that is a multiple of the shuffle groups.",
        )  # fmt: skip
        super().build(input_shape)

    def call(self, inputs):
        shape = tf.shape(inputs)
        channels = inputs.shape[-1]
        x = tf.reshape(inputs, [shape[0], shape[1], shape[2], self.groups, channels // self.groups])
        x = tf.transpose(x, [0, 1, 2, 4, 3])
        return tf.reshape(x, [shape[0], shape[1], shape[2], channels])

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "groups": self.groups}


@tf.keras.utils.register_keras_serializable(package="bnn_tf")
class ChannelSplit(tf.keras.layers.Layer):
    """Split the last axis into `groups` equal parts (one TFLite SPLIT op).

    Args:
        groups: number of parts; the channel count must be divisible by it.
    """

    def __init__(self, groups: int, **kwargs):
        super().__init__(**kwargs)
        if groups < 1:
            raise ConfigError(f"ChannelSplit groups must be ≥ 1 (got {groups}).")
        self.groups = int(groups)

    def build(self, input_shape):
        _check_divisible(
            f"{self.name}: channel count", int(input_shape[-1]), self.groups,
            "use a channel count that is a multiple of the groups.",
        )  # fmt: skip
        super().build(input_shape)

    def call(self, inputs):
        return tf.split(inputs, self.groups, axis=-1)

    def compute_output_shape(self, input_shape):
        shape = tf.TensorShape(input_shape).as_list()
        shape[-1] //= self.groups
        return [tf.TensorShape(shape) for _ in range(self.groups)]

    def get_config(self):
        return {**super().get_config(), "groups": self.groups}


@tf.keras.utils.register_keras_serializable(package="bnn_tf")
class AddToLastChannels(tf.keras.layers.Layer):
    """`[x, w] → x + Pad(w)`: add `w` (k channels) to the last k channels of `x`.

    MeliusNet's improvement merge as larq-zoo 2.4 writes it (a `Lambda` there,
    `x + tf.pad(w, [..., [C − k, 0]])`), as a serialisable layer with the same
    TFLite ops (PAD, ADD). The LCE layout (`improvement_block`) computes the same
    sum as `Concatenate([x_prev, d + i])` without the PAD; this layer exists for
    the larq-zoo-compatible graph (`meliusnet22_larq_zoo`), whose layer order
    larq-zoo weight files rely on.
    """

    def build(self, input_shape):
        x_shape, w_shape = (tf.TensorShape(s) for s in input_shape)
        if int(w_shape[-1]) > int(x_shape[-1]):
            raise ConfigError(
                f"{self.name}: cannot add {int(w_shape[-1])} channels to a "
                f"{int(x_shape[-1])}-channel map. Fix: pass [wide map, narrow update]."
            )
        super().build(input_shape)

    def call(self, inputs):
        x, w = inputs
        lead = int(x.shape[-1]) - int(w.shape[-1])
        return x + tf.pad(w, [[0, 0], [0, 0], [0, 0], [lead, 0]])

    def compute_output_shape(self, input_shape):
        return tf.TensorShape(input_shape[0])


@tf.keras.utils.register_keras_serializable(package="bnn_tf")
class PreSignBatchNorm(tf.keras.layers.BatchNormalization):
    """BatchNorm that feeds only a sign quantizer; folds to one ADD at inference.

    Training: plain BatchNorm `γ (x − μ)/σ + β` (σ = √(var + ε)), with γ kept
    ≥ 0 (`gamma_constraint="non_neg"` by default; a negative γ would only flip
    an input channel, which the ±1 weights of the next conv can do themselves).

    Inference (`training=False`): `x + t` with `t = β·σ/γ − μ`. For γ > 0,
    `sign(γ (x − μ)/σ + β) = sign(x + t)`, so the sign the next binary conv
    sees is unchanged; the value is not a normalised activation, so never feed
    this layer into anything but a sign. After conversion LCE keeps one ADD in
    front of `LceQuantize` instead of a MUL and an ADD.

    Only `axis=-1` (channels last) is supported.
    """

    def __init__(self, *, gamma_constraint="non_neg", **kwargs):
        kwargs.setdefault("momentum", BN_MOMENTUM)
        super().__init__(gamma_constraint=gamma_constraint, **kwargs)

    def build(self, input_shape):
        if not (self.scale and self.center):
            raise ConfigError("PreSignBatchNorm needs scale=True and center=True.")
        super().build(input_shape)
        # After build Keras stores the axis as a resolved list, e.g. [3] for NHWC.
        if list(self.axis) != [len(input_shape) - 1]:
            raise ConfigError(
                f"PreSignBatchNorm normalises the last (channel) axis only (got axis={self.axis})."
            )

    def sign_threshold(self) -> tf.Tensor:
        """Per-channel `t` such that `sign(BN(x)) == sign(x + t)` (for γ ≥ 0)."""
        sigma = tf.sqrt(self.moving_variance + self.epsilon)
        gamma = tf.maximum(self.gamma, _GAMMA_FLOOR)
        return self.beta * sigma / gamma - self.moving_mean

    def call(self, inputs, training=None):
        if training is None:
            training = tf.keras.backend.learning_phase()
        if isinstance(training, (bool, int)) and not training:
            return inputs + tf.cast(self.sign_threshold(), inputs.dtype)
        # Training, or a symbolic `training`: the plain BatchNorm (same sign either way).
        return super().call(inputs, training=training)


def binary_conv(
    x: tf.Tensor,
    filters: int = GROWTH_RATE,
    *,
    name: str,
    clip: float = STE_CLIP,
    kernel_size: int = 3,
    kernel_constraint=None,
) -> tf.Tensor:
    """MeliusNet's binary 3×3 conv, as LCE wants it (`LceBconv2d`, +1 padding).

    Sign input and sign kernel with straight-through gradients clipped at
    `clip`, no bias, no scaling factor.

    `kernel_constraint`: None for Bop (the default optimizer; it keeps the
    weights at ±1, a clip would do nothing); the paper's
    `lq.constraints.WeightClip(1.3)` when training latent weights with Adam & co.
    """
    return lq.layers.QuantConv2D(
        filters,
        kernel_size,
        padding="same",
        pad_values=1.0,
        use_bias=False,
        input_quantizer=lq.quantizers.SteSign(clip_value=clip),
        kernel_quantizer=lq.quantizers.SteSign(clip_value=clip),
        kernel_constraint=kernel_constraint,
        kernel_initializer="glorot_normal",
        name=name,
    )(x)


def float_conv(
    x: tf.Tensor, filters: int = GROWTH_RATE, *, name: str, kernel_size: int = 3
) -> tf.Tensor:
    """The float twin of `binary_conv` (same shape, no quantizers): for reference models."""
    return tf.keras.layers.Conv2D(
        filters, kernel_size, padding="same", use_bias=False,
        kernel_initializer="glorot_normal", name=name,
    )(x)  # fmt: skip


class DenseBlockOutput(NamedTuple):
    """What a dense block hands to the improvement block.

    Attributes:
        features: `[previous, new]`, the C + 64 channels the improvement conv reads.
        previous: the block input `x` (C channels), passed through unchanged.
        new: the dense conv's 64 new channels `d`, which the improvement adds to.
    """

    features: tf.Tensor
    previous: tf.Tensor
    new: tf.Tensor


def _norm_conv(
    x: tf.Tensor, filters: int, *, name: str, clip: float, binary: bool, kernel_constraint
) -> tf.Tensor:
    """BN → BConv3×3 (sign inputs), or plain BN → Conv2D for the float twin."""
    if not binary:
        h = tf.keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
        return float_conv(h, filters, name=f"{name}_conv")
    h = PreSignBatchNorm(name=f"{name}_bn")(x)
    return binary_conv(
        h, filters, name=f"{name}_conv", clip=clip, kernel_constraint=kernel_constraint
    )


def dense_block(
    x: tf.Tensor,
    *,
    name: str,
    growth_rate: int = GROWTH_RATE,
    clip: float = STE_CLIP,
    binary: bool = True,
    kernel_constraint=None,
) -> DenseBlockOutput:
    """MeliusNet dense block: `d = BConv(sign(BN(x)))`, features `[x, d]`.

    Args:
        x: feature map, C channels.
        name: prefix of the layer names.
        growth_rate: channels added (64 in every published configuration).
        clip: STE / weight clip of the binary conv.
        binary: False builds the float twin (plain BN → Conv2D).
        kernel_constraint: of the binary kernel (None for Bop, see `binary_conv`).
    """
    kw = {"clip": clip, "binary": binary, "kernel_constraint": kernel_constraint}
    d = _norm_conv(x, growth_rate, name=name, **kw)
    y = tf.keras.layers.Concatenate(name=f"{name}_concat")([x, d])
    return DenseBlockOutput(features=y, previous=x, new=d)


def improvement_block(
    dense: DenseBlockOutput,
    *,
    name: str,
    clip: float = STE_CLIP,
    binary: bool = True,
    kernel_constraint=None,
) -> tf.Tensor:
    """MeliusNet improvement block: `i = BConv(sign(BN([x, d])))`, returns `[x, d + i]`.

    Equal to `[x, d] + Pad(i)` (the paper's "add to the last 64 channels"),
    but the addition touches only the 64 improved channels and no PAD op is
    emitted.

    Args:
        dense: the `dense_block` output this block improves.
        name: prefix of the layer names.
        clip: STE / weight clip of the binary conv.
        binary: False builds the float twin.
        kernel_constraint: of the binary kernel (None for Bop, see `binary_conv`).
    """
    growth = int(dense.new.shape[-1])
    kw = {"clip": clip, "binary": binary, "kernel_constraint": kernel_constraint}
    i = _norm_conv(dense.features, growth, name=name, **kw)
    improved = tf.keras.layers.Add(name=f"{name}_add")([dense.new, i])
    return tf.keras.layers.Concatenate(name=f"{name}_concat")([dense.previous, improved])


def melius_block(
    x: tf.Tensor, *, name: str, growth_rate: int = GROWTH_RATE, **conv: Any
) -> tf.Tensor:
    """One MeliusNet block: dense block then improvement block (C → C + growth_rate).

    `conv`: the options both blocks' convs take (`clip`, `binary`, `kernel_constraint`;
    see `dense_block`).
    """
    dense = dense_block(x, name=f"{name}_dense", growth_rate=growth_rate, **conv)
    return improvement_block(dense, name=f"{name}_improve", **conv)


def grouped_conv_bn_relu(
    x: tf.Tensor,
    filters: int,
    kernel_size: int,
    *,
    name: str,
    groups: int = 1,
    strides: int = 1,
    batch_norm: bool = True,
    relu: bool = True,
) -> tf.Tensor:
    """Float grouped conv (+ BN + ReLU) written as per-group layers for TFLite.

    `groups > 1`: `ChannelSplit(groups)` → per group `Conv2D(filters/groups)
    [→ BN → ReLU]` → `Concatenate`. That is a grouped convolution (same
    function, same parameters: BN and ReLU act per channel), and each BN folds
    into its conv when converted.
    """
    in_channels = int(x.shape[-1])
    fix = "pick filters and input channels that are multiples of the groups."
    _check_divisible(f"{name}: filters", filters, groups, fix)
    _check_divisible(f"{name}: input channels", in_channels, groups, fix)
    parts = [x] if groups == 1 else ChannelSplit(groups, name=f"{name}_split")(x)
    outs = []
    for g, part in enumerate(parts):
        suffix = "" if groups == 1 else f"_g{g}"
        y = tf.keras.layers.Conv2D(
            filters // groups, kernel_size, strides=strides, padding="same", use_bias=False,
            kernel_initializer="glorot_normal", name=f"{name}_conv{suffix}",
        )(part)  # fmt: skip
        if batch_norm:
            y = tf.keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn{suffix}")(
                y
            )
        if relu:
            y = tf.keras.layers.ReLU(name=f"{name}_relu{suffix}")(y)
        outs.append(y)
    return outs[0] if groups == 1 else tf.keras.layers.Concatenate(name=f"{name}_concat")(outs)


def grouped_stem(
    x: tf.Tensor, *, name: str = "stem", strides: int = 2, pool: bool = True
) -> tf.Tensor:
    """MeliusNet's grouped stem: 3×3/2 32 → 3×3 32 (g4) → 3×3 64 (g8), each BN + ReLU, MaxPool 3×3/2.

    Args:
        x: the image.
        name: layer-name prefix.
        strides: stride of the first conv (2 for ImageNet, 1 for 28×28 / 32×32).
        pool: end with the 3×3/2 max-pool (ImageNet) or not (small inputs).
    """
    x = grouped_conv_bn_relu(x, 32, 3, strides=strides, name=f"{name}1")
    x = grouped_conv_bn_relu(x, 32, 3, groups=4, name=f"{name}2")
    x = grouped_conv_bn_relu(x, 64, 3, groups=8, name=f"{name}3")
    if pool:
        x = tf.keras.layers.MaxPool2D(3, strides=2, padding="same", name=f"{name}_pool")(x)
    return x


def transition(
    x: tf.Tensor,
    filters: int,
    *,
    name: str,
    groups: int = 1,
    shuffle_groups: int | None = None,
) -> tf.Tensor:
    """MeliusNet transition: BN → MaxPool 2×2/2 → ReLU → [ChannelShuffle] → float 1×1 conv.

    Args:
        x: feature map.
        filters: output width (a multiple of 32 in the published configurations).
        name: layer-name prefix.
        groups: groups of the 1×1 conv (1 for 22/29/42/59; 4, 2, 4 for A, B, C).
        shuffle_groups: channel-shuffle groups before the grouped conv
            (16 in the authors' code for A/B/C); None for no shuffle.
    """
    x = tf.keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    x = tf.keras.layers.MaxPool2D(2, strides=2, padding="same", name=f"{name}_pool")(x)
    x = tf.keras.layers.ReLU(name=f"{name}_relu")(x)
    if shuffle_groups:
        x = ChannelShuffle(shuffle_groups, name=f"{name}_shuffle")(x)
    return grouped_conv_bn_relu(
        x, filters, 1, groups=groups, batch_norm=False, relu=False, name=name
    )


def round_to_multiple(value: float, multiple: int = 32) -> int:
    """Round `value` to the nearest multiple (the paper's transition widths)."""
    return int(round(value / multiple)) * multiple


@dataclass(frozen=True)
class StageLayout:
    """How a MeliusNet body is laid out.

    Attributes:
        num_blocks: Melius blocks (dense + improvement) per stage.
        transition_features: output width of each transition (one fewer than stages).
        transition_groups: groups of the transitions' 1×1 convs.
        shuffle_groups: channel-shuffle groups before a grouped transition conv (None: no shuffle).
    """

    num_blocks: tuple[int, ...]
    transition_features: tuple[int, ...]
    transition_groups: int = 1
    shuffle_groups: int | None = None


def melius_stages(
    x: tf.Tensor,
    layout: StageLayout,
    *,
    binary: bool = True,
    clip: float = STE_CLIP,
    kernel_constraint=None,
) -> tf.Tensor:
    """The body: `num_blocks[s]` Melius blocks per stage, a transition between stages."""
    num_blocks, transition_features = layout.num_blocks, layout.transition_features
    if len(transition_features) != len(num_blocks) - 1:
        raise ConfigError(
            f"transition_features needs {len(num_blocks) - 1} widths for {len(num_blocks)} stages "
            f"(got {len(transition_features)})."
        )
    for s, n in enumerate(num_blocks):
        for b in range(n):
            x = melius_block(
                x, name=f"stage{s + 1}_block{b + 1}", clip=clip, binary=binary,
                kernel_constraint=kernel_constraint,
            )  # fmt: skip
        if s < len(transition_features):
            x = transition(
                x, transition_features[s], name=f"transition{s + 1}",
                groups=layout.transition_groups, shuffle_groups=layout.shuffle_groups,
            )  # fmt: skip
    return x
