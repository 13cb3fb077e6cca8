"""Our larq-zoo-compatible models against larq-zoo 2.4's own per-layer tables (golden data).

`tests/data/larq_zoo_golden/<model>.json` was produced by running larq-zoo 2.4
(TF 2.15) in a side environment (`benchmarks/larq_zoo_compat.py --side zoo
--golden`); larq-zoo is not needed here. Each of our ImageNet-size graphs is
built once and compared layer by layer: class, output shape, parameters,
weight shapes (what `weights=` relies on), the relevant config (kernel sizes,
strides, padding, pad values, BN settings, activations) and the quantizers
(name, clip value, output on a probe tensor).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path

import h5py
import larq as lq
import numpy as np
import pytest
import tensorflow as tf

from bnn_tf import converters
from bnn_tf import models as zoo
from bnn_tf.errors import ConfigError
from bnn_tf.methods.dorefa import clip_by_value_activation
from bnn_tf.models._layer_table import layer_table
from bnn_tf.models._weights import load_larq_zoo_weights

GOLDEN = Path(__file__).parent / "data" / "larq_zoo_golden"
LAYER_FOR_LAYER = sorted(p.stem for p in GOLDEN.glob("*.json"))
# golden file → our model, where the names differ: `meliusnet22` is the LCE layout
OURS = {"meliusnet22": "meliusnet22_larq_zoo"}
# larq-zoo's layers that are written differently here and compute the same thing
EQUIVALENT = {
    ("TFOpLambda", "Add"),  # `x + residual` → an Add layer
    ("Lambda", "Identity"),  # R2B's identity Lambda → Identity (survives safe_mode)
    ("Lambda", "ChannelSplit"),  # MeliusNet's grouped stem: tf.split
    ("Lambda", "Concatenate"),  # MeliusNet: tf.concat
    ("Lambda", "AddToLastChannels"),  # MeliusNet's improvement merge x + pad(i)
}


def _golden(name: str) -> dict:
    return json.loads((GOLDEN / f"{name}.json").read_text())


def _ours(name: str) -> tf.keras.Model:
    tf.keras.backend.clear_session()
    return zoo.build(name, num_classes=1000, classifier_activation="softmax")


def _quantizer_mismatch(want: dict | None, got: dict | None) -> str | None:
    if (want is None) != (got is None):
        return f"quantizer {want and want['name']} vs {got and got['name']}"
    if want is None:
        return None
    for key in ("name", "clip_value", "k_bit", "mode", "probe"):
        if key in want and want[key] != got.get(key):
            return f"quantizer {key}: larq-zoo {want[key]!r}, ours {got.get(key)!r}"
    return None


def _activation_name(value):
    """An activation's name in either serialised form: larq-zoo's DoReFaNet holds a plain
    function (`{"class_name": "function", "config": "clip_by_value_activation"}`), ours the
    callable object `ClipByValueActivation` (a function does not reload from `.h5`);
    `test_clip_by_value_activation_is_larq_zoos` checks that both compute `clip(x, 0, 1)`."""
    if not isinstance(value, dict):
        return value
    if value.get("class_name") == "function":
        return value["config"]
    name = (value.get("registered_name") or value["class_name"]).split(">")[-1]
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def _layer_mismatch(want: dict, got: dict) -> str | None:
    classes = (want["class"], got["class"])
    if classes[0] != classes[1] and classes not in EQUIVALENT:
        return f"class: larq-zoo {classes[0]}, ours {classes[1]}"
    if want["class"] == "TFOpLambda" and want.get("function") != "__operators__.add":
        return f"larq-zoo TFOpLambda {want.get('function')} has no counterpart"
    for key in ("output_shape", "params", "trainable_params", "weight_shapes"):
        if want[key] != got[key]:
            return f"{key}: larq-zoo {want[key]}, ours {got[key]}"
    if classes[0] == classes[1]:
        for key, value in want["config"].items():
            if key == "activation":
                value, ours = _activation_name(value), _activation_name(got["config"].get(key))
            else:
                ours = got["config"].get(key)
            if ours != value:
                return f"config {key}: larq-zoo {value!r}, ours {ours!r}"
    for attr, quantizer in want.get("quantizers", {}).items():
        problem = _quantizer_mismatch(quantizer, got.get("quantizers", {}).get(attr))
        if problem:
            return f"{attr}: {problem}"
    return None


def test_golden_data_covers_every_model_of_the_issue():
    expected = {
        "quicknet_small", "quicknet", "quicknet_large", "binary_densenet28",
        "binary_densenet37", "binary_densenet37_dilated", "binary_densenet45",
        "binary_resnet_e18", "birealnet", "xnornet", "dorefanet", "binary_alexnet",
        "real_to_binary_net", "meliusnet22",
    }  # fmt: skip
    assert expected <= {p.stem for p in GOLDEN.glob("*.json")}
    assert {OURS.get(name, name) for name in expected} <= set(zoo.available())


@pytest.mark.parametrize("name", LAYER_FOR_LAYER)
def test_graph_matches_larq_zoo_layer_for_layer(name):
    golden = _golden(name)
    model = _ours(OURS.get(name, name))
    ours = layer_table(model)
    assert ours["params"] == golden["params"]
    assert ours["output_shape"] == golden["output_shape"]
    assert len(ours["layers"]) == len(golden["layers"]), (
        f"{len(ours['layers'])} layers, larq-zoo {len(golden['layers'])}"
    )
    for i, (want, got) in enumerate(zip(golden["layers"], ours["layers"], strict=True)):
        problem = _layer_mismatch(want, got)
        assert problem is None, (
            f"layer #{i} ours {got['name']!r} / larq-zoo {want['name']!r}: {problem}"
        )
    assert not any(type(layer).__name__ == "Lambda" for layer in model.layers)


def test_clip_by_value_activation_is_larq_zoos():
    # larq-zoo's `clip_by_value_activation(x) = tf.clip_by_value(x, 0, 1)`
    x = tf.constant([-2.0, -0.0, 0.3, 1.0, 7.5])
    np.testing.assert_allclose(clip_by_value_activation(x), [0.0, 0.0, 0.3, 1.0, 1.0], rtol=1e-7)
    assert _activation_name(tf.keras.activations.serialize(clip_by_value_activation)) == (
        "clip_by_value_activation"
    )


def test_meliusnet22_has_larq_zoos_size_and_binary_convs():
    """Our `meliusnet22` is LCE-oriented (pad value 1 instead of 0, `PreSignBatchNorm`, one BN
    per group in the grouped stem), so it is not layer-for-layer larq-zoo's and its weights
    are not interchangeable (`meliusnet22_larq_zoo` is, docs/larq_zoo.md); it has the same
    parameter count and the same binary convs, in the same order."""
    golden = _golden("meliusnet22")
    tf.keras.backend.clear_session()
    ours = layer_table(zoo.build("meliusnet22", num_classes=1000))
    assert ours["params"] == golden["params"]

    def binary(table):
        return [r["weight_shapes"] for r in table["layers"] if r["class"] == "QuantConv2D"]

    assert binary(ours) == binary(golden) and len(binary(ours)) == 2 * (4 + 5 + 4 + 4)


def test_add_to_last_channels_is_larq_zoos_improvement_merge(rng):
    from bnn_tf.methods.melius import AddToLastChannels

    x = rng.normal(size=(2, 3, 3, 10)).astype("float32")
    w = rng.normal(size=(2, 3, 3, 4)).astype("float32")
    want = x + np.pad(w, [(0, 0), (0, 0), (0, 0), (6, 0)])  # larq-zoo: x + tf.pad(w, ...)
    np.testing.assert_allclose(AddToLastChannels()([x, w]), want, rtol=1e-7)
    with pytest.raises(ConfigError, match="cannot add 10 channels"):
        AddToLastChannels()([w, x])


def _save_h5(model: tf.keras.Model, path: Path) -> None:
    model.save_weights(str(path))


def test_weights_load_from_a_keras_h5_file_and_give_the_same_outputs(tmp_path, rng):
    tf.keras.utils.set_random_seed(1)
    source = zoo.build("quicknet_small_input", input_shape=(32, 32, 3))
    for w in source.weights:  # non-trivial BN statistics: non-trainable weights load too
        w.assign(rng.normal(0.5, 0.2, w.shape).astype("float32"))
    path = tmp_path / "w.h5"
    _save_h5(source, path)
    tf.keras.utils.set_random_seed(2)
    target = zoo.build("quicknet_small_input", input_shape=(32, 32, 3), weights=str(path))
    x = rng.normal(size=(4, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(target(x, training=False), source(x, training=False), atol=1e-5)


def test_a_mismatching_weight_file_names_the_first_differing_layer(tmp_path):
    path = tmp_path / "w.h5"
    _save_h5(zoo.build("quicknet_small_input", input_shape=(32, 32, 3), num_classes=7), path)
    model = zoo.build("quicknet_small_input", input_shape=(32, 32, 3), num_classes=10)
    before = [w.numpy().copy() for w in model.weights]
    with pytest.raises(ConfigError, match=r"layer #\d+ .*'logits'.*\(7,\)"):
        load_larq_zoo_weights(model, path)
    assert all(np.array_equal(a, w.numpy()) for a, w in zip(before, model.weights, strict=True))
    with pytest.raises(ConfigError, match="counterpart"):
        zoo.build("quicknet_small_input", input_shape=(32, 32, 3), include_top=False, weights=path)


def test_weights_other_than_a_path_are_refused_clearly(tmp_path):
    with pytest.raises(ConfigError, match="does not download.*local path"):
        zoo.build("quicknet_small_input", weights="imagenet")
    with pytest.raises(ConfigError, match="does not exist"):
        zoo.build("quicknet_small_input", weights=str(tmp_path / "missing.h5"))
    bad = tmp_path / "bad.h5"
    with h5py.File(bad, "w") as f:
        f.create_dataset("x", data=np.zeros(3))
    with pytest.raises(ConfigError, match="not a Keras HDF5 weight file"):
        zoo.build("quicknet_small_input", weights=str(bad))


def test_custom_pieces_round_trip_through_a_keras_file_in_safe_mode(tmp_path, rng):
    from bnn_tf.methods.dorefa import MagnitudeAwareSignUnclipped, clip_by_value_activation
    from bnn_tf.methods.quicknet import BlurPoolInitializer
    from bnn_tf.methods.xnor import XnorWeightScale

    inputs = tf.keras.Input((8, 8, 3))
    x = lq.layers.QuantConv2D(4, 3, kernel_quantizer=XnorWeightScale(), input_quantizer="ste_sign")(
        inputs
    )
    x = lq.layers.QuantConv2D(4, 3, kernel_quantizer=MagnitudeAwareSignUnclipped())(x)
    x = tf.keras.layers.DepthwiseConv2D(3, depthwise_initializer=BlurPoolInitializer())(x)
    x = tf.keras.layers.Activation(clip_by_value_activation)(x)
    x = tf.keras.layers.Identity()(x)
    model = tf.keras.Model(inputs, x)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = tf.keras.models.load_model(path, safe_mode=True)
    data = rng.normal(size=(2, 8, 8, 3)).astype("float32")
    np.testing.assert_allclose(loaded(data), model(data), atol=1e-6)


def test_blurpool_kernel_is_the_normalised_binomial_filter():
    from bnn_tf.methods.quicknet import BlurPoolInitializer

    k = BlurPoolInitializer()((3, 3, 2, 1)).numpy()
    np.testing.assert_allclose(k[:, :, 0, 0], np.outer([1, 2, 1], [1, 2, 1]) / 16)
    np.testing.assert_allclose(k[:, :, 1, 0], k[:, :, 0, 0])
    with pytest.raises(ConfigError):
        BlurPoolInitializer()((4, 4, 1, 1))


SMALL = ["quicknet_small_input", "binary_densenet_small"]


@pytest.mark.parametrize("name", SMALL)
def test_small_variants_train_on_fashion_mnist_and_convert_on_binary_kernels(name, fmnist_small):
    from bnn_tf import optimizers, training

    tf.keras.utils.set_random_seed(0)
    model = zoo.build(name)
    cfg = {k: v for k, v in zoo.info(name).training.items() if k != "why"}
    cfg["lr_schedule"] = optimizers.ScheduleConfig(**cfg["lr_schedule"])
    x, y = fmnist_small["x_train"][:128], fmnist_small["y_train"][:128]
    training.compile_model(
        model, optimizer_config=optimizers.OptimizerConfig(**cfg), steps_per_epoch=2, epochs=3
    )
    losses = model.fit(x, y, batch_size=64, epochs=3, verbose=0).history["loss"]
    assert losses[-1] < losses[0]
    flatbuffer = converters.convert(model)
    report = converters.inspect(flatbuffer)
    assert report.binary_convs == len(converters.binary_conv_layers(model)) > 0
    xt = fmnist_small["x_test"][:32]
    lite = converters.tflite_predict(flatbuffer, xt)
    assert np.mean(np.argmax(lite, -1) == np.argmax(model.predict(xt, verbose=0), -1)) >= 0.95


# --- the benchmark's graph comparison and instruction counting (benchmarks/larq_zoo_compat.py)


@pytest.fixture(scope="module")
def compat():
    bench_dir = Path(__file__).resolve().parents[1] / "benchmarks"
    if str(bench_dir) not in sys.path:
        sys.path.append(str(bench_dir))  # the script imports `harness` as a sibling
    import larq_zoo_compat

    return larq_zoo_compat


def _tiny_flatbuffer(filters: int) -> bytes:
    tf.keras.utils.set_random_seed(0)
    inputs = tf.keras.Input((16, 16, 3))
    x = tf.keras.layers.Conv2D(32, 3, padding="same")(inputs)
    x = tf.keras.layers.BatchNormalization()(x)
    x = lq.layers.QuantConv2D(
        filters, 3, input_quantizer="ste_sign", kernel_quantizer="ste_sign", use_bias=False
    )(x)
    x = tf.keras.layers.GlobalAveragePooling2D()(x)
    return converters.convert(tf.keras.Model(inputs, tf.keras.layers.Dense(4)(x)))


@pytest.fixture(scope="module")
def tiny_flatbuffers() -> dict[int, bytes]:
    return {n: _tiny_flatbuffer(n) for n in (32, 64)}


def test_op_signature_sees_shapes_that_the_op_sequence_does_not(compat, tiny_flatbuffers):
    a, b = tiny_flatbuffers[32], tiny_flatbuffers[64]
    assert compat.op_sequence(a) == compat.op_sequence(b)
    assert "LceBconv2d" in compat.op_sequence(a)
    assert compat.op_signature(a) == compat.op_signature(_tiny_flatbuffer(32))
    sig_a, sig_b = compat.op_signature(a), compat.op_signature(b)
    assert sig_a != sig_b and all("FLOAT32[1x" in s for s in sig_a if s.startswith("CONV_2D"))
    diff = compat._sequence_difference(sig_a, sig_b)
    assert diff["ops"] == {"ours": len(sig_a), "zoo": len(sig_b)}
    first = diff["first_difference"]
    assert first["ours"].startswith("LceBconv2d") and first["ours"] != first["zoo"]
    assert compat._sequence_difference(sig_a, sig_a) == {
        "ops": {"ours": len(sig_a), "zoo": len(sig_a)},
        "positions_differing": 0,
    }


def test_callgrind_child_runs_the_model_without_tensorflow(compat, tiny_flatbuffers, tmp_path):
    import subprocess

    model = tmp_path / "m.tflite"
    model.write_bytes(tiny_flatbuffers[32])
    np.save(tmp_path / "x.npy", np.zeros((1, 16, 16, 3), "float32"))
    cmd = [sys.executable, compat.__file__, "--side", "invoke", "--tflite", str(model), str(model),
           "--input", str(tmp_path / "x.npy"), "--invokes", "2"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": ""}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    # invoke_side raises if TensorFlow was imported (it would dominate the count)
    assert done.returncode == 0, done.stderr[-2000:]


def test_callgrind_summary_line_is_read(compat, tmp_path):
    out = tmp_path / "callgrind.out"
    out.write_text("version: 1\nevents: Ir\nfn=main\n1 5\nsummary: 123456\n")
    assert compat._callgrind_total(out) == 123456
    out.write_text("events: Ir\n")
    with pytest.raises(ValueError, match="summary"):
        compat._callgrind_total(out)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("valgrind") is None, reason="needs valgrind")
def test_instruction_count_of_one_inference_is_repeatable(compat, tiny_flatbuffers, tmp_path):
    paths = []
    for n, flatbuffer in tiny_flatbuffers.items():
        paths.append(tmp_path / f"m{n}.tflite")
        paths[-1].write_bytes(flatbuffer)
    x = np.zeros((1, 16, 16, 3), "float32")
    small, large = compat.count_instructions(paths, x, "indirect", tmp_path, invokes=2)
    assert len(small) == len(large) == 2 and min(small) > 0
    # two inferences after the warm-up cost the same, up to the Python loop around them
    # (≈ 3k instructions; an ImageNet model's inference is 10⁸–10¹⁰)
    assert abs(small[0] - small[1]) < 10_000 and abs(large[0] - large[1]) < 10_000
    assert min(large) > max(small)  # twice the binary conv's output channels
    assert not list(tmp_path.glob("callgrind.*"))  # the dumps are read and removed
