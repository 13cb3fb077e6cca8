"""Benchmark: how the ReCU ResNet-20 stem's resolution trades accuracy for time on Fashion-MNIST.

A short, equal-budget probe used to choose the layout of the 60-minute run
(docs/recu.md): `recu_resnet20` at twice the width (32/64/128), trained
through `bnn_tf.experiment.train` (Bop with γ cosine-decayed to 0 + Adam,
τ schedule, XLA-compiled steps) for 2 epochs on the first 20 000 training
images, one seed, test accuracy on all 10 000 test images after each epoch.
Variants:

- `s1`: the stem keeps 28×28 (the layout of the first 60-minute run);
- `s2`: stride-2 stem conv, blocks at 14/7/4 (≈ ¼ of the conv work);
- `s2pool`: stride-1 stem conv + 2×2 max pool, blocks at 14/7/4;
- `s2aug`: `s2` with random flips and 2-pixel shifts.

Run folders are reused (a finished run is only recorded, an unfinished one
resumes), so the equivalent `bnn-tf train recu_resnet20 --limit-train 20000
--epochs 2 --bop-gamma-schedule cosine --jit-compile --model-kwargs ...
--out RUNS/NAME` runs count. Writes `benchmarks/results/recu_resolution.{json,png}`.

    .venv/bin/python benchmarks/recu_resolution.py --runs-dir runs/recu_resolution \\
        --context-run runs/recu60_s2_aug_stopped
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import harness

import bnn_tf  # noqa: F401  selects tf_keras before TensorFlow loads

# isort: split
from bnn_tf import experiment, training

BENCHMARK = harness.Benchmark(
    name="recu_resolution",
    description="recu_resnet20 x2: stem resolution vs accuracy and time, equal short budget",
    default_args=["--runs-dir", "runs/recu_resolution"],
    smoke_args=["--runs-dir", "{tmp}/runs", "--limit-train", "256", "--limit-test", "256",
                "--epochs", "1", "--variants", "s2"],
)  # fmt: skip
VARIANTS: dict[str, tuple[dict, bool]] = {
    "s1": ({"width_multiplier": 2}, False),
    "s2": ({"width_multiplier": 2, "stem_strides": 2}, False),
    "s2pool": ({"width_multiplier": 2, "stem_pool": True}, False),
    "s2aug": ({"width_multiplier": 2, "stem_strides": 2}, True),
}


def _plot(record: harness.Recorder, rows: list[dict], epochs: int, limit_train: int) -> None:
    fig, (ax_acc, ax_time) = harness.figure(2, size=(10, 4))
    names = [r["variant"] for r in rows]
    acc = [r["final_test_accuracy"] for r in rows]
    harness.bars(ax_acc, names, {"accuracy": acc}, colors="tab:blue",
                 ylabel=f"test accuracy after {epochs} epochs on {limit_train} images")  # fmt: skip
    ax_acc.set_ylim(min(acc) - 0.05, max(acc) + 0.02)
    harness.bars(ax_time, names, {"s": [r["seconds_last_epoch"] for r in rows]},
                 colors="tab:orange", ylabel="s, last epoch (training images + test)")  # fmt: skip
    fig.suptitle("recu_resnet20 ×2: stem resolution vs accuracy and time (2-core CPU)")
    record.write_png("recu_resolution", fig)


def main(argv: list[str] | None = None) -> int:
    parser = harness.argument_parser(BENCHMARK, __doc__)
    parser.add_argument("--runs-dir", default="runs/recu_resolution")
    harness.data_options(parser, limit_test=None, limit_train=20_000, epochs=2)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument(
        "--context-run",
        action="append",
        default=[],
        metavar="DIR",
        help="a run folder (e.g. a stopped full-data attempt) whose history is recorded too",
    )
    args = parser.parse_args(argv)

    record = harness.Recorder(BENCHMARK, argv, args.results_dir)
    splits = harness.fashion_mnist(limit_test=args.limit_test)
    rows = []
    for name in args.variants:
        model_kwargs, augment = VARIANTS[name]
        config = training.TrainConfig(
            model="recu_resnet20",
            epochs=args.epochs,
            limit_train=args.limit_train,
            augment=augment,
            model_kwargs=model_kwargs,
            bop_gamma_schedule="cosine",
            jit_compile=True,
        )
        run = Path(args.runs_dir) / name
        summary = experiment.train(config, run, splits=splits, verbose=2)
        history = json.loads((run / training.HISTORY_FILE).read_text())
        rows.append(
            {
                "variant": name,
                "model_kwargs": model_kwargs,
                "augment": augment,
                "final_test_accuracy": summary["test_accuracy"],
                "seconds_last_epoch": history[-1]["seconds"],
                "history": history,
            }
        )
    body = {
        "protocol": (
            f"recu_resnet20 width ×2, {args.epochs} epochs on the first {args.limit_train} "
            "training images, batch 128, Bop (γ 1e-3 cosine → 0) + Adam 1e-3 cosine, τ 0.85 → 0.99, "
            f"XLA-compiled steps, seed 0; test accuracy on {len(splits.x_test)} test images"
        ),
        "rows": rows,
        "context_runs": [harness.run_context(d) for d in args.context_run],
    }
    record.write_json("recu_resolution", body)
    _plot(record, rows, args.epochs, args.limit_train)
    for r in rows:
        print(f"{r['variant']:>7}: {r['final_test_accuracy']:.4f}, {r['seconds_last_epoch']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
