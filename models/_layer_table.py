"""A model's per-layer table (class, name, output shape, parameters, quantizers, pad values).

The golden data in `tests/data/larq_zoo_golden/` is this table computed on
larq-zoo 2.4's models (in a side environment with TensorFlow 2.15, see
`benchmarks/larq_zoo_compat.py`); `tests/test_larq_zoo_compat.py` computes it
on ours and compares. The module imports only TensorFlow, larq and NumPy, so
it runs unchanged in both environments.

Quantizers are described by name, their clip value / bit width, and their
output on a fixed probe tensor (a behavioural fingerprint: two quantizers
with the same probe output compute the same forward pass on it).
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

CONFIG_KEYS = (
    "filters", "units", "kernel_size", "strides", "padding", "dilation_rate", "pad_values",
    "use_bias", "activation", "pool_size", "depth_multiplier", "momentum", "epsilon",
    "center", "scale", "shared_axes", "target_shape", "groups", "trainable",
)  # fmt: skip
QUANTIZER_ATTRS = ("input_quantizer", "kernel_quantizer", "depthwise_quantizer")
PROBE_SHAPE = (3, 3, 2, 4)


def _snake(name: str) -> str:
    name = name.split(">")[-1]
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def _plain(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, str):
        return value.split(">")[-1]
    return value


def probe() -> np.ndarray:
    n = int(np.prod(PROBE_SHAPE))
    return np.linspace(-2.0, 2.0, n, dtype="float32").reshape(PROBE_SHAPE)


def describe_quantizer(quantizer: Any) -> dict | None:
    if quantizer is None:
        return None
    import tensorflow as tf

    name = getattr(quantizer, "__name__", None) or type(quantizer).__name__
    out = {"name": _snake(name)}
    for attr in ("clip_value", "k_bit", "mode"):
        if hasattr(quantizer, attr):
            out[attr] = _plain(getattr(quantizer, attr))
    if "clip_value" not in out:
        # larq's string aliases resolve to functions whose clip value is a default argument
        defaults = getattr(quantizer, "__defaults__", None)
        if defaults:
            out["defaults"] = _plain(list(defaults))
    values = np.asarray(quantizer(tf.constant(probe())))
    # one compact string (not 72 JSON numbers): "%.5g" values, space-separated
    out["probe"] = " ".join(f"{float(v):.5g}" for v in values.ravel())
    return out


def layer_table(model: Any) -> dict:
    """The per-layer table of a built Keras model (JSON-serialisable)."""
    rows = []
    for layer in model.layers:
        config = layer.get_config()
        shape = layer.output_shape
        if isinstance(shape, list) and len(shape) == 1:
            shape = shape[0]
        row = {
            "class": type(layer).__name__,
            "name": layer.name,
            "output_shape": _plain(list(shape)),
            "params": int(layer.count_params()) if layer.built else 0,
            "trainable_params": int(sum(int(np.prod(w.shape)) for w in layer.trainable_weights)),
            "weight_shapes": [list(map(int, w.shape)) for w in layer.weights],
            "config": {k: _plain(config[k]) for k in CONFIG_KEYS if k in config},
        }
        if type(layer).__name__ == "TFOpLambda":
            row["function"] = config.get("function")
        quantizers = {
            a: describe_quantizer(getattr(layer, a)) for a in QUANTIZER_ATTRS if hasattr(layer, a)
        }
        if quantizers:
            row["quantizers"] = quantizers
        rows.append(row)
    return {
        "model": model.name,
        "params": int(model.count_params()),
        "input_shape": _plain(list(model.input_shape)),
        "output_shape": _plain(list(model.output_shape)),
        "layers": rows,
    }
