"""`verify`: does the converted model predict what the Keras model predicts?"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

import numpy as np
import tensorflow as tf

from bnn_tf.converters.conversion import _as_model
from bnn_tf.converters.runtime import make_interpreter
from bnn_tf.errors import ConfigError


@dataclass
class VerifyResult:
    """Keras vs TFLite on the same images.

    Attributes:
        num_images: images compared.
        top1_agreement: fraction of images whose arg-max class is the same.
        keras_accuracy / tflite_accuracy: accuracy against the labels (None without labels).
        max_abs_logit_diff: largest |Keras output − TFLite output| over all images and classes.
        mismatches: indices of the images whose top-1 differs.
    """

    num_images: int
    top1_agreement: float
    keras_accuracy: float | None
    tflite_accuracy: float | None
    max_abs_logit_diff: float
    mismatches: list[int]

    def to_dict(self) -> dict:
        return asdict(self)

    def format(self) -> str:
        lines = [
            f"images: {self.num_images}",
            f"top-1 agreement Keras vs TFLite: {self.top1_agreement:.4%} "
            f"({len(self.mismatches)} differ)",
            f"max |logit difference|: {self.max_abs_logit_diff:.3g}",
        ]
        if self.keras_accuracy is not None:
            lines.append(
                f"accuracy: Keras {self.keras_accuracy:.4f}   TFLite {self.tflite_accuracy:.4f}"
            )
        return "\n".join(lines)


def tflite_predict(
    tflite: bytes | str | os.PathLike[str],
    x: np.ndarray,
    *,
    num_threads: int = 1,
    progress: bool = False,
    chunk: int = 256,
) -> np.ndarray:
    """Outputs of the `.tflite` for every image in `x` (LCE interpreter, one image at a time)."""
    interpreter = make_interpreter(tflite, num_threads=num_threads)
    expected = tuple(interpreter.input_shapes[0][1:])
    if tuple(x.shape[1:]) != expected:
        raise ConfigError(
            f"The .tflite expects inputs of shape (N, {', '.join(map(str, expected))}) but the "
            f"images have shape {x.shape}. Fix: verify against the data set the model was trained on."
        )
    x = np.asarray(x, dtype=np.float32)
    outputs = []
    starts = range(0, len(x), chunk)
    if progress:
        from tqdm import tqdm

        # disable=None: no bar when stderr is not a terminal (logs, CI).
        starts = tqdm(starts, desc="TFLite", unit="chunk", total=len(starts), disable=None)
    for start in starts:
        outputs.append(interpreter.predict(x[start : start + chunk]))
    return np.concatenate(outputs)


def verify(
    model: tf.keras.Model | str | os.PathLike[str],
    tflite: bytes | str | os.PathLike[str],
    x: np.ndarray,
    y: np.ndarray | None = None,
    *,
    num_threads: int = 1,
    progress: bool = False,
) -> VerifyResult:
    """Run Keras and the LCE interpreter on the same (pre-processed) images and compare.

    Args:
        model: the Keras model (object or `.keras` path) the `.tflite` came from.
        tflite: the converted model (bytes or path).
        x: float32 images, already pre-processed as the model expects.
        y: integer labels, for the two accuracies (optional).
        num_threads: interpreter threads.
        progress: show a progress bar for the interpreter pass.
    """
    keras_model = _as_model(model)
    if len(x) == 0:
        raise ConfigError("verify needs at least one image.")
    lite_out = tflite_predict(tflite, x, num_threads=num_threads, progress=progress)
    keras_out = keras_model.predict(x, batch_size=256, verbose=0)
    if keras_out.shape != lite_out.shape:
        raise ConfigError(
            f"Keras outputs {keras_out.shape} but the .tflite outputs {lite_out.shape}: "
            "the .tflite was not converted from this model."
        )
    keras_top, lite_top = keras_out.argmax(-1), lite_out.argmax(-1)
    mismatches = np.flatnonzero(keras_top != lite_top)
    result = VerifyResult(
        num_images=len(x),
        top1_agreement=float(1 - len(mismatches) / len(x)),
        keras_accuracy=None,
        tflite_accuracy=None,
        max_abs_logit_diff=float(np.abs(keras_out - lite_out).max()),
        mismatches=[int(i) for i in mismatches],
    )
    if y is not None:
        y = np.asarray(y).reshape(-1)
        result.keras_accuracy = float((keras_top == y).mean())
        result.tflite_accuracy = float((lite_top == y).mean())
    return result
