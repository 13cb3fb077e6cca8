"""ReCU: quantizers vs the formulas of docs/methods.md, the layer, τ schedule, conversion, parity."""

from __future__ import annotations

import json
import math

import larq as lq
import numpy as np
import pytest
import tensorflow as tf

from bnn_tf import converters
from bnn_tf import models as zoo
from bnn_tf.errors import ConfigError
from bnn_tf.methods import recu

K = 2 * math.sqrt(2)  # std of the standardised weights for b* = 2

# A hand-made HWIO kernel (2×2×3 inputs × 2 outputs, n = 12 per channel):
# channel 0 is roughly symmetric, channel 1 has two large outliers, so a
# clamp at τ = 0.85 cuts some weights and leaves the rest.
KERNEL = np.array(
    [
        [0.10, -0.40], [-0.25, 0.05], [0.30, 2.50],
        [-0.05, -0.10], [0.45, 0.20], [-0.35, -0.15],
        [0.20, 0.00], [-0.15, 0.10], [0.05, -2.20],
        [-0.50, 0.15], [0.40, -0.05], [-0.20, 0.30],
    ],
    dtype=np.float32,
).reshape(2, 2, 3, 2)  # fmt: skip


def _numpy_standardise(
    w: np.ndarray, b_star: float = 2.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    flat = w.reshape(-1, w.shape[-1]).astype(np.float64)
    w0 = flat - flat.mean(axis=0)
    s = np.sqrt(w0.var(axis=0, ddof=1) + 1e-5)
    return w0 / (s / (math.sqrt(2) * b_star)), w0, s


def _numpy_q(w1: np.ndarray, tau: float) -> float:
    return math.inf if tau >= 1 else -np.abs(w1).mean() * math.log(2 - 2 * tau)


@pytest.mark.parametrize("tau", [0.85, 0.95, 1.0])
def test_weight_forward_matches_the_formula(tau):
    w1, _, _ = _numpy_standardise(KERNEL)
    q = _numpy_q(w1, tau)
    np.testing.assert_allclose(
        recu.standardize_weights(KERNEL).numpy().reshape(-1, 2), w1, rtol=1e-5
    )
    np.testing.assert_allclose(w1.std(axis=0, ddof=1), [K, K], rtol=1e-4)
    got_q = float(recu.clamp_threshold(tf.constant(w1, tf.float32), tau))
    assert got_q == pytest.approx(q, rel=1e-5) if tau < 1 else got_q == math.inf
    expected = np.where(np.clip(w1, -q, q) >= 0, 1.0, -1.0)
    np.testing.assert_array_equal(recu.recu_weights(KERNEL, tau).numpy().reshape(-1, 2), expected)


def _weight_grad_formula(
    w: np.ndarray, upstream: np.ndarray, tau: float
) -> tuple[np.ndarray, np.ndarray]:
    """d(sum(upstream · sign(clip(w1, ±Q))))/dw, identity STE, no gradient through Q."""
    w1, w0, s = _numpy_standardise(w)
    q = _numpy_q(w1, tau)
    inside = np.abs(w1) <= q
    h = upstream.reshape(w1.shape) * inside  # gradient w.r.t. w1
    n = w1.shape[0]
    dw0 = (K / s) * (h - w0 * (h * w0).sum(axis=0) / ((n - 1) * s**2))
    dw = dw0 - dw0.mean(axis=0)
    return dw.reshape(w.shape), inside


@pytest.mark.parametrize("tau", [0.85, 1.0])
def test_weight_gradient_matches_the_formula_inside_and_outside_the_clamp(tau):
    upstream = np.random.default_rng(3).normal(size=KERNEL.shape).astype(np.float32)
    w = tf.Variable(KERNEL)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(recu.recu_weights(w, tau) * upstream)
    got = tape.gradient(loss, w).numpy()
    expected, inside = _weight_grad_formula(KERNEL, upstream, tau)
    if tau < 1:
        assert 0 < (~inside).sum() < inside.size, "the hand-made kernel must straddle the clamp"
    else:
        assert inside.all(), "τ = 1 must not clamp"
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)


def test_clamp_does_not_touch_the_stored_weight():
    quantizer = recu.ReCUWeightQuantizer(tau=0.85)
    layer = lq.layers.QuantConv2D(2, 2, kernel_quantizer=quantizer, kernel_initializer="zeros")
    layer.build((None, 4, 4, 3))
    layer.kernel.assign(KERNEL)
    layer(tf.ones((1, 4, 4, 3)))
    np.testing.assert_array_equal(layer.kernel.latent_variable.numpy(), KERNEL)
    assert float(quantizer.tau) == pytest.approx(0.85)


