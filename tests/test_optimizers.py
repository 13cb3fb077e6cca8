"""Bop/Bop2ndOrder wiring, schedules, set-up warnings and the flip-ratio/hyper-parameter logs."""

from __future__ import annotations

import math
import warnings

import larq as lq
import numpy as np
import pytest
import tensorflow as tf

from bnn_tf import callbacks, optimizers, training
from bnn_tf import models as zoo
from bnn_tf.errors import ConfigError


def _tiny_binary_model(
    *, constraint=None, regularizer=None, quantizer="ste_sign"
) -> tf.keras.Model:
    inputs = tf.keras.Input((4,))
    x = lq.layers.QuantDense(
        6,
        kernel_quantizer=quantizer,
        kernel_constraint=constraint,
        kernel_regularizer=regularizer,
        use_bias=False,
        name="bin",
    )(inputs)
    x = tf.keras.layers.Dense(3, name="head")(x)
    return tf.keras.Model(inputs, x)


# ------------------------------------------------------------- Bop2ndOrder


def test_bop2ndorder_update_matches_formula(rng):
    """One and two steps on hand-made tensors against m, v and the flip rule in numpy."""
    gamma, sigma, tau, eps = 0.5, 0.25, 0.3, 1e-10
    w0 = np.array([1.0, -1.0, 1.0, -1.0, 1.0, -1.0], np.float32)
    var = tf.Variable(w0)
    opt = optimizers.Bop2ndOrder(threshold=tau, gamma=gamma, sigma=sigma, epsilon=eps)
    m = np.zeros(6, np.float32)
    v = np.zeros(6, np.float32)
    w = w0.copy()
    for g in (
        np.array([2.0, -2.0, -1.0, 1.0, 0.1, 0.0], np.float32),
        rng.normal(size=6).astype(np.float32),
    ):
        opt.apply_gradients([(tf.constant(g), var)])
        m = m + gamma * (g - m)
        v = v + sigma * (g * g - v)
        flip = w * m / (np.sqrt(v) + eps) > tau
        w = np.where(flip, -w, w)
        np.testing.assert_allclose(opt.get_slot(var, "m").numpy(), m, rtol=1e-6)
        np.testing.assert_allclose(opt.get_slot(var, "v").numpy(), v, rtol=1e-6)
        np.testing.assert_array_equal(var.numpy(), w)


def test_bop2ndorder_first_step_flips_what_the_rule_says():
    var = tf.Variable([1.0, -1.0, 1.0, -1.0])
    opt = optimizers.Bop2ndOrder(threshold=0.5, gamma=1.0, sigma=1.0)
    # m = g, v = g², ratio = w·sign(g): +1 where g agrees with w → flip.
    opt.apply_gradients([(tf.constant([3.0, 3.0, -0.5, -0.5]), var)])
    np.testing.assert_array_equal(var.numpy(), [-1.0, -1.0, 1.0, 1.0])


@pytest.mark.parametrize(
    ("threshold", "gamma", "cold_start"), [(1e-6, 1e-6, True), (2e-2, 1e-3, False)]
)
def test_bop2ndorder_cold_start_flips_when_tau_is_below_gamma_over_sqrt_sigma(
    threshold, gamma, cold_start, rng
):
    """Step 1: m = γg, v = σg², so m/√v = γ/√σ·sign(g): all agreeing weights flip iff τ < γ/√σ."""
    w = np.where(rng.random(1000) < 0.5, -1.0, 1.0).astype(np.float32)
    g = rng.normal(size=1000).astype(np.float32)
    var = tf.Variable(w)
    optimizers.Bop2ndOrder(threshold=threshold, gamma=gamma, sigma=1e-2).apply_gradients(
        [(tf.constant(g), var)]
    )
    flipped = var.numpy() != w
    np.testing.assert_array_equal(flipped, (w * g > 0) if cold_start else np.zeros_like(flipped))


