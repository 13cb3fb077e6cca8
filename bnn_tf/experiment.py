"""The one way to train a zoo model from a `TrainConfig`: `train(config, out_dir)`.

This is what `bnn-tf train` runs, and the top floor of the library: the only
module besides the CLI and the demo that imports the zoo (`bnn_tf.models`).
It composes the floors below:

1. `training.open_run`: validate, and reuse a finished run / refuse a mixed one;
2. `training.load_train_data`: data and pipelines;
3. the optimizer (`choose_optimizer`): `--optimizer` if given, else the
   recipe's, else the paper's (`bnn_tf.models.info(name).training`), else the
   library default (Bop + Adam); recorded in `run.json` and the summary with why;
4. `recipes.run`: a single-stage run is the one-stage recipe trained in the
   run folder itself; `--recipe` runs its stages (and teacher) in sub-folders;
5. evaluate, save `model.keras` and `train_summary.json`.

Files, resume and refusals are described in `bnn_tf.training` and
`bnn_tf.recipes`; this module adds no file of its own.
"""

from __future__ import annotations

import inspect
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import tensorflow as tf

from bnn_tf import atomic, budget, data, optimizers, precision, recipes, training
from bnn_tf import models as zoo
from bnn_tf.errors import ConfigError, ResumeMismatchError
from bnn_tf.training import TrainConfig

# Where an optimizer choice came from (`OptimizerChoice.source`).
FROM_FLAG, FROM_RECIPE, FROM_PAPER, FROM_LIBRARY = "--optimizer", "recipe", "paper", "library"
LIBRARY_WHY = "the library default: Bop on binary kernels + Adam on the rest (docs/training.md)"


@dataclass(frozen=True)
class OptimizerChoice:
    """The optimizer a run uses, where that choice came from and why.

    Attributes:
        config: what `optimizers.make_optimizer` builds.
        source: `"--optimizer"`, `"recipe"`, `"paper"` (the model's registered
            training) or `"library"` (Bop + Adam).
        why: one line for people reading `run.json` or `bnn-tf models`.
    """

    config: optimizers.OptimizerConfig
    source: str
    why: str

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "why": self.why, "config": self.config.to_dict()}

    def describe(self) -> str:
        """`adam, lr 0.001 (paper)`: the short form `bnn-tf models` prints."""
        c = self.config
        parts = [c.name, f"lr {c.learning_rate:g}"]
        if c.name != "adam":
            threshold, gamma = c.resolved()
            parts += [f"τ {threshold:g}", f"γ {gamma:g}"]
        return f"{', '.join(parts)} ({self.source})"


# TrainConfig field → OptimizerConfig field it sets, for overriding a paper's value.
_OVERRIDES = {"learning_rate": "learning_rate", "bop_threshold": "threshold", "bop_gamma": "gamma"}


def paper_training(model: str) -> tuple[optimizers.OptimizerConfig, str] | None:
    """The model's registered training (`zoo.info(model).training`) as a config and its why.

    None if the model registers none (the library default applies).

    Raises:
        ConfigError: the registered dict has a key that is not an `OptimizerConfig` field.
    """
    entry = zoo.info(model)
    spec = dict(entry.training)
    why = str(spec.pop("why", "") or entry.paper or f"registered with {model}")
    if not spec:
        return None
    known = {f.name for f in fields(optimizers.OptimizerConfig)}
    unknown = sorted(set(spec) - known)
    if unknown:
        raise ConfigError(
            f"model {model!r} registers training keys {unknown} that are not OptimizerConfig "
            f"fields ({', '.join(sorted(known))}). Fix: its @register(training=...) in models/."
        )
    config = optimizers.OptimizerConfig.from_dict(spec)
    config.validate()
    return config, why


def choose_optimizer(config: TrainConfig, recipe: recipes.Recipe | None = None) -> OptimizerChoice:
    """Which optimizer trains `config.model`, and why.

    In order: `config.optimizer` (`--optimizer`); the recipe's optimizer when a
    recipe is given; the paper's training the model registers; the library
    default (Bop + Adam with the TrainConfig's τ, γ and learning rate).

    With the paper's training, a TrainConfig value that is set (`--learning-rate`,
    `--bop-threshold`, `--bop-gamma`, `--bop-gamma-schedule`) overrides the
    paper's, also one equal to the library's default; to train with all of the
    library's values instead, pass `--optimizer`.
    """
    if config.optimizer is not None:
        return OptimizerChoice(
            config.optimizer_config(config.optimizer), FROM_FLAG, "given with --optimizer"
        )
    if recipe is not None:
        return OptimizerChoice(
            config.optimizer_config(recipe.optimizer),
            FROM_RECIPE,
            f"recipe {recipe.name} trains its binary stages with {recipe.optimizer}",
        )
    paper = paper_training(config.model)
    if paper is None:
        return OptimizerChoice(config.optimizer_config("bop"), FROM_LIBRARY, LIBRARY_WHY)
    base, why = paper
    changed: dict[str, Any] = {}
    for ours, theirs in _OVERRIDES.items():
        value = getattr(config, ours)
        if value is not None and (theirs == "learning_rate" or base.name == "bop"):
            changed[theirs] = value
    if config.bop_gamma_schedule is not None:
        changed["gamma_schedule"] = optimizers.ScheduleConfig(config.bop_gamma_schedule)
    if changed:
        base = replace(base, **changed)
        why += f"; overridden by the run's {', '.join(sorted(changed))}"
    return OptimizerChoice(base, FROM_PAPER, why)


