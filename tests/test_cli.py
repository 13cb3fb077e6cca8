"""The `bnn-tf` CLI end to end on a small slice of real data, and its errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from bnn_tf import cli, data

SUBCOMMANDS = ["models", "train", "convert", "verify", "bench", "demo"]


def run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("sub", [None, *SUBCOMMANDS])
def test_help_explains_itself(capsys, sub):
    argv = ["--help"] if sub is None else [sub, "--help"]
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "usage: bnn-tf" in text and len(text.splitlines()) > 4
    if sub is None:
        for name in SUBCOMMANDS:
            assert name in text


def test_console_script_lists_models_as_json():
    exe = shutil.which("bnn-tf", path=os.path.dirname(sys.executable))
    assert exe, "the bnn-tf console script is installed next to the interpreter"
    proc = subprocess.run([exe, "models", "--json"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    names = [m["name"] for m in json.loads(proc.stdout)["models"]]
    assert "bnn_small" in names and "bnn_small_float" in names
    # TensorFlow 2.21 prints its start-up INFO lines before absl is set up,
    # past TF_CPP_MIN_LOG_LEVEL; the CLI filters them at the descriptor.
    assert "All log messages before absl" not in proc.stderr
    assert "oneDNN custom operations" not in proc.stderr


def test_train_convert_verify_bench_end_to_end(tmp_path, capsys):
    out = tmp_path / "run"
    code, text, _ = run(capsys, "train", "bnn_small", "--epochs", "1", "--limit-train", "1024",
                        "--batch-size", "64", "--out", str(out))  # fmt: skip
    assert code == 0, text
    assert "test accuracy:" in text and (out / "model.keras").is_file()

    tfl = tmp_path / "m.tflite"
    code, text, _ = run(
        capsys, "convert", str(out / "model.keras"), "-o", str(tfl), "--json", "--strict"
    )
    assert code == 0
    report = json.loads(text)
    assert report["binary_convs"] == report["expected_binary_convs"] == 5

    code, text, _ = run(capsys, "verify", str(out / "model.keras"), str(tfl), "--limit", "300", "--json",
                        "--min-agreement", "0.99")  # fmt: skip
    assert code == 0
    result = json.loads(text)
    assert result["num_images"] == 300 and result["top1_agreement"] >= 0.99

    code, text, _ = run(capsys, "bench", str(tfl), "--runs", "3", "--warmup", "1")
    assert code == 0 and "median" in text and "bytes" in text


def test_demo_with_small_limits_writes_the_report(tmp_path, capsys):
    code, text, _ = run(capsys, "demo", "--out", str(tmp_path), "--epochs", "1", "--limit-train",
                        "1024", "--limit-test", "200", "--runs", "3", "--json")  # fmt: skip
    assert code == 0
    report = json.loads(text)
    assert report["checks"]["all_binary_convs_lce"] and report["checks"]["top1_agreement"]
    for name in (
        "model.keras",
        "model.tflite",
        "float_twin.tflite",
        "curves.png",
        "report.md",
        "report.json",
    ):
        assert (tmp_path / name).is_file(), name
    assert "Keras↔TFLite top-1 agreement" in (tmp_path / "report.md").read_text()


@pytest.fixture()
def tiny_tflite(tmp_path_factory):
    from bnn_tf import converters
    from bnn_tf import models as zoo

    path = tmp_path_factory.mktemp("tfl") / "float.tflite"
    path.write_bytes(converters.convert(zoo.build("bnn_small_float")))
    return path


def test_bad_inputs_exit_2_with_one_line_errors(tmp_path, capsys, tiny_tflite):
    keras_file = tmp_path / "m.keras"
    keras_file.write_bytes(b"PK\x03\x04" + b"\x00" * 64)
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"junk" * 10)
    cases = [
        (
            ["convert", str(tmp_path / "missing.keras"), "-o", str(tmp_path / "x.tflite")],
            "no such file",
        ),
        (["convert", str(tiny_tflite), "-o", str(tmp_path / "x.tflite")], "is a TFLite model"),
        (["bench", str(keras_file)], "looks like a .keras"),
        (["bench", str(junk)], "not a TFLite model"),
        (["verify", str(tiny_tflite), str(tiny_tflite)], "is a TFLite model"),
        (["train", "no_such_model", "--out", str(tmp_path / "r")], "Unknown model"),
        (["train", "bnn_small", "--epochs", "0", "--out", str(tmp_path / "r")], "epochs must be"),
        (
            [
                "train",
                "bnn_small",
                "--model-kwargs",
                '{"depth": 3}',
                "--limit-train",
                "8",
                "--epochs",
                "1",
                "--out",
                str(tmp_path / "r2"),
            ],
            "has no option 'depth'",
        ),  # fmt: skip
    ]
    for argv, message in cases:
        code, out, err = run(capsys, *argv)
        assert code == 2, (argv, out, err)
        assert err.startswith("error: ") and message in err, (argv, err)
        assert "Traceback" not in err
    assert not (tmp_path / "x.tflite").exists()  # nothing half-written


def test_missing_data_is_a_clear_cli_error(tmp_path, capsys, monkeypatch, tiny_tflite):
    spec = data.DATASETS["fashion_mnist"]
    monkeypatch.setitem(data.DATASETS, "fashion_mnist",
                        data.DatasetSpec(**{**spec.__dict__, "debian_dir": str(tmp_path / "none")}))  # fmt: skip
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kh"))
    monkeypatch.setenv(data.ENV_NO_DOWNLOAD, "1")
    code, _, err = run(capsys, "train", "bnn_small", "--out", str(tmp_path / "r"))
    assert code == 2 and "Could not find the fashion_mnist data set" in err
    assert "apt-get install dataset-fashion-mnist" in err
