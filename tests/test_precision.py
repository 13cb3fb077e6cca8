"""`bnn_tf.precision`: bfloat16 binary convolutions in training, float32 for export."""

from __future__ import annotations

import json
import zipfile

import larq as lq
import numpy as np
import pytest
import tensorflow as tf

from bnn_tf import data, experiment, precision, training
from bnn_tf import models as zoo
from bnn_tf.converters import conversion, report
from bnn_tf.errors import ConfigError


def _binary_net(channels: int) -> tf.keras.Model:
    """A float stem, a binary conv over `3·3·channels` ±1 terms, batch norm and a softmax head."""
    binary = {
        "input_quantizer": "ste_sign",
        "kernel_quantizer": "ste_sign",
        "kernel_constraint": "weight_clip",
        "use_bias": False,
        "padding": "same",
    }
    inputs = tf.keras.Input((28, 28, 1))
    x = tf.keras.layers.Conv2D(channels, 3, padding="same", name="stem")(inputs)
    x = tf.keras.layers.BatchNormalization(name="stem_bn")(x)
    x = lq.layers.QuantConv2D(channels, 3, name="bconv", **binary)(x)
    x = tf.keras.layers.BatchNormalization(name="bn")(x)
    x = tf.keras.layers.GlobalAveragePooling2D()(x)
    outputs = tf.keras.layers.Dense(10, activation="softmax", name="head")(x)
    return tf.keras.Model(inputs, outputs)


def _layer_output(model: tf.keras.Model, name: str, x: np.ndarray) -> np.ndarray:
    probe = tf.keras.Model(model.inputs, model.get_layer(name).output)
    return tf.cast(probe(x, training=False), tf.float32).numpy()


@pytest.mark.parametrize("mode", precision.PRECISIONS)
def test_with_precision_sets_the_layers_keeps_the_weights_and_reports_itself(mode):
    tf.keras.utils.set_random_seed(0)
    model = _binary_net(16)
    low = precision.with_precision(model, mode)
    assert precision.model_precision(low) == mode
    assert all(
        np.array_equal(a, b) for a, b in zip(model.get_weights(), low.get_weights(), strict=True)
    )
    dtypes = {layer.name: layer.compute_dtype for layer in low.layers}
    # The head computes the loss's probabilities: float32 in every mode.
    assert dtypes["head"] == "float32" and low.output.dtype == tf.float32
    assert dtypes["bconv"] == ("float32" if mode == precision.FLOAT32 else "bfloat16")
    assert dtypes["stem"] == ("bfloat16" if mode == precision.MIXED_BFLOAT16 else "float32")
    assert all(v.dtype == tf.float32 for v in low.weights), "variables stay float32"


def test_a_binary_convolution_in_bfloat16_gives_the_float32_sums_exactly(fmnist_small):
    # 3·3·16 = 144 terms of ±1: every sum fits bfloat16's exact integers (|s| ≤ 256).
    tf.keras.utils.set_random_seed(1)
    model = _binary_net(16)
    x = fmnist_small["x_test"][:64]
    exact = _layer_output(model, "bconv", x)
    low = _layer_output(precision.with_precision(model, precision.BINARY_BFLOAT16), "bconv", x)
    assert np.abs(exact).max() > 8, "a trivial test: the sums should vary"
    np.testing.assert_array_equal(low, exact)


def test_a_recu_convolution_in_bfloat16_scales_in_float32_and_matches_exactly(fmnist_small):
    """ReCU's α ⊙ conv: α in bfloat16 would round every output by up to 2⁻⁸ (CI: 64 % top-1)."""
    from bnn_tf.methods.recu import ReCUConv2D

    tf.keras.utils.set_random_seed(3)
    inputs = tf.keras.Input((28, 28, 1))
    x = tf.keras.layers.Conv2D(16, 3, padding="same", name="stem")(inputs)
    x = ReCUConv2D(16, 3, padding="same", name="bconv")(x)
    model = tf.keras.Model(inputs, tf.keras.layers.BatchNormalization(name="bn")(x))
    model.get_layer("bconv").alpha.assign(np.linspace(0.01, 0.3, 16).astype("float32"))
    x = fmnist_small["x_test"][:32]
    low = precision.with_precision(model, precision.BINARY_BFLOAT16)
    assert precision.model_precision(low) == precision.BINARY_BFLOAT16
    np.testing.assert_array_equal(_layer_output(low, "bconv", x), _layer_output(model, "bconv", x))