NO_BINARY_KERNELS = "no binary kernels, so Adam trains everything"


def default_training(model: str) -> OptimizerChoice:
    """What `bnn-tf train MODEL` trains `model` with when given no optimizer flags.

    Read from the registry without building the model: a model registered
    with `lce_binary=False` (float twins, k-bit and ternary models) has no
    1-bit kernels for Bop, so Adam trains it (`train` decides from the built model).
    """
    choice = choose_optimizer(TrainConfig(model=model))
    if not zoo.info(model).lce_binary and choice.config.name != "adam":
        choice = replace(
            choice,
            config=replace(choice.config, name="adam"),
            why=f"{choice.why}; {NO_BINARY_KERNELS}",
        )
    return choice


def build_and_compile(
    model: str,
    *,
    steps_per_epoch: int,
    epochs: int,
    **build_kwargs: Any,
) -> tf.keras.Model:
    """The zoo model `model`, built and compiled as `bnn-tf train MODEL` does by default.

    The Python route to a model's registered (paper's) training: the optimizer
    `default_training` names and the weight clip it implies (`zoo_model_kwargs`).
    `training.compile_model(zoo.build(name))` instead compiles with the library
    default (Bop + Adam, or Adam for a latent-weight build), not the paper's
    learning rate and schedule.
    `steps_per_epoch` and `epochs` span the learning-rate and γ schedules;
    `build_kwargs` go to the factory (`input_shape`, `num_classes`, options).
    Schedules the layers declare are callbacks: pass
    `callbacks.standard_callbacks(model, epochs)` to `fit`.
    """
    choice = default_training(model)
    kwargs = zoo_model_kwargs(model, choice.config.name, build_kwargs)
    built = zoo.build(model, **kwargs)
    return training.compile_model(
        built,
        optimizer_config=training.optimizer_for_model(built, choice.config),
        steps_per_epoch=steps_per_epoch,
        epochs=epochs,
    )


def zoo_model_kwargs(model_name: str, optimizer: str, given: dict) -> dict:
    """Model arguments implied by the optimizer: a weight clip only for latent-weight Adam.

    Bop keeps binary weights at ±1 (no clip needed; `check_setup` warns about
    one), while Adam on latent weights needs the BinaryConnect clip.
    """
    kwargs = dict(given)
    params = inspect.signature(zoo.info(model_name).factory).parameters
    if "kernel_constraint" in params and "kernel_constraint" not in kwargs:
        kwargs["kernel_constraint"] = "weight_clip" if optimizer == "adam" else None
    return kwargs


def _check_same_optimizer(out: os.PathLike[str], choice: OptimizerChoice) -> None:
    # The config may be unchanged while the paper's registered training changed
    # between an interruption and its resume: the checkpoint's optimizer would not match.
    previous = (training.read_run_file(out) or {}).get("optimizer")
    if previous is not None and previous.get("config") != choice.config.to_dict():
        raise ResumeMismatchError(
            f"{out} holds an unfinished run trained with {previous.get('config')}, but this run "
            f"resolves to {choice.config.to_dict()} ({choice.source}). Nothing was overwritten. "
            "Fix: pass the run's optimizer settings explicitly, or choose another --out."
        )


