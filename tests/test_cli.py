"""The `bnn-tf` CLI end to end on a small slice of real data, and its errors."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field

import pytest

from bnn_tf import cli, data, optimizers, recipes, training

# The CLI's own table: a command added there is tested here without editing this list.
SUBCOMMANDS = [c.name for c in cli.COMMANDS]


def test_the_commands_table_is_the_parser():
    assert {"models", "train", "convert", "verify", "bench", "deploy", "demo"} <= set(SUBCOMMANDS)
    sub = next(a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert list(sub.choices) == SUBCOMMANDS


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


def _train_actions() -> dict[str, argparse.Action]:
    sub = next(a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return {a.dest: a for a in sub.choices["train"]._actions}


def test_every_train_config_field_is_a_flag_with_its_default():
    actions = _train_actions()
    defaults = training.TrainConfig.defaults()
    for f in dataclasses.fields(training.TrainConfig):
        assert f.name in actions, f"TrainConfig.{f.name} has no bnn-tf train flag"
        assert actions[f.name].help, f.name
        if f.name in defaults:
            assert actions[f.name].default == defaults[f.name], f.name
    # The flags users have scripts for keep their names.
    flags = {s for a in actions.values() for s in a.option_strings}
    for flag in ("--epochs", "--out", "--batch-size", "--limit-train", "--augment", "--seed",
                 "--optimizer", "--recipe", "--bop-gamma-schedule", "--model-kwargs",
                 "--jit-compile", "--bop-threshold", "--bop-gamma", "--learning-rate",
                 "--dataset", "--data-dir", "--json"):  # fmt: skip
        assert flag in flags, flag


def test_train_choices_come_from_the_library():
    actions = _train_actions()
    assert actions["dataset"].choices == data.available()
    assert actions["optimizer"].choices == list(optimizers.OPTIMIZERS)
    assert actions["recipe"].choices == list(recipes.RECIPES)
    assert actions["bop_gamma_schedule"].choices == list(training.GAMMA_SCHEDULES)


def test_parsed_train_flags_build_the_config():
    argv = ["train", "bnn_small", "--epochs", "3", "--batch-size", "64", "--limit-train", "100",
            "--augment", "--bop-gamma", "2e-3", "--model-kwargs", '{"width_multiplier": 2}',
            "--bop-gamma-schedule", "cosine", "--jit-compile", "--out", "x"]  # fmt: skip
    config = cli._train_config(cli.build_parser().parse_args(argv))
    assert config == training.TrainConfig(
        model="bnn_small", epochs=3, batch_size=64, limit_train=100, augment=True,
        bop_gamma=2e-3, model_kwargs={"width_multiplier": 2}, bop_gamma_schedule="cosine",
        jit_compile=True,
    )  # fmt: skip
    plain = cli._train_config(cli.build_parser().parse_args(["train", "bnn_small", "--out", "x"]))
    assert plain == training.TrainConfig(model="bnn_small")


@dataclass
class _Fields:
    """What another TrainConfig field may look like: the generator must need no edit."""

    size: tuple[int, int] | None = field(default=None, metadata={"help": "height and width"})
    path: str | None = field(default=None, metadata={"help": "a folder"})
    split: float = field(default=0.1, metadata={"help": "validation share"})
    shuffle: bool = field(default=True, metadata={"help": "shuffle"})
    channels: int | None = field(default=None, metadata={"help": "1 or 3", "choices": (1, 3)})
    names: tuple[str, ...] = field(default=(), metadata={"help": "class names"})
    renamed: int = field(default=1, metadata={"help": "x", "flag": "--other-name"})
    hidden: int = field(default=0, metadata={"help": "not a flag", "cli": False})
    # The own-data fields' shape (issue 15): list hint, explicit nargs/type/metavar.
    image_size: list[int] | None = field(
        default=None,
        metadata={"flag": "--image-size", "nargs": 2, "type": int, "metavar": ("H", "W"),
                  "help": "resize to H×W; default: the images' own size"},
    )  # fmt: skip


def test_flag_generator_handles_tuples_paths_floats_and_switches():
    parser = argparse.ArgumentParser()
    added = cli.add_dataclass_flags(parser, _Fields)
    assert "hidden" not in added
    args = parser.parse_args(
        [
            "--size",
            "32",
            "24",
            "--path",
            "imgs/",
            "--split",
            "0.25",
            "--no-shuffle",
            "--channels",
            "3",
            "--names",
            "cat",
            "dog",
            "--other-name",
            "5",
        ]  # fmt: skip
    )
    assert args.size == (32, 24) and args.path == "imgs/" and args.split == 0.25
    assert args.shuffle is False and args.channels == 3 and args.names == ("cat", "dog")
    assert args.renamed == 5
    assert parser.parse_args(["--image-size", "32", "24"]).image_size == [32, 24]
    defaults = parser.parse_args([])
    assert (defaults.size, defaults.path, defaults.split, defaults.shuffle) == (
        None,
        None,
        0.1,
        True,
    )
    for bad in (["--size", "32"], ["--channels", "2"], ["--split", "a lot"]):
        with pytest.raises(SystemExit):
            parser.parse_args(bad)

    @dataclass
    class NoHelp:
        x: int = 0

    with pytest.raises(TypeError, match="help"):
        cli.add_dataclass_flags(argparse.ArgumentParser(), NoHelp)


def test_models_lists_each_models_default_training(capsys):
    code, text, _ = run(capsys, "models", "--json")
    assert code == 0
    rows = {m["name"]: m for m in json.loads(text)["models"]}
    bop = rows["bnn_small"]["default_training"]
    assert bop["config"]["name"] in optimizers.OPTIMIZERS and bop["source"] and bop["why"]
    # A float model has nothing for Bop to flip: Adam trains it, and the listing says so.
    assert rows["bnn_small_float"]["default_training"]["config"]["name"] == "adam"
    code, text, _ = run(capsys, "models")
    assert code == 0 and "default training" in text
