"""Running a `.tflite` on this machine with LCE's Python interpreter.

LCE's interpreter exists for x86_64 (and macOS) only; it also runs plain
TFLite ops, so it serves both LCE and stock models here. On ARM devices the
same flatbuffer runs through LCE's C++ library or Android AAR (docs/deploy.md).
"""

from __future__ import annotations

import os

from bnn_tf.converters.tflite_model import TfliteModel, parse, read_bytes
from bnn_tf.errors import ConfigError


def indirect_bgemm_is_safe(model: TfliteModel) -> bool:
    """Whether LCE's indirect-BGEMM kernel computes this model correctly.

    LCE 0.16's indirect kernel gives a correct `LceBconv2d` inside an `IF`
    branch subgraph on the first call only (measured with exported EBConv
    models, docs/ebconv.md); the default kernel, which LCE's C++ library and
    Android AAR use, is exact. Binary convs in the main graph are fine.
    """
    return not any(op.op == "LceBconv2d" and op.subgraph > 0 for op in model.operators)


def make_interpreter(tflite: bytes | str | os.PathLike[str], *, num_threads: int = 1):
    """An LCE `Interpreter`, with indirect BGEMM kernels where they are correct.

    Indirect BGEMM is 4–7× faster on x86_64; models with binary convs inside
    control-flow branches get the default kernel (see `indirect_bgemm_is_safe`).

    Raises:
        InvalidTfliteError: not a TFLite flatbuffer.
    """
    from larq_compute_engine.tflite.python.interpreter import Interpreter

    if num_threads < 1:
        raise ConfigError(f"num_threads must be ≥ 1 (got {num_threads}).")
    buf = read_bytes(tflite)
    # Decode the whole flatbuffer first: LCE's interpreter segfaults on a
    # truncated file instead of raising (measured), parse() names the problem.
    model = parse(buf)
    return Interpreter(
        buf, num_threads=num_threads, use_indirect_bgemm=indirect_bgemm_is_safe(model)
    )
