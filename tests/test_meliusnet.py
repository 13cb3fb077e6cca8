"""MeliusNet: blocks against their formulas, published sizes, LCE conversion of the small model."""

from __future__ import annotations

import larq as lq
import numpy as np
import pytest
import tensorflow as tf

from bnn_tf import converters
from bnn_tf import models as zoo
from bnn_tf.converters.verification import randomize_batchnorm
from bnn_tf.errors import ConfigError
from bnn_tf.methods import melius
from bnn_tf.models import meliusnet as mn

LARGE = list(mn.CONFIGS)


# ---------------------------------------------------------------- layers


def test_channel_shuffle_matches_the_shufflenet_permutation():
    x = np.arange(2 * 3 * 3 * 12, dtype=np.float32).reshape(2, 3, 3, 12)
    out = melius.ChannelShuffle(4)(x).numpy()
    # channel a·(C/g) + k moves to k·g + a
    expected = np.empty_like(x)
    for a in range(4):
        for k in range(3):
            expected[..., k * 4 + a] = x[..., a * 3 + k]
    np.testing.assert_array_equal(out, expected)


def test_channel_shuffle_and_split_reject_bad_group_counts():
    with pytest.raises(ConfigError, match="not divisible by 5"):
        melius.ChannelShuffle(5)(np.zeros((1, 2, 2, 12), np.float32))
    with pytest.raises(ConfigError, match="≥ 1"):
        melius.ChannelSplit(0)
    with pytest.raises(ConfigError, match="transition_features needs 3"):
        mn.meliusnet_small(transition_features=(96, 128))


