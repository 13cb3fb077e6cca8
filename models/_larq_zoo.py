"""Pieces shared by the zoo's larq-zoo-compatible models (same graphs as larq-zoo 2.4).

`zoo_input` checks the keras.applications-style arguments, `global_pool` is
larq-zoo's AveragePooling2D-over-the-whole-map + Flatten (faster on LCE than
GlobalAveragePooling2D), and `finish` adds the optional classifier activation
and loads `weights=`. The factories return logits by default (the zoo's
convention, what `bnn_tf.training` expects); `classifier_activation="softmax"`
gives larq-zoo's exact graph, which ends on a float32 softmax.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import tensorflow as tf

from bnn_tf.errors import ConfigError
from bnn_tf.models._weights import apply_weights
from bnn_tf.models.registry import Factory, Kind, option

LARQ_ZOO = "larq-zoo 2.4 (Bannink et al., Larq Compute Engine, MLSys 2021)"


# The options of every larq-zoo-compatible factory (keras.applications' names and order).
IMAGENET = Kind(
    parameters=(
        option("input_shape", (224, 224, 3), Sequence[int | None]),
        option("num_classes", 1000, int),
        option("include_top", True, bool),
        option("weights", None, Any),
        option("classifier_activation", None, str | None),
    ),
    defaults={"default_input_shape": (224, 224, 3), "tags": ("large", "larq_zoo")},
    doc="""Options shared by the larq-zoo models:
    input_shape: (height, width, channels).
    num_classes: classes.
    include_top: add the classifier.
    weights: None (random) or the path of a larq-zoo `.h5` weight file.
    classifier_activation: None (logits) or "softmax" (larq-zoo's output).""",
)


# The same options for the small-input variants (28×28 / 32×32) of larq-zoo's families.
SMALL_INPUT = Kind(
    parameters=(
        option("input_shape", (28, 28, 1), Sequence[int | None]),
        option("num_classes", 10, int),
        *IMAGENET.parameters[2:],
    ),
    defaults={"default_input_shape": (28, 28, 1)},
    doc=IMAGENET.doc,
)


def zoo_input(args: Any) -> tf.Tensor:
    """The model input for `args` (an `IMAGENET` factory's options), checked."""
    input_shape, num_classes = args.input_shape, args.num_classes
    if len(input_shape) != 3:
        raise ConfigError(
            f"input_shape must be (height, width, channels) (got {tuple(input_shape)})."
        )
    if num_classes < 1:
        raise ConfigError(f"num_classes must be ≥ 1 (got {num_classes}).")
    return tf.keras.Input(shape=tuple(input_shape))


def global_pool(x: tf.Tensor, name: str = "head") -> tf.Tensor:
    """Average over the whole feature map, flattened to (batch, C)."""
    if x.shape[1] is None or x.shape[2] is None:
        return tf.keras.layers.GlobalAveragePooling2D(name=f"{name}_gap")(x)
    x = tf.keras.layers.AveragePooling2D(pool_size=tuple(x.shape[1:3]), name=f"{name}_pool")(x)
    return tf.keras.layers.Flatten(name=f"{name}_flatten")(x)


def finish(args: Any, inputs: tf.Tensor, x: tf.Tensor, **overrides: Any) -> tf.keras.Model:
    """The model from `inputs` to `x` with `args`' output activation, name and weights.

    `overrides` replace attributes of `args` (e.g. larq-zoo's own model `name`).
    """
    values = {**vars(args), **overrides}
    include_top, classifier_activation = values["include_top"], values["classifier_activation"]
    if include_top and classifier_activation is not None:
        x = tf.keras.layers.Activation(classifier_activation, dtype="float32", name="predictions")(
            x
        )
    return apply_weights(tf.keras.Model(inputs, x, name=values["name"]), values["weights"])


def bethge_stem(inputs: tf.Tensor, filters: int, *, pool_bn: bool = False) -> tf.Tensor:
    """The stem of larq-zoo's BinaryDenseNet and BinaryResNetE (Bethge et al. 2019).

    Inputs below 50 pixels get one Conv3×3 (no downsampling); larger ones
    Conv7×7/2 → BN → ReLU → MaxPool 3×3/2, and with `pool_bn` a BN after the pool
    (ResNetE's layout).
    """
    conv = {"padding": "same", "use_bias": False, "kernel_initializer": "he_normal"}
    if inputs.shape[1] and inputs.shape[1] < 50:
        return tf.keras.layers.Conv2D(filters, 3, **conv, name="stem_conv")(inputs)
    bn = {"momentum": 0.9, "epsilon": 1e-5}
    x = tf.keras.layers.Conv2D(filters, 7, strides=2, **conv, name="stem_conv")(inputs)
    x = tf.keras.layers.BatchNormalization(**bn, name="stem_bn")(x)
    x = tf.keras.layers.Activation("relu", name="stem_relu")(x)
    x = tf.keras.layers.MaxPool2D(3, strides=2, padding="same", name="stem_pool")(x)
    if pool_bn:
        x = tf.keras.layers.BatchNormalization(**bn, name="stem_pool_bn")(x)
    return x


def named_factory(factory: Factory, name: str, label: str) -> Factory:
    """`factory`, registered in a loop, named `name` and documented as larq-zoo's `label`.

    The module binds the result to `name` so `from bnn_tf.models.X import name` works.
    """
    factory.__name__ = name
    factory.__doc__ = (
        f"{label}, larq-zoo 2.4's graph (keras.applications-style; logits out by default)."
        f"\n\n{IMAGENET.doc}"
    )
    return factory
