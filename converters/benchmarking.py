"""`bench`: latency and size of a `.tflite` on this machine.

Latency is measured with LCE's Python interpreter (indirect BGEMM), batch 1,
after warm-up runs; the median is the headline. x86_64 kernels are not the
ARM-optimised ones: compare models on the same machine, not absolute numbers
across machines (docs/benchmarks.md).
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import asdict, dataclass

import numpy as np

from bnn_tf.converters.runtime import make_interpreter
from bnn_tf.converters.tflite_model import read_bytes
from bnn_tf.errors import ConfigError


@dataclass
class BenchResult:
    """Latency statistics (milliseconds, batch 1) and file size of one model."""

    median_ms: float
    mean_ms: float
    min_ms: float
    p90_ms: float
    runs: int
    threads: int
    size_bytes: int
    machine: str

    def to_dict(self) -> dict:
        return asdict(self)

    def format(self) -> str:
        return (
            f"latency: median {self.median_ms:.3f} ms (min {self.min_ms:.3f}, p90 {self.p90_ms:.3f}) "
            f"over {self.runs} runs, {self.threads} thread(s), batch 1\n"
            f"size: {self.size_bytes:,} bytes\nmachine: {self.machine}"
        )


def machine_description() -> str:
    """e.g. 'x86_64, 2 cores, Linux 6.1, Python 3.11.7'."""
    return (
        f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}"
    )


def bench(
    tflite: bytes | str | os.PathLike[str],
    *,
    threads: int = 1,
    runs: int = 50,
    warmup: int = 5,
    seed: int = 0,
) -> BenchResult:
    """Median latency of one inference (batch 1) with the LCE interpreter.

    Args:
        tflite: model bytes or path.
        threads: interpreter threads.
        runs: timed runs (≥ 1).
        warmup: untimed runs first (caches, lazy allocations).
        seed: seed of the random input (values in [-1, 1], the models' range).
    """
    if runs < 1:
        raise ConfigError(f"runs must be ≥ 1 (got {runs}).")
    buf = read_bytes(tflite)
    interpreter = make_interpreter(buf, num_threads=threads)
    shape = (1, *interpreter.input_shapes[0][1:])
    dtype = np.dtype(interpreter.input_types[0])
    rng = np.random.default_rng(seed)
    if np.issubdtype(dtype, np.integer):
        x = rng.integers(-128, 127, size=shape).astype(dtype)
    else:
        x = rng.uniform(-1, 1, size=shape).astype(dtype)
    for _ in range(warmup):
        interpreter.predict(x)
    times = np.empty(runs)
    for i in range(runs):
        start = time.perf_counter()
        interpreter.predict(x)
        times[i] = (time.perf_counter() - start) * 1e3
    return BenchResult(
        median_ms=float(np.median(times)),
        mean_ms=float(times.mean()),
        min_ms=float(times.min()),
        p90_ms=float(np.percentile(times, 90)),
        runs=runs,
        threads=threads,
        size_bytes=len(buf),
        machine=machine_description(),
    )
