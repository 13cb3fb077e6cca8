"""Make sure TensorFlow resolves `tf.keras` to the legacy tf_keras (Keras 2).

larq and larq-compute-engine are written against Keras 2. TensorFlow 2.16+
ships Keras 3 as `tf.keras` unless `TF_USE_LEGACY_KERAS=1` is set *before*
TensorFlow is first imported, so this module must run before anything else
imports TensorFlow.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator

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
    quiet = False
    if not already_imported:
        os.environ[ENV_VAR] = "1"
        if os.path.basename(sys.argv[0] if sys.argv else "") == "bnn-tf":
            # The CLI: TensorFlow's C++ start-up INFO/WARNING lines (CPU
            # features, CUDA probing) drown its output. Set the variable to override.
            os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
            quiet = os.environ["TF_CPP_MIN_LOG_LEVEL"] not in ("", "0")
    startup = (
        _drop_startup_log_lines(int(os.environ["TF_CPP_MIN_LOG_LEVEL"]))
        if quiet
        else contextlib.nullcontext()
    )
    with startup:
        import tensorflow as tf

    module = tf.keras.layers.Dense.__module__
    if not module.startswith("tf_keras"):
        raise KerasVersionError(
            "bnn_tf needs the legacy Keras 2 (tf_keras) as tf.keras, but TensorFlow was "
            f"imported before bnn_tf with {ENV_VAR} unset, so tf.keras is Keras 3 "
            f"({module}). Fix: import bnn_tf before tensorflow, or run "
            f"`export {ENV_VAR}=1` before starting Python."
        )


# absl's format: severity letter, MMDD, time, thread id, file:line]. TensorFlow
# 2.21 logs these before absl is initialised, so TF_CPP_MIN_LOG_LEVEL does not
# filter them (abseil/abseil-cpp#1718); the banner line comes with them.
_ABSL_LINE = re.compile(r"^([IWEF])\d{4} [\d:.]+\s+\d+ \S+:\d+\] ")
_ABSL_BANNER = "WARNING: All log messages before absl::InitializeLog() is called"


def filter_startup_log(text: str, min_level: int) -> str:
    """Drop absl log lines below `min_level` (1: INFO, 2: +WARNING, 3: +ERROR) and absl's banner."""
    dropped = "IWE"[: max(0, min(min_level, 3))]
    kept = []
    for line in text.splitlines(keepends=True):
        if line.startswith(_ABSL_BANNER):
            continue
        match = _ABSL_LINE.match(line)
        if match and match.group(1) in dropped:
            continue
        kept.append(line)
    return "".join(kept)


@contextlib.contextmanager
def _drop_startup_log_lines(min_level: int) -> Iterator[None]:
    # The chatter is written by C++ straight to file descriptor 2, so only a
    # descriptor-level redirect catches it; everything else is replayed, and
    # on an import failure all of it is, unfiltered.
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable fd 2 (embedded interpreters)
        yield
        return
    with tempfile.TemporaryFile(mode="w+b") as capture:
        os.dup2(capture.fileno(), 2)
        failed = True
        try:
            yield
            failed = False
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode("utf-8", "replace")
            if not failed:
                text = filter_startup_log(text, min_level)
            if text:
                sys.stderr.write(text)
                sys.stderr.flush()
