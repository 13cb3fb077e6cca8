"""What every benchmark record starts with: name, date, command, machine, load."""

from __future__ import annotations

import datetime as dt
import os
import shlex
import sys

import bnn_tf  # noqa: F401  selects tf_keras before TensorFlow loads

# isort: split
from bnn_tf.converters.benchmarking import machine_description


def record_header(name: str, load_before: tuple[float, float, float] | None = None) -> dict:
    """The first fields of a results JSON; `load_before` is `os.getloadavg()` taken at the start."""
    return {
        "benchmark": name,
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]),
        "machine": machine_description(),
        "load_average_before": [round(v, 2) for v in (load_before or os.getloadavg())],
    }
