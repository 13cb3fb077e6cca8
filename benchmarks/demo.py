"""The main job as a benchmark: `bnn-tf demo` end to end, timed, results committed.

Writes benchmarks/results/demo.json (the demo report + wall time, machine,
command, whether the machine was idle) and demo_curves.png.

    python benchmarks/demo.py [--epochs 8] [--out runs/bench_demo]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sys
import time
from pathlib import Path

import bnn_tf  # noqa: F401  selects tf_keras before TensorFlow loads

# isort: split
from bnn_tf import atomic, demo
from bnn_tf.converters.benchmarking import machine_description

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--out", default="runs/bench_demo")
    args = parser.parse_args(argv)
    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)  # a fresh run: the timing must include training
    load_before = os.getloadavg()
    start = time.perf_counter()
    report = demo.run(out_dir=out, epochs=args.epochs, verbose=2)
    wall = time.perf_counter() - start
    result = {
        "benchmark": "demo",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": machine_description(),
        "load_average_before": [round(v, 2) for v in load_before],
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
        "wall_seconds": round(wall, 1),
        "goal_wall_seconds": 15 * 60,
        "report": report,
    }
    atomic.write_json(RESULTS / "demo.json", result)
    shutil.copyfile(out / "curves.png", RESULTS / "demo_curves.png")
    print(demo.format_report(report))
    print(f"wall time {wall:.0f} s (goal ≤ 900 s)")
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