def _activation_grad_formula(a: np.ndarray, g: np.ndarray) -> np.ndarray:
    flat, gf = a.reshape(len(a), -1).astype(np.float64), g.reshape(len(g), -1).astype(np.float64)
    n = flat.shape[1]
    mean = flat.mean(axis=1, keepdims=True)
    s = np.sqrt(flat.var(axis=1, ddof=1, keepdims=True) + 1e-5)
    a0 = flat / s
    u = gf * np.where(np.abs(a0) < 1, 2 - 2 * np.abs(a0), 0.0)
    # a0_i = a_i / s(a): chain rule through s, with ds/da_i = (a_i − mean) / ((n − 1) s).
    da = u / s - (u * flat).sum(axis=1, keepdims=True) * (flat - mean) / ((n - 1) * s**3)
    return da.reshape(a.shape)


def test_activation_forward_and_gradient_match_the_formulas():
    rng = np.random.default_rng(0)
    # Two samples on very different scales: the normalisation must make the
    # ApproxSign window follow each sample's own spread; exact zeros → +1.
    a = np.stack([rng.normal(0, 0.3, (3, 3, 2)), rng.normal(0.5, 4.0, (3, 3, 2))]).astype(
        np.float32
    )
    a[0, 0, 0, 0] = 0.0
    g = rng.normal(size=a.shape).astype(np.float32)
    quantizer = recu.ReCUActivationQuantizer()
    x = tf.Variable(a)
    for training in (True, False):
        with tf.GradientTape() as tape:
            out = quantizer(x, training=training)
            loss = tf.reduce_sum(out * g)
        np.testing.assert_array_equal(out.numpy(), np.where(a >= 0, 1.0, -1.0))
        got = tape.gradient(loss, x).numpy()
        if training:
            expected = _activation_grad_formula(a, g)
        else:  # plain ApproxSign on the raw input
            expected = g * np.where(np.abs(a) < 1, 2 - 2 * np.abs(a), 0.0)
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)
    # The fused op equals autodiff of the composed definition.
    with tf.GradientTape() as tape:
        composed = tf.reduce_sum(recu.approx_sign(recu.normalize_per_sample(x)) * g)
    np.testing.assert_allclose(
        tape.gradient(composed, x).numpy(), _activation_grad_formula(a, g), rtol=1e-4, atol=1e-6
    )


def test_conv_forward_is_alpha_times_the_sign_convolution():
    rng = np.random.default_rng(1)
    layer = recu.ReCUConv2D(
        2, 2, padding="same", alpha_initializer=tf.keras.initializers.Constant([0.5, 2.0])
    )
    x = rng.normal(size=(2, 5, 5, 3)).astype(np.float32)
    layer.build(x.shape)
    layer.kernel.assign(KERNEL)
    recu.set_tau(layer, 0.85)
    got = layer(x, training=True).numpy()
    # "same" with a 2×2 kernel pads one row/column after; larq pads with +1.
    xb = np.pad(np.where(x >= 0, 1.0, -1.0), [[0, 0], [0, 1], [0, 1], [0, 0]], constant_values=1.0)
    wb = recu.recu_weights(KERNEL, 0.85).numpy()
    expected = tf.nn.conv2d(xb.astype(np.float32), wb, 1, "VALID").numpy() * np.array([0.5, 2.0])
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(layer(x, training=False).numpy(), got, atol=1e-5)


def test_tau_schedule_and_scheduler():
    assert recu.tau_schedule(0, 10) == pytest.approx(0.85)
    assert recu.tau_schedule(10, 10) == pytest.approx(0.99)
    values = [recu.tau_schedule(e, 10) for e in range(11)]
    assert all(b > a for a, b in zip(values[:-1], values[1:], strict=True))
    a = (0.99 - 0.85) / (math.e - 1)
    assert recu.tau_schedule(3, 10) == pytest.approx(a * math.exp(0.3) + 0.85 - a)
    with pytest.raises(ConfigError):
        recu.tau_schedule(0, 0)

    model = tf.keras.Sequential(
        [tf.keras.Input((6, 6, 1)), recu.ReCUConv2D(4, 3), recu.ReCUConv2D(4, 3)]
    )
    assert len(recu.tau_variables(model)) == 2
    model.compile("adam", "mse")
    scheduler = recu.TauScheduler(4, tau_min=0.8, tau_max=0.96)
    history = model.fit(
        np.ones((4, 6, 6, 1)), np.zeros((4, 2, 2, 4)), epochs=3, verbose=0, callbacks=[scheduler]
    )
    expected = [recu.tau_schedule(e, 4, 0.8, 0.96) for e in range(3)]
    np.testing.assert_allclose(history.history["recu_tau"], expected, rtol=1e-6)
    assert all(float(v) == pytest.approx(expected[-1]) for v in recu.tau_variables(model))

    plain = tf.keras.Sequential([tf.keras.Input((4,)), tf.keras.layers.Dense(1)])
    plain.compile("adam", "mse")
    with pytest.raises(ConfigError, match="no ReCU layer"):
        plain.fit(np.ones((2, 4)), np.ones((2, 1)), verbose=0, callbacks=[recu.TauScheduler(2)])


