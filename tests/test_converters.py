"""bnn_tf.converters: convert → inspect → verify → bench, and clear errors for bad files."""

from __future__ import annotations

import numpy as np
import pytest

from bnn_tf import converters
from bnn_tf import models as zoo
from bnn_tf.errors import ConfigError, InvalidModelFileError, InvalidTfliteError


def test_every_binary_conv_becomes_lce_bconv2d(trained_bnn_small, trained_bnn_small_tflite):
    report = converters.inspect(trained_bnn_small_tflite)
    expected = converters.binary_conv_layers(trained_bnn_small)
    assert expected == ["conv1", "conv2", "conv3", "conv4", "conv5"]
    assert report.binary_convs == len(expected)
    # Only the float stem conv and the classifier stay float.
    assert report.op_counts.get("CONV_2D", 0) == 1
    assert report.op_counts.get("FULLY_CONNECTED", 0) == 1
    # MaxPool right before a sign runs on bitpacked data.
    assert report.op_counts.get("LceBMaxPool2d", 0) == 3  # stem_pool, pool2, pool4
    assert report.requires_lce and "LceBconv2d" in report.custom_ops
    assert report.size_bytes == len(trained_bnn_small_tflite)


def test_float_twin_has_no_binary_kernels():
    report = converters.inspect(converters.convert(zoo.build("bnn_small_float")))
    assert report.binary_convs == 0 and not report.requires_lce
    assert report.float_mac_ops == 7


def test_binary_model_is_much_smaller_than_its_float_twin(trained_bnn_small_tflite):
    float_size = len(converters.convert(zoo.build("bnn_small_float")))
    assert float_size / len(trained_bnn_small_tflite) > 15


def test_parity_on_real_test_images(trained_bnn_small, trained_bnn_small_tflite, fmnist_small):
    x, y = fmnist_small["x_test"], fmnist_small["y_test"]
    result = converters.verify(trained_bnn_small, trained_bnn_small_tflite, x, y)
    assert result.num_images == 500
    assert result.top1_agreement >= 0.998, result.mismatches
    assert result.max_abs_logit_diff < 1e-2
    # A trained model, not a constant one: clearly better than chance on real images.
    assert result.keras_accuracy > 0.5
    assert abs(result.keras_accuracy - result.tflite_accuracy) <= 0.002


def test_verify_detects_a_model_that_does_not_match(trained_bnn_small_tflite, fmnist_small):
    other = zoo.build("bnn_small")  # untrained, different weights
    result = converters.verify(other, trained_bnn_small_tflite, fmnist_small["x_test"][:200])
    assert result.top1_agreement < 0.9
    assert result.keras_accuracy is None


def test_verify_rejects_images_of_the_wrong_shape(trained_bnn_small, trained_bnn_small_tflite):
    with pytest.raises(ConfigError, match=r"expects inputs of shape \(N, 28, 28, 1\)"):
        converters.verify(trained_bnn_small, trained_bnn_small_tflite, np.zeros((2, 32, 32, 1)))


def test_bench_reports_latency_and_size(trained_bnn_small_tflite):
    result = converters.bench(trained_bnn_small_tflite, runs=5, warmup=1)
    assert result.runs == 5 and 0 < result.min_ms <= result.median_ms <= result.p90_ms
    assert result.size_bytes == len(trained_bnn_small_tflite)
    with pytest.raises(ConfigError, match="runs"):
        converters.bench(trained_bnn_small_tflite, runs=0)


def test_convert_to_file_is_atomic_and_loads_from_keras_file(tmp_path, trained_bnn_small):
    keras_path = tmp_path / "m.keras"
    trained_bnn_small.save(keras_path)
    result = converters.convert_to_file(keras_path, tmp_path / "out" / "m.tflite")
    assert result.path.read_bytes()[4:8] == b"TFL3"
    assert result.model.op_counts["LceBconv2d"] == 5
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["m.tflite"]  # no temp leftovers


@pytest.mark.parametrize(
    "content,match",
    [
        (b"", "not a TFLite model"),
        (b"hello world, not a flatbuffer", "not a TFLite model"),
        (b"PK\x03\x04" + b"\x00" * 40, "looks like a .keras"),
    ],
)
def test_non_tflite_input_gives_a_one_line_error(tmp_path, content, match):
    path = tmp_path / "bad.tflite"
    path.write_bytes(content)
    for call in (converters.inspect, converters.bench):
        with pytest.raises(InvalidTfliteError, match=match) as err:
            call(path)
        assert "\n" not in str(err.value)


def test_corrupt_tflite_is_reported(tmp_path, trained_bnn_small_tflite):
    path = tmp_path / "cut.tflite"
    path.write_bytes(trained_bnn_small_tflite[:200])  # right identifier, body cut off
    with pytest.raises(InvalidTfliteError, match="corrupt"):
        converters.inspect(path)


def test_missing_tflite_file(tmp_path):
    with pytest.raises(InvalidTfliteError, match="no such file"):
        converters.inspect(tmp_path / "nope.tflite")


