"""Classic BNN methods: XNOR-Net(++), Bi-Real, ReActNet, IR-Net quantizers/layers, and their models.

Forward and gradient are compared with the papers' formulas on hand-made
tensors; models are briefly trained on real Fashion-MNIST, converted with LCE,
their ops counted, and their outputs compared with Keras.
"""

from __future__ import annotations

import json

import larq as lq
import numpy as np
import pytest
import tensorflow as tf
from _round_trip import assert_keras_round_trip

from bnn_tf import converters, training
from bnn_tf import models as zoo
from bnn_tf.converters.runtime import make_interpreter
from bnn_tf.errors import ConfigError
from bnn_tf.methods.bireal import bireal_block
from bnn_tf.methods.irnet import EdeSchedule, EdeSign, LibraPBWeight, ede_parameters, ede_quantizers
from bnn_tf.methods.reactnet import RPReLU, RSign, RSignThreshold
from bnn_tf.methods.xnor import XnorScale, XnorWeight

W = np.array(
    [[0.5, -0.2, 1.5], [-0.3, 0.0, -2.0], [0.1, 0.4, 0.25], [-0.6, 0.9, -0.05]], np.float32
)  # 4 weights per filter (rows), 3 output filters (last axis, as Keras kernels)
DY = np.array([[1.0, -2.0, 0.5], [0.3, 1.0, -1.0], [-0.7, 0.2, 2.0], [0.4, -0.1, 1.0]], np.float32)


def _value_and_grad(fn, x, dy):
    x = tf.Variable(x)
    with tf.GradientTape() as tape:
        y = fn(x)
    return y.numpy(), tape.gradient(y, x, output_gradients=tf.constant(dy)).numpy()


def _sign(x):
    return np.where(x >= 0, 1.0, -1.0).astype(np.float32)


# --- quantizers --------------------------------------------------------------------------


def test_xnor_weight_forward_and_exact_gradient():
    y, g = _value_and_grad(XnorWeight(clip_value=1.0), W, DY)
    alpha = np.abs(W).mean(axis=0)
    np.testing.assert_allclose(y, alpha * _sign(W), rtol=1e-6)  # sign(0) = +1
    n = W.shape[0]
    ste = (np.abs(W) <= 1.0).astype(np.float32)
    # d|w|/dw = sign(w), which is 0 at w = 0 (the forward sign there is +1).
    expected = alpha * ste * DY + np.sign(W) / n * (DY * _sign(W)).sum(axis=0)
    np.testing.assert_allclose(g, expected, rtol=1e-5, atol=1e-6)


def test_ede_sign_forward_and_gradient():
    x = np.array([-1.5, -0.2, 0.0, 0.3, 2.0], np.float32)
    dy = np.array([1.0, 2.0, -1.0, 0.5, 3.0], np.float32)
    q = EdeSign(t=0.5, k=2.0)
    y, g = _value_and_grad(q, x, dy)
    np.testing.assert_array_equal(y, _sign(x))
    np.testing.assert_allclose(g, dy * 2.0 * 0.5 * (1 - np.tanh(0.5 * x) ** 2), rtol=1e-6)
    q.set_ede(4.0, 1.0)  # the schedule changes the backward pass only
    y2, g2 = _value_and_grad(q, x, dy)
    np.testing.assert_array_equal(y2, y)
    np.testing.assert_allclose(g2, dy * 4.0 * (1 - np.tanh(4.0 * x) ** 2), rtol=1e-5, atol=1e-5)


