"""Binary QuantDense → 1×1 binary conv: identical outputs, and LCE runs it on LceBconv2d."""

from __future__ import annotations

import larq as lq
import numpy as np
import pytest
import tensorflow as tf

from bnn_tf import converters
from bnn_tf.converters.binary_dense import BinaryDenseConv, rewrite_binary_dense
from bnn_tf.errors import ConfigError

Q = dict(input_quantizer="ste_sign", kernel_quantizer="ste_sign", kernel_constraint="weight_clip")


def _mlp(*, kernel_quantizer="ste_sign", use_bias=True, activation=None) -> tf.keras.Model:
    """Float stem → Flatten → two binary dense layers → float classifier, on 28×28×1 images."""
    inputs = tf.keras.Input((28, 28, 1))
    x = tf.keras.layers.Conv2D(8, 3, strides=2, name="stem")(inputs)
    x = tf.keras.layers.BatchNormalization(name="stem_bn")(x)
    x = tf.keras.layers.Flatten()(x)
    x = lq.layers.QuantDense(256, name="fc1", **{**Q, "kernel_quantizer": kernel_quantizer},
                             use_bias=use_bias, activation=activation)(x)  # fmt: skip
    x = tf.keras.layers.BatchNormalization(name="fc1_bn")(x)
    x = lq.layers.QuantDense(128, name="fc2", **Q, use_bias=False)(x)
    x = tf.keras.layers.BatchNormalization(name="fc2_bn")(x)
    x = tf.keras.layers.Dense(10, name="logits")(x)
    return tf.keras.Model(inputs, x)


def _randomise(model: tf.keras.Model, seed: int = 0) -> tf.keras.Model:
    """Non-trivial BN statistics and biases, so equality is not an accident of init values."""
    rng = np.random.default_rng(seed)
    model.set_weights([w + rng.normal(0, 0.3, w.shape).astype(w.dtype) if w.ndim == 1 else w
                       for w in model.get_weights()])  # fmt: skip
    for layer in model.layers:
        if isinstance(layer, tf.keras.layers.BatchNormalization):
            layer.moving_variance.assign(tf.abs(layer.moving_variance) + 0.5)
    return model


def test_rewritten_model_gives_identical_outputs_on_real_images(fmnist_small):
    tf.keras.utils.set_random_seed(0)
    model = _randomise(_mlp(activation="relu"))
    rewritten = rewrite_binary_dense(model)
    assert [type(layer).__name__ for layer in rewritten.layers if layer.name in ("fc1", "fc2")] == [
        "BinaryDenseConv", "BinaryDenseConv"
    ]  # fmt: skip
    assert [layer.name for layer in rewritten.layers] == [layer.name for layer in model.layers]
    x = fmnist_small["x_test"][:256]
    np.testing.assert_array_equal(model.predict(x, verbose=0), rewritten.predict(x, verbose=0))
    # The original model is untouched.
    assert type(model.get_layer("fc1")) is lq.layers.QuantDense


def test_magnitude_aware_kernel_scale_is_kept(fmnist_small):
    tf.keras.utils.set_random_seed(1)
    model = _randomise(_mlp(kernel_quantizer="magnitude_aware_sign"))
    rewritten = rewrite_binary_dense(model)
    assert isinstance(rewritten.get_layer("fc1"), BinaryDenseConv)
    x = fmnist_small["x_test"][:128]
    # ±scale kernels: float sums in a different order, so equal up to rounding.
    np.testing.assert_allclose(
        model.predict(x, verbose=0), rewritten.predict(x, verbose=0), rtol=1e-5, atol=1e-4
    )


