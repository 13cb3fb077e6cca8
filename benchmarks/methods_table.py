"""Benchmark: the classic BNN methods side by side on Fashion-MNIST.

Every model gets the same data subset, epoch budget, batch size, seed and
optimizer (Adam on latent weights, cosine-decayed learning rate: the setting
of the XNOR-Net / Bi-Real / IR-Net / DoReFa / TWN papers; IR-Net models also
get their EDE schedule). For each model it reports:

- test accuracy (Keras, full 10 000-image test set, last epoch; nothing selected on it);
- binary-MAC fraction after conversion: MACs in `LceBconv2d` ÷ all MACs of
  the MAC ops (CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, LceBconv2d) in
  the `.tflite`, counted from the flatbuffer's tensor shapes;
- `.tflite` bytes;
- LCE latency (LCE Python interpreter, indirect BGEMM, 1 thread, batch 1, median);
- Keras-vs-TFLite top-1 agreement on `--limit-parity` real test images.

Writes `benchmarks/results/methods_table.json` and `.png`; the JSON is
rewritten after every model, and models already in it (same conditions) are
skipped, so an interrupted run resumes.

    nice -n 10 .venv/bin/python benchmarks/methods_table.py --epochs 3 --limit-train 8000
"""

from __future__ import annotations

import json
import time

import harness

# isort: off
import bnn_tf  # noqa: F401  selects legacy Keras before TensorFlow is imported

# isort: on
import numpy as np
import tensorflow as tf

from bnn_tf import converters, data, training
from bnn_tf import models as zoo
from bnn_tf.methods.irnet import EdeSchedule, ede_quantizers

BENCHMARK = harness.Benchmark(
    name="methods_table",
    description="classic BNN methods side by side: accuracy, binary-MAC share, bytes, LCE latency",
    default_args=["--epochs", "3", "--limit-train", "6000"],
    smoke_args=["--epochs", "1", "--limit-train", "256", "--limit-test", "256",
                "--limit-parity", "64", "--runs", "5", "--models", "bnn_small", "irnet_small"],
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


def run_one(name: str, splits, args) -> dict:
    tf.keras.utils.set_random_seed(args.seed)
    model = zoo.build(name, input_shape=splits.input_shape, num_classes=splits.num_classes)
    x_train = data.preprocess(splits.x_train[: args.limit_train])
    y_train = splits.y_train[: args.limit_train]
    x_test, y_test = (
        data.preprocess(splits.x_test[: args.limit_test]),
        splits.y_test[: args.limit_test],
    )
    steps = -(-len(x_train) // args.batch_size)
    lr = tf.keras.optimizers.schedules.CosineDecay(args.learning_rate, steps * args.epochs)
    training.compile_model(model, optimizer=tf.keras.optimizers.legacy.Adam(lr))
    callbacks = [EdeSchedule(args.epochs)] if ede_quantizers(model) else []
    start = time.perf_counter()
    model.fit(x_train, y_train, epochs=args.epochs, batch_size=args.batch_size, verbose=0,
              callbacks=callbacks, shuffle=True)  # fmt: skip
    train_seconds = time.perf_counter() - start
    _, test_acc = model.evaluate(x_test, y_test, batch_size=512, verbose=0)

    flatbuffer = converters.convert(model)
    report = converters.inspect(flatbuffer)
    macs = mac_counts(flatbuffer)
    total = macs["binary_macs"] + macs["float_macs"]
    parity = converters.verify(
        model, flatbuffer, x_test[: args.limit_parity], y_test[: args.limit_parity]
    )
    latency = converters.bench(flatbuffer, runs=args.runs, warmup=10)
    info = zoo.info(name)
    return {
        "model": name,
        "lce_binary_flag": info.lce_binary,
        "params": int(model.count_params()),
        "test_accuracy": round(float(test_acc), 4),
        "train_seconds": round(train_seconds, 1),
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


def plot(record: harness.Recorder, rows: list[dict], labels: dict[str, str]) -> None:
    fig, axes = harness.figure(2, size=(13, 5))
    for r in rows:
        binary = r["lce_binary_flag"]
        for ax, xkey in zip(axes, ("latency_median_ms", "tflite_bytes"), strict=True):
            x = r[xkey] / (1024 if xkey == "tflite_bytes" else 1)
            ax.scatter(x, r["test_accuracy"], marker="o" if binary else "s",
                       color="tab:blue" if binary else "tab:orange")  # fmt: skip
            ax.annotate(labels[r["model"]], (x, r["test_accuracy"]), fontsize=7,
                        xytext=(3, 3), textcoords="offset points")  # fmt: skip
    axes[0].set_xlabel("LCE latency, median ms (x86_64, 1 thread, batch 1)")
    axes[1].set_xlabel(".tflite size (KiB)")
    axes[1].set_xscale("log")
    for ax in axes:
        ax.set_ylabel("Fashion-MNIST test accuracy")
        ax.grid(alpha=0.3)
    fig.suptitle(
        "Classic methods, same size and budget (circles: LCE binary kernels; squares: float kernels)"
    )
    record.write_png(NAME, fig)


def main(argv: list[str] | None = None) -> int:
    p = harness.argument_parser(BENCHMARK, __doc__)
    harness.data_options(p, limit_test=None, epochs=3, limit_train=8000, batch_size=64)
    p.add_argument("--limit-parity", type=int, default=1000)
    p.add_argument("--learning-rate", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--runs", type=int, default=100, help="timed latency runs per model")
    p.add_argument("--models", nargs="+", default=[m for m, _ in MODELS])
    args = p.parse_args(argv)

    labels = dict(MODELS)
    # Not conditions: which models, where the files go, and an unset --limit-test
    # (so the committed record's conditions still match and a rerun resumes it).
    skip = {"models", "results_dir", *(["limit_test"] if args.limit_test is None else [])}
    conditions = {k: v for k, v in vars(args).items() if k not in skip}
    conditions.update(optimizer="legacy Adam on latent weights, cosine decay; EdeSchedule for IR-Net",
                      dataset="fashion_mnist", test_images=args.limit_test or 10000)  # fmt: skip
    record = harness.Recorder(BENCHMARK, argv, args.results_dir)
    out = record.path(NAME)
    previous = json.loads(out.read_text()) if out.exists() else {}
    rows = previous.get("rows", []) if previous.get("conditions") == conditions else []
    done = {r["model"] for r in rows}
    splits = data.load("fashion_mnist")
    for name in args.models:
        if name in done:
            print(f"{name}: already measured, skipped", flush=True)
            continue
        row = run_one(name, splits, args)
        row["method"] = labels.get(name, name)
        rows = [r for r in rows if r["model"] != name] + [row]
        rows.sort(
            key=lambda r: [m for m, _ in MODELS].index(r["model"]) if r["model"] in labels else 99
        )
        print(
            f"{name}: acc {row['test_accuracy']:.4f}  binary MACs {row['binary_mac_fraction']:.1%}  "
            f"{row['tflite_bytes']:,} B  {row['latency_median_ms']:.3f} ms  "
            f"agreement {row['parity_top1_agreement']:.3f}  train {row['train_seconds']} s",
            flush=True,
        )
        record.write_json(NAME, {"conditions": conditions, "rows": rows})
        plot(record, rows,
             {**labels, **{r["model"]: r["model"] for r in rows if r["model"] not in labels}})  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
