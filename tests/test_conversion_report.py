"""Lint (before conversion) and per-layer report (after): predictions vs what LCE really emits."""

from __future__ import annotations

import json

import larq as lq
import numpy as np
import pytest
import tensorflow as tf

from bnn_tf import converters
from bnn_tf.cli import main
from bnn_tf.converters.tflite_model import parse
from bnn_tf.errors import ConfigError, InvalidTfliteError

Q = dict(
    input_quantizer="ste_sign",
    kernel_quantizer="ste_sign",
    kernel_constraint="weight_clip",
    use_bias=False,
)

# name → (prediction, output of the binary ones, a word the reason must contain)
EXPECTED = {
    "stem": ("float", None, None),
    "good": ("binary", "bitpacked", None),
    "zero_pad": ("binary", "float", None),
    "heavi": ("float", None, "Heaviside"),
    "tern": ("float", None, "ternary"),
    "noinq": ("float", None, "input_quantizer is None"),
    # Split into per-group convs by `convert` (default kernel); the concat keeps float output.
    "grouped": ("binary", "float", None),
    "dw": ("float", None, "depthwise"),
    "sep": ("float", None, "separable"),
    "magaware": ("binary", "float", None),
    "qdense": ("float", None, "fully-connected"),
    "head": ("float", None, None),
}


def _every_case_model() -> tf.keras.Model:
    """One model with a layer for each case of docs/lce.md (16×16×3 input, ≈ 50 M MACs)."""
    inputs = tf.keras.Input((16, 16, 3))
    x = tf.keras.layers.Conv2D(64, 3, padding="same", name="stem")(inputs)
    x = lq.layers.QuantConv2D(64, 3, padding="same", pad_values=1.0, name="good", **Q)(x)
    x = tf.keras.layers.BatchNormalization()(x)
    x = lq.layers.QuantConv2D(64, 3, padding="same", name="zero_pad", **Q)(x)  # larq default pad 0
    x = lq.layers.QuantConv2D(64, 3, padding="same", pad_values=1.0, name="heavi",
                              **{**Q, "input_quantizer": "ste_heaviside"})(x)  # fmt: skip
    x = lq.layers.QuantConv2D(64, 3, padding="same", pad_values=1.0, name="tern",
                              **{**Q, "kernel_quantizer": "ste_tern"})(x)  # fmt: skip
    x = lq.layers.QuantConv2D(64, 3, name="noinq", **{**Q, "input_quantizer": None})(x)
    x = lq.layers.QuantConv2D(64, 3, padding="same", pad_values=1.0, groups=2, name="grouped", **Q)(
        x
    )
    x = lq.layers.QuantDepthwiseConv2D(3, padding="same", name="dw", input_quantizer="ste_sign",
                                       depthwise_quantizer="ste_sign", depthwise_constraint="weight_clip",
                                       use_bias=False)(x)  # fmt: skip
    x = lq.layers.QuantSeparableConv2D(32, 3, padding="same", name="sep", input_quantizer="ste_sign",
                                       depthwise_quantizer="ste_sign", pointwise_quantizer="ste_sign",
                                       depthwise_constraint="weight_clip", pointwise_constraint="weight_clip",
                                       use_bias=False)(x)  # fmt: skip
    x = lq.layers.QuantConv2D(32, 3, padding="same", pad_values=1.0, name="magaware",
                              **{**Q, "kernel_quantizer": "magnitude_aware_sign"})(x)  # fmt: skip
    x = tf.keras.layers.GlobalAveragePooling2D()(x)
    x = lq.layers.QuantDense(64, name="qdense", **Q)(x)
    x = tf.keras.layers.BatchNormalization()(x)
    x = tf.keras.layers.Dense(10, name="head")(x)
    return tf.keras.Model(inputs, x)


@pytest.fixture(scope="module")
def every_case():
    tf.keras.utils.set_random_seed(0)
    model = _every_case_model()
    return model, converters.convert(model)