def test_wrong_file_given_as_keras_model(tmp_path, trained_bnn_small_tflite):
    tfl = tmp_path / "m.tflite"
    tfl.write_bytes(trained_bnn_small_tflite)
    with pytest.raises(InvalidModelFileError, match="is a TFLite model"):
        converters.load_keras_model(tfl)
    txt = tmp_path / "notes.keras"
    txt.write_text("not a model")
    with pytest.raises(InvalidModelFileError, match="not a Keras model file"):
        converters.load_keras_model(txt)
    with pytest.raises(InvalidModelFileError, match="no such file"):
        converters.load_keras_model(tmp_path / "missing.keras")


def test_binary_convs_in_branch_subgraphs_get_the_exact_kernel(fmnist_small):
    """LCE's indirect kernel is wrong for LceBconv2d inside IF branches after the first
    call; `verify` must pick the default kernel for such models (e.g. exported EBConv)."""
    import tensorflow as tf

    from bnn_tf.converters.runtime import indirect_bgemm_is_safe
    from bnn_tf.methods.ebconv import EBConv2D
    from bnn_tf.methods.ebconv_export import export_model

    tf.keras.utils.set_random_seed(3)
    inputs = tf.keras.Input((28, 28, 1))
    x = tf.keras.layers.Conv2D(32, 3, strides=2, padding="same", use_bias=False)(inputs)
    x = tf.keras.layers.BatchNormalization()(x)
    x = EBConv2D(32, 3, num_experts=4, padding="same")(x)
    x = tf.keras.layers.GlobalAveragePooling2D()(x)
    model = tf.keras.Model(inputs, tf.keras.layers.Dense(10)(x))
    exported = export_model(model)
    flatbuffer = converters.convert(exported)
    parsed = converters.parse(flatbuffer)
    assert any(op.op == "LceBconv2d" and op.subgraph > 0 for op in parsed.operators)
    assert not indirect_bgemm_is_safe(parsed)
    x = fmnist_small["x_test"][:40]
    result = converters.verify(model, flatbuffer, x)
    assert result.top1_agreement == 1.0 and result.max_abs_logit_diff < 1e-3
    # The indirect kernel cannot run it correctly, so verify does not offer it as a second opinion.
    assert result.kernel == "default" and result.other_kernels == {}
    assert converters.kernel_blockers(flatbuffer)["indirect"]
    report = converters.conversion_report(exported, flatbuffer)
    assert report.kernels == ["default"]
    assert any("branch subgraph" in p for row in report.layers for p in row.kernel_problems)


def test_verify_runs_the_device_kernel_and_compares_the_indirect_one(
    trained_bnn_small, trained_bnn_small_tflite, fmnist_small
):
    x = fmnist_small["x_test"][:100]
    result = converters.verify(trained_bnn_small, trained_bnn_small_tflite, x)
    assert result.kernel == "default"
    other = result.other_kernels["indirect"]
    assert other["differs"] == 0 and not result.kernels_disagree
    assert "indirect kernel: same top-1" in result.format()
    assert (
        result.to_dict()["other_kernels"]["indirect"]["top1_agreement"] == other["top1_agreement"]
    )
    alone = converters.verify(
        trained_bnn_small, trained_bnn_small_tflite, x, kernel="indirect", compare_kernels=False
    )
    assert alone.kernel == "indirect" and alone.other_kernels == {}
    with pytest.raises(ConfigError, match="kernel must be one of"):
        converters.verify(trained_bnn_small, trained_bnn_small_tflite, x, kernel="fast")


def test_split_grouped_convs_keeps_the_outputs_of_any_layer_class(rng):
    """Per-group convs + concat compute the grouped layer, whatever its class."""
    import larq as lq
    import tensorflow as tf

    from bnn_tf.methods.ebconv import EBConv2D
    from bnn_tf.methods.recu import ReCUConv2D

    tf.keras.utils.set_random_seed(5)
    inputs = tf.keras.Input((12, 12, 64))
    x = ReCUConv2D(64, 3, groups=2, dilation_rate=2, padding="same", name="recu_g2")(inputs)
    x = lq.layers.QuantConv2D(
        64, 3, groups=4, strides=2, padding="same", pad_values=1.0, use_bias=True,
        input_quantizer="ste_sign", kernel_quantizer="xnor_weight", name="xnor_g4",
    )(x)  # fmt: skip
    x = EBConv2D(64, 3, num_experts=1, groups=2, name="eb_single")(x)
    gated = EBConv2D(32, 3, num_experts=2, groups=2, name="eb_gated")
    model = tf.keras.Model(inputs, gated(x))
    for layer in model.layers[1:]:
        weights = layer.get_weights()
        layer.set_weights([w + rng.normal(0, 0.3, w.shape).astype(np.float32) for w in weights])
    split = converters.split_grouped_convs(model)
    kinds = {layer.name: type(layer).__name__ for layer in split.layers}
    assert kinds["recu_g2"] == kinds["xnor_g4"] == kinds["eb_single"] == "GroupSplitConv2D"
    # The gate reads all input channels: not g independent convs, so it stays grouped.
    assert kinds["eb_gated"] == "EBConv2D"
    assert "gate_kernel" in converters.groups.split_problem(gated)
    x = rng.normal(size=(3, 12, 12, 64)).astype(np.float32)
    np.testing.assert_allclose(split(x), model(x), rtol=1e-5, atol=1e-4)
    assert converters.split_grouped_convs(split) is split  # nothing left to split
