"""MeliusNet 22/29/42/59/A/B/C at 224×224: LCE conversion, float ops left, latency, bytes.

For every configuration: build (1000 classes), give every BatchNorm
non-trivial statistics (a freshly built BN has β = μ = 0, which lets the
converter drop ADDs that a trained model keeps), convert with LCE, count the
ops, and time the `.tflite` with LCE's interpreter (indirect BGEMM, 1 thread,
batch 1). Also built and timed:

- `meliusnet22_zoo_layout`: our re-creation of larq-zoo's MeliusNet22 graph
  (BN → QuantConv2D with larq's default zero padding, `x + tf.pad(i)`
  improvement, split/concat grouped stem with BN after the concat, softmax
  head) — larq-zoo itself cannot be installed beside TF 2.21. Its op counts
  are checked against the ones larq-zoo's conversion is documented to keep
  (docs/lce.md: 40 MUL, 17 PAD, 19 CONCATENATION).
- `meliusnet22_float` and `meliusnet_small(_float)`: float twins, for the size ratio.

The machine is shared, so all models are timed in interleaved rounds (one
inference of each per round) and both wall-clock and thread CPU time are
recorded; CPU time is the robust figure under load.

    nice -n 10 .venv/bin/python benchmarks/meliusnet_latency.py [--runs 15] [--configs meliusnet22 ...]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import harness

# isort: off
import bnn_tf  # noqa: F401  selects legacy Keras before TensorFlow is imported

# isort: on
import larq as lq
import numpy as np
import tensorflow as tf

from bnn_tf import converters
from bnn_tf.converters.runtime import make_interpreter
from bnn_tf.converters.tflite_model import LCE_OPS
from bnn_tf.converters.verification import randomize_batchnorm
from bnn_tf.models import meliusnet as mn

BENCHMARK = harness.Benchmark(
    name="meliusnet_latency",
    description="MeliusNet 22..59/A/B/C at 224x224: LCE conversion, float ops left, latency, bytes",
    default_args=["--runs", "15"],
    smoke_args=["--configs", "meliusnet_small", "meliusnet_small_float", "--runs", "2",
                "--warmup", "1"],
)  # fmt: skip
LARQ_ZOO_MELIUSNET22 = {
    "latency_ms": 70.0,
    "float_ops": {"MUL": 40, "PAD": 17, "CONCATENATION": 19},
}


def zoo_layout_meliusnet22(num_classes: int = 1000) -> tf.keras.Model:
    """larq-zoo's MeliusNet22 graph, rebuilt from its published structure (see module doc)."""
    L = tf.keras.layers
    cfg = mn.CONFIGS["meliusnet22"]

    def bn(x):
        return L.BatchNormalization(momentum=0.9)(x)

    def qconv(x):  # larq-zoo: ste_sign, weight_clip, larq's default pad_values=0
        return lq.layers.QuantConv2D(
            64, 3, padding="same", use_bias=False, input_quantizer="ste_sign",
            kernel_quantizer="ste_sign", kernel_constraint="weight_clip",
        )(x)  # fmt: skip

    def group_conv(x, filters, groups):
        parts = tf.split(x, groups, axis=-1)
        return tf.concat(
            [L.Conv2D(filters // groups, 3, padding="same", use_bias=False)(p) for p in parts], -1
        )

    inp = tf.keras.Input((224, 224, 3))
    x = L.ReLU()(bn(L.Conv2D(32, 3, strides=2, padding="same", use_bias=False)(inp)))
    x = L.ReLU()(bn(group_conv(x, 32, 4)))
    x = L.ReLU()(bn(group_conv(x, 64, 8)))
    x = L.MaxPool2D(2, strides=2, padding="same")(x)
    for s, n in enumerate(cfg.num_blocks):
        for _ in range(n):
            x = tf.concat([x, qconv(bn(x))], -1)
            c = x.shape[-1]
            x = tf.math.add(x, tf.pad(qconv(bn(x)), [[0, 0], [0, 0], [0, 0], [c - 64, 0]]))
        if s < len(cfg.transition_features):
            x = L.ReLU()(L.MaxPool2D(2, strides=2, padding="same")(bn(x)))
            x = L.Conv2D(cfg.transition_features[s], 1, use_bias=False)(x)
    x = L.GlobalAvgPool2D()(L.ReLU()(bn(x)))
    x = L.Dense(num_classes, activation="softmax")(x)
    return tf.keras.Model(inp, x, name="meliusnet22_zoo_layout")


def float_ops(op_counts: dict[str, int]) -> dict[str, int]:
    """Ops that are not LCE binary ops (float work left after conversion)."""
    return {k: v for k, v in sorted(op_counts.items()) if k not in LCE_OPS}


def build(name: str) -> tuple[tf.keras.Model, tuple[int, ...]]:
    if name == "meliusnet22_zoo_layout":
        return zoo_layout_meliusnet22(), (224, 224, 3)
    if name == "meliusnet22_float":
        return mn.build_meliusnet(
            mn.CONFIGS["meliusnet22"], input_shape=(224, 224, 3), num_classes=1000,
            include_top=True, name="meliusnet22", binary=False,
        ), (224, 224, 3)  # fmt: skip
    if name.startswith("meliusnet_small"):
        return mn.meliusnet_small(binary=not name.endswith("_float")), (28, 28, 1)
    return getattr(mn, name)(), (224, 224, 3)


def convert_one(name: str) -> tuple[dict, bytes, tuple[int, ...]]:
    t0 = time.perf_counter()
    model, shape = build(name)
    randomize_batchnorm(model)
    profile = lq.models.ModelProfile(model)
    t1 = time.perf_counter()
    flatbuffer = converters.convert(model)
    t2 = time.perf_counter()
    report = converters.inspect(flatbuffer)
    x = np.random.default_rng(1).uniform(-1, 1, (1, *shape)).astype(np.float32)
    keras_out = model(x, training=False).numpy()
    lite_out = make_interpreter(flatbuffer).predict(x)
    if model.name == "meliusnet22_zoo_layout":  # softmax head
        keras_out, lite_out = np.log(keras_out + 1e-12), np.log(lite_out + 1e-12)
    row = {
        "name": name,
        "input_shape": list(shape),
        "params": int(profile.weight_count()),
        "binary_params": int(profile.weight_count(bitwidth=1)),
        "larq_size_mib": profile.memory / 8 / 2**20,
        "paper_size_mb": getattr(mn.CONFIGS.get(name), "paper_size_mb", None),
        "tflite_bytes": report.size_bytes,
        "binary_convs": report.binary_convs,
        "expected_binary_convs": len(converters.binary_conv_layers(model)),
        "float_mac_ops": report.float_mac_ops,
        "float_ops": float_ops(report.op_counts),
        "float_ops_total": sum(float_ops(report.op_counts).values()),
        "op_counts": report.op_counts,
        "keras_vs_tflite_max_abs_logit_diff": float(np.max(np.abs(keras_out - lite_out))),
        "keras_vs_tflite_same_argmax": bool(np.argmax(keras_out) == np.argmax(lite_out)),
        "build_s": round(t1 - t0, 1),
        "convert_s": round(t2 - t1, 1),
    }
    print(
        f"{name}: {report.size_bytes:,} B, {report.binary_convs} LceBconv2d, float ops "
        f"{row['float_ops']}, convert {row['convert_s']} s", flush=True,
    )  # fmt: skip
    return row, flatbuffer, shape


def time_interleaved(flatbuffers: dict[str, tuple[bytes, tuple]], runs: int, warmup: int) -> dict:
    interpreters = {n: make_interpreter(fb, num_threads=1) for n, (fb, _) in flatbuffers.items()}
    inputs = {
        n: np.random.default_rng(0).uniform(-1, 1, (1, *shape)).astype(np.float32)
        for n, (_, shape) in flatbuffers.items()
    }
    # Thread CPU time: the 1-thread interpreter runs in the calling thread.
    timings = harness.interleaved(
        {n: (lambda it=it, x=inputs[n]: it.predict(x)) for n, it in interpreters.items()},
        rounds=runs,
        warmup=warmup,
        cpu_clock=time.thread_time,
    )
    return {n: t.summary() for n, t in timings.items()}


def plot(rows: list[dict], path: Path) -> None:
    rows = [r for r in rows if "cpu_median_ms" in r]
    # The 28×28 models only give the size ratio; drawn only when nothing else was measured.
    rows = [r for r in rows if not r["name"].startswith("meliusnet_small")] or rows
    names = [r["name"].replace("meliusnet", "MN") for r in rows]
    fig, axes = harness.figure(3, size=(15, 4.5))
    colors = [
        "tab:gray" if "zoo" in n else "tab:red" if "float" in n else "tab:blue" for n in names
    ]
    for ax, values, ylabel, title in (
        (axes[0], [r["cpu_median_ms"] for r in rows], "ms (median thread CPU time, 1 thread)",
         "Latency, LCE interpreter, indirect BGEMM"),
        (axes[1], [r["tflite_bytes"] / 1e6 for r in rows], ".tflite MB", ".tflite size"),
        (axes[2], [r["float_ops_total"] for r in rows], "ops",
         "Non-LCE (float) ops left after conversion"),
    ):  # fmt: skip
        harness.bars(ax, names, {ylabel: values}, ylabel=ylabel, title=title)
        for bar, color in zip(ax.patches, colors, strict=True):
            bar.set_color(color)
        ax.tick_params(axis="x", rotation=60, labelsize=8)
    axes[1].set_yscale("log")
    harness.reference_line(axes[0], LARQ_ZOO_MELIUSNET22["latency_ms"],
                           "larq-zoo MN22, docs/lce.md (70 ms)", color="k")  # fmt: skip
    harness.save_figure(fig, path)


def main(argv: list[str] | None = None) -> int:
    parser = harness.argument_parser(BENCHMARK, __doc__)
    parser.add_argument("--configs", nargs="*", default=[
        "meliusnet22", "meliusnet22_zoo_layout", "meliusnet_small", "meliusnet_small_float",
        "meliusnet22_float", *[c for c in mn.CONFIGS if c != "meliusnet22"],
    ])  # fmt: skip
    parser.add_argument("--runs", type=int, default=15, help="timed inferences per model (≥ 10)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument(
        "--out", default=None, help="results JSON (default: RESULTS_DIR/meliusnet_latency.json)"
    )
    args = parser.parse_args(argv)
    record = harness.Recorder(BENCHMARK, argv, args.results_dir)
    started = time.perf_counter()
    rows, flatbuffers = [], {}
    for name in args.configs:
        row, fb, shape = convert_one(name)
        rows.append(row)
        flatbuffers[name] = (fb, shape)
    timings = time_interleaved(flatbuffers, args.runs, args.warmup)
    for row in rows:
        row.update(timings[row["name"]])
        print(f"{row['name']}: cpu median {row['cpu_median_ms']:.1f} ms, wall median "
              f"{row['wall_median_ms']:.1f} ms", flush=True)  # fmt: skip
    by_name = {r["name"]: r for r in rows}
    summary = {}
    if "meliusnet22" in by_name and "meliusnet22_zoo_layout" in by_name:
        ours, zoo = by_name["meliusnet22"], by_name["meliusnet22_zoo_layout"]
        summary["meliusnet22_over_zoo_layout_cpu"] = ours["cpu_median_ms"] / zoo["cpu_median_ms"]
        summary["meliusnet22_over_zoo_layout_wall"] = ours["wall_median_ms"] / zoo["wall_median_ms"]
    for base in ("meliusnet22", "meliusnet_small"):
        if base in by_name and f"{base}_float" in by_name:
            summary[f"{base}_float_over_binary_bytes"] = (
                by_name[f"{base}_float"]["tflite_bytes"] / by_name[base]["tflite_bytes"]
            )
    out = Path(args.out) if args.out else record.path(BENCHMARK.name)
    record.results_dir = out.parent
    record.write_json(out.stem, {
        "interpreter": "larq_compute_engine Interpreter, use_indirect_bgemm=True, num_threads=1, batch 1",
        "timing": "interleaved rounds; median of `runs` per model; thread CPU time and wall clock",
        "larq_zoo_reference_docs_lce_md": LARQ_ZOO_MELIUSNET22,
        "summary": summary,
        "models": rows,
        "total_s": round(time.perf_counter() - started, 1),
    })  # fmt: skip
    plot(rows, out.with_suffix(".png"))
    print(f"summary: {summary}\nwrote {out} and {out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
