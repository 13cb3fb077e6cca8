"""Make sure TensorFlow resolves `tf.keras` to the legacy tf_keras (Keras 2).

larq and larq-compute-engine are written against Keras 2. TensorFlow 2.16+
ships Keras 3 as `tf.keras` unless `TF_USE_LEGACY_KERAS=1` is set *before*
TensorFlow is first imported, so this module must run before anything else
imports TensorFlow.
"""

from __future__ import annotations

import os
import sys

ENV_VAR = "TF_USE_LEGACY_KERAS"


class KerasVersionError(ImportError):
    """Raised when `tf.keras` is Keras 3, which larq cannot use."""


def ensure_legacy_keras() -> None:
    """Set `TF_USE_LEGACY_KERAS=1` and check that `tf.keras` is tf_keras.

    Raises:
        KerasVersionError: TensorFlow was imported earlier without the
            variable set, so `tf.keras` is already Keras 3.
    """
    already_imported = "tensorflow" in sys.modules
    if not already_imported:
        os.environ[ENV_VAR] = "1"
        if os.path.basename(sys.argv[0] if sys.argv else "") == "bnn-tf":
            # The CLI: TensorFlow's C++ start-up INFO/WARNING lines (CPU
            # features, CUDA probing) drown its output. Set the variable to override.
            os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    module = tf.keras.layers.Dense.__module__
    if not module.startswith("tf_keras"):
        raise KerasVersionError(
            "bnn_tf needs the legacy Keras 2 (tf_keras) as tf.keras, but TensorFlow was "
            f"imported before bnn_tf with {ENV_VAR} unset, so tf.keras is Keras 3 "
            f"({module}). Fix: import bnn_tf before tensorflow, or run "
            f"`export {ENV_VAR}=1` before starting Python."
        )
