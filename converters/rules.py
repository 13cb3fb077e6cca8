"""LCE's acceptance rules, in one place: when a layer becomes a binary kernel, and which kernel runs it.

Shared by the lint (predictions before converting), `rewrite_binary_dense`
(which dense layers can become 1×1 binary convs), `split_grouped_convs` and
the conversion report. The rules are LCE 0.16's (docs/lce.md):

- an input quantizer is accepted when it lowers to a sign: larq's `ste_sign`,
  `approx_sign`, `swish_sign`, or a custom quantizer whose forward pass is
  `tf.where(x >= 0, 1., -1.)` (checked by converting a one-layer probe);
- a kernel is accepted when its quantizer has precision 1 (±1 × a
  per-output-channel scale);
- **kernels.** LCE's interpreter has two optimised binary-conv kernels:
  `"default"` (the one LCE registers on ARM and in its Android AAR; in the
  Python interpreter `use_indirect_bgemm=False`) and `"indirect"` (indirect
  BGEMM, `use_indirect_bgemm=True`, 4–7× faster on x86_64). The default kernel
  rejects grouped binary convs at `AllocateTensors`; the indirect kernel is
  wrong from the second call on for an `LceBconv2d` inside an `IF` branch
  subgraph. `KERNEL_RULES` states both; `converters.split_grouped_convs`
  removes the first restriction.
"""

from __future__ import annotations

import json

import larq as lq
import tensorflow as tf

BINARY = "binary"
FLOAT = "float"

DEFAULT_KERNEL = "default"
INDIRECT_KERNEL = "indirect"
KERNELS = (DEFAULT_KERNEL, INDIRECT_KERNEL)
KERNEL_RULES = {
    DEFAULT_KERNEL: (
        "grouped binary conv: LCE's default kernel (ARM, Android AAR) rejects grouped bconvs at "
        "AllocateTensors"
    ),
    INDIRECT_KERNEL: (
        "binary conv inside an IF branch subgraph: LCE 0.16's indirect-BGEMM kernel returns wrong "
        "outputs from the second call on"
    ),
}

_SIGN_LIKE = (lq.quantizers.SteSign, lq.quantizers.ApproxSign, lq.quantizers.SwishSign)
_NOT_SIGN = {
    lq.quantizers.SteHeaviside: "outputs {0, 1} (Heaviside), not ±1",
    lq.quantizers.SteTern: "is ternary {-1, 0, +1}",
    lq.quantizers.DoReFa: "is a k-bit (DoReFa) quantizer",
    lq.quantizers.MagnitudeAwareSign: "outputs ±scale (magnitude-aware), not ±1",
}
SIGN_FIX = "use input_quantizer='ste_sign' (or 'approx_sign', or a quantizer whose forward is tf.where(x >= 0, 1., -1.))"


def _precision(quantizer) -> int | None:
    if quantizer is None:
        return None
    return getattr(quantizer, "precision", None)


def layer_kind(layer: tf.keras.layers.Layer) -> str | None:
    """The MAC-layer kind of `layer`, or None if it does no weight multiplication."""
    L = tf.keras.layers
    if getattr(layer, "num_binary_convs", None):
        # A layer that decomposes into several binary convs (multi-basis methods,
        # bnn_tf.methods.multibasis): each term is a conv2d for LCE.
        return "conv2d"
    if isinstance(layer, L.DepthwiseConv2D) or type(layer).__name__ in ("QuantDepthwiseConv2D",):
        return "depthwise"
    if isinstance(layer, (L.SeparableConv2D, L.SeparableConv1D)):
        return "separable"
    if isinstance(layer, (L.Conv2DTranspose, L.Conv3DTranspose, L.Conv1DTranspose)):
        return "transpose"
    if isinstance(layer, L.Conv2D):
        return "conv2d"
    if isinstance(layer, L.Conv1D):
        return "conv1d"
    if isinstance(layer, L.Conv3D):
        return "conv3d"
    if isinstance(layer, (L.LocallyConnected1D, L.LocallyConnected2D)):
        return "locally_connected"
    if isinstance(layer, L.Dense):
        return "dense"
    return None


def is_quantized(layer: tf.keras.layers.Layer) -> bool:
    """The layer has a (non-identity) input or kernel quantizer."""
    for attr in (
        "input_quantizer",
        "kernel_quantizer",
        "depthwise_quantizer",
        "pointwise_quantizer",
    ):
        q = getattr(layer, attr, None)
        if q is not None and not isinstance(q, lq.quantizers.NoOp):
            return True
    return False


