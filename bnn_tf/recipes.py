"""Training recipes from the BNN literature: stages, distillation, delayed clipping.

A recipe is data (`Recipe`: its stages, optimizer and optional distillation)
plus one function that runs it on any model (`run`). A zoo model from a
`TrainConfig` goes through `bnn_tf.experiment.train`, which runs a recipe
(a plain run is the one-stage recipe, trained in the run folder itself).
This module never imports the zoo. Named recipes (`RECIPES`,
`bnn-tf train MODEL --recipe NAME`):

- `single_stage`: the model as built, trained end to end (Bop + Adam).
- `two_stage` (Real-to-Binary, Martinez et al. ICLR 2020; EBN, Bulat et al.
  ICLR 2021): stage 1 binary activations with *real* weights (Adam), stage 2
  fully binary (Bop + Adam) initialised from stage 1. Kernels enter stage 2
  as sign(w) of the stage-1 weights.
- `two_stage_kd`: `two_stage` with logit knowledge distillation from a float
  teacher (Hinton et al. 2015; `bnn_tf.distill`):
  `L = (1 − α)·CE(y, s) + α·T²·KL(softmax(t/T) ‖ softmax(s/T))`.
- `two_stage_kd_at`: plus attention transfer (Zagoruyko & Komodakis 2017;
  Real-to-Binary) at the last layer of each spatial resolution shared by
  teacher and student (`bnn_tf.distill.matching_layers`).
- `delayed_clipping` (Alizadeh et al., "An Empirical Study of Binary Neural
  Networks' Optimisation", ICLR 2019): Adam on latent weights; stage 1 without
  gradient clipping in the STE and without weight clipping, stage 2 with both
  (clip 1) and a lower BatchNorm momentum (Keras convention: the running
  statistics follow recent batches faster).

Resume: every stage trains in `out_dir/<index>_<stage>/` through
`bnn_tf.training.fit` (BackupAndRestore per epoch) and writes `stage.json`
when finished. Rerunning the same command skips finished stages, reloads the
last finished stage's weights and resumes the interrupted stage at its last
finished epoch. The teacher, when trained here, is stage 0 (`0_teacher/`).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import tensorflow as tf

from bnn_tf import atomic, budget, optimizers, training
from bnn_tf import callbacks as bnn_callbacks

# Kept importable from here (they lived here before bnn_tf.distill) for one release.
from bnn_tf.distill import Distiller, attention_map, kd_loss, matching_layers  # noqa: E402,F401
from bnn_tf.errors import ConfigError, moved_names
from bnn_tf.plotting import plot_history

STAGE_FILE = "stage.json"
KEEP, ON, OFF = "keep", "on", "off"


@dataclass(frozen=True)
class StageConfig:
    """One stage: which parts of the model are binary and how they are clipped.

    Attributes:
        name: folder-friendly name (`real_weights`, `binary`, ...).
        fraction: share of the recipe's epochs (the last stage takes the rest).
        binary_weights: False trains the kernels as real weights (quantizer removed).
        gradient_clip: STE gradient clipping of sign quantizers (`SteSign`):
            "keep" as built, "off" (identity STE) or "on" (`clip_value`).
        weight_clip: kernel `weight_clip` constraint: "keep", "off" or "on".
        clip_value: the clip used by "on".
        bn_momentum: if set, every BatchNormalization's momentum in this stage.
    """

    name: str
    fraction: float = 1.0
    binary_weights: bool = True
    gradient_clip: str = KEEP
    weight_clip: str = KEEP
    clip_value: float = 1.0
    bn_momentum: float | None = None

    def validate(self) -> None:
        for what in ("gradient_clip", "weight_clip"):
            if getattr(self, what) not in (KEEP, ON, OFF):
                raise ConfigError(f"stage {self.name}: {what} must be keep, on or off.")
        if not 0 < self.fraction <= 1:
            raise ConfigError(
                f"stage {self.name}: fraction must be in (0, 1] (got {self.fraction})."
            )
        if self.bn_momentum is not None and not 0 <= self.bn_momentum < 1:
            raise ConfigError(f"stage {self.name}: bn_momentum must be in [0, 1).")


@dataclass(frozen=True)
class KDConfig:
    """Knowledge distillation from a float teacher.

    Attributes:
        temperature: T of the softened softmaxes.
        alpha: weight of the distillation term (1 − α goes to the label loss).
        attention: add attention transfer at matching stages.
        attention_weight: β of the attention loss (Zagoruyko & Komodakis use 1e3).
        attention_layers: layer names present in both models; empty = the last
            BatchNormalization of each spatial resolution shared by both.
        teacher_epochs: epochs to train the zoo float twin when no teacher file is given.
    """

    temperature: float = 4.0
    alpha: float = 0.9
    attention: bool = False
    attention_weight: float = 1e3
    attention_layers: tuple[str, ...] = ()
    teacher_epochs: int = 4

    def validate(self) -> None:
        if self.temperature <= 0 or not 0 <= self.alpha <= 1 or self.teacher_epochs < 1:
            raise ConfigError("kd: temperature must be > 0, alpha in [0, 1], teacher_epochs ≥ 1.")


@dataclass(frozen=True)
class Recipe:
    """A training recipe: stages in order, the optimizer for binary stages, optional KD.

    Stages with real weights are trained by Adam alone (Bop has nothing to
    flip); binary stages use `optimizer` (bop, bop2 or adam).
    """

    name: str
    stages: tuple[StageConfig, ...]
    optimizer: str = "bop"
    kd: KDConfig | None = None
    description: str = ""

    def validate(self) -> None:
        if not self.stages:
            raise ConfigError(f"recipe {self.name}: needs at least one stage.")
        if self.optimizer not in optimizers.OPTIMIZERS:
            raise ConfigError(
                f"recipe {self.name}: unknown optimizer {self.optimizer!r}; choose one of "
                f"{', '.join(optimizers.OPTIMIZERS)}."
            )
        for s in self.stages:
            s.validate()
        if self.kd is not None:
            self.kd.validate()

    def stage_epochs(self, epochs: int) -> list[int]:
        """Split `epochs` over the stages (each ≥ 1; the last takes the remainder)."""
        if epochs < len(self.stages):
            raise ConfigError(
                f"recipe {self.name} has {len(self.stages)} stages and needs ≥ {len(self.stages)} "
                f"epochs (got {epochs})."
            )
        counts = [max(1, int(epochs * s.fraction)) for s in self.stages[:-1]]
        while sum(counts) > epochs - 1:
            counts[counts.index(max(counts))] -= 1
        return [*counts, epochs - sum(counts)]

    def to_dict(self) -> dict:
        return asdict(self)


_REAL = StageConfig("real_weights", fraction=0.5, binary_weights=False)
_BINARY = StageConfig("binary")
RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in (
        Recipe("single_stage", (_BINARY,), description="fully binary from the start"),
        Recipe(
            "two_stage",
            (_REAL, _BINARY),
            description="binary activations + real weights, then binary",
        ),
        Recipe("two_stage_kd", (_REAL, _BINARY), kd=KDConfig(), description="two_stage + logit KD"),
        Recipe(
            "two_stage_kd_at",
            (_REAL, _BINARY),
            kd=KDConfig(attention=True),
            description="two_stage + logit KD + attention transfer",
        ),
        Recipe(
            "delayed_clipping",
            (
                StageConfig("no_clip", fraction=0.5, gradient_clip=OFF, weight_clip=OFF),
                StageConfig("clip", gradient_clip=ON, weight_clip=ON, bn_momentum=0.6),
            ),
            optimizer="adam",
            description="Adam on latent weights; clipping and lower BN momentum late (ICLR 2019)",
        ),
    )
}


def get(name: str | Recipe) -> Recipe:
    """A named recipe (or the `Recipe` itself)."""
    if isinstance(name, Recipe):
        return name
    if name not in RECIPES:
        raise ConfigError(f"unknown recipe {name!r}; choose one of {', '.join(RECIPES)}.")
    return RECIPES[name]


# ------------------------------------------------------- model transformation


def _with_clip(quantizer: Any, clip: str, value: float) -> Any:
    if clip == KEEP or not isinstance(quantizer, dict) or quantizer.get("class_name") != "SteSign":
        return quantizer
    q = json.loads(json.dumps(quantizer))  # deep copy of a JSON-like config
    q["config"]["clip_value"] = None if clip == OFF else value
    return q


def stage_model(model: tf.keras.Model, stage: StageConfig) -> tf.keras.Model:
    """A copy of `model` re-configured for `stage` (same variables, fresh values).

    A stage that changes nothing (binary weights, clips and BN kept) returns `model` itself.

    Works on layers configured with larq's `kernel_quantizer` / `input_quantizer`
    (and BatchNormalization); other layers are copied as they are.
    """

    if (
        stage.binary_weights
        and stage.bn_momentum is None
        and KEEP == stage.gradient_clip == stage.weight_clip
    ):
        return model  # nothing to re-configure: the model as built (a plain run trains it)

    def clone(layer: tf.keras.layers.Layer) -> tf.keras.layers.Layer:
        config = layer.get_config()
        if "kernel_quantizer" in config:
            if not stage.binary_weights:
                config["kernel_quantizer"] = None
                config["kernel_constraint"] = None
            else:
                config["kernel_quantizer"] = _with_clip(
                    config["kernel_quantizer"], stage.gradient_clip, stage.clip_value
                )
                if stage.weight_clip == OFF:
                    config["kernel_constraint"] = None
                elif stage.weight_clip == ON:
                    config["kernel_constraint"] = {
                        "class_name": "WeightClip",
                        "config": {"clip_value": stage.clip_value},
                    }
            if "input_quantizer" in config:
                config["input_quantizer"] = _with_clip(
                    config["input_quantizer"], stage.gradient_clip, stage.clip_value
                )
        if isinstance(layer, tf.keras.layers.BatchNormalization) and stage.bn_momentum is not None:
            config["momentum"] = stage.bn_momentum
        return layer.__class__.from_config(config)

    new = tf.keras.models.clone_model(model, clone_function=clone)
    new.set_weights(model.get_weights())
    return new


# ------------------------------------------------------------------ running


def _stage_dirs(out: Path, recipe: Recipe) -> list[Path]:
    return [out / f"{i + 1}_{s.name}" for i, s in enumerate(recipe.stages)]


def _finished(stage_dir: Path) -> dict | None:
    marker = stage_dir / STAGE_FILE
    if marker.exists() and (stage_dir / training.MODEL_FILE).exists():
        return json.loads(marker.read_text())
    return None


@dataclass(frozen=True)
class _Feed:
    """What every stage of a run (and its KD teacher) trains on, and where it reports."""

    train: tf.data.Dataset
    validation: tf.data.Dataset | None
    steps_per_epoch: int
    verbose: int | str
    log: Callable[[str], None]


def _train_stage(
    model: tf.keras.Model,
    stage_dir: Path,
    feed: _Feed,
    *,
    name: str,
    epochs: int,
    optimizer_config: optimizers.OptimizerConfig,
    teacher: tf.keras.Model | None = None,
    kd: KDConfig | None = None,
    extra_callbacks: Sequence[tf.keras.callbacks.Callback] = (),
    jit_compile: bool = False,
    flat: bool = False,
) -> dict:
    """Compile, fit (resumable) and save one stage; returns its stage record.

    `flat`: the stage is the whole run and trains in the run folder itself
    (no stage.json: the run's own files say whether it finished).
    """
    log = feed.log
    optimizer_config = training.optimizer_for_model(model, optimizer_config)
    trainee: tf.keras.Model = model
    if teacher is not None and kd is not None:
        layers = (
            (list(kd.attention_layers) or matching_layers(model, teacher)) if kd.attention else []
        )
        trainee = Distiller(
            model,
            teacher,
            temperature=kd.temperature,
            alpha=kd.alpha,
            attention_layers=layers,
            attention_weight=kd.attention_weight,
            name=f"{model.name}_distiller",
        )
        # BackupAndRestore only restores a built model: build the wrapper on one dummy batch.
        trainee(tf.zeros((1, *model.input_shape[1:])))
        log(
            f"  distilling from {teacher.name} (T={kd.temperature}, α={kd.alpha}, attention at {layers or 'none'})"
        )
    training.compile_model(  # also warns about contradictory set-ups
        trainee,
        optimizer_config=optimizer_config,
        steps_per_epoch=feed.steps_per_epoch,
        epochs=epochs,
        jit_compile=jit_compile,
    )
    done = training.resume_epoch(stage_dir)
    if done and flat:
        log(f"resuming: {done} of {epochs} epochs already done in {stage_dir}")
    elif done:
        log(f"  resuming stage {name}: {done} of {epochs} epochs already done")
    start = time.perf_counter()
    standard = bnn_callbacks.standard_callbacks(model, epochs)
    for callback in extra_callbacks:
        if isinstance(callback, budget.StopAtDeadline):  # it re-plans the epoch schedules too
            callback.set_epoch_schedules(standard)
    records = training.fit(
        trainee,
        feed.train,
        epochs=epochs,
        out_dir=stage_dir,
        validation_data=feed.validation,
        callbacks=[*standard, *extra_callbacks],
        verbose=feed.verbose,
    )
    training.remove_empty_backup(stage_dir)
    atomic.write_with(stage_dir / training.MODEL_FILE, lambda tmp: model.save(tmp))
    record = {
        "stage": name,
        "epochs": epochs,
        "optimizer": optimizer_config.to_dict(),
        "seconds_this_run": round(time.perf_counter() - start, 1),
        "seconds_total": round(sum(r.get("seconds", 0.0) for r in records), 1),
        "final": records[-1] if records else {},
    }
    if not flat:
        atomic.write_json(stage_dir / STAGE_FILE, record)
    return record


def _load_weights_from(model: tf.keras.Model, path: Path) -> None:
    saved = tf.keras.models.load_model(path, compile=False)
    model.set_weights(saved.get_weights())


def run(
    recipe: Recipe | str,
    build_model: Callable[[], tf.keras.Model],
    train_data: tf.data.Dataset,
    *,
    epochs: int,
    out_dir: str | os.PathLike[str],
    steps_per_epoch: int,
    validation_data: tf.data.Dataset | None = None,
    optimizer_config: optimizers.OptimizerConfig | None = None,
    teacher: tf.keras.Model | Callable[[], tf.keras.Model] | None = None,
    verbose: int | str = "auto",
    log: Callable[[str], None] = print,
    callbacks: Sequence[tf.keras.callbacks.Callback] = (),
    jit_compile: bool = False,
    flat: bool = False,
) -> tuple[tf.keras.Model, dict]:
    """Run `recipe` on the model from `build_model()` (the final, fully binary model).

    Args:
        recipe: a `Recipe` or a name from `RECIPES`.
        build_model: returns a fresh copy of the final model (called once per stage).
        train_data: batched training data (x, y).
        epochs: total epochs for the student over all stages (teacher epochs are extra).
        out_dir: where stages, history and the final model go; rerun to resume.
        steps_per_epoch: batches per epoch (for the schedules).
        validation_data: evaluated after every epoch (val_* in the histories); never the
            test set, which is for the final report only.
        optimizer_config: for the binary stages; `name` defaults to the recipe's optimizer.
        teacher: a float model, or a callable building an untrained one (trained
            here for `kd.teacher_epochs` with Adam); required when the recipe distils.
        callbacks: extra Keras callbacks for every student stage.
        jit_compile: compile the training steps with XLA (`training.compile_model`).
        flat: for a one-stage recipe without distillation: train in `out_dir`
            itself (model.keras, history.json, backup/ at the top, no stage
            folder), which is what `bnn-tf train` without `--recipe` writes.
            The caller decides whether the run already finished.

    Returns:
        (the trained final model, the run record: stages, epochs, seconds).
    """
    recipe = get(recipe)
    recipe.validate()
    if flat and (len(recipe.stages) != 1 or recipe.kd is not None):
        raise ConfigError(
            f"recipe {recipe.name}: flat=True trains one stage without a teacher in out_dir "
            f"itself (got {len(recipe.stages)} stages{', distillation' if recipe.kd else ''}). "
            "Fix: drop flat=True."
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    base = optimizer_config or optimizers.OptimizerConfig(name=recipe.optimizer)
    if not flat and optimizer_config is not None and optimizer_config.name != recipe.optimizer:
        log(
            f"note: recipe {recipe.name} uses {recipe.optimizer}; the given optimizer {optimizer_config.name} wins"
        )
    stage_records: list[dict] = []
    feed = _Feed(train_data, validation_data, steps_per_epoch, verbose, log)

    teacher_model = None
    if recipe.kd is not None:
        if teacher is None:
            raise ConfigError(
                f"recipe {recipe.name} distils from a teacher: pass teacher=... (a float model)."
            )
        teacher_model = teacher if isinstance(teacher, tf.keras.Model) else teacher()
        if not isinstance(teacher, tf.keras.Model):
            tdir = out / "0_teacher"
            if (rec := _finished(tdir)) is not None:
                _load_weights_from(teacher_model, tdir / training.MODEL_FILE)
                log(f"teacher: reusing {tdir}")
            else:
                log(f"teacher: training {teacher_model.name} for {recipe.kd.teacher_epochs} epochs")
                rec = _train_stage(
                    teacher_model,
                    tdir,
                    feed,
                    name="teacher",
                    epochs=recipe.kd.teacher_epochs,
                    optimizer_config=replace(base, name="adam"),
                )
            stage_records.append(rec)

    counts = recipe.stage_epochs(epochs)
    previous: Path | None = None
    model: tf.keras.Model | None = None
    dirs = [out] if flat else _stage_dirs(out, recipe)
    for stage, n, sdir in zip(recipe.stages, counts, dirs, strict=True):
        model = stage_model(build_model(), stage)
        if not flat and (rec := _finished(sdir)) is not None:
            log(f"stage {stage.name}: already finished in {sdir}")
            _load_weights_from(model, sdir / training.MODEL_FILE)
        else:
            if previous is not None:
                _load_weights_from(model, previous)
            if not flat:
                log(f"stage {stage.name}: {n} epochs → {sdir}")
            name = base.name if stage.binary_weights else "adam"
            rec = _train_stage(
                model,
                sdir,
                feed,
                name=stage.name,
                epochs=n,
                optimizer_config=replace(base, name=name),
                teacher=teacher_model,
                kd=recipe.kd,
                extra_callbacks=callbacks,
                jit_compile=jit_compile,
                flat=flat,
            )
        stage_records.append(rec)
        previous = sdir / training.MODEL_FILE

    assert model is not None
    record = {"recipe": recipe.to_dict(), "stage_epochs": counts, "stages": stage_records}
    if flat:  # the stage's own history.json and curves.png are the run's
        return model, record
    history = _combined_history(out, recipe)
    atomic.write_json(out / training.HISTORY_FILE, history)
    plot_history(history, out / training.CURVES_FILE, title=f"{model.name}: {recipe.name}")
    return model, record


def _combined_history(out: Path, recipe: Recipe) -> list[dict]:
    """The student's epochs over all stages, numbered 1..E, each tagged with its stage."""
    records: list[dict] = []
    for stage, sdir in zip(recipe.stages, _stage_dirs(out, recipe), strict=True):
        path = sdir / training.HISTORY_FILE
        if path.exists():
            for r in json.loads(path.read_text()):
                records.append(
                    {
                        **r,
                        "stage_epoch": r.get("epoch"),
                        "epoch": len(records) + 1,
                        "stage": stage.name,
                    }
                )
    return records


# Names that moved up to `bnn_tf.experiment` (issue 18), which imports the zoo.
MOVED = {
    "train": "bnn_tf.experiment.train",
    "zoo_model_kwargs": "bnn_tf.experiment.zoo_model_kwargs",
}

__getattr__ = moved_names(__name__, MOVED)


__all__ = ["RECIPES", "KDConfig", "Recipe", "StageConfig", "get", "run", "stage_model"]
