"""Benchmark: a zoo model trained with Bop + Adam vs Adam on latent weights, at equal budget.

Backs the optimizer a zoo entry defaults to where it departs from its paper
(or where the paper's optimizer has no benchmark of ours yet, e.g. MeliusNet:
RAdam on latent weights in the paper, Bop here). Each arm is one
`bnn_tf.experiment.train` run (what `bnn-tf train MODEL --optimizer ARM`
runs: the weight clip the optimizer implies, the declared schedules, cosine
learning rate), same data subset, epochs, batch and seeds:

- `bop`: Bop for the binary kernels (γ, τ from TrainConfig) + Adam for the rest;
- `adam`: Adam on latent weights for everything, with `weight_clip`
  (`--adam-learning-rate`, default 2e-3 as MeliusNet's paper).

Runs live under `--work/<model>_<arm>_s<seed>` and resume when interrupted.
Test accuracy is the last epoch's on the full test set (nothing is selected
on it). Writes `benchmarks/results/<name>.json` and `.png`.

    nice -n 10 .venv/bin/python benchmarks/optimizer_choice.py --models meliusnet_small \\
        --epochs 3 --limit-train 6000 --seeds 0 1
"""

from __future__ import annotations

import statistics

import harness

import bnn_tf  # noqa: F401  selects tf_keras before TensorFlow loads

# isort: split
from bnn_tf import optimizers, training

BENCHMARK = harness.Benchmark(
    name="optimizer_choice",
    description="Bop + Adam vs Adam on latent weights per zoo model, equal budget",
    default_args=["--models", "meliusnet_small", "--epochs", "3", "--limit-train", "6000",
                  "--seeds", "0", "1"],
    smoke_args=["--models", "bnn_small", "--epochs", "1", "--limit-train", "256",
                "--limit-test", "256", "--seeds", "0", "--work", "{tmp}/work"],
)  # fmt: skip
ARMS = ("bop", "adam")


def main(argv: list[str] | None = None) -> int:
    p = harness.argument_parser(BENCHMARK, __doc__)
    harness.data_options(p, limit_test=None, epochs=3, limit_train=6000, batch_size=64)
    p.add_argument("--models", nargs="+", default=["meliusnet_small"])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--adam-learning-rate", type=float, default=2e-3)
    p.add_argument("--work", default="runs/bench_optimizer_choice")
    p.add_argument("--name", default=BENCHMARK.name)
    args = p.parse_args(argv)
    record = harness.Recorder(BENCHMARK, argv, args.results_dir)
    splits = harness.fashion_mnist(limit_test=args.limit_test)
    # The Bop arm's Adam (non-binary weights) keeps the `bnn-tf train` default.
    bop_adam_rate = optimizers.BopAdamConfig.learning_rate

    def config_for(model: str, seed: int, arm: str) -> training.TrainConfig:
        return training.TrainConfig(
            model, epochs=args.epochs, batch_size=args.batch_size,
            limit_train=args.limit_train, seed=seed, optimizer=arm,
            learning_rate=args.adam_learning_rate if arm == "adam" else bop_adam_rate,
        )  # fmt: skip

    rows = harness.train_arms(
        args.models, args.seeds, ARMS, config_for, work=args.work, splits=splits,
        extra=lambda summary: {"optimizer": summary["optimizer_choice"]},
    )  # fmt: skip
    means = {
        run: statistics.mean(r["test_accuracy"] for r in rs)
        for run, rs in harness.group_by(rows, "run").items()
    }
    record.write_json(args.name, {
        "conditions": {"epochs": args.epochs, "limit_train": args.limit_train,
                       "batch_size": args.batch_size, "seeds": args.seeds,
                       "adam_learning_rate": args.adam_learning_rate,
                       "test_images": args.limit_test or 10000},
        "mean_test_accuracy": {k: round(v, 4) for k, v in means.items()},
        "rows": rows,
    })  # fmt: skip
    fig, ax = harness.figure()
    harness.bars(ax, list(means), {"test accuracy (mean over seeds)": list(means.values())})
    ax.set_title(f"Bop vs Adam (latent), {args.limit_train} images × {args.epochs} epochs")
    record.write_png(args.name, fig)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
