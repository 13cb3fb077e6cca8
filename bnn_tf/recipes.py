"""Training recipes from the BNN literature: stages, distillation, delayed clipping.

A recipe is data (`Recipe`: its stages, optimizer and optional distillation)
plus one function that runs it (`run`, or `train` for a zoo model from a
`TrainConfig`). Named recipes (`RECIPES`, `bnn-tf train MODEL --recipe NAME`):

- `single_stage`: the model as built, trained end to end (Bop + Adam).
- `two_stage` (Real-to-Binary, Martinez et al. ICLR 2020; EBN, Bulat et al.
  ICLR 2021): stage 1 binary activations with *real* weights (Adam), stage 2
  fully binary (Bop + Adam) initialised from stage 1. Kernels enter stage 2
  as sign(w) of the stage-1 weights.
- `two_stage_kd`: `two_stage` with logit knowledge distillation from a float
  teacher (Hinton et al. 2015):
  `L = (1 − α)·CE(y, s) + α·T²·KL(softmax(t/T) ‖ softmax(s/T))`.
- `two_stage_kd_at`: plus attention transfer (Zagoruyko & Komodakis 2017;
  Real-to-Binary) at the last layer of each spatial resolution shared by
  teacher and student: `β·Σ_l mean((q_s − q_t)²)`, `q = a/‖a‖₂`,
  `a = mean_c(x²)` flattened.
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

from bnn_tf import atomic, data, optimizers, training
from bnn_tf import callbacks as bnn_callbacks
from bnn_tf.errors import ConfigError

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

    Works on layers configured with larq's `kernel_quantizer` / `input_quantizer`
    (and BatchNormalization); other layers are copied as they are.
    """

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


# ------------------------------------------------------------- distillation


def attention_map(x: tf.Tensor) -> tf.Tensor:
    """`a = mean_c(x²)` flattened and L2-normalised per sample (Zagoruyko & Komodakis)."""
    a = tf.reshape(tf.reduce_mean(tf.square(x), axis=-1), (tf.shape(x)[0], -1))
    return tf.math.l2_normalize(a, axis=1)


def kd_loss(student_logits: tf.Tensor, teacher_logits: tf.Tensor, temperature: float) -> tf.Tensor:
    """`T² · KL(softmax(t/T) ‖ softmax(s/T))`, mean over the batch."""
    t = tf.nn.softmax(teacher_logits / temperature)
    log_s = tf.nn.log_softmax(student_logits / temperature)
    log_t = tf.nn.log_softmax(teacher_logits / temperature)
    return temperature**2 * tf.reduce_mean(tf.reduce_sum(t * (log_t - log_s), axis=-1))


def matching_layers(student: tf.keras.Model, teacher: tf.keras.Model) -> list[str]:
    """Last BatchNormalization of each spatial size present by name in both models."""
    names: dict[tuple, str] = {}
    teacher_names = {layer.name for layer in teacher.layers}
    for layer in student.layers:
        shape = layer.output.shape
        if (
            isinstance(layer, tf.keras.layers.BatchNormalization)
            and layer.name in teacher_names
            and len(shape) == 4
            and teacher.get_layer(layer.name).output.shape[1:3] == shape[1:3]
        ):
            names[tuple(shape[1:3])] = layer.name
    return list(names.values())


