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
   the converter prints an error and keeps a float conv) — unless they are
   split into per-group convs first (`converters.split_grouped_convs`, which
   `convert` applies by default).

Each layer also gets the LCE kernels predicted to run it (`kernels`, see
`converters.rules.KERNEL_RULES`): a grouped binary conv left grouped runs on
the indirect kernel only, never on the default kernel that ARM devices and
Android use.

Anything else silently stays float: `QuantDense` (no binary fully-connected
op; `rewrite_binary_dense` fixes that), depthwise/separable/transposed/1-D/3-D
and locally-connected layers, ternary and k-bit quantizers. `lint(model)`
predicts the outcome for every layer with weights that multiply (every "MAC
layer") before anything is converted; `converters.report` checks the
prediction against the real flatbuffer.

The acceptance rules themselves live in `converters.rules`. Layers are
recognised through their interfaces only (an `input_quantizer`
attribute, a `kernel_quantizer` with a `precision`), so user-defined layers
get the same treatment as larq's and bnn_tf's. Custom input quantizers that
are not larq's are checked by converting a one-layer probe model with LCE
(about a second, once per quantizer configuration).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import tensorflow as tf

from bnn_tf import introspect
from bnn_tf.converters import groups as grouping
from bnn_tf.converters.binary_dense import BinaryDenseConv, rewrite_problem
from bnn_tf.converters.rules import (
    BINARY,
    DEFAULT_KERNEL,
    FLOAT,
    INDIRECT_KERNEL,
    KERNELS,
    SIGN_FIX,
    input_quantizer_problem,
    is_quantized,
    kernel_problem,
    layer_kind,
)


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
        kernels: the LCE binary-conv kernels predicted to run this layer correctly
            (`"default"`: ARM / Android AAR; `"indirect"`: indirect BGEMM); float
            layers run on both. The conversion report gives the measured answer.
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
    kernels: list[str] = field(default_factory=lambda: list(KERNELS))

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
    def kernels(self) -> list[str]:
        """The kernels predicted to run every layer (empty: no single kernel runs the model)."""
        return [k for k in KERNELS if all(k in entry.kernels for entry in self.layers)]

    @property
    def kernel_blockers(self) -> dict[str, list[str]]:
        """Per kernel, the layers it cannot run."""
        return {k: [e.name for e in self.layers if k not in e.kernels] for k in KERNELS}

    @property
    def expected_binary(self) -> list[str]:
        return [entry.name for entry in self.layers if entry.prediction == BINARY]

    def to_dict(self) -> dict:
        return {
            "target": self.target,
            "expected_binary": self.expected_binary,
            "fallbacks": [entry.name for entry in self.fallbacks],
            "kernels": self.kernels,
            "kernel_blockers": self.kernel_blockers,
            "layers": [entry.to_dict() for entry in self.layers],
        }

    def format(self) -> str:
        quantized = [e for e in self.layers if e.quantized]
        lines = [
            f"{len(self.expected_binary)} of {len(quantized)} quantized layer(s) will run on "
            f"LCE binary kernels (target {self.target})."
        ]
        lines.append(kernel_verdict(self.kernels, self.kernel_blockers))
        for entry in self.layers:
            if entry.falls_back or entry.notes:
                head = "FLOAT " if entry.prediction == FLOAT else "note  "
                lines.append(f"  {head}{entry.name} ({entry.layer_type})")
                lines += [f"        why: {r}" for r in entry.reasons]
                lines += [f"        fix: {f}" for f in entry.fixes]
                lines += [f"        note: {n}" for n in entry.notes]
        return "\n".join(lines)


def kernel_verdict(kernels: list[str], blockers: dict[str, list[str]]) -> str:
    """One line: which LCE kernels run the whole model, and which layers block the others."""
    names = {DEFAULT_KERNEL: "default (ARM, Android AAR)", INDIRECT_KERNEL: "indirect BGEMM"}
    parts = []
    for k in KERNELS:
        if k in kernels:
            parts.append(f"{names[k]}: yes")
        else:
            shown = ", ".join(blockers[k][:4]) + (" ..." if len(blockers[k]) > 4 else "")
            parts.append(f"{names[k]}: NO ({shown})")
    head = "kernels that run the whole model: "
    if not kernels:
        head = "NO single LCE kernel runs the whole model correctly: "
    return head + "; ".join(parts)


# ------------------------------------------------------------------ helpers


# The one walker (bnn_tf.introspect); `walk` stays a public name of this module.
walk = introspect.layers


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


def _lint_groups(layer, entry: LayerLint, problems: list, groups: int, *, split_groups: bool):
    if getattr(layer, "split_groups", False):
        return  # the layer itself emits one ungrouped binary conv per group
    problem = grouping.split_problem(layer) if split_groups else "split_groups=False"
    if problem is None:
        entry.notes.append(
            f"grouped binary conv ({groups} groups): `convert` splits it into {groups} per-group "
            "binary convs + a concat, so LCE's default kernel (ARM, Android AAR) runs it "
            "(split_groups=False / --keep-groups keeps one grouped conv, indirect kernel only)"
        )
        return
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
            f"grouped conv with {per_group} input channels per group, kept grouped ({problem}): "
            "LCE rejects binary grouped convs unless that is a multiple of 32 (prints an error, "
            "keeps a float conv)",
            "convert with split_groups=True (the default), or make input channels / groups a "
            "multiple of 32",
        ))  # fmt: skip
        return
    entry.kernels = [INDIRECT_KERNEL]
    fix = (
        "convert with split_groups=True (the default)"
        if not split_groups
        else "convert its inference/export form (EBConv2D: bnn_tf.methods.ebconv_export."
        "export_model, which splits groups itself)"
    )
    entry.notes.append(
        f"grouped binary conv kept grouped ({problem}): runs with the indirect BGEMM kernel only; "
        f"LCE's default kernel (ARM, Android AAR) rejects grouped bconvs. Fix: {fix}"
    )


