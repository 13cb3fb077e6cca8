"""Running a `.tflite` on this machine with LCE's Python interpreter.

LCE's interpreter exists for x86_64 (and macOS) only; it also runs plain
TFLite ops, so it serves both LCE and stock models here. On ARM devices the
same flatbuffer runs through LCE's C++ library or Android AAR (docs/deploy.md).
"""

from __future__ import annotations

import os

from bnn_tf.converters.rules import DEFAULT_KERNEL, INDIRECT_KERNEL, KERNELS
from bnn_tf.converters.tflite_model import (
    TfliteModel,
    lce_options,
    op_names,
    parse,
    parse_root,
    read_bytes,
)
from bnn_tf.errors import ConfigError

KERNEL_CHOICES = ("auto", "default", "indirect", "reference")


def _bconv_groups(root, sub, op) -> int:
    tensors = sub.tensors or []
    filt = tensors[int(op.inputs[1])]
    shape = tuple(int(d) for d in (filt.shape if filt.shape is not None else ()))
    if len(shape) != 4:
        return 1
    words = shape[-1]
    c_in = int(lce_options(op).get("channels_in", words * 32))
    # LCE stores no group count; a grouped bconv packs only C_in/groups channels
    # per filter row (C_in/groups is a multiple of 32 there).
    if words * 32 < c_in and c_in % (words * 32) == 0:
        return c_in // (words * 32)
    return 1


def kernel_blockers(tflite: bytes | str | os.PathLike[str]) -> dict[str, list[str]]:
    """Per LCE kernel (`"default"`, `"indirect"`), why it cannot run this model correctly.

    An empty list means the kernel runs every op of the model correctly
    (rules in `converters.rules.KERNEL_RULES`): the default kernel rejects
    grouped `LceBconv2d`; the indirect kernel is wrong for an `LceBconv2d` in
    an `IF` branch subgraph.
    """
    _, root = parse_root(tflite)
    codes = op_names(root)
    found: dict[str, list[str]] = {k: [] for k in KERNELS}
    for s, sub in enumerate(root.subgraphs):
        tensors = sub.tensors or []
        for op in sub.operators or []:
            if codes[op.opcodeIndex] != "LceBconv2d":
                continue
            out = tensors[int(op.outputs[0])].name.decode() if len(op.outputs) else "?"
            where = f"LceBconv2d {out[:60]!r}"
            g = _bconv_groups(root, sub, op)
            if g > 1:
                found[DEFAULT_KERNEL].append(f"{where}: grouped ({g} groups)")
            if s > 0:
                found[INDIRECT_KERNEL].append(f"{where}: inside branch subgraph {s}")
    return found


def indirect_bgemm_is_safe(model: TfliteModel) -> bool:
    """Whether LCE's indirect-BGEMM kernel computes this model correctly.

    LCE 0.16's indirect kernel gives a correct `LceBconv2d` inside an `IF`
    branch subgraph on the first call only (measured with exported EBConv
    models, docs/ebconv.md); the default kernel, which LCE's C++ library and
    Android AAR use, is exact. Binary convs in the main graph are fine.
    """
    return not any(op.op == "LceBconv2d" and op.subgraph > 0 for op in model.operators)


def make_interpreter(
    tflite: bytes | str | os.PathLike[str], *, num_threads: int = 1, kernel: str = "auto"
):
    """An LCE `Interpreter` running `tflite` with the chosen binary-conv kernel.

    Args:
        tflite: the flatbuffer (bytes or path).
        num_threads: interpreter threads.
        kernel: `"default"` (what ARM devices and LCE's Android AAR run;
            `use_indirect_bgemm=False`), `"indirect"` (indirect BGEMM, 4–7×
            faster on x86_64), `"reference"` (LCE's slow reference kernel) or
            `"auto"`: indirect where it is correct (`indirect_bgemm_is_safe`),
            else default — the fast choice for benchmarks on this machine.

    Raises:
        InvalidTfliteError: not a TFLite flatbuffer.
        ConfigError: unknown kernel, or the kernel cannot run this model
            (the default kernel and grouped binary convs).
    """
    from larq_compute_engine.tflite.python.interpreter import Interpreter

    if num_threads < 1:
        raise ConfigError(f"num_threads must be ≥ 1 (got {num_threads}).")
    if kernel not in KERNEL_CHOICES:
        raise ConfigError(f"kernel must be one of {KERNEL_CHOICES} (got {kernel!r}).")
    buf = read_bytes(tflite)
    # Decode the whole flatbuffer first: LCE's interpreter segfaults on a
    # truncated file instead of raising (measured), parse() names the problem.
    model = parse(buf)
    if kernel == "auto":
        kernel = INDIRECT_KERNEL if indirect_bgemm_is_safe(model) else DEFAULT_KERNEL
    options = {
        DEFAULT_KERNEL: {"use_indirect_bgemm": False},
        INDIRECT_KERNEL: {"use_indirect_bgemm": True},
        "reference": {"use_reference_bconv": True},
    }[kernel]
    if kernel == DEFAULT_KERNEL:
        grouped = kernel_blockers(buf)[DEFAULT_KERNEL]
        if grouped:
            # LCE would fail later at AllocateTensors with a bare RuntimeError.
            raise ConfigError(
                f"LCE's default kernel (the one ARM devices and the Android AAR run) cannot run "
                f"this .tflite: {len(grouped)} grouped binary conv(s), e.g. {grouped[0]}. Fix: "
                "convert without --keep-groups / split_groups=False (convert splits grouped "
                "convs), or run it with the indirect kernel (--kernel indirect)."
            )
    return Interpreter(buf, num_threads=num_threads, **options)
