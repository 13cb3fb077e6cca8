"""Shared pieces of benchmark records: the header (name, date, command, machine, load) and
other training runs quoted for context."""

from __future__ import annotations

import datetime as dt
import json
import os
import shlex
import sys
from pathlib import Path

import bnn_tf  # noqa: F401  selects tf_keras before TensorFlow loads

# isort: split
from bnn_tf import training
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


def run_context(run: Path) -> dict:
    """Settings, history and state of a training folder (finished or not), for a record."""
    history_file = run / training.HISTORY_FILE
    return {
        "run_dir": str(run),
        "config": json.loads((run / training.RUN_FILE).read_text()).get("config"),
        "finished": (run / training.SUMMARY_FILE).exists(),
        "history": json.loads(history_file.read_text()) if history_file.exists() else [],
    }