@pytest.mark.parametrize(
    ("kernel_quantizer", "in_bfloat16"),
    [("ste_sign", True), ("xnor_weight", False), ("libra_pb_weight", False)],
)
def test_quantizers_with_latent_weight_statistics_stay_in_float32(kernel_quantizer, in_bfloat16):
    """α = mean|W| or a standardisation of bfloat16-rounded weights would not be exact."""
    inputs = tf.keras.Input((8, 8, 32))
    x = lq.layers.QuantConv2D(
        32, 3, input_quantizer="ste_sign", kernel_quantizer=kernel_quantizer, name="bconv"
    )(inputs)
    model = tf.keras.Model(inputs, x)
    names = [layer.name for layer in precision.binary_convolutions(model)]
    assert names == (["bconv"] if in_bfloat16 else [])


def test_past_256_terms_the_rounding_stays_within_bfloat16s_step():
    # 3·3·64 = 576 terms: odd magnitudes above 256 cannot be held exactly.
    tf.keras.utils.set_random_seed(2)
    model = _binary_net(64)
    x = np.random.default_rng(0).uniform(-1, 1, (16, 28, 28, 1)).astype("float32")
    exact = _layer_output(model, "bconv", x)
    low = _layer_output(precision.with_precision(model, precision.BINARY_BFLOAT16), "bconv", x)
    assert np.all(np.abs(low - exact) <= np.maximum(np.abs(exact), 1) * 2.0**-8)


def test_to_float32_restores_the_original_computation_exactly(fmnist_small):
    tf.keras.utils.set_random_seed(3)
    model = _binary_net(16)
    x = fmnist_small["x_test"][:32]
    back = precision.to_float32(precision.with_precision(model, precision.MIXED_BFLOAT16))
    assert precision.model_precision(back) == precision.FLOAT32
    np.testing.assert_array_equal(back.predict(x, verbose=0), model.predict(x, verbose=0))
    assert precision.to_float32(model) is model


