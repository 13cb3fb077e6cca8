"""The main job as a benchmark: `bnn-tf demo` end to end, timed, results committed.

Writes benchmarks/results/demo.json (the demo report + wall time, machine,
command, load average) and demo_curves.png.

    python benchmarks/demo.py [--epochs 8] [--out runs/bench_demo]
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import harness

import bnn_tf  # noqa: F401  selects tf_keras before TensorFlow loads

# isort: split
from bnn_tf import atomic, demo

BENCHMARK = harness.Benchmark(
    name="demo",
    description="`bnn-tf demo` end to end (train, convert, verify, bench), wall time vs 15 min",
    default_args=[],
    smoke_args=["--epochs", "1", "--limit-train", "512", "--limit-test", "256",
                "--bench-runs", "5", "--out", "{tmp}/demo"],
)  # fmt: skip
GOAL_WALL_SECONDS = 15 * 60


def main(argv: list[str] | None = None) -> int:
    parser = harness.argument_parser(BENCHMARK, __doc__)
    harness.data_options(parser, epochs=8, limit_train=None, limit_test=None)
    parser.add_argument("--out", default="runs/bench_demo")
    parser.add_argument("--bench-runs", type=int, default=100, help="timed latency runs")
    args = parser.parse_args(argv)

    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)  # a fresh run: the timing must include training
    record = harness.Recorder(BENCHMARK, argv, args.results_dir)
    start = time.perf_counter()
    report = demo.run(
        out_dir=out,
        epochs=args.epochs,
        limit_train=args.limit_train,
        limit_test=args.limit_test,
        bench_runs=args.bench_runs,
        verbose=2,
    )
    wall = time.perf_counter() - start
    record.write_json(
        "demo",
        {"wall_seconds": round(wall, 1), "goal_wall_seconds": GOAL_WALL_SECONDS, "report": report},
    )
    atomic.write_with(
        record.path("demo_curves", ".png"), lambda tmp: shutil.copyfile(out / "curves.png", tmp)
    )
    print(demo.format_report(report))
    print(f"wall time {wall:.0f} s (goal ≤ {GOAL_WALL_SECONDS} s)")
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
