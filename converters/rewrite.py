"""Rewriting a Keras model layer by layer before conversion (same function, other layers).

The converters change a model's layers for LCE without changing what it
computes: grouped binary convs become per-group convs (`groups.py`), large
quantized kernels are precomputed (`kernel_fold.py`). Both clone the model
with some layers replaced and check each replacement on a probe input; this
module is that shared machinery.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import tensorflow as tf


def is_functional(model: tf.keras.Model) -> bool:
    """Whether `model`'s graph can be re-wired (functional or Sequential, not subclassed)."""
    return bool(getattr(model, "_is_graph_network", False)) or isinstance(
        model, tf.keras.Sequential
    )


def rewrite_layers(
    model: tf.keras.Model,
    replace: Callable[[tf.keras.layers.Layer], tf.keras.layers.Layer | None],
) -> tf.keras.Model:
    """A copy of the functional `model` with layers swapped by `replace`.

    `replace(layer)` returns the built replacement (weights set, same name) or
    None to keep the layer; kept layers are rebuilt from their config and get
    the original weights. Nested functional models are rewritten the same way;
    a nested subclassed model is kept as it is (the same object).
    """
    replaced: set[str] = set()

    def clone(layer: tf.keras.layers.Layer) -> tf.keras.layers.Layer:
        if isinstance(layer, tf.keras.Model):
            # a subclassed sub-model cannot be re-wired (nor rebuilt from its config): shared
            return rewrite_layers(layer, replace) if is_functional(layer) else layer
        new = replace(layer)
        if new is not None:
            replaced.add(layer.name)
            return new
        return layer.__class__.from_config(layer.get_config())

    new_model = tf.keras.models.clone_model(model, clone_function=clone)
    for layer in model.layers:
        if isinstance(layer, tf.keras.layers.InputLayer) or layer.name in replaced:
            continue
        if isinstance(layer, tf.keras.Model) and is_functional(layer):
            continue  # rewritten above, with its own weights
        target = new_model.get_layer(layer.name)
        if target is not layer:
            target.set_weights(layer.get_weights())
    return new_model


def same_outputs(
    layer: tf.keras.layers.Layer, new: tf.keras.layers.Layer, *, rtol: float
) -> bool | None:
    """Whether `new` computes `layer`'s outputs (inference mode) on a seeded probe input,
    to `rtol` and `rtol` × the largest output; None without a static input shape."""
    shape = tf.TensorShape(layer.input_shape).as_list()
    shape[0] = 2
    if any(d is None for d in shape):
        return None
    x = tf.constant(np.random.default_rng(0).normal(size=shape).astype(np.float32))
    want = np.asarray(layer(x, training=False))
    got = np.asarray(new(x, training=False))
    scale = float(np.abs(want).max()) or 1.0
    return want.shape == got.shape and bool(np.allclose(got, want, rtol=rtol, atol=rtol * scale))


__all__ = ["is_functional", "rewrite_layers", "same_outputs"]