def test_libra_pb_weight_forward_and_gradient():
    w = W * np.array([1.0, 3.0, 0.01], np.float32)  # scales that do not change the result
    centred = w - w.mean(axis=0)
    std = centred.std(axis=0, ddof=1)  # unbiased, as torch.std
    w_hat = centred / std
    scale = 2.0 ** np.round(np.log2(np.abs(w_hat).mean(axis=0)))
    t, k = 0.7, 1 / 0.7
    y, g = _value_and_grad(LibraPBWeight(t=t, k=k), w, DY)
    np.testing.assert_allclose(y, _sign(w_hat) * scale, rtol=1e-6)
    # Balanced signs: standardisation makes every filter's binary weights zero-mean-ish.
    assert set(np.unique(np.abs(y))) <= {0.5, 1.0, 2.0}
    # Backward: EDE on ŵ, times the (gradient-free) scale, then through the standardisation.
    upstream = DY * scale * k * t * (1 - np.tanh(t * w_hat) ** 2)

    def standardise(v):
        c = v - tf.reduce_mean(v, axis=0)
        return c / tf.sqrt(tf.reduce_sum(c * c, axis=0) / (v.shape[0] - 1) + 1e-12)

    _, expected = _value_and_grad(standardise, w, upstream.astype(np.float32))
    np.testing.assert_allclose(g, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    ("epoch", "epochs", "t"), [(0, 10, 0.1), (5, 10, 1.0), (9, 10, 0.1 * 100**0.9), (0, 1, 0.1)]
)
def test_ede_schedule_formula(epoch, epochs, t):
    got_t, got_k = ede_parameters(epoch, epochs)
    assert got_t == pytest.approx(t, rel=1e-9)
    assert got_k == pytest.approx(max(1 / t, 1.0), rel=1e-9)


def test_ede_schedule_rejects_bad_ranges():
    with pytest.raises(ConfigError, match="epochs"):
        EdeSchedule(0)
    with pytest.raises(ConfigError, match="t_min"):
        EdeSchedule(3, t_min=1.0, t_max=0.5)


def test_ede_schedule_callback_updates_every_quantizer(fmnist_small):
    tf.keras.utils.set_random_seed(0)
    model = zoo.build("irnet_small", widths=(8, 8, 16, 16, 16), stem_width=8)
    quantizers = ede_quantizers(model)
    assert len(quantizers) == 10  # 5 input + 5 kernel quantizers
    schedule = EdeSchedule(3)
    training.compile_model(model, optimizer=tf.keras.optimizers.legacy.Adam(1e-3))
    x, y = fmnist_small["x_train"][:64], fmnist_small["y_train"][:64]
    model.fit(x, y, epochs=3, batch_size=64, verbose=0, callbacks=[schedule])
    assert [t for t, _ in schedule.history] == pytest.approx(
        [0.1, 0.1 * 100 ** (1 / 3), 0.1 * 100 ** (2 / 3)]
    )
    last_t, last_k = schedule.history[-1]
    for q in quantizers:
        assert float(q.ede_t.numpy()) == pytest.approx(last_t, rel=1e-6)
        assert float(q.ede_k.numpy()) == pytest.approx(last_k, rel=1e-6)


def test_ede_schedule_refuses_a_model_without_ede():
    model = zoo.build("bnn_small", widths=(8, 8, 8, 8, 8), stem_width=8)
    model.compile(optimizer="adam", loss="mse")
    with pytest.raises(ConfigError, match="no EDE quantizer"):
        model.fit(
            np.zeros((2, 28, 28, 1)), np.zeros((2, 10)), verbose=0, callbacks=[EdeSchedule(2)]
        )


# --- layers ------------------------------------------------------------------------------


def test_rsign_forward_and_gradient():
    x = np.array([[[[-0.5, 0.2], [0.1, 1.7]]]], np.float32)  # (1, 1, 2, 2): 2 channels
    dy = np.array([[[[1.0, -2.0], [0.5, 1.0]]]], np.float32)
    layer = RSign()
    layer.build(x.shape)
    layer.alpha.assign([0.1, 0.5])
    y, gx = _value_and_grad(layer, x, dy)
    shifted = x - np.array([0.1, 0.5], np.float32)
    np.testing.assert_array_equal(y, _sign(shifted))
    approx = np.where(np.abs(shifted) <= 1, 2 - 2 * np.abs(shifted), 0.0)
    np.testing.assert_allclose(gx, dy * approx, rtol=1e-6)
    with tf.GradientTape() as tape:
        out = layer(tf.constant(x))
    g_alpha = tape.gradient(out, layer.alpha, output_gradients=tf.constant(dy)).numpy()
    np.testing.assert_allclose(g_alpha, -(dy * approx).sum(axis=(0, 1, 2)), rtol=1e-6)


def test_rsign_threshold_is_the_shift_half():
    x = np.arange(8, dtype=np.float32).reshape(1, 2, 2, 2) - 4
    layer = RSignThreshold()
    layer.build(x.shape)
    layer.alpha.assign([1.0, -2.0])
    np.testing.assert_allclose(layer(x).numpy(), x - np.array([1.0, -2.0]))
    fused = RSign()
    fused.build(x.shape)
    fused.alpha.assign([1.0, -2.0])
    # threshold + the conv's sign quantizer == the fused RSign
    np.testing.assert_array_equal(lq.quantizers.approx_sign(layer(x)).numpy(), fused(x).numpy())


