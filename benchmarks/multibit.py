"""Benchmark: accuracy and LCE latency vs the number of binary bases, on real binary kernels.

Same architecture (bnn_small layout: float stem, five 3×3 quantized convs
64/64/128/128/256, float head), same data, budget, seed and optimizer for
every row:

- ABC-Net `abcnet_small` with M weight × N activation bases, (M, N) in
  1×1, 1×2, 2×2, 3×3: each conv is M·N `LceBconv2d`;
- DoReFa `dorefa_small` k_bit 2 and 3 (k-bit weights and activations: float
  `CONV_2D` under LCE) and the float twin `bnn_small_float`;
- the other new multi-basis models for the methods table: ReBNet
  (`rebnet_small`, 2 residual levels), least-squares binary (`lsq_binary_small`
  2bit and tree).

Per row: Keras test accuracy (first `--limit-test` test images, last epoch), op counts and
binary-MAC fraction of the `.tflite`, bytes, Keras↔TFLite top-1 agreement on
`--limit-parity` test images (LCE interpreter, default kernel
`use_indirect_bgemm=False`, as LCE's C++ library and Android AAR), and LCE
latency (1 thread, batch 1; every model's runs interleaved round by round so
a change of machine load hits all rows alike; default and indirect kernels).

Writes `benchmarks/results/multibit.json` + `multibit.png` (accuracy vs
latency and vs bases) and `methods_table_multibit.json` (methods-table rows
of the new models). Rows already in the JSON under the same conditions are
skipped, so an interrupted run resumes (latency is re-measured at the end).

    nice -n 10 .venv/bin/python benchmarks/multibit.py --epochs 2 --limit-train 4000 --limit-test 2000

(the committed run; 6 000 images × 3 epochs did not fit the shared machine's
time: at load average 15–25 this process got ≈ 15 % of one core and the 2×2
model alone trained for 9 minutes at the smaller budget).
"""

from __future__ import annotations

import functools
import json
import os
import time
from pathlib import Path

import harness

# isort: off
import bnn_tf  # noqa: F401  selects legacy Keras before TensorFlow is imported

# isort: on
import numpy as np
import tensorflow as tf
from methods_table import mac_counts

from bnn_tf import converters, data, introspect, training
from bnn_tf import models as zoo
from bnn_tf.methods.multibasis import MultiBasisConv2D

BENCHMARK = harness.Benchmark(
    name="multibit",
    description="multi-basis binarization (ABC-Net M×N, ReBNet, LSQ) vs DoReFa/float: "
    "accuracy, LceBconv2d count, LCE latency",
    default_args=["--epochs", "2", "--limit-train", "4000", "--limit-test", "2000"],
    smoke_args=["--epochs", "1", "--limit-train", "128", "--limit-test", "128",
                "--limit-parity", "32", "--rounds", "1", "--runs", "2", "--only", "abc_1x1"],
)  # fmt: skip
NAME = BENCHMARK.name
TFLITE_DIR = Path(os.environ.get("TMPDIR", "/tmp")) / "bnn_tf_multibit"

