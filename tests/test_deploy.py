"""`bnn-tf deploy`: bundle contents, metadata against the model, the C++ runner's checkable parts.

What can be checked here (x86_64, no TFLite/LCE C++ sources): the bundle, its
metadata, the sample images and expected predictions, and the runner's
TFLite-free code (CMake build of `bnn_runner_selftest`, its unit tests, and its
pre-processing against Python's on real images). `runner/src/bnn_runner.cc`
needs TFLite headers and is NOT compiled here (docs/deploy.md).
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from _selftest_build import build_selftest

from bnn_tf import cli, converters, data
from bnn_tf.converters import deploy as deploy_mod
from bnn_tf.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
SAMPLES = 6


@pytest.fixture(scope="module")
def rpi_bundle(trained_bnn_small, trained_bnn_small_tflite, tmp_path_factory):
    out = tmp_path_factory.mktemp("bundle") / "rpi"
    bundle = deploy_mod.deploy(
        trained_bnn_small, out, target="rpi", tflite=trained_bnn_small_tflite, samples=SAMPLES
    )
    return bundle


def _read_pgm(path: Path) -> np.ndarray:
    raw = path.read_bytes()
    header, rest = raw.split(b"\n", 3)[:3], raw.split(b"\n", 3)[3]
    assert header[0] == b"P5"
    width, height = map(int, header[1].split())
    assert header[2] == b"255"
    return np.frombuffer(rest, dtype=np.uint8).reshape(height, width)


def test_bundle_files(rpi_bundle, trained_bnn_small_tflite):
    d = rpi_bundle.directory
    for name in ("model.tflite", "metadata.json", "labels.txt", "README.md"):
        assert (d / name).is_file(), name
    for rel in deploy_mod.RUNNER_FILES:
        assert (d / "runner" / rel).is_file(), rel
    assert (d / "model.tflite").read_bytes() == trained_bnn_small_tflite
    assert (d / "labels.txt").read_text().splitlines() == list(data.FASHION_MNIST_CLASSES)
    assert sorted(p.stem for p in (d / "samples").glob("*.pgm")) == sorted(
        p.stem for p in (d / "samples").glob("*.png")
    )
    assert len(list((d / "samples").glob("*.pgm"))) == SAMPLES
    # Every file the bundle reports exists, and no file is unreported.
    on_disk = {p for p in d.rglob("*") if p.is_file()}
    assert on_disk == set(rpi_bundle.files)
    readme = (d / "README.md").read_text()
    assert "$" not in readme.replace("$HOME", "")  # every template variable was filled
    assert "v0.16" in readme and "LCE_SOURCE_DIR" in readme


def test_metadata_matches_model(rpi_bundle, trained_bnn_small, trained_bnn_small_tflite):
    meta = json.loads((rpi_bundle.directory / "metadata.json").read_text())
    assert meta == rpi_bundle.metadata
    assert meta["format"] == "bnn-tf-deploy" and meta["format_version"] == 1
    assert meta["target"] == "rpi"
    assert meta["input"]["shape"] == [1, *trained_bnn_small.input_shape[1:]] == [1, 28, 28, 1]
    assert meta["output"]["shape"] == [1, trained_bnn_small.output_shape[-1]] == [1, 10]
    assert meta["labels"] == list(data.FASHION_MNIST_CLASSES)
    assert meta["input"]["background"] == "dark"
    m = meta["model"]
    assert m["size_bytes"] == len(trained_bnn_small_tflite)
    assert m["sha256"] == hashlib.sha256(trained_bnn_small_tflite).hexdigest()

    # The normalisation in the metadata reproduces the models' Python pre-processing.
    norm = meta["input"]["normalization"]
    pixels = np.arange(256, dtype=np.uint8)
    via_meta = pixels.astype(np.float32) * norm["scale"] + norm["offset"]
    np.testing.assert_array_equal(via_meta, data.preprocess(pixels))
    assert via_meta[0] == -1.0 and via_meta[255] == 1.0

    report = converters.inspect(trained_bnn_small_tflite)
    runtime, conv = meta["runtime"], meta["conversion"]
    assert runtime["requires_lce"] is True and runtime["name"] == "larq-compute-engine"
    assert "LceBconv2d" in runtime["custom_ops"]
    assert runtime["lce_version"].startswith("0.16")
    assert conv["binary_convs"] == report.binary_convs > 0
    assert conv["expected_binary_convs"] == len(converters.binary_conv_layers(trained_bnn_small))
    assert conv["op_counts"] == report.op_counts


def test_samples_are_real_images_with_expected_predictions(rpi_bundle, fmnist):
    d = rpi_bundle.directory
    expected = json.loads((d / "samples" / "expected.json").read_text())
    assert len(expected["samples"]) == SAMPLES
    index = [s["test_index"] for s in expected["samples"]]
    # Spread over the classes: no two samples share a label while classes remain.
    assert len({int(fmnist.y_test[k]) for k in index}) == SAMPLES
    lite = converters.tflite_predict(d / "model.tflite", data.preprocess(fmnist.x_test[index]))
    import matplotlib.image as mpimg

    for i, (s, k) in enumerate(zip(expected["samples"], index, strict=True)):
        assert s["label"] == int(fmnist.y_test[k])
        assert s["file"] == s["pgm"] and s["file"].endswith(".pgm")
        np.testing.assert_array_equal(_read_pgm(d / s["pgm"]), fmnist.x_test[k, ..., 0])
        png = mpimg.imread(d / s["png"])  # float in [0, 1] for 8-bit PNGs
        np.testing.assert_array_equal(
            np.round(png * 255).astype(np.uint8), fmnist.x_test[k, ..., 0]
        )
        np.testing.assert_allclose(s["logits"], lite[i], rtol=1e-6, atol=1e-6)
        assert s["expected_top1"] == int(lite[i].argmax())
        assert s["expected_top3"] == [int(k) for k in np.argsort(-lite[i], kind="stable")[:3]]


@pytest.fixture(scope="module")
def selftest_binary(rpi_bundle, tmp_path_factory):
    """The bundle's runner built with CMake in self-test-only mode (no TFLite)."""
    return build_selftest(rpi_bundle.directory / "runner", tmp_path_factory.mktemp("runner-build"))