def test_rprelu_forward_and_gradient():
    x = np.array([[[[-1.0, 2.0], [0.5, -3.0]]]], np.float32)
    dy = np.ones_like(x)
    layer = RPReLU()
    layer.build(x.shape)
    gamma, beta, zeta = np.array([0.4, -1.0]), np.array([0.25, 0.1]), np.array([0.3, -0.2])
    layer.gamma.assign(gamma)
    layer.beta.assign(beta)
    layer.zeta.assign(zeta)
    y, g = _value_and_grad(layer, x, dy)
    s = x - gamma
    np.testing.assert_allclose(y, np.where(s > 0, s, beta * s) + zeta, rtol=1e-6)
    np.testing.assert_allclose(g, np.where(s > 0, 1.0, beta), rtol=1e-6)


@pytest.mark.parametrize("mode", ["channel", "factorised"])
def test_xnor_scale_forward_and_gradient(mode):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 3, 4, 5)).astype(np.float32)
    dy = rng.normal(size=x.shape).astype(np.float32)
    layer = XnorScale(mode)
    layer.build(x.shape)
    alpha = rng.uniform(0.5, 2, 5).astype(np.float32)
    layer.alpha.assign(alpha)
    gamma_full = alpha
    if mode == "factorised":
        beta, gam = (
            rng.uniform(0.5, 2, 3).astype(np.float32),
            rng.uniform(0.5, 2, 4).astype(np.float32),
        )
        layer.beta.assign(beta.reshape(3, 1, 1))
        layer.gamma.assign(gam.reshape(1, 4, 1))
        gamma_full = beta[:, None, None] * gam[None, :, None] * alpha[None, None, :]
    with tf.GradientTape() as tape:
        y = layer(tf.constant(x))
    g_alpha = tape.gradient(y, layer.alpha, output_gradients=tf.constant(dy)).numpy()
    np.testing.assert_allclose(y.numpy(), x * gamma_full, rtol=1e-5)
    np.testing.assert_allclose(
        g_alpha, (dy * x * gamma_full / alpha).sum(axis=(0, 1, 2)), rtol=1e-4
    )


def test_xnor_scale_errors():
    with pytest.raises(ConfigError, match="mode"):
        XnorScale("spatial")
    with pytest.raises(ConfigError, match="static height"):
        XnorScale("factorised")(tf.keras.Input((None, None, 4)))


def test_bireal_block_shortcuts_and_errors():
    inputs = tf.keras.Input((8, 8, 16))
    for shortcut in ("conv", "pad", "duplicate"):
        out = bireal_block(inputs, 32, strides=2, shortcut=shortcut, name=shortcut)
        assert tuple(out.shape) == (None, 4, 4, 32)
    with pytest.raises(ConfigError, match="doubles"):
        bireal_block(inputs, 24, shortcut="duplicate")
    with pytest.raises(ConfigError, match="shortcut must be"):
        bireal_block(inputs, 16, shortcut="identity")


def test_bireal_block_is_binary_conv_plus_real_shortcut():
    """Identity shortcut: out = BN(conv(sign x, α·sign W)) + x, checked against numpy."""
    rng = np.random.default_rng(1)
    inputs = tf.keras.Input((5, 5, 4))
    model = tf.keras.Model(inputs, bireal_block(inputs, 4, name="b"))
    x = rng.normal(size=(1, 5, 5, 4)).astype(np.float32)
    kernel = model.get_layer("b_conv").kernel.numpy()
    wq = np.abs(kernel).mean(axis=(0, 1, 2)) * _sign(kernel)
    xs = np.pad(_sign(x), ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=1.0)  # pad_values=1
    conv = np.zeros((1, 5, 5, 4), np.float32)
    for i in range(5):
        for j in range(5):
            conv[0, i, j] = np.tensordot(xs[0, i : i + 3, j : j + 3], wq, axes=3)
    bn = conv / np.sqrt(1 + 1e-3)  # fresh BN: mean 0, var 1, γ 1, β 0
    np.testing.assert_allclose(model(x, training=False).numpy(), bn + x, rtol=1e-4, atol=1e-4)


