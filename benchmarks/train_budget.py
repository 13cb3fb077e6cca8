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

Writes `benchmarks/results/<name>.json` and `<name>.png` (test accuracy over
cumulative training minutes, with the goal and the budget). The accuracy
that counts is the one after the LAST epoch (nothing is selected on the test
set); the per-epoch test accuracies are shown for the curve only. Run it on
an otherwise idle machine: the wall time is the point.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import shutil
import sys
from pathlib import Path

import bnn_tf  # noqa: F401  selects tf_keras before TensorFlow loads

# isort: split
from _common import run_context

from bnn_tf import atomic, experiment, training
from bnn_tf.converters.benchmarking import machine_description

RESULTS = Path(__file__).resolve().parent / "results"


def _plot(path: Path, record: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    minutes, acc, total = [], [], 0.0
    for r in record["history"]:
        total += r["seconds"]
        minutes.append(total / 60)
        acc.append(r["val_accuracy"])
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(minutes, acc, marker="o", label=f"{record['model']} (seed {record['seed']})")
    if record.get("goal_test_accuracy"):
        ax.axhline(record["goal_test_accuracy"], color="tab:green", ls="--", label="goal")
    if record.get("budget_minutes"):
        ax.axvline(record["budget_minutes"], color="tab:red", ls=":", label="time budget")
    ax.set_xlabel("cumulative training minutes (2-core CPU)")
    ax.set_ylabel("Fashion-MNIST test accuracy")
    ax.set_title(
        f"{record['model']}: {record['final_test_accuracy']:.4f} after "
        f"{record['epochs']} epochs, {record['train_minutes']:.1f} min"
    )
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    atomic.write_with(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--augment", action="store_true")
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
    parser.add_argument("--jit-compile", action="store_true", help="XLA-compiled training step")
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
    if args.fresh and Path(args.run_dir).exists():
        shutil.rmtree(args.run_dir)

    config = training.TrainConfig(
        model=args.model,
        epochs=args.epochs,
        seed=args.seed,
        augment=args.augment,
        learning_rate=args.learning_rate,
        model_kwargs=args.model_kwargs,
        bop_gamma_schedule=args.bop_gamma_schedule,
        jit_compile=args.jit_compile,
    )
    load_before = os.getloadavg()
    summary = experiment.train(config, args.run_dir, verbose=2)
    run = Path(args.run_dir)
    history = json.loads((run / training.HISTORY_FILE).read_text())
    train_seconds = sum(r["seconds"] for r in history)
    final = summary["test_accuracy"]
    record = {
        "benchmark": args.name,
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]),
        "machine": machine_description(),
        "load_average_when_recorded": [round(v, 2) for v in load_before],
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
        "goal_test_accuracy": args.goal,
        "within_budget": None
        if args.budget_minutes is None
        else train_seconds <= 60 * args.budget_minutes,
        "goal_met": None if args.goal is None else final >= args.goal,
        "history": history,
        "context_runs": [run_context(Path(d)) for d in args.context_run],
        "note": (
            "Accuracy after the last epoch on the 10 000 test images; per-epoch test "
            "accuracies (history.val_accuracy) are for the curve, nothing was selected on them. "
            "train_minutes sums the epochs (validation included), not model building or data loading."
        ),
    }
    atomic.write_json(RESULTS / f"{args.name}.json", record)
    _plot(RESULTS / f"{args.name}.png", record)
    print(
        f"{args.model}: test accuracy {final:.4f} after {len(history)} epochs, "
        f"{train_seconds / 60:.1f} min"
        + (
            f" (goal {args.goal}: {'met' if record['goal_met'] else 'NOT met'})"
            if args.goal
            else ""
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
