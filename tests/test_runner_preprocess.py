"""The C++ runner's pre-processing of own images (grey PGM / RGB PPM of any size) against
TensorFlow's: channel conversion, `tf.image.resize(..., "bilinear", antialias=False)` and
`pixel * scale + offset`.

The runner's TFLite-free self-test is built straight from the template folder, so most
tests need only cmake, g++ and the Fashion-MNIST test images; one feeds it the `.ppm`
samples of a real RGB bundle (`bnn-tf train` on an RGB folder, then `bnn-tf deploy`).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from _selftest_build import build_selftest

from bnn_tf import cli, converters, data

TEMPLATE = Path(__file__).resolve().parents[1] / "converters" / "deploy_templates" / "rpi"
SCALE, OFFSET = 1 / 127.5, -1.0


@pytest.fixture(scope="module")
def selftest(tmp_path_factory) -> Path:
    build = build_selftest(TEMPLATE, tmp_path_factory.mktemp("runner-preprocess"))
    return build / "bnn_runner_selftest"


def _write_pnm(path: Path, pixels: np.ndarray) -> Path:
    """Binary PGM (H×W) or PPM (H×W×3), 8 bit."""
    h, w = pixels.shape[:2]
    magic = b"P6" if pixels.ndim == 3 else b"P5"
    path.write_bytes(magic + f"\n{w} {h}\n255\n".encode() + pixels.astype(np.uint8).tobytes())
    return path


def _dump(selftest: Path, image: Path, h: int, w: int, c: int) -> tuple[bool, np.ndarray]:
    out = subprocess.run(
        [str(selftest), "--dump-input", str(image), str(h), str(w), str(c), repr(SCALE),
         repr(OFFSET), "no"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    lines = out.stdout.split()
    assert lines[0] == "inverted"
    return lines[1] == "1", np.array(lines[2:], dtype=np.float32).reshape(h, w, c)


def _python(pixels: np.ndarray, h: int, w: int, c: int) -> np.ndarray:
    """bnn-tf's pre-processing of an own image: the one function training uses."""
    spec = data.Preprocessing(height=h, width=w, channels=c, scale=SCALE, offset=OFFSET)
    return data.preprocess_images(np.asarray(pixels, np.uint8)[None], spec)[0]


def _tinted_rgb(fmnist, height: int, width: int) -> np.ndarray:
    """A real Fashion-MNIST item on a (height × width) canvas, tinted differently per channel,
    so that a channel mix-up or an off-by-one in the resize shows."""
    canvas = np.zeros((height, width), np.float32)
    item = fmnist.x_test[3, ..., 0].astype(np.float32)
    canvas[: min(28, height), : min(28, width)] = item[: min(28, height), : min(28, width)]
    ramp = np.linspace(0, 60, width, dtype=np.float32)[None, :]
    rgb = np.stack([canvas, 0.6 * canvas + ramp, 255 - canvas * 0.8], axis=-1)
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


@pytest.mark.parametrize(
    ("src_hw", "dst_hwc"),
    [
        ((37, 45), (32, 32, 3)),  # smaller, non-integer ratios, RGB -> RGB
        ((20, 23), (32, 32, 3)),  # enlarging
        ((37, 45), (28, 28, 1)),  # RGB photo -> grey model
    ],
)
def test_rgb_image_of_another_size_equals_tensorflow(selftest, tmp_path, fmnist, src_hw, dst_hwc):
    rgb = _tinted_rgb(fmnist, *src_hw)
    image = _write_pnm(tmp_path / "photo.ppm", rgb)
    inverted, cpp = _dump(selftest, image, *dst_hwc)
    py = _python(rgb, *dst_hwc)
    assert not inverted
    assert cpp.shape == py.shape
    np.testing.assert_allclose(cpp, py, rtol=0, atol=1e-5)
    # The three channels really differ (so the comparison checks their order).
    if dst_hwc[2] == 3:
        assert np.abs(py[..., 0] - py[..., 2]).max() > 0.5


def test_grey_image_to_rgb_model_equals_tensorflow(selftest, tmp_path, fmnist):
    grey = fmnist.x_test[7, ..., 0]
    image = _write_pnm(tmp_path / "item.pgm", grey)
    _, cpp = _dump(selftest, image, 32, 32, 3)
    np.testing.assert_allclose(cpp, _python(grey, 32, 32, 3), rtol=0, atol=1e-5)


