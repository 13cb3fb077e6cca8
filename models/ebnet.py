"""Expert Binary Networks (EBNet): residual nets of `EBConv2D` layers.

Bulat, Martinez, Tzimiropoulos, "High-Capacity Expert Binary Networks", ICLR 2021.

`ebnet` (ImageNet size, 224×224×3):

    stem: Conv3×3/2 32 + BN + ReLU
          → concat[ Conv1×1 32 + BN + ReLU → Conv3×3/2 32 + BN + ReLU,  MaxPool3×3/2 ]  (64)
          → Conv1×1 64 + BN + ReLU
    4 stages, widths [128, 256, 512, 1024], blocks [1, 2, 6, 2], groups [4, 8, 8, 16]:
        transition (real): [AvgPool 2 (stages 2-4)] → Conv1×1 C/4 + BN + PReLU
                           → Conv1×1 C + BN + PReLU
        block: x += PReLU(EBConv3×3_g(BN(x)))      twice
               x += PReLU(EBConv1×1(BN(x)))
    head: GAP → Dense

`ebnet_small` (28×28 / 32×32) keeps the block and transition but uses a
single stride-1 stem conv + MaxPool 2, two stages of widths [64, 128],
blocks [1, 1], groups [2, 4]. Input channels per group are 32 or 64
everywhere, which LCE's grouped binary conv requires (a multiple of 32).
`num_experts=1` gives the single-expert network with the same binary ops.

The first stage of `ebnet` keeps the resolution of the stem (56×56), the
others halve it, which gives the paper's 56/28/14/7 layout at 224×224.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import tensorflow as tf

from bnn_tf.errors import ConfigError
from bnn_tf.methods.ebconv import EBConv2D
from bnn_tf.models._parts import classifier_head
from bnn_tf.models.registry import Kind, latent_adam, option, register

FAMILY = "ebnet"
PAPER = "Bulat, Martinez & Tzimiropoulos, High-Capacity Expert Binary Networks, ICLR 2021"


def _bn(name: str) -> tf.keras.layers.Layer:
    return tf.keras.layers.BatchNormalization(momentum=0.9, name=name)


def _prelu(name: str) -> tf.keras.layers.Layer:
    return tf.keras.layers.PReLU(shared_axes=[1, 2], name=name)


def _transition(x, width: int, *, pool: bool, name: str):
    """Real-valued downsample: [AvgPool 2] → 1×1 to C/4 → 1×1 to C, each + BN + PReLU."""
    if pool:
        x = tf.keras.layers.AveragePooling2D(2, name=f"{name}_pool")(x)
    for i, filters in enumerate((max(width // 4, 1), width)):
        x = tf.keras.layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_conv{i + 1}")(x)
        x = _bn(f"{name}_bn{i + 1}")(x)
        x = _prelu(f"{name}_prelu{i + 1}")(x)
    return x


def _block(x, width: int, groups: int, *, eb_kwargs: dict, name: str):
    """Three pre-activation binary steps, each with its own residual."""
    steps = ((3, groups), (3, groups), (1, 1))
    for i, (kernel, step_groups) in enumerate(steps):
        y = _bn(f"{name}_bn{i + 1}")(x)
        # α starts at 1/√fan-in: a ±1 conv sums fan-in ±1 terms, so the residual
        # branch starts at unit scale instead of √fan-in (with α = 1 the residual
        # stream and the logits blow up and training diverges, measured).
        fan_in = kernel * kernel * width // step_groups
        y = EBConv2D(
            width,
            kernel,
            groups=step_groups,
            alpha_initializer=tf.keras.initializers.Constant(fan_in**-0.5),
            name=f"{name}_ebconv{i + 1}",
            **eb_kwargs,
        )(y)
        y = _prelu(f"{name}_prelu{i + 1}")(y)
        x = tf.keras.layers.Add(name=f"{name}_add{i + 1}")([x, y])
    return x


def _check(widths, blocks, groups) -> None:
    if not (len(widths) == len(blocks) == len(groups)) or not widths:
        raise ConfigError(
            f"widths, blocks and groups need the same, non-zero length "
            f"(got {len(widths)}, {len(blocks)}, {len(groups)})."
        )
    for width, group in zip(widths, groups, strict=True):
        if width % group:
            raise ConfigError(f"groups {group} must divide the stage width {width}.")


def _stages(x, *, widths, blocks, groups, first_pool: bool, eb_kwargs: dict):
    for s, (width, count, group) in enumerate(zip(widths, blocks, groups, strict=True)):
        x = _transition(x, width, pool=first_pool or s > 0, name=f"stage{s + 1}_down")
        for b in range(count):
            x = _block(x, width, group, eb_kwargs=eb_kwargs, name=f"stage{s + 1}_block{b + 1}")
    return x


# EBConv2D forms (docs/ebconv.md, benchmarks/results/ebconv_forms.json):
# "official": the authors' training code: sigmoid gate, sign(Σ φₙ Wₙ) of latent experts,
#             SE without biases (hidden C_out // 8) on; for latent-weight optimizers (Adam).
# "signed":   bnn-tf's first form: softmax gate, Σ φₙ sign(Wₙ), no SE; for Bop.
FORMS: dict[str, dict] = {
    "official": {"gate_activation": "sigmoid", "mixing": "latent", "se_layout": "official",
                 "use_se": True},
    "signed": {"gate_activation": "softmax", "mixing": "signed", "se_layout": "official",
               "use_se": False},
}  # fmt: skip
DEFAULT_FORM = "official"
# How the default form trains (`training=` of both registrations).
TRAINING = latent_adam(
    "the paper trains latent experts with AdamW 1e-3 (no weight decay here); the default "
    "official form mixes latent experts, which Bop would keep at ±1. Adam ≥ Bop for both "
    "forms in benchmarks/results/ebconv_forms.json (2 seeds; forms within noise). The "
    "paper's staging (single expert, then expand_experts) is a recipe step: ExpertExpansion(k)",
    1e-3,
)


def _eb_kwargs(args: Any) -> dict:
    if args.form not in FORMS:
        raise ConfigError(f"form must be one of {sorted(FORMS)} (got {args.form!r}).")
    kwargs = {
        **FORMS[args.form],
        "num_experts": args.num_experts,
        "implementation": args.implementation,
        "single_expert": args.staged and args.num_experts > 1,
    }
    if args.use_se is not None:
        kwargs["use_se"] = bool(args.use_se)
    return kwargs


def _network(args: Any, inputs: tf.Tensor, stem: tf.Tensor) -> tf.keras.Model:
    """The EBConv stages of `args` on the `stem` features, then the classifier head."""
    x = _stages(
        stem,
        widths=args.widths,
        blocks=args.blocks,
        groups=args.groups,
        first_pool=False,
        eb_kwargs=_eb_kwargs(args),
    )
    head = classifier_head(x, args.num_classes, args.include_top)
    return tf.keras.Model(inputs, head, name=args.name)


def _input(args: Any) -> tf.Tensor:
    _check(args.widths, args.blocks, args.groups)
    return tf.keras.Input(shape=tuple(args.input_shape))


# The options of both EBNets (ebnet's defaults; EBNET_SMALL changes the size's).
EBNET = Kind(
    parameters=(
        option("input_shape", (224, 224, 3), Sequence[int]),
        option("num_classes", 1000, int),
        option("include_top", True, bool),
        option("num_experts", 4, int),
        option("widths", (128, 256, 512, 1024), Sequence[int]),
        option("blocks", (1, 2, 6, 2), Sequence[int]),
        option("groups", (4, 8, 8, 16), Sequence[int]),
        option("use_se", None, bool | None),
        option("implementation", "partition", str),
        option("form", DEFAULT_FORM, str),
        option("staged", True, bool),
    ),
    defaults={"default_input_shape": (224, 224, 3)},
    doc="""Options shared by the EBNets:
    input_shape: (height, width, channels).
    num_classes: number of logits.
    include_top: add GAP + Dense.
    num_experts: experts per EBConv2D (1 = single-expert network).
    widths / blocks / groups: per stage (the second and later stages halve the resolution).
    use_se: SE-style output scale in every EBConv2D (None: the form's default).
    implementation: EBConv2D training implementation ("partition" or "grouped").
    form: `"official"` (the authors' code: sigmoid gate, sign of the mixed latent
        experts, SE on; train with Adam) or `"signed"` (softmax gate, mixed signed
        experts, no SE; train with Bop). See `FORMS` and docs/ebconv.md.
    staged: start in the single-expert phase (the paper's staging: the declared
        `ExpertExpansion` copies expert 0 into every expert after a third of a
        `bnn-tf train` run); False builds the gated network directly.""",
)
EBNET_SMALL = EBNET.with_defaults(
    {"default_input_shape": (28, 28, 1)},
    input_shape=(28, 28, 1),
    num_classes=10,
    widths=(64, 128),
    blocks=(1, 1),
    groups=(2, 4),
)


@register(
    "ebnet",
    kind=EBNET,
    description="Expert Binary Network, ImageNet size (EBConv, 4 experts, grouped 3×3)",
    lce_binary=True,
    tags=("large",),
    training=TRAINING,
)
def ebnet(args) -> tf.keras.Model:
    """EBNet for ImageNet-size inputs; outputs logits."""
    inputs = _input(args)
    x = tf.keras.layers.Conv2D(32, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(
        inputs
    )
    x = _bn("stem_bn")(x)
    x = tf.keras.layers.ReLU(name="stem_relu")(x)
    a = tf.keras.layers.Conv2D(32, 1, use_bias=False, name="stem_a_conv1")(x)
    a = tf.keras.layers.ReLU(name="stem_a_relu1")(_bn("stem_a_bn1")(a))
    a = tf.keras.layers.Conv2D(
        32, 3, strides=2, padding="same", use_bias=False, name="stem_a_conv2"
    )(a)
    a = tf.keras.layers.ReLU(name="stem_a_relu2")(_bn("stem_a_bn2")(a))
    b = tf.keras.layers.MaxPool2D(3, strides=2, padding="same", name="stem_b_pool")(x)
    x = tf.keras.layers.Concatenate(name="stem_concat")([a, b])
    x = tf.keras.layers.Conv2D(64, 1, use_bias=False, name="stem_merge_conv")(x)
    x = tf.keras.layers.ReLU(name="stem_merge_relu")(_bn("stem_merge_bn")(x))
    return _network(args, inputs, x)


@register(
    "ebnet_small",
    kind=EBNET_SMALL,
    description="Small Expert Binary Network for 28×28 / 32×32 (EBConv, 4 experts)",
    lce_binary=True,
    training=TRAINING,
)
def ebnet_small(args, *, stem_width: int = 32) -> tf.keras.Model:
    """EBNet for small images (28×28 and 32×32 are intended); outputs logits.

    `num_experts=1` is its single-expert twin.

    Args:
        stem_width: filters of the float stem conv.
    """
    inputs = _input(args)
    x = tf.keras.layers.Conv2D(stem_width, 3, padding="same", use_bias=False, name="stem_conv")(
        inputs
    )
    x = tf.keras.layers.ReLU(name="stem_relu")(_bn("stem_bn")(x))
    x = tf.keras.layers.MaxPool2D(2, name="stem_pool")(x)
    return _network(args, inputs, x)
