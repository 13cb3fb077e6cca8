"""Post-conversion report: which Keras layers became binary kernels in the `.tflite`.

LCE prints nothing about which layers it accelerated. `conversion_report`
maps the multiply-accumulate ops of the flatbuffer (`LceBconv2d`, `CONV_2D`,
`DEPTHWISE_CONV_2D`, `FULLY_CONNECTED`, `TRANSPOSE_CONV`) back to the Keras
layers they came from and reports, per layer: binary kernel or float, MACs,
and whether the output stays bitpacked (fed straight to the next binary conv)
or is written as float; in total: the fraction of MACs on binary kernels, the
float ops left and the size.

**Mapping.** LCE names tensors after fused graph locations, truncated to 50
characters, and names weights `arith.constant*`, so names alone are not
reliable. Each op is matched to a layer by its weight geometry (kernel size,
input channels per group, output channels) and output spatial size, in
execution order; among layers with the same geometry, one whose name appears
in the op's tensor names wins, else the first in model order. An op that
matches no layer is listed as unmapped.

MACs come from the flatbuffer shapes:
conv `H_out·W_out·C_out·k_h·k_w·C_in/groups`; depthwise `H_out·W_out·C_out·k_h·k_w`;
fully connected `rows·C_in·C_out`; transposed conv `H_in·W_in·C_in·C_out·k_h·k_w`.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field

import numpy as np
import tensorflow as tf

from bnn_tf.converters.binary_dense import BinaryDenseConv
from bnn_tf.converters.groups import GroupSplitConv2D, groups_of
from bnn_tf.converters.lint import LintReport, kernel_verdict, lint, walk
from bnn_tf.converters.rules import (
    BINARY,
    DEFAULT_KERNEL,
    FLOAT,
    INDIRECT_KERNEL,
    KERNEL_RULES,
    KERNELS,
    kernels_for,
)
from bnn_tf.converters.tflite_model import LCE_OPS, lce_options, op_names, parse_root

MAC_OPS = frozenset(
    {
        "LceBconv2d",
        "CONV_2D",
        "DEPTHWISE_CONV_2D",
        "FULLY_CONNECTED",
        "TRANSPOSE_CONV",
        "CONV_3D",
        "BATCH_MATMUL",
    }
)
# TFLite TensorType codes that matter here.
_INT32, _INT8, _FLOAT32 = 2, 9, 0


@dataclass
class OpInfo:
    """One MAC op of the flatbuffer."""

    index: int  # execution order over all subgraphs
    subgraph: int
    op: str
    macs: int
    output: str  # "bitpacked", "float" or "int8"
    weight_bytes: int
    geometry: tuple  # (kind, k_h, k_w, c_in_per_group, c_out), kind as in lint
    spatial: tuple[int, ...]
    names: tuple[str, ...]
    layer: str | None = None
    groups: int = 1

    @property
    def kernels(self) -> list[str]:
        """The LCE kernels that run this op correctly (all of them for non-binary ops)."""
        if self.op != "LceBconv2d":
            return list(KERNELS)
        return kernels_for(grouped=self.groups > 1, in_branch=self.subgraph > 0)


@dataclass
class LayerRow:
    """One Keras MAC layer in the report."""

    name: str
    layer_type: str
    quantized: bool
    predicted: str  # lint: "binary" / "float"
    actual: str  # "binary", "float", "mixed", or "missing" (no op found)
    ops: list[str]
    macs: int
    binary_macs: int
    output: str  # "bitpacked", "float", "int8" or "-" when missing
    weight_bytes: int
    reasons: list[str] = field(default_factory=list)
    fixes: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    kernels: list[str] = field(default_factory=lambda: list(KERNELS))
    kernel_problems: list[str] = field(default_factory=list)

    @property
    def fell_back(self) -> bool:
        """A quantized layer that is not (entirely) on a binary kernel."""
        return self.quantized and self.actual != BINARY

    def to_dict(self) -> dict:
        return {**asdict(self), "fell_back": self.fell_back}


@dataclass
class ConversionReport:
    """Per-layer binarization report of one conversion (see module docstring)."""

    layers: list[LayerRow]
    unmapped_ops: list[dict]
    op_counts: dict[str, int]
    size_bytes: int
    total_macs: int
    binary_macs: int
    float_ops: int
    float_mac_ops: int
    requires_lce: bool
    target: str
    unmapped_kernel_problems: dict[str, list[str]] = field(default_factory=dict)

    @property
    def kernel_blockers(self) -> dict[str, list[str]]:
        """Per LCE kernel, the layers (or unmapped ops) it cannot run correctly."""
        out = {k: [row.name for row in self.layers if k not in row.kernels] for k in KERNELS}
        for k, ops in self.unmapped_kernel_problems.items():
            out[k] += ops
        return out

    @property
    def kernels(self) -> list[str]:
        """The LCE kernels that run the whole model correctly (empty: none does).

        `"default"` is the kernel ARM devices and LCE's Android AAR use; a model
        that needs `"indirect"` runs only where indirect BGEMM is registered.
        """
        return [k for k, blocked in self.kernel_blockers.items() if not blocked]

    @property
    def binary_mac_fraction(self) -> float:
        return self.binary_macs / self.total_macs if self.total_macs else 0.0

    @property
    def fallbacks(self) -> list[LayerRow]:
        """Quantized layers that fell back to float (what `--strict` fails on)."""
        return [row for row in self.layers if row.fell_back]

    @property
    def lint_mismatches(self) -> list[LayerRow]:
        """Layers where the pre-conversion prediction was wrong (should be empty)."""
        out = []
        for row in self.layers:
            if row.actual == "missing":
                continue
            if (row.predicted == BINARY) != (row.actual == BINARY):
                out.append(row)
        return out

    def to_dict(self) -> dict:
        return {
            "target": self.target,
            "size_bytes": self.size_bytes,
            "requires_lce": self.requires_lce,
            "total_macs": self.total_macs,
            "binary_macs": self.binary_macs,
            "binary_mac_fraction": self.binary_mac_fraction,
            "float_ops": self.float_ops,
            "float_mac_ops": self.float_mac_ops,
            "op_counts": self.op_counts,
            "fallbacks": [row.name for row in self.fallbacks],
            "kernels": self.kernels,
            "kernel_blockers": self.kernel_blockers,
            "lint_mismatches": [row.name for row in self.lint_mismatches],
            "layers": [row.to_dict() for row in self.layers],
            "unmapped_ops": self.unmapped_ops,
        }

    def format(self) -> str:
        """The human table: one line per MAC layer, then totals and the fallbacks with fixes."""
        header = ("layer", "type", "kernel", "MACs", "output", "runs on", "ops")
        rows = [
            (
                row.name,
                row.layer_type,
                row.actual + ("" if row.quantized else " (not quantized)"),
                _human(row.macs),
                row.output,
                "+".join(row.kernels) or "NONE",
                ",".join(sorted(set(row.ops))) or "-",
            )
            for row in self.layers
        ]
        rows += [("(unmapped)", "-", "binary" if u["op"] == "LceBconv2d" else "float", _human(u["macs"]), u["output"], "+".join(u.get("kernels", KERNELS)), u["op"])
                 for u in self.unmapped_ops]  # fmt: skip
        widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
        lines = ["  ".join(str(c).ljust(w) for c, w in zip(header, widths, strict=True)).rstrip()]
        lines.append("  ".join("-" * w for w in widths))
        lines += [
            "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
            for r in rows
        ]
        n_quant = sum(row.quantized for row in self.layers)
        n_binary = sum(row.quantized and row.actual == BINARY for row in self.layers)
        lines.append("")
        lines.append(
            f"binary MACs: {self.binary_mac_fraction:.1%} of {_human(self.total_macs)}   "
            f"quantized layers on binary kernels: {n_binary} of {n_quant}   "
            f"float ops left: {self.float_ops} ({self.float_mac_ops} with MACs)   "
            f"size: {self.size_bytes:,} bytes"
        )
        lines.append(
            "runtime: " + ("LCE (custom ops: " + ", ".join(sorted(k for k in self.op_counts if k in LCE_OPS)) + ")"
                           if self.requires_lce else "stock TFLite")
        )  # fmt: skip
        lines.append(kernel_verdict(self.kernels, self.kernel_blockers))
        for row in self.layers:
            for problem in row.kernel_problems:
                lines.append(f"kernel: {row.name}: {problem}")
        for row in self.fallbacks:
            lines.append(f"FELL BACK TO FLOAT: {row.name} ({row.layer_type})")
            lines += [
                f"    why: {r}" for r in row.reasons or ["unknown (the lint predicted binary)"]
            ]
            lines += [f"    fix: {f}" for f in row.fixes]
        for row in self.layers:
            for note in row.notes:
                lines.append(f"note: {row.name}: {note}")
        for row in self.lint_mismatches:
            lines.append(f"lint mismatch: {row.name} predicted {row.predicted}, got {row.actual}")
        return "\n".join(lines)


def _kernel_problems(ops: list[OpInfo]) -> list[str]:
    binary = [op for op in ops if op.op == "LceBconv2d"]
    grouped = sorted({op.groups for op in binary if op.groups > 1})
    branches = sorted({op.subgraph for op in binary if op.subgraph > 0})
    problems = []
    if grouped:
        problems.append(
            f"grouped LceBconv2d ({'/'.join(map(str, grouped))} groups): {KERNEL_RULES[DEFAULT_KERNEL]}"
        )
    if branches:
        problems.append(
            f"LceBconv2d in branch subgraph(s) {', '.join(map(str, branches))}: "
            f"{KERNEL_RULES[INDIRECT_KERNEL]}"
        )
    return problems


def _human(n: int) -> str:
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= div:
            return f"{n / div:.2f}{unit}"
    return str(n)


# ----------------------------------------------------------- flatbuffer side


def _tensor_bytes(root, tensor) -> int:
    buf = root.buffers[tensor.buffer] if tensor.buffer < len(root.buffers) else None
    if buf is None:
        return 0
    if buf.data is not None:
        return int(len(buf.data))
    return int(getattr(buf, "size", 0) or 0)


def _output_kind(tensor_type: int) -> str:
    return {_INT32: "bitpacked", _INT8: "int8"}.get(tensor_type, "float")


def _mac_ops(root) -> list[OpInfo]:
    codes = op_names(root)
    ops: list[OpInfo] = []
    index = 0
    for s, sub in enumerate(root.subgraphs):
        tensors = sub.tensors or []
        for op in sub.operators or []:
            name = codes[op.opcodeIndex]
            index += 1
            if name not in MAC_OPS:
                continue
            groups = 1
            ins = [int(i) for i in (op.inputs if op.inputs is not None else [])]
            outs = [int(i) for i in (op.outputs if op.outputs is not None else [])]
            out_t = tensors[outs[0]]
            out_shape = tuple(int(d) for d in (out_t.shape if out_t.shape is not None else ()))
            names = tuple(
                tensors[i].name.decode() for i in ins + outs if i >= 0 and tensors[i].name
            )
            weight_bytes = sum(_tensor_bytes(root, tensors[i]) for i in ins[1:] if i >= 0)

            def shape(i: int, tensors=tensors, ins=ins) -> tuple[int, ...]:
                t = tensors[ins[i]]
                return tuple(int(d) for d in (t.shape if t.shape is not None else ()))

            spatial = out_shape[1:-1]
            positions = int(np.prod(spatial)) if spatial else 1
            if name == "LceBconv2d":
                c_out, kh, kw, words = shape(1)
                opts = lce_options(op)
                c_in = int(opts.get("channels_in", words * 32))
                # LCE stores no group count; a grouped bconv packs only C_in/groups
                # channels per filter row (C_in/groups is a multiple of 32 there).
                groups = int(opts.get("groups", 0) or 0) or (
                    c_in // (words * 32) if words * 32 < c_in and c_in % (words * 32) == 0 else 1
                )
                per_group = c_in // groups
                geometry = ("conv2d", kh, kw, per_group, c_out)
                macs = positions * c_out * kh * kw * per_group
            elif name == "CONV_2D":
                c_out, kh, kw, per_group = shape(1)
                geometry = ("conv2d", kh, kw, per_group, c_out)
                macs = positions * c_out * kh * kw * per_group
            elif name == "DEPTHWISE_CONV_2D":
                _, kh, kw, c_out = shape(1)
                geometry = ("depthwise", kh, kw, 1, c_out)
                macs = positions * c_out * kh * kw
            elif name == "FULLY_CONNECTED":
                c_out, c_in = shape(1)
                geometry = ("dense", 1, 1, c_in, c_out)
                rows = int(np.prod(out_shape[:-1])) if out_shape else 1
                macs = rows * c_in * c_out
                spatial = ()
            elif name == "TRANSPOSE_CONV":
                c_out, kh, kw, c_in = shape(1)
                in_shape = shape(2)
                geometry = ("transpose", kh, kw, c_in, c_out)
                macs = int(np.prod(in_shape[1:-1])) * c_in * c_out * kh * kw
            elif name == "CONV_3D":
                kd, kh, kw, c_in, c_out = shape(1)
                geometry = ("conv3d", kh, kw, c_in, c_out)
                macs = positions * c_out * kd * kh * kw * c_in
            else:  # BATCH_MATMUL: [..., M, K] x [..., K, N]
                a = shape(0)
                k = a[-1] if a else 0
                geometry = ("matmul", 1, 1, k, out_shape[-1] if out_shape else 0)
                macs = int(np.prod(out_shape)) * k if out_shape else 0
                spatial = ()
            ops.append(
                OpInfo(
                    index=index - 1,
                    subgraph=s,
                    op=name,
                    macs=int(macs),
                    output=_output_kind(out_t.type),
                    weight_bytes=weight_bytes,
                    geometry=geometry,
                    spatial=tuple(spatial),
                    names=names,
                    groups=groups if name == "LceBconv2d" else 1,
                )  # fmt: skip
            )
    return ops


# ---------------------------------------------------------------- Keras side


def _slots(layer, kind: str) -> list[tuple[tuple, tuple | None]]:
    """The (geometry, output spatial) of each MAC op `layer` should produce."""
    try:
        out = layer.output_shape
        spatial = tuple(out[1:-1]) if not isinstance(out, list) else None
    except (AttributeError, RuntimeError):
        spatial = None
    if spatial is not None and any(d is None for d in spatial):
        spatial = None
    if kind == "conv2d":
        # Rank 5 = a bank of kernels [N, k_h, k_w, C_in, C_out] (e.g. experts): any of
        # them may appear as an op, and one slot takes several ops (see matching).
        terms = getattr(layer, "num_binary_convs", None)
        if terms:
            kh, kw, c_in, c_out = (int(d) for d in layer.kernel.shape)
            return [(("conv2d", kh, kw, c_in, c_out), spatial)] * terms
        if isinstance(layer, GroupSplitConv2D):
            part = layer.parts[0]
            kh, kw, per_group, c_out = (int(d) for d in part.kernel.shape[-4:])
            return [(("conv2d", kh, kw, per_group, c_out), spatial)] * layer.groups
        kh, kw, per_group, c_out = (int(d) for d in layer.kernel.shape[-4:])
        slots = [(("conv2d", kh, kw, per_group, c_out), spatial)]
        g = groups_of(layer)
        if g > 1:
            # Split by `convert` (split_grouped_convs): one ungrouped op per group.
            slots += [(("conv2d", kh, kw, per_group, c_out // g), spatial)] * g
        return slots
    if kind == "dense":
        c_in, c_out = (int(d) for d in layer.kernel.shape)
        if isinstance(layer, BinaryDenseConv):
            return [(("conv2d", 1, 1, c_in, c_out), (1, 1))]
        return [(("dense", 1, 1, c_in, c_out), None)]
    if kind == "depthwise":
        kh, kw, c_in, mult = (int(d) for d in layer.depthwise_kernel.shape)
        return [(("depthwise", kh, kw, 1, c_in * mult), spatial)]
    if kind == "separable" and len(layer.depthwise_kernel.shape) == 4:
        kh, kw, c_in, mult = (int(d) for d in layer.depthwise_kernel.shape)
        c_out = int(layer.pointwise_kernel.shape[-1])
        return [
            (("depthwise", kh, kw, 1, c_in * mult), spatial),
            (("conv2d", 1, 1, c_in * mult, c_out), spatial),
        ]
    if kind == "transpose" and len(layer.kernel.shape) == 4:
        kh, kw, c_out, c_in = (int(d) for d in layer.kernel.shape)
        return [(("transpose", kh, kw, c_in, c_out), spatial)]
    if kind == "conv1d":
        k, per_group, c_out = (int(d) for d in layer.kernel.shape)
        return [(("conv2d", 1, k, per_group, c_out), None)]
    if kind == "conv3d":
        _, kh, kw, c_in, c_out = (int(d) for d in layer.kernel.shape)
        return [(("conv3d", kh, kw, c_in, c_out), None)]
    return []


def _name_hit(layer_name: str, names: tuple[str, ...]) -> bool:
    pattern = re.compile(rf"(^|/){re.escape(layer_name)}(/|;|$)")
    return any(pattern.search(n) for n in names)


def _spatial_ok(want: tuple | None, got: tuple) -> bool:
    return want is None or tuple(want) == tuple(got)


def conversion_report(
    model: tf.keras.Model,
    tflite: bytes | str | os.PathLike[str],
    *,
    target: str = "arm",
    lint_report: LintReport | None = None,
    split_groups: bool = True,
) -> ConversionReport:
    """Map the MAC ops of `tflite` back to the layers of `model` and report per layer.

    Args:
        model: the Keras model the `.tflite` was converted from (after any
            rewrite, e.g. `rewrite_binary_dense`).
        tflite: flatbuffer bytes or path.
        target: the LCE target used for the conversion (for the lint's reasons).
        lint_report: a precomputed `lint(model)`; computed here if omitted.
        split_groups: as passed to `convert` (for the lint's predictions).
    """
    buf, root = parse_root(tflite)
    lint_report = lint_report or lint(model, target=target, split_groups=split_groups)
    by_name = {entry.name: entry for entry in lint_report.layers}
    layers = [layer for layer in walk(model) if layer.name in by_name]

    slots: list[tuple[str, tuple, tuple | None]] = []
    for layer in layers:
        try:
            for geometry, spatial in _slots(layer, by_name[layer.name].kind):
                slots.append((layer.name, geometry, spatial))
        except (AttributeError, ValueError, TypeError):
            continue  # a layer whose weights we cannot read is reported as "missing"
    used = [False] * len(slots)
    ops = _mac_ops(root)
    for op in ops:
        candidates = [
            i
            for i, (_, g, sp) in enumerate(slots)
            if g == op.geometry and _spatial_ok(sp, op.spatial)
        ]
        fresh = [i for i in candidates if not used[i]]
        pool = fresh or candidates  # a layer called twice yields two ops for one slot
        if not pool:
            continue
        named = [i for i in pool if _name_hit(slots[i][0], op.names)]
        chosen = (named or pool)[0]
        used[chosen] = True
        op.layer = slots[chosen][0]

    codes = op_names(root)
    op_counts: dict[str, int] = {}
    for sub in root.subgraphs:
        for o in sub.operators or []:
            op_counts[codes[o.opcodeIndex]] = op_counts.get(codes[o.opcodeIndex], 0) + 1

    rows = []
    for layer in layers:
        entry = by_name[layer.name]
        mine = [op for op in ops if op.layer == layer.name]
        kernels = list(KERNELS)
        for op in mine:
            kernels = [k for k in kernels if k in op.kernels]
        problems = _kernel_problems(mine)
        if not mine:
            actual, output = "missing", "-"
        else:
            kinds = {op.op == "LceBconv2d" for op in mine}
            actual = BINARY if kinds == {True} else (FLOAT if kinds == {False} else "mixed")
            output = mine[-1].output
        rows.append(
            LayerRow(
                name=layer.name,
                layer_type=entry.layer_type,
                quantized=entry.quantized,
                predicted=entry.prediction,
                actual=actual,
                ops=[op.op for op in mine],
                macs=sum(op.macs for op in mine),
                binary_macs=sum(op.macs for op in mine if op.op == "LceBconv2d"),
                output=output,
                weight_bytes=sum(op.weight_bytes for op in mine),
                reasons=list(entry.reasons) if entry.quantized and actual != BINARY else [],
                fixes=list(entry.fixes) if entry.quantized and actual != BINARY else [],
                notes=list(entry.notes) if actual == BINARY else [],
                kernels=kernels,
                kernel_problems=sorted(set(problems)),
            )  # fmt: skip
        )
    unmapped = [
        {
            "index": op.index,
            "op": op.op,
            "macs": op.macs,
            "output": op.output,
            "tensors": list(op.names[-1:]),
            "kernels": op.kernels,
        }
        for op in ops
        if op.layer is None
    ]
    unmapped_problems = {
        k: [f"(unmapped {u['op']} #{u['index']})" for u in unmapped if k not in u["kernels"]]
        for k in KERNELS
    }
    total = sum(op.macs for op in ops)
    binary = sum(op.macs for op in ops if op.op == "LceBconv2d")
    return ConversionReport(
        layers=rows,
        unmapped_ops=unmapped,
        op_counts=dict(sorted(op_counts.items())),
        size_bytes=len(buf),
        total_macs=int(total),
        binary_macs=int(binary),
        float_ops=sum(n for k, n in op_counts.items() if k not in LCE_OPS),
        float_mac_ops=sum(1 for op in ops if op.op != "LceBconv2d"),
        requires_lce=any(k in LCE_OPS for k in op_counts),
        target=target,
        unmapped_kernel_problems=unmapped_problems,
    )


__all__ = ["ConversionReport", "LayerRow", "conversion_report"]