def test_bop2ndorder_inside_case_optimizer_trains_and_round_trips(tmp_path, fmnist_small):
    tf.keras.utils.set_random_seed(0)
    model = zoo.build("bnn_small")
    opt = optimizers.make_optimizer(
        # τ above γ/√σ = 1e-2: no cold-start flips on step 1, some once m builds up.
        optimizers.OptimizerConfig(
            name="bop2", threshold=1.2e-2, gamma_schedule=optimizers.ScheduleConfig("cosine")
        ),
        steps_per_epoch=4,
        epochs=1,
    )
    assert isinstance(opt, lq.optimizers.CaseOptimizer)
    training.compile_model(model, optimizer=opt)
    x, y = fmnist_small["x_train"][:512], fmnist_small["y_train"][:512]
    before = model.get_layer("conv1").kernel.latent_variable.numpy().copy()
    model.fit(x, y, batch_size=128, epochs=1, verbose=0)
    kernel = model.get_layer("conv1").kernel.latent_variable.numpy()
    # Bop2ndOrder owns the binary kernels: they are exactly ±1 after training ...
    assert set(np.unique(kernel)) <= {-1.0, 1.0}
    assert 0 < np.mean(np.sign(before) != kernel) < 0.4  # some flips, not a random walk (0.5)
    # ... and Adam owns the rest (the float head moved, the stem is not ±1).
    assert len(np.unique(model.get_layer("stem_conv").kernel.numpy())) > 2
    bop2 = opt.optimizers[0]
    assert isinstance(bop2, optimizers.Bop2ndOrder) and int(bop2.iterations) == 4
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = tf.keras.models.load_model(path)
    assert [type(o).__name__ for o in loaded.optimizer.optimizers] == ["Bop2ndOrder", "Adam"]
    np.testing.assert_allclose(
        loaded.predict(x[:16], verbose=0), model.predict(x[:16], verbose=0), atol=1e-5
    )


def test_bop2ndorder_config_round_trip_with_schedule():
    sched = tf.keras.optimizers.schedules.PolynomialDecay(1e-3, 100, end_learning_rate=1e-5)
    opt = optimizers.Bop2ndOrder(threshold=1e-5, gamma=sched, sigma=2e-2)
    clone = optimizers.Bop2ndOrder.from_config(opt.get_config())
    assert optimizers.hyperparameter(clone, "threshold") == pytest.approx(1e-5)
    assert optimizers.hyperparameter(clone, "sigma") == pytest.approx(2e-2)
    assert isinstance(clone._get_hyper("gamma"), tf.keras.optimizers.schedules.PolynomialDecay)


# --------------------------------------------------------------- schedules


