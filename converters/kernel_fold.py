"""Large quantized kernels computed before conversion, so LCE sees constants.

A larq layer's kernel quantizer (sign, sign × mean|W|, XNOR's per-channel
α, ...) is a function of the kernel only, so at inference it is a constant.
TensorFlow's graph optimiser folds it into one, which is what LCE's
binary-conv pattern needs (a ±α constant filter), but Grappler refuses to
fold a constant over 10 MiB (`kMaxConstantSize`). Above that size the
quantizer runs in the `.tflite` at every inference (ABS, MEAN, SIGN, MUL over
the whole kernel) and the layer stays a float conv: XNOR-Net's `fc6`
(6×6×256×4096 floats, 151 MB) costs ≈ 1 s per image that way. Worse, LCE
0.16's converter fails outright on DoReFa-Net's 9216×4096 `QuantDense` with a
magnitude-aware sign kernel ("cannot create std::vector larger than
max_size()", or a segmentation fault), for larq-zoo's model and ours alike.

`fold_kernel_quantizers(model)` returns a copy of a functional/Sequential
model in which every such layer (kernel quantizer set, kernel ≥
`FOLD_MIN_BYTES`) has its quantized kernel computed once, eagerly, and stored
as the kernel, with `kernel_quantizer=None`. Same class, same config
otherwise, same input quantizer: the same function (each copy is checked on a
probe input), and the graph LCE receives is what it would get if Grappler
folded the constant. Smaller kernels are left to Grappler, so models that
converted before convert to the same flatbuffer. `converters.convert` applies
it by default.
"""

from __future__ import annotations

import logging

import larq as lq
import numpy as np
import tensorflow as tf

from bnn_tf import introspect
from bnn_tf.converters.rewrite import is_functional, rewrite_layers, same_outputs

log = logging.getLogger("bnn_tf")

# Grappler's kMaxConstantSize: constants above it are not folded.
FOLD_MIN_BYTES = 10 * 1024 * 1024
_QUANTIZED = (lq.layers.QuantConv2D, lq.layers.QuantDense)


def needs_folding(layer: tf.keras.layers.Layer, min_bytes: int | None = None) -> bool:
    """Whether `layer` has a kernel quantizer on a kernel of ≥ `min_bytes` (default: too
    large for Grappler to fold, `FOLD_MIN_BYTES`)."""
    min_bytes = FOLD_MIN_BYTES if min_bytes is None else min_bytes
    if not isinstance(layer, _QUANTIZED) or getattr(layer, "kernel_quantizer", None) is None:
        return False
    kernel = getattr(layer, "kernel", None)
    return kernel is not None and int(np.prod(kernel.shape)) * kernel.dtype.size >= min_bytes


def folded_layer(layer: tf.keras.layers.Layer) -> tf.keras.layers.Layer:
    """A copy of `layer` whose kernel is its quantized kernel and which has no kernel quantizer."""
    config = {**layer.get_config(), "kernel_quantizer": None}
    new = layer.__class__.from_config(config)
    new.build(layer.input_shape)
    quantized = np.asarray(layer.kernel_quantizer(tf.convert_to_tensor(layer.kernel)))
    index = next(i for i, w in enumerate(layer.weights) if w is layer.kernel)
    values = layer.get_weights()
    values[index] = quantized.astype(values[index].dtype)
    new.set_weights(values)
    _check_same(layer, new)
    return new


def _check_same(layer: tf.keras.layers.Layer, new: tf.keras.layers.Layer) -> None:
    # no static input shape (None): the kernel is the quantizer's own output, nothing to probe
    if same_outputs(layer, new, rtol=1e-5) is False:
        raise ValueError(f"{layer.name}: the precomputed kernel does not give the layer's outputs")


def fold_kernel_quantizers(
    model: tf.keras.Model, *, min_bytes: int | None = None
) -> tf.keras.Model:
    """A copy of `model` with every large quantized kernel precomputed (see the module doc).

    Returns `model` itself when no layer needs it, or when it is subclassed
    (its graph cannot be re-wired; a warning says LCE may not fold those kernels).
    """
    targets = {id(layer) for layer in introspect.layers(model) if needs_folding(layer, min_bytes)}
    if not targets:
        return model
    if not is_functional(model):
        log.warning(
            "%s is a subclassed model: its kernels over %g MiB are not precomputed, and LCE may "
            "keep their quantizers at inference. Build it with the functional API.",
            model.name, (FOLD_MIN_BYTES if min_bytes is None else min_bytes) / 2**20,
        )  # fmt: skip
        return model

    def replace(layer: tf.keras.layers.Layer) -> tf.keras.layers.Layer | None:
        if id(layer) not in targets:
            return None
        try:
            return folded_layer(layer)
        except ValueError as exc:  # a quantizer that is not a function of the kernel alone
            log.warning("%s; its kernel quantizer stays in the graph.", exc)
            return None

    return rewrite_layers(model, replace)


__all__ = ["FOLD_MIN_BYTES", "fold_kernel_quantizers", "folded_layer", "needs_folding"]