def test_lint_predicts_each_case_with_a_reason_and_a_fix(every_case):
    model, _ = every_case
    report = converters.lint(model)
    by_name = {e.name: e for e in report.layers}
    assert set(by_name) == set(EXPECTED)
    for name, (prediction, _, word) in EXPECTED.items():
        entry = by_name[name]
        assert entry.prediction == prediction, (name, entry)
        if word:
            assert any(word in r for r in entry.reasons), (name, entry.reasons)
            assert entry.fixes, name
    assert not by_name["stem"].quantized and not by_name["stem"].falls_back
    assert any("pad_values=1.0" in n for n in by_name["zero_pad"].notes)
    assert any("rewrite_binary_dense" in f for f in by_name["qdense"].fixes)
    # MACs from the Keras shapes: 16·16 positions × 3·3·64 × 64.
    assert by_name["good"].macs == 16 * 16 * 9 * 64 * 64
    assert {e.name for e in report.fallbacks} == {"heavi", "tern", "noinq", "dw", "sep", "qdense"}
    json.dumps(report.to_dict())


def test_report_maps_every_op_and_agrees_with_the_lint(every_case):
    model, flatbuffer = every_case
    report = converters.conversion_report(model, flatbuffer)
    rows = {row.name: row for row in report.layers}
    assert report.unmapped_ops == []
    assert report.lint_mismatches == []
    for name, (prediction, output, _) in EXPECTED.items():
        assert rows[name].actual == prediction, (name, rows[name])
        if output:
            assert rows[name].output == output, (name, rows[name].output)
    assert rows["sep"].ops.count("DEPTHWISE_CONV_2D") == 1 and rows["sep"].ops.count("CONV_2D") == 1
    assert rows["qdense"].ops == ["FULLY_CONNECTED"]
    # MACs from the flatbuffer shapes equal the Keras ones; binary MACs sum the LceBconv2d rows.
    lint_macs = {e.name: e.macs for e in converters.lint(model).layers}
    for name in ("good", "zero_pad", "noinq", "grouped", "dw", "qdense", "head"):
        assert rows[name].macs == lint_macs[name], name
    assert rows["grouped"].macs == 14 * 14 * 9 * 32 * 64
    assert rows["grouped"].ops == ["LceBconv2d", "LceBconv2d"]  # one per group
    assert report.kernels == ["default", "indirect"]
    assert report.binary_macs == sum(r.binary_macs for r in report.layers)
    assert report.total_macs == sum(r.macs for r in report.layers)
    assert 0 < report.binary_mac_fraction < 1
    assert {r.name for r in report.fallbacks} == {"heavi", "tern", "noinq", "dw", "sep", "qdense"}
    assert report.size_bytes == len(flatbuffer) and report.requires_lce
    counts = parse(flatbuffer).op_counts
    assert (
        report.float_mac_ops
        == counts["CONV_2D"] + counts["DEPTHWISE_CONV_2D"] + counts["FULLY_CONNECTED"]
    )
    assert report.float_mac_ops == 9  # stem, heavi, tern, noinq, 2 × sep, dw, qdense, head

    text = report.format()
    for name in EXPECTED:
        assert name in text
    assert "FELL BACK TO FLOAT: tern" in text and "fix:" in text
    d = json.loads(json.dumps(report.to_dict()))
    assert d["fallbacks"] == [r.name for r in report.fallbacks]
    assert d["layers"][1]["name"] == "good" and d["layers"][1]["actual"] == "binary"


def test_report_on_the_trained_demo_model(trained_bnn_small, trained_bnn_small_tflite):
    report = converters.conversion_report(trained_bnn_small, trained_bnn_small_tflite)
    binary = [r.name for r in report.layers if r.actual == "binary"]
    assert (
        binary
        == converters.binary_conv_layers(trained_bnn_small)
        == [f"conv{i}" for i in range(1, 6)]
    )
    assert not report.fallbacks and not report.unmapped_ops
    # Binary convs feeding the next sign keep bitpacked outputs; the last one feeds the float head.
    assert [r.output for r in report.layers if r.actual == "binary"] == ["bitpacked"] * 4 + [
        "float"
    ]
    assert report.binary_mac_fraction > 0.95