# --- serialisation -----------------------------------------------------------------------

LAYER_CASES = {
    "xnor_weight": lambda x: lq.layers.QuantConv2D(4, 3, kernel_quantizer=XnorWeight(clip_value=1.3),
                                                   input_quantizer="ste_sign", pad_values=1.0, padding="same")(x),
    "libra_pb_ede": lambda x: lq.layers.QuantConv2D(4, 3, kernel_quantizer=LibraPBWeight(t=0.3),
                                                    input_quantizer=EdeSign(t=2.0), padding="same")(x),
    "xnor_scale_channel": lambda x: XnorScale("channel", initial_value=0.5)(x),
    "xnor_scale_factorised": lambda x: XnorScale("factorised")(x),
    "rsign": lambda x: RSign()(x),
    "rsign_threshold": lambda x: RSignThreshold()(x),
    "rprelu": lambda x: RPReLU(slope_initial=0.1)(x),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(LAYER_CASES))
def test_keras_round_trip(case, tmp_path):
    assert_keras_round_trip(LAYER_CASES[case], tmp_path)


def test_ede_parameters_survive_get_config():
    q = EdeSign(t=3.0, k=1.0)
    q2 = EdeSign.from_config(q.get_config())
    assert float(q2.ede_t.numpy()) == 3.0 and float(q2.ede_k.numpy()) == 1.0


# --- models: registry honesty, conversion, op counts, parity ------------------------------

CLASSIC = [
    "xnornet_small", "xnornet_pp_small", "birealnet_small", "reactnet_small",
    "irnet_small", "irnet_resnet20", "dorefa_small", "twn_small",
]  # fmt: skip
# Slow to convert or train; the fast set already covers every new mechanism once.
SLOW = {"irnet_resnet20", "birealnet_small", "dorefa_small", "xnornet_small"}


def test_every_classic_model_is_registered_with_an_honest_flag():
    for name in CLASSIC:
        info = zoo.info(name)
        assert info.lce_binary == (name not in {"dorefa_small", "twn_small"}), name
        assert info.paper, name


def _quick_trained(name, fmnist_small):
    tf.keras.utils.set_random_seed(3)
    model = zoo.build(name)
    training.compile_model(model, optimizer=tf.keras.optimizers.legacy.Adam(2e-3))
    callbacks = [EdeSchedule(1)] if ede_quantizers(model) else []
    model.fit(fmnist_small["x_train"][:1600], fmnist_small["y_train"][:1600],
              epochs=1, batch_size=64, verbose=0, callbacks=callbacks)  # fmt: skip
    return model


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in CLASSIC]
)
def test_converts_with_expected_ops_and_matches_keras_on_real_images(name, fmnist_small):
    model = _quick_trained(name, fmnist_small)
    flatbuffer = converters.convert(model)
    report = converters.inspect(flatbuffer)
    expected_binary = converters.binary_conv_layers(model)
    if zoo.info(name).lce_binary:
        # Every sign-input binary conv became LceBconv2d; only the stem, the head and
        # (Bi-Real/IR-Net small) the 1×1 shortcut convs stay float.
        assert report.binary_convs == len(expected_binary) > 0
        float_convs = report.op_counts.get("CONV_2D", 0)
        shortcut_convs = sum(1 for layer in model.layers if layer.name.endswith("_shortcut_conv"))
        assert float_convs == 1 + shortcut_convs
    else:
        assert report.binary_convs == 0 and not expected_binary
        assert report.op_counts.get("CONV_2D", 0) == 6  # stem + 5 emulated k-bit/ternary convs
    result = converters.verify(
        model, flatbuffer, fmnist_small["x_test"][:200], fmnist_small["y_test"][:200]
    )
    assert result.top1_agreement >= 0.99, result.format()
    # Parity is only meaningful on a model that does not predict one class for everything.
    predicted = model.predict(fmnist_small["x_test"][:200], verbose=0).argmax(-1)
    assert len(set(predicted.tolist())) >= 3, "degenerate model: parity would prove little"
    assert abs(result.keras_accuracy - result.tflite_accuracy) <= 0.01


