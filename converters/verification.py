"""`verify`: does the converted model predict what the Keras model predicts?"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field

import numpy as np
import tensorflow as tf

from bnn_tf.converters.conversion import load_model
from bnn_tf.converters.rules import DEFAULT_KERNEL, INDIRECT_KERNEL
from bnn_tf.converters.runtime import kernel_blockers, make_interpreter
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
        kernel: the LCE binary-conv kernel the `.tflite` ran on (`"default"`: what
            ARM devices and the Android AAR run).
        other_kernels: per other kernel also run (the indirect kernel, when it
            runs this model correctly): its `top1_agreement`, `max_abs_logit_diff`,
            `tflite_accuracy`, and `differs` (images whose top-1 differs from this
            kernel's).
    """

    num_images: int
    top1_agreement: float
    keras_accuracy: float | None
    tflite_accuracy: float | None
    max_abs_logit_diff: float
    mismatches: list[int]
    kernel: str = DEFAULT_KERNEL
    other_kernels: dict[str, dict] = field(default_factory=dict)

    @property
    def kernels_disagree(self) -> bool:
        """Another kernel run here predicts a different top-1 on some image."""
        return any(o["differs"] for o in self.other_kernels.values())

    def to_dict(self) -> dict:
        return {**asdict(self), "kernels_disagree": self.kernels_disagree}

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
        lines.append(
            f"kernel: {self.kernel}"
            + (" (the one ARM devices and Android run)" if self.kernel == DEFAULT_KERNEL else "")
        )
        for name, other in self.other_kernels.items():
            if other["differs"]:
                lines.append(
                    f"KERNELS DISAGREE: the {name} kernel predicts a different top-1 on "
                    f"{other['differs']} image(s): agreement with Keras {other['top1_agreement']:.4%}, "
                    f"max |logit difference| {other['max_abs_logit_diff']:.3g}"
                    + (
                        f", accuracy {other['tflite_accuracy']:.4f}"
                        if other["tflite_accuracy"] is not None
                        else ""
                    )
                )
            else:
                lines.append(f"{name} kernel: same top-1 on every image")
        return "\n".join(lines)


def randomize_batchnorm(model: tf.keras.Model, seed: int = 0, *, spread: float = 0.2) -> None:
    """Give every BatchNorm of `model` trained-looking statistics (γ > 0, β, μ ≠ 0, var ≠ 1).

    An untrained model's BN (γ = 1, β = μ = 0, var = 1) hides mistakes in the
    converter's BN folding; this makes a parity check of an untrained model see them.
    `spread`: standard deviation of β and μ.
    """
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, tf.keras.layers.BatchNormalization):
            n = layer.gamma.shape[0]
            layer.set_weights([
                rng.uniform(0.5, 1.5, n), rng.normal(0, spread, n),
                rng.normal(0, spread, n), rng.uniform(0.5, 2.0, n),
            ])  # fmt: skip


def tflite_predict(
    tflite: bytes | str | os.PathLike[str],
    x: np.ndarray,
    *,
    num_threads: int = 1,
    progress: bool = False,
    chunk: int = 256,
    kernel: str = "auto",
) -> np.ndarray:
    """Outputs of the `.tflite` for every image in `x` (LCE interpreter, one image at a time).

    `kernel`: LCE's binary-conv kernel (see `runtime.make_interpreter`; `"auto"`
    = indirect BGEMM where it is correct, the fast choice on x86_64).
    """
    interpreter = make_interpreter(tflite, num_threads=num_threads, kernel=kernel)
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
    kernel: str = DEFAULT_KERNEL,
    compare_kernels: bool = True,
) -> VerifyResult:
    """Run Keras and the LCE interpreter on the same (pre-processed) images and compare.

    By default the `.tflite` runs on LCE's default kernel, the one ARM devices
    and LCE's Android AAR run, so the result is what a device computes. When the
    indirect-BGEMM kernel also runs the model correctly (`runtime.kernel_blockers`),
    it is run too and `other_kernels` says whether its predictions differ.

    Args:
        model: the Keras model (object or `.keras` path) the `.tflite` came from.
        tflite: the converted model (bytes or path).
        x: float32 images, already pre-processed as the model expects.
        y: integer labels, for the two accuracies (optional).
        num_threads: interpreter threads.
        progress: show a progress bar for the interpreter pass.
        kernel: `"default"`, `"indirect"`, `"reference"` or `"auto"` (see
            `runtime.make_interpreter`).
        compare_kernels: also run the other optimised kernel when it runs the
            model correctly (doubles the interpreter time at most).

    Raises:
        ConfigError: the chosen kernel cannot run this model (e.g. the default
            kernel and a grouped binary conv), or the shapes do not match.
    """
    keras_model = load_model(model)
    if len(x) == 0:
        raise ConfigError("verify needs at least one image.")
    blockers = kernel_blockers(tflite)
    if kernel == "auto":
        kernel = INDIRECT_KERNEL if not blockers[INDIRECT_KERNEL] else DEFAULT_KERNEL
    lite_out = tflite_predict(tflite, x, num_threads=num_threads, progress=progress, kernel=kernel)
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
        kernel=kernel,
    )
    if y is not None:
        y = np.asarray(y).reshape(-1)
        result.keras_accuracy = float((keras_top == y).mean())
        result.tflite_accuracy = float((lite_top == y).mean())
    others = {DEFAULT_KERNEL: INDIRECT_KERNEL, INDIRECT_KERNEL: DEFAULT_KERNEL}
    other = others.get(kernel)
    if compare_kernels and other is not None and not blockers[other]:
        other_out = tflite_predict(tflite, x, num_threads=num_threads, kernel=other)
        other_top = other_out.argmax(-1)
        result.other_kernels[other] = {
            "top1_agreement": float((other_top == keras_top).mean()),
            "max_abs_logit_diff": float(np.abs(keras_out - other_out).max()),
            "tflite_accuracy": None if y is None else float((other_top == y).mean()),
            "differs": int((other_top != lite_top).sum()),
        }
    return result
