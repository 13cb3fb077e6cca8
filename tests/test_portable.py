"""Portable export: stock-TFLite models (no custom ops), float and int8, on real images."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from bnn_tf import converters
from bnn_tf.converters.portable import compare_portable
from bnn_tf.errors import ConfigError


@pytest.fixture(scope="module")
def portable_float(trained_bnn_small) -> bytes:
    return converters.convert_portable(trained_bnn_small)


@pytest.fixture(scope="module")
def portable_int8(trained_bnn_small, fmnist_small) -> bytes:
    return converters.convert_portable(
        trained_bnn_small, int8=True, representative_data=fmnist_small["x_train"][:300]
    )


def test_float_export_has_no_custom_ops_and_matches_keras(
    trained_bnn_small, portable_float, fmnist_small
):
    model = converters.parse(portable_float)
    assert model.custom_ops == [] and not model.requires_lce
    assert converters.required_runtime(portable_float).startswith("stock TFLite")
    # A plain tf.lite.Interpreter (stock kernels, no LCE resolver) runs it.
    interpreter = tf.lite.Interpreter(model_content=portable_float)
    interpreter.allocate_tensors()
    x = fmnist_small["x_test"][:200]
    lite = converters.stock_predict(portable_float, x)
    keras = trained_bnn_small.predict(x, verbose=0)
    assert (lite.argmax(-1) == keras.argmax(-1)).mean() >= 0.99
    np.testing.assert_allclose(lite, keras, atol=1e-3, rtol=1e-3)


def test_int8_export_keeps_accuracy_and_is_smaller(
    trained_bnn_small, portable_float, portable_int8, fmnist_small
):
    assert converters.parse(portable_int8).custom_ops == []
    assert len(portable_int8) < 0.5 * len(portable_float)
    x, y = fmnist_small["x_test"], fmnist_small["y_test"]
    keras_acc = (trained_bnn_small.predict(x, verbose=0).argmax(-1) == y).mean()
    int8_acc = (converters.stock_predict(portable_int8, x).argmax(-1) == y).mean()
    assert int8_acc >= keras_acc - 0.03, (keras_acc, int8_acc)


def test_compare_portable_reports_both_models(
    trained_bnn_small, trained_bnn_small_tflite, portable_int8, fmnist_small
):
    x, y = fmnist_small["x_test"][:200], fmnist_small["y_test"][:200]
    result = compare_portable(
        trained_bnn_small, trained_bnn_small_tflite, portable_int8, x, y, int8=True
    )
    assert result.num_images == 200 and result.int8
    assert result.lce_bytes == len(trained_bnn_small_tflite) and result.portable_bytes == len(
        portable_int8
    )
    assert abs(result.lce_accuracy - result.keras_accuracy) <= 0.02
    assert "portable int8" in result.format() and "LCE" in result.format()


def test_export_is_deterministic(trained_bnn_small, portable_float, portable_int8, fmnist_small):
    assert converters.convert_portable(trained_bnn_small) == portable_float
    again = converters.convert_portable(
        trained_bnn_small, int8=True, representative_data=list(fmnist_small["x_train"][:300])
    )
    assert again == portable_int8  # a list of images calibrates exactly like the array


def test_int8_needs_real_calibration_images(trained_bnn_small):
    with pytest.raises(ConfigError, match="representative_data"):
        converters.convert_portable(trained_bnn_small, int8=True)
    with pytest.raises(ConfigError, match="shape"):
        converters.convert_portable(
            trained_bnn_small, int8=True, representative_data=np.zeros((4, 32, 32, 3))
        )
    with pytest.raises(ConfigError, match="empty"):
        converters.convert_portable(trained_bnn_small, int8=True, representative_data=[])


def test_cli_portable_int8_writes_both_and_reports(tmp_path, trained_bnn_small, capsys):
    import json

    from bnn_tf.cli import main

    keras_path = tmp_path / "m.keras"
    trained_bnn_small.save(keras_path)
    code = main(["convert", str(keras_path), "-o", str(tmp_path / "m.tflite"), "--portable", "--int8",
                 "--limit", "300", "--json"])  # fmt: skip
    assert code == 0
    obj = json.loads(capsys.readouterr().out)
    portable = obj["portable"]
    assert portable["output"].endswith("m.int8.tflite") and (tmp_path / "m.int8.tflite").is_file()
    assert portable["num_images"] == 300 and portable["int8"]
    assert portable["portable_bytes"] == (tmp_path / "m.int8.tflite").stat().st_size
    assert converters.parse(tmp_path / "m.int8.tflite").custom_ops == []
    assert main(["convert", str(keras_path), "-o", str(tmp_path / "x.tflite"), "--int8"]) == 2
    assert "--portable" in capsys.readouterr().err
