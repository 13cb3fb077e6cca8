"""Seed-paper quantizers and layers: PACT, TTQ, BNN+, Self-Binarizing, HWGQ, WRPN, RangeBN.

Each is checked against its paper's formula (forward and gradient) on
hand-made tensors; each zoo model is converted and its ops counted to state
whether LCE runs it on binary kernels or emulates it in float.
"""

from __future__ import annotations

import math

import larq as lq
import numpy as np
import pytest
import tensorflow as tf
from _tape import value_and_grads as _grads

from bnn_tf import callbacks, converters, introspect, training
from bnn_tf import models as zoo
from bnn_tf.errors import ConfigError
from bnn_tf.methods.bnn_plus import BnnPlusRegularizer
from bnn_tf.methods.hwgq import Hwgq, optimal_step
from bnn_tf.methods.pact import Pact
from bnn_tf.methods.range_bn import RangeBatchNormalization, range_scale_constant
from bnn_tf.methods.self_binarizing import SelfBinarizing, SelfBinarizingSchedule, beta_at
from bnn_tf.methods.ttq import TtqWeight
from bnn_tf.methods.wrpn import WrpnActivation, WrpnWeight

X = np.array([-2.5, -1.0, -0.3, 0.0, 0.2, 0.7, 1.4, 3.0, 12.0], np.float32)
DY = np.array([1.0, -0.5, 2.0, 0.3, -1.0, 0.7, 1.5, -2.0, 0.4], np.float32)


# --- PACT ---------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 2, 4])
def test_pact_forward_and_gradients(k):
    q = Pact(k, alpha=1.5)
    q.build(X.shape)
    y, (gx, ga) = _grads(q, X, DY, extra=(q.alpha,))
    levels = 2**k - 1
    want = np.round(np.clip(X, 0, 1.5) * levels / 1.5) * 1.5 / levels
    np.testing.assert_allclose(y, want, rtol=1e-6)
    np.testing.assert_allclose(gx, DY * ((X >= 0) & (X < 1.5)), rtol=1e-6)
    np.testing.assert_allclose(ga, (DY * (X >= 1.5)).sum(), rtol=1e-6)
    assert q.losses and float(q.losses[0]) == pytest.approx(1e-4 * 1.5**2)


# --- TTQ ----------------------------------------------------------------------------------


def test_ttq_forward_and_gradients():
    q = TtqWeight(threshold=0.1)
    q.build(X.shape)
    q.wp.assign(0.8)
    q.wn.assign(1.3)
    y, (gw, gp, gn) = _grads(q, X, DY, extra=(q.wp, q.wn))
    delta = 0.1 * np.abs(X).max()  # 1.2
    pos, neg = delta < X, -delta > X
    np.testing.assert_allclose(y, np.where(pos, 0.8, np.where(neg, -1.3, 0.0)), rtol=1e-6)
    np.testing.assert_allclose(gw, DY * np.where(pos, 0.8, np.where(neg, 1.3, 1.0)), rtol=1e-6)
    np.testing.assert_allclose(gp, DY[pos].sum(), rtol=1e-6)
    np.testing.assert_allclose(gn, -DY[neg].sum(), rtol=1e-6)


# --- BNN+ ---------------------------------------------------------------------------------


def test_swish_sign_gradient_is_the_derivative_of_ss_beta():
    beta = 5.0
    y, (g,) = _grads(lambda v: lq.quantizers.swish_sign(v, beta=beta), X, DY)
    np.testing.assert_array_equal(y, np.where(X >= 0, 1.0, -1.0))

    def ss(v):
        s = 1 / (1 + np.exp(-beta * v))
        return 2 * s * (1 + beta * v * (1 - s)) - 1

    numeric = (ss(X.astype(np.float64) + 1e-5) - ss(X.astype(np.float64) - 1e-5)) / 2e-5
    np.testing.assert_allclose(g, DY * numeric, rtol=1e-3, atol=1e-6)


