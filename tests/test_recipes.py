"""Recipes: stage transforms, distillation losses, two-stage resume, the CLI's --recipe."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import tensorflow as tf

from bnn_tf import data, distill, experiment, recipes, training
from bnn_tf import models as zoo
from bnn_tf.cli import main
from bnn_tf.errors import ConfigError

REAL, BINARY = recipes.RECIPES["two_stage"].stages
NO_CLIP, CLIP = recipes.RECIPES["delayed_clipping"].stages


def test_stage_epochs_split_and_validation():
    two = recipes.get("two_stage")
    assert two.stage_epochs(2) == [1, 1]
    assert two.stage_epochs(3) == [1, 2]
    assert two.stage_epochs(8) == [4, 4]
    assert recipes.get("single_stage").stage_epochs(5) == [5]
    with pytest.raises(ConfigError, match="needs ≥ 2 epochs"):
        two.stage_epochs(1)
    with pytest.raises(ConfigError, match="unknown recipe"):
        recipes.get("three_stage")
    with pytest.raises(ConfigError, match="weight_clip"):
        recipes.Recipe("bad", (recipes.StageConfig("s", weight_clip="maybe"),)).validate()


def test_real_weight_stage_removes_only_the_kernel_quantizer():
    base = zoo.build("bnn_small")
    stage1 = recipes.stage_model(base, REAL)
    for name in ("conv1", "conv5"):
        layer = stage1.get_layer(name)
        assert layer.kernel_quantizer is None and layer.kernel_constraint is None
        assert type(layer.input_quantizer).__name__ == "SteSign"  # activations stay binary
        assert layer.pad_values == 1.0
    for a, b in zip(stage1.get_weights(), base.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    # The real-weight conv really is real: its output changes with the kernel's magnitude.
    x = np.random.default_rng(0).normal(size=(2, 28, 28, 1)).astype(np.float32)
    conv = stage1.get_layer("conv1")
    conv.kernel.assign(conv.kernel * 0.5)
    assert not np.allclose(stage1.predict(x, verbose=0), base.predict(x, verbose=0))


def test_delayed_clipping_stages_configure_clips_and_bn_momentum():
    base = zoo.build("bnn_small")
    early, late = recipes.stage_model(base, NO_CLIP), recipes.stage_model(base, CLIP)
    e, lt = early.get_layer("conv2"), late.get_layer("conv2")
    assert e.kernel_quantizer.clip_value is None and e.input_quantizer.clip_value is None
    assert e.kernel_constraint is None
    assert lt.kernel_quantizer.clip_value == 1.0 and lt.input_quantizer.clip_value == 1.0
    assert type(lt.kernel_constraint).__name__ == "WeightClip"
    assert late.get_layer("bn2").momentum == pytest.approx(CLIP.bn_momentum)
    assert early.get_layer("bn2").momentum == pytest.approx(base.get_layer("bn2").momentum)


def test_kd_loss_and_attention_map_match_their_formulas(rng):
    s = rng.normal(size=(4, 10)).astype(np.float32)
    t = rng.normal(size=(4, 10)).astype(np.float32)
    T = 3.0

    def softmax(z):
        e = np.exp(z - z.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    p_t, p_s = softmax(t / T), softmax(s / T)
    expected = T**2 * np.mean(np.sum(p_t * (np.log(p_t) - np.log(p_s)), axis=-1))
    assert float(distill.kd_loss(s, t, T)) == pytest.approx(expected, rel=1e-5)
    assert float(distill.kd_loss(t, t, T)) == pytest.approx(0.0, abs=1e-6)

    x = rng.normal(size=(2, 3, 3, 5)).astype(np.float32)
    a = (x**2).mean(-1).reshape(2, -1)
    np.testing.assert_allclose(
        distill.attention_map(x).numpy(), a / np.linalg.norm(a, axis=1, keepdims=True), rtol=1e-5
    )


def test_matching_layers_pick_the_last_bn_of_each_resolution():
    student, teacher = zoo.build("bnn_small"), zoo.build("bnn_small_float")
    assert distill.matching_layers(student, teacher) == ["stem_bn", "bn2", "bn4", "bn5"]


def test_distiller_trains_the_student_only(fmnist_small):
    tf.keras.utils.set_random_seed(0)
    student, teacher = zoo.build("bnn_small"), zoo.build("bnn_small_float")
    distiller = distill.Distiller(
        student,
        teacher,
        temperature=2.0,
        alpha=0.5,
        attention_layers=["bn4"],
        attention_weight=10.0,
    )
    training.compile_model(distiller)
    t_before = [w.copy() for w in teacher.get_weights()]
    s_before = student.get_layer("logits").get_weights()[0].copy()
    hist = distiller.fit(
        fmnist_small["x_train"][:256],
        fmnist_small["y_train"][:256],
        batch_size=128,
        epochs=1,
        verbose=0,
    )
    for a, b in zip(teacher.get_weights(), t_before, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(student.get_layer("logits").get_weights()[0], s_before)
    assert hist.history["kd_loss"][0] > 0 and hist.history["at_loss"][0] > 0


class _Interrupt(Exception):
    pass


class _KillAtThirdEpoch(tf.keras.callbacks.Callback):
    """Raise when the third student epoch starts: stage 1 (1 epoch) and stage 2's first are done."""

    started = 0

    def on_epoch_begin(self, epoch, logs=None):
        type(self).started += 1
        if type(self).started == 3:
            raise _Interrupt


