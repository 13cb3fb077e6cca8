"""Benchmark: the classic BNN methods side by side on Fashion-MNIST.

Every model gets the same data subset, epoch budget, batch size and seeds.
Two optimizer settings (`--optimizer`):

- `published` (default): each model trains as its zoo entry says its paper
  does (`bnn_tf.models.info(name).training`: optimizer, learning rate and
  schedule, e.g. Adam on latent weights for XNOR-Net, Bop for BinaryNet and
  ReCU) plus every schedule its layers declare
  (`bnn_tf.callbacks.standard_callbacks`: IR-Net's EDE, ReCU's τ);
- `adam`: one optimizer for every row (legacy Adam on latent weights,
  cosine-decayed from `--learning-rate`; declared schedules too), the setting
  of the first version of this table.

For each model and seed it reports:

- test accuracy (Keras, full 10 000-image test set, last epoch; nothing selected on it);
- binary-MAC fraction after conversion: MACs in `LceBconv2d` ÷ all MACs of
  the MAC ops (CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, LceBconv2d) in
  the `.tflite`, counted from the flatbuffer's tensor shapes;
- `.tflite` bytes;
- LCE latency (LCE Python interpreter, indirect BGEMM, 1 thread, batch 1, median);
- Keras-vs-TFLite top-1 agreement on `--limit-parity` real test images.

Writes `benchmarks/results/<out>.json` and `.png` (`--out`, default
`methods_table_published` / `methods_table` for `--optimizer adam`); the JSON
is rewritten after every (model, seed), and pairs already in it (same
conditions) are skipped, so an interrupted run resumes and new models can be
added later with `--models`.

    nice -n 10 .venv/bin/python benchmarks/methods_table.py --epochs 3 --limit-train 6000 --seeds 0 1
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

from bnn_tf import callbacks, converters, data, introspect, optimizers, training
from bnn_tf import models as zoo

BENCHMARK = harness.Benchmark(
    name="methods_table",
    description="every method side by side: accuracy, binary-MAC share, bytes, LCE latency",
    runs={
        "methods_table_published": ["--epochs", "3", "--limit-train", "6000", "--seeds", "0", "1"],
        "methods_table": ["--optimizer", "adam", "--epochs", "3", "--limit-train", "6000",
                          "--seeds", "0"],
    },
    smoke_args=["--epochs", "1", "--limit-train", "256", "--limit-test", "256",
                "--limit-parity", "64", "--runs", "5", "--seeds", "0",
                "--models", "bnn_small", "irnet_small"],
)  # fmt: skip
NAME = BENCHMARK.name

# (zoo name, method label) in table order; bnn_small is BinaryNet's layout.
MODELS = [
    ("bnn_small_float", "float twin (ceiling)"),
    ("bnn_small", "BinaryNet / BNN"),
    ("xnornet_small", "XNOR-Net"),
    ("xnornet_pp_small", "XNOR-Net++ (factorised Γ)"),
    ("birealnet_small", "Bi-Real Net"),
    ("reactnet_small", "ReActNet-style"),
    ("irnet_small", "IR-Net"),
    ("irnet_resnet20", "IR-Net ResNet-20 (other size)"),
    ("dorefa_small", "DoReFa 2/2-bit"),
    ("twn_small", "TWN (ternary W, float A)"),
    ("recu_resnet20", "ReCU ResNet-20 (other size)"),
    ("quicknet_small_input", "QuickNet (small input, larq-zoo block structure)"),
    ("binary_densenet_small", "BinaryDenseNet (small input, larq-zoo block structure)"),
]


def mac_counts(tflite: bytes) -> dict[str, int]:
    """MACs of every MAC op in the main subgraph, split into binary (LceBconv2d) and float."""
    from flatbuffers import flexbuffers
    from tensorflow.lite.python import schema_py_generated as schema

    root = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(tflite, 0))
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    codes = [
        c.customCode.decode()
        if c.customCode
        else names.get(max(c.builtinCode, c.deprecatedBuiltinCode))
        for c in root.operatorCodes
    ]
    sub = root.subgraphs[0]

    def shape(i: int) -> list[int]:
        return [int(d) for d in sub.tensors[i].shape]

    binary = floating = 0
    for op in sub.operators:
        kind = codes[op.opcodeIndex]
        if kind == "LceBconv2d":
            out, filt = shape(op.outputs[0]), shape(op.inputs[1])  # filter: [Co, kh, kw, packed Ci]
            # The bitpacked filter hides the exact input channel count; LCE stores it in the options.
            opts = flexbuffers.Loads(bytes(op.customOptions))
            binary += out[1] * out[2] * filt[0] * filt[1] * filt[2] * int(opts["channels_in"])
        elif kind == "CONV_2D":
            out, filt = shape(op.outputs[0]), shape(op.inputs[1])  # filter: [Co, kh, kw, Ci]
            floating += out[1] * out[2] * out[3] * filt[1] * filt[2] * filt[3]
        elif kind == "DEPTHWISE_CONV_2D":
            out, filt = shape(op.outputs[0]), shape(op.inputs[1])  # filter: [1, kh, kw, C]
            floating += out[1] * out[2] * out[3] * filt[1] * filt[2]
        elif kind == "FULLY_CONNECTED":
            out, weights = shape(op.outputs[0]), shape(op.inputs[1])  # weights: [Co, Ci]
            floating += int(np.prod(out)) * weights[1]
    return {"binary_macs": binary, "float_macs": floating}


def optimizer_config(name: str, args) -> optimizers.OptimizerConfig:
    """The set-up a row trains with: the zoo entry's `training` or one Adam for all."""
    if args.optimizer == "adam":
        return optimizers.OptimizerConfig(name="adam", learning_rate=args.learning_rate)
    spec = {k: v for k, v in zoo.info(name).training.items() if k != "why"}
    return optimizers.OptimizerConfig.from_dict(spec) if spec else optimizers.OptimizerConfig()