def test_custom_sign_quantizer_is_checked_by_a_probe_conversion():
    @tf.keras.utils.register_keras_serializable(package="bnn_tf_test")
    class WhereSign(lq.quantizers.Quantizer):
        precision = 1

        def call(self, x):
            return tf.where(x >= 0, 1.0, -1.0)  # constants: LCE matches select(c, 1, -1)

    @tf.keras.utils.register_keras_serializable(package="bnn_tf_test")
    class OnesLikeSign(lq.quantizers.Quantizer):
        precision = 1  # same values, but ones_like is not a constant with a dynamic batch

        def call(self, x):
            return tf.where(x >= 0, tf.ones_like(x), -tf.ones_like(x))

    @tf.keras.utils.register_keras_serializable(package="bnn_tf_test")
    class WhereStep(lq.quantizers.Quantizer):
        precision = 1  # claims 1 bit but outputs {0, 1}

        def call(self, x):
            return tf.where(x >= 0, 1.0, 0.0)

    inputs = tf.keras.Input((8, 8, 32))
    x = inputs
    for name, quantizer in (
        ("where_sign", WhereSign()),
        ("ones_like", OnesLikeSign()),
        ("step", WhereStep()),
    ):
        x = lq.layers.QuantConv2D(32, 3, padding="same", pad_values=1.0, name=name,
                                  **{**Q, "input_quantizer": quantizer})(x)  # fmt: skip
    model = tf.keras.Model(inputs, x)
    lint = {e.name: e for e in converters.lint(model).layers}
    assert {name: e.prediction for name, e in lint.items()} == {
        "where_sign": "binary", "ones_like": "float", "step": "float"
    }  # fmt: skip
    assert "does not lower to a sign" in lint["step"].reasons[0]
    report = converters.conversion_report(model, converters.convert(model))
    assert {r.name: r.actual for r in report.layers} == {
        name: e.prediction for name, e in lint.items()
    }


def test_grouped_conv_with_16_channels_per_group_is_predicted_float_when_kept_grouped():
    inputs = tf.keras.Input((8, 8, 32))
    x = lq.layers.QuantConv2D(32, 3, padding="same", pad_values=1.0, groups=2, name="g16", **Q)(
        inputs
    )
    model = tf.keras.Model(inputs, x)
    (entry,) = converters.lint(model, split_groups=False).layers
    assert entry.prediction == "float" and "multiple of 32" in entry.reasons[0]
    kept = converters.convert(model, split_groups=False)
    report = converters.conversion_report(model, kept, split_groups=False)
    assert report.layers[0].actual == "float"
    # Split (convert's default), each group is an ordinary binary conv.
    (entry,) = converters.lint(model).layers
    assert entry.prediction == "binary"
    report = converters.conversion_report(model, converters.convert(model))
    assert report.layers[0].actual == "binary" and report.layers[0].ops == ["LceBconv2d"] * 2


def test_same_zero_padding_is_float_for_xcore_in_the_lint():
    inputs = tf.keras.Input((8, 8, 32))
    x = lq.layers.QuantConv2D(32, 3, padding="same", name="zp", **Q)(inputs)
    model = tf.keras.Model(inputs, x)
    assert converters.lint(model, target="arm").layers[0].prediction == "binary"
    assert converters.lint(model, target="xcore").layers[0].prediction == "float"


def test_conversion_is_deterministic(trained_bnn_small, tmp_path):
    first = converters.convert(trained_bnn_small)
    assert converters.convert(trained_bnn_small) == first
    path = tmp_path / "m.keras"
    trained_bnn_small.save(path)
    assert converters.convert(path) == first  # same weights from a file: same bytes


def test_failed_conversion_leaves_the_previous_file_intact(tmp_path, monkeypatch):
    from bnn_tf.converters import conversion

    out = tmp_path / "m.tflite"
    out.write_bytes(b"previous")

    def boom(*args, **kwargs):
        raise RuntimeError("converter crashed")

    monkeypatch.setattr(conversion, "convert", boom)
    with pytest.raises(RuntimeError):
        conversion.convert_to_file(
            tf.keras.Sequential([tf.keras.Input((2,)), tf.keras.layers.Dense(1)]), out
        )
    assert out.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["m.tflite"]  # no temp file left behind


