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

import tensorflow as tf

from bnn_tf.models._parts import SMALL, plain_small
from bnn_tf.models.registry import bop_adam, latent_adam, register

FAMILY = "baseline"


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


@register(
    "bnn_small",
    kind=SMALL,
    lce_binary=True,
    paper="Courbariaux et al. 2016 (BinaryNet) layout, tuned for LCE",
    training=bop_adam(
        "Bop + Adam, as Helwegen et al. train this BinaryNet layout; BinaryNet's own recipe "
        "(Adam on latent weights + weight clip) scored lower here: 0.769 vs 0.799 "
        "(benchmarks/results/optimizers_recipes.json, 2 seeds)"
    ),
)
def bnn_small(args, *, kernel_constraint: str | None = None) -> tf.keras.Model:
    """Small binarized CNN (float stem/head, 5 binary 3×3 convs); the demo model.

    Small LCE-friendly BNN: float stem and head, binary convs in between.
    Outputs logits (no softmax): train with
    `SparseCategoricalCrossentropy(from_logits=True)`. 28×28 and 32×32 are the
    intended input sizes; `stem_width` is the float first conv's filters and
    `widths` the five binary convs'.

    Args:
        kernel_constraint: constraint on the binary kernels: None for Bop (the
            default; Bop keeps them at ±1), "weight_clip" for Adam on latent weights.
    """
    return plain_small(args, conv_kwargs=lambda: _binary_conv_kwargs(True, kernel_constraint))


@register(
    "bnn_small_float",
    kind=SMALL,
    lce_binary=False,
    training=latent_adam("float twin: Adam, cosine"),
)
def bnn_small_float(args) -> tf.keras.Model:
    """Float twin of bnn_small (same graph, no quantizers): accuracy ceiling.

    `bnn_small` with full-precision weights and activations everywhere.
    """
    return plain_small(args, conv_kwargs=dict)