def test_layer_serialises_with_tau_and_alpha(tmp_path):
    inputs = tf.keras.Input((8, 8, 3))
    x = recu.ReCUConv2D(4, 3, strides=2, padding="same", b_star=1.5)(inputs)
    x = tf.keras.layers.BatchNormalization()(x)
    model = tf.keras.Model(inputs, x)
    model.layers[1].alpha.assign([0.3, -0.7, 1.2, 2.0])
    recu.set_tau(model, 0.9)
    path = tmp_path / "recu.keras"
    model.save(path)
    loaded = tf.keras.models.load_model(path)
    layer = loaded.layers[1]
    assert isinstance(layer, recu.ReCUConv2D) and layer.b_star == 1.5
    assert float(recu.tau_variables(loaded)[0]) == pytest.approx(0.9)
    x = np.random.default_rng(2).normal(size=(2, 8, 8, 3)).astype(np.float32)
    np.testing.assert_allclose(model(x), loaded(x), atol=1e-6)


def test_bop_claims_recu_kernels_unless_asked_for_adam():
    layer = recu.ReCUConv2D(4, 3)
    layer.build((None, 6, 6, 2))
    assert lq.optimizers.Bop.is_binary_variable(layer.kernel)
    assert recu.is_recu_kernel(layer.kernel) and not recu.is_recu_kernel(layer.alpha)
    x, y = np.random.default_rng(0).normal(size=(8, 6, 6, 2)), np.zeros((8, 4, 4, 4))
    for kernels in ("bop", "adam"):
        model = tf.keras.Sequential([tf.keras.Input((6, 6, 2)), recu.ReCUConv2D(4, 3)])
        model.compile(recu.recu_optimizer(kernels=kernels, learning_rate=1e-2), "mse")
        model.fit(x, y + 1.0, epochs=1, verbose=0)
        latent = model.layers[0].kernel.latent_variable.numpy()
        assert np.all(np.abs(latent) == 1.0) == (kernels == "bop"), kernels
    with pytest.raises(ConfigError):
        recu.recu_optimizer(kernels="sgd")


def test_alpha_folds_into_the_binary_conv_output_multiplier():
    rng = np.random.default_rng(4)
    inputs = tf.keras.Input((10, 10, 8))
    x = recu.ReCUConv2D(32, 3, padding="same")(inputs)
    x = tf.keras.layers.BatchNormalization()(x)
    x = recu.ReCUConv2D(16, 3, padding="same", strides=2)(x)
    model = tf.keras.Model(inputs, x)
    for layer in model.layers:
        if isinstance(layer, recu.ReCUConv2D):
            # Unequal α of both signs: a kernel holding ±α breaks LCE's bitpacked output.
            signs = rng.choice([-1.0, 1.0], layer.alpha.shape)
            layer.alpha.assign(signs * rng.uniform(0.1, 2.0, layer.alpha.shape))
    recu.set_tau(model, 0.9)
    flatbuffer = converters.convert(model)
    report = converters.inspect(flatbuffer)
    assert report.op_counts.get("LceBconv2d") == 2, report.op_counts
    # One LceQuantize: the second bconv reads the first one's bitpacked output.
    assert report.op_counts.get("LceQuantize") == 1, report.op_counts
    assert report.float_mac_ops == 0 and "MUL" not in report.op_counts, report.op_counts
    xs = rng.normal(size=(4, 10, 10, 8)).astype(np.float32)
    np.testing.assert_allclose(
        converters.tflite_predict(flatbuffer, xs), model.predict(xs, verbose=0), atol=1e-3
    )


def _recu_layers(model: tf.keras.Model) -> int:
    return sum(isinstance(layer, recu.ReCUConv2D) for layer in model.layers)


