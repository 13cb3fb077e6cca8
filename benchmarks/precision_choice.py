"""Benchmark: float32 vs bfloat16 binary convolutions at equal epochs (the accuracy cost alone).

`--precision binary_bfloat16` makes each step faster on a CPU with native
bfloat16, so at a time budget it trains more epochs; a budget run alone
cannot tell whether bfloat16 also costs accuracy. This runs the same training
(`bnn_tf.experiment.train`, what `bnn-tf train MODEL --precision P` runs:
same data subset, epochs, batch, optimizer and seeds) once per precision and
compares the test accuracy (the float32 copy the run saves, as it is
converted) and the seconds per epoch. The arms are interleaved per seed, so
load changes hit them alike (`harness.train_arms`); runs live under
`--work/<model>_<precision>_s<seed>` and resume when interrupted.

    .venv/bin/python benchmarks/precision_choice.py --models meliusnet_small \\
        --epochs 4 --limit-train 12000 --seeds 0 1

Writes `benchmarks/results/<name>.json` and `.png`; the JSON says whether the
CPU has native bfloat16 (`precision.native_bfloat16`), without which the
bfloat16 arms are emulated and slower.
"""

from __future__ import annotations

import statistics

import harness

import bnn_tf  # noqa: F401  selects tf_keras before TensorFlow loads

# isort: split
from bnn_tf import precision, training

BENCHMARK = harness.Benchmark(
    name="precision_choice",
    description="float32 vs binary_bfloat16 training per zoo model, equal epochs",
    default_args=["--models", "meliusnet_small", "--epochs", "4", "--limit-train", "12000",
                  "--seeds", "0", "1"],
    smoke_args=["--models", "bnn_small", "--epochs", "1", "--limit-train", "256",
                "--limit-test", "256", "--seeds", "0", "--work", "{tmp}/work"],
)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = harness.argument_parser(BENCHMARK, __doc__)
    harness.data_options(p, limit_test=None, epochs=4, limit_train=12000, batch_size=128)
    p.add_argument("--models", nargs="+", default=["meliusnet_small"])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument(
        "--precisions", nargs="+", default=[precision.FLOAT32, precision.BINARY_BFLOAT16],
        choices=precision.PRECISIONS,
    )  # fmt: skip
    p.add_argument("--work", default="runs/bench_precision_choice")
    p.add_argument("--name", default=BENCHMARK.name)
    args = p.parse_args(argv)
    record = harness.Recorder(BENCHMARK, argv, args.results_dir)
    splits = harness.fashion_mnist(limit_test=args.limit_test)

    def config_for(model: str, seed: int, low: str) -> training.TrainConfig:
        return training.TrainConfig(
            model, epochs=args.epochs, batch_size=args.batch_size,
            limit_train=args.limit_train, seed=seed, precision=low,
        )  # fmt: skip

    rows = harness.train_arms(
        args.models, args.seeds, args.precisions, config_for, work=args.work, splits=splits,
        label="precision", extra=lambda summary: {
            "seconds_per_epoch": round(summary["seconds_total"] / args.epochs, 1),
            "optimizer": summary["optimizer"],
        },
    )  # fmt: skip
    groups = harness.group_by(rows, "run")
    means = {run: statistics.mean(r["test_accuracy"] for r in rs) for run, rs in groups.items()}
    seconds = {run: statistics.mean(r["seconds"] for r in rs) for run, rs in groups.items()}
    # Per seed, each low precision's accuracy and time against float32's (same seed, same data).
    paired = []
    for model in args.models:
        base = {
            r["seed"]: r
            for r in rows
            if r["model"] == model and r["precision"] == precision.FLOAT32
        }
        for r in rows:
            if r["model"] == model and r["precision"] != precision.FLOAT32 and r["seed"] in base:
                b = base[r["seed"]]
                paired.append({
                    "model": model, "precision": r["precision"], "seed": r["seed"],
                    "points_vs_float32": round(100 * (r["test_accuracy"] - b["test_accuracy"]), 2),
                    "speedup_vs_float32": round(b["seconds"] / r["seconds"], 3),
                })  # fmt: skip
    record.write_json(args.name, {
        "conditions": {"epochs": args.epochs, "limit_train": args.limit_train,
                       "batch_size": args.batch_size, "seeds": args.seeds,
                       "test_images": args.limit_test or 10000},
        "native_bfloat16": precision.native_bfloat16(),
        "mean_test_accuracy": {k: round(v, 4) for k, v in means.items()},
        "mean_seconds": {k: round(v, 1) for k, v in seconds.items()},
        "paired": paired,
        "rows": rows,
    })  # fmt: skip
    fig, (left, right) = harness.figure(ncols=2, size=(11, 4))
    harness.bars(left, list(means), {"test accuracy (mean over seeds)": list(means.values())})
    left.set_ylim(min(means.values()) - 0.02, max(means.values()) + 0.01)
    harness.bars(right, list(seconds), {"seconds of training (mean)": list(seconds.values())})
    left.set_title("test accuracy (mean over seeds)")
    right.set_title("seconds of training (mean over seeds)")
    fig.suptitle(f"precision at equal epochs: {args.limit_train} images × {args.epochs} epochs")
    record.write_png(args.name, fig)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