@tf.keras.utils.register_keras_serializable(package="bnn_tf")
class Distiller(tf.keras.Model):
    """Train `student` against labels and a frozen `teacher` (logit KD + optional attention).

    Only the student's variables are trained; `predict`/`evaluate` run the
    student. Save `distiller.student`, not the distiller.
    """

    def __init__(
        self,
        student: tf.keras.Model,
        teacher: tf.keras.Model,
        *,
        temperature: float = 4.0,
        alpha: float = 0.9,
        attention_layers: Sequence[str] = (),
        attention_weight: float = 1e3,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.student, self.teacher = student, teacher
        self.teacher.trainable = False
        self.temperature, self.alpha = temperature, alpha
        self.attention_layers, self.attention_weight = tuple(attention_layers), attention_weight
        self._s = tf.keras.Model(
            student.inputs,
            [student.output, *(student.get_layer(n).output for n in attention_layers)],
        )
        self._t = tf.keras.Model(
            teacher.inputs,
            [teacher.output, *(teacher.get_layer(n).output for n in attention_layers)],
        )
        self.kd_tracker = tf.keras.metrics.Mean("kd_loss")
        self.at_tracker = tf.keras.metrics.Mean("at_loss")

    def call(self, x, training=False):
        return self.student(x, training=training)

    @property
    def metrics(self):
        return [*super().metrics, self.kd_tracker, self.at_tracker]

    def train_step(self, batch):
        x, y = batch[:2]
        t_out = self._t(x, training=False)
        t_out = t_out if isinstance(t_out, list) else [t_out]
        with tf.GradientTape() as tape:
            s_out = self._s(x, training=True)
            s_out = s_out if isinstance(s_out, list) else [s_out]
            ce = self.compiled_loss(y, s_out[0], regularization_losses=self.student.losses)
            kd = kd_loss(s_out[0], t_out[0], self.temperature)
            at = tf.add_n(
                [tf.constant(0.0)]
                + [
                    tf.reduce_mean(tf.square(attention_map(s) - attention_map(t)))
                    for s, t in zip(s_out[1:], t_out[1:], strict=True)
                ]
            )
            loss = (1 - self.alpha) * ce + self.alpha * kd + self.attention_weight * at
        variables = self.student.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
        self.compiled_metrics.update_state(y, s_out[0])
        self.kd_tracker.update_state(kd)
        self.at_tracker.update_state(at)
        return {m.name: m.result() for m in self.metrics}

    def get_config(self) -> dict:
        # A Distiller is a training-time wrapper; it is never saved (save `.student`).
        return {"name": self.name}


# ------------------------------------------------------------------ running


def _stage_dirs(out: Path, recipe: Recipe) -> list[Path]:
    return [out / f"{i + 1}_{s.name}" for i, s in enumerate(recipe.stages)]


def _finished(stage_dir: Path) -> dict | None:
    marker = stage_dir / STAGE_FILE
    if marker.exists() and (stage_dir / training.MODEL_FILE).exists():
        return json.loads(marker.read_text())
    return None


def _train_stage(
    model: tf.keras.Model,
    stage_dir: Path,
    *,
    name: str,
    epochs: int,
    optimizer_config: optimizers.OptimizerConfig,
    train_data: tf.data.Dataset,
    test_data: tf.data.Dataset | None,
    steps_per_epoch: int,
    teacher: tf.keras.Model | None,
    kd: KDConfig | None,
    verbose: int | str,
    log: Callable[[str], None],
    extra_callbacks: Sequence[tf.keras.callbacks.Callback] = (),
) -> dict:
    """Compile, fit (resumable) and save one stage; returns its stage.json record."""
    optimizer = optimizers.make_optimizer(
        optimizer_config, steps_per_epoch=steps_per_epoch, epochs=epochs
    )
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
    training.compile_model(trainee, optimizer=optimizer)  # also warns about contradictory set-ups
    done = training.resume_epoch(stage_dir)
    if done:
        log(f"  resuming stage {name}: {done} of {epochs} epochs already done")
    start = time.perf_counter()
    records = training.fit(
        trainee,
        train_data,
        epochs=epochs,
        out_dir=stage_dir,
        validation_data=test_data,
        callbacks=[*bnn_callbacks.standard_callbacks(model, epochs), *extra_callbacks],
        verbose=verbose,
    )
    backup = stage_dir / training.BACKUP_DIR
    if backup.is_dir() and not any(backup.iterdir()):
        backup.rmdir()
    atomic.write_with(stage_dir / training.MODEL_FILE, lambda tmp: model.save(tmp))
    record = {
        "stage": name,
        "epochs": epochs,
        "optimizer": optimizer_config.to_dict(),
        "seconds_this_run": round(time.perf_counter() - start, 1),
        "seconds_total": round(sum(r.get("seconds", 0.0) for r in records), 1),
        "final": records[-1] if records else {},
    }
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
    test_data: tf.data.Dataset | None = None,
    optimizer_config: optimizers.OptimizerConfig | None = None,
    teacher: tf.keras.Model | Callable[[], tf.keras.Model] | None = None,
    verbose: int | str = "auto",
    log: Callable[[str], None] = print,
    callbacks: Sequence[tf.keras.callbacks.Callback] = (),
) -> tuple[tf.keras.Model, dict]:
    """Run `recipe` on the model from `build_model()` (the final, fully binary model).

    Args:
        recipe: a `Recipe` or a name from `RECIPES`.
        build_model: returns a fresh copy of the final model (called once per stage).
        train_data: batched training data (x, y).
        epochs: total epochs for the student over all stages (teacher epochs are extra).
        out_dir: where stages, history and the final model go; rerun to resume.
        steps_per_epoch: batches per epoch (for the schedules).
        test_data: evaluated after every epoch (val_* in the histories).
        optimizer_config: for the binary stages; `name` defaults to the recipe's optimizer.
        teacher: a float model, or a callable building an untrained one (trained
            here for `kd.teacher_epochs` with Adam); required when the recipe distils.
        callbacks: extra Keras callbacks for every student stage.

    Returns:
        (the trained final model, the run record: stages, epochs, seconds).
    """
    recipe = get(recipe)
    recipe.validate()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    base = optimizer_config or optimizers.OptimizerConfig(name=recipe.optimizer)
    if optimizer_config is not None and optimizer_config.name != recipe.optimizer:
        log(
            f"note: recipe {recipe.name} uses {recipe.optimizer}; the given optimizer {optimizer_config.name} wins"
        )
    stage_records: list[dict] = []

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
                    name="teacher",
                    epochs=recipe.kd.teacher_epochs,
                    optimizer_config=replace(base, name="adam"),
                    train_data=train_data,
                    test_data=test_data,
                    steps_per_epoch=steps_per_epoch,
                    teacher=None,
                    kd=None,
                    verbose=verbose,
                    log=log,
                )
            stage_records.append(rec)

    counts = recipe.stage_epochs(epochs)
    previous: Path | None = None
    model: tf.keras.Model | None = None
    for stage, n, sdir in zip(recipe.stages, counts, _stage_dirs(out, recipe), strict=True):
        model = stage_model(build_model(), stage)
        if (rec := _finished(sdir)) is not None:
            log(f"stage {stage.name}: already finished in {sdir}")
            _load_weights_from(model, sdir / training.MODEL_FILE)
        else:
            if previous is not None:
                _load_weights_from(model, previous)
            log(f"stage {stage.name}: {n} epochs → {sdir}")
            name = base.name if stage.binary_weights else "adam"
            rec = _train_stage(
                model,
                sdir,
                name=stage.name,
                epochs=n,
                optimizer_config=replace(base, name=name),
                train_data=train_data,
                test_data=test_data,
                steps_per_epoch=steps_per_epoch,
                teacher=teacher_model,
                kd=recipe.kd,
                verbose=verbose,
                log=log,
                extra_callbacks=callbacks,
            )
        stage_records.append(rec)
        previous = sdir / training.MODEL_FILE

    assert model is not None
    history = _combined_history(out, recipe)
    atomic.write_json(out / training.HISTORY_FILE, history)
    try:
        from bnn_tf.plotting import plot_history

        plot_history(history, out / training.CURVES_FILE, title=f"{model.name}: {recipe.name}")
    except ImportError:  # matplotlib is optional for library users
        pass
    return model, {"recipe": recipe.to_dict(), "stage_epochs": counts, "stages": stage_records}


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


