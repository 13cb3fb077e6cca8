"""Benchmark: small EBNet (4 experts) vs its single-expert twin on Fashion-MNIST.

Both models are `ebnet_small` (same binary ops; `num_experts=1` for the twin),
trained with Bop + Adam (cosine learning rate), the same data, epochs and
batch size. EBNet follows the paper's staging: `--single-epochs` epochs with
the gate forced to expert 0, then expert 0 is copied into all experts
(`ExpertExpansion`) and the gate trains for the remaining epochs. (The
paper's other stage, real weights + binary activations before the fully
binary stage, and its distillation are not part of this benchmark.)

Also measured:
- the gate's expert usage on the test set per EBConv layer (PNG histogram);
- training-step time of one EBConv2D layer (N = 4, "partition" and
  "grouped" implementations, and N = 1) vs a plain `QuantConv2D` of the same
  shape, and of the whole model vs its single-expert twin (interleaved
  rounds, median, on this shared 2-core machine).

The test set is evaluated after each epoch for the curves only; the reported
accuracy is the last epoch's. Trained models go to `--work` (used by
benchmarks/ebconv_export.py for the Keras-vs-LCE agreement on real images).

    nice -n 10 .venv/bin/python benchmarks/ebconv_training.py --limit-train 10000 --epochs 6
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import harness

# isort: off
import bnn_tf  # noqa: F401  selects legacy Keras before TensorFlow is imported

# isort: on
import larq as lq
import numpy as np
import tensorflow as tf

from bnn_tf import atomic, data, training
from bnn_tf import models as zoo
from bnn_tf.methods.ebconv import EBConv2D, ExpertExpansion, expert_usage

BENCHMARK = harness.Benchmark(
    name="ebconv_training",
    description="ebnet_small (4 experts, staged) vs its single-expert twin: accuracy, usage, step cost",
    default_args=["--rounds", "25"],
    smoke_args=["--limit-train", "256", "--limit-test", "256", "--epochs", "2",
                "--single-epochs", "1", "--batch-size", "32", "--rounds", "2",
                "--work", "{tmp}/work"],
)  # fmt: skip
NAME = BENCHMARK.name


def train_one(name, num_experts, args, splits, work: Path) -> tuple[tf.keras.Model, dict]:
    tf.keras.utils.set_random_seed(args.seed)
    model = zoo.build(
        "ebnet_small", num_experts=num_experts, form="signed"
    )  # the record: ours + Bop
    x, y = data.preprocess(splits.x_train), splits.y_train
    x_test, y_test = data.preprocess(splits.x_test), splits.y_test
    steps = -(-len(x) // args.batch_size)
    training.compile_model(model, steps_per_epoch=steps, epochs=args.epochs)
    log = harness.step_timer(eval_data=(x_test, y_test), verbose=True)
    callbacks = [log]
    if num_experts > 1:
        callbacks.insert(0, ExpertExpansion(args.single_epochs))
    print(f"{name}: {model.count_params():,} parameters", flush=True)
    model.fit(x, y, batch_size=args.batch_size, epochs=args.epochs, verbose=0, callbacks=callbacks)
    atomic.write_with(work / f"{name}.keras", lambda tmp: model.save(tmp))
    history = [
        {
            "epoch": e["epoch"],
            "train_loss": e["loss"],
            "train_accuracy": e["accuracy"],
            "test_accuracy": e["test_accuracy"],
            "seconds": round(e["seconds"], 2),
        }
        for e in log.epochs
    ]
    return model, {
        "num_experts": num_experts,
        "parameters": int(model.count_params()),
        "history": history,
        "final_test_accuracy": history[-1]["test_accuracy"],
        "train_seconds": round(sum(r["seconds"] for r in history), 1),
        "model_file": str(work / f"{name}.keras"),
    }


def _step_fn(model):
    opt = tf.keras.optimizers.legacy.SGD(0.0)  # the step's cost, not its effect

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(model(x, training=True)))
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    return step


def interleaved_ms(fns: dict, x, rounds: int) -> dict[str, dict]:
    """Wall and process-CPU ms per training step, one step of each fn per round.

    Process CPU time (all of TF's threads) is the robust figure on a shared machine.
    """
    calls = {k: (lambda fn=fn: fn(x).numpy()) for k, fn in fns.items()}
    return {k: t.summary() for k, t in harness.interleaved(calls, rounds=rounds).items()}


def _ratios(times: dict[str, dict], base: str, suffix: str = "") -> None:
    """Add CPU and wall ratios (of the medians) against `times[base]` to every entry."""
    ref = times[base]
    for t in times.values():
        t[f"ratio_cpu{suffix}"] = round(t["cpu_median_ms"] / ref["cpu_median_ms"], 3)
        t[f"ratio_wall{suffix}"] = round(t["wall_median_ms"] / ref["wall_median_ms"], 3)


def layer_step_overhead(rounds: int, batch: int, groups: int) -> dict:
    """One binary conv layer, 14×14×64 → 64, 3×3, batch `batch`: forward + backward.

    Ratios are against `QuantConv2D` (sign inputs and weights, pad 1) and
    against `EBConv2D(num_experts=1)` (the same code path without a gate).
    """
    shape = (14, 14, 64)

    def wrap(layer):
        inputs = tf.keras.Input(shape)
        return tf.keras.Model(inputs, layer(inputs))

    models = {
        "quantconv2d": wrap(
            lq.layers.QuantConv2D(
                64,
                3,
                padding="same",
                groups=groups,
                use_bias=False,
                pad_values=1.0,
                input_quantizer="ste_sign",
                kernel_quantizer="ste_sign",
            )  # fmt: skip
        ),
        "ebconv_n1": wrap(EBConv2D(64, 3, groups=groups, num_experts=1)),
        "ebconv_n4_partition": wrap(EBConv2D(64, 3, groups=groups, num_experts=4)),
        "ebconv_n4_grouped": wrap(
            EBConv2D(64, 3, groups=groups, num_experts=4, implementation="grouped")
        ),
    }
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(batch, *shape)).astype(np.float32))
    times = interleaved_ms({k: _step_fn(m) for k, m in models.items()}, x, rounds)
    for base_name in ("quantconv2d", "ebconv_n1"):
        _ratios(times, base_name, f"_vs_{base_name}")
    return {"shape": [batch, *shape], "filters": 64, "kernel": 3, "groups": groups, "times": times}


def model_step_overhead(models: dict, x, rounds: int) -> dict:
    times = interleaved_ms({k: _step_fn(m) for k, m in models.items()}, x, rounds)
    _ratios(times, "single_expert")
    return {"batch": int(x.shape[0]), "times": times}


def plot(record: harness.Recorder, result: dict) -> None:
    fig, axes = harness.figure(3, size=(16, 4.5))
    ax = axes[0]
    harness.curves(
        ax,
        {
            name: (
                [r["epoch"] for r in run["history"]],
                [r["test_accuracy"] for r in run["history"]],
            )
            for name, run in result["runs"].items()
        },
        xlabel="epoch",
        ylabel="test accuracy",
        title="Fashion-MNIST test accuracy",
    )
    harness.reference_line(
        ax,
        result["config"]["single_epochs"] + 0.5,
        "expansion",
        vertical=True,
        color="grey",
        ls=":",
    )

    ax = axes[1]
    usage = result["expert_usage"]
    names = list(usage)
    n_exp = len(next(iter(usage.values())))
    harness.bars(
        ax,
        [n.replace("_block1_ebconv", "/") for n in names],
        {f"expert {e}": [usage[n][e] / max(sum(usage[n]), 1) for n in names] for e in range(n_exp)},
        ylabel="share of test images",
        title="gate: expert usage per EBConv layer (test set)",
    )
    ax.tick_params(axis="x", rotation=30, labelsize=8)

    ax = axes[2]
    labels, ratios = [], []
    for case in ("layer", "layer_grouped"):
        for k, v in result["step_overhead"][case]["times"].items():
            labels.append(f"{case} {k} (vs QuantConv2D)")
            ratios.append(v["ratio_cpu_vs_quantconv2d"])
    for k, v in result["step_overhead"]["model"]["times"].items():
        labels.append(f"model {k} (vs single expert)")
        ratios.append(v["ratio_cpu"])
    harness.bars(
        ax,
        labels,
        {"ratio": ratios},
        horizontal=True,
        colors="tab:purple",
        log=True,
        xlabel="training-step CPU time ratio (vs QuantConv2D / single-expert)",
        title="training-step overhead",
    )
    ax.tick_params(axis="y", labelsize=7)
    harness.reference_line(ax, 1.3, "goal 1.3×", vertical=True)
    record.write_png(NAME, fig, dpi=100)


def main(argv: list[str] | None = None) -> int:
    p = harness.argument_parser(BENCHMARK, __doc__)
    harness.data_options(p, limit_test=None, limit_train=10000, epochs=6, batch_size=128)
    p.add_argument("--single-epochs", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rounds", type=int, default=15, help="timing rounds for the step overhead")
    p.add_argument("--work", type=Path, default=Path("runs/ebconv_training"))
    p.add_argument(
        "--reuse-training",
        action="store_true",
        help="load the models a previous run saved in --work and that run's training records "
        "from the results JSON; re-measure only the expert usage and the step overhead",
    )
    args = p.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)

    record = harness.Recorder(BENCHMARK, argv, args.results_dir)
    splits = harness.fashion_mnist(limit_train=args.limit_train, limit_test=args.limit_test)
    start = time.perf_counter()
    previous = None
    if args.reuse_training:
        previous = json.loads(record.path(NAME).read_text())
        ebnet = tf.keras.models.load_model(args.work / "ebnet_small_4experts.keras")
        single = tf.keras.models.load_model(args.work / "ebnet_small_single_expert.keras")
        ebnet_run = previous["runs"]["ebnet_small_4experts"]
        single_run = previous["runs"]["ebnet_small_single_expert"]
        for key in ("limit_train", "epochs", "single_epochs", "batch_size", "seed"):
            value = previous["config"].get(key, previous["data"]["train_images"])
            setattr(args, key, value)
    else:
        ebnet, ebnet_run = train_one("ebnet_small_4experts", 4, args, splits, args.work)
        single, single_run = train_one("ebnet_small_single_expert", 1, args, splits, args.work)
    x_test = data.preprocess(splits.x_test)
    usage = expert_usage(ebnet, x_test)
    print("expert usage:", {k: v.tolist() for k, v in usage.items()}, flush=True)
    x_step = tf.constant(data.preprocess(splits.x_train[: args.batch_size]))
    overhead = {
        "layer": layer_step_overhead(args.rounds, args.batch_size, groups=1),
        "layer_grouped": layer_step_overhead(args.rounds, args.batch_size, groups=2),
        "model": model_step_overhead(
            {"single_expert": single, "ebnet_4experts": ebnet}, x_step, args.rounds
        ),
    }
    print("step overhead:", overhead, flush=True)
    result = {
        "data": {
            "dataset": "fashion_mnist",
            "source": splits.source,
            "train_images": int(len(splits.x_train)),
            "test_images": int(len(splits.x_test)),
        },
        "config": {
            "epochs": args.epochs,
            "single_epochs": args.single_epochs,
            "batch_size": args.batch_size,
            "seed": args.seed,
            "optimizer": "Bop (expert kernels) + Adam 1e-3 cosine (gate, α, BN, float layers)",
            "recipe": (
                f"EBNet: {args.single_epochs} epochs single expert (gate forced to expert 0), "
                f"then expansion (expert 0 copied to all) and {args.epochs - args.single_epochs} "
                f"epochs with the gate; single-expert twin: {args.epochs} epochs"
            ),
        },
        "runs": {"ebnet_small_4experts": ebnet_run, "ebnet_small_single_expert": single_run},
        "expert_usage": {k: v.tolist() for k, v in usage.items()},
        "step_overhead": overhead,
        "total_seconds": round(time.perf_counter() - start, 1),
    }
    if previous is not None:
        # Records before the harness spelled the load key load_average_1_5_15_min.
        keys = ("date", "command", "load_average", "load_average_1_5_15_min")
        result["training_from"] = {k: previous[k] for k in keys if k in previous}
        result["training_from"].update(previous.get("training_from") or {})
    record.write_json(NAME, result)
    plot(record, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
