"""`import bnn_tf` selects tf_keras, and refuses clearly when TensorFlow already chose Keras 3."""

from __future__ import annotations

import os
import subprocess
import sys


def _python(code: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )


def test_import_bnn_tf_first_selects_legacy_keras():
    proc = _python(
        "import bnn_tf, os, tensorflow as tf;"
        "print(os.environ['TF_USE_LEGACY_KERAS'], tf.keras.layers.Dense.__module__)"
    )
    assert proc.returncode == 0, proc.stderr
    flag, module = proc.stdout.split()
    assert flag == "1" and module.startswith("tf_keras")


def test_tensorflow_imported_first_gives_a_clear_error():
    proc = _python("import tensorflow as tf; tf.keras.layers; import bnn_tf")
    assert proc.returncode != 0
    assert "KerasVersionError" in proc.stderr
    assert "import bnn_tf before tensorflow" in proc.stderr
    assert "TF_USE_LEGACY_KERAS=1" in proc.stderr
