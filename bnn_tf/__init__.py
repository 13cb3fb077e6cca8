"""bnn-tf: binarized neural networks in Keras, shipped as LCE TFLite models.

Importing `bnn_tf` selects the legacy tf_keras (Keras 2) for `tf.keras`
(larq needs it) and registers every bnn_tf layer, so
`tf.keras.models.load_model("model.keras")` works without `custom_objects`.
"""

# Before the imports below: modules that record the version (run.json) read it at import.
__version__ = "0.1.0"

from bnn_tf._keras_env import KerasVersionError, ensure_legacy_keras  # noqa: E402

ensure_legacy_keras()

# The methods package imports every method module, which registers its layers
# and quantizers with Keras (package "bnn_tf"), so load_model works without
# custom_objects. Adding a method is adding a file to bnn_tf/methods/.
import sys  # noqa: E402

import larq  # noqa: E402,F401  registers larq's layers/quantizers for loading

from bnn_tf import data, methods, optimizers  # noqa: E402,F401

# Objects registered outside `methods` (optimizers) resolve by class name too, which
# larq's CaseOptimizer and the legacy `.h5` loader need (bnn_tf.methods._aliases).
methods.register_package_names()

# The method modules lived directly under bnn_tf/ before 0.2; their old import
# paths (`from bnn_tf.recu import ReCUConv2D`) keep working for one release.
for _name in methods.MODULES:
    sys.modules[f"{__name__}.{_name}"] = getattr(methods, _name)
    globals()[_name] = getattr(methods, _name)

from bnn_tf.errors import BnnTfError  # noqa: E402

__all__ = ["BnnTfError", "KerasVersionError", "__version__", "data", "optimizers"]