def test_same_size_grey_is_exact(selftest, tmp_path, fmnist):
    grey = fmnist.x_test[11, ..., 0]
    image = _write_pnm(tmp_path / "item.pgm", grey)
    _, cpp = _dump(selftest, image, 28, 28, 1)
    expected = grey.astype(np.float32)[..., None] * np.float32(SCALE) + np.float32(OFFSET)
    np.testing.assert_array_equal(cpp, expected)


@pytest.fixture(scope="module")
def rgb_bundle(fmnist, tmp_path_factory) -> Path:
    """`bnn-tf deploy` of a tiny RGB run: bnn_small, 1 epoch on 40 Fashion-MNIST items drawn
    40×36 in colour, so the bundle's samples were resized to the 32×32 input."""
    root = tmp_path_factory.mktemp("rgb-bundle")
    x = tf.image.resize(fmnist.x_test[:40].astype(np.float32), (40, 36)).numpy()
    ramp = np.linspace(0, 60, 36, dtype=np.float32)[None, None, :, None]
    rgb = np.concatenate([x, 0.6 * x + ramp, 255 - 0.8 * x], axis=-1)
    rgb = np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
    for i, (img, label) in enumerate(zip(rgb, fmnist.y_test[:40], strict=True)):
        d = root / "images" / f"class{label}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{i}.png").write_bytes(tf.io.encode_png(img).numpy())
    run, bundle = root / "run", root / "bundle"
    assert cli.main(["train", "bnn_small", "--data", str(root / "images"), "--image-size", "32",
                     "32", "--epochs", "1", "--batch-size", "16", "--out", str(run),
                     "--json"]) == 0  # fmt: skip
    assert cli.main(["deploy", str(run / "model.keras"), "--target", "rpi", "-o", str(bundle),
                     "--samples", "4", "--json"]) == 0  # fmt: skip
    return bundle


def test_bundle_rgb_samples_through_the_runner_equal_python(selftest, rgb_bundle, tmp_path):
    meta = json.loads((rgb_bundle / "metadata.json").read_text())
    inp = meta["input"]
    h, w, c = inp["height"], inp["width"], inp["channels"]
    assert (h, w, c) == (32, 32, 3)
    spec = data.Preprocessing.from_dict(inp)
    norm = inp["normalization"]
    samples = json.loads((rgb_bundle / "samples" / "expected.json").read_text())["samples"]
    assert len(samples) == 4
    for s in samples:
        assert s["file"].endswith(".ppm")
        out = subprocess.run(
            [str(selftest), "--dump-input", str(rgb_bundle / s["file"]), str(h), str(w), str(c),
             repr(norm["scale"]), repr(norm["offset"]), "no"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        lines = out.stdout.split()
        cpp = np.array(lines[2:], dtype=np.float32).reshape(h, w, c)
        # The sample's own pixels through Python's one pre-processing function.
        raw = (rgb_bundle / s["file"]).read_bytes()
        pixels = np.frombuffer(raw[len(f"P6\n{w} {h}\n255\n") :], np.uint8).reshape(h, w, c)
        py = data.preprocess_tensor(tf.constant(pixels), spec).numpy()
        np.testing.assert_allclose(cpp, py, rtol=0, atol=1e-6)
        # The sample is the run's own 40×36 image resized: equal up to the 8-bit rounding.
        source = data.decode_file(tf.constant(s["source_file"]))
        from_source = data.preprocess_tensor(source, spec).numpy()
        assert np.abs(cpp - from_source).max() <= 0.5 * norm["scale"] + 1e-6
        # And the interpreter on the runner's input gives the logits the bundle expects.
        lite = converters.tflite_predict(rgb_bundle / "model.tflite", cpp[None])[0]
        np.testing.assert_allclose(lite, s["logits"], rtol=1e-5, atol=1e-5)
        # The runner also resizes the original file the way training did.
        photo = _write_pnm(tmp_path / "source.ppm", source.numpy())
        _, resized = _dump(selftest, photo, h, w, c)
        np.testing.assert_allclose(resized, from_source, rtol=0, atol=1e-5)
