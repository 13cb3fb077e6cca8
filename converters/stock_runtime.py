"""Which runtime a `.tflite` needs, and running stock-TFLite models with stock TFLite.

A model converted by LCE contains custom ops (`LceQuantize`, `LceBconv2d`,
...). Stock TFLite / LiteRT (`tf.lite.Interpreter`, `tflite_runtime`,
Android's default TFLite) does not know them and fails late with
"Encountered unresolved custom op: LceQuantize". We read the op list from the
flatbuffer first and say which runtime the model needs instead.
"""

from __future__ import annotations

import os
import warnings

import numpy as np

from bnn_tf.converters.tflite_model import LCE_OPS, parse, read_bytes
from bnn_tf.errors import ConfigError, InvalidTfliteError

LCE_RUNTIMES = (
    "LCE's runtime: larq_compute_engine's Python Interpreter on x86_64/macOS "
    "(bnn_tf.converters.tflite_predict), LCE's C++ library or lce_benchmark_model on "
    "Raspberry Pi/aarch64 Linux, LCE's Android AAR in place of the stock TFLite dependency"
)


class LceRuntimeRequiredError(InvalidTfliteError):
    """A model with LCE custom ops was about to be run by a stock TFLite runtime."""


def required_runtime(tflite: bytes | str | os.PathLike[str]) -> str:
    """One line naming the runtime `tflite` needs: stock TFLite, LCE, or stock + other custom ops."""
    model = parse(tflite)
    lce = sorted({op.op for op in model.operators if op.op in LCE_OPS})
    other = [op for op in model.custom_ops if op not in LCE_OPS]
    if lce:
        return f"LCE (custom ops {', '.join(lce)}): {LCE_RUNTIMES}"
    if other:
        return f"a TFLite runtime with the custom ops {', '.join(other)} registered"
    return "stock TFLite / LiteRT (builtin ops only): runs anywhere TFLite runs"


def make_stock_interpreter(tflite: bytes | str | os.PathLike[str], *, num_threads: int = 1):
    """A stock `tf.lite.Interpreter` (tensors allocated), after checking it can run the model.

    Raises:
        LceRuntimeRequiredError: the model has LCE custom ops (names the runtime to use and
            how to get a portable model).
        InvalidTfliteError: not a TFLite flatbuffer, corrupt, or other unknown custom ops.
    """
    import tensorflow as tf

    if num_threads < 1:
        raise ConfigError(f"num_threads must be ≥ 1 (got {num_threads}).")
    buf = read_bytes(tflite)
    model = parse(buf)
    lce = sorted({op.op for op in model.operators if op.op in LCE_OPS})
    if lce:
        raise LceRuntimeRequiredError(
            f"This model uses LCE custom ops ({', '.join(lce)}); stock TFLite cannot run it "
            f"(it would fail with 'unresolved custom op'). It needs {LCE_RUNTIMES}. Fix: use one "
            "of those, or export a stock-TFLite model with `bnn-tf convert --portable`."
        )
    if model.custom_ops:
        raise InvalidTfliteError(
            f"This model uses custom ops ({', '.join(model.custom_ops)}) that stock TFLite does not "
            "provide. Fix: run it with a runtime that registers them."
        )
    with warnings.catch_warnings():
        # tf.lite.Interpreter warns that it moves to ai_edge_litert; same kernels, nothing to act on.
        warnings.simplefilter("ignore")
        interpreter = tf.lite.Interpreter(model_content=buf, num_threads=num_threads)
    interpreter.allocate_tensors()
    return interpreter


def stock_predict(
    tflite: bytes | str | os.PathLike[str], x: np.ndarray, *, num_threads: int = 1
) -> np.ndarray:
    """Outputs of a stock-TFLite model for every image in `x`, one image at a time.

    int8 inputs/outputs (if the model has them) are (de)quantized with the
    tensor's scale and zero point, so `x` is always the float images.
    """
    interpreter = make_stock_interpreter(tflite, num_threads=num_threads)
    inp = interpreter.get_input_details()[0]
    out = interpreter.get_output_details()[0]
    expected = tuple(int(d) for d in inp["shape"][1:])
    x = np.asarray(x, dtype=np.float32)
    if tuple(x.shape[1:]) != expected:
        raise ConfigError(
            f"The .tflite expects inputs of shape (N, {', '.join(map(str, expected))}) but the "
            f"images have shape {x.shape}. Fix: use the data set the model was trained on."
        )
    results = []
    for i in range(len(x)):
        xi = x[i : i + 1]
        if inp["dtype"] != np.float32:
            scale, zero = inp["quantization"]
            info = np.iinfo(inp["dtype"])
            xi = np.clip(np.round(xi / scale + zero), info.min, info.max).astype(inp["dtype"])
        interpreter.set_tensor(inp["index"], xi)
        interpreter.invoke()
        y = interpreter.get_tensor(out["index"])
        if out["dtype"] != np.float32:
            scale, zero = out["quantization"]
            y = (y.astype(np.float32) - zero) * scale
        results.append(np.array(y, dtype=np.float32))
    return np.concatenate(results) if results else np.zeros((0, *out["shape"][1:]), np.float32)
