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

import argparse
import json
import os
import sys
from pathlib import Path

import bnn_tf  # noqa: F401  selects tf_keras before TensorFlow loads

# isort: split
from _common import record_header, run_context

from bnn_tf import atomic, experiment, training

RESULTS = Path(__file__).resolve().parent / "results"
VARIANTS: dict[str, tuple[dict, bool]] = {
    "s1": ({"width_multiplier": 2}, False),
    "s2": ({"width_multiplier": 2, "stem_strides": 2}, False),
    "s2pool": ({"width_multiplier": 2, "stem_pool": True}, False),
    "s2aug": ({"width_multiplier": 2, "stem_strides": 2}, True),
}


def _plot(path: Path, rows: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_acc, ax_time) = plt.subplots(1, 2, figsize=(10, 4))
    names = [r["variant"] for r in rows]
    ax_acc.bar(names, [r["final_test_accuracy"] for r in rows], color="tab:blue")
    low = min(r["final_test_accuracy"] for r in rows)
    ax_acc.set_ylim(low - 0.05, max(r["final_test_accuracy"] for r in rows) + 0.02)
    ax_acc.set_ylabel("test accuracy after 2 epochs on 20k images")
    ax_time.bar(names, [r["seconds_last_epoch"] for r in rows], color="tab:orange")
    ax_time.set_ylabel("s, 2nd epoch (20k images + test)")
    for ax in (ax_acc, ax_time):
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle("recu_resnet20 ×2: stem resolution vs accuracy and time (2-core CPU)")
    fig.tight_layout()
    atomic.write_with(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs-dir", default="runs/recu_resolution")
    parser.add_argument("--limit-train", type=int, default=20_000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument(
        "--context-run",
        action="append",
        default=[],
        metavar="DIR",
        help="a run folder (e.g. a stopped full-data attempt) whose history is recorded too",
    )
    args = parser.parse_args(argv)

    load_before = os.getloadavg()
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
        summary = experiment.train(config, run, verbose=2)
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
    record = {
        **record_header("recu_resolution", load_before),
        "protocol": (
            f"recu_resnet20 width ×2, {args.epochs} epochs on the first {args.limit_train} "
            "training images, batch 128, Bop (γ 1e-3 cosine → 0) + Adam 1e-3 cosine, τ 0.85 → 0.99, "
            "XLA-compiled steps, seed 0; test accuracy on all 10 000 test images"
        ),
        "rows": rows,
        "context_runs": [run_context(Path(d)) for d in args.context_run],
    }
    atomic.write_json(RESULTS / "recu_resolution.json", record)
    _plot(RESULTS / "recu_resolution.png", rows)
    for r in rows:
        print(f"{r['variant']:>7}: {r['final_test_accuracy']:.4f}, {r['seconds_last_epoch']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