def test_unknown_precision_and_subclassed_models_are_clear_errors():
    with pytest.raises(ConfigError, match="precision must be one of.*Fix"):
        precision.check_precision("float16")

    class Sub(tf.keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = tf.keras.layers.Dense(2)

        def call(self, x):
            return self.dense(x)

    sub = Sub()
    sub(tf.zeros((1, 3)))
    with pytest.raises(ConfigError, match="subclassed.*Fix"):
        precision.with_precision(sub, precision.MIXED_BFLOAT16)


def test_a_bfloat16_model_converts_as_its_float32_copy(fmnist_small):
    tf.keras.utils.set_random_seed(4)
    model = precision.with_precision(zoo.build("bnn_small"), precision.BINARY_BFLOAT16)
    loaded = conversion.load_model(model)
    assert precision.model_precision(loaded) == precision.FLOAT32
    result = report.conversion_report(loaded, conversion.convert(model))
    assert any(row.quantized for row in result.layers)
    assert not result.fallbacks, "every binary layer lands on LceBconv2d"
    assert "default" in result.kernels


def _small_splits(fmnist) -> data.Splits:
    return data.Splits(
        fmnist.x_train[:512], fmnist.y_train[:512], fmnist.x_test[:256], fmnist.y_test[:256],
        source=fmnist.source, name=fmnist.name, class_names=fmnist.class_names,
    )  # fmt: skip


def test_a_run_trains_in_bfloat16_and_saves_float32(tmp_path, fmnist):
    config = training.TrainConfig(
        model="bnn_small", epochs=1, limit_train=512, precision=precision.BINARY_BFLOAT16
    )
    splits = _small_splits(fmnist)
    summary = experiment.train(config, tmp_path / "run", splits=splits, verbose=0, log=lambda _: 0)
    assert summary["precision"] == precision.BINARY_BFLOAT16
    with zipfile.ZipFile(tmp_path / "run" / training.MODEL_FILE) as saved:
        assert "bfloat16" not in saved.read("config.json").decode()
    run = json.loads((tmp_path / "run" / training.RUN_FILE).read_text())
    assert run["config"]["precision"] == precision.BINARY_BFLOAT16
    # The recorded test accuracy is the float32 model's, the one that is converted.
    saved_model = tf.keras.models.load_model(tmp_path / "run" / training.MODEL_FILE)
    x = data.preprocess(fmnist.x_test[:256])
    accuracy = float(np.mean(saved_model.predict(x, verbose=0).argmax(1) == fmnist.y_test[:256]))
    assert accuracy == pytest.approx(summary["test_accuracy"], abs=1e-6)


@pytest.mark.parametrize(
    ("cpuinfo", "native"),
    [
        ("processor : 0\nflags : fpu sse avx512f avx512_vnni\n", False),  # Xeon without BF16
        ("processor : 0\nflags : fpu avx512f avx512_bf16 avx512_vnni\n", True),  # EPYC Zen 4
        ("processor : 0\nflags : fpu amx_bf16 amx_tile\n", True),  # Sapphire Rapids
        ("processor : 0\nFeatures : fp asimd bf16 i8mm\n", True),  # Arm with BF16
        ("processor : 0\nFeatures : fp asimd crc32\n", False),  # Cortex-A72 (Pi 4)
        ("processor : 0\nmodel name : something\n", None),  # no flag line: unknown
    ],
)
def test_native_bfloat16_reads_the_cpu_flags(cpuinfo, native):
    assert precision.native_bfloat16(cpuinfo) is native


def test_bfloat16_on_an_emulating_cpu_warns_with_the_fix(monkeypatch):
    monkeypatch.setattr(precision, "native_bfloat16", lambda cpuinfo=None: False)
    message = precision.emulation_warning("binary_bfloat16")
    assert "emulates" in message and "Fix: --precision float32" in message
    assert precision.emulation_warning("float32") is None
    monkeypatch.setattr(precision, "native_bfloat16", lambda cpuinfo=None: True)
    assert precision.emulation_warning("mixed_bfloat16") is None


@pytest.mark.parametrize(
    ("native", "expected"),
    [(True, precision.BINARY_BFLOAT16), (False, precision.FLOAT32), (None, precision.FLOAT32)],
)
def test_the_default_precision_follows_the_cpu(monkeypatch, native, expected):
    # None (the CPU cannot tell) is what native_bfloat16 returns; default_precision(None) reads it.
    monkeypatch.setattr(precision, "native_bfloat16", lambda cpuinfo=None: native)
    assert precision.default_precision() == expected
    if native is not None:
        assert precision.default_precision(native) == expected


@pytest.mark.parametrize("native", [True, False])
def test_a_run_without_precision_takes_the_cpus_default_and_says_so(
    tmp_path, fmnist, monkeypatch, native
):
    monkeypatch.setattr(precision, "native_bfloat16", lambda cpuinfo=None: native)
    config = training.TrainConfig(model="bnn_small", epochs=1, limit_train=512)
    lines: list[str] = []
    summary = experiment.train(
        config, tmp_path / "run", splits=_small_splits(fmnist), verbose=0, log=lines.append
    )
    expected = precision.BINARY_BFLOAT16 if native else precision.FLOAT32
    assert summary["precision"] == expected
    said = [line for line in lines if line.startswith("precision: ")]
    assert said and said[0].startswith(f"precision: {expected} ")
    assert not any("emulates" in line for line in lines)
    # What is saved computes in float32 either way.
    with zipfile.ZipFile(tmp_path / "run" / training.MODEL_FILE) as saved:
        assert "bfloat16" not in saved.read("config.json").decode()
