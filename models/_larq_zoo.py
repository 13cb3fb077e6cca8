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

LARQ_ZOO = "larq-zoo 2.4 (Bannink et al., Larq Compute Engine, MLSys 2021)"


def zoo_input(input_shape: Sequence[int | None], num_classes: int) -> tf.Tensor:
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


def finish(
    inputs: tf.Tensor,
    x: tf.Tensor,
    *,
    name: str,
    include_top: bool,
    classifier_activation: str | None,
    weights: Any,
) -> tf.keras.Model:
    if include_top and classifier_activation is not None:
        x = tf.keras.layers.Activation(classifier_activation, dtype="float32", name="predictions")(
            x
        )
    return apply_weights(tf.keras.Model(inputs, x, name=name), weights)
