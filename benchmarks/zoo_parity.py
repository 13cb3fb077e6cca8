"""Keras vs LCE TFLite top-1 agreement on the full Fashion-MNIST test set, for every small zoo model.

For each registered model not tagged "large": short training (default 1
epoch on the first 6 000 training images, batch 128, Bop + Adam; Adam alone
for models without binary kernels), rewrite binary QuantDense to 1×1 binary
convs, convert with LCE, then run Keras and LCE's interpreter on all 10 000
test images. Also records the per-layer report totals (binary-MAC fraction,
fallbacks) and, with `--portable`, the int8 stock-TFLite model's accuracy and
size. Writes benchmarks/results/zoo_parity.json and .png.

    nice -n 10 .venv/bin/python benchmarks/zoo_parity.py [--models a,b] [--epochs 1]
        [--limit-train 6000] [--portable]

A short training is enough for the question asked here (does the converted
model compute what Keras computes?); the accuracies are not the models' best.
"""

from __future__ import annotations

import json
import sys
import time

import harness
import numpy as np

import bnn_tf  # noqa: F401  sets up tf_keras first (before larq)
from bnn_tf import converters, data, training
from bnn_tf import models as zoo
from bnn_tf.converters.portable import compare_portable

BENCHMARK = harness.Benchmark(
    name="zoo_parity",
    description="Keras vs LCE TFLite top-1 agreement on the Fashion-MNIST test set, every small model",
    default_args=["--models", "bnn_small,birealnet_small,xnornet_small,bnn_small_float",
                  "--portable"],
    smoke_args=["--models", "bnn_small,bnn_small_float", "--limit-train", "256",
                "--limit-test", "256", "--portable"],
)  # fmt: skip
NAME = BENCHMARK.name
GOAL_AGREEMENT = 0.99


def _train(name: str, x, y, *, epochs: int, seed: int):
    import larq as lq
    import tensorflow as tf

    tf.keras.utils.set_random_seed(seed)
    model = zoo.build(name)
    steps = int(np.ceil(len(x) / 128))
    if any(lq.optimizers.Bop.is_binary_variable(v) for v in model.trainable_variables):
        training.compile_model(model, steps_per_epoch=steps, epochs=epochs)
    else:
        training.compile_model(model, optimizer=tf.keras.optimizers.legacy.Adam(1e-3))
    model.fit(x, y, batch_size=128, epochs=epochs, verbose=0)
    return model


def run_one(name: str, splits, args) -> dict:
    x_train = data.preprocess(splits.x_train[: args.limit_train])
    y_train = splits.y_train[: args.limit_train]
    x_test, y_test = (
        data.preprocess(splits.x_test[: args.limit_test]),
        splits.y_test[: args.limit_test],
    )
    start = time.perf_counter()
    model = _train(name, x_train, y_train, epochs=args.epochs, seed=args.seed)
    train_s = time.perf_counter() - start
    rewritten = converters.rewrite_binary_dense(model)
    start = time.perf_counter()
    flatbuffer = converters.convert(rewritten)
    convert_s = time.perf_counter() - start
    report = converters.conversion_report(rewritten, flatbuffer)
    parity = converters.verify(model, flatbuffer, x_test, y_test)
    row = {
        "model": name,
        "lce_binary": zoo.info(name).lce_binary,
        "train_seconds": round(train_s, 1),
        "convert_seconds": round(convert_s, 1),
        "test_images": parity.num_images,
        "top1_agreement": parity.top1_agreement,
        "mismatches": len(parity.mismatches),
        "max_abs_logit_diff": parity.max_abs_logit_diff,
        "keras_accuracy": parity.keras_accuracy,
        "lce_accuracy": parity.tflite_accuracy,
        "lce_bytes": len(flatbuffer),
        "binary_mac_fraction": report.binary_mac_fraction,
        "total_macs": report.total_macs,
        "fallbacks": [r.name for r in report.fallbacks],
        "lint_mismatches": [r.name for r in report.lint_mismatches],
    }
    if args.portable:
        portable = converters.convert_portable(model, int8=True, representative_data=x_train[:300])
        cmp = compare_portable(model, flatbuffer, portable, x_test, y_test, int8=True)
        row.update(
            int8_accuracy=cmp.portable_accuracy,
            int8_agreement=cmp.portable_agreement,
            int8_bytes=cmp.portable_bytes,
        )
    return row


