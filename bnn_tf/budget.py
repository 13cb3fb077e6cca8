"""Training within a time budget: measure the step time, plan the epochs, stop at the deadline.

`bnn-tf train MODEL --time-budget MINUTES` (or `TrainConfig(time_budget=...)`)
trains as many epochs as fit in the budget, planned *before* training so that
every schedule (learning rate, Bop γ, ReCU's τ, EDE, recipe stages) is built
for the planned length and ends at the budget:

1. **Measure.** A throw-away copy of the model, compiled with the run's
   optimizer, trains a few batches; the batches after the first (which
   traces the graph) give the step time. A few validation batches give the
   evaluation time. With a distilling recipe, the float teacher is measured
   the same way.
2. **Plan.** `epochs = ⌊(budget − measurement − fixed) · (1 − margin) / epoch⌋`,
   with `epoch = steps_per_epoch · step + validation`, `fixed` the teacher's
   epochs, one graph tracing per stage and the final test evaluation, and
   `margin` (5 %) for what the measurement misses. A distilled step is
   counted as a student step plus half a teacher step (the teacher's forward
   pass only); this is an estimate, and step 3 holds the budget regardless.
3. **Re-plan.** A single-stage run checks the plan after every epoch: when
   the epochs take longer (or less) than measured, it changes the number of
   epochs to what now fits before the deadline (never more than the first
   plan), and its schedules end there: the optimizer's (learning rate, Bop γ
   and τ) and the methods' epoch schedules (ReCU's τ, EDE, expansion) follow a
   `Stretch` that maps each step to where the schedules built for the first
   plan stand, continuously, compressed from that epoch on. Recipes with
   several stages keep their first plan.
4. **Stop.** `StopAtDeadline` ends training at the first batch past the
   deadline (the budget minus the final evaluation and saving), and at an
   epoch's end when the next epoch, as long as the longest so far, would
   pass it. The model, history and summary are written as for a finished
   run, so the budget holds even when the plan was optimistic (a busy
   machine, a slow first epoch).

The plan is written into `run.json`, and every re-plan too; a resumed run
keeps them and its deadline counts the epochs already trained (their
`seconds` in each `history.json`).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import tensorflow as tf

from bnn_tf import training
from bnn_tf.errors import ConfigError

# Share of the budget kept free for what the measurement does not see (epoch-end
# checkpoints, plots, the Python between epochs).
MARGIN = 0.05
# Batches timed after the first one (which traces the graph) and the warm-up ones.
MEASURED_STEPS = 12
# Batches after tracing that run slower than the rest of the epoch (oneDNN creates its
# primitives, tf.data's AUTOTUNE ramps up): on meliusnet_small the 8 right after tracing took
# 1.17x the steady step, so a plan built on them left a sixth of the budget unused.
WARMUP_STEPS = 4
VALIDATION_STEPS = 3
# Forward pass of the teacher in a distillation step, as a share of its training step.
TEACHER_FORWARD_SHARE = 0.5


@dataclass(frozen=True)
class Plan:
    """What a budgeted run measured and planned (`run.json` and the summary keep it)."""

    minutes: float
    epochs: int
    step_seconds: float
    trace_seconds: float
    validation_seconds: float
    epoch_seconds: float
    measure_seconds: float
    fixed_seconds: float
    planned_seconds: float
    teacher_step_seconds: float | None = None
    final_seconds: float = 0.0

    def describe(self) -> str:
        return (
            f"{self.minutes:g} min → {self.epochs} epochs of ≈{self.epoch_seconds:.1f} s "
            f"(step {1000 * self.step_seconds:.1f} ms measured, graph tracing "
            f"{self.trace_seconds:.1f} s, measuring took {self.measure_seconds:.1f} s); "
            f"planned {self.planned_seconds / 60:.1f} min"
        )

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Plan:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


@dataclass(frozen=True)
class StepTiming:
    """Seconds of a model's first training batch (tracing), of the ones after it, and of
    evaluating one image."""

    trace_seconds: float
    step_seconds: float
    evaluation_seconds_per_image: float


class _BatchClock(tf.keras.callbacks.Callback):
    def __init__(self) -> None:
        super().__init__()
        self.ends: list[float] = []

    def on_train_batch_end(self, batch, logs=None):
        self.ends.append(time.perf_counter())


def _images(dataset: tf.data.Dataset) -> list[int]:
    return [int(tf.shape(x)[0]) for x, *_ in dataset]


def measure_steps(
    model: tf.keras.Model,
    train_data: tf.data.Dataset,
    validation_data: tf.data.Dataset | None,
    *,
    steps: int = MEASURED_STEPS,
    warmup: int = WARMUP_STEPS,
) -> StepTiming:
    """Train `model` (compiled; it is changed: pass a throw-away copy) for
    `1 + warmup + steps` batches: the first traces the graph, the `warmup` after it are not
    timed (fewer when the data is short), the rest give the step time.

    Raises:
        ConfigError: the training data has fewer than 2 batches.
    """
    clock = _BatchClock()
    start = time.perf_counter()
    model.fit(train_data.take(1 + warmup + steps), epochs=1, verbose=0, callbacks=[clock])
    ends = [start, *clock.ends]
    if len(ends) < 3:
        raise ConfigError(
            "--time-budget measures the step time on the first batches, but the training data "
            f"has only {len(ends) - 1} batch(es). Fix: use more images or a smaller --batch-size."
        )
    trace = ends[1] - ends[0]
    after_trace = len(ends) - 2
    # Short data: skip fewer warm-up batches so that at least half of `steps` (+1) are timed.
    skip = min(warmup, max(after_trace - (steps // 2 + 1), 0))
    step = (ends[-1] - ends[1 + skip]) / (after_trace - skip)
    per_image = 0.0
    if validation_data is not None:
        batches = validation_data.take(VALIDATION_STEPS).cache()
        model.evaluate(batches, verbose=0)  # traces the test graph (and fills the cache)
        start = time.perf_counter()
        model.evaluate(batches, verbose=0)
        per_image = (time.perf_counter() - start) / sum(_images(batches))
    return StepTiming(trace, step, per_image)


def plan(
    minutes: float,
    *,
    student: StepTiming,
    steps_per_epoch: int,
    validation_images: int,
    test_images: int,
    stages: int = 1,
    measure_seconds: float = 0.0,
    teacher: StepTiming | None = None,
    teacher_epochs: int = 0,
    distilled_stages: float = 0.0,
) -> Plan:
    """The epochs that fit in `minutes` (see the module docstring for the formula).

    Args:
        distilled_stages: share of the student's epochs trained through a teacher (0–1).

    Raises:
        ConfigError: not one epoch fits.
    """
    budget = 60.0 * minutes
    step = student.step_seconds
    if teacher is not None and distilled_stages:
        step += distilled_stages * TEACHER_FORWARD_SHARE * teacher.step_seconds
    validation = validation_images * student.evaluation_seconds_per_image
    epoch = steps_per_epoch * step + validation
    final = final_evaluation_seconds(student, test_images)
    fixed = stages * student.trace_seconds + final
    if teacher is not None:
        fixed += teacher.trace_seconds + teacher_epochs * (
            steps_per_epoch * teacher.step_seconds
            + validation_images * teacher.evaluation_seconds_per_image
        )
    available = (budget - measure_seconds - fixed) * (1 - MARGIN)
    epochs = math.floor(available / epoch) if epoch > 0 else 0
    if epochs < 1:
        need = (measure_seconds + fixed + epoch) / (1 - MARGIN) / 60
        raise ConfigError(
            f"a {minutes:g}-minute budget fits no epoch: one epoch takes ≈{epoch:.0f} s "
            f"(step {1000 * step:.0f} ms × {steps_per_epoch} + validation), plus "
            f"{measure_seconds + fixed:.0f} s of measuring, tracing and evaluation "
            f"(≈{need:.1f} min in all). Fix: raise --time-budget, or train on fewer images "
            "(--limit-train) or a smaller model."
        )
    return Plan(
        minutes=minutes,
        epochs=epochs,
        step_seconds=round(step, 5),
        trace_seconds=round(student.trace_seconds, 2),
        validation_seconds=round(validation, 2),
        epoch_seconds=round(epoch, 2),
        measure_seconds=round(measure_seconds, 2),
        fixed_seconds=round(fixed, 2),
        planned_seconds=round(measure_seconds + fixed + epochs * epoch, 1),
        teacher_step_seconds=None if teacher is None else round(teacher.step_seconds, 5),
        final_seconds=round(final, 2),
    )


def final_evaluation_seconds(timing: StepTiming, test_images: int) -> float:
    """The test-set evaluation and the saving after training (twice the evaluation: a guess
    that covers writing model.keras, measured at well under one evaluation here)."""
    return 2 * test_images * timing.evaluation_seconds_per_image


@dataclass
class Stretch:
    """Where schedules built for `epochs` epochs stand at epoch `t` of a re-planned run.

    `stretch(t) = value + (t − anchor)·rate`, in epochs (fractions within an
    epoch). It starts as the identity; `replan(at, planned)` keeps the value at
    epoch `at` and compresses (or extends) the rest so that epoch `planned`
    maps to `epochs`: the schedules end with the new plan and do not jump.
    """

    epochs: int
    planned: int
    anchor: float = 0.0
    value: float = 0.0
    rate: float = 1.0

    def __post_init__(self) -> None:
        self._variables: tuple[tf.Variable, ...] | None = None

    def __call__(self, t: float) -> float:
        return self.value + (float(t) - self.anchor) * self.rate

    def replan(self, at: int, planned: int) -> None:
        if not at < planned <= self.epochs:
            raise ValueError(f"cannot re-plan to {planned} epochs at epoch {at} of {self.epochs}")
        value = self(at)
        self.anchor, self.value, self.planned = float(at), value, planned
        self.rate = (self.epochs - value) / (planned - at)
        if self._variables is not None:
            for var, v in zip(self._variables, (self.anchor, self.value, self.rate), strict=True):
                var.assign(v)

    def variables(self) -> tuple[tf.Variable, ...]:
        """(anchor, value, rate) as variables, which a traced training step reads every step."""
        if self._variables is None:
            self._variables = tuple(
                tf.Variable(v, trainable=False, dtype=tf.float32, name=f"stretch_{n}")
                for n, v in (("anchor", self.anchor), ("value", self.value), ("rate", self.rate))
            )
        return self._variables

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("epochs", "planned", "anchor", "value", "rate")}


class StretchedSchedule(tf.keras.optimizers.schedules.LearningRateSchedule):
    """`schedule` evaluated at the step where a `Stretch` says the first plan stands.

    Only while a re-planning run trains: `StopAtDeadline` puts the original back
    at the end, so a saved optimizer holds the built-in Keras schedule.
    """

    def __init__(self, schedule, stretch: Stretch, steps_per_epoch: int) -> None:
        self.schedule = schedule
        self.stretch = stretch
        self.steps_per_epoch = float(steps_per_epoch)

    def __call__(self, step):
        anchor, value, rate = self.stretch.variables()
        epoch = tf.cast(step, tf.float32) / self.steps_per_epoch
        return self.schedule((value + (epoch - anchor) * rate) * self.steps_per_epoch)

    def get_config(self) -> dict:
        return self.schedule.get_config()


def stretch_schedules(optimizer, stretch: Stretch, steps_per_epoch: int) -> list[tuple]:
    """Put every schedule of `optimizer` (and of a CaseOptimizer's parts) on `stretch`.

    Returns:
        `(optimizer, hyper-parameter name, original schedule)` per schedule, to put back.
    """
    swapped = []
    for opt in list(getattr(optimizer, "optimizers", None) or [optimizer]):
        for name, hyper in list(getattr(opt, "_hyper", {}).items()):
            if isinstance(hyper, tf.keras.optimizers.schedules.LearningRateSchedule):
                opt._set_hyper(name, StretchedSchedule(hyper, stretch, steps_per_epoch))
                swapped.append((opt, name, hyper))
    return swapped


class StopAtDeadline(tf.keras.callbacks.Callback):
    """Stop training at `deadline` (a `time.perf_counter()` value), re-planning on the way.

    At the first batch that ends past it, or at the end of an epoch when one
    more epoch as long as the longest so far would pass it. `stopped` tells
    whether it did: then the schedules did not reach their end.

    With a `stretch`, every epoch's end also re-plans: the epochs that now fit
    (at the longest epoch so far, not counting the session's first, which traces
    the graph, once there are others; at most the first plan's `stretch.epochs`)
    become the plan when they differ from it, the schedules are stretched to
    end there (`Stretch`), and training ends after that epoch without counting
    as stopped. `on_replan(record)` is told each change (to save it);
    `replans` keeps them. `set_epoch_schedules` gives it the methods' epoch
    schedules (callbacks with an `epoch_clock`).
    """

    def __init__(
        self,
        deadline: float,
        *,
        stretch: Stretch | None = None,
        on_replan: Callable[[dict], None] | None = None,
    ) -> None:
        super().__init__()
        self.deadline = deadline
        self.stretch = stretch
        self.on_replan = on_replan
        self.stopped = False
        self.replans: list[dict] = []
        self._epoch_start = 0.0
        self._durations: list[float] = []
        self._epoch_schedules: list = []
        self._swapped: list[tuple] = []

    def set_epoch_schedules(self, callbacks) -> None:
        self._epoch_schedules = [cb for cb in callbacks if hasattr(cb, "epoch_clock")]

    def _stop(self) -> None:
        self.stopped = True
        self.model.stop_training = True

    def on_train_begin(self, logs=None):
        if self.stretch is None:
            return
        steps = (self.params or {}).get("steps")
        if not steps:
            raise ValueError("re-planning needs the steps per epoch (data of known length)")
        for cb in self._epoch_schedules:
            cb.epoch_clock = self.stretch
        self._swapped = stretch_schedules(self.model.optimizer, self.stretch, steps)

    def on_train_end(self, logs=None):
        for opt, name, original in self._swapped:
            opt._set_hyper(name, original)
        self._swapped = []

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        if time.perf_counter() >= self.deadline:
            self._stop()

    @property
    def _longest(self) -> float:
        # The first epoch of a session also traces the graph: once others ran, they count.
        return max(self._durations[1:] or self._durations)

    def on_epoch_end(self, epoch, logs=None):
        now = time.perf_counter()
        self._durations.append(now - self._epoch_start)
        done = epoch + 1
        if self.stretch is not None:
            fits = done + math.floor(max(self.deadline - now, 0.0) / self._longest)
            target = min(fits, self.stretch.epochs)
            # Not once the plan's end is reached: the schedules are at their end values.
            if done < self.stretch.planned and target != self.stretch.planned and target > done:
                self._replan(done, target)
            planned = self.stretch.planned
        else:
            planned = (self.params or {}).get("epochs")
        # After the planned last epoch nothing is cut short: `stopped` would say otherwise.
        if planned is not None and done >= planned:
            self.model.stop_training = True
        elif now + self._longest > self.deadline:
            self._stop()

    def _replan(self, done: int, target: int) -> None:
        assert self.stretch is not None
        before = self.stretch.planned
        self.stretch.replan(done, target)
        record = {
            "after_epoch": done,
            "from_epochs": before,
            "epochs": target,
            "epoch_seconds": round(self._longest, 1),
            "stretch": self.stretch.to_dict(),
        }
        self.replans.append(record)
        if self.on_replan is not None:
            self.on_replan(record)


def seconds_trained(out_dir: str | Path) -> float:
    """Seconds of the epochs an earlier, interrupted session of this run already trained."""
    total = 0.0
    for path in Path(out_dir).rglob(training.HISTORY_FILE):
        total += sum(r.get("seconds", 0.0) for r in json.loads(path.read_text()))
    return total


def measure_model(
    build: Callable[[], tf.keras.Model],
    compile_fn: Callable[[tf.keras.Model], object],
    train_data: tf.data.Dataset,
    validation_data: tf.data.Dataset | None,
) -> StepTiming:
    """Build a throw-away model, compile it with `compile_fn`, and time its steps."""
    model = build()
    compile_fn(model)
    return measure_steps(model, train_data, validation_data)


__all__ = [
    "MARGIN",
    "Plan",
    "StepTiming",
    "StopAtDeadline",
    "Stretch",
    "StretchedSchedule",
    "measure_model",
    "measure_steps",
    "plan",
    "seconds_trained",
    "stretch_schedules",
]
