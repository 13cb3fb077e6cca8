"""Portable export: a stock-TFLite model (no custom ops) for devices without LCE.

LCE flatbuffers need LCE's runtime (`LceBconv2d` & co. are custom ops). A
portable model uses builtin TFLite ops only, so it runs on stock TFLite /
LiteRT anywhere (Android's default TFLite, `tflite_runtime`, iOS, MCUs with
the ops compiled in), at float speed:

- **float**: the graph as trained; sign activations become `SIGN`/`ADD`
  (larq's `ste_sign` is `sign(sign(x) + 0.1)`), binary kernels are stored as
  float ±1·scale constants and run through float `CONV_2D`. Outputs match
  Keras to float rounding.
- **int8** post-training quantization (`int8=True`): weights and activations
  int8 with per-channel weight scales, calibrated on a representative set of
  real, pre-processed images. ±1 kernels are exact in int8; what can move is
  the sign of a pre-activation that int8 rounds to 0. Model input/output stay
  float32 so callers feed the same images as for the float model. Check the
  accuracy (`bnn-tf convert --portable --int8` reports it) before shipping.

```python
from bnn_tf import converters
flat = converters.convert_portable(model)                                  # float
q8 = converters.convert_portable(model, int8=True, representative_data=x_train[:300])
```
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable
from dataclasses import asdict, dataclass

import numpy as np
import tensorflow as tf

from bnn_tf.converters.conversion import load_model
from bnn_tf.converters.tflite_model import parse
from bnn_tf.errors import ConfigError

# Calibration images used at most: int8 ranges settle after a few hundred
# images, and every extra image costs one interpreter call at conversion time.
MAX_CALIBRATION_IMAGES = 500


def _calibration_images(representative_data, input_shape: tuple) -> np.ndarray:
    if representative_data is None:
        raise ConfigError(
            "int8 export needs representative_data: a few hundred real, pre-processed training "
            "images (e.g. bnn_tf.data.preprocess(x_train[:300])). Fix: pass representative_data=..."
        )
    if not isinstance(representative_data, np.ndarray) and isinstance(
        representative_data, Iterable
    ):
        # A generator or list of images: materialise it once.
        images = [np.asarray(img, np.float32) for img in representative_data]
        if not images:
            raise ConfigError(
                "representative_data is empty. Fix: pass a few hundred real training images."
            )
        representative_data = np.stack(images)
    x = np.asarray(representative_data, dtype=np.float32)
    expected = tuple(d for d in input_shape[1:])
    if x.ndim != len(input_shape) or any(
        e is not None and e != a for e, a in zip(expected, x.shape[1:], strict=True)
    ):
        raise ConfigError(
            f"representative_data has shape {x.shape} but the model takes inputs of shape "
            f"(N, {', '.join(str(d) for d in expected)}). Fix: pass pre-processed images of that shape."
        )
    if len(x) == 0:
        raise ConfigError(
            "representative_data is empty. Fix: pass a few hundred real training images."
        )
    if not np.isfinite(x).all():
        raise ConfigError(
            "representative_data contains NaN or inf. Fix: pass pre-processed images."
        )
    return x[:MAX_CALIBRATION_IMAGES]


def convert_portable(
    model: tf.keras.Model | str | os.PathLike[str],
    *,
    int8: bool = False,
    representative_data=None,
) -> bytes:
    """Convert a Keras model to a stock-TFLite flatbuffer (builtin ops only, no LCE ops).

    Args:
        model: a `tf.keras.Model` or a path to a `.keras`/`.h5` file.
        int8: post-training int8 quantization of weights and activations
            (float32 model input/output). Needs `representative_data`.
        representative_data: real, pre-processed images `(N, H, W, C)` for
            int8 calibration (the first 500 are used); ignored for float.

    Returns:
        The flatbuffer bytes. The same model and data give the same bytes.

    Raises:
        ConfigError: int8 without (valid) representative data.
        PortableExportError: the result would need custom or TF (Flex) ops.
    """
    keras_model = load_model(model)
    converter = tf.lite.TFLiteConverter.from_keras_model(keras_model)
    # Builtins only: a Flex (SELECT_TF_OPS) or custom op would defeat the purpose.
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if int8:
        x = _calibration_images(representative_data, tuple(keras_model.input_shape))

        def representative_dataset():
            for i in range(len(x)):
                yield [x[i : i + 1]]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative_dataset
        # INT8 kernels where TFLite has them; the few ops without one (SIGN)
        # stay float between QUANTIZE/DEQUANTIZE rather than failing.
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
            tf.lite.OpsSet.TFLITE_BUILTINS,
        ]
    try:
        with warnings.catch_warnings():
            # "Statistics for quantized inputs were expected": we keep float32 I/O on purpose.
            warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
            flatbuffer = bytes(converter.convert())
    except Exception as exc:  # noqa: BLE001  the TF converter's errors are long MLIR dumps
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PortableExportError(
            f"Stock TFLite cannot convert this model ({first}). Fix: remove ops without a builtin "
            "TFLite kernel, or ship the LCE model with LCE's runtime."
        ) from None
    custom = parse(flatbuffer).custom_ops
    if custom:
        raise PortableExportError(
            f"The portable model still contains custom ops ({', '.join(custom)}), so stock TFLite "
            "cannot run it. Fix: replace the layers that produce them."
        )
    return flatbuffer


class PortableExportError(ConfigError):
    """The model cannot be expressed with stock TFLite builtin ops."""


@dataclass
class PortableComparison:
    """Accuracy and size of the portable model next to the LCE model (same test images).

    Attributes:
        num_images: test images used.
        keras_accuracy / lce_accuracy / portable_accuracy: top-1 accuracy against the labels.
        portable_agreement: fraction of images where the portable model's top-1 equals Keras'.
        lce_bytes / portable_bytes: flatbuffer sizes.
        int8: whether the portable model is int8-quantized.
    """

    num_images: int
    keras_accuracy: float
    lce_accuracy: float
    portable_accuracy: float
    portable_agreement: float
    lce_bytes: int
    portable_bytes: int
    int8: bool

    def to_dict(self) -> dict:
        return asdict(self)

    def format(self) -> str:
        kind = "int8" if self.int8 else "float"
        return (
            f"{'model':<22}{'accuracy':>9}{'bytes':>13}\n"
            f"{'Keras':<22}{self.keras_accuracy:>9.4f}{'-':>13}\n"
            f"{'LCE (needs LCE)':<22}{self.lce_accuracy:>9.4f}{self.lce_bytes:>13,}\n"
            f"{f'portable {kind} (stock)':<22}{self.portable_accuracy:>9.4f}{self.portable_bytes:>13,}\n"
            f"portable vs Keras top-1 agreement: {self.portable_agreement:.4%} on {self.num_images} test images"
        )


def compare_portable(
    model: tf.keras.Model | str | os.PathLike[str],
    lce_tflite: bytes,
    portable_tflite: bytes,
    x: np.ndarray,
    y: np.ndarray,
    *,
    int8: bool = False,
) -> PortableComparison:
    """Run Keras, the LCE model (LCE interpreter) and the portable model (stock TFLite) on `x`."""
    from bnn_tf.converters.stock_runtime import stock_predict
    from bnn_tf.converters.verification import tflite_predict

    keras_model = load_model(model)
    if len(x) == 0:
        raise ConfigError("compare_portable needs at least one test image.")
    y = np.asarray(y).reshape(-1)
    keras_top = keras_model.predict(x, batch_size=256, verbose=0).argmax(-1)
    lce_top = tflite_predict(lce_tflite, x).argmax(-1)
    portable_top = stock_predict(portable_tflite, x).argmax(-1)
    return PortableComparison(
        num_images=len(x),
        keras_accuracy=float((keras_top == y).mean()),
        lce_accuracy=float((lce_top == y).mean()),
        portable_accuracy=float((portable_top == y).mean()),
        portable_agreement=float((portable_top == keras_top).mean()),
        lce_bytes=len(lce_tflite),
        portable_bytes=len(portable_tflite),
        int8=int8,
    )
