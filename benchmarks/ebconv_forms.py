"""Benchmark: EBConv's two forms (the authors' training code vs bnn-tf's first form) on Fashion-MNIST.

Same architecture (`ebnet_small`, 4 experts), data, budget and recipe for every
run; only the EBConv2D form and the optimizer change:

- `official_adam`: the authors' code: sigmoid gate, `sign(Σ φₙ Wₙ)` of latent
  experts (clipped STE), SE without biases (hidden C_out // 8); Adam on latent
  weights (the paper trains with AdamW 1e-3);
- `signed_bop`: bnn-tf's first form: softmax gate, `Σ φₙ sign(Wₙ)`, no SE; Bop
  on the expert kernels + Adam on the rest;
- `signed_adam`: the first form with the official optimizer (isolates the form);
- `official_bop`: the official gate and SE with Bop (the latent mixing has
  nothing to clip under Bop: every weight is ±1).

Recipe (the paper's staging, shortened): epoch 1 with the gate forced to
expert 0, then `expand_experts` (expert 0 copied to all) and the remaining
epochs with the gate (`ExpertExpansion(1)`). Test accuracy: Keras, all
10 000 test images, after the last epoch, once.

    nice -n 10 .venv/bin/python benchmarks/ebconv_forms.py --limit-train 6000 --epochs 3 --seeds 0 1

Writes `benchmarks/results/ebconv_forms.json` (after every run; finished
(run, seed) pairs with the same conditions are skipped on a re-run) and `.png`.
"""

from __future__ import annotations

import os
import time

import harness

# isort: off
import bnn_tf  # noqa: F401  selects legacy Keras before TensorFlow is imported

# isort: on

import numpy as np
import tensorflow as tf

from bnn_tf import data, optimizers, training
from bnn_tf import models as zoo
from bnn_tf.methods.ebconv import ExpertExpansion, expert_usage

BENCHMARK = harness.Benchmark(
    name="ebconv_forms",
    description="EBConv official (sigmoid gate, latent mixing) vs signed form × Adam/Bop",
    default_args=["--limit-train", "4000", "--epochs", "3", "--seeds", "0", "1"],
    smoke_args=["--limit-train", "128", "--limit-test", "128", "--epochs", "2", "--seeds", "0",
                "--runs", "official_adam"],
)  # fmt: skip
NAME = BENCHMARK.name

ADAM = {"name": "adam", "learning_rate": 1e-3}
BOP = {"name": "bop", "threshold": 1e-6, "gamma": 1e-3, "learning_rate": 1e-3}
RUNS = {
    "official_adam": ("official", ADAM),
    "signed_bop": ("signed", BOP),
    "signed_adam": ("signed", ADAM),
    "official_bop": ("official", BOP),
}


