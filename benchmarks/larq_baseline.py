"""Benchmark: the plain-larq baseline, what a user would write from larq's guide, at equal budget.

The architecture of our best Fashion-MNIST model (`meliusnet_small`: larq
`QuantConv2D` with `SteSign(1.3)` inputs and kernels), trained the way larq's
user guide trains a BNN: latent weights with `WeightClip(1.3)`, Adam on every
variable, a cosine learning-rate decay, `model.fit` on the in-memory arrays,
float32, no augmentation, no Bop. Nothing else from bnn-tf trains it: the
library only loads the same data (Fashion-MNIST scaled to [-1, 1], the same
seeded 54 000 / 6 000 train/validation split as `bnn-tf train`) and, to give
both sides the same compute, plans the epochs from the budget with
`bnn_tf.budget` (step time measured on a throw-away copy; after each epoch the
plan and the cosine are re-planned to what still fits, as `bnn-tf train
--time-budget` does, unless `--no-replan`; the run stops at the budget if it
is slower than planned).

    .venv/bin/python benchmarks/larq_baseline.py --minutes 60 --seed 0 \\
        --name larq_baseline_60min

Writes `benchmarks/results/<name>.json` and `.png` (validation accuracy per
epoch against cumulative minutes; the test set once, at the end, as `bnn-tf
train` does, unless `--test-every-epoch`). `--compare RESULT.json` (a `train_budget.py`
record of `bnn-tf train ... --time-budget` at the same budget) puts that run
beside this one: both curves in the PNG, and in the JSON both final
accuracies, minutes and the difference in points.
"""

from __future__ import annotations

import json
import sys
import time

import harness

import bnn_tf  # noqa: F401  selects tf_keras before TensorFlow loads

# isort: split
import larq as lq
import numpy as np
import tensorflow as tf

from bnn_tf import budget, data
from bnn_tf import models as zoo

BENCHMARK = harness.Benchmark(
    name="larq_baseline",
    description="plain larq (latent weights, weight clip, Adam, cosine) on our best graph, "
    "at a time budget",
    runs={
        "larq_baseline_60min": ["--minutes", "60", "--seed", "0", "--name", "larq_baseline_60min"]
    },
    smoke_args=["--minutes", "1.5", "--limit-train", "512", "--limit-test", "256",
                "--model-kwargs", '{"num_blocks": [1, 1, 1, 1]}', "--name", "larq_baseline_smoke"],
)  # fmt: skip

VALIDATION_SHARE = 0.1
BATCH = 128


class _History(tf.keras.callbacks.Callback):
    """Per-epoch logs and seconds; the test set per epoch only when asked (`test`), since
    that evaluation runs inside the budget and `bnn-tf train` does not do it."""

    def __init__(self, test: tuple[np.ndarray, np.ndarray] | None):
        super().__init__()
        self.test, self.rows, self.start = test, [], 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self.start  # the epoch and its validation
        row = {**{k: float(v) for k, v in (logs or {}).items()}, "seconds": round(seconds, 1)}
        if self.test is not None:
            row["test_accuracy"] = float(self.model.evaluate(*self.test, batch_size=512,
                                                             verbose=0)[1])  # fmt: skip
        self.rows.append(row)


def _model(model: str, kwargs: dict, shape, classes: int) -> tf.keras.Model:
    return zoo.build(
        model, input_shape=shape, num_classes=classes,
        kernel_constraint=lq.constraints.WeightClip(1.3), **kwargs,
    )  # fmt: skip


def _compile(model: tf.keras.Model, total_steps: int, learning_rate: float) -> None:
    schedule = tf.keras.optimizers.schedules.CosineDecay(learning_rate, max(total_steps, 1))
    model.compile(
        tf.keras.optimizers.Adam(schedule),
        loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )


def main(argv: list[str] | None = None) -> int:
    parser = harness.argument_parser(BENCHMARK, __doc__)
    parser.add_argument("--minutes", type=float, required=True, help="time budget")
    parser.add_argument("--model", default="meliusnet_small", help="the graph (a zoo model)")
    parser.add_argument("--model-kwargs", type=json.loads, default={})
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--name", required=True)
    parser.add_argument(
        "--compare", default=None,
        help="a train_budget.py result JSON at the same budget, reported beside this run",
    )  # fmt: skip
    parser.add_argument(
        "--test-every-epoch", action="store_true",
        help="also evaluate the test set after every epoch (inside the budget; off by default "
        "so the baseline gets the same compute as `bnn-tf train`)",
    )  # fmt: skip
    parser.add_argument(
        "--no-replan", action="store_true",
        help="keep the first plan (as the runs before re-planning existed did)",
    )  # fmt: skip
    parser.add_argument(
        "--conditions", default=None,
        help="what else ran on the machine during the run (recorded as-is)",
    )  # fmt: skip
    harness.data_options(parser, limit_train=None, limit_test=None)
    args = parser.parse_args(argv)
    # Created first: it notes the load average before the run and times the whole run.
    record = harness.Recorder(BENCHMARK, argv, args.results_dir)
    start = time.perf_counter()

    splits = harness.fashion_mnist(limit_train=args.limit_train, limit_test=args.limit_test)
    x, y = data.preprocess(splits.x_train), splits.y_train
    order = np.random.default_rng(args.seed).permutation(len(x))
    n_val = int(round(VALIDATION_SHARE * len(x)))
    val, train = order[:n_val], order[n_val:]
    x_test, y_test = data.preprocess(splits.x_test), splits.y_test
    steps = -(-len(train) // BATCH)

    def dataset(idx: np.ndarray, shuffle: bool) -> tf.data.Dataset:
        ds = tf.data.Dataset.from_tensor_slices((x[idx], y[idx]))
        if shuffle:
            ds = ds.shuffle(len(idx), seed=args.seed, reshuffle_each_iteration=True)
        return ds.batch(BATCH if shuffle else 512).prefetch(tf.data.AUTOTUNE)

    train_ds, val_ds = dataset(train, True), dataset(val, False)
    shape, classes = splits.input_shape, splits.num_classes

    def build() -> tf.keras.Model:
        tf.keras.utils.set_random_seed(args.seed)
        return _model(args.model, args.model_kwargs, shape, classes)

    timing = budget.measure_model(build, lambda m: _compile(m, steps, 1e-3), train_ds, val_ds)
    plan = budget.plan(
        args.minutes, student=timing, steps_per_epoch=steps, validation_images=len(val),
        test_images=len(x_test), measure_seconds=time.perf_counter() - start,
    )  # fmt: skip
    print(f"plan: {plan.describe()}", flush=True)
    model = build()
    _compile(model, plan.epochs * steps, args.learning_rate)
    history = _History((x_test, y_test) if args.test_every_epoch else None)
    stretch = None if args.no_replan else budget.Stretch(plan.epochs, plan.epochs)
    stopper = budget.StopAtDeadline(start + 60 * args.minutes - plan.final_seconds, stretch=stretch)
    model.fit(train_ds, validation_data=val_ds, epochs=plan.epochs, verbose=2,
              callbacks=[history, stopper])  # fmt: skip
    _, final = model.evaluate(x_test, y_test, batch_size=512, verbose=0)
    took = time.perf_counter() - start

    ours = _compared(args.compare, float(final)) if args.compare else None
    body = {
        "conditions": args.conditions or "see load_average; the run's own log is in the history",
        "model": args.model,
        "model_kwargs": args.model_kwargs,
        "training": "larq latent weights + WeightClip(1.3), Adam lr "
        f"{args.learning_rate:g} with CosineDecay over the planned steps, batch {BATCH}, "
        "float32, no augmentation, SparseCategoricalCrossentropy(from_logits=True)",
        "seed": args.seed,
        "budget_minutes": args.minutes,
        "plan": plan.to_dict(),
        "stopped_at_deadline": stopper.stopped,
        "replans": None if args.no_replan else stopper.replans,
        "actual_minutes": round(took / 60, 2),
        "train_images": len(train),
        "validation_images": len(val),
        "test_images": len(x_test),
        "epochs": len(history.rows),
        "final_test_accuracy": float(final),
        "history": history.rows,
    }
    # validation accuracy per epoch on both sides (bnn-tf's history has no per-epoch test)
    curves = {f"plain larq {args.model} (seed {args.seed}): {final:.4f} test":
              (list(np.cumsum([r["seconds"] for r in history.rows]) / 60),
               [r["val_accuracy"] for r in history.rows])}  # fmt: skip
    if ours is not None:
        curves[ours.pop("label")] = ours.pop("curve")
        body["compared_with"] = ours
    record.write_json(args.name, body)
    fig, ax = harness.figure()
    harness.curves(
        ax, curves,
        xlabel="cumulative training minutes (2-core CPU)", ylabel="validation accuracy",
        title=f"plain larq: {final:.4f} in {took / 60:.1f} of {args.minutes:g} min",
    )  # fmt: skip
    record.write_png(args.name, fig)
    print(f"plain larq {args.model}: test accuracy {final:.4f} after {len(history.rows)} epochs, "
          f"{took / 60:.1f} min")  # fmt: skip
    return 0


def _compared(path: str, baseline: float) -> dict:
    """The bnn-tf run of `path` (a train_budget.py record): its result and validation curve."""
    with open(path, encoding="utf-8") as f:
        run = json.load(f)
    accuracy = float(run["final_test_accuracy"])
    return {
        "file": path,
        "command": run.get("command"),
        "final_test_accuracy": accuracy,
        "train_minutes": run.get("train_minutes"),
        "epochs": run.get("epochs"),
        "difference_points": round(100 * (accuracy - baseline), 2),
        "label": f"bnn-tf {run.get('model')} (seed {run.get('seed')}): {accuracy:.4f} test",
        "curve": (list(np.cumsum([r["seconds"] for r in run["history"]]) / 60),
                  [r["val_accuracy"] for r in run["history"]]),
    }  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