def train(
    config: TrainConfig,
    out_dir: str | os.PathLike[str],
    *,
    data_dir: str | os.PathLike[str] | None = None,
    splits: data.Splits | None = None,
    verbose: int | str = "auto",
    log: Callable[[str], None] = print,
) -> dict:
    """Build the zoo model `config.model`, train it (its recipe, if any), evaluate, save.

    Without `config.recipe` the run trains in `out_dir` itself (model.keras,
    history.json, curves.png, run.json, backup/ while unfinished); with one,
    each stage also gets its folder (`bnn_tf.recipes`). Rerunning resumes an
    interrupted run, reuses a finished one and refuses other settings.

    Returns:
        A summary dict (also written to `out_dir/train_summary.json`): test
        accuracy, epochs, wall time, the optimizer used and why, the paths written.
    """
    out, finished = training.open_run(config, out_dir, log=log)
    if finished is not None:
        return finished
    flat = config.recipe is None
    recipe = recipes.get(config.recipe or "single_stage")
    choice = choose_optimizer(config, None if flat else recipe)
    note = "" if flat else f"; recipe {recipe.name}"
    td = training.load_train_data(config, data_dir=data_dir, splits=splits, log=log, note=note)
    splits = td.splits
    kwargs = zoo_model_kwargs(config.model, choice.config.name, config.model_kwargs)
    shape = {"input_shape": splits.input_shape, "num_classes": splits.num_classes}

    def build() -> tf.keras.Model:
        # Same seed for every stage: a resumed run rebuilds the same initial model.
        tf.keras.utils.set_random_seed(config.seed)
        return precision.with_precision(zoo.build(config.model, **shape, **kwargs), low)

    if config.precision is None:
        # bfloat16 is only chosen where it is native, so there is nothing to warn about.
        low = precision.default_precision()
        log(precision.describe_default(low))
    else:
        low = precision.check_precision(config.precision)
        slow = precision.emulation_warning(low)
        if slow:
            log(slow)

    # Built now to see what Bop would train; a flat run trains this very model.
    first = [build()]
    used = training.optimizer_for_model(first[0], choice.config)
    if used != choice.config:
        choice = replace(choice, config=used, why=f"{choice.why}; {NO_BINARY_KERNELS}")
    if not flat:
        first.clear()
    if choice.source != FROM_FLAG:
        log(f"optimizer: {choice.describe()}: {choice.why}")

    teacher = None
    if recipe.kd is not None:
        twin = zoo.info(config.model).float_twin
        if twin is None:
            raise ConfigError(
                f"recipe {recipe.name} needs a float teacher but {config.model} has no float "
                "twin in the zoo. Fix: choose a recipe without _kd, or a model with a float twin."
            )
        twin_kwargs = {k: v for k, v in kwargs.items() if k != "kernel_constraint"}
        teacher = lambda: zoo.build(twin, **shape, **twin_kwargs)  # noqa: E731
    _check_same_optimizer(out, choice)
    start = time.perf_counter()
    epochs, extra_callbacks, plan = config.epochs, [], None
    if config.time_budget is not None:
        plan, stopper, before = _plan_budget(config, out, recipe, choice, build, teacher, td, log)
        epochs, extra_callbacks = plan.epochs, [stopper]
    extra = {"optimizer": choice.to_dict()}
    if plan is not None:
        extra["time_budget"] = {**plan.to_dict(), "replans": stopper.replans}
    training.write_run_file(out, config, splits, extra=extra)
    model, record = recipes.run(
        recipe,
        lambda: first.pop() if first else build(),
        td.train,
        epochs=epochs,
        out_dir=out,
        steps_per_epoch=td.steps_per_epoch,
        validation_data=td.validation,
        optimizer_config=choice.config,
        teacher=teacher,
        verbose=verbose,
        log=log,
        jit_compile=config.jit_compile,
        flat=flat,
        callbacks=extra_callbacks,
    )
    # What is tested, saved and converted computes in float32 (the device's arithmetic).
    exported = precision.to_float32(model)
    if not flat or exported is not model:
        # The last stage may have trained through a Distiller: compile the student itself.
        exported.compile(loss=training.loss_fn(), metrics=["accuracy"])
    _, test_acc = exported.evaluate(td.test, verbose=0)
    # A flat float32 run's stage already saved model.keras, with its optimizer.
    if not flat or exported is not model:
        atomic.write_with(out / training.MODEL_FILE, lambda tmp: exported.save(tmp))
    summary = {
        "model": config.model,
        "dataset": splits.name,
        "data_source": splits.source,
        "recipe": config.recipe,
        "optimizer": choice.config.name,
        "optimizer_choice": choice.to_dict(),
        "precision": low,
        "epochs": epochs,
        "stage_epochs": record["stage_epochs"],
        "test_accuracy": float(test_acc),
        "validation_accuracy": _last_validation_accuracy(out),
        "data": splits.description.splits,
        "train_images": td.train_images,
        "seconds_this_run": round(time.perf_counter() - start, 1),
        "seconds_total": round(sum(s.get("seconds_total", 0.0) for s in record["stages"]), 1),
        "stages": record["stages"],
        "files": {
            "model": str(out / training.MODEL_FILE),
            "history": str(out / training.HISTORY_FILE),
            "curves": str(out / training.CURVES_FILE),
        },
    }
    if plan is not None:
        took = time.perf_counter() - start + before
        summary["time_budget"] = {
            **plan.to_dict(),
            "actual_seconds": round(took, 1),
            "stopped_at_deadline": stopper.stopped,
            "replans": stopper.replans,
            "epochs_trained": _epochs_trained(out),
        }
        log(
            f"time budget: planned {plan.planned_seconds / 60:.1f} of {plan.minutes:g} min, "
            f"took {took / 60:.1f} min"
            + (f", re-planned {len(stopper.replans)}×" if stopper.replans else "")
            + ("; stopped at the deadline before the planned epochs" if stopper.stopped else "")
        )
    atomic.write_json(out / training.SUMMARY_FILE, summary)
    return summary


