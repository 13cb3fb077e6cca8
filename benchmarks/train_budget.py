"""Benchmark: train a zoo model on full Fashion-MNIST the way a user would, and check an accuracy goal.

Runs `bnn_tf.experiment.train` (what `bnn-tf train` runs: Bop for binary
kernels, Adam with a cosine learning rate for the rest, ReCU's τ schedule
when the model has ReCU layers, a checkpoint per epoch) and records test
accuracy, wall time per epoch and the machine. The run folder is reused:
if `--run-dir` already holds this finished run (e.g. from the equivalent
`bnn-tf train MODEL --epochs N --seed S --out DIR`), only the record is
written; an unfinished one resumes.

    .venv/bin/python benchmarks/train_budget.py --model recu_resnet20 --epochs 22 \\
        --seed 0 --run-dir runs/recu60_s0 --name recu_60min_s0 --budget-minutes 60 --goal 0.92

Writes `benchmarks/results/<name>.json` and `<name>.png` (validation accuracy
per epoch over cumulative training minutes, the final test accuracy, the goal
and the budget). The accuracy that counts is the test accuracy after the LAST
epoch (the test set is evaluated once; nothing is selected on it); the
per-epoch curve is the held-out validation split's. Run it on
an otherwise idle machine: the wall time is the point.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys
from pathlib import Path

import harness

import bnn_tf  # noqa: F401  selects tf_keras before TensorFlow loads

# isort: split
from bnn_tf import experiment, optimizers, precision, training

BENCHMARK = harness.Benchmark(
    name="train_budget",
    description="train a zoo model like `bnn-tf train`, check an accuracy goal and a time budget",
    runs={
        "meliusnet_small_fmnist": [
            "--model", "meliusnet_small", "--optimizer", "bop", "--augment",
            "--bop-gamma-schedule", "cosine", "--epochs", "12", "--seed", "0", "--run-dir", "runs/melius_small_aug12",
            "--name", "meliusnet_small_fmnist", "--goal", "0.92", "--fresh",
        ],
        "budget_60min": [
            "--model", "meliusnet_small", "--optimizer", "bop", "--augment",
            "--bop-gamma-schedule", "cosine", "--precision", "binary_bfloat16", "--time-budget", "60", "--epochs", "8",
            "--seed", "0", "--run-dir", "runs/b60_melius_bf16_s0", "--name", "budget_60min",
            "--goal", "0.92", "--fresh",
        ],
        "recu_60min": [
            "--model", "recu_resnet20", "--model-kwargs", '{"width_multiplier": 2}',
            "--bop-gamma-schedule", "cosine", "--epochs", "11", "--seed", "0",
            "--run-dir", "runs/recu60_wide_s0", "--name", "recu_60min",
            "--budget-minutes", "60", "--goal", "0.92", "--fresh",
        ],
    },
    smoke_args=["--model", "bnn_small", "--epochs", "1", "--limit-train", "256",
                "--limit-test", "256", "--run-dir", "{tmp}/run", "--name", "train_budget_smoke",
                "--budget-minutes", "5", "--goal", "0.5"],
)  # fmt: skip


def _plot(record: harness.Recorder, name: str, body: dict) -> None:
    minutes, acc, total = [], [], 0.0
    for r in body["history"]:
        total += r["seconds"]
        minutes.append(total / 60)
        acc.append(r["val_accuracy"])
    fig, ax = harness.figure()
    harness.curves(
        ax,
        {f"{body['model']} (seed {body['seed']})": (minutes, acc)},
        xlabel="cumulative training minutes (2-core CPU)",
        ylabel="accuracy (curve: validation split)",
        title=f"{body['model']}: {body['final_test_accuracy']:.4f} after "
        f"{body['epochs']} epochs, {body['train_minutes']:.1f} min",
    )
    ax.plot([minutes[-1]], [body["final_test_accuracy"]], "k*", markersize=10,
            label=f"test, after the last epoch: {body['final_test_accuracy']:.4f}")  # fmt: skip
    ax.legend(fontsize=8)
    if body.get("goal_test_accuracy"):
        harness.reference_line(ax, body["goal_test_accuracy"], "goal", color="tab:green")
    if body.get("budget_minutes"):
        harness.reference_line(
            ax, body["budget_minutes"], "time budget", vertical=True, color="tab:red", ls=":"
        )
    record.write_png(name, fig)


def main(argv: list[str] | None = None) -> int:
    parser = harness.argument_parser(BENCHMARK, __doc__)
    parser.add_argument("--model", required=True)
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--augment", action="store_true")
    harness.data_options(parser, limit_test=None, limit_train=None)
    parser.add_argument(
        "--model-kwargs",
        type=json.loads,
        default={},
        help="factory options as JSON, e.g. '{\"width_multiplier\": 2}'",
    )
    parser.add_argument("--learning-rate", type=float, default=training.TrainConfig.learning_rate)
    parser.add_argument(
        "--bop-gamma-schedule", choices=training.GAMMA_SCHEDULES, default="constant"
    )
    parser.add_argument(
        "--optimizer",
        choices=optimizers.OPTIMIZERS,
        default=None,
        help="as `bnn-tf train --optimizer` (default: the model's registered training)",
    )
    parser.add_argument("--jit-compile", action="store_true", help="XLA-compiled training step")
    parser.add_argument("--precision", choices=precision.PRECISIONS, default=None)
    parser.add_argument(
        "--time-budget",
        type=float,
        default=None,
        metavar="MINUTES",
        help="as `bnn-tf train --time-budget` (the run plans its epochs; --epochs is kept "
        "only to match a run folder trained with the CLI's default)",
    )
    parser.add_argument("--run-dir", required=True, help="training folder (reused/resumed)")
    parser.add_argument("--name", required=True, help="results file name (no extension)")
    parser.add_argument("--budget-minutes", type=float, default=None)
    parser.add_argument("--goal", type=float, default=None, help="test accuracy goal")
    parser.add_argument(
        "--context-run",
        action="append",
        default=[],
        metavar="DIR",
        help="another run folder (e.g. an earlier, stopped attempt) whose settings and "
        "history are copied into the record for context",
    )
    parser.add_argument(
        "--conditions",
        default=None,
        help="what else ran on the machine during the run (recorded as-is; wall times "
        "are only comparable on an idle machine)",
    )
    parser.add_argument(
        "--fresh", action="store_true", help="delete --run-dir first (a timed run from scratch)"
    )
    args = parser.parse_args(argv)
    if args.budget_minutes is None:
        args.budget_minutes = args.time_budget
    if args.fresh and Path(args.run_dir).exists():
        shutil.rmtree(args.run_dir)

    # The flags are named after TrainConfig's fields: copy every one that is set here.
    fields = {f.name for f in dataclasses.fields(training.TrainConfig)}
    config = training.TrainConfig(**{k: v for k, v in vars(args).items() if k in fields})
    record = harness.Recorder(BENCHMARK, argv, args.results_dir)
    splits = harness.fashion_mnist(limit_test=args.limit_test)
    summary = experiment.train(config, args.run_dir, splits=splits, verbose=2)
    run = Path(args.run_dir)
    history = json.loads((run / training.HISTORY_FILE).read_text())
    train_seconds = sum(r["seconds"] for r in history)
    final = summary["test_accuracy"]
    body = {
        "conditions": args.conditions or "not stated",
        "model": args.model,
        "model_kwargs": args.model_kwargs,
        "seed": args.seed,
        "config": config.to_dict(),
        "data_source": summary.get("data_source"),
        "train_images": summary.get("train_images"),
        "epochs": len(history),
        "final_test_accuracy": final,
        "train_minutes": round(train_seconds / 60, 2),
        "seconds_per_epoch_median": sorted(r["seconds"] for r in history)[len(history) // 2],
        "budget_minutes": args.budget_minutes,
        "time_budget": summary.get("time_budget"),
        "precision": summary.get("precision"),
        "goal_test_accuracy": args.goal,
        "within_budget": None
        if args.budget_minutes is None
        else train_seconds <= 60 * args.budget_minutes,
        "goal_met": None if args.goal is None else final >= args.goal,
        "history": history,
        "context_runs": [harness.run_context(d) for d in args.context_run],
        "test_images": len(splits.x_test),
        "note": (
            "Accuracy after the last epoch on the test images (evaluated once); the per-epoch "
            "history.val_accuracy is the held-out validation split's, for the curve only. "
            "train_minutes sums the epochs (validation included), not model building or data loading."
        ),
    }
    record.write_json(args.name, body)
    _plot(record, args.name, body)
    print(
        f"{args.model}: test accuracy {final:.4f} after {len(history)} epochs, "
        f"{train_seconds / 60:.1f} min"
        + (f" (goal {args.goal}: {'met' if body['goal_met'] else 'NOT met'})" if args.goal else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
