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

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common  # noqa: E402  (selects tf_keras first)

# isort: split
import larq as lq  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from bnn_tf import atomic, converters  # noqa: E402
from bnn_tf.converters.runtime import make_interpreter  # noqa: E402
from bnn_tf.errors import ConfigError  # noqa: E402

NAME = "grouped_split"
RESULTS = Path(__file__).resolve().parent / "results"
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
    times: dict[str, list[float]] = {name: [] for name in interpreters}
    for interp in interpreters.values():
        for _ in range(5):
            interp.predict(x)  # warm-up
    for _ in range(rounds):
        for name, interp in interpreters.items():
            for _ in range(calls):
                start = time.perf_counter()
                interp.predict(x)
                times[name].append((time.perf_counter() - start) * 1e3)
    return {
        name: {"median_ms": float(np.median(t)), "p10_ms": float(np.percentile(t, 10)),
               "p90_ms": float(np.percentile(t, 90)), "calls": len(t)}
        for name, t in times.items()
    }  # fmt: skip


def run(args) -> dict:
    load_before = os.getloadavg()
    record = _common.record_header(NAME, load_before)
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
    record["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    return record


def plot(record: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    configs = record["configs"]
    labels = [f"C={c['channels']} g={c['groups']}\n{c['spatial']}×{c['spatial']}" for c in configs]
    variants = (("grouped_indirect", "grouped, indirect"), ("split_indirect", "split, indirect"),
                ("split_default", "split, default (device kernel)"))  # fmt: skip
    fig, ax = plt.subplots(figsize=(9, 4.5))
    width = 0.27
    for k, (key, label) in enumerate(variants):
        values = [c["latency"][key]["median_ms"] for c in configs]
        ax.bar(np.arange(len(configs)) + (k - 1) * width, values, width, label=label)
    ax.set_xticks(np.arange(len(configs)), labels)
    ax.set_ylabel("median latency per image (ms)")
    ax.set_title(
        "3 grouped binary 3×3 convs, LCE 0.16 x86_64, 1 thread "
        f"(load {record['load_average_before'][0]:.1f})"
    )
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=40, help="timed calls per variant per round")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    parser.add_argument("--configs", type=int, default=len(CONFIGS), help="first N configs")
    parser.add_argument("--out", default=str(RESULTS), help="results folder")
    args = parser.parse_args(argv)
    record = run(args)
    out = Path(args.out)
    atomic.write_text(out / f"{NAME}.json", json.dumps(record, indent=2) + "\n")
    plot(record, out / f"{NAME}.png")
    print(f"wrote {out / NAME}.json and .png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
