"""A small binarized CNN for 28×28 / 32×32 images, laid out for LCE.

Layout (`bnn_small`, ≈ 0.2 M parameters):

    Conv2D 3×3 (float, first layer) → BN → MaxPool 2
    [QuantConv2D 3×3, pad 1 → BN] × 2 → MaxPool 2
    [QuantConv2D 3×3, pad 1 → BN] × 2 → MaxPool 2
    QuantConv2D 3×3, pad 1 → BN → GlobalAveragePool → Dense (float)

Choices made for LCE (see docs/lce.md):

- binary convs take `ste_sign` inputs and weights and pad with +1
  (`pad_values=1.0`), the fast bitpacked path;
- BatchNorm sits directly after each binary conv, so it folds into the
  kernel's output multiplier and bias;
- MaxPool sits just before the next sign, so it becomes `LceBMaxPool2d`;
- the first conv and the classifier stay float, as in XNOR-Net and most
  BNN papers (binarising them costs a lot of accuracy for little speed).

`bnn_small_float` is the same graph with every quantizer removed: the
accuracy ceiling and the latency/size reference for the binary model.
"""

from __future__ import annotations

from collections.abc import Sequence

import larq as lq
import tensorflow as tf

from bnn_tf.errors import ConfigError
from bnn_tf.models._parts import classifier_head
from bnn_tf.models.registry import register

DEFAULT_WIDTHS = (64, 64, 128, 128, 256)


def _binary_conv_kwargs(binary: bool, kernel_constraint: str | None = None) -> dict:
    if not binary:
        return {}
    return {
        "input_quantizer": "ste_sign",
        "kernel_quantizer": "ste_sign",
        # Bop flips binary weights directly (no clip); latent-weight Adam wants "weight_clip".
        "kernel_constraint": kernel_constraint,
        "pad_values": 1.0,
    }


def _small_cnn(
    *,
    input_shape: Sequence[int],
    num_classes: int,
    include_top: bool,
    stem_width: int,
    widths: Sequence[int],
    binary: bool,
    name: str,
    kernel_constraint: str | None = None,
) -> tf.keras.Model:
    if len(widths) != 5:
        raise ConfigError(f"widths must have 5 entries (got {len(widths)}).")
    inputs = tf.keras.Input(shape=tuple(input_shape))
    x = tf.keras.layers.Conv2D(stem_width, 3, padding="same", use_bias=False, name="stem_conv")(
        inputs
    )
    x = tf.keras.layers.BatchNormalization(momentum=0.9, name="stem_bn")(x)
    x = tf.keras.layers.MaxPool2D(2, name="stem_pool")(x)

    qkw = _binary_conv_kwargs(binary, kernel_constraint)
    pool_after = {1, 3}
    for i, width in enumerate(widths):
        x = lq.layers.QuantConv2D(
            width, 3, padding="same", use_bias=False, name=f"conv{i + 1}", **qkw
        )(x)
        x = tf.keras.layers.BatchNormalization(momentum=0.9, name=f"bn{i + 1}")(x)
        if i in pool_after:
            x = tf.keras.layers.MaxPool2D(2, name=f"pool{i + 1}")(x)

    return tf.keras.Model(inputs, classifier_head(x, num_classes, include_top), name=name)


@register(
    "bnn_small",
    description="Small binarized CNN (float stem/head, 5 binary 3×3 convs); the demo model",
    lce_binary=True,
    default_input_shape=(28, 28, 1),
    float_twin="bnn_small_float",
    family="baseline",
    paper="Courbariaux et al. 2016 (BinaryNet) layout, tuned for LCE",
    training={
        "name": "bop",
        "threshold": 1e-6,
        "gamma": 1e-3,
        "learning_rate": 1e-3,
        "lr_schedule": {"kind": "cosine"},
        "why": (
            "Bop + Adam, as Helwegen et al. train this BinaryNet layout; BinaryNet's own recipe "
            "(Adam on latent weights + weight clip) scored lower here: 0.769 vs 0.799 "
            "(benchmarks/results/optimizers_recipes.json, 2 seeds)"
        ),
    },
)
def bnn_small(
    *,
    input_shape: Sequence[int] = (28, 28, 1),
    num_classes: int = 10,
    include_top: bool = True,
    stem_width: int = 32,
    widths: Sequence[int] = DEFAULT_WIDTHS,
    kernel_constraint: str | None = None,
) -> tf.keras.Model:
    """Small LCE-friendly BNN: float stem and head, binary convs in between.

    Outputs logits (no softmax): train with
    `SparseCategoricalCrossentropy(from_logits=True)`.

    Args:
        input_shape: (height, width, channels); 28×28 and 32×32 are the intended sizes.
        num_classes: number of logits.
        include_top: add global average pooling and the Dense classifier.
        stem_width: filters of the float first conv.
        widths: filters of the five binary convs.
        kernel_constraint: constraint on the binary kernels: None for Bop (the
            default; Bop keeps them at ±1), "weight_clip" for Adam on latent weights.
    """
    return _small_cnn(
        input_shape=input_shape,
        num_classes=num_classes,
        include_top=include_top,
        stem_width=stem_width,
        widths=widths,
        binary=True,
        name="bnn_small",
        kernel_constraint=kernel_constraint,
    )


@register(
    "bnn_small_float",
    description="Float twin of bnn_small (same graph, no quantizers): accuracy ceiling",
    lce_binary=False,
    default_input_shape=(28, 28, 1),
    family="baseline",
    training={
        "name": "adam",
        "learning_rate": 1e-3,
        "lr_schedule": {"kind": "cosine"},
        "why": "float twin: Adam, cosine",
    },
)
def bnn_small_float(
    *,
    input_shape: Sequence[int] = (28, 28, 1),
    num_classes: int = 10,
    include_top: bool = True,
    stem_width: int = 32,
    widths: Sequence[int] = DEFAULT_WIDTHS,
) -> tf.keras.Model:
    """`bnn_small` with full-precision weights and activations everywhere."""
    return _small_cnn(
        input_shape=input_shape,
        num_classes=num_classes,
        include_top=include_top,
        stem_width=stem_width,
        widths=widths,
        binary=False,
        name="bnn_small_float",
    )
