"""`--time-budget`: the planner's formula, the deadline, and a budgeted run end to end."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import tensorflow as tf

from bnn_tf import budget, experiment, training
from bnn_tf.errors import ConfigError, ResumeMismatchError

TIMING = budget.StepTiming(trace_seconds=4.0, step_seconds=0.05, evaluation_seconds_per_image=1e-3)


def test_plan_fits_whole_epochs_after_measuring_tracing_and_evaluation():
    plan = budget.plan(
        2.0, student=TIMING, steps_per_epoch=100, validation_images=1000, test_images=2000,
        measure_seconds=6.0,
    )  # fmt: skip
    epoch = 100 * 0.05 + 1000 * 1e-3  # 6 s
    fixed = 4.0 + 2 * 2000 * 1e-3  # one tracing + the test evaluation and saving
    assert plan.epoch_seconds == pytest.approx(epoch)
    assert plan.final_seconds == pytest.approx(4.0)
    assert plan.epochs == int((120 - 6 - fixed) * (1 - budget.MARGIN) // epoch) == 16
    assert plan.planned_seconds <= 120


def test_a_teacher_and_more_stages_leave_fewer_epochs():
    alone = budget.plan(
        2.0, student=TIMING, steps_per_epoch=100, validation_images=1000, test_images=2000
    )
    teacher = budget.StepTiming(2.0, 0.02, 5e-4)
    distilled = budget.plan(
        2.0, student=TIMING, steps_per_epoch=100, validation_images=1000, test_images=2000,
        stages=2, teacher=teacher, teacher_epochs=3, distilled_stages=1.0,
    )  # fmt: skip
    assert distilled.epochs < alone.epochs
    # The teacher's 3 epochs and a second tracing are fixed costs.
    assert distilled.fixed_seconds == pytest.approx(alone.fixed_seconds + 4.0 + 2.0 + 3 * 2.5)
    assert distilled.step_seconds == pytest.approx(0.05 + budget.TEACHER_FORWARD_SHARE * 0.02)


def test_a_budget_that_fits_no_epoch_is_a_clear_error():
    with pytest.raises(ConfigError, match="fits no epoch.*Fix: raise --time-budget"):
        budget.plan(0.1, student=TIMING, steps_per_epoch=1000, validation_images=10, test_images=10)


class _SlowBatches(tf.keras.callbacks.Callback):
    def __init__(self, seconds: float):
        super().__init__()
        self.seconds = seconds

    def on_train_batch_end(self, batch, logs=None):
        time.sleep(self.seconds)


class _FakeClock:
    """`time` for the budget module only: each call to perf_counter is the next given time."""

    def __init__(self, times: list[float]):
        self.times = iter(times)

    def perf_counter(self) -> float:
        return next(self.times)


@pytest.mark.parametrize(
    ("batches", "expected_step"),
    [
        # 1 tracing (10 s), 4 slow warm-up steps (2 s), 12 steady ones (1 s): only these count
        (17, 1.0),
        # short data: 3 batches leave no warm-up to skip, both steps are timed
        (3, 2.0),
    ],
)
def test_step_time_leaves_out_tracing_and_warm_up(monkeypatch, batches, expected_step):
    warm = [2.0] * min(budget.WARMUP_STEPS, batches - 1)
    steps = [10.0, *warm, *[1.0] * (batches - 1 - len(warm))]
    monkeypatch.setattr(budget, "time", _FakeClock(list(np.cumsum([0.0, *steps]))))
    model = tf.keras.Sequential([tf.keras.Input((2,)), tf.keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    data = tf.data.Dataset.from_tensor_slices((np.zeros((batches, 2)), np.zeros(batches))).batch(1)
    timing = budget.measure_steps(model, data, None)
    assert timing.trace_seconds == pytest.approx(10.0)
    assert timing.step_seconds == pytest.approx(expected_step)


def test_stop_at_deadline_ends_training_at_the_first_batch_past_it():
    model = tf.keras.Sequential([tf.keras.Input((4,)), tf.keras.layers.Dense(2)])
    model.compile("sgd", "mse")
    stopper = budget.StopAtDeadline(time.perf_counter() - 1)  # already past
    x, y = np.ones((64, 4), np.float32), np.ones((64, 2), np.float32)
    history = model.fit(x, y, batch_size=8, epochs=5, verbose=0, callbacks=[stopper])
    assert stopper.stopped and len(history.history["loss"]) == 1
    # At an epoch's end it stops when one more epoch would pass the deadline.
    slow = _SlowBatches(0.05)
    soon = budget.StopAtDeadline(time.perf_counter() + 0.6)  # ~1.5 epochs of 8 × 50 ms
    history = model.fit(x, y, batch_size=8, epochs=5, verbose=0, callbacks=[slow, soon])
    assert soon.stopped and len(history.history["loss"]) == 1
    # The planned last epoch ending close to the deadline is a finished run, not a stopped one.
    # An epoch of 8 × 0.4 s = 3.2 s against 5 s: 1.8 s of slack for a loaded machine's overhead.
    close = budget.StopAtDeadline(time.perf_counter() + 5.0)
    history = model.fit(x, y, batch_size=8, epochs=1, verbose=0,
                        callbacks=[_SlowBatches(0.4), close])  # fmt: skip
    assert not close.stopped and len(history.history["loss"]) == 1
    later = budget.StopAtDeadline(time.perf_counter() + 3600)
    history = model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[later])
    assert not later.stopped and len(history.history["loss"]) == 2


def test_budgeted_run_plans_its_epochs_keeps_the_budget_and_resumes_its_plan(tmp_path, fmnist):
    # Own data (.npz) with a 1 000-image test set, so the final evaluation fits the budget too.
    npz = tmp_path / "images.npz"
    np.savez(
        npz, x_train=fmnist.x_train[:1024], y_train=fmnist.y_train[:1024],
        x_test=fmnist.x_test[:1000], y_test=fmnist.y_test[:1000],
    )  # fmt: skip
    config = training.TrainConfig(
        model="bnn_small", data=str(npz), epochs=1, batch_size=128, val_split=0.125,
        time_budget=0.4,
    )  # fmt: skip
    tmp_path = tmp_path / "run"
    lines: list[str] = []
    summary = experiment.train(config, tmp_path, verbose=0, log=lines.append)
    tb = summary["time_budget"]
    history = json.loads((tmp_path / "history.json").read_text())
    # --epochs 1 is replaced by the plan, which fits more than one epoch of 7 steps in 24 s.
    assert tb["epochs"] > 1 and summary["epochs"] == tb["epochs"]
    assert len(history) == tb["epochs_trained"]
    replanned = tb["replans"][-1]["epochs"] if tb["replans"] else tb["epochs"]
    assert len(history) == replanned or tb["stopped_at_deadline"]
    # The whole run (measuring included) stays within the budget, plus the last batch and
    # the final evaluation and saving running slower than measured: 29.1 s when another
    # test run shared the 2 cores (a clean-clone .ci/run); 22.6 s on the idle machine.
    assert tb["actual_seconds"] <= 0.4 * 60 + 8, tb
    assert json.loads((tmp_path / "run.json").read_text())["time_budget"]["epochs"] == tb["epochs"]
    assert any("time budget: 0.4 min →" in line for line in lines), lines
    assert 0.1 < summary["test_accuracy"] <= 1.0
    # The same command again reuses the finished run; another budget is refused.
    again = experiment.train(config, tmp_path, verbose=0, log=lambda s: None)
    assert again["time_budget"] == tb
    with pytest.raises(ResumeMismatchError, match="time_budget: 0.4 → 0.8"):
        experiment.train(
            training.TrainConfig(**{**config.to_dict(), "time_budget": 0.8}),
            tmp_path, verbose=0, log=lambda s: None,
        )  # fmt: skip


def test_an_optimistic_plan_is_re_planned_and_the_learning_rate_still_ends_at_zero(
    tmp_path, fmnist, monkeypatch
):
    npz = tmp_path / "images.npz"
    np.savez(
        npz, x_train=fmnist.x_train[:1024], y_train=fmnist.y_train[:1024],
        x_test=fmnist.x_test[:500], y_test=fmnist.y_test[:500],
    )  # fmt: skip
    measure = budget.measure_model

    def optimistic(*args, **kwargs):  # as a step time measured on a quiet moment: 1/3
        timing = measure(*args, **kwargs)
        return budget.StepTiming(timing.trace_seconds, timing.step_seconds / 3,
                                 timing.evaluation_seconds_per_image)  # fmt: skip

    monkeypatch.setattr(budget, "measure_model", optimistic)
    config = training.TrainConfig(
        model="bnn_small", data=str(npz), batch_size=128, val_split=0.125, time_budget=0.5
    )
    lines: list[str] = []
    summary = experiment.train(config, tmp_path / "run", verbose=0, log=lines.append)
    tb = summary["time_budget"]
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert tb["replans"] and tb["replans"][0]["after_epoch"] == 1
    assert tb["replans"][0]["epochs"] < tb["epochs"], tb  # fewer than the optimistic plan
    saved = json.loads((tmp_path / "run" / "run.json").read_text())["time_budget"]
    assert saved["replans"] == tb["replans"] and saved["epochs"] == tb["epochs"]
    assert any("instead of" in line for line in lines), lines
    assert tb["actual_seconds"] <= 0.5 * 60 + 8, tb
    if not tb["stopped_at_deadline"]:  # the schedule ran to its (new) end
        assert len(history) == tb["replans"][-1]["epochs"] == tb["epochs_trained"]
        assert history[-1]["adam_learning_rate"] < 1e-6
    # The model is saved with the built-in schedule (loads without bnn_tf's stretch).
    model = tf.keras.models.load_model(tmp_path / "run" / "model.keras")
    assert type(model.optimizer.default._get_hyper("learning_rate")).__name__ == "CosineDecay"


def test_a_stretch_keeps_the_value_so_far_and_ends_with_the_new_plan():
    stretch = budget.Stretch(epochs=10, planned=10)
    assert [stretch(t) for t in (0, 3, 10)] == [0, 3, 10]  # the first plan: identity
    stretch.replan(2, 6)  # after 2 epochs, 6 fit in all
    assert stretch(2) == pytest.approx(2) and stretch(6) == pytest.approx(10)
    assert stretch(4) == pytest.approx(6)  # 8 epochs of schedule over the 4 left
    stretch.replan(4, 8)  # faster again: 8 fit
    assert stretch(4) == pytest.approx(6) and stretch(8) == pytest.approx(10)
    assert budget.Stretch(**stretch.to_dict())(5) == pytest.approx(stretch(5))
    with pytest.raises(ValueError, match="cannot re-plan"):
        stretch.replan(5, 11)  # past the length the schedules were built for


def test_a_stretched_schedule_is_continuous_and_ends_at_the_new_plan():
    steps, epochs = 10, 8
    cosine = tf.keras.optimizers.schedules.CosineDecay(1.0, steps * epochs)
    stretch = budget.Stretch(epochs=epochs, planned=epochs)
    stretched = budget.StretchedSchedule(cosine, stretch, steps)
    for step in (0, 15, 30):
        assert float(stretched(step)) == pytest.approx(float(cosine(step)), abs=1e-6)
    stretch.replan(3, 5)  # two epochs left instead of five
    assert float(stretched(30)) == pytest.approx(float(cosine(30)), abs=1e-6)  # no jump
    assert float(stretched(40)) < float(cosine(40))  # decays faster from here
    assert float(stretched(50)) == pytest.approx(0.0, abs=1e-6)  # ends with the new plan
    assert stretched.get_config() == cosine.get_config()


class _Clock:
    def __init__(self):
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now


def _epochs(stopper, clock, seconds, model):
    """Run the callback through epochs of the given lengths (no training); returns epochs run."""
    for epoch, length in enumerate(seconds):
        stopper.on_epoch_begin(epoch)
        clock.now += length
        stopper.on_epoch_end(epoch)
        if model.stop_training:
            return epoch + 1
    return len(seconds)


def _compiled():
    model = tf.keras.Sequential([tf.keras.Input((2,)), tf.keras.layers.Dense(1)])
    lr = tf.keras.optimizers.schedules.CosineDecay(1e-3, 100)
    model.compile(tf.keras.optimizers.legacy.Adam(lr), "mse")
    return model, lr


class _EpochSchedule:
    epoch_clock = None


def test_slow_epochs_re_plan_the_run_and_its_schedules(monkeypatch):
    clock = _Clock()
    monkeypatch.setattr(budget, "time", clock)
    model, lr = _compiled()
    # Planned 10 epochs of 10 s in 105 s; they take 15 s.
    stopper = budget.StopAtDeadline(105.0, stretch=budget.Stretch(epochs=10, planned=10))
    saved: list[dict] = []
    stopper.on_replan = saved.append
    schedule = _EpochSchedule()
    stopper.set_epoch_schedules([schedule, object()])
    stopper.set_model(model)
    stopper.set_params({"epochs": 10, "steps": 10})
    stopper.on_train_begin()
    assert isinstance(model.optimizer._get_hyper("learning_rate"), budget.StretchedSchedule)
    assert schedule.epoch_clock is stopper.stretch
    ran = _epochs(stopper, clock, [15.0] * 10, model)
    # After epoch 1 at 15 s: 1 + ⌊90 / 15⌋ = 7 epochs; they all fit, none is cut.
    assert saved == stopper.replans and [r["epochs"] for r in saved] == [7]
    assert saved[0]["after_epoch"] == 1 and saved[0]["from_epochs"] == 10
    assert ran == 7 and not stopper.stopped and clock.now <= 105.0
    assert stopper.stretch(7) == pytest.approx(10)  # the schedules end with epoch 7
    stopper.on_train_end()
    assert model.optimizer._get_hyper("learning_rate") is lr  # saved as the built-in schedule


def test_without_a_stretch_slow_epochs_are_cut_at_the_deadline(monkeypatch):
    clock = _Clock()
    monkeypatch.setattr(budget, "time", clock)
    model, _ = _compiled()
    stopper = budget.StopAtDeadline(100.0)  # a recipe with stages: no re-planning
    stopper.set_model(model)
    stopper.set_params({"epochs": 10, "steps": 10})
    stopper.on_train_begin()
    assert _epochs(stopper, clock, [15.0] * 10, model) == 6 and stopper.stopped
    assert not stopper.replans


def test_fast_epochs_win_back_epochs_up_to_the_first_plan(monkeypatch):
    clock = _Clock()
    monkeypatch.setattr(budget, "time", clock)
    model, _ = _compiled()
    stopper = budget.StopAtDeadline(100.0, stretch=budget.Stretch(epochs=8, planned=8))
    stopper.set_model(model)
    stopper.set_params({"epochs": 8, "steps": 10})
    stopper.on_train_begin()
    # A slow first epoch (30 s: it traces the graph) cuts the plan to 1 + ⌊70 / 30⌋ = 3. The
    # next takes 5 s and, counted from then on, wins the epochs back up to the first plan.
    ran = _epochs(stopper, clock, [30.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0], model)
    assert [r["epochs"] for r in stopper.replans] == [3, 8] and ran == 8
    assert not stopper.stopped and stopper.stretch(8) == pytest.approx(8)
    # Once the plan's end is reached, time left over does not add epochs at the end values.
    clock.now, model.stop_training = 0.0, False
    done = budget.StopAtDeadline(100.0, stretch=budget.Stretch(epochs=8, planned=8))
    done.set_model(model)
    done.set_params({"epochs": 8, "steps": 10})
    done.on_train_begin()
    # 30 s epochs: 3 fit; the third ends at 65 s, when a 4th of 30 s would fit in time.
    assert _epochs(done, clock, [30.0, 30.0, 5.0, 5.0, 5.0], model) == 3
    assert [r["epochs"] for r in done.replans] == [3] and not done.stopped
    # Epochs as long as planned (10 s in 100 s) re-plan nothing.
    clock.now, model.stop_training = 0.0, False
    steady = budget.StopAtDeadline(100.0, stretch=budget.Stretch(epochs=8, planned=8))
    steady.set_model(model)
    steady.set_params({"epochs": 8, "steps": 10})
    assert _epochs(steady, clock, [10.0] * 8, model) == 8 and not steady.replans


def test_a_resumed_run_continues_the_saved_re_plan(tmp_path):
    plan = budget.plan(1.0, student=TIMING, steps_per_epoch=10, validation_images=0,
                       test_images=0)  # fmt: skip
    recipe = experiment.recipes.get("single_stage")
    first = experiment._budget_stopper(50.0, plan, tmp_path, recipe, print, [])
    first.stretch.replan(2, plan.epochs - 3)
    saved = [{"epochs": plan.epochs - 3, "stretch": first.stretch.to_dict()}]
    again = experiment._budget_stopper(50.0, plan, tmp_path, recipe, print, saved)
    assert again.stretch == first.stretch and again.replans == saved
    staged = experiment._budget_stopper(50.0, plan, tmp_path, experiment.recipes.get("two_stage"),
                                        print, [])  # fmt: skip
    assert staged.stretch is None


@pytest.mark.parametrize("minutes", ["0", "-3", "soon"])
def test_cli_refuses_a_bad_budget_with_exit_status_2(minutes, tmp_path, capsys):
    from bnn_tf import cli

    try:
        code = cli.main(["train", "bnn_small", "--time-budget", minutes, "--out", str(tmp_path)])
    except SystemExit as exc:  # argparse's own refusal of a non-number
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "time" in err.lower(), err