def test_channel_xnor_scale_folds_into_the_binary_conv():
    """A trained-looking per-channel Γ leaves no float MUL: it became the output multiplier."""
    model = zoo.build("xnornet_pp_small", scale="channel", widths=(32, 32, 32, 32, 32))
    rng = np.random.default_rng(4)
    for layer in model.layers:
        if isinstance(layer, XnorScale):
            layer.alpha.assign(rng.uniform(0.3, 3.0, layer.alpha.shape).astype(np.float32))
    flatbuffer = converters.convert(model)
    report = converters.inspect(flatbuffer)
    assert report.binary_convs == 5
    assert "MUL" not in report.op_counts, report.format()
    x = rng.uniform(-1, 1, (4, 28, 28, 1)).astype(np.float32)
    out = converters.tflite_predict(flatbuffer, x)
    np.testing.assert_allclose(out, model.predict(x, verbose=0), rtol=1e-3, atol=1e-3)


def test_xnor_weight_scale_becomes_the_output_multiplier():
    """XnorWeight kernels (±α_o) convert to LceBconv2d and give Keras' outputs."""
    inputs = tf.keras.Input((8, 8, 32))
    x = lq.layers.QuantConv2D(32, 3, padding="same", pad_values=1.0, use_bias=False,
                              input_quantizer="ste_sign", kernel_quantizer=XnorWeight(), name="c")(inputs)  # fmt: skip
    model = tf.keras.Model(inputs, x)
    rng = np.random.default_rng(5)
    kernel = rng.normal(size=(3, 3, 32, 32)).astype(np.float32) * rng.uniform(0.1, 3, 32).astype(
        np.float32
    )
    model.get_layer("c").kernel.assign(kernel)
    flatbuffer = converters.convert(model)
    assert converters.inspect(flatbuffer).op_counts.get("LceBconv2d") == 1
    assert converters.inspect(flatbuffer).float_mac_ops == 0
    x = rng.normal(size=(2, 8, 8, 32)).astype(np.float32)
    np.testing.assert_allclose(
        converters.tflite_predict(flatbuffer, x), model(x).numpy(), rtol=1e-4, atol=1e-3
    )


def test_rsign_fused_or_split_both_lower_to_binary_kernels():
    """RSign as one activation layer, or split (threshold + the conv's sign quantizer): LCE
    matches the sign in the graph either way, so both become LceBconv2d. Models use the split
    form so the conv itself declares its binary input (lint, reports, Bop see it)."""
    inputs = tf.keras.Input((8, 8, 32))
    fused = RSign()(inputs)
    fused = lq.layers.QuantConv2D(
        32, 3, padding="valid", use_bias=False, kernel_quantizer="ste_sign", name="fused_conv"
    )(fused)
    split = RSignThreshold()(inputs)
    split = lq.layers.QuantConv2D(
        32,
        3,
        padding="valid",
        use_bias=False,
        input_quantizer="approx_sign",
        kernel_quantizer="ste_sign",
        name="split_conv",
    )(split)
    model = tf.keras.Model(inputs, [fused, split])
    flatbuffer = converters.convert(model)
    report = converters.inspect(flatbuffer)
    assert report.op_counts.get("LceBconv2d") == 2
    assert report.float_mac_ops == 0
    assert converters.binary_conv_layers(model) == [
        model.layers[-1].name
    ]  # only the split form is declared
    # Same kernel in both convs: the two outputs are the same function of x, in Keras and in LCE
    # (so the check does not depend on the order of the TFLite outputs).
    model.get_layer("split_conv").kernel.assign(model.get_layer("fused_conv").kernel)
    flatbuffer = converters.convert(model)
    x = np.random.default_rng(6).normal(size=(1, 8, 8, 32)).astype(np.float32)
    want = model(x)[0].numpy()
    np.testing.assert_allclose(model(x)[1].numpy(), want, atol=1e-5)
    for got in make_interpreter(flatbuffer).predict(x):
        np.testing.assert_allclose(got, want, atol=1e-4)


def test_cli_listing_states_binary_kernels_honestly(capsys):
    from bnn_tf import cli

    assert cli.main(["models", "--json"]) == 0
    rows = {
        m["name"]: m["lce_binary_kernels"] for m in json.loads(capsys.readouterr().out)["models"]
    }
    assert all(rows[n] for n in CLASSIC if n not in {"dorefa_small", "twn_small"})
    assert rows["dorefa_small"] is False and rows["twn_small"] is False
