"""Run the benchmarks with the settings of the committed results (`make bench`).

Each entry is the command that produced `benchmarks/results/<name>.json`.
They run one after another (the machine has 2 cores; parallel runs would
distort each other's timings). Expect a few hours in total on 2 cores.

    python benchmarks/run_all.py            # all
    python benchmarks/run_all.py --list     # names and commands
    python benchmarks/run_all.py demo recu_fashion_mnist
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

BENCHMARKS: dict[str, list[str]] = {
    "demo": ["demo.py"],
    "recu_fashion_mnist": ["recu_fashion_mnist.py", "--limit-train", "6000", "--epochs", "3",
                           "--overhead-reps", "5"],
    "meliusnet_latency": ["meliusnet_latency.py", "--runs", "15"],
    "meliusnet_small_fmnist": ["train_budget.py", "--model", "meliusnet_small", "--augment",
                               "--bop-gamma-schedule", "cosine", "--epochs", "12", "--seed", "0",
                               "--run-dir", "runs/melius_small_aug12",
                               "--name", "meliusnet_small_fmnist", "--goal", "0.92", "--fresh"],
    "recu_60min": ["train_budget.py", "--model", "recu_resnet20",
                   "--model-kwargs", '{"width_multiplier": 2}', "--bop-gamma-schedule", "cosine",
                   "--epochs", "11", "--seed", "0", "--run-dir", "runs/recu60_wide_s0",
                   "--name", "recu_60min", "--budget-minutes", "60", "--goal", "0.92", "--fresh"],
    "recu_resolution": ["recu_resolution.py", "--runs-dir", "runs/recu_resolution"],
    "step_time": ["step_time.py"],
    "ebconv_export": ["ebconv_export.py", "--rounds", "200", "--model-rounds", "100",
                      "--limit-test", "10000"],
    "ebconv_training": ["ebconv_training.py", "--rounds", "25"],
    "methods_table": ["methods_table.py", "--epochs", "3", "--limit-train", "6000"],
    "optimizers_recipes": ["optimizers_recipes.py", "--epochs", "3", "--limit-train", "6000",
                           "--limit-test", "2000", "--seeds", "0", "1"],
    "zoo_parity": ["zoo_parity.py", "--models",
                   "bnn_small,birealnet_small,xnornet_small,bnn_small_float", "--portable"],
}  # fmt: skip
# Needs root (debootstrap, qemu-user-static): run by hand, see docs/deploy.md.
MANUAL = {"aarch64_portable_check": "sudo benchmarks/aarch64_portable_check.sh --int8"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "names", nargs="*", help=f"benchmarks to run (default: all of {list(BENCHMARKS)})"
    )
    parser.add_argument(
        "--list", action="store_true", help="print the benchmarks and their commands"
    )
    args = parser.parse_args(argv)
    if args.list:
        for name, cmd in BENCHMARKS.items():
            print(f"{name:<22} python benchmarks/{' '.join(cmd)}")
        for name, cmd in MANUAL.items():
            print(f"{name:<22} {cmd}   (manual)")
        return 0
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; choose from {list(BENCHMARKS)}")
    failed = []
    for name in args.names or list(BENCHMARKS):
        cmd = [sys.executable, str(HERE / BENCHMARKS[name][0]), *BENCHMARKS[name][1:]]
        print(f"== {name}: {' '.join(cmd)}", flush=True)
        start = time.perf_counter()
        code = subprocess.call(cmd)
        print(f"== {name}: exit {code} after {time.perf_counter() - start:.0f} s", flush=True)
        if code:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