@pytest.mark.parametrize(
    "payload, word",
    [
        (b"", "not a TFLite model"),
        (b"PK\x03\x04 zip", ".keras"),
        (b"\x00\x00\x00\x00TFL3" + b"\x00" * 64, "corrupt"),
        (None, "corrupt"),  # a real model cut in half
    ],
)
def test_bad_tflite_files_give_one_line_errors(
    tmp_path, capsys, payload, word, trained_bnn_small_tflite
):
    data = (
        trained_bnn_small_tflite[: len(trained_bnn_small_tflite) // 2]
        if payload is None
        else payload
    )
    path = tmp_path / "bad.tflite"
    path.write_bytes(data)
    with pytest.raises(InvalidTfliteError, match=word) as info:
        converters.parse(path)
    assert "\n" not in str(info.value)
    for command in (["bench", str(path), "--runs", "1"], ["verify", str(path), str(path)]):
        code = main(command)
        err = capsys.readouterr().err
        assert code == 2
        assert len(err.strip().splitlines()) == 1 and err.startswith("error:"), err


def test_stock_tflite_on_an_lce_model_names_the_runtime(trained_bnn_small_tflite):
    # The premise: stock TFLite fails late on LCE's custom ops.
    interpreter = tf.lite.Interpreter(model_content=trained_bnn_small_tflite)
    with pytest.raises(RuntimeError, match="unresolved custom op"):
        interpreter.allocate_tensors()
    with pytest.raises(converters.LceRuntimeRequiredError, match="LceBconv2d") as info:
        converters.make_stock_interpreter(trained_bnn_small_tflite)
    message = str(info.value)
    assert "larq_compute_engine" in message and "--portable" in message
    assert converters.required_runtime(trained_bnn_small_tflite).startswith("LCE")


def _save(model: tf.keras.Model, path) -> str:
    model.save(path)
    return str(path)


def test_cli_convert_prints_the_table_and_strict_lists_the_fallbacks(tmp_path, capsys):
    tf.keras.utils.set_random_seed(0)
    inputs = tf.keras.Input((8, 8, 1))
    x = tf.keras.layers.Conv2D(32, 3, padding="same", name="stem")(inputs)
    x = lq.layers.QuantConv2D(32, 3, padding="same", pad_values=1.0, name="bin", **Q)(x)
    x = lq.layers.QuantConv2D(32, 3, padding="same", pad_values=1.0, name="ternary",
                              **{**Q, "kernel_quantizer": "ste_tern"})(x)  # fmt: skip
    x = tf.keras.layers.GlobalAveragePooling2D()(x)
    x = lq.layers.QuantDense(10, name="fc", **Q)(x)
    keras_path = _save(tf.keras.Model(inputs, x), tmp_path / "m.keras")
    out = tmp_path / "m.tflite"

    assert main(["convert", keras_path, "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "layer" in text and "MACs" in text and "FELL BACK TO FLOAT: ternary" in text
    assert out.is_file()

    assert main(["convert", keras_path, "-o", str(out), "--strict", "--json"]) == 1
    captured = capsys.readouterr()
    obj = json.loads(captured.out)
    assert obj["report"]["fallbacks"] == ["ternary"]  # fc became a 1×1 binary conv
    assert {r["name"]: r["actual"] for r in obj["report"]["layers"]}["fc"] == "binary"
    assert "ternary (QuantConv2D)" in captured.err and "--strict" in captured.err

    assert (
        main(["convert", keras_path, "-o", str(out), "--strict", "--no-dense-rewrite", "--json"])
        == 1
    )
    obj = json.loads(capsys.readouterr().out)
    assert obj["report"]["fallbacks"] == ["ternary", "fc"]


def test_binary_conv_layers_keeps_its_contract():
    inputs = tf.keras.Input((8, 8, 32))
    x = lq.layers.QuantConv2D(32, 3, name="a", **Q)(inputs)
    x = lq.layers.QuantConv2D(32, 3, name="b", kernel_quantizer="ste_sign", use_bias=False)(x)
    x = tf.keras.layers.Conv2D(32, 3, name="c")(x)
    assert converters.binary_conv_layers(tf.keras.Model(inputs, x)) == ["a"]


def _grouped_model() -> tf.keras.Model:
    """Two grouped binary convs: 32 input channels per group, and 16 (not a multiple of 32)."""
    inputs = tf.keras.Input((8, 8, 64))
    x = lq.layers.QuantConv2D(64, 3, padding="same", pad_values=1.0, groups=2, name="g2", **Q)(
        inputs
    )
    x = tf.keras.layers.BatchNormalization(name="bn")(x)
    x = lq.layers.QuantConv2D(64, 3, padding="same", pad_values=1.0, groups=4, name="g4", **Q)(x)
    x = tf.keras.layers.GlobalAveragePooling2D()(x)
    return tf.keras.Model(inputs, tf.keras.layers.Dense(10, name="head")(x))


@pytest.fixture(scope="module")
def grouped(tmp_path_factory):
    tf.keras.utils.set_random_seed(1)
    model = _grouped_model()
    bn = model.get_layer("bn")
    bn.set_weights(
        [w + np.random.default_rng(0).uniform(0.2, 1.0, w.shape) for w in bn.get_weights()]
    )
    path = tmp_path_factory.mktemp("grouped") / "grouped.keras"
    model.save(path)
    return model, path, converters.convert(model), converters.convert(model, split_groups=False)


def test_grouped_binary_convs_are_split_for_the_default_kernel(grouped):
    model, _, split, _ = grouped
    report = converters.conversion_report(model, split)
    rows = {row.name: row for row in report.layers}
    assert report.lint_mismatches == [] and report.unmapped_ops == []
    # Split, even 16 channels per group becomes binary (LCE's multiple-of-32 rule is per grouped conv).
    assert rows["g2"].ops == ["LceBconv2d"] * 2 and rows["g4"].ops == ["LceBconv2d"] * 4
    assert rows["g4"].actual == "binary" and report.fallbacks == []
    assert report.kernels == ["default", "indirect"]
    assert converters.kernel_blockers(split) == {"default": [], "indirect": []}
    x = np.random.default_rng(2).normal(size=(8, 8, 8, 64)).astype(np.float32)
    want = model.predict(x, verbose=0)
    for kernel in ("default", "indirect"):
        got = converters.tflite_predict(split, x, kernel=kernel)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3)


def test_kept_groups_need_the_indirect_kernel_and_the_report_says_so(grouped):
    model, _, split, kept = grouped
    lint = converters.lint(model, split_groups=False)
    by_name = {e.name: e for e in lint.layers}
    assert by_name["g2"].kernels == ["indirect"] and by_name["g4"].prediction == "float"
    assert lint.kernels == ["indirect"] and "g2" in lint.format()
    report = converters.conversion_report(model, kept, split_groups=False)
    rows = {row.name: row for row in report.layers}
    assert rows["g2"].kernels == ["indirect"] and rows["g2"].ops == ["LceBconv2d"]
    assert report.kernels == ["indirect"] and report.kernel_blockers["default"] == ["g2"]
    assert "default (ARM, Android AAR): NO (g2)" in report.format()
    with pytest.raises(ConfigError, match="grouped binary conv"):
        converters.make_interpreter(kept, kernel="default")
    x = np.random.default_rng(2).normal(size=(4, 8, 8, 64)).astype(np.float32)
    np.testing.assert_allclose(
        converters.tflite_predict(kept, x, kernel="indirect"), model.predict(x, verbose=0),
        rtol=1e-4, atol=1e-3,
    )  # fmt: skip


def test_cli_strict_fails_naming_the_layer_when_no_kernel_runs_the_model(tmp_path, capsys):
    from bnn_tf.methods.ebconv import EBConv2D
    from bnn_tf.methods.ebconv_export import export_model

    tf.keras.utils.set_random_seed(4)
    inputs = tf.keras.Input((8, 8, 64))
    x = lq.layers.QuantConv2D(64, 3, padding="same", pad_values=1.0, groups=2, name="g2", **Q)(
        inputs
    )
    x = tf.keras.layers.BatchNormalization()(x)
    x = EBConv2D(32, 3, num_experts=2, name="experts")(x)
    x = tf.keras.layers.GlobalAveragePooling2D()(x)
    exported = export_model(tf.keras.Model(inputs, tf.keras.layers.Dense(10)(x)))
    path = tmp_path / "ebnet.keras"
    exported.save(path)
    # Kept grouped: the default kernel cannot run g2, the indirect one not the IF branches.
    code = main(
        ["convert", str(path), "-o", str(tmp_path / "kept.tflite"), "--keep-groups", "--strict"]
    )
    captured = capsys.readouterr()
    err = captured.out + captured.err
    assert code == 1
    assert "no single LCE kernel" in err and "default: g2" in err and "indirect: experts" in err
    # Split (the default): the default kernel runs everything.
    code = main(["convert", str(path), "-o", str(tmp_path / "split.tflite"), "--strict", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["report"]["kernels"] == ["default"]
