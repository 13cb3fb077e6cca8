"""`import bnn_tf` selects tf_keras, and refuses clearly when TensorFlow already chose Keras 3."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bnn_tf._keras_env import filter_startup_log


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


STARTUP = (
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
    "I0000 00:00:1795587431.002712     668 port.cc:153] oneDNN custom operations are on.\n"
    "W0000 00:00:1795587431.003000     668 cpu_feature_guard.cc:42] AVX512 not used.\n"
    "E0000 00:00:1795587432.676579     668 cuda_platform.cc:52] failed call to cuInit\n"
    "Traceback (most recent call last):\n"
)


@pytest.mark.parametrize(
    ("level", "kept"),
    [(0, "IWE"), (1, "WE"), (2, "E"), (3, "")],
)
def test_startup_log_filter_follows_the_tf_log_level(level, kept):
    text = filter_startup_log(STARTUP, level)
    assert "absl::InitializeLog" not in text
    assert "Traceback" in text  # anything that is not an absl line is kept
    for severity, marker in zip("IWE", ["oneDNN", "AVX512", "cuInit"], strict=True):
        assert (marker in text) == (severity in kept)
