"""Multi-basis binarization (ABC-Net, ReBNet, least-squares binary): formulas, layer, LCE ops.

Quantizers are checked against the papers' formulas computed in numpy
(forward and gradient); `MultiBasisConv2D` against the k-bit convolution it
decomposes; small models are trained briefly on real Fashion-MNIST,
converted, their `LceBconv2d` counted (M·N per layer) and their predictions
compared with Keras under LCE's default kernel.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import tensorflow as tf
from _tape import value_and_grads as _value_and_grads

from bnn_tf import converters, training
from bnn_tf import models as zoo
from bnn_tf.errors import ConfigError
from bnn_tf.methods.abc_net import AbcActivation, AbcWeight, abc_shifts
from bnn_tf.methods.lq_net import GAUSSIAN_QUARTILE, LqActivation, LqWeight, nearest_codes
from bnn_tf.methods.lsq_binary import GAUSSIAN_SCALES, LsqActivation, LsqWeight
from bnn_tf.methods.multibasis import (
    MultiBasisConv2D,
    WeightBases,
    get_quantizer,
    least_squares_scales,
)
from bnn_tf.methods.rebnet import ResidualSign

RNG = np.random.default_rng(0)
KERNEL = RNG.normal(size=(3, 3, 4, 5)).astype(np.float32) * RNG.uniform(0.2, 2, 5).astype(
    np.float32
)
DY = RNG.normal(size=KERNEL.shape).astype(np.float32)


def _sign(x):
    return np.where(x >= 0, 1.0, -1.0).astype(np.float32)


def _groups(w, scale):
    """(n, G) columns: the whole kernel, or one column per output filter."""
    return w.reshape(-1, 1) if scale == "layer" else w.reshape(-1, w.shape[-1])


# --- least squares ------------------------------------------------------------------------


def test_least_squares_scales_match_numpy_lstsq():
    bases = [tf.constant(_sign(KERNEL - t)) for t in (-0.5, 0.0, 0.7)]
    got = least_squares_scales(tf.constant(KERNEL), bases, axes=[0, 1, 2]).numpy()
    for o in range(KERNEL.shape[-1]):
        a = np.stack([b.numpy()[..., o].ravel() for b in bases], 1)
        want = np.linalg.lstsq(a, KERNEL[..., o].ravel(), rcond=None)[0]
        np.testing.assert_allclose(got[:, o], want, rtol=1e-3, atol=1e-5)


# --- ABC-Net ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("m", "scale"), [(1, "layer"), (3, "layer"), (2, "channel"), (3, "channel")]
)
def test_abc_weight_forward_and_gradient(m, scale):
    y, (g,) = _value_and_grads(AbcWeight(m, scale), KERNEL, DY)
    cols = _groups(KERNEL, scale)
    centred = cols - cols.mean(0)
    std = cols.std(0)  # the paper's std(W): population
    shifts = [-1 + 2 * i / (m - 1) for i in range(m)] if m > 1 else [0.0]
    assert abc_shifts(m) == pytest.approx(shifts)
    want = np.zeros_like(cols)
    alpha_sum = np.zeros(cols.shape[1], np.float32)
    for c in range(cols.shape[1]):
        b = np.stack([_sign(centred[:, c] + u * std[c]) for u in shifts], 1)
        alpha = np.linalg.lstsq(b, cols[:, c], rcond=None)[0]
        want[:, c] = b @ alpha
        alpha_sum[c] = alpha.sum()
    np.testing.assert_allclose(y.reshape(cols.shape), want, rtol=1e-4, atol=1e-5)
    # ∂C/∂W = Σᵢ αᵢ ∂C/∂Ŵ: every basis is straight-through, α carries no gradient.
    expected = (_groups(DY, scale) * alpha_sum).reshape(DY.shape)
    np.testing.assert_allclose(g, expected, rtol=1e-4, atol=1e-5)


def test_abc_activation_forward_and_gradients():
    x = RNG.normal(size=(2, 3, 3, 4)).astype(np.float32)
    dy = RNG.normal(size=x.shape).astype(np.float32)
    q = AbcActivation(3)
    q.build(x.shape)
    shift, beta = np.array([0.9, 0.4, -0.2], np.float32), np.array([0.5, 0.3, 0.2], np.float32)
    q.shift.assign(shift)
    q.beta.assign(beta)
    y, (gx, gshift, gbeta) = _value_and_grads(q, x, dy, extra=(q.shift, q.beta))
    h = [_sign(x + v - 0.5) for v in shift]
    np.testing.assert_allclose(y, sum(b * hj for b, hj in zip(beta, h, strict=True)), rtol=1e-6)
    window = [
        2.0 * ((x + v >= 0) & (x + v <= 1)) for v in shift
    ]  # d/dx of 2·round(clip(x+v,0,1))−1
    np.testing.assert_allclose(gx, dy * sum(b * w for b, w in zip(beta, window, strict=True)),
                               rtol=1e-5)  # fmt: skip
    np.testing.assert_allclose(gshift, [(dy * b * w).sum() for b, w in zip(beta, window, strict=True)],
                               rtol=1e-4)  # fmt: skip
    np.testing.assert_allclose(gbeta, [(dy * hj).sum() for hj in h], rtol=1e-4)


def test_abc_activation_initial_thresholds_spread_and_one_basis_is_sign():
    q = AbcActivation(1)
    x = np.linspace(-2, 2, 9, dtype=np.float32).reshape(1, 1, 9, 1)
    np.testing.assert_array_equal(q(x).numpy(), _sign(x))  # β = 1, threshold 0: sign(x)
    q3 = AbcActivation(3)
    q3.build(x.shape)
    np.testing.assert_allclose(0.5 - q3.shift.numpy(), [-2 / 3, 0.0, 2 / 3], rtol=1e-6)


# --- ReBNet -------------------------------------------------------------------------------


def test_residual_sign_forward_and_gradients_two_levels():
    x = np.array([-1.7, -0.9, -0.3, 0.05, 0.4, 1.2, 2.5], np.float32)
    dy = np.array([1.0, -0.5, 2.0, 0.3, -1.0, 0.7, 1.5], np.float32)
    q = ResidualSign(2)
    q.build(x.shape)
    g1, g2 = 0.9, 0.35
    q.gamma.assign([g1, g2])
    y, (gx, ggamma) = _value_and_grads(q, x, dy, extra=(q.gamma,))
    s1 = _sign(x)
    e1 = x - g1 * s1
    s2 = _sign(e1)
    np.testing.assert_allclose(y, g1 * s1 + g2 * s2, rtol=1e-6)
    ste1, ste2 = (np.abs(x) <= 1).astype(np.float32), (np.abs(e1) <= 1).astype(np.float32)
    np.testing.assert_allclose(gx, dy * (g1 * ste1 + g2 * ste2 * (1 - g1 * ste1)), rtol=1e-5)
    np.testing.assert_allclose(ggamma, [(dy * s1 * (1 - g2 * ste2)).sum(), (dy * s2).sum()],
                               rtol=1e-5)  # fmt: skip


def test_residual_sign_three_levels_halve_and_approximate():
    q = ResidualSign(3, initial_scale=0.8)
    x = RNG.normal(size=(1000,)).astype(np.float32)
    np.testing.assert_allclose(q.build(x.shape) or q.gamma.numpy(), [0.8, 0.4, 0.2])
    errors = [np.mean((ResidualSign(m)(x).numpy() - x) ** 2) for m in (1, 2, 3)]
    assert errors[0] > errors[1] > errors[2]  # every residual level reduces the error


# --- least-squares binary -----------------------------------------------------------------


def _ls2_bruteforce(v):
    """Best 2-bit {±(v1±v2)} quantization by trying every split of sorted |v|."""
    a = np.sort(np.abs(v))
    best = None
    for k in range(1, len(a)):
        lo, hi = a[:k].mean(), a[k:].mean()
        err = ((a[:k] - lo) ** 2).sum() + ((a[k:] - hi) ** 2).sum()
        if best is None or err < best[0]:
            best = (err, (hi + lo) / 2, (hi - lo) / 2)
    return best


@pytest.mark.parametrize("scale", ["channel", "layer"])
def test_lsq_1bit_and_2bit_forward_are_the_least_squares_optimum(scale):
    y1, (g1,) = _value_and_grads(LsqWeight("1bit", scale), KERNEL, DY)
    cols = _groups(KERNEL, scale)
    alpha = np.abs(cols).mean(0)
    np.testing.assert_allclose(y1.reshape(cols.shape), alpha * _sign(cols), rtol=1e-5)
    np.testing.assert_allclose(g1, (_groups(DY, scale) * alpha).reshape(DY.shape), rtol=1e-5)

    q = LsqWeight("2bit", scale)
    y2, (g2,) = _value_and_grads(q, KERNEL, DY)
    y2 = y2.reshape(cols.shape)
    scales = []
    for c in range(cols.shape[1]):
        err, v1, v2 = _ls2_bruteforce(cols[:, c])
        b1 = _sign(cols[:, c])
        b2 = _sign(cols[:, c] - v1 * b1)
        np.testing.assert_allclose(y2[:, c], v1 * b1 + v2 * b2, rtol=1e-4, atol=1e-5)
        assert ((y2[:, c] - cols[:, c]) ** 2).sum() == pytest.approx(err, rel=1e-4)
        scales.append(v1 + v2)
    # Identity STE through both bases: ∂C/∂W = (v1 + v2) ∂C/∂Ŵ.
    np.testing.assert_allclose(g2, (_groups(DY, scale) * np.array(scales)).reshape(DY.shape),
                               rtol=1e-4)  # fmt: skip
    assert len(q.bases(tf.constant(KERNEL))) == 2


def test_lsq_tree_has_branch_scales_and_beats_2bit():
    w = tf.constant(KERNEL)
    tree = LsqWeight("tree")(w).numpy()
    two = LsqWeight("2bit")(w).numpy()
    cols, tcols = _groups(KERNEL, "channel"), _groups(tree, "channel")
    for c in range(cols.shape[1]):
        v = cols[:, c]
        _, v1, _ = _ls2_bruteforce(v)
        hi = np.abs(v) > v1
        level = np.where(hi, 1.0, -1.0)
        for branch in (v >= 0, v < 0):
            v2 = (level[branch] * (np.abs(v[branch]) - v1)).mean()
            want = np.sign(v[branch] + 1e-30) * (v1 + v2 * level[branch])
            np.testing.assert_allclose(tcols[branch, c], want, rtol=1e-4, atol=1e-5)
        # Four levels per filter (two per sign branch), never worse than ls-2.
        assert len(np.unique(np.round(tcols[:, c], 5))) <= 4
    assert ((tree - KERNEL) ** 2).sum() <= ((two - KERNEL) ** 2).sum() + 1e-6


def test_lsq_scales_are_the_same_eager_and_in_a_graph():
    """The ls-2 split does not depend on float rounding (the converter folds it in a graph).

    In float32 neighbouring splits near the optimum tie within rounding: this kernel's v₁
    came out 6e-5 apart eager and in a tf.function, flipping bases after conversion.
    """
    w = tf.constant(RNG.normal(size=(3, 3, 128, 64)).astype(np.float32) * 0.05)
    q = LsqWeight("tree")
    eager = [s.numpy() for _, s in q.bases(w)]
    graph = [s.numpy() for _, s in tf.function(lambda w: q.bases(w))(w)]
    for a, b in zip(eager, graph, strict=True):
        np.testing.assert_array_equal(a, b)


def test_lsq_tree_gradient_is_the_straight_through_sum_of_its_scales():
    """x̂ = c₁b₁ + c₂b₂ + c₃b₁b₂, identity STE per basis: ∂C/∂W = (c₁ + c₂ + c₃)·∂C/∂Ŵ = (v₁ + v₂⁺)·∂C/∂Ŵ."""
    _, (g,) = _value_and_grads(LsqWeight("tree"), KERNEL, DY)
    cols, gcols, dcols = _groups(KERNEL, "channel"), _groups(g, "channel"), _groups(DY, "channel")
    for c in range(cols.shape[1]):
        v = cols[:, c]
        _, v1, _ = _ls2_bruteforce(v)
        level = np.where(np.abs(v) > v1, 1.0, -1.0)
        positive = v >= 0  # sign(0) = +1: the b₁ = +1 branch
        v2_plus = (level[positive] * (np.abs(v[positive]) - v1)).mean()
        np.testing.assert_allclose(gcols[:, c], dcols[:, c] * (v1 + v2_plus), rtol=1e-4, atol=1e-6)


# --- the layer ----------------------------------------------------------------------------

QUANTIZERS = {
    "abc_2x3": lambda: (AbcWeight(2, "channel"), AbcActivation(3)),
    "rebnet_1x2": lambda: (LsqWeight("1bit"), ResidualSign(2)),
    "lsq_tree_x1": lambda: (LsqWeight("tree"), ResidualSign(1)),
    "lq_2x1": lambda: (LqWeight(2), ResidualSign(1)),
    "lq_2x2": lambda: (LqWeight(2), LqActivation(2)),
    "lsq_2bit_x_tree": lambda: (LsqWeight("2bit"), LsqActivation("tree")),
}


@pytest.mark.parametrize("case", sorted(QUANTIZERS))
@pytest.mark.parametrize("padding", ["same", "valid"])
def test_multibasis_conv_is_the_k_bit_conv_it_decomposes(case, padding):
    """Σᵢⱼ αᵢβⱼ conv(Hⱼ, Bᵢ) == conv(Σⱼ βⱼHⱼ padded with Σⱼ βⱼ, Σᵢ αᵢBᵢ) (linearity)."""
    kq, iq = QUANTIZERS[case]()
    layer = MultiBasisConv2D(6, 3, padding=padding, kernel_quantizer=kq, input_quantizer=iq)
    x = RNG.normal(size=(2, 7, 7, 4)).astype(np.float32)
    y = layer(x).numpy()
    assert layer.num_binary_convs == kq.num_bases * iq.num_bases
    a = iq(x).numpy()
    if padding == "same":
        pad_value = float(sum(s.numpy() for _, s in iq.bases(tf.constant(x))))
        a = np.pad(a, ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=pad_value)
    want = tf.nn.conv2d(a, layer.effective_kernel(), 1, "VALID").numpy()
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-4)


def test_multibasis_conv_gradient_reaches_kernel_and_scales():
    kq, iq = QUANTIZERS["abc_2x3"]()
    layer = MultiBasisConv2D(4, 3, kernel_quantizer=kq, input_quantizer=iq)
    x = tf.constant(RNG.normal(size=(1, 6, 6, 3)).astype(np.float32))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(x) ** 2)
    grads = tape.gradient(loss, layer.trainable_variables)
    names = [v.name.split("/")[-1].split(":")[0] for v in layer.trainable_variables]
    assert sorted(names) == ["beta", "kernel", "shift"]
    assert all(g is not None and np.abs(g.numpy()).sum() > 0 for g in grads)


def test_strided_same_padding_matches_conv2d_geometry():
    layer = MultiBasisConv2D(
        4, 3, strides=2, kernel_quantizer=AbcWeight(1), input_quantizer=AbcActivation(1)
    )
    assert tuple(layer(np.zeros((1, 7, 8, 3), np.float32)).shape) == (1, 4, 4, 4)


def test_errors_name_the_problem():
    with pytest.raises(ConfigError, match="Unknown WeightBases quantizer"):
        MultiBasisConv2D(4, 3, kernel_quantizer="abc_activation")
    with pytest.raises(ConfigError, match="padding"):
        MultiBasisConv2D(4, 3, padding="causal")
    with pytest.raises(ConfigError, match="num_bases"):
        AbcWeight(0)
    with pytest.raises(ConfigError, match="mode"):
        LsqWeight("3bit")
    with pytest.raises(ConfigError, match="levels"):
        ResidualSign(0)
    with pytest.raises(ConfigError, match="bits"):
        LqActivation(0)
    with pytest.raises(ConfigError, match="mode"):
        LsqActivation("2-bit")
    with pytest.raises(ConfigError, match="not both"):
        zoo.build("lqnet_small", activation_bits=2, activation_levels=2, **TINY)
    assert isinstance(get_quantizer("bnn_tf>lsq_weight", WeightBases), LsqWeight)


@pytest.mark.parametrize("case", sorted(QUANTIZERS))
def test_keras_round_trip(case, tmp_path):
    kq, iq = QUANTIZERS[case]()
    inputs = tf.keras.Input((6, 6, 3))
    model = tf.keras.Model(
        inputs, MultiBasisConv2D(4, 3, kernel_quantizer=kq, input_quantizer=iq)(inputs)
    )
    for w in model.weights:  # non-default values (state too), so the round trip checks them
        w.assign(w + RNG.uniform(0.05, 0.2, w.shape).astype(np.float32))
    model.save(tmp_path / "m.keras")
    loaded = tf.keras.models.load_model(tmp_path / "m.keras")
    x = RNG.normal(size=(2, 6, 6, 3)).astype(np.float32)
    np.testing.assert_allclose(model(x).numpy(), loaded(x).numpy(), atol=1e-6)
    layer = loaded.layers[-1]
    assert type(layer.kernel_quantizer) is type(kq) and type(layer.input_quantizer) is type(iq)
    # Quantizer state (LQ-Net's bases, moving scales) is saved with the model.
    state = [*kq.non_trainable_weights, *iq.non_trainable_weights]
    assert bool(state) == (case.startswith("lq") or "x_tree" in case)
    assert all(any(w is s for w in model.weights) for s in state)
    assert layer.num_binary_convs == kq.num_bases * iq.num_bases


# --- models: registry, conversion to M·N LceBconv2d, parity on real images ----------------

MODELS = {
    "abcnet_small_2x2": ("abcnet_small", {"weight_bases": 2, "activation_bases": 2}, 4),
    "abcnet_small_1x3": ("abcnet_small", {"weight_bases": 1, "activation_bases": 3}, 3),
    "rebnet_small": ("rebnet_small", {"levels": 2}, 2),
    "lsq_binary_small_tree": ("lsq_binary_small", {"mode": "tree"}, 3),
    "lqnet_small_2bit": ("lqnet_small", {"bits": 2}, 2),
    "lqnet_small_2x2": ("lqnet_small", {"bits": 2, "activation_bits": 2}, 4),
    "lsq_binary_small_2bit_x_2bit": ("lsq_binary_small", {"activation_mode": "2bit"}, 4),
    "lsq_binary_small_1bit_x_tree": (
        "lsq_binary_small",
        {"mode": "1bit", "activation_mode": "tree"},
        3,
    ),
}
TINY = {"widths": (16, 16, 32, 32, 32), "stem_width": 8}


def test_models_are_registered_as_binary_and_trained_with_adam():
    for name in ("abcnet_small", "rebnet_small", "lsq_binary_small", "lqnet_small"):
        info = zoo.info(name)
        assert info.lce_binary
        assert info.family == "multibit" and info.paper
        assert info.training["name"] == "adam" and info.training["why"]


# Each case converts a model (≈ 20–70 s on the shared 2-core machine); one runs by default.
@pytest.mark.parametrize(
    "case",
    [
        c if c == "abcnet_small_2x2" else pytest.param(c, marks=pytest.mark.slow)
        for c in sorted(MODELS)
    ],
)
def test_each_conv_becomes_m_times_n_lce_bconv2d_and_matches_keras(case, fmnist_small):
    from larq_compute_engine.tflite.python.interpreter import Interpreter

    name, options, per_layer = MODELS[case]
    tf.keras.utils.set_random_seed(1)
    model = zoo.build(name, **options, **TINY)
    training.compile_model(model, optimizer=tf.keras.optimizers.legacy.Adam(2e-3))
    model.fit(fmnist_small["x_train"][:960], fmnist_small["y_train"][:960], epochs=1,
              batch_size=64, verbose=0)  # fmt: skip
    convs = [layer for layer in model.layers if isinstance(layer, MultiBasisConv2D)]
    assert [c.num_binary_convs for c in convs] == [per_layer] * 5
    flatbuffer = converters.convert(model)
    report = converters.inspect(flatbuffer)
    assert report.op_counts.get("LceBconv2d") == 5 * per_layer, report.op_counts
    assert report.op_counts.get("CONV_2D") == 1  # the float stem only
    x = fmnist_small["x_test"]
    interpreter = Interpreter(
        flatbuffer, num_threads=1, use_indirect_bgemm=False
    )  # LCE default kernel
    lite = np.concatenate([interpreter.predict(x[i : i + 100]) for i in range(0, len(x), 100)])
    keras = model.predict(x, verbose=0)
    assert (lite.argmax(-1) == keras.argmax(-1)).mean() >= 0.999
    assert len(set(keras.argmax(-1).tolist())) >= 3, "degenerate model: parity would prove little"


def test_more_bases_approximate_the_kernel_better():
    w = tf.constant(KERNEL)
    errors = [float(tf.reduce_sum((AbcWeight(m, "channel")(w) - w) ** 2)) for m in (1, 2, 3, 5)]
    assert errors == sorted(errors, reverse=True)
    assert all(a > b for a, b in itertools.pairwise(errors))


# --- LQ-Net -------------------------------------------------------------------------------


def test_lq_weight_nearest_level_codes_and_qem_update():
    q = LqWeight(bits=2, momentum=0.5)
    w = tf.constant(KERNEL)
    q.build(w.shape)
    cols = _groups(KERNEL, "channel")
    unit = 2 * np.abs(cols).mean(0) / 3
    v0 = np.stack([unit, 2 * unit])  # initial basis (K, C)
    codes = np.array([[-1, -1], [-1, 1], [1, -1], [1, 1]], np.float32)

    def encode(v):
        levels = codes @ v  # (4, C)
        idx = np.abs(cols[:, :, None] - levels.T[None]).argmin(-1)
        return codes[idx]  # (n, C, K)

    b = encode(v0)
    v_star = np.stack(
        [np.linalg.lstsq(b[:, c], cols[:, c], rcond=None)[0] for c in range(cols.shape[1])], 1
    )
    v1 = 0.5 * v0 + 0.5 * v_star
    y, (g,) = _value_and_grads(lambda x: q(x, training=True), KERNEL, DY)
    np.testing.assert_allclose(q.basis.numpy(), v1, rtol=1e-3, atol=1e-6)
    b1 = encode(v1)
    want = (b1 * v1.T[None]).sum(-1)
    np.testing.assert_allclose(y.reshape(cols.shape), want, rtol=1e-4, atol=1e-5)
    # The paper code's STE: ∂Ŵ/∂W = 1 (the basis carries no gradient).
    np.testing.assert_allclose(g, DY, rtol=1e-4)
    # Inference leaves the basis alone; QEM steps do not increase the error.
    before = q.basis.numpy().copy()
    q(w, training=False)
    np.testing.assert_array_equal(q.basis.numpy(), before)
    errors = []
    for _ in range(5):
        errors.append(float(tf.reduce_sum((q(w, training=True) - w) ** 2)))
    assert all(b <= a + 1e-5 for a, b in itertools.pairwise(errors))


def _nearest_np(x, v):
    """Codes (…, K) and levels of argmin_e |x − vᵀe| over e ∈ {−1, +1}^K; v (K,) or (K, C)."""
    k = v.shape[0]
    e = np.array(list(itertools.product([-1.0, 1.0], repeat=k)), np.float32)  # (2^K, K)
    levels = e @ v  # (2^K,) or (2^K, C)
    levels = np.broadcast_to(np.moveaxis(levels, 0, -1), (*x.shape, len(e)))
    idx = np.abs(x[..., None] - levels).argmin(-1)
    return e[idx], np.take_along_axis(levels, idx[..., None], -1)[..., 0]


@pytest.mark.parametrize("bits", [1, 2, 3])
def test_lq_codes_from_sorted_thresholds_are_the_nearest_level(bits):
    """The threshold chain gives argmin_e |x − vᵀe|, for any basis (unsorted, negative)."""
    v = RNG.normal(size=(bits, KERNEL.shape[-1])).astype(np.float32)
    got = np.stack([b.numpy() for b in nearest_codes(tf.constant(KERNEL), tf.constant(v), bits)],
                   -1)  # fmt: skip
    want_codes, want_levels = _nearest_np(KERNEL, v)
    np.testing.assert_allclose((got * v.T).sum(-1), want_levels, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(got, want_codes)


# --- activation quantizers with learned or least-squares scales ------------------------------

X_ACT = RNG.normal(size=(2, 4, 4, 3)).astype(np.float32) * 1.3
DY_ACT = RNG.normal(size=X_ACT.shape).astype(np.float32)


def test_lq_activation_forward_qem_update_and_gradient():
    q = LqActivation(bits=2, momentum=0.7)
    unit = 2 * GAUSSIAN_QUARTILE / 3
    v0 = np.array([unit, 2 * unit], np.float32)
    # Inference: the nearest level of the stored basis, basis unchanged.
    _, levels = _nearest_np(X_ACT, v0)
    np.testing.assert_allclose(q(X_ACT).numpy(), levels, rtol=1e-6)
    np.testing.assert_allclose(q.basis.numpy(), v0, rtol=1e-6)
    # Training: one QEM step over every value of the batch, then the new basis quantizes.
    codes0, _ = _nearest_np(X_ACT.ravel(), v0)
    v_star = np.linalg.lstsq(codes0, X_ACT.ravel(), rcond=None)[0]
    v1 = 0.7 * v0 + 0.3 * v_star
    y, (g,) = _value_and_grads(lambda x: q(x, training=True), X_ACT, DY_ACT)
    np.testing.assert_allclose(q.basis.numpy(), v1, rtol=1e-4)
    np.testing.assert_allclose(y, _nearest_np(X_ACT, v1)[1], rtol=1e-4, atol=1e-6)
    # The paper code's STE, ∂Q/∂x = 1 up to the top level (and, for ±1 codes, from the bottom one).
    top = np.abs(v1).sum()
    assert (np.abs(X_ACT) > top).any() and (np.abs(X_ACT) <= top).any()
    np.testing.assert_allclose(g, DY_ACT * (np.abs(X_ACT) <= top), rtol=1e-4, atol=1e-7)
    assert all(set(np.unique(h.numpy())) <= {-1.0, 1.0} for h, _ in q.bases(tf.constant(X_ACT)))


def _lsq_np(x, mode, scales=None):
    """Least-squares binary quantization of all of x (one group): (x̂, [scales])."""
    v = x.ravel()
    if mode == "1bit":
        scales = scales if scales is not None else [np.abs(v).mean()]
        return scales[0] * _sign(x), scales
    if scales is None:
        _, v1, v2 = _ls2_bruteforce(v)
        scales = [v1, v2]
        if mode == "tree":
            level = np.where(np.abs(v) >= v1, 1.0, -1.0)
            pos = v >= 0
            vp = (level[pos] * (np.abs(v[pos]) - v1)).mean()
            vn = (level[~pos] * (np.abs(v[~pos]) - v1)).mean()
            scales = [v1, (vp + vn) / 2, (vp - vn) / 2]
    b1 = _sign(x)
    b2 = _sign(x - scales[0] * b1)
    out = scales[0] * b1 + scales[1] * b2
    return (out + scales[2] * b1 * b2 if mode == "tree" else out), scales


@pytest.mark.parametrize("mode", ["1bit", "2bit", "tree"])
def test_lsq_activation_batch_scales_in_training_moving_scales_at_inference(mode):
    q = LsqActivation(mode, momentum=0.6)
    init = np.array(GAUSSIAN_SCALES[mode], np.float32)
    want, _ = _lsq_np(X_ACT, mode, list(init))
    np.testing.assert_allclose(q(X_ACT).numpy(), want, rtol=1e-5, atol=1e-6)  # before training
    y, (g,) = _value_and_grads(lambda x: q(x, training=True), X_ACT, DY_ACT)
    want, batch = _lsq_np(X_ACT, mode)
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-5)  # the batch's own scales
    # Identity STE per basis: ∂C/∂x = (Σ scales) ∂C/∂x̂ (tree: v₁ + v₂⁺).
    np.testing.assert_allclose(g, DY_ACT * sum(batch), rtol=1e-4)
    moving = 0.6 * init + 0.4 * np.array(batch, np.float32)
    np.testing.assert_allclose(q.moving_scales.numpy(), moving, rtol=1e-4, atol=1e-6)
    want, _ = _lsq_np(X_ACT, mode, list(moving))
    np.testing.assert_allclose(q(X_ACT).numpy(), want, rtol=1e-5, atol=1e-6)
    if mode == "tree":  # four free levels fit the batch at least as well as ls-2
        tree, two = _lsq_np(X_ACT, "tree")[0], _lsq_np(X_ACT, "2bit")[0]
        assert ((tree - X_ACT) ** 2).sum() <= ((two - X_ACT) ** 2).sum() + 1e-6


def test_lsq_activation_trains_with_an_unknown_batch_size():
    """The batch scales are computed inside `fit` (batch dimension None while tracing)."""
    inputs = tf.keras.Input((4, 4, 3))
    layer = MultiBasisConv2D(2, 3, kernel_quantizer=LqWeight(2), input_quantizer=LsqActivation())
    model = tf.keras.Model(inputs, layer(inputs))
    model.compile("adam", "mse")
    before = layer.input_quantizer.moving_scales.numpy().copy()
    model.fit(X_ACT, np.zeros((2, 4, 4, 2), np.float32), epochs=1, verbose=0)
    assert not np.allclose(layer.input_quantizer.moving_scales.numpy(), before)
    assert layer.kernel_quantizer.initialised.numpy() == 1.0


# Full width: every conv folds into LceBconv2d (the float kernels would make the file MBs).
FULL_WIDTH = {
    "lsq_binary_small_tree": ("lsq_binary_small", {"mode": "tree"}, 3),
    "lqnet_small_2bit": ("lqnet_small", {"bits": 2}, 2),
}


@pytest.mark.parametrize(
    "case",
    [c if c == "lsq_binary_small_tree" else pytest.param(c, marks=pytest.mark.slow)
     for c in sorted(FULL_WIDTH)],
)  # fmt: skip
def test_full_width_kernels_fold_into_lce_bconv2d(case, fmnist_small):
    name, options, per_layer = FULL_WIDTH[case]
    tf.keras.utils.set_random_seed(2)
    model = zoo.build(name, **options)
    training.compile_model(model, optimizer=tf.keras.optimizers.legacy.Adam(2e-3))
    model.fit(fmnist_small["x_train"][:128], fmnist_small["y_train"][:128], epochs=1,
              batch_size=64, verbose=0)  # fmt: skip
    flatbuffer = converters.convert(model)
    report = converters.inspect(flatbuffer)
    assert report.op_counts.get("LceBconv2d") == 5 * per_layer, report.op_counts
    assert report.op_counts.get("CONV_2D") == 1  # the float stem only
    assert len(flatbuffer) < 400_000, len(flatbuffer)  # bitpacked, no float kernel left