def test_runner_selftest_passes(selftest_binary):
    ctest = subprocess.run(
        ["ctest", "--output-on-failure"], cwd=selftest_binary, capture_output=True, text=True
    )
    assert ctest.returncode == 0, ctest.stdout + ctest.stderr
    run = subprocess.run(
        [str(selftest_binary / "bnn_runner_selftest")], capture_output=True, text=True
    )
    assert run.returncode == 0 and " 0 failures" in run.stdout, run.stdout + run.stderr


def test_runner_preprocessing_equals_python(selftest_binary, rpi_bundle, fmnist):
    d = rpi_bundle.directory
    meta = rpi_bundle.metadata
    norm = meta["input"]["normalization"]
    expected = json.loads((d / "samples" / "expected.json").read_text())["samples"]
    for s in expected:
        out = subprocess.run(
            [str(selftest_binary / "bnn_runner_selftest"), "--dump-input", str(d / s["pgm"]),
             "28", "28", "1", repr(norm["scale"]), repr(norm["offset"]), "auto"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        lines = out.stdout.split()
        assert lines[:2] == ["inverted", "0"]  # Fashion-MNIST: dark background, never inverted
        cpp = np.array(lines[2:], dtype=np.float32)
        py = data.preprocess(fmnist.x_test[s["test_index"]]).reshape(-1)
        np.testing.assert_allclose(cpp, py, rtol=0, atol=1e-6)


def test_runner_preprocessing_inverts_and_resizes_a_photo(selftest_binary, tmp_path, fmnist):
    # A 56×56 RGB "photo": a Fashion-MNIST item, dark on white, each pixel 2×2.
    item = fmnist.x_test[0, ..., 0]
    photo = np.repeat(np.repeat(255 - item, 2, axis=0), 2, axis=1)
    rgb = np.stack([photo] * 3, axis=-1).astype(np.uint8)
    path = tmp_path / "photo.ppm"
    path.write_bytes(b"P6\n56 56\n255\n" + rgb.tobytes())
    out = subprocess.run(
        [str(selftest_binary / "bnn_runner_selftest"), "--dump-input", str(path),
         "28", "28", "1", repr(1 / 127.5), "-1", "auto"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    lines = out.stdout.split()
    assert lines[:2] == ["inverted", "1"]
    # bnn_tf.data's steps: integer BT.601 grey (exact for R = G = B), bilinear 2× shrink
    # (= the 2×2 means, exact here); then the runner's inversion and the normalisation.
    spec = data.Preprocessing(height=28, width=28, channels=1, scale=1.0, offset=0.0)
    small = data.preprocess_images(rgb[None], spec)[0]
    py = (255.0 - small) * np.float32(1 / 127.5) - 1.0
    cpp = np.array(lines[2:], dtype=np.float32)
    np.testing.assert_allclose(cpp, py.reshape(-1), rtol=0, atol=1e-5)
    np.testing.assert_allclose(cpp, data.preprocess(item).reshape(-1), atol=5e-4)  # the item


def test_runner_cmake_requires_lce_sources(rpi_bundle, tmp_path):
    if shutil.which("cmake") is None:
        pytest.skip("cmake not installed")
    res = subprocess.run(
        ["cmake", "-S", str(rpi_bundle.directory / "runner"), "-B", str(tmp_path / "b")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert res.returncode != 0
    assert "LCE_SOURCE_DIR" in res.stderr
    res = subprocess.run(
        ["cmake", "-S", str(rpi_bundle.directory / "runner"), "-B", str(tmp_path / "c"),
         f"-DLCE_SOURCE_DIR={tmp_path}"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert res.returncode != 0 and "git submodule update --init" in res.stderr


def test_templates_are_package_data():
    """Every template file matches a package-data glob, so it ships in the wheel."""
    # (tomllib is Python 3.11+; bnn-tf supports 3.10, so read the one line by hand.)
    text = (REPO / "pyproject.toml").read_text()
    section = text.split("[tool.setuptools.package-data]", 1)[1]
    line = re.search(r'^"bnn_tf\.converters"\s*=\s*\[(.*)\]\s*$', section, re.M)
    assert line, "pyproject.toml: no package-data for bnn_tf.converters"
    globs = re.findall(r'"([^"]+)"', line.group(1))
    root = REPO / "converters"
    files = [p.relative_to(root).as_posix() for p in (root / "deploy_templates").rglob("*")]
    files = [f for f in files if (root / f).is_file() and "__pycache__" not in f]
    assert files
    for f in files:
        assert any(fnmatch.fnmatch(f, g) and f.count("/") == g.count("/") for g in globs), f


def test_android_bundle(trained_bnn_small, trained_bnn_small_tflite, tmp_path):
    bundle = deploy_mod.deploy(
        trained_bnn_small, tmp_path / "a", target="android", tflite=trained_bnn_small_tflite,
        samples=0,
    )  # fmt: skip
    d = bundle.directory
    assert not (d / "runner").exists() and not (d / "samples").exists()
    meta = json.loads((d / "metadata.json").read_text())
    assert meta["target"] == "android" and "samples" not in meta
    readme = (d / "README.md").read_text()
    assert "lce-lite" in readme and "android_demo/app/src/main/assets/bnn" in readme


def test_deploy_errors(trained_bnn_small, trained_bnn_small_tflite, tmp_path):
    kw = {"tflite": trained_bnn_small_tflite, "samples": 0}
    with pytest.raises(ConfigError, match="Unknown deploy target"):
        deploy_mod.deploy(trained_bnn_small, tmp_path / "x", target="ios", **kw)
    with pytest.raises(ConfigError, match="10 outputs but the given labels list 2"):
        deploy_mod.deploy(trained_bnn_small, tmp_path / "x", target="rpi", labels=["a", "b"], **kw)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "other.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="not empty"):
        deploy_mod.deploy(trained_bnn_small, busy, target="rpi", **kw)
    deploy_mod.deploy(trained_bnn_small, busy, target="rpi", overwrite=True, **kw)
    assert (busy / "other.txt").read_text() == "keep me" and (busy / "metadata.json").is_file()

    # A .tflite of another model (5 classes) is refused.
    other = tf.keras.Sequential(
        [tf.keras.layers.Flatten(input_shape=(28, 28, 1)), tf.keras.layers.Dense(5)]
    )
    other_flat = tf.lite.TFLiteConverter.from_keras_model(other).convert()
    with pytest.raises(ConfigError, match="not the .tflite converted from this model|Fix: pass"):
        deploy_mod.deploy(
            trained_bnn_small, tmp_path / "y", target="rpi", tflite=other_flat, samples=0
        )


def test_cli_deploy(trained_bnn_small, trained_bnn_small_tflite, tmp_path, capsys):
    model_path = tmp_path / "model.keras"
    trained_bnn_small.save(model_path)
    tfl = tmp_path / "model.tflite"
    tfl.write_bytes(trained_bnn_small_tflite)
    out = tmp_path / "bundle"
    code = cli.main(
        ["deploy", str(model_path), "--target", "rpi", "-o", str(out), "--tflite", str(tfl),
         "--samples", "2", "--json"]
    )  # fmt: skip
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["target"] == "rpi" and "metadata.json" in doc["files"]
    assert doc["metadata"]["model"]["source"] == str(model_path)
    assert len(list((out / "samples").glob("*.pgm"))) == 2

    labels = tmp_path / "labels.txt"
    labels.write_text("only\ntwo\n")
    code = cli.main(
        ["deploy", str(model_path), "--target", "android", "-o", str(tmp_path / "b2"),
         "--tflite", str(tfl), "--labels", str(labels), "--samples", "0"]
    )  # fmt: skip
    assert code == 2
    assert "10 outputs" in capsys.readouterr().err


def test_dataset_comes_from_run_json(trained_bnn_small, trained_bnn_small_tflite, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    trained_bnn_small.save(run_dir / "model.keras")
    (run_dir / "run.json").write_text(json.dumps({"config": {"dataset": "mnist"}}))
    bundle = deploy_mod.deploy(
        run_dir / "model.keras", tmp_path / "b", target="android",
        tflite=trained_bnn_small_tflite, samples=0,
    )  # fmt: skip
    assert bundle.metadata["dataset"] == "mnist"
    assert bundle.metadata["labels"] == list(data.MNIST_CLASSES)
    assert (tmp_path / "b" / "labels.txt").read_text().split() == list(data.MNIST_CLASSES)