class _CountEpochs(tf.keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.epochs: list[int] = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(epoch)


def test_killed_two_stage_run_resumes_in_the_right_stage(tmp_path, fmnist):
    train = data.make_dataset(
        fmnist.x_train[:256], fmnist.y_train[:256], batch_size=128, training=True
    )

    def build():
        tf.keras.utils.set_random_seed(0)
        return zoo.build("bnn_small")

    kwargs = {"epochs": 3, "out_dir": tmp_path, "steps_per_epoch": 2, "verbose": 0}
    with pytest.raises(_Interrupt):
        recipes.run("two_stage", build, train, callbacks=[_KillAtThirdEpoch()], **kwargs)
    assert (tmp_path / "1_real_weights" / recipes.STAGE_FILE).exists()
    assert not (tmp_path / "2_binary" / recipes.STAGE_FILE).exists()
    stage1_mtime = (tmp_path / "1_real_weights" / "model.keras").stat().st_mtime

    lines: list[str] = []
    counter = _CountEpochs()
    model, record = recipes.run(
        "two_stage", build, train, callbacks=[counter], log=lines.append, **kwargs
    )
    text = "\n".join(lines)
    assert "stage real_weights: already finished" in text
    assert "resuming stage binary: 1 of 2 epochs already done" in text
    assert counter.epochs == [1]  # only stage 2's second epoch ran again
    assert (tmp_path / "1_real_weights" / "model.keras").stat().st_mtime == stage1_mtime
    history = json.loads((tmp_path / "history.json").read_text())
    assert [(r["epoch"], r["stage"]) for r in history] == [
        (1, "real_weights"),
        (2, "binary"),
        (3, "binary"),
    ]
    assert record["stage_epochs"] == [1, 2]
    # The final model is the fully binary one, its kernels flipped by Bop to ±1.
    kernel = model.get_layer("conv3").kernel.latent_variable.numpy()
    assert set(np.unique(kernel)) <= {-1.0, 1.0}


def test_cli_passes_recipe_and_optimizer_to_the_train_config():
    from bnn_tf.cli import _train_config, build_parser

    args = build_parser().parse_args(
        ["train", "bnn_small", "--recipe", "two_stage_kd", "--optimizer", "bop2", "--out", "x"]
    )
    config = _train_config(args)
    assert (config.recipe, config.optimizer) == ("two_stage_kd", "bop2")
    defaults = _train_config(build_parser().parse_args(["train", "bnn_small", "--out", "x"]))
    assert (defaults.recipe, defaults.optimizer) == (None, None)
    with pytest.raises(SystemExit) as exc:  # argparse rejects an unknown recipe
        main(["train", "bnn_small", "--recipe", "nope", "--out", "x"])
    assert exc.value.code == 2


def test_train_with_kd_recipe_end_to_end_and_old_run_json_compat(tmp_path, fmnist):
    # Small test split: the per-epoch evaluation dominates the cost otherwise.
    splits = dataclasses.replace(fmnist, x_test=fmnist.x_test[:256], y_test=fmnist.y_test[:256])
    config = training.TrainConfig(
        model="bnn_small", epochs=2, limit_train=256, recipe="two_stage_kd_at"
    )
    out = tmp_path / "kd"
    summary = experiment.train(config, out, splits=splits, verbose=0, log=lambda m: None)
    assert summary["recipe"] == "two_stage_kd_at" and summary["stage_epochs"] == [1, 1]
    assert [s["stage"] for s in summary["stages"]] == ["teacher", "real_weights", "binary"]
    assert 0.0 <= summary["test_accuracy"] <= 1.0
    history = json.loads((out / "history.json").read_text())
    assert history[-1]["kd_loss"] > 0 and history[-1]["at_loss"] > 0
    assert "bop_gamma" in history[-1] and "flip_ratio_epoch" in history[-1]
    model = tf.keras.models.load_model(out / "model.keras")
    assert type(model.get_layer("conv1").kernel_quantizer).__name__ == "SteSign"
    assert model.get_layer("conv1").kernel_constraint is None
    run = json.loads((out / "run.json").read_text())["config"]
    assert run["recipe"] == "two_stage_kd_at" and run["optimizer"] is None
    # Rerunning the same configuration reuses the finished run.
    again = experiment.train(config, out, splits=splits, verbose=0, log=lambda m: None)
    assert again["test_accuracy"] == summary["test_accuracy"]

    # A run.json written before `optimizer`/`recipe` existed still resumes.
    old = tmp_path / "old"
    old.mkdir()
    plain = training.TrainConfig(model="bnn_small")
    legacy = {k: v for k, v in plain.to_dict().items() if k not in ("optimizer", "recipe")}
    (old / training.RUN_FILE).write_text(json.dumps({"config": legacy}))
    assert training.check_resume(old, plain) == "resume"
