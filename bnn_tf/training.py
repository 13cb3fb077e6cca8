"""Training, the plain part: compile, fit with per-epoch checkpoints, resume, history.

`fit(model, ...)` is the reusable part for your own models; `compile_model`
wires Bop + Adam. The one entry point for a zoo model from a `TrainConfig`
(what `bnn-tf train` runs) is `bnn_tf.experiment.train`, which composes this
module and `bnn_tf.recipes`. A run folder holds:

- `model.keras`: the trained model (loadable after `import bnn_tf`);
- `history.json`: one record per epoch (losses, accuracies, learning rate, seconds);
- `curves.png`: loss/accuracy curves;
- `run.json`: the configuration, so a second run can resume or refuse to mix runs;
- `backup/`: the checkpoint of the last finished epoch (deleted on success).

Re-running the same command after an interruption resumes from the last
finished epoch, weights and optimizer state included (Keras' `BackupAndRestore`).

This module never imports `bnn_tf.recipes` or the zoo (docs/architecture.md).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import tensorflow as tf

from bnn_tf import __version__, atomic, data, introspect, optimizers
from bnn_tf.errors import ConfigError, ResumeMismatchError, moved_names
from bnn_tf.plotting import plot_history
from bnn_tf.precision import PRECISIONS, check_precision

MODEL_FILE = "model.keras"
HISTORY_FILE = "history.json"
CURVES_FILE = "curves.png"
RUN_FILE = "run.json"
SUMMARY_FILE = "train_summary.json"
BACKUP_DIR = "backup"


def loss_fn() -> tf.keras.losses.Loss:
    """Cross-entropy on logits, mean over the batch (Bop's γ/τ assume a mean)."""
    return tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def compile_model(
    model: tf.keras.Model,
    *,
    optimizer: tf.keras.optimizers.Optimizer | None = None,
    steps_per_epoch: int | None = None,
    epochs: int | None = None,
    bop: optimizers.BopAdamConfig | None = None,
    optimizer_config: optimizers.OptimizerConfig | None = None,
    jit_compile: bool = False,
) -> tf.keras.Model:
    """Compile with the optimizer the model is built for, unless `optimizer` is given.

    With neither `optimizer` nor `optimizer_config`: Bop for the binary kernels
    + Adam for the rest (cosine-decayed learning rate), except for a model built
    for latent-weight training (`introspect.latent_weight_layers`: a weight
    clip, or a scale such as XNOR-Net's α that Bop would freeze), which Adam
    trains whole, and a float model, which Adam trains too. So a default
    set-up never contradicts its model. `bnn_tf.experiment.build_and_compile`
    compiles a zoo model with its paper's training instead.

    `optimizer_config` (bop, bop2 or adam, with γ/τ/learning-rate schedules) takes
    precedence over `bop`. Contradictory set-ups (e.g. a Bop-trained kernel with
    a weight clip) raise an `optimizers.SetupWarning`. `jit_compile=True` compiles
    the training step with XLA (Keras' `jit_compile`): the same function, fused.
    On a 2-core CPU it ranged from 1.05× faster to 1.6× slower on our models
    (docs/training.md), so it is off by default.
    """
    if optimizer is None and optimizer_config is not None:
        optimizer_config = optimizer_for_model(model, optimizer_config)
    if (
        optimizer is None
        and optimizer_config is None
        and (not has_binary_variables(model) or introspect.latent_weight_layers(model))
    ):
        # A float model (e.g. a float twin or teacher): Bop would claim nothing and
        # CaseOptimizer refuses that. A latent-weight build: Bop would ignore its clip
        # or freeze its scales. Either way the latent-weight Adam trains everything.
        lr_kind = "cosine" if steps_per_epoch and epochs else "constant"
        optimizer_config = optimizers.OptimizerConfig(
            name="adam",
            learning_rate=(bop or optimizers.BopAdamConfig()).learning_rate,
            lr_schedule=optimizers.ScheduleConfig(lr_kind),
        )
    if optimizer is None and optimizer_config is not None:
        optimizer = optimizers.make_optimizer(
            optimizer_config, steps_per_epoch=steps_per_epoch, epochs=epochs
        )
    if optimizer is None:
        bop = bop or optimizers.BopAdamConfig()
        lr: Any = bop.learning_rate
        if steps_per_epoch and epochs:
            lr = tf.keras.optimizers.schedules.CosineDecay(
                bop.learning_rate, steps_per_epoch * epochs
            )
        optimizer = optimizers.bop_adam(threshold=bop.threshold, gamma=bop.gamma, learning_rate=lr)
    model.compile(
        optimizer=optimizer, loss=loss_fn(), metrics=["accuracy"], jit_compile=jit_compile
    )
    optimizers.check_setup(model, optimizer)
    return model


def has_binary_variables(model: tf.keras.Model) -> bool:
    """Whether Bop would claim any of `model`'s trainable variables (True if not yet built).

    Only decidable once the model has variables; an unbuilt model keeps Bop + Adam.
    """
    variables = model.trainable_variables if model.built else []
    is_binary = optimizers.Bop2ndOrder.is_binary_variable
    return not variables or any(is_binary(v) for v in variables)


def optimizer_for_model(
    model: tf.keras.Model, config: optimizers.OptimizerConfig
) -> optimizers.OptimizerConfig:
    """`config`, or Adam on everything if `model` has no binary kernels for Bop to flip.

    A float model (a float twin, a teacher) under Bop would leave larq's
    `CaseOptimizer` with nothing to claim, which it refuses.
    """
    if config.name != "adam" and not has_binary_variables(model):
        return replace(config, name="adam")
    return config


class HistoryWriter(tf.keras.callbacks.Callback):
    """Write `history.json` and `curves.png` after every epoch (atomically).

    Records are indexed by epoch, so after a resume the restarted epochs
    overwrite what an interrupted run had written past the last checkpoint.
    """

    def __init__(self, out_dir: str | os.PathLike[str], *, title: str = "", plot: bool = True):
        super().__init__()
        self.out_dir = Path(out_dir)
        self.title = title
        self.plot = plot
        self.records: list[dict] = []
        self._epoch_start = 0.0

    def on_train_begin(self, logs=None):
        path = self.out_dir / HISTORY_FILE
        if path.exists():
            self.records = json.loads(path.read_text())

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        record: dict[str, Any] = {"epoch": epoch + 1}
        record.update({k: float(v) for k, v in (logs or {}).items()})
        record["seconds"] = round(time.perf_counter() - self._epoch_start, 2)
        lr = _current_learning_rate(self.model.optimizer)
        if lr is not None:
            record["learning_rate"] = lr
        self.records = self.records[:epoch] + [record]
        atomic.write_json(self.out_dir / HISTORY_FILE, self.records)
        if self.plot:
            plot_history(self.records, self.out_dir / CURVES_FILE, title=self.title)


def _current_learning_rate(optimizer) -> float | None:
    # larq's CaseOptimizer keeps the latent-weight optimizer as `.default`.
    inner = getattr(optimizer, "default", None) or optimizer
    return optimizers.hyperparameter(inner, "learning_rate")


def fit(
    model: tf.keras.Model,
    train_data: tf.data.Dataset,
    *,
    epochs: int,
    out_dir: str | os.PathLike[str],
    validation_data: tf.data.Dataset | None = None,
    callbacks: list[tf.keras.callbacks.Callback] | None = None,
    verbose: int | str = "auto",
    plot: bool = True,
) -> list[dict]:
    """`model.fit` with checkpoint-per-epoch, resume, history.json and curves.png.

    The model must be compiled. If `out_dir/backup` holds a checkpoint from an
    interrupted run, training resumes after its last finished epoch.

    Returns:
        The per-epoch history records (also in `out_dir/history.json`).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    writer = HistoryWriter(out, title=model.name, plot=plot)
    all_callbacks = [
        tf.keras.callbacks.BackupAndRestore(str(out / BACKUP_DIR)),
        # Before the writer, so what they add to `logs` (flip ratios, γ, τ) is recorded.
        *(callbacks or []),
        writer,
    ]
    if verbose == "auto":
        # A live progress bar on a terminal; one line per epoch in logs and CI.
        verbose = 1 if sys.stdout.isatty() else 2
    model.fit(
        train_data,
        validation_data=validation_data,
        epochs=epochs,
        callbacks=all_callbacks,
        verbose=verbose,
    )
    return writer.records


def resume_epoch(out_dir: str | os.PathLike[str]) -> int:
    """How many epochs an interrupted run in `out_dir` had finished (0 if none)."""
    path = Path(out_dir) / HISTORY_FILE
    if not (Path(out_dir) / BACKUP_DIR).exists() or not path.exists():
        return 0
    return len(json.loads(path.read_text()))


# How Bop's γ may change over a run: "cosine"/"linear" end at 0, which
# freezes Bop's gradient average and so lets the binary weights settle.
GAMMA_SCHEDULES = ("constant", "linear", "cosine")


def _help(text: str, **more: Any) -> dict[str, Any]:
    """Field metadata read by the CLI (`bnn_tf.cli`): the flag's help and options."""
    return {"help": text, **more}


# The TrainConfig fields that are `data.open_data` options of the same names.
DATA_FIELDS = ("image_size", "channels", "val_split", "test_data", "seed", "limit_train")


@dataclass
class TrainConfig:
    """Everything `bnn-tf train` needs; saved to `run.json` for resuming.

    Each field is one `bnn-tf train` flag (`--batch-size` for `batch_size`):
    the CLI builds its parser from these fields, their types, defaults and
    `metadata` (`help`; optional `flag`, `choices` (a sequence or a
    callable returning one), `nargs`, `metavar`, `positional`), so a new
    field is a new flag with no CLI code.
    """

    model: str = field(metadata=_help("zoo model name (see `bnn-tf models`)", positional=True))
    dataset: str = field(
        default="fashion_mnist", metadata=_help("data set", choices=data.available)
    )
    epochs: int = field(default=8, metadata=_help("epochs"))
    batch_size: int = field(default=128, metadata=_help("batch size"))
    limit_train: int | None = field(
        default=None, metadata=_help("train on the first N images only", metavar="N")
    )
    augment: bool = field(default=False, metadata=_help("random flips and 2-pixel shifts"))
    seed: int = field(default=0, metadata=_help("random seed"))
    # None: the model's registered (paper's) value, else the library's. A value given
    # always wins, also one equal to the library's (which the paper's would otherwise replace).
    bop_threshold: float | None = field(
        default=None,
        metadata=_help(
            "Bop flip threshold τ (default: the model's paper training, else "
            f"{optimizers.BopAdamConfig.threshold:g})"
        ),
    )
    bop_gamma: float | None = field(
        default=None,
        metadata=_help(
            "Bop adaptivity rate γ (default: the model's paper training, else "
            f"{optimizers.BopAdamConfig.gamma:g})"
        ),
    )
    learning_rate: float | None = field(
        default=None,
        metadata=_help(
            "Adam learning rate, cosine-decayed (default: the model's paper training, else "
            f"{optimizers.BopAdamConfig.learning_rate:g})"
        ),
    )
    model_kwargs: dict = field(
        default_factory=dict,
        metadata=_help(
            "options of the model factory as a JSON object, e.g. "
            "'{\"width_multiplier\": 2}' (default: none)",
            metavar="JSON",
        ),
    )
    # None keeps run.json of older runs comparable (see check_resume).
    optimizer: str | None = field(
        default=None,
        metadata=_help(
            "binary kernels: bop, bop2 (Bop2ndOrder) or adam (latent weights with "
            "weight_clip); everything else always uses Adam. Default: the model's paper "
            "training (`bnn-tf models` shows it), else bop",
            choices=optimizers.OPTIMIZERS,
        ),
    )
    bop_gamma_schedule: str | None = field(
        default=None,
        metadata=_help(
            "Bop's γ over the run: constant (default), or linear/cosine decay to 0 so the "
            "binary weights stop flipping by the last epoch",
            choices=GAMMA_SCHEDULES,
        ),
    )
    # The choices are `bnn_tf.recipes.RECIPES`, which sits above this module: the CLI fills them.
    recipe: str | None = field(
        default=None,
        metadata=_help(
            "staged training recipe (see docs/training.md); default: plain single-stage training"
        ),
    )
    # How the steps run (XLA or not), not a training setting: not compared on resume.
    jit_compile: bool = field(
        default=False,
        metadata=_help(
            "compile the training step with XLA: the same function, faster or slower "
            "depending on the model (time one epoch first; docs/training.md); not with --recipe"
        ),
    )

    # None (chosen per CPU at run time) keeps run.json of older runs comparable (check_resume).
    precision: str | None = field(
        default=None,
        metadata=_help(
            "what computes in bfloat16 while training (variables stay float32; the saved "
            "model computes in float32): float32 (nothing), binary_bfloat16 (the binary "
            "convolutions: ±1 is exact in bfloat16), mixed_bfloat16 (every layer but the "
            "outputs); default: binary_bfloat16 on a CPU with native bfloat16, float32 "
            "elsewhere; bnn_tf.precision, docs/training.md",
            choices=PRECISIONS,
        ),
    )

    time_budget: float | None = field(
        default=None,
        metadata=_help(
            "minutes for the whole run (measuring, a KD teacher, every stage, the final "
            "evaluation): measures the step time, plans the epochs (instead of --epochs) so the "
            "schedules end in time, and stops at the budget (bnn_tf.budget)",
            metavar="MINUTES",
        ),
    )

    # --- own data (issue 15). `data` overrides `dataset` when set.
    data: str | None = field(
        default=None,
        metadata={
            "flag": "--data",
            "help": "training data: an image folder (one sub-folder per class; png/jpg/bmp/gif), "
            "a .npz (x_train, y_train[, x_test, y_test]) or a built-in name (fashion_mnist, mnist); "
            "default: --dataset",
        },
    )
    image_size: list[int] | None = field(
        default=None,
        metadata={
            "flag": "--image-size",
            "nargs": 2,
            "type": int,
            "metavar": ("H", "W"),
            "help": "resize every image to H×W (bilinear); default: the images' own size",
        },
    )
    channels: int | None = field(
        default=None,
        metadata={
            "flag": "--channels",
            "type": int,
            "choices": [1, 3],
            "help": "1 (grey) or 3 (RGB); default: 3 if any image is in colour, else 1",
        },
    )
    val_split: float = field(
        default=0.1,
        metadata={
            "flag": "--val-split",
            "type": float,
            "help": "fraction of the training images held out (seeded) as validation, "
            "logged as val_* every epoch (default 0.1; 0: no validation)",
        },
    )
    test_data: str | None = field(
        default=None,
        metadata={
            "flag": "--test-data",
            "help": "separate test folder/.npz (same classes), used only for the final report; "
            "default: the data's own test part, else a seeded 20% split of a folder",
        },
    )

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """Field name → default value (fields with a default only)."""
        out: dict[str, Any] = {}
        for f in fields(cls):
            if f.default is not MISSING:
                out[f.name] = f.default
            elif f.default_factory is not MISSING:
                out[f.name] = f.default_factory()
        return out

    def __post_init__(self) -> None:
        if self.image_size is not None:
            # A list, as run.json stores it, so resumed runs compare equal.
            self.image_size = [int(v) for v in self.image_size]
        # "constant" is the default; stored as None so run.json files of older
        # runs (without the field) still match on resume.
        if self.bop_gamma_schedule == "constant":
            self.bop_gamma_schedule = None

    def validate(self) -> None:
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be ≥ 1 (got {getattr(self, name)}).")
        if not 0 <= self.val_split < 1:
            raise ConfigError(
                f"val_split must be in [0, 1) (got {self.val_split}). Fix: e.g. --val-split 0.1."
            )
        check_precision(self.precision)
        if self.time_budget is not None and not self.time_budget > 0:
            raise ConfigError(
                f"time_budget must be > 0 minutes (got {self.time_budget}). Fix: e.g. "
                "--time-budget 60."
            )
        if self.limit_train is not None and self.limit_train < 1:
            raise ConfigError(f"limit_train must be ≥ 1 (got {self.limit_train}).")
        if self.jit_compile and self.recipe is not None:
            raise ConfigError(
                "jit_compile applies to single-stage training only, not to recipes "
                f"(got recipe {self.recipe!r}). Fix: drop --jit-compile or --recipe."
            )
        if self.bop_gamma_schedule not in (None, *GAMMA_SCHEDULES):
            raise ConfigError(
                f"bop_gamma_schedule must be one of {', '.join(GAMMA_SCHEDULES)} "
                f"(got {self.bop_gamma_schedule!r})."
            )

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def data_source(self) -> str:
        """Where the training data comes from: `data` if set, else the built-in `dataset`."""
        return self.data or self.dataset

    def data_options(self) -> dict[str, Any]:
        """The options of `data.open_data` that this run sets (fields of the same names)."""
        return {name: getattr(self, name) for name in DATA_FIELDS}

    def optimizer_config(self, name: str) -> optimizers.OptimizerConfig:
        """The `OptimizerConfig` for optimizer `name` with this run's settings.

        The Bop threshold/γ apply to `bop` only; `bop2` keeps its own defaults
        (its τ and γ mean something else).
        """
        library = optimizers.BopAdamConfig
        return optimizers.OptimizerConfig(
            name=name,
            threshold=_given(self.bop_threshold, library.threshold) if name == "bop" else None,
            gamma=_given(self.bop_gamma, library.gamma) if name == "bop" else None,
            learning_rate=_given(self.learning_rate, library.learning_rate),
            gamma_schedule=optimizers.ScheduleConfig(self.bop_gamma_schedule or "constant"),
        )


def _given(value: float | None, default: float) -> float:
    return default if value is None else value


# run.json of runs before these fields defaulted to None stored the library's value, which
# then meant "not given" (the paper's value replaced it): read so, they compare equal.
_LEGACY_DEFAULTS = {
    "bop_threshold": optimizers.BopAdamConfig.threshold,
    "bop_gamma": optimizers.BopAdamConfig.gamma,
    "learning_rate": optimizers.BopAdamConfig.learning_rate,
}


def saved_config(config: dict) -> dict:
    """A `TrainConfig` dict as saved in a `run.json` (or a record), in today's terms."""
    out = dict(config)
    for name, legacy in _LEGACY_DEFAULTS.items():
        if out.get(name) == legacy:
            out[name] = None
    return out


# Settings that may change between an interrupted run and its resume.
_RESUMABLE_CHANGES = {"epochs"}
# How a run executes, not what it trains (XLA only reorders float sums): a
# finished or unfinished run is the same run with or without them.
_EXECUTION_ONLY = {"jit_compile"}


def check_resume(out: Path, config: TrainConfig) -> str:
    """Classify `out`: "fresh", "resume" (unfinished, same settings) or "finished".

    Raises:
        ResumeMismatchError: `out` holds a run with other settings; nothing is overwritten.
    """
    path = out / RUN_FILE
    if not path.exists():
        return "fresh"
    previous = saved_config(json.loads(path.read_text()).get("config", {}))
    # Through JSON, as run.json stores it: a tuple field compares equal to its saved list.
    current = json.loads(json.dumps(config.to_dict()))
    finished = (out / SUMMARY_FILE).exists() and (out / MODEL_FILE).exists()
    ignored = _EXECUTION_ONLY | (set() if finished else _RESUMABLE_CHANGES)
    diffs = [
        f"{k}: {previous.get(k)!r} → {current[k]!r}"
        for k in current
        if k not in ignored and previous.get(k) != current[k]
    ]
    if diffs:
        state = "a finished run" if finished else "an unfinished run"
        raise ResumeMismatchError(
            f"{out} holds {state} with different settings ({'; '.join(diffs)}). Nothing was "
            "overwritten. Fix: rerun with the same settings, or choose another --out."
        )
    return "finished" if finished else "resume"


# Batch size of the validation and test pipelines (evaluation only: no gradients).
EVAL_BATCH_SIZE = 512


@dataclass
class TrainData:
    """The data side of a run: where it came from and the pipelines built from it.

    `validation` (None with `val_split=0`) is what Keras evaluates every epoch;
    `test` is for the final report only.
    """

    splits: data.ImageData
    train: tf.data.Dataset
    test: tf.data.Dataset
    train_images: int
    steps_per_epoch: int
    validation: tf.data.Dataset | None = None


def open_run(
    config: TrainConfig, out_dir: str | os.PathLike[str], *, log: Callable[[str], None] = print
) -> tuple[Path, dict | None]:
    """Validate `config` and classify `out_dir` (see `check_resume`).

    Returns:
        The output folder, and the saved summary if it already holds this
        finished run (then nothing needs to run).
    """
    config.validate()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if check_resume(out, config) == "finished":
        log(f"{out} already holds this finished run; reusing it (choose another --out to retrain)")
        return out, json.loads((out / SUMMARY_FILE).read_text())
    return out, None


def load_train_data(
    config: TrainConfig,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    splits: data.Splits | None = None,
    log: Callable[[str], None] = print,
    note: str = "",
) -> TrainData:
    """Open `config.data_source` (or the given built-in `splits`), split off validation, build pipelines."""
    images = data.open_data(
        config.data_source, **config.data_options(), data_dir=data_dir, splits=splits, log=log
    )
    d = images.description
    log(
        f"data: {images.name} from {images.source}{note}: {d.splits['train']} train, "
        f"{d.splits['validation']} validation, {d.splits['test']} test images, "
        f"{len(d.class_names)} classes, input {'×'.join(map(str, images.input_shape))}"
    )
    # The shuffle/augmentation seeds combine the op seed with the global one.
    tf.keras.utils.set_random_seed(config.seed)
    train_ds = images.dataset(
        "train", batch_size=config.batch_size, training=True, augment=config.augment,
        seed=config.seed,
    )  # fmt: skip
    validation = (
        images.dataset("validation", batch_size=EVAL_BATCH_SIZE) if len(images.val_part) else None
    )
    n_train = len(images.train_part)
    return TrainData(
        splits=images,
        train=train_ds,
        test=images.dataset("test", batch_size=EVAL_BATCH_SIZE),
        validation=validation,
        train_images=n_train,
        steps_per_epoch=-(-n_train // config.batch_size),
    )


def write_run_file(
    out: Path, config: TrainConfig, splits: data.Splits, *, extra: dict | None = None
) -> None:
    """`run.json`: the settings a later run is compared with before resuming.

    `extra` adds keys (e.g. the optimizer the run resolved and why).
    """
    atomic.write_json(
        out / RUN_FILE,
        {
            "config": config.to_dict(),
            "data_source": splits.source,
            "bnn_tf_version": __version__,
            **(
                {"data": splits.description.to_dict()} if isinstance(splits, data.ImageData) else {}
            ),
            **(extra or {}),
        },
    )


def read_run_file(out_dir: str | os.PathLike[str]) -> dict | None:
    """The `run.json` in `out_dir`, or None if there is none."""
    path = Path(out_dir) / RUN_FILE
    return json.loads(path.read_text()) if path.exists() else None


def remove_empty_backup(out_dir: str | os.PathLike[str]) -> None:
    """Delete `out_dir/backup` if a finished `fit` left it empty (BackupAndRestore does)."""
    backup = Path(out_dir) / BACKUP_DIR
    if backup.is_dir() and not any(backup.iterdir()):
        backup.rmdir()


# Names that moved up to `bnn_tf.experiment` (issue 18).
MOVED = {"train": "bnn_tf.experiment.train"}

__getattr__ = moved_names(__name__, MOVED)
