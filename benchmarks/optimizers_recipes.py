"""Benchmark: Adam-on-latent-weights vs Bop vs Bop2ndOrder; single-stage vs two-stage (+KD).

Same model (bnn_small), same data, same student epoch budget for every run.
Every run is a `bnn_tf.recipes.run` in its own folder under `--work`, so an
interrupted benchmark resumes where it stopped. Writes
`benchmarks/results/optimizers_recipes.json` and `.png`.

    nice -n 10 .venv/bin/python benchmarks/optimizers_recipes.py \\
        --epochs 3 --limit-train 10000 --seeds 0 1

A seeded `--val-split` of the training images (the same for every run) is
evaluated after every epoch, to draw curves and to see *when* the best
accuracy arrives. The test set is used once per run, after the last epoch,
for the reported `test_accuracy`; nothing is selected on it.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import harness

# isort: off
import bnn_tf  # noqa: F401  selects legacy Keras before TensorFlow is imported

# isort: on
import numpy as np
import tensorflow as tf

from bnn_tf import data, optimizers, recipes
from bnn_tf import models as zoo

BENCHMARK = harness.Benchmark(
    name="optimizers_recipes",
    description="Adam (latent) vs Bop vs Bop2ndOrder; single-stage vs two-stage (+KD), bnn_small",
    default_args=["--epochs", "3", "--limit-train", "6000", "--limit-test", "2000",
                  "--seeds", "0", "1"],
    smoke_args=["--epochs", "2", "--limit-train", "256", "--limit-test", "256",
                "--teacher-epochs", "1", "--runs", "bop", "two_stage_kd",
                "--work", "{tmp}/work", "--fresh"],
)  # fmt: skip

# name → (recipe, optimizer config, kernel constraint of the student)
RUNS = {
    "adam_latent": ("single_stage", optimizers.OptimizerConfig(name="adam"), "weight_clip"),
    "bop": ("single_stage", optimizers.OptimizerConfig(name="bop"), None),
    "bop2": (
        "single_stage",
        optimizers.OptimizerConfig(name="bop2", threshold=1e-6, gamma=1e-3, sigma=1e-2),
        None,
    ),
    "bop2_paper": (
        "single_stage",
        optimizers.OptimizerConfig(name="bop2", threshold=1e-6, gamma=1e-6, sigma=1e-2),
        None,
    ),
    # τ above Bop2ndOrder's cold-start ratio γ/√σ = 1e-2: on the first step m = γg and
    # v = σg², so every weight whose gradient agrees with it would flip (see docs/training.md).
    "bop2_tau2e-2": (
        "single_stage",
        optimizers.OptimizerConfig(name="bop2", threshold=2e-2, gamma=1e-3, sigma=1e-2),
        None,
    ),
    "two_stage": ("two_stage", optimizers.OptimizerConfig(name="bop"), None),
    "two_stage_kd": ("two_stage_kd", optimizers.OptimizerConfig(name="bop"), None),
}


def main(argv: list[str] | None = None) -> int:
    p = harness.argument_parser(BENCHMARK, __doc__)
    harness.data_options(p, epochs=3, limit_train=10000, limit_test=2000, batch_size=128)
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument(
        "--val-split", type=float, default=0.1,
        help="fraction of the training images held out for the per-epoch curves (0.1)",
    )  # fmt: skip
    p.add_argument("--teacher-epochs", type=int, default=3)
    p.add_argument("--runs", nargs="+", default=list(RUNS), choices=list(RUNS))
    p.add_argument("--fresh", action="store_true", help="drop runs recorded by earlier calls")
    p.add_argument("--work", default="runs/bench_optimizers_recipes")
    p.add_argument("--name", default="optimizers_recipes")
    args = p.parse_args(argv)

    record = harness.Recorder(BENCHMARK, argv, args.results_dir)
    splits = harness.fashion_mnist(limit_train=args.limit_train, limit_test=args.limit_test)
    # One seeded split for every run and seed, so the curves compare like with like.
    order = np.random.default_rng(0).permutation(len(splits.x_train))
    n_val = max(1, round(len(order) * args.val_split))
    x, y = splits.x_train[order[n_val:]], splits.y_train[order[n_val:]]
    validation = data.make_dataset(
        splits.x_train[order[:n_val]], splits.y_train[order[:n_val]], batch_size=512
    )
    x_test, y_test = data.preprocess(splits.x_test), splits.y_test
    steps = -(-len(x) // args.batch_size)
    shape = {"input_shape": splits.input_shape, "num_classes": splits.num_classes}
    out_json = record.path(args.name)
    result = {
        "command": record.command,
        "conditions": {
            "model": "bnn_small",
            "dataset": f"Fashion-MNIST: first {len(splits.x_train)} training images ({len(x)} "
            f"trained on, a seeded {n_val} held out as validation, evaluated after every epoch), "
            f"first {len(splits.x_test)} test images (evaluated once, after the last epoch)",
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "seeds": args.seeds,
            "teacher": f"bnn_small_float, Adam, {args.teacher_epochs} epochs (not counted in the student budget)",
            "note": "shared 2-core machine (other jobs running): wall times are indicative only",
        },
        "runs": [],
    }
    if (
        out_json.exists() and not args.fresh
    ):  # add to an earlier call's runs made under the same conditions
        previous = json.loads(out_json.read_text())
        same = {k: v for k, v in previous.get("conditions", {}).items() if k != "seeds"}
        if same == {k: v for k, v in result["conditions"].items() if k != "seeds"}:
            result["runs"] = previous["runs"]
            seeds = sorted({*previous["conditions"]["seeds"], *args.seeds})
            result["conditions"]["seeds"] = seeds
            result["command"] = f"{previous['command']} ; then: {result['command']}"

    for seed in args.seeds:
        train = data.make_dataset(x, y, batch_size=args.batch_size, training=True, seed=seed)
        teacher = None
        for name in args.runs:
            recipe_name, opt, constraint = RUNS[name]
            recipe = recipes.get(recipe_name)
            if recipe.kd is not None and teacher is None:
                teacher = _teacher(args, seed, shape, train, validation, steps)
            recipe = recipes.Recipe(
                recipe.name,
                recipe.stages,
                optimizer=opt.name,
                kd=recipe.kd,
            )

            def build(constraint=constraint, seed=seed):
                tf.keras.utils.set_random_seed(seed)
                return zoo.build("bnn_small", kernel_constraint=constraint, **shape)

            start = time.perf_counter()
            model, run_record = _run(
                recipe, build, train, validation, Path(args.work) / f"{name}_s{seed}",
                epochs=args.epochs, steps=steps, opt=opt, teacher=teacher,
            )  # fmt: skip
            history = json.loads((Path(args.work) / f"{name}_s{seed}" / "history.json").read_text())
            curve = [r.get("val_accuracy") for r in history]
            logits = model.predict(x_test, batch_size=512, verbose=0)
            test_accuracy = float((logits.argmax(-1) == y_test).mean())
            entry = {
                "run": name,
                "seed": seed,
                "recipe": recipe.name,
                "optimizer": opt.to_dict(),
                "stage_epochs": run_record["stage_epochs"],
                "test_accuracy": test_accuracy,
                "validation_accuracy": curve[-1],
                "best_validation_accuracy": max(curve),
                "best_epoch": int(np.argmax(curve)) + 1,
                "validation_accuracy_per_epoch": curve,
                "flip_ratio_per_epoch": [r.get("flip_ratio") for r in history],
                # What the optimizer logged in the last epoch (γ, τ, σ, learning rate).
                "hyperparameters_logged": {
                    k: v for k, v in history[-1].items() if k.startswith(("bop", "adam_"))
                },
                "train_seconds": round(
                    sum(
                        s.get("seconds_total", 0.0)
                        for s in run_record["stages"]
                        if s["stage"] != "teacher"
                    ),
                    1,
                ),
                "wall_seconds_this_call": round(time.perf_counter() - start, 1),
            }
            print(
                f"{name} seed {seed}: test {test_accuracy:.4f}, validation curve {curve}",
                flush=True,
            )
            result["runs"] = [r for r in result["runs"] if (r["run"], r["seed"]) != (name, seed)]
            result["runs"].append(entry)
            result["summary"] = _summary(result["runs"])
            record.write_json(args.name, result)
            _plot(record, args.name, result)
            del model
            tf.keras.backend.clear_session()
    print(json.dumps(result["summary"], indent=2))
    return 0


def _teacher(args, seed, shape, train, validation, steps) -> tf.keras.Model:
    def build():
        tf.keras.utils.set_random_seed(seed)
        return zoo.build("bnn_small_float", **shape)

    teacher, _ = _run(
        "single_stage", build, train, validation, Path(args.work) / f"teacher_s{seed}",
        epochs=args.teacher_epochs, steps=steps, opt=optimizers.OptimizerConfig(name="adam"),
    )  # fmt: skip
    return teacher


def _run(recipe, build, train, validation, out_dir: Path, *, epochs, steps, opt, teacher=None):
    return recipes.run(
        recipe,
        build,
        train,
        epochs=epochs,
        out_dir=out_dir,
        steps_per_epoch=steps,
        validation_data=validation,
        optimizer_config=opt,
        teacher=teacher,
        verbose=0,
        log=lambda m: print(m, flush=True),
    )


def _summary(runs: list[dict]) -> dict:
    return {
        name: {
            "seeds": len(rs),
            "test_accuracy_mean": float(np.mean([r["test_accuracy"] for r in rs])),
            "test_accuracy_min": float(np.min([r["test_accuracy"] for r in rs])),
            "test_accuracy_max": float(np.max([r["test_accuracy"] for r in rs])),
            "best_epoch": [r["best_epoch"] for r in rs],
            "train_seconds_mean": float(np.mean([r["train_seconds"] for r in rs])),
        }
        for name, rs in harness.group_by(runs, "run").items()
    }


def _plot(record: harness.Recorder, name: str, result: dict) -> None:
    fig, axes = harness.figure(2, size=(11, 4))
    labels = {id(r): f"{r['run']} (seed {r['seed']})" for r in result["runs"]}
    harness.curves(
        axes[0],
        {
            labels[id(r)]: (range(1, len(r["validation_accuracy_per_epoch"]) + 1),
                            r["validation_accuracy_per_epoch"])
            for r in result["runs"]
        },
        integer_x=True,
        title=f"bnn_small, {result['conditions']['dataset'].split(':')[1].strip().split(',')[0]}",
        xlabel="student epoch",
        ylabel="validation accuracy",
    )  # fmt: skip
    harness.curves(
        axes[1],
        {
            labels[id(r)]: (range(1, len(r["flip_ratio_per_epoch"]) + 1),
                            [f or None for f in r["flip_ratio_per_epoch"]])
            for r in result["runs"]
            if any(f is not None for f in r["flip_ratio_per_epoch"])
        },
        logy=True,
        integer_x=True,
        title="binary weights flipped per step (mean over epoch)",
        xlabel="student epoch",
    )  # fmt: skip
    record.write_png(name, fig, dpi=120)


if __name__ == "__main__":
    sys.exit(main())