def _quantizer_label(q) -> str:
    return getattr(q, "__name__", None) or type(q).__name__


_PROBE_CACHE: dict[str, bool] = {}


def _probe_sign_like(quantizer) -> bool:
    """Convert `Input → QuantConv2D(input_quantizer=copy of quantizer)` with LCE: does it become LceBconv2d?"""
    try:
        key = f"{type(quantizer).__module__}.{type(quantizer).__qualname__}:" + json.dumps(
            lq.quantizers.serialize(quantizer), sort_keys=True, default=str
        )
    except Exception:  # noqa: BLE001  unserialisable: probe it every time
        key = ""
    if key and key in _PROBE_CACHE:
        return _PROBE_CACHE[key]
    try:
        clone = lq.quantizers.deserialize(lq.quantizers.serialize(quantizer))
    except Exception:  # noqa: BLE001  a plain function or unregistered object: use it as is
        clone = quantizer
    import larq_compute_engine as lce

    from bnn_tf.converters.tflite_model import parse

    # Dynamic batch, as in a real conversion: with batch 1 `tf.ones_like(x)`
    # folds to a constant and the probe would pass where the real model fails.
    inputs = tf.keras.Input((4, 4, 32))
    x = lq.layers.QuantConv2D(
        32, 3, input_quantizer=clone, kernel_quantizer="ste_sign", kernel_constraint="weight_clip",
        pad_values=1.0, padding="same", use_bias=False,
    )(inputs)  # fmt: skip
    probe = tf.keras.Model(inputs, x)
    try:
        ok = "LceBconv2d" in parse(bytes(lce.convert_keras_model(probe))).op_counts
    except Exception:  # noqa: BLE001  a quantizer LCE cannot convert is certainly not sign-like for it
        ok = False
    if key:
        _PROBE_CACHE[key] = ok
    return ok


def input_quantizer_problem(q, *, probe: bool) -> str | None:
    """Why `q` is not a sign LCE recognises, or None if it is."""
    if q is None:
        return "input_quantizer is None: activations stay float, LCE needs sign (±1) inputs"
    if type(q) in _SIGN_LIKE:
        return None
    for cls, why in _NOT_SIGN.items():
        if type(q) is cls:
            return f"input quantizer {_quantizer_label(q)} {why}"
    if isinstance(q, lq.quantizers.NoOp):
        return "input quantizer is NoOp (float activations)"
    if isinstance(q, _SIGN_LIKE) and not probe:
        return None
    if not probe:
        return None if _precision(q) == 1 else f"input quantizer {_quantizer_label(q)} is not 1-bit"
    if _probe_sign_like(q):
        return None
    return f"input quantizer {_quantizer_label(q)} does not lower to a sign that LCE recognises"


def kernel_problem(layer) -> str | None:
    q = getattr(layer, "kernel_quantizer", None)
    precision = _precision(q)
    if precision is None:
        precision = getattr(layer, "kernel_precision", None)  # custom layers may declare it
    if q is None and precision is None:
        return "kernel_quantizer is None: float weights, LCE needs ±1 × per-channel scale"
    if isinstance(q, lq.quantizers.NoOp):
        return "kernel quantizer is NoOp (float weights)"
    if precision != 1:
        label = _quantizer_label(q) if q is not None else type(layer).__name__
        what = "ternary" if isinstance(q, lq.quantizers.SteTern) else f"{precision}-bit"
        return f"kernel quantizer {label} is {what}, LCE needs 1-bit (±1 × scale) weights"
    return None


def is_binary_conv(layer: tf.keras.layers.Layer, *, probe: bool = False) -> bool:
    """A channels-last 2-D conv with a sign input quantizer and a 1-bit kernel."""
    if layer_kind(layer) != "conv2d" or not is_quantized(layer):
        return False
    if getattr(layer, "data_format", "channels_last") != "channels_last":
        return False
    return (
        input_quantizer_problem(getattr(layer, "input_quantizer", None), probe=probe) is None
        and kernel_problem(layer) is None
    )


def kernels_for(*, grouped: bool, in_branch: bool) -> list[str]:
    """The kernels that run a binary conv correctly (see `KERNEL_RULES`)."""
    return [k for k, bad in ((DEFAULT_KERNEL, grouped), (INDIRECT_KERNEL, in_branch)) if not bad]
