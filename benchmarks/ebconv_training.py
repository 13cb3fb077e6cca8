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

import argparse
import datetime as dt
import json
import os
import shlex
import sys
import time
from pathlib import Path

# isort: off
import bnn_tf  # noqa: F401  selects legacy Keras before TensorFlow is imported

# isort: on
import larq as lq
import numpy as np
import tensorflow as tf

from bnn_tf import atomic, data, training
from bnn_tf import models as zoo
from bnn_tf.converters.benchmarking import machine_description
from bnn_tf.methods.ebconv import EBConv2D, ExpertExpansion, expert_usage

RESULTS = Path(__file__).parent / "results"
NAME = "ebconv_training"


class EpochLog(tf.keras.callbacks.Callback):
    """Per-epoch seconds and test accuracy (evaluated outside the timed part)."""

    def __init__(self, x_test, y_test):
        super().__init__()
        self.x_test, self.y_test = x_test, y_test
        self.records: list[dict] = []
        self._start = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self._start
        _, acc = self.model.evaluate(self.x_test, self.y_test, batch_size=500, verbose=0)
        self.records.append(
            {
                "epoch": epoch + 1,
                "train_loss": float(logs["loss"]),
                "train_accuracy": float(logs["accuracy"]),
                "test_accuracy": float(acc),
                "seconds": round(seconds, 2),
            }
        )
        print(f"  epoch {epoch + 1}: {self.records[-1]}", flush=True)


def train_one(name, num_experts, args, splits, work: Path) -> tuple[tf.keras.Model, dict]:
    tf.keras.utils.set_random_seed(args.seed)
    model = zoo.build("ebnet_small", num_experts=num_experts)
    x = data.preprocess(splits.x_train[: args.limit_train])
    y = splits.y_train[: args.limit_train]
    x_test, y_test = data.preprocess(splits.x_test), splits.y_test
    steps = -(-len(x) // args.batch_size)
    training.compile_model(model, steps_per_epoch=steps, epochs=args.epochs)
    log = EpochLog(x_test, y_test)
    callbacks = [log]
    if num_experts > 1:
        callbacks.insert(0, ExpertExpansion(args.single_epochs))
    print(f"{name}: {model.count_params():,} parameters", flush=True)
    model.fit(x, y, batch_size=args.batch_size, epochs=args.epochs, verbose=0, callbacks=callbacks)
    atomic.write_with(work / f"{name}.keras", lambda tmp: model.save(tmp))
    return model, {
        "num_experts": num_experts,
        "parameters": int(model.count_params()),
        "history": log.records,
        "final_test_accuracy": log.records[-1]["test_accuracy"],
        "train_seconds": round(sum(r["seconds"] for r in log.records), 1),
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
    """Median wall and process-CPU milliseconds per call, one call of each fn per round.

    Process CPU time (all of TF's threads) is the robust figure on a shared machine.
    """
    for fn in fns.values():
        fn(x).numpy()  # trace + warm-up
        fn(x).numpy()
    wall = {k: [] for k in fns}
    cpu = {k: [] for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            w, c = time.perf_counter(), time.process_time()
            fn(x).numpy()
            cpu[k].append((time.process_time() - c) * 1e3)
            wall[k].append((time.perf_counter() - w) * 1e3)
    return {
        k: {"wall_ms": float(np.median(wall[k])), "cpu_ms": float(np.median(cpu[k]))} for k in fns
    }


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
        base = times[base_name]
        for t in times.values():
            t[f"ratio_cpu_vs_{base_name}"] = round(t["cpu_ms"] / base["cpu_ms"], 3)
            t[f"ratio_wall_vs_{base_name}"] = round(t["wall_ms"] / base["wall_ms"], 3)
    return {"shape": [batch, *shape], "filters": 64, "kernel": 3, "groups": groups, "times": times}


def model_step_overhead(models: dict, x, rounds: int) -> dict:
    times = interleaved_ms({k: _step_fn(m) for k, m in models.items()}, x, rounds)
    base = times["single_expert"]
    for t in times.values():
        t["ratio_wall"] = round(t["wall_ms"] / base["wall_ms"], 3)
        t["ratio_cpu"] = round(t["cpu_ms"] / base["cpu_ms"], 3)
    return {"batch": int(x.shape[0]), "times": times}


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    ax = axes[0]
    for name, run in result["runs"].items():
        epochs = [r["epoch"] for r in run["history"]]
        ax.plot(epochs, [r["test_accuracy"] for r in run["history"]], "-o", label=name)
    ax.axvline(result["config"]["single_epochs"] + 0.5, color="grey", ls=":", label="expansion")
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy")
    ax.set_title("Fashion-MNIST test accuracy")
    ax.grid(alpha=0.3)
    ax.legend()

    ax = axes[1]
    usage = result["expert_usage"]
    names = list(usage)
    n_exp = len(next(iter(usage.values())))
    width = 0.8 / n_exp
    for e in range(n_exp):
        shares = [usage[n][e] / max(sum(usage[n]), 1) for n in names]
        ax.bar(np.arange(len(names)) + e * width, shares, width, label=f"expert {e}")
    ax.set_xticks(np.arange(len(names)) + 0.4 - width / 2)
    ax.set_xticklabels([n.replace("_block1_ebconv", "/") for n in names], rotation=30, fontsize=8)
    ax.set_ylabel("share of test images")
    ax.set_title("gate: expert usage per EBConv layer (test set)")
    ax.legend(fontsize=8)

    ax = axes[2]
    labels, ratios = [], []
    for case in ("layer", "layer_grouped"):
        for k, v in result["step_overhead"][case]["times"].items():
            labels.append(f"{case} {k} (vs QuantConv2D)")
            ratios.append(v["ratio_cpu_vs_quantconv2d"])
    for k, v in result["step_overhead"]["model"]["times"].items():
        labels.append(f"model {k} (vs single expert)")
        ratios.append(v["ratio_cpu"])
    ax.barh(labels, ratios, color="tab:purple")
    ax.set_xscale("log")
    ax.tick_params(axis="y", labelsize=7)
    ax.axvline(1.3, color="red", ls="--", label="goal 1.3×")
    ax.set_xlabel("training-step CPU time ratio (vs QuantConv2D / single-expert)")
    ax.set_title("training-step overhead")
    ax.legend()
    fig.tight_layout()
    atomic.write_with(path, lambda tmp: fig.savefig(tmp, dpi=100, format="png"))
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--limit-train", type=int, default=10000)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--single-epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=128)
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

    splits = data.load("fashion_mnist")
    start = time.perf_counter()
    previous = None
    if args.reuse_training:
        previous = json.loads((RESULTS / f"{NAME}.json").read_text())
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
        "benchmark": NAME,
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]),
        "machine": machine_description(),
        # The 2 cores are shared: a load far above 2 means contended timings.
        "load_average_1_5_15_min": [round(v, 2) for v in os.getloadavg()],
        "data": {
            "dataset": "fashion_mnist",
            "source": splits.source,
            "train_images": int(min(args.limit_train, len(splits.x_train))),
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
        result["training_from"] = {
            k: previous.get(k) for k in ("date", "command", "load_average_1_5_15_min")
        }
        result["training_from"].update(previous.get("training_from") or {})
    RESULTS.mkdir(parents=True, exist_ok=True)
    atomic.write_json(RESULTS / f"{NAME}.json", result)
    plot(result, RESULTS / f"{NAME}.png")
    print(f"wrote {RESULTS / NAME}.json/.png", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