def plot(record: harness.Recorder, name: str, rows: list[dict]) -> None:
    names = [r["model"] for r in rows]
    fig, (ax1, ax2) = harness.figure(2, size=(14, 0.45 * len(rows) + 2), sharey=True)
    harness.bars(
        ax1,
        names,
        {"agreement": [100 * r["top1_agreement"] for r in rows]},
        horizontal=True,
        colors="tab:blue",
        xlabel=f"Keras vs LCE top-1 agreement (%), {rows[0]['test_images']:,} test images",
    )
    harness.reference_line(ax1, 100 * GOAL_AGREEMENT, f"goal {GOAL_AGREEMENT:.0%}", vertical=True,
                           color="k")  # fmt: skip
    ax1.set_xlim(min(98.0, min(100 * r["top1_agreement"] for r in rows) - 0.5), 100.05)
    accuracy = {
        "Keras": [100 * r["keras_accuracy"] for r in rows],
        "LCE TFLite": [100 * r["lce_accuracy"] for r in rows],
    }
    if all("int8_accuracy" in r for r in rows):
        accuracy["portable int8"] = [100 * r["int8_accuracy"] for r in rows]
    harness.bars(ax2, names, accuracy, horizontal=True,
                 xlabel="test accuracy (%) after the short training")  # fmt: skip
    fig.suptitle("bnn-tf zoo: converted models vs Keras (Fashion-MNIST)")
    record.write_png(name, fig)


def replot(record: harness.Recorder, name: str) -> None:
    """Redraw RESULTS_DIR/<name>.png from RESULTS_DIR/<name>.json (no training)."""
    plot(record, name, json.loads(record.path(name).read_text())["models"])


def main(argv: list[str] | None = None) -> int:
    parser = harness.argument_parser(BENCHMARK, __doc__)
    parser.add_argument(
        "--models", default=None, help="comma-separated names (default: every small model)"
    )
    harness.data_options(parser, limit_test=None, epochs=1, limit_train=6000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name", default=NAME, help=f"results file stem (default {NAME})")
    parser.add_argument(
        "--portable", action="store_true", help="also int8 stock-TFLite accuracy/size"
    )
    parser.add_argument("--replot", action="store_true", help="only redraw the PNG from the JSON")
    args = parser.parse_args(argv)
    record = harness.Recorder(BENCHMARK, argv, args.results_dir)
    if args.replot:
        replot(record, args.name)
        return 0
    names = (
        args.models.split(",")
        if args.models
        else [n for n in zoo.available() if "large" not in zoo.info(n).tags]
    )
    splits = data.load("fashion_mnist")
    rows = []
    for name in names:
        row = run_one(name, splits, args)
        rows.append(row)
        print(
            f"{name:<24} agreement {row['top1_agreement']:.4%} ({row['mismatches']} differ)  "
            f"keras {row['keras_accuracy']:.4f}  lce {row['lce_accuracy']:.4f}  "
            f"binary MACs {row['binary_mac_fraction']:.1%}  fallbacks {len(row['fallbacks'])}",
            flush=True,
        )
        result = {
            "dataset": f"{splits.name} ({splits.source})",
            "training": f"{args.epochs} epoch(s) on the first {args.limit_train} training images, batch 128, "
            "Bop + Adam (Adam only without binary kernels), seed "
            f"{args.seed}; short on purpose: this measures conversion parity, not accuracy",
            "goal_top1_agreement": GOAL_AGREEMENT,
            "all_meet_goal": all(r["top1_agreement"] >= GOAL_AGREEMENT for r in rows),
            "models": rows,
        }
        # Written after every model, so an interrupted run keeps what it measured.
        record.write_json(args.name, result)
    plot(record, args.name, rows)
    print(f"all ≥ {GOAL_AGREEMENT:.0%}: {result['all_meet_goal']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
