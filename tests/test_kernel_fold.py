"""`converters.fold_kernel_quantizers`: large quantized kernels precomputed before LCE sees them."""

from __future__ import annotations

import larq as lq
import numpy as np
import pytest
import tensorflow as tf

from bnn_tf import converters
from bnn_tf.converters import kernel_fold
from bnn_tf.methods.dorefa import MagnitudeAwareSignUnclipped
from bnn_tf.methods.xnor import XnorWeightScale

KERNEL_QUANTIZERS = {
    "ste_sign": lambda: "ste_sign",
    "xnor_weight_scale": XnorWeightScale,
    "magnitude_aware_sign_unclipped": MagnitudeAwareSignUnclipped,
}


def _model(kernel_quantizer, filters: int = 64) -> tf.keras.Model:
    tf.keras.utils.set_random_seed(0)
    inputs = tf.keras.Input((6, 6, 32))
    x = tf.keras.layers.Conv2D(32, 1, name="stem")(inputs)
    x = lq.layers.QuantConv2D(
        filters, 6, input_quantizer="ste_sign", kernel_quantizer=kernel_quantizer(),
        use_bias=False, name="fc6",
    )(x)  # fmt: skip
    x = tf.keras.layers.Flatten()(x)
    x = lq.layers.QuantDense(
        10, input_quantizer=lq.quantizers.DoReFaQuantizer(k_bit=2),
        kernel_quantizer=MagnitudeAwareSignUnclipped(), name="fc7",
    )(x)  # fmt: skip
    return tf.keras.Model(inputs, x)


@pytest.mark.parametrize("quantizer", sorted(KERNEL_QUANTIZERS))
def test_folded_copy_computes_the_same_and_leaves_the_model_alone(quantizer, rng):
    model = _model(KERNEL_QUANTIZERS[quantizer])
    before = [w.numpy().copy() for w in model.weights]
    folded = converters.fold_kernel_quantizers(model, min_bytes=1)
    assert folded is not model
    for name in ("fc6", "fc7"):
        layer, original = folded.get_layer(name), model.get_layer(name)
        assert layer.kernel_quantizer is None and original.kernel_quantizer is not None
        assert type(layer) is type(original)
        assert layer.input_quantizer.get_config() == original.input_quantizer.get_config()
        want = original.kernel_quantizer(tf.convert_to_tensor(original.kernel)).numpy()
        np.testing.assert_array_equal(layer.kernel.numpy(), want)
    x = rng.normal(size=(4, 6, 6, 32)).astype("float32")
    np.testing.assert_allclose(
        folded(x, training=False), model(x, training=False), rtol=1e-5, atol=1e-5
    )
    assert all(np.array_equal(a, w.numpy()) for a, w in zip(before, model.weights, strict=True))


def test_only_kernels_over_the_threshold_are_folded():
    model = _model(XnorWeightScale)
    fc6 = model.get_layer("fc6")  # 6·6·32·64 floats = 294 912 bytes
    assert kernel_fold.needs_folding(fc6, min_bytes=294_912)
    assert not kernel_fold.needs_folding(fc6, min_bytes=294_913)
    assert not kernel_fold.needs_folding(model.get_layer("stem"), min_bytes=1)  # not quantized
    # the default is Grappler's 10 MiB: the small models of the zoo are left as they were
    assert kernel_fold.FOLD_MIN_BYTES == 10 * 2**20
    assert converters.fold_kernel_quantizers(model) is model
    folded = converters.fold_kernel_quantizers(model, min_bytes=294_912)
    assert folded.get_layer("fc6").kernel_quantizer is None
    assert folded.get_layer("fc7").kernel_quantizer is not None  # 576·10 floats: small


def test_convert_folds_and_the_large_conv_lands_on_a_binary_kernel(monkeypatch, rng):
    model = _model(XnorWeightScale)
    monkeypatch.setattr(kernel_fold, "FOLD_MIN_BYTES", 100_000)  # fc6 only, as at 10 MiB for XNOR
    flatbuffer = converters.convert(model)
    assert converters.inspect(flatbuffer).op_counts.get("LceBconv2d") == 1
    x = rng.normal(size=(8, 6, 6, 32)).astype("float32")
    lite = converters.tflite_predict(flatbuffer, x)
    ref = model.predict(x, verbose=0)
    np.testing.assert_allclose(lite, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())


@pytest.mark.slow
def test_dorefa_head_over_10_mib_converts():
    """LCE 0.16 fails on this layer unfolded (ValueError or a segfault, docs/larq_zoo.md)."""
    tf.keras.utils.set_random_seed(0)
    inputs = tf.keras.Input((9216,))
    x = lq.layers.QuantDense(
        4096, input_quantizer=lq.quantizers.DoReFaQuantizer(k_bit=2),
        kernel_quantizer=MagnitudeAwareSignUnclipped(), use_bias=False,
    )(inputs)  # fmt: skip
    model = tf.keras.Model(inputs, x)
    flatbuffer = converters.convert(model)
    assert converters.inspect(flatbuffer).op_counts.get("FULLY_CONNECTED") == 1
    x = np.random.default_rng(0).uniform(-1, 2, (2, 9216)).astype("float32")
    lite, ref = converters.tflite_predict(flatbuffer, x), model.predict(x, verbose=0)
    np.testing.assert_allclose(lite, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())