def run_one(run: str, seed: int, splits, args) -> dict:
    form, opt = RUNS[run]
    tf.keras.utils.set_random_seed(seed)
    model = zoo.build("ebnet_small", input_shape=splits.input_shape, form=form)
    x_train = data.preprocess(splits.x_train[: args.limit_train])
    y_train = splits.y_train[: args.limit_train]
    x_test = data.preprocess(splits.x_test[: args.limit_test])
    y_test = splits.y_test[: args.limit_test]
    steps = -(-len(x_train) // args.batch_size)
    config = optimizers.OptimizerConfig.from_dict(opt)
    training.compile_model(model, optimizer_config=config, steps_per_epoch=steps,
                           epochs=args.epochs)  # fmt: skip
    start = time.perf_counter()
    history = model.fit(x_train, y_train, epochs=args.epochs, batch_size=args.batch_size,
                        verbose=0, shuffle=True, callbacks=[ExpertExpansion(1)])  # fmt: skip
    seconds = time.perf_counter() - start
    _, acc = model.evaluate(x_test, y_test, batch_size=512, verbose=0)
    usage = expert_usage(model, x_test[:2000])
    # Share of the most used expert per layer: 1.0 means the gate never left one expert.
    top_share = {k: round(float(v.max() / v.sum()), 3) for k, v in usage.items()}
    return {
        "run": run,
        "seed": seed,
        "form": form,
        "optimizer": config.to_dict(),
        "params": int(model.count_params()),
        "test_accuracy": round(float(acc), 4),
        "train_loss_per_epoch": [round(float(v), 4) for v in history.history["loss"]],
        "train_seconds": round(seconds, 1),
        "top_expert_share_on_2000_test_images": top_share,
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
    }


def summarise(rows: list[dict]) -> dict:
    out = {}
    for run in RUNS:
        accs = [r["test_accuracy"] for r in rows if r["run"] == run]
        if accs:
            out[run] = {
                "seeds": len(accs),
                "test_accuracy_mean": round(float(np.mean(accs)), 4),
                "test_accuracy_min": min(accs),
                "test_accuracy_max": max(accs),
                "train_seconds_mean": round(
                    float(np.mean([r["train_seconds"] for r in rows if r["run"] == run])), 1
                ),
            }
    return out


def plot(rows: list[dict], title: str):
    fig, ax = harness.figure(size=(8, 4.5))
    names = [r for r in RUNS if any(x["run"] == r for x in rows)]
    for i, run in enumerate(names):
        accs = [x["test_accuracy"] for x in rows if x["run"] == run]
        ax.bar(i, np.mean(accs), color="tab:blue" if "adam" in run else "tab:green", alpha=0.7)
        ax.scatter([i] * len(accs), accs, color="k", zorder=3, s=12)
        ax.annotate(
            f"{np.mean(accs):.4f}", (i, np.mean(accs)), ha="center", va="bottom", fontsize=8
        )
    ax.set_xticks(range(len(names)), names)
    accs = [x["test_accuracy"] for x in rows]
    ax.set_ylim(max(0.0, min(accs) - 0.05), min(1.0, max(accs) + 0.03))
    ax.set_ylabel("Fashion-MNIST test accuracy (bar: mean; dots: seeds)")
    ax.set_title(title, fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def main(argv: list[str] | None = None) -> int:
    p = harness.argument_parser(BENCHMARK, __doc__)
    harness.data_options(p, limit_test=None, epochs=3, limit_train=6000, batch_size=128)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--runs", nargs="+", default=list(RUNS), choices=list(RUNS))
    args = p.parse_args(argv)
    if args.epochs < 2:
        p.error("--epochs must be ≥ 2 (one single-expert epoch, then the gated ones)")

    conditions = {
        "model": "ebnet_small (4 experts, widths 64/128, groups 2/4, implementation partition)",
        "dataset": f"Fashion-MNIST: first {args.limit_train} training images, all 10000 test images",
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "recipe": "ExpertExpansion(1): epoch 1 single expert, then expansion and gated epochs",
        "lr_schedule": "cosine to 0 over the run (Adam part of every optimizer)",
    }
    if args.limit_test is not None:  # a probe, not the committed record's conditions
        conditions["limit_test"] = args.limit_test
    recorder = harness.Recorder(BENCHMARK, argv, args.results_dir)
    rows = recorder.previous_rows(NAME, conditions)
    splits = data.load("fashion_mnist")
    for run, seed in harness.pending(rows, "run", args.runs, args.seeds):
        row = run_one(run, seed, splits, args)
        rows.append(row)
        print(f"{run} seed {seed}: acc {row['test_accuracy']:.4f}  "
              f"{row['train_seconds']} s  top-expert share "
              f"{row['top_expert_share_on_2000_test_images']}", flush=True)  # fmt: skip
        recorder.write_json(NAME, {
            "note": "shared 2-core machine, other jobs running: times are indicative only",
            "conditions": conditions,
            "summary": summarise(rows),
            "rows": rows,
        })  # fmt: skip
        title = f"ebnet_small, {args.limit_train} images × {args.epochs} epochs: form × optimizer"
        recorder.write_png(NAME, plot(rows, title))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
