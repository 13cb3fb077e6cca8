"""Benchmark: training-step time of zoo models with and without XLA (`--jit-compile`).

Each case builds the model, compiles it with `bnn_tf.training.compile_model`
(Bop + Adam, as `bnn-tf train` does) with `jit_compile` off and on, runs
`--warmup` steps, then times `--steps` steps of `--batch-size` Fashion-MNIST
images through `model.fit` (the same kind of loop as training). The cases are
run in fresh processes, one at a time, in alternating order, so neither
setting gets a warm machine. Writes `benchmarks/results/step_time.{json,png}`.

    .venv/bin/python benchmarks/step_time.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import harness

BENCHMARK = harness.Benchmark(
    name="step_time",
    description="training-step time of zoo models with and without XLA (--jit-compile)",
    default_args=[],
    smoke_args=["--cases", "bnn_small", "--batch-size", "32", "--warmup", "1", "--steps", "3"],
)
CASES: dict[str, tuple[str, dict]] = {
    "recu_resnet20 x2 stem_strides=2": (
        "recu_resnet20",
        {"width_multiplier": 2, "stem_strides": 2},
    ),
    "recu_resnet20 x1 (28x28 blocks)": ("recu_resnet20", {}),
    "meliusnet_small": ("meliusnet_small", {}),
    "bnn_small": ("bnn_small", {}),
}

_CHILD = """
import json, sys, time
import bnn_tf
import tensorflow as tf
import bnn_tf.models as zoo
from bnn_tf import data, training
name, kwargs, jit, batch, warmup, steps = json.loads(sys.argv[1])
splits = data.load("fashion_mnist", download=False)
x = data.preprocess(splits.x_train[: batch * 8])
y = splits.y_train[: batch * 8]
tf.keras.utils.set_random_seed(0)
model = zoo.build(name, **kwargs)
training.compile_model(model, jit_compile=jit)
ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch).repeat()
# Finite datasets: with an infinite one and steps_per_epoch, fit()'s duration
# here snapped to 5.12 s × 2^k, which inflated the step time up to 2×.
model.fit(ds.take(warmup), verbose=0)
start = time.perf_counter()
model.fit(ds.take(steps), verbose=0)
print(json.dumps({"ms_per_step": 1000 * (time.perf_counter() - start) / steps}))
"""


def _time(model: str, kwargs: dict, jit: bool, args) -> float:
    payload = json.dumps([model, kwargs, jit, args.batch_size, args.warmup, args.steps])
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, payload], capture_output=True, text=True, env=env
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{model} {kwargs} jit={jit} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])["ms_per_step"]


def _plot(record: harness.Recorder, rows: list[dict], batch_size: int) -> None:
    fig, ax = harness.figure(size=(9, 4))
    harness.bars(
        ax,
        [r["case"] for r in rows],
        {"plain": [r["plain_ms"] for r in rows], "--jit-compile": [r["xla_ms"] for r in rows]},
        horizontal=True,
        xlabel=f"ms per training step (batch {batch_size}, 2-core CPU)",
    )
    record.write_png("step_time", fig)


def main(argv: list[str] | None = None) -> int:
    parser = harness.argument_parser(BENCHMARK, __doc__)
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    harness.data_options(parser, batch_size=128)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args(argv)

    record = harness.Recorder(BENCHMARK, argv, args.results_dir)
    rows = []
    for i, case in enumerate(args.cases):
        model, kwargs = CASES[case]
        order = (False, True) if i % 2 == 0 else (True, False)
        ms = {jit: _time(model, kwargs, jit, args) for jit in order}
        rows.append(
            {
                "case": case,
                "model": model,
                "model_kwargs": kwargs,
                "plain_ms": round(ms[False], 1),
                "xla_ms": round(ms[True], 1),
                "speedup": round(ms[False] / ms[True], 2),
            }
        )
        print(f"{case}: plain {ms[False]:.0f} ms, XLA {ms[True]:.0f} ms")
    body = {
        "protocol": (
            f"{args.warmup} warm-up + {args.steps} timed steps of {args.batch_size} real "
            "Fashion-MNIST images through model.fit, Bop + Adam (training.compile_model), "
            "one fresh process per measurement"
        ),
        "rows": rows,
    }
    record.write_json("step_time", body)
    _plot(record, rows, args.batch_size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