# (key, zoo model, factory options, label, weight bases M, activation bases N, bits (w, a))
CONFIGS = [
    ("abc_1x1", "abcnet_small", {"weight_bases": 1, "activation_bases": 1}, "ABC-Net 1×1", 1, 1),
    ("abc_2x2", "abcnet_small", {"weight_bases": 2, "activation_bases": 2}, "ABC-Net 2×2", 2, 2),
    ("dorefa_2", "dorefa_small", {"k_bit": 2}, "DoReFa 2/2-bit", None, None),
    ("float", "bnn_small_float", {}, "float twin", None, None),
    ("abc_1x2", "abcnet_small", {"weight_bases": 1, "activation_bases": 2}, "ABC-Net 1×2", 1, 2),
    ("abc_3x3", "abcnet_small", {"weight_bases": 3, "activation_bases": 3}, "ABC-Net 3×3", 3, 3),
    ("dorefa_3", "dorefa_small", {"k_bit": 3}, "DoReFa 3/3-bit", None, None),
    ("rebnet_2", "rebnet_small", {"levels": 2}, "ReBNet 1×2 (residual)", 1, 2),
    ("lsq_2bit", "lsq_binary_small", {"mode": "2bit"}, "LSQ ls-2 (2×1)", 2, 1),
    ("lsq_tree", "lsq_binary_small", {"mode": "tree"}, "LSQ tree (3×1)", 3, 1),
    # Seed-paper models (methods-table rows): one binary conv per layer, or float-emulated.
    ("lqnet_2", "lqnet_small", {"bits": 2}, "LQ-Net 2-bit weights (2×1)", 2, 1),
    ("lqnet_2x2", "lqnet_small", {"bits": 2, "activation_bits": 2}, "LQ-Net 2/2-bit (2×2)", 2, 2),
    (
        "lsq_2x2",
        "lsq_binary_small",
        {"mode": "2bit", "activation_mode": "2bit"},
        "LSQ ls-2 W and A (2×2)",
        2,
        2,
    ),
    ("bnnplus", "bnnplus_small", {}, "BNN+", 1, 1),
    ("selfbin", "selfbin_small", {}, "Self-Binarizing", 1, 1),
    ("rangebn", "rangebn_small", {}, "RangeBN (bnn_small)", 1, 1),
    ("ttq", "ttq_small", {}, "TTQ (ternary W, float A)", None, None),
    ("pact_2", "pact_small", {"k_bit": 2}, "PACT 2/2-bit", None, None),
    ("hwgq_2", "hwgq_small", {"k_bit": 2}, "HWGQ 2-bit A, 1-bit W", None, None),
    (
        "wrpn_2",
        "wrpn_small",
        {"k_bit": 2, "width_multiplier": 2.0},
        "WRPN 2× wide, 2/2-bit",
        None,
        None,
    ),
]
CURVE_MODELS = (
    "abcnet_small",
    "rebnet_small",
    "lsq_binary_small",
    "dorefa_small",
    "bnn_small_float",
)
NEW_MODELS = (
    "abcnet_small",
    "rebnet_small",
    "lsq_binary_small",
    "lqnet_small",
    "bnnplus_small",
    "selfbin_small",
    "rangebn_small",
    "ttq_small",
    "pact_small",
    "hwgq_small",
    "wrpn_small",
)


def parity(model: tf.keras.Model, flatbuffer: bytes, x: np.ndarray) -> dict:
    """Keras vs TFLite top-1 on `x`, with LCE's default (non-indirect) binary kernel."""
    from larq_compute_engine.tflite.python.interpreter import Interpreter

    interpreter = Interpreter(flatbuffer, num_threads=1, use_indirect_bgemm=False)
    lite = np.concatenate([interpreter.predict(x[i : i + 256]) for i in range(0, len(x), 256)])
    keras = model.predict(x, batch_size=256, verbose=0)
    agree = lite.argmax(-1) == keras.argmax(-1)
    return {
        "parity_images": len(x),
        "parity_top1_agreement": float(agree.mean()),
        "parity_mismatches": int((~agree).sum()),
        "parity_max_abs_logit_diff": round(float(np.abs(lite - keras).max()), 6),
    }