def test_pre_sign_batch_norm_keeps_the_sign_of_batch_norm(rng):
    x = rng.normal(0, 2, (4, 5, 5, 32)).astype(np.float32)
    pre = melius.PreSignBatchNorm()
    ref = tf.keras.layers.BatchNormalization(momentum=0.9)
    pre.build(x.shape)
    ref.build(x.shape)
    weights = [
        rng.uniform(0.2, 2, 32),
        rng.normal(0, 1, 32),
        rng.normal(0, 1, 32),
        rng.uniform(0.3, 3, 32),
    ]
    # γ = 0 (allowed by the constraint): BN outputs β, the threshold must follow
    weights[0][:3] = 0.0
    pre.set_weights(weights)
    ref.set_weights(weights)
    bn_out = ref(x, training=False).numpy()
    thr_out = pre(x, training=False).numpy()
    # inference output is x + t, t = β σ / γ − μ: same sign as BN(x), not the same value
    sigma = np.sqrt(weights[3] + ref.epsilon)
    t = weights[1][3:] * sigma[3:] / weights[0][3:] - weights[2][3:]
    np.testing.assert_allclose(thr_out[..., 3:], x[..., 3:] + t, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(np.sign(thr_out), np.sign(bn_out))
    assert not np.allclose(thr_out, bn_out)
    # training: exactly BatchNorm
    np.testing.assert_allclose(pre(x, training=True), ref(x, training=True), atol=1e-5)
    assert isinstance(pre.gamma_constraint, tf.keras.constraints.NonNeg)


def test_grouped_conv_bn_relu_equals_a_keras_grouped_conv(rng):
    inp = tf.keras.Input((6, 6, 16))
    model = tf.keras.Model(inp, melius.grouped_conv_bn_relu(inp, 8, 3, groups=4, name="g"))
    randomize_batchnorm(model, spread=0.3)
    ref = tf.keras.layers.Conv2D(8, 3, padding="same", groups=4, use_bias=False)
    ref.build((None, 6, 6, 16))
    kernels = [model.get_layer(f"g_conv_g{g}").kernel.numpy() for g in range(4)]
    # Keras' grouped conv orders output channels group by group
    ref.set_weights([np.concatenate(kernels, axis=-1)])
    x = rng.normal(size=(2, 6, 6, 16)).astype(np.float32)
    y = ref(x).numpy()
    bns = [model.get_layer(f"g_bn_g{g}") for g in range(4)]
    scale = np.concatenate(
        [b.gamma.numpy() / np.sqrt(b.moving_variance.numpy() + b.epsilon) for b in bns]
    )
    shift = np.concatenate(
        [
            b.beta.numpy() - b.moving_mean.numpy() * s
            for b, s in zip(bns, np.split(scale, 4), strict=True)
        ]
    )
    np.testing.assert_allclose(
        model(x, training=False), np.maximum(y * scale + shift, 0), atol=1e-4
    )


def test_melius_block_adds_the_improvement_to_the_last_64_channels_only(rng):
    inp = tf.keras.Input((8, 8, 96))
    z = melius.melius_block(inp, name="b")
    block = tf.keras.Model(inp, z)
    d_out, i_out = (block.get_layer(n).output for n in ("b_dense_conv", "b_improve_conv"))
    probe = tf.keras.Model(inp, [z, d_out, i_out])
    randomize_batchnorm(probe, spread=0.3)
    x = rng.normal(size=(2, 8, 8, 96)).astype(np.float32)
    out, d, i = (t.numpy() for t in probe(x, training=False))
    assert out.shape == (2, 8, 8, 160)
    np.testing.assert_array_equal(out[..., :96], x)  # the first C channels pass through
    np.testing.assert_allclose(out[..., 96:], d + i, atol=1e-5)  # paper: [x, d] + Pad(i)
    np.testing.assert_allclose(
        out, np.concatenate([x, d], -1) + np.pad(i, [(0, 0)] * 3 + [(96, 0)]), atol=1e-5
    )
    assert np.abs(i).max() > 0 and np.abs(d).max() > 0


def test_binary_convs_are_set_up_for_lce():
    model = zoo.build("meliusnet_small")
    convs = [la for la in model.layers if isinstance(la, lq.layers.QuantConv2D)]
    assert len(convs) == 2 * sum(mn.SMALL_CONFIG.num_blocks)
    for conv in convs:
        assert conv.pad_values == 1.0 and conv.padding == "same" and not conv.use_bias
        assert isinstance(conv.input_quantizer, lq.quantizers.SteSign)
        assert conv.input_quantizer.clip_value == pytest.approx(1.3)
        assert conv.kernel_quantizer.precision == 1
        assert conv.kernel_constraint is None  # Bop by default: no weight clip
        # the BN in front folds to a threshold ADD: it must be a PreSignBatchNorm feeding only this conv
        producer = conv.inbound_nodes[0].inbound_layers
        assert isinstance(producer, melius.PreSignBatchNorm)
        assert len(producer.outbound_nodes) == 1


def test_weight_clip_is_opt_in_for_latent_weight_optimizers():
    model = zoo.build("meliusnet_small", kernel_constraint=lq.constraints.WeightClip(1.3))
    convs = [la for la in model.layers if isinstance(la, lq.layers.QuantConv2D)]
    assert all(c.kernel_constraint.clip_value == pytest.approx(1.3) for c in convs)


def test_layers_round_trip_through_a_keras_file(tmp_path, rng):
    inp = tf.keras.Input((4, 4, 32))
    x = melius.ChannelShuffle(16)(inp)
    x = melius.transition(x, 32, name="t", groups=4, shuffle_groups=16)
    x = melius.melius_block(x, name="b")
    model = tf.keras.Model(inp, x)
    randomize_batchnorm(model, spread=0.3)
    model.save(tmp_path / "m.keras")
    loaded = tf.keras.models.load_model(tmp_path / "m.keras")
    x = rng.normal(size=(2, 4, 4, 32)).astype(np.float32)
    np.testing.assert_allclose(model(x, training=False), loaded(x, training=False), atol=1e-5)
    assert isinstance(loaded.get_layer("t_shuffle"), melius.ChannelShuffle)


# ------------------------------------------------------- published configurations


@pytest.mark.parametrize("name", LARGE)
def test_configuration_matches_the_published_size_and_widths(name):
    config = mn.CONFIGS[name]
    # Parameters do not depend on the image size: a 32×32 input builds faster.
    model = zoo.build(name, input_shape=(32, 32, 3), num_classes=1000)
    profile = lq.models.ModelProfile(model)
    size_mib = profile.memory / 8 / 2**20  # larq's "Model size" (1-bit binary, 32-bit float)
    assert size_mib == pytest.approx(config.paper_size_mb, rel=0.03)
    if name == "meliusnet22":
        # by hand: binary 9·64·ΣC_in = 6,119,424; float: stem 864 + 2·2,304, BN γ/β
        # 2·(128 + 10,624 + 1,280 + 512), transitions 281,600, Dense 513,000 → 825,160
        assert profile.weight_count(bitwidth=1) == 6_119_424
        assert profile.weight_count() == 6_944_584
    # block / transition widths
    convs = [la for la in model.layers if isinstance(la, lq.layers.QuantConv2D)]
    assert len(convs) == 2 * sum(config.num_blocks)
    assert profile.weight_count(bitwidth=1) == sum(
        9 * 64 * (int(c.input_shape[-1])) for c in convs
    )  # fmt: skip
    for s, (c_in, c_out) in enumerate(config.stage_widths()):
        first = model.get_layer(f"stage{s + 1}_block1_dense_conv")
        assert first.input_shape[-1] == c_in
        last = model.get_layer(f"stage{s + 1}_block{config.num_blocks[s]}_improve_concat")
        assert last.output_shape[-1] == c_out
        if s < len(config.transition_features):
            width = config.transition_features[s]
            assert width % 32 == 0
            # the transition conv(s) map c_out → width, with `groups` convs of width/groups each
            g = config.transition_groups
            names = (
                [f"transition{s + 1}_conv"]
                if g == 1
                else [f"transition{s + 1}_conv_g{i}" for i in range(g)]
            )
            tconvs = [model.get_layer(n) for n in names]
            assert sum(t.filters for t in tconvs) == width
            assert all(t.kernel.shape == (1, 1, c_out // g, width // g) for t in tconvs)
            if config.shuffle_groups:
                assert model.get_layer(f"transition{s + 1}_shuffle").groups == 16
    assert model.get_layer("head_bn").input_shape[-1] == config.final_width
    assert not any(
        "pad" in la.name.lower() or isinstance(la, tf.keras.layers.ZeroPadding2D)
        for la in model.layers
    )


# ------------------------------------------------------------- LCE conversion


@pytest.fixture(scope="module")
def small_converted():
    tf.keras.utils.set_random_seed(0)
    model = zoo.build("meliusnet_small")
    randomize_batchnorm(model, spread=0.3)
    return model, converters.convert(model)


def test_small_meliusnet_converts_with_every_binary_conv_on_lce_and_few_float_ops(small_converted):
    model, flatbuffer = small_converted
    report = converters.inspect(flatbuffer)
    counts = report.op_counts
    blocks = sum(mn.SMALL_CONFIG.num_blocks)
    assert report.binary_convs == len(converters.binary_conv_layers(model)) == 2 * blocks
    assert counts["LceQuantize"] == 2 * blocks
    # float MAC ops: stem (1 + 4 + 8 per-group convs), 3 transitions, the classifier; nothing else
    assert report.float_mac_ops == 13 + 3 + 1
    assert "PAD" not in counts and "TRANSPOSE" not in counts and "SPLIT_V" not in counts
    # one threshold ADD per binary conv, one improvement ADD per block, BN of 3 transitions + head
    assert counts["ADD"] == 2 * blocks + blocks + 4
    assert counts["MUL"] == 4
    # concats: one per dense and one per improvement block, 2 in the grouped stem
    assert counts["CONCATENATION"] == 2 * blocks + 2


def test_small_meliusnet_tflite_agrees_with_keras_on_real_images(small_converted, fmnist_small):
    model, flatbuffer = small_converted
    x = fmnist_small["x_test"][:32]
    keras_logits = model.predict(x, verbose=0)
    lite_logits = converters.tflite_predict(flatbuffer, x)
    agree = np.mean(np.argmax(keras_logits, -1) == np.argmax(lite_logits, -1))
    assert agree >= 31 / 32
    assert np.median(np.abs(keras_logits - lite_logits)) < 1e-3 * max(
        1.0, np.abs(keras_logits).max()
    )