@pytest.mark.parametrize("p", [1, 2])
def test_bnn_plus_regulariser_value_and_gradient(p):
    reg = BnnPlusRegularizer(scale=0.1, alpha=0.5, p=p)
    w = tf.Variable(X)
    with tf.GradientTape() as tape:
        r = reg(w)
    g = tape.gradient(r, w).numpy()
    gap = 0.5 - np.abs(X)
    assert float(r) == pytest.approx(0.1 * (np.abs(gap) ** p).sum(), rel=1e-6)
    # d/dw |α − |w||^p = p |α − |w||^(p−1) · sign(|w| − α) · sign(w)
    want = 0.1 * p * np.abs(gap) ** (p - 1) * np.sign(np.abs(X) - 0.5) * np.sign(X)
    np.testing.assert_allclose(g, want, rtol=1e-5, atol=1e-7)
    with pytest.raises(ConfigError, match="p must be 1 or 2"):
        BnnPlusRegularizer(p=3)


# --- Self-Binarizing ----------------------------------------------------------------------


def test_self_binarizing_is_tanh_in_training_and_sign_at_inference():
    q = SelfBinarizing(beta=2.0)
    x = tf.Variable(X)
    with tf.GradientTape() as tape:
        y = q(x, training=True)
    g = tape.gradient(y, x, output_gradients=tf.constant(DY)).numpy()
    np.testing.assert_allclose(y.numpy(), np.tanh(2.0 * X), rtol=1e-6)
    np.testing.assert_allclose(g, DY * 2.0 * (1 - np.tanh(2.0 * X) ** 2), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(q(X, training=False).numpy(), np.where(X >= 0, 1.0, -1.0))


@pytest.mark.parametrize(
    ("epoch", "epochs", "beta"), [(0, 5, 1.0), (2, 5, 10.0), (4, 5, 100.0), (0, 1, 100.0)]
)
def test_self_binarizing_schedule_formula(epoch, epochs, beta):
    assert beta_at(epoch, epochs) == pytest.approx(beta)


def test_self_binarizing_schedule_is_declared_and_applied(fmnist_small):
    model = zoo.build("selfbin_small", widths=(8, 8, 8, 8, 8), stem_width=8)
    assert SelfBinarizingSchedule in introspect.declared_schedules(model)
    found = callbacks.standard_callbacks(model, 3, steps_per_epoch=2)
    schedule = next(c for c in found if isinstance(c, SelfBinarizingSchedule))
    assert len(SelfBinarizingSchedule.scheduled_variables(model)) == 10
    training.compile_model(model, optimizer=tf.keras.optimizers.legacy.Adam(1e-3))
    model.fit(fmnist_small["x_train"][:64], fmnist_small["y_train"][:64], epochs=3,
              batch_size=32, verbose=0, callbacks=[schedule])  # fmt: skip
    assert schedule.history == pytest.approx([1.0, 10.0, 100.0])
    assert all(float(v.numpy()) == 100.0 for v in SelfBinarizingSchedule.scheduled_variables(model))


# --- HWGQ ---------------------------------------------------------------------------------


def test_hwgq_step_is_the_mse_optimum_for_a_half_wave_gaussian():
    rng = np.random.default_rng(0)
    x = rng.normal(size=400_000)
    for k in (1, 2, 3):
        step = optimal_step(k)

        def mse(s, k=k):
            q = s * np.minimum(np.round(np.maximum(x, 0) / s), 2**k - 1)
            return np.mean((np.maximum(x, 0) - q) ** 2)

        assert mse(step) < mse(step * 0.95) and mse(step) < mse(step * 1.05)
    # 1 bit: Lloyd's condition Δ = E[x | x > Δ/2] for x ~ N(0, 1).
    d = optimal_step(1)
    t = d / 2
    conditional_mean = (
        math.exp(-t * t / 2) / math.sqrt(2 * math.pi) / (0.5 * math.erfc(t / math.sqrt(2)))
    )
    assert d == pytest.approx(conditional_mean, rel=2e-3)


def test_hwgq_forward_and_clipped_relu_gradient():
    q = Hwgq(2)
    step = optimal_step(2)
    y, (g,) = _grads(q, X, DY)
    np.testing.assert_allclose(
        y, step * np.minimum(np.round(np.maximum(X, 0) / step), 3), rtol=1e-6
    )
    np.testing.assert_allclose(g, DY * ((X > 0) & (3 * step >= X)), rtol=1e-6)


# --- WRPN ---------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [2, 3])
def test_wrpn_quantizers_forward_and_gradient(k):
    y, (g,) = _grads(WrpnWeight(k), X, DY)
    n = 2 ** (k - 1) - 1
    np.testing.assert_allclose(y, np.round(np.clip(X, -1, 1) * n) / n, rtol=1e-6)
    np.testing.assert_allclose(g, DY * (np.abs(X) <= 1), rtol=1e-6)
    y, (g,) = _grads(WrpnActivation(k), X, DY)
    n = 2**k - 1
    np.testing.assert_allclose(y, np.round(np.clip(X, 0, 1) * n) / n, rtol=1e-6)
    np.testing.assert_allclose(g, DY * ((X >= 0) & (X <= 1)), rtol=1e-6)
    with pytest.raises(ConfigError, match="k_bit ≥ 2"):
        WrpnWeight(1)


def test_wrpn_width_multiplier_widens_every_conv():
    narrow = zoo.build("wrpn_small", width_multiplier=1.0, widths=(8, 8, 16, 16, 16), stem_width=8)
    wide = zoo.build("wrpn_small", width_multiplier=2.0, widths=(8, 8, 16, 16, 16), stem_width=8)
    convs = lambda m: [layer.filters for layer in m.layers if hasattr(layer, "filters")]  # noqa: E731
    assert convs(wide) == [2 * f for f in convs(narrow)]


@pytest.mark.parametrize("k", [2, 4])
def test_wrpn_kernels_start_on_the_quantizer_grid(k):
    """Glorot's |w| < 0.06 rounds to 0 on WRPN's grid: an all-zero, chance-level network."""
    model = zoo.build("wrpn_small", k_bit=k, widths=(16, 16, 32, 32, 32), stem_width=16)
    for layer in model.layers:
        if isinstance(getattr(layer, "kernel_quantizer", None), WrpnWeight):
            latent = tf.convert_to_tensor(layer.kernel.latent_variable)
            nonzero = float(np.mean(layer.kernel_quantizer(latent).numpy() != 0))
            assert nonzero > 0.4, f"{layer.name}: {nonzero:.0%} of the quantized weights ≠ 0"
            assert layer.kernel_constraint is not None  # the STE passes nothing beyond ±1


# --- RangeBN ------------------------------------------------------------------------------


def test_range_bn_training_forward_gradient_and_moving_statistics():
    rng = np.random.default_rng(1)
    x = (rng.normal(size=(4, 3, 3, 2)) * [1.0, 3.0] + [0.5, -1.0]).astype(np.float32)
    layer = RangeBatchNormalization(momentum=0.5, epsilon=0.0)
    layer.build(x.shape)
    layer.gamma.assign([2.0, 0.5])
    layer.beta.assign([0.1, -0.2])

    def numpy_rbn(v):
        mu = v.mean(axis=(0, 1, 2))
        c = v - mu
        scale = (c.max(axis=(0, 1, 2)) - c.min(axis=(0, 1, 2))) / math.sqrt(2 * math.log(36))
        return c / scale * [2.0, 0.5] + [0.1, -0.2], mu, scale

    want, mu, scale = numpy_rbn(x.astype(np.float64))
    assert range_scale_constant(36) == pytest.approx(1 / math.sqrt(2 * math.log(36)))
    xv = tf.Variable(x)
    dy = rng.normal(size=x.shape).astype(np.float32)
    with tf.GradientTape() as tape:
        y = layer(xv, training=True)
    g = tape.gradient(y, xv, output_gradients=tf.constant(dy)).numpy()
    np.testing.assert_allclose(y.numpy(), want, rtol=1e-4, atol=1e-5)
    # Gradient against central finite differences of the formula.
    numeric = np.zeros_like(x, dtype=np.float64)
    flat = x.astype(np.float64).ravel()
    for i in range(flat.size):
        e = np.zeros_like(flat)
        e[i] = 1e-5
        up = numpy_rbn((flat + e).reshape(x.shape))[0]
        down = numpy_rbn((flat - e).reshape(x.shape))[0]
        numeric.ravel()[i] = ((up - down) / 2e-5 * dy).sum()
    np.testing.assert_allclose(g, numeric, rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(layer.moving_mean.numpy(), 0.5 * mu, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(layer.moving_scale.numpy(), 0.5 + 0.5 * scale, rtol=1e-4)
    inference = layer(x, training=False).numpy()
    np.testing.assert_allclose(
        inference, (x - layer.moving_mean.numpy()) / layer.moving_scale.numpy() * [2.0, 0.5] + [0.1, -0.2],
        rtol=1e-5, atol=1e-5,
    )  # fmt: skip


# --- serialisation ------------------------------------------------------------------------

CASES = {
    "pact": lambda x: lq.layers.QuantConv2D(4, 3, input_quantizer=Pact(3, alpha=2.0))(x),
    "ttq": lambda x: lq.layers.QuantConv2D(4, 3, kernel_quantizer=TtqWeight(0.1))(x),
    "bnn_plus": lambda x: lq.layers.QuantConv2D(4, 3, kernel_regularizer=BnnPlusRegularizer(1e-3, p=1))(x),
    "self_binarizing": lambda x: lq.layers.QuantConv2D(4, 3, input_quantizer=SelfBinarizing(3.0),
                                                       kernel_quantizer=SelfBinarizing(3.0))(x),
    "hwgq": lambda x: lq.layers.QuantConv2D(4, 3, input_quantizer=Hwgq(3))(x),
    "wrpn": lambda x: lq.layers.QuantConv2D(4, 3, input_quantizer=WrpnActivation(3),
                                            kernel_quantizer=WrpnWeight(3))(x),
    "range_bn": lambda x: RangeBatchNormalization(momentum=0.8)(x),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(CASES))
def test_keras_round_trip(case, tmp_path):
    rng = np.random.default_rng(2)
    inputs = tf.keras.Input((6, 6, 3))
    model = tf.keras.Model(inputs, CASES[case](inputs))
    for w in model.weights:
        w.assign(w + rng.uniform(0.1, 0.5, w.shape).astype(np.float32))
    model.save(tmp_path / "m.keras")
    loaded = tf.keras.models.load_model(tmp_path / "m.keras")
    x = rng.normal(size=(2, 6, 6, 3)).astype(np.float32)
    np.testing.assert_allclose(model(x).numpy(), loaded(x).numpy(), atol=1e-5)
    assert [type(v).__name__ for v in loaded.layers] == [type(v).__name__ for v in model.layers]


# --- models: binary kernels or float emulation, by converting ----------------------------

# model → LCE binary? (LceBconv2d for the 5 quantized convs, else 6 float CONV_2D)
SEED_MODELS = {
    "pact_small": False, "ttq_small": False, "bnnplus_small": True, "selfbin_small": True,
    "hwgq_small": False, "wrpn_small": False, "rangebn_small": True,
}  # fmt: skip


def test_registry_flags_and_training_recipes():
    for name, binary in SEED_MODELS.items():
        info = zoo.info(name)
        assert info.lce_binary is binary, name
        assert info.paper and info.training["name"] == "adam" and info.training["why"], name


@pytest.mark.slow  # 7 conversions, ≈ 15–40 s each on the shared machine
@pytest.mark.parametrize("name", sorted(SEED_MODELS))
def test_conversion_says_binary_or_emulated(name, fmnist_small):
    tf.keras.utils.set_random_seed(0)
    model = zoo.build(name, widths=(32, 32, 32, 32, 32), stem_width=8)
    training.compile_model(model, optimizer=tf.keras.optimizers.legacy.Adam(2e-3))
    model.fit(fmnist_small["x_train"][:256], fmnist_small["y_train"][:256], epochs=1,
              batch_size=64, verbose=0)  # fmt: skip
    flatbuffer = converters.convert(model)
    ops = converters.inspect(flatbuffer).op_counts
    if SEED_MODELS[name]:
        assert ops.get("LceBconv2d") == 5 and ops.get("CONV_2D") == 1, ops
    else:
        assert "LceBconv2d" not in ops and ops.get("CONV_2D") == 6, ops
    x = fmnist_small["x_test"][:100]
    lite = converters.tflite_predict(flatbuffer, x)
    keras = model.predict(x, verbose=0)
    assert (lite.argmax(-1) == keras.argmax(-1)).mean() >= 0.99