def run_one(key: str, name: str, options: dict, splits, args) -> dict:
    tf.keras.utils.set_random_seed(args.seed)
    model = zoo.build(
        name, input_shape=splits.input_shape, num_classes=splits.num_classes, **options
    )
    x_train = data.preprocess(splits.x_train[: args.limit_train])
    y_train = splits.y_train[: args.limit_train]
    x_test = data.preprocess(splits.x_test[: args.limit_test])
    y_test = splits.y_test[: args.limit_test]
    steps = -(-len(x_train) // args.batch_size)
    lr = tf.keras.optimizers.schedules.CosineDecay(args.learning_rate, steps * args.epochs)
    training.compile_model(model, optimizer=tf.keras.optimizers.legacy.Adam(lr))
    # The schedules the model's methods declare (Self-Binarizing's β), as bnn-tf train adds them.
    schedules = [s.for_run(epochs=args.epochs, steps_per_epoch=steps)
                 for s in introspect.declared_schedules(model)]  # fmt: skip
    start = time.perf_counter()
    model.fit(x_train, y_train, epochs=args.epochs, batch_size=args.batch_size, verbose=0,
              shuffle=True, callbacks=schedules)  # fmt: skip
    train_seconds = time.perf_counter() - start
    _, test_acc = model.evaluate(x_test, y_test, batch_size=512, verbose=0)

    flatbuffer = converters.convert(model)
    TFLITE_DIR.mkdir(parents=True, exist_ok=True)
    (TFLITE_DIR / f"{key}.tflite").write_bytes(flatbuffer)
    report = converters.inspect(flatbuffer)
    macs = mac_counts(flatbuffer)
    total = macs["binary_macs"] + macs["float_macs"]
    multibasis = [layer for layer in model.layers if isinstance(layer, MultiBasisConv2D)]
    return {
        "key": key,
        "model": name,
        "options": options,
        "lce_binary_flag": zoo.info(name).lce_binary,
        "params": int(model.count_params()),
        "test_accuracy": round(float(test_acc), 4),
        "train_seconds": round(train_seconds, 1),
        "binary_convs": report.binary_convs,
        "expected_binary_convs": sum(layer.num_binary_convs for layer in multibasis),
        "binary_convs_per_layer": [layer.num_binary_convs for layer in multibasis],
        "float_mac_ops": report.float_mac_ops,
        **macs,
        "binary_mac_fraction": round(macs["binary_macs"] / total, 4) if total else 0.0,
        "tflite_bytes": report.size_bytes,
        **parity(model, flatbuffer, x_test[: args.limit_parity]),
        "op_counts": report.op_counts,
    }


def interleaved_latency(keys: list[str], rounds: int, runs: int) -> dict[str, dict]:
    """Median latency per model and kernel, one call of each in turn (`harness.interleaved`)."""
    from larq_compute_engine.tflite.python.interpreter import Interpreter

    x = np.random.default_rng(0).uniform(-1, 1, (1, 28, 28, 1)).astype(np.float32)
    interpreters = {
        (k, indirect): Interpreter(
            (TFLITE_DIR / f"{k}.tflite").read_bytes(), num_threads=1, use_indirect_bgemm=indirect
        )
        for k in keys
        for indirect in (False, True)
    }
    timings = harness.interleaved(
        {key: functools.partial(it.predict, x) for key, it in interpreters.items()},
        rounds=rounds * runs,
        warmup=5,
        cpu_clock=time.thread_time,
    )
    out: dict[str, dict] = {}
    for (k, indirect), t in timings.items():
        prefix = "latency_indirect" if indirect else "latency_default"
        out.setdefault(k, {})[f"{prefix}_median_ms"] = round(float(np.median(t.wall_ms)), 3)
        out[k][f"{prefix}_p90_ms"] = round(float(np.percentile(t.wall_ms, 90)), 3)
    return out


def plot(rows: list[dict]):
    # The curve: multi-basis rows against DoReFa/float; the seed rows live in the methods table.
    rows = [r for r in rows if r["model"] in CURVE_MODELS]
    fig, axes = harness.figure(2, size=(13, 5))
    ax = axes[0]
    abc = sorted((r for r in rows if r["key"].startswith("abc_") and "latency_default_median_ms" in r),
                 key=lambda r: r["bases_product"])  # fmt: skip
    if abc:
        ax.plot([r["latency_default_median_ms"] for r in abc], [r["test_accuracy"] for r in abc],
                "o-", color="tab:blue", label="ABC-Net M×N (LceBconv2d)")  # fmt: skip
    for r in rows:
        if "latency_default_median_ms" not in r:
            continue
        binary = r["binary_convs"] > 0
        if not r["key"].startswith("abc_"):
            ax.scatter(r["latency_default_median_ms"], r["test_accuracy"],
                       marker="o" if binary else "s", color="tab:green" if binary else "tab:orange")  # fmt: skip
        ax.annotate(r["label"], (r["latency_default_median_ms"], r["test_accuracy"]), fontsize=7,
                    xytext=(3, 3), textcoords="offset points")  # fmt: skip
    ax.set_xlabel("LCE latency, median ms (x86_64, 1 thread, batch 1, default kernel)")
    ax.set_ylabel("Fashion-MNIST test accuracy")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    ax = axes[1]
    if abc:
        ax.plot([r["bases_product"] for r in abc], [r["test_accuracy"] for r in abc], "o-",
                color="tab:blue", label="ABC-Net (accuracy)")  # fmt: skip
        for r in abc:
            ax.annotate(r["label"], (r["bases_product"], r["test_accuracy"]), fontsize=7,
                        xytext=(3, -10), textcoords="offset points")  # fmt: skip
    for r in rows:
        if r["key"].startswith(("dorefa", "float")):
            ax.axhline(r["test_accuracy"], ls="--", lw=1, color="tab:orange" if "dorefa" in r["key"]
                       else "black", label=r["label"])  # fmt: skip
    ax.set_xlabel("binary convs per layer (M·N)")
    ax.set_ylabel("Fashion-MNIST test accuracy")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.suptitle(
        "Multi-basis binarization on LCE binary kernels vs k-bit (float-emulated) and float"
    )
    fig.tight_layout()
    return fig


def table_rows(rows: list[dict]) -> list[dict]:
    """Methods-table rows (the columns of benchmarks/results/methods_table.json) of the new models."""
    out = []
    for r in rows:
        if r["model"] not in NEW_MODELS:
            continue
        out.append({
            "method": r["label"],
            "model": r["model"],
            "options": r["options"],
            "lce_binary": r["binary_convs"] > 0,
            "params": r["params"],
            "test_accuracy": r["test_accuracy"],
            "binary_mac_fraction": r["binary_mac_fraction"],
            "tflite_bytes": r["tflite_bytes"],
            "latency_default_median_ms": r.get("latency_default_median_ms"),
            "latency_indirect_median_ms": r.get("latency_indirect_median_ms"),
            "parity_top1_agreement": r["parity_top1_agreement"],
            "binary_convs": r["binary_convs"],
        })  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> int:
    p = harness.argument_parser(BENCHMARK, __doc__)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--limit-train", type=int, default=6000)
    p.add_argument("--limit-test", type=int, default=10000, help="test images for accuracy")
    p.add_argument("--limit-parity", type=int, default=1000)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--learning-rate", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rounds", type=int, default=10, help="interleaved latency rounds")
    p.add_argument("--runs", type=int, default=10, help="timed runs per model per round")
    p.add_argument("--only", nargs="+", default=[c[0] for c in CONFIGS])
    args = p.parse_args(argv)

    skip = ("only", "rounds", "runs", "results_dir")
    conditions = {k: v for k, v in vars(args).items() if k not in skip}
    conditions.update(optimizer="legacy Adam on latent weights, cosine decay", dataset="fashion_mnist")  # fmt: skip
    recorder = harness.Recorder(BENCHMARK, argv, args.results_dir)
    out = recorder.path(NAME)
    previous = json.loads(out.read_text()) if out.exists() else {}
    rows = previous.get("rows", []) if previous.get("conditions") == conditions else []
    splits = data.load("fashion_mnist")

    def save(extra: dict | None = None) -> None:
        record = {"conditions": conditions, "rows": rows, **(extra or {})}
        record["note"] = ("shared 2-core machine, other jobs running; compare rows with each other, "
                          "not with ARM numbers")  # fmt: skip
        recorder.write_json(NAME, record)
        recorder.write_json("methods_table_multibit", {
            "conditions": conditions, "rows": table_rows(rows),
            "columns": "method, model, LCE binary, params, test acc, binary-MAC fraction, "
                       ".tflite bytes, LCE latency (ms, 1 thread), Keras↔TFLite top-1",
        })  # fmt: skip

    for key, name, options, label, m, n in CONFIGS:
        if key not in args.only:
            continue
        if any(r["key"] == key for r in rows) and (TFLITE_DIR / f"{key}.tflite").exists():
            print(f"{key}: already measured, skipped", flush=True)
            continue
        row = run_one(key, name, options, splits, args)
        row.update(label=label, weight_bases=m, activation_bases=n,
                   bases_product=(m or 0) * (n or 0),
                   load_average_after=[round(v, 2) for v in os.getloadavg()])  # fmt: skip
        rows = [r for r in rows if r["key"] != key] + [row]
        print(f"{key}: acc {row['test_accuracy']:.4f}  bconv {row['binary_convs']} "
              f"(expected {row['expected_binary_convs']})  agreement {row['parity_top1_agreement']:.4f}  "
              f"{row['tflite_bytes']:,} B  train {row['train_seconds']} s", flush=True)  # fmt: skip
        save()
    keys = [r["key"] for r in rows if (TFLITE_DIR / f"{r['key']}.tflite").exists()]
    latency = interleaved_latency(keys, args.rounds, args.runs)
    for r in rows:
        r.update(latency.get(r["key"], {}))
    save({"latency": {"rounds": args.rounds, "runs_per_round": args.runs, "threads": 1,
                      "kernels": "default (use_indirect_bgemm=False) and indirect BGEMM"}})  # fmt: skip
    for r in rows:
        print(
            f"{r['key']}: {r.get('latency_default_median_ms')} ms default, "
            f"{r.get('latency_indirect_median_ms')} ms indirect",
            flush=True,
        )
    recorder.write_png(NAME, plot(rows))
    table = table_rows(rows)
    if table:
        fig, ax = harness.figure(size=(9, 4))
        harness.bars(ax, [r["model"] for r in table], {"test accuracy": [r["test_accuracy"] for r in table]},
                     horizontal=True, annotate="{:.3f}", xlabel="Fashion-MNIST test accuracy",
                     title="new methods, methods-table budget")  # fmt: skip
        fig.tight_layout()
        recorder.write_png("methods_table_multibit", fig)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
