"""What splitting grouped binary convs costs: latency of split vs grouped `LceBconv2d`.

LCE's default kernel (ARM, Android AAR) rejects grouped binary convs, so
`converters.convert` splits each into per-group convs + a concat by default
(`converters.split_grouped_convs`). This measures, per configuration (a stack
of three grouped 3×3 binary convs with BatchNorm, batch 1, LCE 0.16 Python
interpreter, 1 thread):

- grouped model on the indirect-BGEMM kernel (`convert(split_groups=False)`);
- split model on the indirect kernel (same kernel: the cost of the split);
- split model on the default kernel (what a device runs; on x86_64 the
  default kernel is not ARM's optimised one, so compare ratios, not ms);
- the grouped model on the default kernel is not measurable: it fails at
  AllocateTensors (recorded).

Variants are timed interleaved (round-robin, several rounds) to share the
machine's load; the median over all calls is the headline. Outputs are
checked against Keras (max |difference|).

    nice -n 10 .venv/bin/python benchmarks/grouped_split.py
"""

from __future__ import annotations

import functools
import json
import time

import harness

import bnn_tf  # noqa: F401  selects tf_keras before TensorFlow loads

# isort: split
import larq as lq
import numpy as np
import tensorflow as tf

from bnn_tf import converters
from bnn_tf.converters.runtime import make_interpreter
from bnn_tf.errors import ConfigError

BENCHMARK = harness.Benchmark(
    name="grouped_split",
    description="grouped binary convs: split per group (default kernel) vs grouped (indirect)",
    default_args=[],
    smoke_args=["--configs", "1", "--calls", "2", "--rounds", "1"],
)  # fmt: skip
# (input channels = filters, groups, spatial size)
CONFIGS = ((64, 2, 16), (128, 2, 16), (128, 4, 16), (256, 8, 8), (256, 4, 16))


def grouped_model(channels: int, groups: int, size: int, seed: int = 0) -> tf.keras.Model:
    tf.keras.utils.set_random_seed(seed)
    inputs = tf.keras.Input((size, size, channels))
    x = inputs
    for i in range(3):
        x = lq.layers.QuantConv2D(
            channels, 3, groups=groups, padding="same", pad_values=1.0, use_bias=False,
            input_quantizer="ste_sign", kernel_quantizer="ste_sign",
            kernel_constraint="weight_clip", name=f"conv{i}",
        )(x)  # fmt: skip
        x = tf.keras.layers.BatchNormalization(name=f"bn{i}")(x)
    model = tf.keras.Model(inputs, x)
    rng = np.random.default_rng(seed)
    # Trained-looking BN statistics (a fresh BN lets LCE drop ops, docs/lce.md).
    for layer in model.layers:
        if isinstance(layer, tf.keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([
                rng.uniform(0.5, 1.5, gamma.shape), rng.normal(0, 0.5, beta.shape),
                rng.normal(0, 2, mean.shape), rng.uniform(1, 5, var.shape),
            ])  # fmt: skip
    return model


def time_interleaved(interpreters: dict, x: np.ndarray, *, calls: int, rounds: int) -> dict:
    """Per-call latency of each interpreter, one call of each in turn (`harness.interleaved`)."""
    timings = harness.interleaved(
        {name: functools.partial(interp.predict, x) for name, interp in interpreters.items()},
        rounds=calls * rounds,
        warmup=5,
        cpu_clock=time.thread_time,
    )
    return {
        name: {**t.summary(), "median_ms": t.summary()["wall_median_ms"]}
        for name, t in timings.items()
    }


def run(args) -> dict:
    record: dict = {}
    record.update(
        interpreter="larq_compute_engine 0.16 Interpreter, num_threads=1, batch 1",
        note="shared 2-core machine (other engineers' jobs running): compare ratios within a row",
        configs=[],
    )
    for channels, groups, size in CONFIGS[: args.configs]:
        model = grouped_model(channels, groups, size)
        grouped = converters.convert(model, split_groups=False)
        split = converters.convert(model)
        x = np.random.default_rng(1).normal(size=(1, size, size, channels)).astype(np.float32)
        want = model.predict(x, verbose=0)
        interpreters = {
            "grouped_indirect": make_interpreter(grouped, kernel="indirect"),
            "split_indirect": make_interpreter(split, kernel="indirect"),
            "split_default": make_interpreter(split, kernel="default"),
        }
        try:
            make_interpreter(grouped, kernel="default").predict(x)
            grouped_default = "ran (unexpected)"
        except (ConfigError, RuntimeError) as exc:
            grouped_default = f"refused: {str(exc)[:160]}"
        diffs = {n: float(np.abs(i.predict(x) - want).max()) for n, i in interpreters.items()}
        timing = time_interleaved(interpreters, x, calls=args.calls, rounds=args.rounds)
        entry = {
            "channels": channels, "groups": groups, "spatial": size,
            "per_group_channels": channels // groups,
            "bytes": {"grouped": len(grouped), "split": len(split)},
            "ops": {"grouped": dict(converters.inspect(grouped).op_counts),
                    "split": dict(converters.inspect(split).op_counts)},
            "max_abs_diff_vs_keras": diffs,
            "grouped_default": grouped_default,
            "latency": timing,
            "split_over_grouped_indirect": timing["split_indirect"]["median_ms"]
            / timing["grouped_indirect"]["median_ms"],
        }  # fmt: skip
        print(json.dumps({k: entry[k] for k in ("channels", "groups", "latency")}), flush=True)
        record["configs"].append(entry)
    return record


def plot(record: dict, load: float):
    configs = record["configs"]
    labels = [f"C={c['channels']} g={c['groups']}\n{c['spatial']}×{c['spatial']}" for c in configs]
    variants = (("grouped_indirect", "grouped, indirect"), ("split_indirect", "split, indirect"),
                ("split_default", "split, default (device kernel)"))  # fmt: skip
    fig, ax = harness.figure(size=(9, 4.5))
    width = 0.27
    for k, (key, label) in enumerate(variants):
        values = [c["latency"][key]["median_ms"] for c in configs]
        ax.bar(np.arange(len(configs)) + (k - 1) * width, values, width, label=label)
    ax.set_xticks(np.arange(len(configs)), labels)
    ax.set_ylabel("median latency per image (ms)")
    ax.set_title(f"3 grouped binary 3×3 convs, LCE 0.16 x86_64, 1 thread (load {load:.1f})")
    ax.legend()
    fig.tight_layout()
    return fig


def main(argv=None) -> int:
    parser = harness.argument_parser(BENCHMARK, __doc__)
    parser.add_argument("--calls", type=int, default=40, help="timed calls per variant per round")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    parser.add_argument("--configs", type=int, default=len(CONFIGS), help="first N configs")
    args = parser.parse_args(argv)
    recorder = harness.Recorder(BENCHMARK, argv, args.results_dir)
    record = run(args)
    recorder.write_json(BENCHMARK.name, record)
    recorder.write_png(BENCHMARK.name, plot(record, recorder.load_before[0]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