def run_one(name: str, seed: int, splits, args) -> dict:
    tf.keras.utils.set_random_seed(seed)
    model = zoo.build(name, input_shape=splits.input_shape, num_classes=splits.num_classes)
    x_train = data.preprocess(splits.x_train[: args.limit_train])
    y_train = splits.y_train[: args.limit_train]
    x_test = data.preprocess(splits.x_test[: args.limit_test])
    y_test = splits.y_test[: args.limit_test]
    steps = -(-len(x_train) // args.batch_size)
    config = optimizer_config(name, args)
    training.compile_model(model, optimizer_config=config, steps_per_epoch=steps,
                           epochs=args.epochs)  # fmt: skip
    start = time.perf_counter()
    model.fit(x_train, y_train, epochs=args.epochs, batch_size=args.batch_size, verbose=0,
              callbacks=callbacks.standard_callbacks(model, args.epochs, steps_per_epoch=steps),
              shuffle=True)  # fmt: skip
    train_seconds = time.perf_counter() - start
    _, test_acc = model.evaluate(x_test, y_test, batch_size=512, verbose=0)
    return {
        "model": name,
        "seed": seed,
        "optimizer": config.to_dict(),
        "declared_schedules": [c.__name__ for c in introspect.declared_schedules(model)],
        "lce_binary_flag": zoo.info(name).lce_binary,
        "params": int(model.count_params()),
        "test_accuracy": round(float(test_acc), 4),
        "train_seconds": round(train_seconds, 1),
        **tflite_columns(
            model, x_test[: args.limit_parity], y_test[: args.limit_parity], args.runs
        ),
    }


def tflite_columns(model: tf.keras.Model, x_parity, y_parity, runs: int) -> dict:
    """The table's columns of the converted model: binary convs and MACs, size, latency, parity."""
    flatbuffer = converters.convert(model)
    report = converters.inspect(flatbuffer)
    macs = mac_counts(flatbuffer)
    total = macs["binary_macs"] + macs["float_macs"]
    parity = converters.verify(model, flatbuffer, x_parity, y_parity)
    latency = converters.bench(flatbuffer, runs=runs, warmup=10)
    return {
        "binary_convs": report.binary_convs,
        "float_mac_ops": report.float_mac_ops,
        **macs,
        "binary_mac_fraction": round(macs["binary_macs"] / total, 4) if total else 0.0,
        "tflite_bytes": report.size_bytes,
        "latency_median_ms": round(latency.median_ms, 3),
        "latency_min_ms": round(latency.min_ms, 3),
        "parity_images": parity.num_images,
        "parity_top1_agreement": parity.top1_agreement,
        "parity_max_abs_logit_diff": round(parity.max_abs_logit_diff, 5),
        "tflite_accuracy_on_parity_images": parity.tflite_accuracy,
        "op_counts": report.op_counts,
    }


def summarise(rows: list[dict]) -> list[dict]:
    """One entry per model: accuracy mean/min/max over seeds, the rest from the first seed."""
    out = []
    for name in dict.fromkeys(r["model"] for r in rows):
        mine = [r for r in rows if r["model"] == name]
        accs = [r["test_accuracy"] for r in mine]
        out.append({
            **{k: v for k, v in mine[0].items() if k not in ("seed", "test_accuracy", "train_seconds")},
            "seeds": [r["seed"] for r in mine],
            "test_accuracy_per_seed": accs,
            "test_accuracy_mean": round(float(np.mean(accs)), 4),
            "test_accuracy_min": min(accs),
            "test_accuracy_max": max(accs),
            "train_seconds_mean": round(float(np.mean([r["train_seconds"] for r in mine])), 1),
        })  # fmt: skip
    return out


def plot(summary: list[dict], labels: dict[str, str], title: str):
    fig, axes = harness.figure(2, size=(13, 5))
    for r in summary:
        binary = r["lce_binary_flag"]
        acc = r["test_accuracy_mean"]
        err = [[acc - r["test_accuracy_min"]], [r["test_accuracy_max"] - acc]]
        for ax, xkey in zip(axes, ("latency_median_ms", "tflite_bytes"), strict=True):
            x = r[xkey] / (1024 if xkey == "tflite_bytes" else 1)
            ax.errorbar(x, acc, yerr=err, marker="o" if binary else "s", capsize=3,
                        color="tab:blue" if binary else "tab:orange")  # fmt: skip
            ax.annotate(labels.get(r["model"], r["model"]), (x, acc), fontsize=7,
                        xytext=(3, 3), textcoords="offset points")  # fmt: skip
    axes[0].set_xlabel("LCE latency, median ms (x86_64, 1 thread, batch 1)")
    axes[1].set_xlabel(".tflite size (KiB)")
    axes[1].set_xscale("log")
    for ax in axes:
        ax.set_ylabel("Fashion-MNIST test accuracy (mean; bars: min–max over seeds)")
        ax.grid(alpha=0.3)
    fig.suptitle(title + " (circles: LCE binary kernels; squares: float kernels)")
    fig.tight_layout()
    return fig


OPTIMIZER_NOTES = {
    "published": "each model's zoo `training` spec (the paper's optimizer, or the benchmark it "
    "follows; see bnn_tf.models.info(name).training) + its declared schedules",
    "adam": "legacy Adam on latent weights for every model, cosine decay from --learning-rate; "
    "declared schedules (EDE, ReCU tau)",
}


def main(argv: list[str] | None = None) -> int:
    p = harness.argument_parser(BENCHMARK, __doc__)
    harness.data_options(p, limit_test=None, epochs=3, limit_train=6000, batch_size=64)
    p.add_argument("--limit-parity", type=int, default=1000)
    p.add_argument("--optimizer", choices=sorted(OPTIMIZER_NOTES), default="published")
    p.add_argument("--learning-rate", type=float, default=2e-3, help="--optimizer adam only")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--runs", type=int, default=100, help="timed latency runs per model")
    p.add_argument("--models", nargs="+", default=[m for m, _ in MODELS],
                   help="zoo names (any registered model; default: the table's)")  # fmt: skip
    p.add_argument("--out", default=None,
                   help="results name under --results-dir (default: methods_table_published, "
                        "or methods_table for --optimizer adam)")  # fmt: skip
    args = p.parse_args(argv)
    unknown = [m for m in args.models if m not in zoo.available()]
    if unknown:
        p.error(f"unknown models {unknown}; `bnn-tf models` lists them")
    name = args.out or (NAME if args.optimizer == "adam" else f"{NAME}_published")

    labels = dict(MODELS)
    # Not conditions: which models and seeds, where the files go, and an unset --limit-test
    # (so the committed record's conditions still match and a rerun resumes it).
    skip = {"models", "seeds", "out", "results_dir"}
    skip |= {"limit_test"} if args.limit_test is None else set()
    conditions = {k: v for k, v in vars(args).items() if k not in skip}
    if args.optimizer == "published":
        conditions.pop("learning_rate")
    conditions.update(optimizer_setting=OPTIMIZER_NOTES[args.optimizer],
                      dataset="fashion_mnist", test_images=args.limit_test or 10000)  # fmt: skip
    recorder = harness.Recorder(BENCHMARK, argv, args.results_dir)
    rows = recorder.previous_rows(name, conditions)
    splits = data.load("fashion_mnist")
    order = [m for m, _ in MODELS] + [m for m in args.models if m not in labels]
    for model_name, seed in harness.pending(rows, "model", args.models, args.seeds):
        row = run_one(model_name, seed, splits, args)
        row["method"] = labels.get(model_name, model_name)
        row["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
        rows = [r for r in rows if (r["model"], r.get("seed")) != (model_name, seed)] + [row]
        rows.sort(key=lambda r: (order.index(r["model"]) if r["model"] in order else 99, r["seed"]))
        print(
            f"{model_name} seed {seed}: acc {row['test_accuracy']:.4f}  binary MACs "
            f"{row['binary_mac_fraction']:.1%}  {row['tflite_bytes']:,} B  "
            f"{row['latency_median_ms']:.3f} ms  agreement {row['parity_top1_agreement']:.3f}  "
            f"train {row['train_seconds']} s",
            flush=True,
        )
        summary = summarise(rows)
        recorder.write_json(name, {
            "note": "shared 2-core machine, other jobs running: times are indicative only",
            "conditions": conditions,
            "summary": summary,
            "rows": rows,
        })  # fmt: skip
        title = ("Each method trained as published" if args.optimizer == "published"
                 else "One optimizer (Adam) for every method")  # fmt: skip
        recorder.write_png(name, plot(summary, labels, title))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
