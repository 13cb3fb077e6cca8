"""Keras → TFLite through larq-compute-engine, written atomically."""

from __future__ import annotations

import logging
import os
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import tensorflow as tf

from bnn_tf import atomic, precision
from bnn_tf.converters.groups import split_grouped_convs
from bnn_tf.converters.kernel_fold import fold_kernel_quantizers
from bnn_tf.converters.tflite_model import TfliteModel, parse
from bnn_tf.errors import InvalidModelFileError


def load_keras_model(path: str | os.PathLike[str]) -> tf.keras.Model:
    """Load a `.keras` / `.h5` / SavedModel, with a clear error for anything else.

    bnn_tf and larq objects are registered by importing bnn_tf, so no
    `custom_objects` are needed.
    """
    p = Path(path)
    if not p.exists():
        raise InvalidModelFileError(
            f"{p}: no such file. Fix: pass the .keras file written by training."
        )
    if p.is_file():
        head = p.read_bytes()[:8]
        if head[4:8] == b"TFL3":
            raise InvalidModelFileError(
                f"{p} is a TFLite model, not a Keras model. Fix: pass the .keras file it came from."
            )
        is_h5 = head.startswith(b"\x89HDF")
        if not (zipfile.is_zipfile(p) or is_h5):
            raise InvalidModelFileError(
                f"{p} is not a Keras model file (.keras zip or .h5). Fix: pass the file saved by "
                "`model.save('model.keras')` or `bnn-tf train`."
            )
    try:
        return tf.keras.models.load_model(p, compile=False)
    except Exception as exc:  # noqa: BLE001  report any loader failure in one line
        raise InvalidModelFileError(
            f"{p} could not be loaded as a Keras model ({type(exc).__name__}: {exc}). "
            "If it uses custom layers, import the module that registers them first."
        ) from None


def load_model(model: tf.keras.Model | str | os.PathLike[str]) -> tf.keras.Model:
    """`model` itself if it is a Keras model, else the model loaded from that path.

    A model with bfloat16 layers (`bnn_tf.precision`) comes back as its float32
    copy (same weights). What every converter accepts as its `model` argument (see `load_keras_model`
    for the errors).
    """
    loaded = model if isinstance(model, tf.keras.Model) else load_keras_model(model)
    # A model trained in bfloat16 is converted and compared in float32, as the device runs it.
    return precision.to_float32(loaded)


def convert(
    model: tf.keras.Model | str | os.PathLike[str],
    *,
    target: str = "arm",
    split_groups: bool = True,
    fold_kernels: bool = True,
) -> bytes:
    """Convert a Keras model (object or file) to an LCE TFLite flatbuffer.

    Binary convolutions (sign-quantized inputs, ±1·scale kernels) become
    `LceBconv2d`; see docs/lce.md for what falls back to float. LCE's silent
    fallback from SavedModel export to a frozen graph is surfaced as a
    warning.

    Grouped binary convolutions are first split into per-group convolutions
    plus a concatenation (`converters.split_grouped_convs`, same outputs), so
    the result runs on LCE's default kernel, the one ARM devices and LCE's
    Android AAR use; that kernel rejects grouped binary convs.

    Args:
        model: a `tf.keras.Model`, or a path to a `.keras`/`.h5` file.
        target: LCE target, `"arm"` (Raspberry Pi, Android) or `"xcore"`.
        split_groups: False keeps grouped binary convs as one grouped
            `LceBconv2d` each; such a model runs only on the indirect-BGEMM
            kernel (`benchmarks/grouped_split.py` measures the difference).
        fold_kernels: False leaves large kernel quantizers to TensorFlow (they
            then run at inference time, and LCE keeps those layers float).

    Returns:
        The flatbuffer bytes.
    """
    import larq_compute_engine as lce

    keras_model = load_model(model)
    if split_groups:
        keras_model = split_grouped_convs(keras_model)
    if fold_kernels:
        keras_model = fold_kernel_quantizers(keras_model)
    # LCE logs its SavedModel→frozen-graph fallback through the `tensorflow`
    # logger/warnings; capture both so the user is told once, clearly.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        flatbuffer = lce.convert_keras_model(keras_model, target=target)
    for w in caught:
        if "saved" in str(w.message).lower() or "frozen" in str(w.message).lower():
            logging.getLogger("bnn_tf").warning(
                "LCE could not export a SavedModel and used a frozen graph (batch fixed to 1): %s",
                w.message,
            )
    return bytes(flatbuffer)


@dataclass
class ConversionResult:
    """What `convert_to_file` wrote and what the flatbuffer contains."""

    path: Path
    model: TfliteModel


def convert_to_file(
    model: tf.keras.Model | str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    *,
    target: str = "arm",
    split_groups: bool = True,
) -> ConversionResult:
    """`convert` and write the `.tflite` atomically; returns the parsed result."""
    flatbuffer = convert(model, target=target, split_groups=split_groups)
    path = atomic.write_bytes(out_path, flatbuffer)
    return ConversionResult(path=path, model=parse(flatbuffer))
