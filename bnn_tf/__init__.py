"""bnn-tf: binarized neural networks in Keras, shipped as LCE TFLite models.

Importing `bnn_tf` selects the legacy tf_keras (Keras 2) for `tf.keras`
(larq needs it) and registers every bnn_tf layer, so
`tf.keras.models.load_model("model.keras")` works without `custom_objects`.
"""

from bnn_tf._keras_env import KerasVersionError, ensure_legacy_keras

ensure_legacy_keras()

import larq  # noqa: E402,F401  registers larq's layers/quantizers for loading

# Layer families: importing them registers their layers/quantizers with Keras
# (package "bnn_tf"), so load_model works without custom_objects. A new family
# module adds itself to this import.
from bnn_tf import (  # noqa: E402,F401
    bireal,
    data,
    ebconv,
    ebconv_export,
    irnet,
    melius,
    optimizers,
    reactnet,
    recu,
    shortcuts,
    xnor,
)
from bnn_tf.errors import BnnTfError  # noqa: E402

__version__ = "0.1.0"

__all__ = ["BnnTfError", "KerasVersionError", "__version__", "data", "optimizers"]