def _plan_budget(
    config: TrainConfig,
    out: Path,
    recipe: recipes.Recipe,
    choice: OptimizerChoice,
    build: Callable[[], tf.keras.Model],
    teacher: Callable[[], tf.keras.Model] | None,
    td: training.TrainData,
    log: Callable[[str], None],
) -> tuple[budget.Plan, budget.StopAtDeadline, float]:
    """Measure and plan a `--time-budget` run, or take the plan of the run being resumed.

    Returns:
        The plan, the callback that holds its deadline, and the seconds of the
        budget that earlier sessions of this run spent (0 for a new run).
    """
    start = time.perf_counter()
    # open_run already refused a run.json with another budget: a saved plan is this run's.
    previous = (training.read_run_file(out) or {}).get("time_budget")
    if previous is not None:
        plan = budget.Plan.from_dict(previous)
        trained = budget.seconds_trained(out)
        log(f"time budget: resuming with the plan in {out} ({trained / 60:.1f} min trained)")
        before = plan.measure_seconds + trained
        deadline = start + 60 * plan.minutes - before - plan.final_seconds
        stopper = _budget_stopper(deadline, plan, out, recipe, log, previous.get("replans", []))
        return plan, stopper, before

    log(f"time budget: {config.time_budget:g} min; measuring the step time…")

    def compiler(config: optimizers.OptimizerConfig) -> Callable[[tf.keras.Model], object]:
        # A step costs the same whatever length its schedules are built for.
        return lambda model: training.compile_model(
            model, optimizer_config=config, steps_per_epoch=td.steps_per_epoch, epochs=1
        )

    student = budget.measure_model(build, compiler(choice.config), td.train, td.validation)
    teacher_timing = None
    if teacher is not None:
        adam = compiler(replace(choice.config, name="adam"))
        teacher_timing = budget.measure_model(teacher, adam, td.train, td.validation)
    d = td.splits.description.splits
    plan = budget.plan(
        config.time_budget,
        student=student,
        steps_per_epoch=td.steps_per_epoch,
        validation_images=d["validation"],
        test_images=d["test"],
        stages=len(recipe.stages),
        measure_seconds=time.perf_counter() - start,
        teacher=teacher_timing,
        teacher_epochs=recipe.kd.teacher_epochs if recipe.kd else 0,
        distilled_stages=1.0 if recipe.kd else 0.0,
    )
    log(f"time budget: {plan.describe()}")
    deadline = start + 60 * plan.minutes - plan.final_seconds
    return plan, _budget_stopper(deadline, plan, out, recipe, log, []), 0.0


def _budget_stopper(
    deadline: float,
    plan: budget.Plan,
    out: Path,
    recipe: recipes.Recipe,
    log: Callable[[str], None],
    replans: list[dict],
) -> budget.StopAtDeadline:
    """The deadline keeper; a single-stage run re-plans too, saving each change in run.json."""
    if len(recipe.stages) > 1:
        return budget.StopAtDeadline(deadline)
    last = replans[-1]["stretch"] if replans else {"epochs": plan.epochs, "planned": plan.epochs}
    stopper = budget.StopAtDeadline(deadline, stretch=budget.Stretch(**last))
    stopper.replans = list(replans)

    def save(record: dict) -> None:
        run = training.read_run_file(out) or {}
        run["time_budget"] = {**plan.to_dict(), "replans": stopper.replans}
        atomic.write_json(out / training.RUN_FILE, run)
        log(
            f"time budget: epochs take up to {record['epoch_seconds']:.0f} s (planned "
            f"{plan.epoch_seconds:.0f} s): {record['epochs']} epochs instead of "
            f"{record['from_epochs']}, the schedules now end there"
        )

    stopper.on_replan = save
    return stopper


def _epochs_trained(out: Path) -> int:
    path = out / training.HISTORY_FILE
    return len(json.loads(path.read_text())) if path.exists() else 0


def _last_validation_accuracy(out: Path) -> float | None:
    path = out / training.HISTORY_FILE
    records = json.loads(path.read_text()) if path.exists() else []
    return records[-1].get("val_accuracy") if records else None


__all__ = [
    "OptimizerChoice",
    "TrainConfig",
    "choose_optimizer",
    "default_training",
    "paper_training",
    "train",
    "zoo_model_kwargs",
]