@pytest.mark.parametrize(
    "name, input_shape, expected, kwargs",
    [
        # recu_resnet20's default layout is converted (and counted) by the parity test below;
        # here its reduced-resolution stems, which the 60-minute benchmark tried.
        ("recu_resnet20", (28, 28, 1), 18, {"stem_pool": True, "width_multiplier": 2}),
        ("recu_resnet20", (28, 28, 1), 18, {"stem_strides": 2}),
        pytest.param("recu_resnet18", (28, 28, 1), 16, {}, marks=pytest.mark.slow),
        # ImageNet layouts at a smaller input: the same layers, a faster conversion.
        pytest.param("recu_resnet18_imagenet", (64, 64, 3), 16, {}, marks=pytest.mark.slow),
        pytest.param("recu_resnet34_imagenet", (64, 64, 3), 32, {}, marks=pytest.mark.slow),
    ],
)
def test_every_recu_conv_becomes_lce_bconv2d(name, input_shape, expected, kwargs):
    model = zoo.build(name, input_shape=input_shape, **kwargs)
    assert _recu_layers(model) == expected
    if kwargs.get("stem_pool") or kwargs.get("stem_strides") == 2:
        assert model.get_layer("stage1_block1_conv1").input_shape[1:3] == (14, 14)
    report = converters.inspect(converters.convert(model))
    assert report.op_counts.get("LceBconv2d", 0) == expected, report.op_counts
    float_convs = report.op_counts.get("CONV_2D", 0)
    real_downsamples = 3 if "imagenet" in name else 0
    assert float_convs == 1 + real_downsamples, (
        report.op_counts
    )  # only the stem (+ real downsamples)
    assert "MUL" not in report.op_counts, report.op_counts  # α and BN folded


def test_trained_recu_resnet20_keras_and_tflite_agree_on_real_images(fmnist_small):
    tf.keras.utils.set_random_seed(0)
    model = zoo.build("recu_resnet20")
    loss = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(recu.recu_optimizer(kernels="adam", learning_rate=5e-3), loss, ["accuracy"])
    model.fit(
        fmnist_small["x_train"], fmnist_small["y_train"], batch_size=64, epochs=1, verbose=0,
        callbacks=[recu.TauScheduler(1)],
    )  # fmt: skip
    assert all(float(v) == pytest.approx(0.85) for v in recu.tau_variables(model)), (
        "τ must be clamping"
    )
    x, y = fmnist_small["x_test"], fmnist_small["y_test"]
    flatbuffer = converters.convert(model)
    report = converters.inspect(flatbuffer)
    assert _recu_layers(model) == 18 and report.op_counts.get("LceBconv2d") == 18, report.op_counts
    assert report.op_counts.get("CONV_2D") == 1 and "MUL" not in report.op_counts, report.op_counts
    result = converters.verify(model, flatbuffer, x, y)
    # Chance is 0.1: above 0.3 the weights are trained, so the check is not vacuous.
    assert result.keras_accuracy > 0.3, result.format()
    assert result.top1_agreement >= 0.999, result.format()


def test_zero_pad_shortcut_pools_and_pads_channels():
    from bnn_tf.methods.shortcuts import ZeroPadShortcut

    x = np.arange(2 * 5 * 5 * 3, dtype=np.float32).reshape(2, 5, 5, 3)
    out = ZeroPadShortcut(8, 2)(x).numpy()
    assert out.shape == (2, 3, 3, 8)  # "same" pooling: 5 → 3, like a strided 3×3 "same" conv
    np.testing.assert_allclose(out[:, 0, 0, 2:5], x[:, :2, :2, :].mean(axis=(1, 2)))
    np.testing.assert_allclose(out[:, 2, 2, 2:5], x[:, 4, 4, :])  # edge window: only real pixels
    assert not out[..., :2].any() and not out[..., 5:].any()
    with pytest.raises(ConfigError):
        ZeroPadShortcut(2, 2)(x)


def test_training_schedules_tau_for_recu_models_only(tmp_path, fmnist):
    import dataclasses

    from bnn_tf import callbacks, experiment, training

    plain = callbacks.standard_callbacks(zoo.build("bnn_small"), 5)
    assert not any(isinstance(c, recu.TauScheduler) for c in plain)

    # The CLI path (experiment.train) must run the τ schedule, or ReCU trains unclamped.
    config = training.TrainConfig(model="recu_resnet20", epochs=2, limit_train=256)
    small = dataclasses.replace(fmnist, x_test=fmnist.x_test[:256], y_test=fmnist.y_test[:256])
    experiment.train(config, tmp_path, splits=small, verbose=0, log=lambda s: None)
    history = json.loads((tmp_path / training.HISTORY_FILE).read_text())
    expected = [recu.tau_schedule(e, 2) for e in range(2)]
    np.testing.assert_allclose([r["recu_tau"] for r in history], expected, rtol=1e-6)
