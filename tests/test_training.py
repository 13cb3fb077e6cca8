"""bnn_tf.training and experiment.train: Bop+Adam wiring, files written, resume after interruption, refusals."""

from __future__ import annotations

import dataclasses
import json

import larq as lq
import pytest
import tensorflow as tf

from bnn_tf import experiment, optimizers, training
from bnn_tf import models as zoo
from bnn_tf.errors import ConfigError, ResumeMismatchError


def test_bop_claims_exactly_the_binary_kernels():
    model = zoo.build("bnn_small")
    binary = [v.name for v in model.trainable_variables if lq.optimizers.Bop.is_binary_variable(v)]
    assert len(binary) == 5 and all("kernel" in n and n.startswith("conv") for n in binary)
    opt = optimizers.bop_adam()
    assert isinstance(opt, lq.optimizers.CaseOptimizer)


def test_bop_flips_binary_weights_and_keeps_them_binary(fmnist_small):
    tf.keras.utils.set_random_seed(0)
    model = training.compile_model(zoo.build("bnn_small"))
    conv = model.get_layer("conv2")
    before = tf.sign(conv.kernel).numpy()
    model.fit(
        fmnist_small["x_train"][:512], fmnist_small["y_train"][:512], batch_size=64, verbose=0
    )
    after = conv.kernel.numpy()
    # Bop stores ±1 weights (no latent magnitudes) and flips some of them.
    assert set(abs(after).ravel().tolist()) == {1.0}
    assert (before != after).mean() > 0


def _config(**kw):
    base = dict(model="bnn_small", epochs=2, batch_size=128, limit_train=512)
    base.update(kw)
    return training.TrainConfig(**base)


