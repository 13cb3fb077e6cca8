"""The one walker over Keras models: layers, quantizers, binary kernels, schedules.

Every part of bnn-tf that needs to look inside a model (the optimizers'
Bop predicate, the flip-ratio logger, the methods' schedule setters, the
converters' lint) goes through these functions, so "which layers does this
model have" has one answer.

- `layers(model)`: the layers a user sees (nested models expanded), in model order.
- `modules(model)`: every Keras layer object inside `model`, quantizers and the
  sub-layers of custom layers included, each once.
- `binary_kernels(model)`: (layer, kernel) for every kernel that trains as ±1.
- `declared_schedules(model)`: the schedule callbacks the model's methods declare.
- `latent_weight_layers(model)`: binary-kernel layers built for latent-weight training.

A method declares a schedule by giving its layer or quantizer class an attribute
`declared_schedules = (ScheduleCallbackClass, ...)`. Each such class is a Keras
callback with a classmethod `for_run(*, epochs, steps_per_epoch)` returning the
callback for a run, and a classmethod `scheduled_variables(model)` returning
the variables it drives (for tests and logs). Training collects them from the
model; there is no central list of methods.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import tensorflow as tf


def layers(model: tf.keras.layers.Layer) -> Iterator[tf.keras.layers.Layer]:
    """Every layer of `model`, nested models' layers included (depth first, model order)."""
    for layer in getattr(model, "layers", []) or []:
        yield layer
        if isinstance(layer, tf.keras.Model):
            yield from layers(layer)


def modules(
    model: tf.keras.layers.Layer, *, include_self: bool = False
) -> Iterator[tf.keras.layers.Layer]:
    """Every Keras layer object inside `model` (quantizers, sub-layers), each once.

    A layer shared by several sub-models (e.g. the student inside a distiller)
    is yielded once.
    """
    seen: set[int] = set()
    for layer in model._flatten_layers(include_self=include_self, recursive=True):
        if id(layer) not in seen:
            seen.add(id(layer))
            yield layer


def quantizers(layer: tf.keras.layers.Layer) -> list[Any]:
    """The input and kernel quantizers a (larq-style) layer carries, if any."""
    return [
        q
        for q in (getattr(layer, "input_quantizer", None), getattr(layer, "kernel_quantizer", None))
        if q is not None
    ]


def find(model: tf.keras.layers.Layer, kind: type | tuple[type, ...]) -> list[Any]:
    """Every module of `model`, or quantizer of one, that is an instance of `kind`, each once."""
    found: dict[int, Any] = {}
    for module in modules(model, include_self=True):
        for candidate in (module, *quantizers(module)):
            if isinstance(candidate, kind):
                found[id(candidate)] = candidate
    return list(found.values())


def _binarises(quantizer: Any, kernel: Any) -> bool:
    if getattr(quantizer, "precision", None) == 1 or getattr(kernel, "precision", None) == 1:
        return True
    latent = getattr(kernel, "latent_variable", kernel)
    try:
        q = tf.reshape(tf.abs(quantizer(tf.convert_to_tensor(latent))), (-1, latent.shape[-1]))
    except (TypeError, ValueError, tf.errors.OpError):
        return False
    spread = tf.reduce_max(q, 0) - tf.reduce_min(q, 0)
    return bool(tf.reduce_all(spread <= 1e-6 * tf.reduce_max(q, 0)))


def binary_kernels(model: tf.keras.Model) -> list[tuple[tf.keras.layers.Layer, Any]]:
    """(layer, kernel) for every layer whose kernel quantizer binarises.

    A quantizer counts as binarising if it declares precision 1 (larq's sign
    quantizers) or if, applied to the current kernel, it yields one magnitude
    per output channel (a custom `tf.where(w >= 0, 1., -1.)` without `precision`).
    """
    found = []
    for layer in modules(model):
        quantizer = getattr(layer, "kernel_quantizer", None)
        kernel = getattr(layer, "kernel", None)
        if quantizer is not None and kernel is not None and _binarises(quantizer, kernel):
            found.append((layer, kernel))
    return found


def latent_weight_layers(model: tf.keras.layers.Layer) -> list[tf.keras.layers.Layer]:
    """The binary-kernel layers of `model` built for latent-weight training, in model order.

    A layer counts when its binary kernel has a constraint or regulariser (the
    BinaryConnect clip: meaningless under Bop, which keeps weights at ±1), or
    when the layer or its kernel quantizer declares `latent_weights = True`
    (a scale computed from the real-valued weights, e.g. XNOR-Net's α, which
    Bop would freeze).
    """
    found = []
    for layer, _ in binary_kernels(model):
        built_latent = (
            getattr(layer, "kernel_constraint", None) is not None
            or getattr(layer, "kernel_regularizer", None) is not None
        )
        if declares_latent_weights(layer) or built_latent:
            found.append(layer)
    return found


def declares_latent_weights(layer: tf.keras.layers.Layer) -> bool:
    """Whether `layer` or its kernel quantizer declares `latent_weights = True`."""
    return bool(
        getattr(layer, "latent_weights", False)
        or getattr(getattr(layer, "kernel_quantizer", None), "latent_weights", False)
    )


def declared_schedules(model: tf.keras.layers.Layer) -> list[type]:
    """The schedule callback classes that `model`'s layers and quantizers declare, in model order."""
    found: dict[type, None] = {}
    for module in modules(model, include_self=True):
        for candidate in (module, *quantizers(module)):
            for schedule in getattr(type(candidate), "declared_schedules", ()):
                found[schedule] = None
    return list(found)