@pytest.mark.parametrize(
    ("kind", "kwargs", "expected"),
    [
        ("constant", {}, lambda s: 1e-3),
        ("step", {"factor": 0.1, "every_epochs": 2}, lambda s: 1e-3 * 0.1 ** (s // 20)),
        ("linear", {"final": 1e-5}, lambda s: 1e-3 + (1e-5 - 1e-3) * min(s, 50) / 50),
        (
            "cosine",
            {"final": 1e-5},
            lambda s: 1e-5 + (1e-3 - 1e-5) * 0.5 * (1 + math.cos(math.pi * min(s, 50) / 50)),
        ),
    ],
)
def test_schedules_follow_their_formula(kind, kwargs, expected):
    sched = optimizers.make_schedule(
        1e-3, optimizers.ScheduleConfig(kind, **kwargs), steps_per_epoch=10, epochs=5
    )
    for step in (0, 9, 10, 19, 20, 25, 40, 50):
        value = sched if isinstance(sched, float) else float(sched(step))
        assert value == pytest.approx(expected(step), rel=1e-4), (kind, step)


def test_schedule_and_optimizer_validation():
    with pytest.raises(ConfigError, match="unknown schedule"):
        optimizers.make_schedule(1.0, "exp", steps_per_epoch=1, epochs=1)
    with pytest.raises(ConfigError, match="unknown optimizer"):
        optimizers.make_optimizer(optimizers.OptimizerConfig(name="sgd"))
    assert optimizers.OptimizerConfig.from_dict(optimizers.OptimizerConfig().to_dict()) == (
        optimizers.OptimizerConfig()
    )


def test_bop_adam_keeps_its_signature():
    opt = optimizers.bop_adam(threshold=1e-7, gamma=1e-4, learning_rate=1e-2)
    parts = optimizers.inner_optimizers(opt)
    assert optimizers.hyperparameter(parts["bop"], "threshold") == pytest.approx(1e-7)
    assert optimizers.hyperparameter(parts["adam"], "learning_rate") == pytest.approx(1e-2)


# -------------------------------------------------------------- warnings


def _warnings_for(model, optimizer) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        problems = optimizers.check_setup(model, optimizer)
    assert [str(w.message) for w in caught if w.category is optimizers.SetupWarning] == problems
    return problems


def test_warns_on_weight_clip_and_l2_under_bop():
    model = _tiny_binary_model(constraint="weight_clip", regularizer=tf.keras.regularizers.L2(1e-4))
    problems = _warnings_for(model, optimizers.bop_adam())
    assert len(problems) == 2
    assert "kernel_constraint" in problems[0] and "'bin'" in problems[0]
    assert "kernel_regularizer" in problems[1]


def test_warns_on_a_binary_kernel_claimed_by_nothing():
    # A custom sign quantizer without `precision`: Bop's predicate does not see it.
    def sign(x):
        return tf.where(x >= 0, 1.0, -1.0)

    model = _tiny_binary_model(quantizer=sign)
    problems = _warnings_for(model, optimizers.bop_adam())
    assert len(problems) == 1 and "no Bop optimizer claims it" in problems[0]
    assert "latent real weight by Adam" in problems[0]
    no_default = lq.optimizers.CaseOptimizer((lambda v: False, lq.optimizers.Bop()))
    assert "not trained at all" in _warnings_for(model, no_default)[0]


def test_no_warning_for_consistent_setups():
    assert _warnings_for(zoo.build("bnn_small"), optimizers.bop_adam()) == []
    # Adam on latent weights with a clip is BinaryConnect: fine.
    clipped = zoo.build("bnn_small", kernel_constraint="weight_clip")
    assert _warnings_for(clipped, tf.keras.optimizers.legacy.Adam()) == []
    # compile_model runs the check: the demo model + default optimizer stays silent.
    with warnings.catch_warnings():
        warnings.simplefilter("error", optimizers.SetupWarning)
        training.compile_model(zoo.build("bnn_small"))


# ------------------------------------------------------------- callbacks


def test_flip_ratio_logger_counts_sign_changes():
    model = _tiny_binary_model()
    logger = callbacks.FlipRatioLogger(every_n_steps=1, per_layer=True)
    logger.set_model(model)
    kernel = model.get_layer("bin").kernel.latent_variable
    kernel.assign(np.ones((4, 6), np.float32))
    logger.on_train_begin()
    logger.on_epoch_begin(0)
    for batch, n_flips in enumerate((3, 0, 6)):  # 3/24, 0/24 and 6/24 flipped per step
        logger.on_train_batch_begin(batch)
        w = kernel.numpy().copy()
        w.reshape(-1)[:n_flips] *= -1
        kernel.assign(w)
        logger.on_train_batch_end(batch)
    logs: dict = {}
    logger.on_epoch_end(0, logs)
    assert logs["flip_ratio"] == pytest.approx((3 + 0 + 6) / 24 / 3)
    assert logs["flip_ratio/bin"] == pytest.approx(logs["flip_ratio"])
    # Net change: the first three weights flipped twice (back), the next three once.
    assert logs["flip_ratio_epoch"] == pytest.approx(3 / 24)


def test_hyperparameter_logger_reports_scheduled_values(fmnist_small):
    model = zoo.build("bnn_small")
    config = optimizers.OptimizerConfig(
        gamma=1e-3,
        threshold=1e-6,
        gamma_schedule=optimizers.ScheduleConfig("linear", final=1e-5),
        lr_schedule=optimizers.ScheduleConfig("step", factor=0.5, every_epochs=1),
    )
    training.compile_model(model, optimizer_config=config, steps_per_epoch=2, epochs=2)
    history = model.fit(
        fmnist_small["x_train"][:256], fmnist_small["y_train"][:256], batch_size=128, epochs=1,
        verbose=0, callbacks=[callbacks.HyperparameterLogger()],
    )  # fmt: skip
    logs = {k: v[-1] for k, v in history.history.items()}
    assert logs["bop_gamma"] == pytest.approx(1e-3 + (1e-5 - 1e-3) * 2 / 4, rel=1e-4)
    assert logs["bop_threshold"] == pytest.approx(1e-6)
    assert logs["adam_learning_rate"] == pytest.approx(1e-3 * 0.5, rel=1e-4)


def test_weight_clip_is_a_no_op_under_bop(fmnist_small):
    """Dropping bnn_small's old weight_clip changes nothing for Bop-trained models (the demo)."""
    x, y = fmnist_small["x_train"][:256], fmnist_small["y_train"][:256]
    weights = []
    for constraint in ("weight_clip", None):
        tf.keras.utils.set_random_seed(1)
        model = zoo.build("bnn_small", kernel_constraint=constraint)
        model.compile(optimizer=optimizers.bop_adam(), loss=training.loss_fn())
        model.fit(x, y, batch_size=128, epochs=1, shuffle=False, verbose=0)
        weights.append(model.get_weights())
    for a, b in zip(*weights, strict=True):
        np.testing.assert_array_equal(a, b)


def test_float_model_gets_adam_and_schedules_need_a_span():
    model = zoo.build("bnn_small_float")
    training.compile_model(model)  # Bop would claim nothing: CaseOptimizer would refuse
    assert type(model.optimizer).__name__ == "Adam"
    assert optimizers.make_schedule(0.1, "constant", steps_per_epoch=None, epochs=None) == 0.1
    with pytest.raises(ConfigError, match="needs steps_per_epoch and epochs"):
        optimizers.make_optimizer(optimizers.OptimizerConfig())  # cosine learning rate
