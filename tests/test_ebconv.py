"""EBConv2D: gate, winner-takes-all, staging, serialisation, Bop routing, LCE export."""

from __future__ import annotations

import larq as lq
import numpy as np
import pytest
import tensorflow as tf

from bnn_tf import converters
from bnn_tf.errors import ConfigError
from bnn_tf.methods import ebconv_export
from bnn_tf.methods.ebconv import (
    EBConv2D,
    ExpertExpansion,
    ebconv_layers,
    expand_experts,
    expert_usage,
    same_padding,
    set_single_expert,
    winner_takes_all,
)


def _sign(x):
    return np.where(x >= 0, 1.0, -1.0).astype(np.float32)


def _layer(input_shape, **kwargs) -> EBConv2D:
    layer = EBConv2D(**kwargs)
    layer.build((None, *input_shape))
    return layer


def _spread_gate(layer: EBConv2D, rng, scale: float = 3.0) -> None:
    # A strong random gate so different samples pick different experts.
    layer.gate_kernel.assign(rng.normal(size=layer.gate_kernel.shape).astype(np.float32) * scale)


def _inputs(rng, n, shape):
    # A per-sample channel offset makes GAP(x) differ between samples.
    x = rng.uniform(-1, 1, size=(n, *shape)) + rng.normal(size=(n, 1, 1, shape[-1]))
    return x.astype(np.float32)


