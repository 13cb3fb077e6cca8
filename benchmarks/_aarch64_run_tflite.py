"""Runs inside the arm64 chroot (under qemu-user): the portable .tflite models on real images.

A helper of aarch64_portable_check.py (the `_` prefix: not a benchmark itself).

Standalone on purpose: only numpy and ai-edge-litert (the aarch64 wheels from
PyPI), no TensorFlow and no bnn_tf, like a Raspberry Pi with `pip install
ai-edge-litert`. Reads WORK/prepare.json written by aarch64_portable_check.py
prepare, writes WORK/<prefix>_<name>.npy and WORK/<prefix>_run.json.

    python3 _aarch64_run_tflite.py WORK [PREFIX]     # PREFIX: default "aarch64"

The same script also runs natively on x86_64 with the x86_64 wheels (PREFIX
"x86litert"), which separates platform differences from differences between
TF's bundled TFLite and ai-edge-litert.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from importlib import metadata
from pathlib import Path

import numpy as np

try:
    from ai_edge_litert.interpreter import Interpreter

    RUNTIME = f"ai-edge-litert {metadata.version('ai-edge-litert')}"
except ImportError:
    # The smoke test (`aarch64_portable_check.py local`) runs this on a host
    # without ai-edge-litert: TensorFlow's bundled TFLite, recorded as such.
    from tensorflow.lite.python.interpreter import Interpreter

    RUNTIME = f"tensorflow.lite {metadata.version('tensorflow')}"


def run_model(
    path: Path, images: np.ndarray, scale: float, offset: float
) -> tuple[np.ndarray, float]:
    interpreter = Interpreter(model_path=str(path), num_threads=1)
    interpreter.allocate_tensors()
    inp = interpreter.get_input_details()[0]
    out = interpreter.get_output_details()[0]
    # The same pre-processing as bnn_tf.data.preprocess: float32 pixel * scale + offset.
    x = images.astype(np.float32) * np.float32(scale) + np.float32(offset)
    results = np.zeros((len(x), int(out["shape"][-1])), np.float32)
    start = time.perf_counter()
    for i in range(len(x)):
        xi = x[i : i + 1]
        if inp["dtype"] != np.float32:
            q_scale, zero = inp["quantization"]
            info = np.iinfo(inp["dtype"])
            xi = np.clip(np.round(xi / q_scale + zero), info.min, info.max).astype(inp["dtype"])
        interpreter.set_tensor(inp["index"], xi)
        interpreter.invoke()
        y = interpreter.get_tensor(out["index"])
        if out["dtype"] != np.float32:
            q_scale, zero = out["quantization"]
            y = (y.astype(np.float32) - zero) * q_scale
        results[i] = y[0]
    return results, time.perf_counter() - start


def main(work: Path, prefix: str = "aarch64") -> int:
    prep = json.loads((work / "prepare.json").read_text())
    images = np.load(work / prep["images"])
    run = {
        "machine": platform.machine(),
        "python": platform.python_version(),
        "runtime": RUNTIME,
        "numpy": np.__version__,
        "models": {},
    }
    for name, info in prep["models"].items():
        out, seconds = run_model(work / info["file"], images, prep["scale"], prep["offset"])
        np.save(work / f"{prefix}_{name}.npy", out)
        run["models"][name] = {"seconds": seconds, "images": len(images)}
        print(
            f"{name}: {len(images)} images in {seconds:.1f} s on {platform.machine()}", flush=True
        )
    (work / f"{prefix}_run.json").write_text(json.dumps(run, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), *sys.argv[2:3]))