class _CtrlCDuringEpoch(tf.keras.callbacks.Callback):
    """Simulates Ctrl-C a few steps into epoch `epoch` (0-based)."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch
        self.current = -1

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.current == self.epoch and batch == 1:
            raise KeyboardInterrupt


def test_train_writes_model_history_plot_and_summary(tmp_path, fmnist):
    summary = experiment.train(_config(), tmp_path, splits=fmnist, verbose=0, log=lambda s: None)
    for name in ("model.keras", "history.json", "curves.png", "run.json", "train_summary.json"):
        assert (tmp_path / name).is_file(), name
    assert not (tmp_path / "backup").exists(), "a finished run leaves no backup behind"
    history = json.loads((tmp_path / "history.json").read_text())
    assert [r["epoch"] for r in history] == [1, 2]
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", "seconds"} <= set(
        history[0]
    )
    assert 0.1 < summary["test_accuracy"] <= 1.0
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
    loaded = tf.keras.models.load_model(tmp_path / "model.keras")
    assert loaded.count_params() == zoo.build("bnn_small").count_params()


def test_interrupted_training_resumes_from_last_finished_epoch(tmp_path, fmnist, monkeypatch):
    config = _config(epochs=3)
    real_fit = training.fit

    def fit_then_interrupt(*args, **kwargs):
        kwargs["callbacks"] = [_CtrlCDuringEpoch(2)]
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(training, "fit", fit_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        experiment.train(config, tmp_path, splits=fmnist, verbose=0, log=lambda s: None)
    monkeypatch.setattr(training, "fit", real_fit)
    assert training.resume_epoch(tmp_path) == 2
    assert not (tmp_path / "model.keras").exists()

    logs: list[str] = []
    experiment.train(config, tmp_path, splits=fmnist, verbose=0, log=logs.append)
    assert any("resuming: 2 of 3" in line for line in logs)
    history = json.loads((tmp_path / "history.json").read_text())
    assert [r["epoch"] for r in history] == [1, 2, 3]
    # The resumed epoch continued the cosine schedule instead of restarting it.
    assert history[2]["learning_rate"] < history[1]["learning_rate"] < history[0]["learning_rate"]


def test_finished_run_is_reused_and_other_settings_are_refused(tmp_path, fmnist):
    first = experiment.train(
        _config(epochs=1), tmp_path, splits=fmnist, verbose=0, log=lambda s: None
    )
    mtime = (tmp_path / "model.keras").stat().st_mtime_ns
    logs: list[str] = []
    again = experiment.train(_config(epochs=1), tmp_path, splits=fmnist, verbose=0, log=logs.append)
    assert again == first and (tmp_path / "model.keras").stat().st_mtime_ns == mtime
    assert any("reusing" in line for line in logs)
    with pytest.raises(ResumeMismatchError, match="batch_size"):
        experiment.train(_config(epochs=1, batch_size=64), tmp_path, splits=fmnist, verbose=0)
    assert (tmp_path / "model.keras").stat().st_mtime_ns == mtime  # nothing overwritten


@pytest.mark.parametrize("field,value", [("epochs", 0), ("batch_size", -1), ("limit_train", 0)])
def test_bad_settings_are_refused(field, value, tmp_path):
    with pytest.raises(ConfigError, match=field):
        experiment.train(_config(**{field: value}), tmp_path)


def test_bop_gamma_schedule_decays_to_zero_and_bad_names_are_refused(tmp_path, fmnist):
    config = _config(bop_gamma_schedule="cosine")
    experiment.train(config, tmp_path, splits=fmnist, verbose=0, log=lambda s: None)
    history = json.loads((tmp_path / "history.json").read_text())
    gammas = [r["bop_gamma"] for r in history]
    assert gammas[0] < optimizers.BopAdamConfig.gamma, "γ decays within the first epoch"
    assert gammas[-1] == pytest.approx(0.0, abs=1e-9), "cosine ends at 0: no more flips"
    with pytest.raises(ConfigError, match="bop_gamma_schedule must be one of"):
        experiment.train(_config(bop_gamma_schedule="exp"), tmp_path / "bad", splits=fmnist)


def _steps(name: str, jit: bool, fmnist_small, steps: int):
    tf.keras.utils.set_random_seed(0)
    model = training.compile_model(zoo.build(name), jit_compile=jit)
    assert model._jit_compile is jit
    losses = [
        model.train_on_batch(
            fmnist_small["x_train"][i * 128 : (i + 1) * 128],
            fmnist_small["y_train"][i * 128 : (i + 1) * 128],
        )[0]
        for i in range(steps)
    ]
    return losses, model


def test_jit_compile_runs_the_same_training_step(fmnist_small):
    # A float model: XLA only reorders float sums, so loss and update agree to rounding.
    (plain, plain_model), (xla, xla_model) = (
        _steps("bnn_small_float", jit, fmnist_small, 1) for jit in (False, True)
    )
    assert xla[0] == pytest.approx(plain[0], rel=1e-5)
    # Adam's first step is ≈ ±lr wherever |g| ≫ ε, so a gradient within rounding of
    # 0 may step the other way; everywhere else the updates agree.
    for layer in ("logits", "conv2"):
        a = plain_model.get_layer(layer).kernel.numpy()
        b = xla_model.get_layer(layer).kernel.numpy()
        assert (abs(a - b) > 1e-5).mean() < 0.02, layer


def test_jit_compile_trains_binary_kernels_with_bop_like_the_plain_step(fmnist_small):
    # A binary net amplifies rounding (an activation at ±0 can change sign), so the
    # check is statistical: after 6 steps Bop holds (almost) the same ±1 weights.
    (plain, plain_model), (xla, xla_model) = (
        _steps("bnn_small", jit, fmnist_small, 6) for jit in (False, True)
    )
    assert xla[0] == pytest.approx(plain[0], rel=1e-2)
    assert xla[-1] < 0.8 * xla[0] and plain[-1] < 0.8 * plain[0], (plain, xla)
    a = plain_model.get_layer("conv2").kernel.numpy()
    b = xla_model.get_layer("conv2").kernel.numpy()
    assert set(abs(b).ravel().tolist()) == {1.0}, "Bop keeps XLA-trained kernels binary"
    assert (a == b).mean() > 0.9, "the same weights, up to flips decided by rounding"


def test_jit_compile_training_resumes_without_it_and_is_refused_with_a_recipe(tmp_path, fmnist):
    first = experiment.train(
        _config(epochs=1, jit_compile=True), tmp_path, splits=fmnist, verbose=0, log=lambda s: None
    )
    assert 0.1 < first["test_accuracy"] <= 1.0
    logs: list[str] = []
    again = experiment.train(_config(epochs=1), tmp_path, splits=fmnist, verbose=0, log=logs.append)
    assert again == first and any("reusing" in line for line in logs)
    with pytest.raises(ConfigError, match="--jit-compile or --recipe"):
        experiment.train(
            _config(jit_compile=True, recipe="two_stage"), tmp_path / "r", splits=fmnist
        )


def test_a_model_without_binary_kernels_trains_with_adam_whatever_the_config():
    float_model, binary_model = zoo.build("bnn_small_float"), zoo.build("bnn_small")
    bop = optimizers.OptimizerConfig(name="bop")
    assert not training.has_binary_variables(float_model)
    assert training.optimizer_for_model(float_model, bop).name == "adam"
    assert training.optimizer_for_model(binary_model, bop) == bop
    # compile_model applies it: a CaseOptimizer with nothing for Bop would be refused.
    training.compile_model(float_model, optimizer_config=bop, steps_per_epoch=2, epochs=1)
    assert not isinstance(float_model.optimizer, lq.optimizers.CaseOptimizer)


@pytest.fixture()
def paper_model():
    """bnn_small registered again as a model whose paper trains it with Adam."""
    from bnn_tf.models import registry

    name = "paper_adam_small"
    zoo.register(
        name,
        description="test model",
        lce_binary=True,
        default_input_shape=(28, 28, 1),
        training={"name": "adam", "learning_rate": 2e-3, "why": "the test paper says Adam"},
    )(zoo.info("bnn_small").factory)
    yield name
    registry._REGISTRY.pop(name)


def test_the_papers_optimizer_is_the_default_and_flags_override_it(paper_model):
    from bnn_tf.models import registry

    choice = experiment.choose_optimizer(training.TrainConfig(model=paper_model))
    assert (choice.source, choice.config.name, choice.config.learning_rate) == (
        "paper",
        "adam",
        2e-3,
    )
    assert choice.why == "the test paper says Adam"
    assert experiment.default_training(paper_model) == choice
    # A value the user changed wins over the paper's; --optimizer replaces it whole.
    tuned = experiment.choose_optimizer(training.TrainConfig(model=paper_model, learning_rate=5e-4))
    assert (tuned.config.name, tuned.config.learning_rate) == ("adam", 5e-4)
    assert "overridden" in tuned.why
    # Also a value equal to the library's default: given is given.
    library_rate = optimizers.BopAdamConfig.learning_rate
    same = experiment.choose_optimizer(
        training.TrainConfig(model=paper_model, learning_rate=library_rate)
    )
    assert same.config.learning_rate == library_rate != 2e-3
    flag = experiment.choose_optimizer(training.TrainConfig(model=paper_model, optimizer="bop"))
    assert (flag.source, flag.config.name) == ("--optimizer", "bop")
    recipe = experiment.choose_optimizer(
        training.TrainConfig(model=paper_model, recipe="delayed_clipping"),
        experiment.recipes.get("delayed_clipping"),
    )
    assert (recipe.source, recipe.config.name) == ("recipe", "adam")
    # A model that registers no training gets the library default (Bop + Adam).
    zoo.register(
        "no_paper_small", description="test model", lce_binary=True,
        default_input_shape=(28, 28, 1),
    )(zoo.info("bnn_small").factory)  # fmt: skip
    try:
        library = experiment.choose_optimizer(training.TrainConfig(model="no_paper_small"))
    finally:
        registry._REGISTRY.pop("no_paper_small")
    assert (library.source, library.config.name) == ("library", "bop")


def test_train_uses_and_records_the_papers_optimizer(paper_model, tmp_path, fmnist):
    # Small test split: the per-epoch evaluation dominates the cost otherwise.
    small = dataclasses.replace(fmnist, x_test=fmnist.x_test[:256], y_test=fmnist.y_test[:256])
    summary = experiment.train(
        _config(model=paper_model, epochs=1, limit_train=256), tmp_path, splits=small,
        verbose=0, log=lambda s: None,
    )  # fmt: skip
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["optimizer"]["source"] == "paper" and run["optimizer"]["config"]["name"] == "adam"
    assert summary["optimizer"] == "adam" and summary["optimizer_choice"] == run["optimizer"]
    model = tf.keras.models.load_model(tmp_path / "model.keras")
    # Adam on latent weights: the kernels got the BinaryConnect clip and are not ±1.
    assert isinstance(model.get_layer("conv2").kernel_constraint, lq.constraints.WeightClip)
    assert set(abs(model.get_layer("conv2").kernel.numpy()).ravel().tolist()) != {1.0}
    assert run["optimizer"]["config"]["learning_rate"] == 2e-3


def test_resume_refuses_when_the_default_optimizer_changed(paper_model, tmp_path, fmnist):
    config = _config(model=paper_model, epochs=1, limit_train=256)
    bop = optimizers.OptimizerConfig(name="bop").to_dict()
    (tmp_path / training.RUN_FILE).write_text(
        json.dumps({"config": config.to_dict(), "optimizer": {"config": bop}})
    )
    with pytest.raises(ResumeMismatchError, match="optimizer"):
        experiment.train(config, tmp_path, splits=fmnist, verbose=0, log=lambda s: None)


def test_an_older_run_json_with_the_library_values_reads_as_not_given(tmp_path):
    # Before these fields defaulted to None, run.json stored the library's values for them.
    config = _config(model="bnn_small", epochs=1, limit_train=256)
    old = {
        **config.to_dict(),
        "learning_rate": optimizers.BopAdamConfig.learning_rate,
        "bop_threshold": optimizers.BopAdamConfig.threshold,
        "bop_gamma": optimizers.BopAdamConfig.gamma,
    }
    (tmp_path / training.RUN_FILE).write_text(json.dumps({"config": old}))
    assert training.check_resume(tmp_path, config) == "resume"
    given = dataclasses.replace(config, learning_rate=5e-4)
    with pytest.raises(ResumeMismatchError, match="learning_rate: None → 0.0005"):
        training.check_resume(tmp_path, given)


def test_a_papers_training_with_unknown_keys_is_a_clear_error(paper_model):
    from bnn_tf.models import registry

    info = registry._REGISTRY[paper_model]
    registry._REGISTRY[paper_model] = dataclasses.replace(info, training={"name": "adam", "lr": 1})
    with pytest.raises(ConfigError, match="'lr'"):
        experiment.choose_optimizer(training.TrainConfig(model=paper_model))


def test_moved_names_say_where_they_went():
    from bnn_tf import recipes

    for module, name in ((training, "train"), (recipes, "train"), (recipes, "zoo_model_kwargs")):
        with pytest.raises(AttributeError, match=f"moved to bnn_tf.experiment.{name}"):
            getattr(module, name)
    with pytest.raises(AttributeError, match="no attribute"):
        training.no_such_name  # noqa: B018
    # The distillation names still import from recipes, as before bnn_tf.distill.
    from bnn_tf import distill

    assert recipes.kd_loss is distill.kd_loss and recipes.Distiller is distill.Distiller