def test_lce_runs_the_rewritten_dense_layers_on_binary_kernels(fmnist_small):
    tf.keras.utils.set_random_seed(2)
    model = _randomise(_mlp())
    before = converters.conversion_report(model, converters.convert(model))
    assert {r.name: r.actual for r in before.layers if r.quantized} == {
        "fc1": "float",
        "fc2": "float",
    }
    rewritten = rewrite_binary_dense(model)
    flatbuffer = converters.convert(rewritten)
    after = converters.conversion_report(rewritten, flatbuffer)
    rows = {r.name: r for r in after.layers}
    assert rows["fc1"].actual == rows["fc2"].actual == "binary"
    assert rows["fc1"].ops == ["LceBconv2d"] and not after.fallbacks and not after.lint_mismatches
    assert rows["fc1"].macs == 13 * 13 * 8 * 256 and rows["fc2"].macs == 256 * 128
    assert after.binary_macs > before.binary_macs == 0
    x, y = fmnist_small["x_test"][:200], fmnist_small["y_test"][:200]
    result = converters.verify(model, flatbuffer, x, y)  # Keras original vs LCE rewritten
    assert result.top1_agreement >= 0.99, result.format()
    assert result.max_abs_logit_diff < 1e-2


def test_only_eligible_layers_are_rewritten():
    inputs = tf.keras.Input((6, 16))
    seq = lq.layers.QuantDense(8, name="on_sequence", **Q)(inputs)  # rank-3 input: not a 1×1 conv
    flat = tf.keras.layers.Flatten()(seq)
    heavi = lq.layers.QuantDense(8, name="heaviside", **{**Q, "input_quantizer": "ste_heaviside"})(
        flat
    )
    model = tf.keras.Model(inputs, heavi)
    assert rewrite_binary_dense(model) is model  # nothing eligible: the same object back
    lint = {e.name: e for e in converters.lint(model).layers}
    assert "rank 3" in " ".join(lint["on_sequence"].reasons)
    assert "Heaviside" in " ".join(lint["heaviside"].reasons)


def test_nested_model_is_rewritten_recursively(fmnist_small):
    tf.keras.utils.set_random_seed(3)
    inner = _randomise(_mlp())
    outer_in = tf.keras.Input((28, 28, 1))
    outer = tf.keras.Model(outer_in, tf.keras.layers.Softmax()(inner(outer_in)))
    rewritten = rewrite_binary_dense(outer)
    inner_new = [layer for layer in rewritten.layers if isinstance(layer, tf.keras.Model)][0]
    assert isinstance(inner_new.get_layer("fc2"), BinaryDenseConv)
    x = fmnist_small["x_test"][:64]
    np.testing.assert_array_equal(outer.predict(x, verbose=0), rewritten.predict(x, verbose=0))


def test_subclassed_model_is_refused_with_a_fix():
    class Net(tf.keras.Model):
        def __init__(self):
            super().__init__()
            self.fc = lq.layers.QuantDense(4, **Q)

        def call(self, x):
            return self.fc(x)

    net = Net()
    net(tf.zeros((1, 8)))
    with pytest.raises(ConfigError, match="functional API"):
        rewrite_binary_dense(net)


def test_layer_saves_loads_and_trains(tmp_path, fmnist_small):
    from bnn_tf import training

    tf.keras.utils.set_random_seed(4)
    model = rewrite_binary_dense(_mlp())
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = tf.keras.models.load_model(path, compile=False)
    x = fmnist_small["x_test"][:16]
    assert isinstance(loaded.get_layer("fc1"), BinaryDenseConv)
    np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))
    # Trainable like QuantDense: Bop/Adam update it and the loss moves.
    training.compile_model(model)
    xs, ys = fmnist_small["x_train"][:512], fmnist_small["y_train"][:512]
    before = model.evaluate(xs, ys, verbose=0)[0]
    model.fit(xs, ys, batch_size=64, epochs=2, verbose=0)
    assert model.evaluate(xs, ys, verbose=0)[0] < before


def test_rank_3_input_is_refused_by_the_layer_itself():
    layer = BinaryDenseConv(4, **Q)
    with pytest.raises(ConfigError, match="Flatten"):
        layer(tf.zeros((1, 3, 8)))