def _reference(layer: EBConv2D, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample formula: y_b = α ⊙ conv(pad₁(sign x_b), sign W_k), k = argmax gate."""
    pooled = x.mean(axis=(1, 2))
    logits = pooled @ layer.gate_kernel.numpy() + layer.gate_bias.numpy()
    idx = logits.argmax(-1)
    w = _sign(layer.kernel.numpy())
    xs = _sign(x)
    if layer.padding == "same":
        pads = [(0, 0)]
        for axis, (k, s) in enumerate(zip(layer.kernel_size, layer.strides, strict=True)):
            size = x.shape[axis + 1]
            out = -(-size // s)
            total = max((out - 1) * s + k - size, 0)
            pads.append((total // 2, total - total // 2))
        pads.append((0, 0))
        xs = np.pad(xs, pads, constant_values=1.0)
    outs = []
    for b in range(len(x)):
        y = tf.nn.conv2d(xs[b : b + 1], w[idx[b]], strides=(1, *layer.strides, 1), padding="VALID")
        outs.append(y.numpy()[0] * layer.alpha.numpy())
    return np.stack(outs), idx


def test_winner_takes_all_is_one_hot_forward_and_identity_backward():
    probs = tf.constant([[0.1, 0.7, 0.2], [0.5, 0.2, 0.3]])
    upstream = tf.constant([[1.0, 2.0, 3.0], [-1.0, 0.5, 4.0]])
    with tf.GradientTape() as tape:
        tape.watch(probs)
        out = winner_takes_all(probs)
        loss = tf.reduce_sum(out * upstream)
    np.testing.assert_array_equal(out.numpy(), [[0, 1, 0], [1, 0, 0]])
    np.testing.assert_allclose(tape.gradient(loss, probs).numpy(), upstream.numpy())


@pytest.mark.parametrize("implementation", ["partition", "grouped"])
@pytest.mark.parametrize(
    "kwargs",
    [
        {"kernel_size": 3, "groups": 1, "strides": 1, "padding": "same"},
        {"kernel_size": 3, "groups": 2, "strides": 2, "padding": "same"},
        {"kernel_size": 1, "groups": 1, "strides": 1, "padding": "valid"},
        {"kernel_size": (3, 1), "groups": 4, "strides": (2, 1), "padding": "valid"},
    ],
)
def test_forward_matches_the_per_sample_formula(implementation, kwargs, rng):
    shape = (9, 8, 8)
    layer = _layer(shape, filters=8, num_experts=4, implementation=implementation, **kwargs)
    _spread_gate(layer, rng)
    layer.alpha.assign(rng.uniform(0.5, 2.0, size=8).astype(np.float32))
    x = _inputs(rng, 12, shape)
    expected, idx = _reference(layer, x)
    assert len(set(idx)) >= 2, "the test needs samples routed to different experts"
    got = layer(x, training=True).numpy()
    assert got.shape == expected.shape == tuple(layer.compute_output_shape((12, *shape)))
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-5)  # α in the kernel reassociates
    # Inference runs every expert and masks them: the same output.
    np.testing.assert_allclose(layer(x, training=False).numpy(), expected, atol=1e-5)
    np.testing.assert_array_equal(layer.select_experts(x).numpy(), idx)


def test_an_expert_chosen_by_no_sample_is_fine_and_learns_nothing(rng):
    layer = _layer((6, 6, 4), filters=4, kernel_size=3, num_experts=4)
    layer.gate_kernel.assign(np.zeros((4, 4), np.float32))
    layer.gate_bias.assign([0.0, 0.0, 5.0, 0.0])  # every sample → expert 2
    x = _inputs(rng, 5, (6, 6, 4))
    with tf.GradientTape() as tape:
        y = layer(x, training=True)
        loss = tf.reduce_sum(y * tf.constant(rng.normal(size=y.shape), tf.float32))
    grad = tape.gradient(loss, layer.kernel).numpy()
    assert np.abs(grad[2]).sum() > 0
    for n in (0, 1, 3):
        assert np.abs(grad[n]).sum() == 0, f"expert {n} was not chosen but got gradient"


@pytest.mark.parametrize("implementation", ["partition", "grouped"])
def test_gate_gradient_is_straight_through_the_softmax(implementation, rng):
    """∂L/∂z = J_softmaxᵀ g with g_n = ⟨∂L/∂y, conv(x, W_n)·α⟩ (partition: chosen n only)."""
    shape = (5, 5, 4)
    layer = _layer(
        shape, filters=3, kernel_size=3, num_experts=3, implementation=implementation,
        gate_activation="softmax", mixing="signed",
    )  # fmt: skip
    _spread_gate(layer, rng)
    x = _inputs(rng, 6, shape)
    upstream = rng.normal(size=(6, 5, 5, 3)).astype(np.float32)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(x, training=True) * upstream)
    got = tape.gradient(loss, layer.gate_bias).numpy()

    pooled = x.mean(axis=(1, 2))
    logits = pooled @ layer.gate_kernel.numpy() + layer.gate_bias.numpy()
    p = tf.nn.softmax(logits).numpy()
    idx = logits.argmax(-1)
    xs = np.pad(_sign(x), [(0, 0), (1, 1), (1, 1), (0, 0)], constant_values=1.0)
    w = _sign(layer.kernel.numpy())
    expected = np.zeros(3)
    for b in range(6):
        g = np.zeros(3)
        for n in range(3):
            if implementation == "partition" and n != idx[b]:
                continue
            y_n = tf.nn.conv2d(xs[b : b + 1], w[n], 1, "VALID").numpy()[0]
            g[n] = np.sum(upstream[b] * y_n)
        jac = np.diag(p[b]) - np.outer(p[b], p[b])
        expected += jac.T @ g
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-3)


def test_se_scale_follows_its_formula(rng):
    shape = (6, 6, 16)
    layer = _layer(
        shape, filters=8, kernel_size=3, num_experts=1, use_se=True, se_reduction=8,
        se_layout="biased",
    )  # fmt: skip
    assert layer.se_kernel1.shape == (16, 2)
    x = _inputs(rng, 3, shape)
    plain = _layer(shape, filters=8, kernel_size=3, num_experts=1)
    plain.set_weights(layer.get_weights()[:2])
    pooled = x.mean(axis=(1, 2))
    hidden = np.maximum(pooled @ layer.se_kernel1.numpy() + layer.se_bias1.numpy(), 0)
    z = hidden @ layer.se_kernel2.numpy() + layer.se_bias2.numpy()
    scale = 1 / (1 + np.exp(-z))
    np.testing.assert_allclose(layer(x).numpy(), plain(x).numpy() * scale[:, None, None], atol=1e-5)


def _gate_gradient_formula(layer, x, upstream, *, exact: bool) -> np.ndarray:
    """∂L/∂b of the gate bias from the formulas of docs/ebconv.md (3×3 'same', stride 1).

    g_n = ⟨∂L/∂y, conv(x, α·M_n)⟩ with M_n = sign(W_n) (signed mixing) or
    W_n ⊙ 1[|W_k| ≤ 1] (latent mixing, k = chosen expert); `exact=False`: only n = k.
    ∂L/∂z = J_softmaxᵀ g, or σ'(z) ⊙ g for the sigmoid gate.
    """
    pooled = x.mean(axis=(1, 2))
    z = pooled @ layer.gate_kernel.numpy() + layer.gate_bias.numpy()
    idx = z.argmax(-1)
    xs = np.pad(_sign(x), [(0, 0), (1, 1), (1, 1), (0, 0)], constant_values=1.0)
    w, alpha = layer.kernel.numpy(), layer.alpha.numpy()
    expected = np.zeros(layer.num_experts)
    for b in range(len(x)):
        k = idx[b]
        g = np.zeros(layer.num_experts)
        for n in range(layer.num_experts):
            if not exact and n != k:
                continue
            m = _sign(w[n]) if layer.mixing == "signed" else w[n] * (np.abs(w[k]) <= 1.0)
            y_n = tf.nn.conv2d(xs[b : b + 1], m * alpha, 1, "VALID").numpy()[0]
            g[n] = np.sum(upstream[b] * y_n)
        if layer.gate_activation == "softmax":
            p = np.exp(z[b] - z[b].max())
            p /= p.sum()
            expected += (np.diag(p) - np.outer(p, p)).T @ g
        else:
            s = 1 / (1 + np.exp(-z[b]))
            expected += s * (1 - s) * g
    return expected


def _gradient_case(rng, wrt: str, **layer_kwargs):
    """A 3-expert layer on 6 random 5×5×4 inputs and its gradient w.r.t. `wrt` (a weight name).

    The gate is spread and the latent experts lie partly beyond ±1, so the clipped
    STE's mask matters. Returns (layer, inputs, upstream gradient, gradient).
    """
    shape = (5, 5, 4)
    layer = _layer(shape, filters=3, kernel_size=3, num_experts=3, **layer_kwargs)
    _spread_gate(layer, rng)
    layer.kernel.assign(rng.uniform(-1.6, 1.6, size=layer.kernel.shape).astype(np.float32))
    layer.alpha.assign(rng.uniform(0.5, 2.0, size=3).astype(np.float32))
    x = _inputs(rng, 6, shape)
    upstream = rng.normal(size=(6, 5, 5, 3)).astype(np.float32)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(x, training=True) * upstream)
    return layer, x, upstream, tape.gradient(loss, getattr(layer, wrt)).numpy()


FORMS = [("sigmoid", "latent"), ("softmax", "latent"), ("sigmoid", "signed"), ("softmax", "signed")]


@pytest.mark.parametrize("implementation", ["partition", "grouped"])
@pytest.mark.parametrize("gate_activation, mixing", FORMS)
def test_gate_gradient_matches_its_formula(gate_activation, mixing, implementation, rng):
    layer, x, upstream, got = _gradient_case(
        rng, "gate_bias", implementation=implementation, gate_activation=gate_activation,
        mixing=mixing,
    )  # fmt: skip
    expected = _gate_gradient_formula(layer, x, upstream, exact=implementation == "grouped")
    assert np.abs(expected).max() > 1e-2, "the formula must not be trivially zero here"
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("implementation", ["partition", "grouped"])
@pytest.mark.parametrize("mixing", ["latent", "signed"])
def test_kernel_gradient_is_the_clipped_ste_of_the_chosen_expert(mixing, implementation, rng):
    """∂L/∂W_n = Σ_{b: k_b = n} ∂L/∂W_s(b) ⊙ 1[|W_n| ≤ 1] (both mixings: φ is one-hot)."""
    layer, x, upstream, got = _gradient_case(
        rng, "kernel", implementation=implementation, mixing=mixing
    )

    idx = layer.select_experts(x).numpy()
    assert len(set(idx)) >= 2
    xs = np.pad(_sign(x), [(0, 0), (1, 1), (1, 1), (0, 0)], constant_values=1.0)
    w, alpha = layer.kernel.numpy(), layer.alpha.numpy()
    expected = np.zeros_like(w)
    for b, k in enumerate(idx):
        ws = tf.Variable(_sign(w[k]) * alpha)
        with tf.GradientTape() as t:
            out = tf.nn.conv2d(xs[b : b + 1], ws, 1, "VALID")
            part = tf.reduce_sum(out * upstream[b : b + 1])
        expected[k] += t.gradient(part, ws).numpy() * alpha * (np.abs(w[k]) <= 1.0)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("mixing", ["latent", "signed"])
def test_right_after_expansion_softmax_starves_the_gate_and_sigmoid_does_not(mixing, rng):
    """All experts equal ⇒ every g_n equal; softmax's Jacobian rows sum to 0, σ' does not.

    The exact (grouped) gradient, i.e. the full mixture Σ φₙ·(...) as in the authors' code.
    """
    shape = (5, 5, 4)
    grads = {}
    for gate_activation in ("softmax", "sigmoid"):
        inputs = tf.keras.Input(shape)
        layer = EBConv2D(
            3, 3, num_experts=3, implementation="grouped", gate_activation=gate_activation,
            mixing=mixing, single_expert=True,
        )  # fmt: skip
        model = tf.keras.Model(inputs, layer(inputs))
        layer.kernel.assign(rng.uniform(-1.2, 1.2, size=layer.kernel.shape).astype(np.float32))
        _spread_gate(layer, rng, scale=0.3)
        expand_experts(model)
        x = _inputs(rng, 6, shape)
        upstream = rng.normal(size=(6, 5, 5, 3)).astype(np.float32)
        with tf.GradientTape(persistent=True) as tape:
            loss = tf.reduce_sum(layer(x, training=True) * upstream)
        grads[gate_activation] = tape.gradient(loss, layer.gate_kernel).numpy()
        expected = _gate_gradient_formula(layer, x, upstream, exact=True)
        got = tape.gradient(loss, layer.gate_bias).numpy()
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-3)
    assert np.abs(grads["sigmoid"]).max() > 1e-2
    assert np.abs(grads["softmax"]).max() < 1e-4 * np.abs(grads["sigmoid"]).max()


def test_form_options_round_trip_and_old_configs_keep_the_first_form(rng):
    layer = _layer(
        (6, 6, 16), filters=16, kernel_size=3, num_experts=2, use_se=True,
        gate_activation="softmax", mixing="signed", se_layout="official",
    )  # fmt: skip
    config = layer.get_config()
    clone = EBConv2D.from_config(config)
    assert (clone.gate_activation, clone.mixing, clone.se_layout) == (
        "softmax",
        "signed",
        "official",
    )
    # Official SE: no biases, hidden C_out // 8.
    assert layer.se_kernel1.shape == (16, 2) and layer.se_bias1 is None
    assert len(layer.trainable_weights) == 6  # kernel, α, gate G and b, SE W1 and W2
    old = {k: v for k, v in config.items() if k not in ("gate_activation", "mixing", "se_layout")}
    legacy = EBConv2D.from_config(old)
    assert (legacy.gate_activation, legacy.mixing, legacy.se_layout) == (
        "softmax",
        "signed",
        "biased",
    )
    legacy.build((None, 6, 6, 16))
    assert legacy.se_kernel1.shape == (16, 2) and legacy.se_bias1.shape == (2,)


def test_single_expert_phase_then_expansion(rng):
    shape = (6, 6, 4)
    layer = _layer(shape, filters=4, kernel_size=3, num_experts=4, single_expert=True)
    _spread_gate(layer, rng)
    model = tf.keras.Sequential([tf.keras.Input(shape), layer])
    x = _inputs(rng, 10, shape)
    assert set(layer.select_experts(x).numpy()) == {0}
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(model(x, training=True) ** 2)
    assert np.abs(tape.gradient(loss, layer.gate_kernel).numpy()).sum() == 0

    assert expand_experts(model) == 1
    kernel = layer.kernel.numpy()
    for n in range(1, 4):
        np.testing.assert_array_equal(kernel[n], kernel[0])
    assert float(layer.single_expert.numpy()) == 0.0
    assert len(set(layer.select_experts(x).numpy())) >= 2
    set_single_expert(model, True)
    assert set(layer.select_experts(x).numpy()) == {0}


def test_expansion_callback_and_bop_train_the_right_variables(fmnist_small):
    import bnn_tf.models as zoo
    from bnn_tf import training

    tf.keras.utils.set_random_seed(3)
    model = zoo.build("ebnet_small", widths=(64,), blocks=(1,), groups=(2,), form="signed")
    eb = ebconv_layers(model)
    assert all(lq.optimizers.Bop.is_binary_variable(layer.kernel) for layer in eb)
    assert not any(lq.optimizers.Bop.is_binary_variable(layer.gate_kernel) for layer in eb)
    training.compile_model(model)
    gate_before = eb[0].gate_kernel.numpy().copy()
    seen = []

    class Probe(tf.keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append([float(layer.single_expert.numpy()) for layer in eb])

    x, y = fmnist_small["x_train"][:256], fmnist_small["y_train"][:256]
    model.fit(x, y, batch_size=64, epochs=2, verbose=0, callbacks=[ExpertExpansion(1), Probe()])
    assert seen == [[1.0] * len(eb), [0.0] * len(eb)]
    kernel = eb[0].kernel.numpy()
    assert set(np.unique(kernel)) <= {-1.0, 1.0}, "Bop keeps expert kernels binary"
    assert not np.array_equal(eb[0].gate_kernel.numpy(), gate_before), "Adam trains the gate"
    usage = expert_usage(model, fmnist_small["x_test"][:64])
    assert set(usage) == {layer.name for layer in eb}
    assert all(int(c.sum()) == 64 for c in usage.values())


def test_declared_expansion_stages_a_staged_model_and_leaves_a_gated_one_alone(fmnist_small):
    """`bnn-tf train`'s staging: declared by EBConv2D, acts only on single-expert models."""
    import bnn_tf.models as zoo
    from bnn_tf import callbacks, introspect

    x, y = fmnist_small["x_train"][:128], fmnist_small["y_train"][:128]
    for staged in (True, False):
        tf.keras.utils.set_random_seed(0)
        model = zoo.build("ebnet_small", widths=(64,), blocks=(1,), groups=(2,), staged=staged)
        eb = ebconv_layers(model)
        assert ExpertExpansion in introspect.declared_schedules(model)
        assert all(float(layer.single_expert.numpy()) == float(staged) for layer in eb)
        found = callbacks.standard_callbacks(model, 3)
        expansion = next(c for c in found if isinstance(c, ExpertExpansion))
        assert expansion.expand_at_epoch == 1 and not expansion.force_single
        model.compile(
            optimizer=tf.keras.optimizers.legacy.Adam(1e-3),
            loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        before = eb[0].kernel.numpy().copy()
        model.fit(x, y, batch_size=64, epochs=3, verbose=0, callbacks=found)
        assert all(float(layer.single_expert.numpy()) == 0.0 for layer in eb)
        if staged:
            assert expansion.expanded_at == 1
        else:  # a gated model is never forced or overwritten: its experts stay distinct
            assert expansion.expanded_at is None
            assert not np.array_equal(before[1], before[0])
            assert not np.array_equal(eb[0].kernel.numpy()[1], eb[0].kernel.numpy()[0])


def test_keras_file_round_trip_keeps_weights_and_stage(tmp_path, rng):
    shape = (8, 8, 8)
    inputs = tf.keras.Input(shape)
    out = EBConv2D(8, 3, groups=2, strides=2, use_se=True, implementation="grouped", name="eb")(
        inputs
    )
    model = tf.keras.Model(inputs, out)
    _spread_gate(model.get_layer("eb"), rng)
    set_single_expert(model, True)
    path = tmp_path / "eb.keras"
    model.save(path)
    loaded = tf.keras.models.load_model(path)
    x = _inputs(rng, 4, shape)
    np.testing.assert_allclose(model(x).numpy(), loaded(x).numpy(), atol=1e-6)
    layer = loaded.get_layer("eb")
    assert float(layer.single_expert.numpy()) == 1.0
    assert layer.get_config()["implementation"] == "grouped" and layer.groups == 2


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"filters": 6, "kernel_size": 3, "groups": 4}, "divide"),
        ({"filters": 8, "kernel_size": 3, "padding": "causal"}, "padding"),
        ({"filters": 8, "kernel_size": 3, "implementation": "loop"}, "implementation"),
        ({"filters": 8, "kernel_size": 3, "num_experts": 0}, "num_experts"),
        ({"filters": 8, "kernel_size": 3, "gate_activation": "relu"}, "gate_activation"),
        ({"filters": 8, "kernel_size": 3, "mixing": "mean"}, "mixing"),
        ({"filters": 8, "kernel_size": 3, "se_layout": "wide"}, "se_layout"),
    ],
)
def test_bad_arguments_raise_config_error(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        EBConv2D(**kwargs)


def test_groups_must_divide_the_input_channels():
    with pytest.raises(ConfigError, match="input"):
        _layer((4, 4, 6), filters=8, kernel_size=3, groups=4)


def test_export_strategies_agree_in_keras(rng):
    shape = (8, 8, 32)
    inputs = tf.keras.Input(shape)
    model = tf.keras.Model(inputs, EBConv2D(16, 3, name="eb")(inputs))
    _spread_gate(model.get_layer("eb"), rng)
    x = _inputs(rng, 6, shape)
    expected = model(x).numpy()
    for strategy in ebconv_export.STRATEGIES:
        exported = ebconv_export.export_model(model, strategy=strategy)
        got = np.concatenate([exported(x[i : i + 1]).numpy() for i in range(len(x))])
        np.testing.assert_allclose(got, expected, atol=1e-5, err_msg=strategy)


def test_export_refuses_subclassed_models():
    class Sub(tf.keras.Model):
        def call(self, x):
            return x

    with pytest.raises(ConfigError, match="functional"):
        ebconv_export.export_model(Sub())


def test_converted_layer_runs_one_lce_bconv_per_expert_in_if_branches(rng):
    shape = (16, 16, 64)
    inputs = tf.keras.Input(shape)
    model = tf.keras.Model(inputs, EBConv2D(32, 3, groups=2, name="eb")(inputs))
    layer = model.get_layer("eb")
    _spread_gate(layer, rng)
    x = _inputs(rng, 24, shape)
    assert len(set(layer.select_experts(x).numpy())) >= 3
    flatbuffer = converters.convert(ebconv_export.export_model(model))
    ops = converters.parse(flatbuffer)
    counts = ops.op_counts
    assert counts["IF"] == 3  # balanced tree over 4 experts
    assert counts["LceBconv2d"] == 4 * 2  # 4 experts × 2 groups, split per group
    assert counts.get("CONV_2D", 0) == 0
    assert all(op.subgraph > 0 for op in ops.operators if op.op == "LceBconv2d")
    got = ebconv_export.lce_interpreter(flatbuffer).predict(x)
    np.testing.assert_allclose(got, model.predict(x, verbose=0), atol=1e-4)


def test_trained_ebnet_small_converts_and_agrees_on_real_images(fmnist_small):
    import bnn_tf.models as zoo
    from bnn_tf import training

    tf.keras.utils.set_random_seed(0)
    model = zoo.build("ebnet_small")
    training.compile_model(model)
    x, y = fmnist_small["x_train"][:1024], fmnist_small["y_train"][:1024]
    model.fit(x, y, batch_size=64, epochs=2, verbose=0, callbacks=[ExpertExpansion(1)])
    x_test, y_test = fmnist_small["x_test"], fmnist_small["y_test"]
    usage = expert_usage(model, x_test)
    assert any((counts > 0).sum() >= 2 for counts in usage.values()), usage

    exported = ebconv_export.export_model(model)
    flatbuffer = converters.convert(exported)
    report = converters.inspect(flatbuffer)
    assert report.binary_convs > 0
    # Float convs: the float stem and the 2 × 2 real transition 1×1 convs only;
    # FULLY_CONNECTED: the 6 gates, the 2 SE matmuls of each layer (the official
    # form's SE is on) and the classifier.
    eb = ebconv_layers(model)
    assert report.op_counts["CONV_2D"] == 1 + 4
    assert report.op_counts["FULLY_CONNECTED"] == sum(1 + 2 * e.use_se for e in eb) + 1
    assert report.op_counts["IF"] == 3 * len(ebconv_layers(model))
    lite = ebconv_export.lce_interpreter(flatbuffer).predict(x_test)
    keras = model.predict(x_test, verbose=0)
    agreement = float((lite.argmax(-1) == keras.argmax(-1)).mean())
    assert agreement >= 0.999, agreement
    # Two short epochs: not a good model, but clearly above chance (0.1), so the
    # agreement is measured on a model whose logits carry information.
    assert float((keras.argmax(-1) == y_test).mean()) > 0.15


def test_training_form_converts_directly_with_all_experts(rng):
    """Without export, inference runs every expert: N LceBconv2d, same outputs as Keras."""
    shape = (8, 8, 32)
    inputs = tf.keras.Input(shape)
    model = tf.keras.Model(inputs, EBConv2D(32, 3, name="eb")(inputs))
    _spread_gate(model.get_layer("eb"), rng)
    flatbuffer = converters.convert(model)
    counts = converters.inspect(flatbuffer).op_counts
    assert counts["LceBconv2d"] == 4 and counts.get("CONV_2D", 0) == 0
    x = _inputs(rng, 8, shape)
    got = converters.tflite_predict(flatbuffer, x)
    np.testing.assert_allclose(got, model.predict(x, verbose=0), atol=1e-4)


def test_symmetric_padding_matches_a_pytorch_style_convolution(rng):
    """padding="symmetric" = PyTorch's Conv2d(padding=1) at stride 2; TF's "same" pads (0, 1)."""
    assert same_padding(8, 3, 2) == (0, 1)  # TF: the extra row/column goes after
    shape = (8, 8, 4)
    layer = _layer(shape, filters=5, kernel_size=3, strides=2, num_experts=1, padding="symmetric")
    same = _layer(shape, filters=5, kernel_size=3, strides=2, num_experts=1, padding="same")
    same.set_weights(layer.get_weights())
    x = _inputs(rng, 2, shape)
    # PyTorch: pad 1 on every side (with +1 after the sign here), cross-correlate at stride 2.
    xs = np.pad(_sign(x), [(0, 0), (1, 1), (1, 1), (0, 0)], constant_values=1.0)
    w = _sign(layer.kernel.numpy()[0])
    out = (8 + 2 - 3) // 2 + 1
    expected = np.zeros((2, out, out, 5), np.float32)
    for i in range(out):
        for j in range(out):
            patch = xs[:, 2 * i : 2 * i + 3, 2 * j : 2 * j + 3, :]
            expected[:, i, j, :] = np.einsum("bhwc,hwco->bo", patch, w)
    got = layer(x).numpy()
    assert got.shape == expected.shape == tuple(layer.compute_output_shape((2, *shape)))
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert not np.allclose(same(x).numpy(), expected), "TF 'same' is not PyTorch's padding"
    assert EBConv2D.from_config(layer.get_config()).padding == "symmetric"
