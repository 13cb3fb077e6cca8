"""bnn-tf: binarized neural networks in Keras, shipped as LCE TFLite models.

Importing `bnn_tf` selects the legacy tf_keras (Keras 2) for `tf.keras`
(larq needs it) and registers every bnn_tf layer, so
`tf.keras.models.load_model("model.keras")` works without `custom_objects`.
"""

from bnn_tf._keras_env import KerasVersionError, ensure_legacy_keras

ensure_legacy_keras()

import larq  # noqa: E402,F401  registers larq's layers/quantizers for loading

from bnn_tf import data, optimizers  # noqa: E402

# Layer families: importing them registers their layers/quantizers with Keras
# (package "bnn_tf"), so load_model works without custom_objects.
# (one line per family module, e.g. `from bnn_tf import recu  # noqa: E402,F401`)
from bnn_tf import bireal, irnet, reactnet, xnor  # noqa: E402,F401
from bnn_tf import recu, shortcuts  # noqa: E402,F401
from bnn_tf import ebconv, ebconv_export  # noqa: E402,F401
from bnn_tf import melius  # noqa: E402,F401
from bnn_tf.errors import BnnTfError  # noqa: E402

__version__ = "0.1.0"

__all__ = ["BnnTfError", "KerasVersionError", "__version__", "data", "optimizers"]
