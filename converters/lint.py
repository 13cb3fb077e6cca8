"""Pre-conversion lint: which quantized layers LCE will run on binary kernels, and why not.

LCE (docs/lce.md) turns a layer into `LceBconv2d` only when all of these hold:

1. it is a 2-D convolution (`Conv2D`/`QuantConv2D` or a subclass), NHWC;
2. its input quantizer lowers to a sign (`select(x >= 0, 1, -1)` or
   `sign(sign(x) + c)`): larq's `ste_sign`, `approx_sign`, `swish_sign`, or a
   custom quantizer with that forward pass;
3. its kernel is ±1 × a per-output-channel scale (kernel quantizer precision 1);
4. padding is VALID, or SAME with `pad_values=1.0` (fast path); SAME with
   zeros works only for target "arm" and then forces float output;
5. grouped convs have a multiple of 32 input channels per group (otherwise
   the converter prints an error and keeps a float conv).

Anything else silently stays float: `QuantDense` (no binary fully-connected
op; `rewrite_binary_dense` fixes that), depthwise/separable/transposed/1-D/3-D
and locally-connected layers, ternary and k-bit quantizers. `lint(model)`
predicts the outcome for every layer with weights that multiply (every "MAC
layer") before anything is converted; `converters.report` checks the
prediction against the real flatbuffer.

Layers are recognised through their interfaces only (an `input_quantizer`
attribute, a `kernel_quantizer` with a `precision`), so user-defined layers
get the same treatment as larq's and bnn_tf's. Custom input quantizers that
are not larq's are checked by converting a one-layer probe model with LCE
(about a second, once per quantizer configuration).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import larq as lq
import numpy as np
import tensorflow as tf

from bnn_tf import introspect

BINARY = "binary"
FLOAT = "float"

_SIGN_LIKE = (lq.quantizers.SteSign, lq.quantizers.ApproxSign, lq.quantizers.SwishSign)
_NOT_SIGN = {
    lq.quantizers.SteHeaviside: "outputs {0, 1} (Heaviside), not ±1",
    lq.quantizers.SteTern: "is ternary {-1, 0, +1}",
    lq.quantizers.DoReFa: "is a k-bit (DoReFa) quantizer",
    lq.quantizers.MagnitudeAwareSign: "outputs ±scale (magnitude-aware), not ±1",
}
_SIGN_FIX = "use input_quantizer='ste_sign' (or 'approx_sign', or a quantizer whose forward is tf.where(x >= 0, 1., -1.))"


@dataclass
class LayerLint:
    """The prediction for one layer that multiplies weights with its input.

    Attributes:
        name: Keras layer name (nested models: the inner layer's own name).
        layer_type: class name.
        kind: "conv2d", "dense", "depthwise", "separable", "transpose", "conv1d", "conv3d",
            "locally_connected" or "other".
        quantized: the layer has an input or kernel quantizer.
        prediction: "binary" (becomes `LceBconv2d`) or "float".
        reasons: why it will not be binary (empty when binary, or when float by design).
        fixes: what to change to get a binary kernel.
        notes: binary but slower than it could be, or runtime caveats.
        macs: multiply-accumulates per image from the Keras shapes (None if unknown).
    """

    name: str
    layer_type: str
    kind: str
    quantized: bool
    prediction: str
    reasons: list[str] = field(default_factory=list)
    fixes: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    macs: int | None = None

    @property
    def falls_back(self) -> bool:
        """A quantized layer that will not run on a binary kernel."""
        return self.quantized and self.prediction != BINARY

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class LintReport:
    """`lint` result: one `LayerLint` per MAC layer, in model order."""

    layers: list[LayerLint]
    target: str

    @property
    def fallbacks(self) -> list[LayerLint]:
        return [entry for entry in self.layers if entry.falls_back]

    @property
    def expected_binary(self) -> list[str]:
        return [entry.name for entry in self.layers if entry.prediction == BINARY]

    def to_dict(self) -> dict:
        return {
            "target": self.target,
            "expected_binary": self.expected_binary,
            "fallbacks": [entry.name for entry in self.fallbacks],
            "layers": [entry.to_dict() for entry in self.layers],
        }

    def format(self) -> str:
        quantized = [e for e in self.layers if e.quantized]
        lines = [
            f"{len(self.expected_binary)} of {len(quantized)} quantized layer(s) will run on "
            f"LCE binary kernels (target {self.target})."
        ]
        for entry in self.layers:
            if entry.falls_back or entry.notes:
                head = "FLOAT " if entry.prediction == FLOAT else "note  "
                lines.append(f"  {head}{entry.name} ({entry.layer_type})")
                lines += [f"        why: {r}" for r in entry.reasons]
                lines += [f"        fix: {f}" for f in entry.fixes]
                lines += [f"        note: {n}" for n in entry.notes]
        return "\n".join(lines)


# ------------------------------------------------------------------ helpers


# The one walker (bnn_tf.introspect); `walk` stays a public name of this module.
walk = introspect.layers

_walk = walk


def _precision(quantizer) -> int | None:
    if quantizer is None:
        return None
    return getattr(quantizer, "precision", None)


def layer_kind(layer: tf.keras.layers.Layer) -> str | None:
    """The MAC-layer kind of `layer`, or None if it does no weight multiplication."""
    L = tf.keras.layers
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


def _input_quantizer_problem(q, *, probe: bool) -> str | None:
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


def _kernel_problem(layer) -> str | None:
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


def _macs(layer, kind: str) -> int | None:
    try:
        out = layer.output_shape
        kernel = layer.kernel if hasattr(layer, "kernel") else None
    except (AttributeError, RuntimeError):  # layer used several times, or not built
        return None
    if isinstance(out, list):
        return None
    spatial = [d for d in out[1:-1]]
    if any(d is None for d in spatial):
        return None
    positions = int(np.prod(spatial)) if spatial else 1
    try:
        if (
            kind in ("conv2d", "conv1d", "conv3d", "dense", "locally_connected")
            and kernel is not None
        ):
            return (
                positions * int(np.prod(kernel.shape[:-1])) * int(kernel.shape[-1])
                if kind != "locally_connected"
                else int(np.prod(kernel.shape))
            )
        if kind == "depthwise":
            k = layer.depthwise_kernel.shape
            return positions * int(np.prod(k))
        if kind == "separable":
            d, p = layer.depthwise_kernel.shape, layer.pointwise_kernel.shape
            return positions * (int(np.prod(d)) + int(np.prod(p)))
        if kind == "transpose" and kernel is not None:
            in_shape = layer.input_shape
            in_positions = int(np.prod([d for d in in_shape[1:-1]]))
            return in_positions * int(np.prod(kernel.shape))
    except (TypeError, AttributeError):
        return None
    return None


# ---------------------------------------------------------------------- lint


def lint_layer(
    layer: tf.keras.layers.Layer, *, target: str = "arm", probe: bool = True
) -> LayerLint | None:
    """The prediction for one layer (None if it does no weight multiplication)."""
    kind = layer_kind(layer)
    if kind is None:
        return None
    quantized = is_quantized(layer)
    entry = LayerLint(
        name=layer.name, layer_type=type(layer).__name__, kind=kind, quantized=quantized,
        prediction=FLOAT, macs=_macs(layer, kind),
    )  # fmt: skip
    if not quantized:
        return entry  # float by design (stem, classifier, float twin)

    if kind == "dense":
        from bnn_tf.converters.binary_dense import BinaryDenseConv, rewrite_problem

        if isinstance(layer, BinaryDenseConv):
            entry.prediction = BINARY
            return entry
        problem = rewrite_problem(layer, probe=probe)
        entry.reasons.append(
            "LCE has no binary fully-connected op: QuantDense runs as float FULLY_CONNECTED"
        )
        if problem is None:
            entry.fixes.append(
                "rewrite it to a 1×1 binary conv with converters.rewrite_binary_dense(model) "
                "(`bnn-tf convert` does this by default), identical outputs"
            )
        else:
            entry.reasons.append(problem)
            entry.fixes.append(
                "give it a sign input quantizer and a 1-bit kernel quantizer, then rewrite_binary_dense"
            )
        return entry
    if kind != "conv2d":
        why = {
            "depthwise": "LCE has no binary depthwise kernel",
            "separable": "LCE has no binary separable (depthwise + pointwise) kernel",
            "transpose": "LCE has no binary transposed-convolution kernel",
            "conv1d": "LCE matches 2-D convolutions only",
            "conv3d": "LCE matches 2-D convolutions only",
            "locally_connected": "locally-connected layers have no LCE kernel",
        }[kind]
        entry.reasons.append(f"{why}: {type(layer).__name__} stays float")
        entry.fixes.append(
            "use a QuantConv2D (grouped with groups=C/32 instead of depthwise; Conv2D on a reshaped "
            "input instead of 1-D), or keep this layer float on purpose"
        )
        return entry

    problems = []
    in_problem = _input_quantizer_problem(getattr(layer, "input_quantizer", None), probe=probe)
    if in_problem:
        problems.append((in_problem, _SIGN_FIX))
    k_problem = _kernel_problem(layer)
    if k_problem:
        problems.append(
            (
                k_problem,
                "use kernel_quantizer='ste_sign' (or another 1-bit quantizer, e.g. magnitude_aware_sign)",
            )
        )
    if getattr(layer, "data_format", "channels_last") != "channels_last":
        problems.append(
            (
                "data_format='channels_first': LCE matches NHWC convolutions only",
                "use channels_last",
            )
        )
    padding = getattr(layer, "padding", "valid")
    pad_values = getattr(layer, "pad_values", 0.0)
    if padding == "same" and not tf.is_tensor(pad_values):
        if pad_values == 1.0:
            pass
        elif pad_values == 0.0:
            if target == "arm":
                entry.notes.append(
                    "SAME padding with zeros (larq's default): binary, but LCE adds a correction "
                    "step, cannot fuse an activation and always writes float output. Fix: pad_values=1.0"
                )
            else:
                problems.append(
                    (
                        f"SAME padding with zeros is only supported for target 'arm' (target {target!r})",
                        "set pad_values=1.0",
                    )
                )
        else:
            problems.append(
                (f"pad_values={pad_values}: LCE supports only 0 and 1", "set pad_values=1.0")
            )
    groups = int(getattr(layer, "groups", 1) or 1)
    if groups > 1 and not problems:
        try:
            # Input channels per group: second-to-last axis for HWIO kernels and for
            # rank-5 expert banks (N, kh, kw, Cin/g, Cout) alike.
            per_group = int(layer.kernel.shape[-2])
        except (AttributeError, TypeError):
            per_group = None
        if per_group is not None and per_group % 32 != 0:
            # Measured (LCE 0.16): the converter prints "Invalid binary grouped
            # convolution" and leaves a float CONV_2D; it does not raise.
            problems.append((
                f"grouped conv with {per_group} input channels per group: LCE rejects binary grouped "
                "convs unless that is a multiple of 32 (prints an error, keeps a float conv)",
                "make input channels / groups a multiple of 32",
            ))  # fmt: skip
        else:
            entry.notes.append(
                "grouped binary conv: runs with the indirect BGEMM kernel only; LCE's default kernel "
                "(and its Android AAR) rejects grouped bconvs"
            )
    if problems:
        entry.reasons += [p for p, _ in problems]
        entry.fixes += [f for _, f in problems]
    else:
        entry.prediction = BINARY
    return entry


def lint(model: tf.keras.Model, *, target: str = "arm", probe: bool = True) -> LintReport:
    """Predict, for every MAC layer of `model`, whether LCE will emit a binary kernel.

    Args:
        model: any Keras model (nested models are walked).
        target: LCE target ("arm" or "xcore"); SAME-zero padding depends on it.
        probe: check input quantizers that are not larq's by converting a
            one-layer probe with LCE (accurate; ≈ 1 s per distinct quantizer).
            With `probe=False` a precision-1 quantizer is assumed sign-like.
    """
    layers = []
    for layer in walk(model):
        entry = lint_layer(layer, target=target, probe=probe)
        if entry is not None:
            layers.append(entry)
    return LintReport(layers=layers, target=target)


def binary_conv_layers(model: tf.keras.Model) -> list[str]:
    """Names of the layers that LCE should run as `LceBconv2d` (nested models included).

    Those are the layers `lint` predicts binary (without probe conversions:
    a 1-bit custom input quantizer is taken as sign-like).
    """
    return [
        entry.name
        for entry in (lint_layer(layer, probe=False) for layer in walk(model))
        if entry is not None and entry.prediction == BINARY
    ]