# -------------------------------------------------------------- zoo + CLI


def zoo_model_kwargs(model_name: str, optimizer: str, given: dict) -> dict:
    """Model arguments implied by the optimizer: a weight clip only for latent-weight Adam.

    Bop keeps binary weights at ±1 (no clip needed; `check_setup` warns about
    one), while Adam on latent weights needs the BinaryConnect clip.
    """
    import inspect

    from bnn_tf import models as zoo

    kwargs = dict(given)
    params = inspect.signature(zoo.info(model_name).factory).parameters
    if "kernel_constraint" in params and "kernel_constraint" not in kwargs:
        kwargs["kernel_constraint"] = "weight_clip" if optimizer == "adam" else None
    return kwargs


def train(
    config: training.TrainConfig,
    out_dir: str | os.PathLike[str],
    *,
    data_dir: str | os.PathLike[str] | None = None,
    splits: data.Splits | None = None,
    verbose: int | str = "auto",
    log: Callable[[str], None] = print,
) -> dict:
    """`bnn_tf.training.train` with `config.recipe`: build, run the recipe, evaluate, save.

    Writes the same files as `training.train` (model.keras, history.json,
    curves.png, run.json, train_summary.json) plus one folder per stage.
    """
    from bnn_tf import models as zoo

    recipe = get(config.recipe or "single_stage")
    out, finished = training.open_run(config, out_dir, log=log)
    if finished is not None:
        return finished
    td = training.load_train_data(
        config, data_dir=data_dir, splits=splits, log=log, note=f"; recipe {recipe.name}"
    )
    splits = td.splits
    opt_name = config.optimizer or recipe.optimizer
    opt = config.optimizer_config(opt_name)
    kwargs = zoo_model_kwargs(config.model, opt_name, config.model_kwargs)
    shape = {"input_shape": splits.input_shape, "num_classes": splits.num_classes}
    seed = [config.seed]

    def build() -> tf.keras.Model:
        # Same seed for every stage: a resumed run rebuilds the same initial model.
        tf.keras.utils.set_random_seed(seed[0])
        return zoo.build(config.model, **shape, **kwargs)

    teacher = None
    if recipe.kd is not None:
        twin = zoo.info(config.model).float_twin
        if twin is None:
            raise ConfigError(
                f"recipe {recipe.name} needs a float teacher but {config.model} has no float twin in the zoo."
            )
        twin_kwargs = {k: v for k, v in kwargs.items() if k != "kernel_constraint"}
        teacher = lambda: zoo.build(twin, **shape, **twin_kwargs)  # noqa: E731
    training.write_run_file(out, config, splits)
    start = time.perf_counter()
    model, record = run(
        recipe,
        build,
        td.train,
        epochs=config.epochs,
        out_dir=out,
        steps_per_epoch=td.steps_per_epoch,
        test_data=td.test,
        optimizer_config=opt,
        teacher=teacher,
        verbose=verbose,
        log=log,
    )
    model.compile(loss=training.loss_fn(), metrics=["accuracy"])
    _, test_acc = model.evaluate(td.test, verbose=0)
    atomic.write_with(out / training.MODEL_FILE, lambda tmp: model.save(tmp))
    summary = {
        "model": config.model,
        "dataset": splits.name,
        "data_source": splits.source,
        "recipe": recipe.name,
        "optimizer": opt_name,
        "epochs": config.epochs,
        "stage_epochs": record["stage_epochs"],
        "test_accuracy": float(test_acc),
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
    atomic.write_json(out / training.SUMMARY_FILE, summary)
    return summary


__all__ = [
    "RECIPES",
    "Distiller",
    "KDConfig",
    "Recipe",
    "StageConfig",
    "attention_map",
    "get",
    "kd_loss",
    "matching_layers",
    "run",
    "stage_model",
    "train",
    "zoo_model_kwargs",
]