def lint_layer(
    layer: tf.keras.layers.Layer,
    *,
    target: str = "arm",
    probe: bool = True,
    split_groups: bool = True,
) -> LayerLint | None:
    """The prediction for one layer (None if it does no weight multiplication)."""
    if isinstance(layer, grouping.GroupSplitConv2D):
        entry = lint_layer(layer.parts[0], target=target, probe=probe)
        if entry is None:
            return None
        entry.name, entry.layer_type = layer.name, type(layer).__name__
        entry.macs = None if entry.macs is None else entry.macs * layer.groups
        entry.notes.append(f"{layer.groups} per-group convs of {layer.layer_class} + a concat")
        return entry
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
    terms = getattr(layer, "num_binary_convs", None)
    if terms:
        # Its terms are built to LCE's rules (sign input, +1 padding, ±1 kernel times a
        # per-channel scale); the report checks each against the flatbuffer.
        entry.prediction = BINARY
        entry.macs = None if entry.macs is None else entry.macs * terms
        entry.notes.append(f"{terms} binary convs (one per weight × activation basis), summed")
        return entry

    if kind == "dense":
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
    in_problem = input_quantizer_problem(getattr(layer, "input_quantizer", None), probe=probe)
    if in_problem:
        problems.append((in_problem, SIGN_FIX))
    k_problem = kernel_problem(layer)
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
    groups = grouping.groups_of(layer)
    if groups > 1 and not problems:
        _lint_groups(layer, entry, problems, groups, split_groups=split_groups)
    if problems:
        entry.reasons += [p for p, _ in problems]
        entry.fixes += [f for _, f in problems]
    else:
        entry.prediction = BINARY
    return entry


def lint(
    model: tf.keras.Model, *, target: str = "arm", probe: bool = True, split_groups: bool = True
) -> LintReport:
    """Predict, for every MAC layer of `model`, whether LCE will emit a binary kernel.

    Args:
        model: any Keras model (nested models are walked).
        target: LCE target ("arm" or "xcore"); SAME-zero padding depends on it.
        probe: check input quantizers that are not larq's by converting a
            one-layer probe with LCE (accurate; ≈ 1 s per distinct quantizer).
            With `probe=False` a precision-1 quantizer is assumed sign-like.
        split_groups: predict for `convert(..., split_groups=...)`: True (the
            default) splits grouped binary convs into per-group convs.
    """
    layers = []
    for layer in walk(model):
        entry = lint_layer(layer, target=target, probe=probe, split_groups=split_groups)
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
