"""Your own images, end to end: image folders and .npz files through train → convert → verify → deploy.

The folders are built at test time from real Fashion-MNIST test images, written
as PNG and JPEG files in one sub-folder per class: grey at 28×28, and RGB
variants at 32×32 and 64×64 tinted per class (so colour carries information).
One small RGB run (bnn_small, 1 epoch on a few hundred images) is shared by the
module; every bad input of issue 15 has its own test and must give a one-line
error with exit status 2 and leave what was already written alone.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from bnn_tf import cli, converters, data
from bnn_tf.errors import ConfigError, InvalidDataError

# One tint per class: RGB multipliers applied to the grey image.
TINTS = np.array(
    [[1, .3, .3], [.3, 1, .3], [.3, .3, 1], [1, 1, .3], [1, .3, 1],
     [.3, 1, 1], [1, .6, .2], [.6, .2, 1], [.2, .6, .6], [1, 1, 1]], np.float32,
)  # fmt: skip
N_IMAGES = 300


def _class_dir(name: str) -> str:
    return name.replace("/", "-").replace(" ", "_")


def write_folder(root: Path, images: np.ndarray, labels: np.ndarray, class_names, *, jpeg_every=2):
    """Write uint8 HWC images into root/<class>/<i>.png|.jpg (every `jpeg_every`-th as JPEG)."""
    for i, (img, label) in enumerate(zip(images, labels, strict=True)):
        d = root / _class_dir(class_names[int(label)])
        d.mkdir(parents=True, exist_ok=True)
        if jpeg_every and i % jpeg_every == 1:
            (d / f"{i:05d}.jpg").write_bytes(tf.io.encode_jpeg(img, quality=95).numpy())
        else:
            (d / f"{i:05d}.png").write_bytes(tf.io.encode_png(img).numpy())
    return root


def tinted(images: np.ndarray, labels: np.ndarray, size: int) -> np.ndarray:
    x = tf.image.resize(images.astype(np.float32), (size, size)).numpy()  # (N, s, s, 1)
    rgb = x * TINTS[labels][:, None, None, :]
    return np.clip(np.round(rgb), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def folders(fmnist, tmp_path_factory):
    root = tmp_path_factory.mktemp("own-data")
    x, y = fmnist.x_test[:N_IMAGES], fmnist.y_test[:N_IMAGES]
    names = fmnist.class_names
    return {
        "grey": write_folder(root / "grey", x, y, names),
        "rgb32": write_folder(root / "rgb32", tinted(x, y, 32), y, names),
        "rgb64": write_folder(root / "rgb64", tinted(x[:200], y[:200], 64), y[:200], names),
    }


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code: int, err: str, *patterns: str) -> None:
    assert code == 2, err
    lines = [line for line in err.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    for p in patterns:
        assert re.search(p, lines[0]), (p, lines[0])
    assert "Fix" in lines[0] or "fix" in lines[0], lines[0]


# ------------------------------------------------------------ the python API


def test_folder_reads_png_and_jpeg_with_sorted_class_names(folders, fmnist):
    logs: list[str] = []
    d = data.open_data(folders["grey"], val_split=0.1, seed=3, log=logs.append)
    assert list(d.class_names) == sorted(_class_dir(n) for n in fmnist.class_names)
    s = d.description.splits
    assert s["train"] + s["validation"] + s["test"] == N_IMAGES
    assert s["test"] == round(N_IMAGES * data.DEFAULT_TEST_SPLIT)
    assert d.input_shape == (28, 28, 1)
    # The PNG files are exact: the folder pipeline reproduces the in-memory preprocessing.
    png = sorted(folders["grey"].rglob("*.png"))[0]
    i = int(png.stem)
    pos = d.test_part.paths.index(str(png)) if str(png) in d.test_part.paths else None
    if pos is not None:
        x, _ = d.arrays("test")
        np.testing.assert_array_equal(x[pos], data.preprocess(fmnist.x_test[i]))
    # The same seed gives the same parts; another seed other parts.
    again = data.open_data(folders["grey"], val_split=0.1, seed=3, log=logs.append)
    assert again.test_part.paths == d.test_part.paths
    other = data.open_data(folders["grey"], val_split=0.1, seed=4, log=logs.append)
    assert other.test_part.paths != d.test_part.paths
    # No overlap between the parts.
    parts = [set(p.paths) for p in (d.train_part, d.val_part, d.test_part)]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])


def test_rgb_folder_resize_and_channels(folders):
    d = data.open_data(folders["rgb64"], image_size=(32, 32), log=lambda _: None)
    assert d.input_shape == (32, 32, 3)  # colour detected
    x, y = d.arrays("test", 8)
    assert x.shape == (8, 32, 32, 3) and x.dtype == np.float32
    assert x.min() >= -1.0 and x.max() <= 1.0
    grey = data.open_data(folders["rgb64"], channels=1, log=lambda _: None)
    assert grey.input_shape == (64, 64, 1)
    # Tinted classes differ in colour: the per-channel means are not all equal.
    assert np.abs(x[..., 0].mean() - x[..., 2].mean()) > 0.01


def test_one_preprocessing_function_for_pipeline_and_arrays(folders):
    """The tf.data pipeline and the numpy path are the same function (resize + normalise)."""
    d = data.open_data(folders["rgb64"], image_size=(40, 24), log=lambda _: None)
    raw = [data.decode_file(tf.constant(p)).numpy() for p in d.test_part.paths[:4]]
    via_arrays = data.preprocess_images(np.stack(raw), d.spec)
    via_pipeline, _ = d.arrays("test", 4)
    np.testing.assert_array_equal(via_arrays, via_pipeline)
    # And it is tf.image.resize (bilinear, half-pixel, no antialias) then x * scale + offset.
    ref = tf.image.resize(np.stack(raw).astype(np.float32), (40, 24), antialias=False)
    np.testing.assert_allclose(via_arrays, ref.numpy() / 127.5 - 1, atol=1e-6)


def test_npz_with_and_without_test_part(tmp_path, fmnist):
    path = tmp_path / "d.npz"
    np.savez(path, x_train=fmnist.x_train[:100, ..., 0], y_train=fmnist.y_train[:100])
    d = data.open_data(path, val_split=0.2, log=lambda _: None)
    assert d.description.kind == "npz" and d.input_shape == (28, 28, 1)
    assert d.description.splits == {"train": 64, "validation": 16, "test": 20}
    np.savez(
        path, x_train=fmnist.x_train[:100], y_train=fmnist.y_train[:100],
        x_test=fmnist.x_test[:30], y_test=fmnist.y_test[:30],
    )  # fmt: skip
    d = data.open_data(path, log=lambda _: None)
    assert d.description.splits["test"] == 30
    x, y = d.arrays("test")
    np.testing.assert_array_equal(x, data.preprocess(fmnist.x_test[:30]))


# ---------------------------------------------------- bad input (python + CLI)


def test_folder_without_class_subfolders(tmp_path, capsys):
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "a.png").write_bytes(
        tf.io.encode_png(np.zeros((8, 8, 1), np.uint8)).numpy()
    )
    code, _, err = run_cli(capsys, "train", "bnn_small", "--data", str(tmp_path / "flat"),
                           "--out", str(tmp_path / "run"))  # fmt: skip
    assert_one_line_error(code, err, "no class sub-folders")
    assert not (tmp_path / "run" / "model.keras").exists()


def test_class_without_images(tmp_path, capsys):
    root = tmp_path / "imgs"
    (root / "cat").mkdir(parents=True)
    (root / "dog").mkdir()
    (root / "cat" / "a.png").write_bytes(tf.io.encode_png(np.zeros((8, 8, 1), np.uint8)).numpy())
    (root / "dog" / "readme.txt").write_text("no images here")
    code, _, err = run_cli(
        capsys, "train", "bnn_small", "--data", str(root), "--out", str(tmp_path / "r")
    )
    assert_one_line_error(code, err, "dog has no readable images")


def test_corrupt_file_is_skipped_with_a_count(folders, tmp_path):
    import shutil

    root = tmp_path / "corrupt"
    shutil.copytree(folders["grey"], root)
    (root / "Bag" / "broken.png").write_bytes(b"this is not a PNG")
    (root / "Bag" / "notes.txt").write_text("not an image")
    logs: list[str] = []
    d = data.open_data(root, log=logs.append)
    assert any("skipped 1 file(s)" in m and "broken.png" in m for m in logs), logs
    assert any("ignored 1 file(s)" in m for m in logs), logs
    all_paths = d.train_part.paths + d.val_part.paths + d.test_part.paths
    assert not any(p.endswith("broken.png") for p in all_paths) and len(all_paths) == N_IMAGES
    d.arrays("test")  # decodes every kept file without error


def test_mixed_sizes_are_resized_and_said(tmp_path):
    root = tmp_path / "mixed"
    rng = np.random.default_rng(0)
    for cls, sizes in (("a", [(20, 20), (20, 20), (31, 17)]), ("b", [(20, 20), (40, 40)])):
        (root / cls).mkdir(parents=True)
        for i, (h, w) in enumerate(sizes):
            img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            (root / cls / f"{i}.png").write_bytes(tf.io.encode_png(img).numpy())
    logs: list[str] = []
    d = data.open_data(root, test_split=0.4, log=logs.append)
    assert any("3 different sizes" in m and "resized to 20×20" in m for m in logs), logs
    x, _ = d.arrays("train")
    assert x.shape[1:] == (20, 20, 3)


def test_npz_missing_keys_and_bad_labels(tmp_path, fmnist, capsys):
    bad = tmp_path / "bad.npz"
    np.savez(bad, images=fmnist.x_train[:10])
    code, _, err = run_cli(
        capsys, "train", "bnn_small", "--data", str(bad), "--out", str(tmp_path / "r")
    )
    assert_one_line_error(code, err, "no x_train, y_train")
    np.savez(bad, x_train=fmnist.x_train[:10], y_train=np.arange(10) - 1)
    code, _, err = run_cli(
        capsys, "train", "bnn_small", "--data", str(bad), "--out", str(tmp_path / "r")
    )
    assert_one_line_error(code, err, "labels -1..8, outside")
    labels = fmnist.y_test[:10].copy()
    labels[0] = 99  # y_test has a class x_train never shows
    np.savez(bad, x_train=fmnist.x_train[:10], y_train=fmnist.y_train[:10],
             x_test=fmnist.x_test[:10], y_test=labels)  # fmt: skip
    with pytest.raises(InvalidDataError):
        data.open_data(bad, log=lambda _: None)
    with pytest.raises(InvalidDataError, match="1-D array of integer"):
        np.savez(bad, x_train=fmnist.x_train[:10], y_train=np.zeros(10, np.float32))
        data.open_data(bad, log=lambda _: None)


def test_image_size_the_model_cannot_take(folders, tmp_path, capsys):
    code, _, err = run_cli(capsys, "train", "bnn_small", "--data", str(folders["grey"]),
                           "--image-size", "4", "4", "--out", str(tmp_path / "r"))  # fmt: skip
    assert_one_line_error(code, err, "at least 8×8", "--image-size 8 8")
    code, _, err = run_cli(capsys, "train", "recu_resnet18_imagenet", "--data", str(folders["grey"]),
                           "--out", str(tmp_path / "r2"))  # fmt: skip
    assert_one_line_error(code, err, "at least 32×32")
    with pytest.raises(ConfigError, match="takes images"):
        from bnn_tf import models as zoo

        zoo.build("bnn_small", input_shape=(64,))


def test_models_listing_says_what_each_accepts(capsys):
    code, out, _ = run_cli(capsys, "models", "--json")
    assert code == 0
    rows = {m["name"]: m for m in json.loads(out)["models"]}
    assert rows["bnn_small"]["accepts"] == {"min_size": 8, "channels": [1, 3]}
    assert rows["meliusnet22"]["accepts"]["min_size"] == 32
    code, out, _ = run_cli(capsys, "models")
    assert "≥8px, 1/3 ch" in out


@pytest.fixture()
def unwritable(tmp_path):
    """A folder nobody may write into (as root: a /proc entry; else a chmod 555 folder)."""
    if os.geteuid() == 0:
        yield Path("/proc/1")
        return
    d = tmp_path / "ro"
    d.mkdir()
    d.chmod(0o555)
    yield d
    d.chmod(0o755)


def _write_pil(path: Path, img: np.ndarray, fmt: str) -> None:
    # TensorFlow encodes neither BMP nor GIF; Pillow (a matplotlib dependency) does.
    from PIL import Image

    Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img).save(path, fmt)


def _all_parts(d: data.ImageData) -> dict[str, np.ndarray]:
    """file path → its pre-processed input, over the train, validation and test parts."""
    out: dict[str, np.ndarray] = {}
    for part, p in (("train", d.train_part), ("validation", d.val_part), ("test", d.test_part)):
        x, _ = d.arrays(part)
        out.update(zip(p.paths, x, strict=True))
    return out


def test_bmp_and_gif_files_are_read_like_png(tmp_path, fmnist):
    x, y = fmnist.x_test[:24], fmnist.y_test[:24]
    names = [f"c{k}" for k in range(10)]
    grey, rgb = tmp_path / "grey", tmp_path / "rgb"
    colour = tinted(x, y, 28)  # one tint per image: ≤ 256 colours, so GIF's palette is exact
    for i, label in enumerate(y):
        for root in (grey, rgb):
            (root / names[label]).mkdir(parents=True, exist_ok=True)
        fmt = ("BMP", "GIF", "PNG")[i % 3]
        _write_pil(grey / names[label] / f"{i}.{fmt.lower()}", x[i], fmt)
        _write_pil(rgb / names[label] / f"{i}.{fmt.lower()}", colour[i], fmt)
    assert len(list(grey.rglob("*.bmp"))) == len(list(grey.rglob("*.gif"))) == 8

    # GIF always decodes to RGB (it is counted as colour); the grey folder is read as grey.
    d = data.open_data(grey, channels=1, test_split=0.25, log=lambda _: None)
    got = _all_parts(d)
    assert len(got) == 24
    for path, inp in got.items():
        np.testing.assert_array_equal(inp, data.preprocess(x[int(Path(path).stem)]), path)
    # An 8-bit BMP decodes to one channel: a folder of grey BMPs is grey without --channels.
    for i in range(4):
        (tmp_path / "bmp" / names[i % 2]).mkdir(parents=True, exist_ok=True)
        _write_pil(tmp_path / "bmp" / names[i % 2] / f"{i}.bmp", x[i], "BMP")
    bmp = data.open_data(tmp_path / "bmp", test_split=0.25, log=lambda _: None)
    assert bmp.input_shape == (28, 28, 1)

    d = data.open_data(rgb, test_split=0.25, log=lambda _: None)
    assert d.input_shape == (28, 28, 3)
    spec = data.Preprocessing(28, 28, 3)
    for path, inp in _all_parts(d).items():
        expected = data.preprocess_images(colour[int(Path(path).stem)][None], spec)[0]
        np.testing.assert_array_equal(inp, expected, path)


@pytest.mark.parametrize("cut", ["png", "jpg", "bmp", "gif"])
def test_cut_short_file_with_a_valid_header_is_skipped(tmp_path, fmnist, cut):
    """A half-copied file has a valid header; its missing end gives it away at scan time."""
    root = tmp_path / "imgs"
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        for i in range(3):
            (root / cls / f"{i}.png").write_bytes(tf.io.encode_png(fmnist.x_test[i]).numpy())
    img = fmnist.x_test[5]
    whole = tmp_path / f"whole.{cut}"
    if cut == "png":
        whole.write_bytes(tf.io.encode_png(img).numpy())
    elif cut == "jpg":
        whole.write_bytes(tf.io.encode_jpeg(img, quality=95).numpy())
    else:
        _write_pil(whole, img, cut.upper())
    raw = whole.read_bytes()
    (root / "a" / f"cut.{cut}").write_bytes(raw[: len(raw) * 2 // 3])
    # Bytes after a complete image (phone "motion photos" append a video) are kept when
    # TensorFlow reads the file: it does for PNG, JPEG and GIF, not for BMP.
    (root / "b" / f"tail.{cut}").write_bytes(raw + b"\0" * 64)
    logs: list[str] = []
    d = data.open_data(root, test_split=0.25, log=logs.append)
    skipped = 2 if cut == "bmp" else 1
    assert any(f"skipped {skipped} file(s)" in m and f"cut.{cut}" in m for m in logs), logs
    kept = d.train_part.paths + d.val_part.paths + d.test_part.paths
    assert len(kept) == 8 - skipped
    assert any(p.endswith(f"tail.{cut}") for p in kept) == (cut != "bmp")
    _all_parts(d)  # every kept file decodes


def test_damage_inside_an_image_stops_training_with_the_file_named(fmnist, tmp_path, capsys):
    """A flipped byte inside a PNG's data passes the scan (its end is intact); decoding it
    fails in the pipeline, and the CLI then names the file instead of a traceback."""
    root = tmp_path / "imgs"
    for i in range(24):
        d = root / f"c{i % 2}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{i}.png").write_bytes(tf.io.encode_png(fmnist.x_test[i]).numpy())
    victim = root / "c1" / "damaged.png"
    raw = bytearray(tf.io.encode_png(fmnist.x_test[30]).numpy())
    raw[len(raw) // 2] ^= 0xFF  # inside the IDAT chunk: its CRC no longer matches
    victim.write_bytes(bytes(raw))
    assert str(victim) in data.scan_folder(root).paths
    assert data.undecodable(root) == [str(victim)]
    run = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", "bnn_small", "--data", str(root), "--epochs", "1",
                           "--batch-size", "8", "--val-split", "0.2", "--out", str(run))  # fmt: skip
    assert_one_line_error(code, err, "1 image file.s. cannot be decoded", "damaged.png")
    assert victim.read_bytes() == bytes(raw)


# ------------------------------------------------------ a grey run, end to end


def _capture(argv: list[str]) -> tuple[int, str, str]:
    """`cli.main` with its output captured (module fixtures cannot use capsys)."""
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(argv)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def grey_run(folders, fmnist, tmp_path_factory):
    """bnn_small trained 1 epoch by the CLI on (a limit of) the grey PNG/JPEG folder, which
    also holds two cut-short files, with a separate --test-data folder; then converted,
    verified on the run's own data and deployed, each into folders that do not exist yet."""
    import shutil

    root = tmp_path_factory.mktemp("grey-run")
    train_dir = root / "train"
    shutil.copytree(folders["grey"], train_dir)
    cut = {}
    for cls, ext in (("Bag", "png"), ("Coat", "jpg")):
        whole = sorted((train_dir / cls).glob(f"*.{ext}"))[0].read_bytes()
        cut[train_dir / cls / f"cut.{ext}"] = whole[: len(whole) // 2]
    for path, raw in cut.items():
        path.write_bytes(raw)
    # 6 test images per class, none of them in the training folder.
    rest = np.arange(N_IMAGES, len(fmnist.y_test))
    pick = np.concatenate([rest[fmnist.y_test[rest] == c][:6] for c in range(10)])
    test_dir = write_folder(root / "test", fmnist.x_test[pick], fmnist.y_test[pick],
                            fmnist.class_names)  # fmt: skip
    run = root / "runs" / "new" / "grey"
    tfl = root / "lite" / "a" / "model.tflite"
    bundle = root / "bundles" / "b" / "rpi"
    r = {"root": root, "train_dir": train_dir, "test_dir": test_dir, "cut": cut, "run": run,
         "tflite": tfl, "bundle": bundle, "test_pick": pick}  # fmt: skip
    r["train"] = _capture(["train", "bnn_small", "--data", str(train_dir), "--test-data",
                           str(test_dir), "--epochs", "1", "--limit-train", "200", "--batch-size",
                           "32", "--val-split", "0.2", "--out", str(run), "--json"])  # fmt: skip
    if r["train"][0] != 0:
        return r
    model = str(run / "model.keras")
    r["convert"] = _capture(["convert", model, "-o", str(tfl), "--json"])
    r["verify"] = _capture(["verify", model, str(tfl), "--json"])
    r["deploy"] = _capture(["deploy", model, "--target", "rpi", "-o", str(bundle), "--tflite",
                            str(tfl), "--samples", "3", "--json"])  # fmt: skip
    return r


def test_cut_short_images_are_skipped_and_training_proceeds(grey_run):
    code, _, err = grey_run["train"]
    assert code == 0, err
    assert "Traceback" not in err
    line = [m for m in err.splitlines() if "skipped" in m]
    assert len(line) == 1 and "skipped 2 file(s)" in line[0] and "cut.png" in line[0], err
    assert (grey_run["run"] / "model.keras").is_file()
    # The user's files are left as they were, and the scan leaves exactly them out.
    for path, raw in grey_run["cut"].items():
        assert path.read_bytes() == raw
    listed = data.scan_folder(grey_run["train_dir"])
    assert len(listed.paths) == N_IMAGES and not {str(p) for p in grey_run["cut"]} & set(
        listed.paths
    )


def test_test_data_is_used_for_the_final_report_only(grey_run):
    run, test_dir = grey_run["run"], grey_run["test_dir"]
    assert grey_run["train"][0] == 0, grey_run["train"][2]
    d = json.loads((run / "run.json").read_text())["data"]
    assert d["test_source"] == str(test_dir.resolve()) and d["test_split"] == 0
    # --limit-train 200 of the folder, 20 % of them validation; the 60 test images come
    # from the test folder only (no split of the training folder).
    assert d["splits"] == {"train": 160, "validation": 40, "test": 60}
    images = data.open_from_description(d)
    assert all(p.startswith(str(test_dir)) for p in images.test_part.paths)
    train_dir = str(grey_run["train_dir"].resolve())
    assert all(p.startswith(train_dir) for p in images.train_part.paths + images.val_part.paths)
    # The limit is a seeded sample of the folder, not its first classes.
    assert len(set(images.train_part.y.tolist())) == 10
    history = json.loads((run / "history.json").read_text())
    assert "val_accuracy" in history[0]
    summary = json.loads((run / "train_summary.json").read_text())
    assert summary["data"]["test"] == 60
    # The reported test accuracy is the model's on the test folder's images.
    model = converters.load_keras_model(run / "model.keras")
    x, y = images.arrays("test")
    accuracy = float((model.predict(x, verbose=0).argmax(-1) == y).mean())
    assert summary["test_accuracy"] == pytest.approx(accuracy, abs=1e-6)


def test_grey_folder_convert_verify_deploy(grey_run, fmnist):
    for step in ("train", "convert", "verify", "deploy"):
        code, _, err = grey_run[step]
        assert code == 0, (step, err)
    _, out, err = grey_run["verify"]
    doc = json.loads(out)
    assert "the run's own data" in err
    assert doc["num_images"] == 60 and doc["top1_agreement"] >= 0.95
    bundle = grey_run["bundle"]
    meta = json.loads((bundle / "metadata.json").read_text())
    inp = meta["input"]
    assert (inp["height"], inp["width"], inp["channels"]) == (28, 28, 1)
    expected = json.loads((bundle / "samples" / "expected.json").read_text())["samples"]
    assert len(expected) == 3
    for s in expected:
        raw = (bundle / s["file"]).read_bytes()
        assert s["file"].endswith(".pgm") and raw.startswith(b"P5\n28 28\n255\n")
        # Samples come from the test folder; a PNG one holds the Fashion-MNIST pixels exactly.
        source = Path(s["source_file"])
        assert source.is_relative_to(grey_run["test_dir"])
        if source.suffix == ".png":
            i = grey_run["test_pick"][int(source.stem)]
            pixels = np.frombuffer(raw[len(b"P5\n28 28\n255\n") :], np.uint8)
            np.testing.assert_array_equal(pixels.reshape(28, 28), fmnist.x_test[i, ..., 0])


def test_outputs_inside_missing_folders_are_created(grey_run):
    """train --out, convert -o and deploy -o each named a folder that did not exist."""
    assert grey_run["train"][0] == 0, grey_run["train"][2]
    assert (grey_run["run"] / "model.keras").is_file()
    assert grey_run["tflite"].is_file() and json.loads(grey_run["convert"][1])["output"] == str(
        grey_run["tflite"]
    )
    assert (grey_run["bundle"] / "metadata.json").is_file()


@pytest.mark.parametrize("command", ["train", "convert", "convert-portable", "deploy", "demo"])
def test_output_below_an_existing_file_is_refused(command, grey_run, tmp_path, capsys):
    """-o a/b where a is a file: one line before any work, and the file is left alone."""
    blocker = tmp_path / "notes.txt"
    blocker.write_text("keep me")
    model = str(grey_run["run"] / "model.keras")
    argv = {
        "train": ["train", "bnn_small", "--out", str(blocker / "run")],
        "demo": ["demo", "--out", str(blocker / "demo")],
        "convert": ["convert", model, "-o", str(blocker / "m.tflite")],
        "convert-portable": ["convert", model, "-o", str(tmp_path / "m.tflite"), "--portable",
                             "--portable-output", str(blocker / "sub" / "p.tflite")],
        "deploy": ["deploy", model, "--target", "rpi", "-o", str(blocker / "bundle")],
    }[command]  # fmt: skip
    code, _, err = run_cli(capsys, *argv)
    assert_one_line_error(code, err, "notes.txt is a file")
    assert blocker.read_text() == "keep me" and not (tmp_path / "m.tflite").exists()


# ------------------------------------------------------ the shared RGB run


@pytest.fixture(scope="module")
def rgb_run(folders, tmp_path_factory):
    """bnn_small trained 1 epoch by the CLI on the 32×32 RGB folder, converted and deployed."""
    root = tmp_path_factory.mktemp("rgb-run")
    run = root / "run"
    argv = ["train", "bnn_small", "--data", str(folders["rgb32"]), "--epochs", "1",
            "--batch-size", "32", "--val-split", "0.2", "--out", str(run), "--json"]  # fmt: skip
    assert cli.main(argv) == 0
    tfl = root / "new" / "sub" / "model.tflite"  # -o inside folders that do not exist yet
    assert cli.main(["convert", str(run / "model.keras"), "-o", str(tfl), "--json"]) == 0
    return {"root": root, "run": run, "tflite": tfl}


def test_run_records_its_data_and_logs_validation_not_test(rgb_run):
    run = rgb_run["run"]
    record = json.loads((run / "run.json").read_text())
    d = record["data"]
    assert d["kind"] == "folder" and d["preprocessing"]["channels"] == 3
    assert d["preprocessing"]["height"] == 32 and len(d["class_names"]) == 10
    assert d["splits"] == {"train": 192, "validation": 48, "test": 60}
    history = json.loads((run / "history.json").read_text())
    assert "val_accuracy" in history[0] and "val_loss" in history[0]
    summary = json.loads((run / "train_summary.json").read_text())
    assert summary["validation_accuracy"] == history[-1]["val_accuracy"]
    # The final test accuracy is on the 60 test images, which the training never evaluated.
    assert summary["data"]["test"] == 60 and 0 <= summary["test_accuracy"] <= 1


def test_verify_uses_the_runs_own_data(rgb_run, capsys):
    code, out, err = run_cli(capsys, "verify", str(rgb_run["run"] / "model.keras"),
                             str(rgb_run["tflite"]), "--json")  # fmt: skip
    assert code == 0, err
    doc = json.loads(out)
    assert doc["num_images"] == 60 and doc["top1_agreement"] >= 0.95
    assert "the run's own data" in err


@pytest.mark.slow  # a second (stock TFLite) conversion: ~30 s on an idle 2-core machine
def test_convert_portable_compares_on_the_runs_data(rgb_run, capsys):
    out_path = rgb_run["root"] / "p" / "m.tflite"
    code, out, err = run_cli(capsys, "convert", str(rgb_run["run"] / "model.keras"), "-o",
                             str(out_path), "--portable", "--json")  # fmt: skip
    assert code == 0, err
    doc = json.loads(out)
    assert doc["portable"]["num_images"] == 60
    assert doc["portable"]["portable_agreement"] >= 0.95


def test_deploy_writes_rgb_ppm_samples_of_the_runs_data(rgb_run, capsys):
    bundle = rgb_run["root"] / "bundle"
    code, out, err = run_cli(capsys, "deploy", str(rgb_run["run"] / "model.keras"), "--target",
                             "rpi", "-o", str(bundle), "--tflite", str(rgb_run["tflite"]),
                             "--samples", "4", "--json")  # fmt: skip
    assert code == 0, err
    meta = json.loads((bundle / "metadata.json").read_text())
    inp = meta["input"]
    assert (inp["height"], inp["width"], inp["channels"], inp["layout"]) == (32, 32, 3, "NHWC")
    assert inp["resize_method"] == "bilinear_half_pixel"
    assert inp["normalization"]["formula"] == "pixel * scale + offset"
    assert (
        meta["labels"]
        == json.loads((rgb_run["run"] / "run.json").read_text())["data"]["class_names"]
    )
    expected = json.loads((bundle / "samples" / "expected.json").read_text())
    assert len(expected["samples"]) == 4
    for s in expected["samples"]:
        raw = (bundle / s["file"]).read_bytes()
        assert s["file"].endswith(".ppm") and raw.startswith(b"P6\n32 32\n255\n") and "pgm" not in s
        pixels = np.frombuffer(raw[len(b"P6\n32 32\n255\n") :], np.uint8).reshape(1, 32, 32, 3)
        png = tf.io.decode_png((bundle / s["png"]).read_bytes()).numpy()
        np.testing.assert_array_equal(png, pixels[0])
        # The expected logits are the interpreter's on exactly these pixels.
        x = data.preprocess_images(pixels, data.Preprocessing(32, 32, 3))
        lite = converters.tflite_predict(bundle / "model.tflite", x)[0]
        np.testing.assert_allclose(s["logits"], lite, rtol=1e-5, atol=1e-5)
        # The samples are the run's own test images (the source file is recorded).
        assert s["source_file"].startswith(
            str(Path(json.loads((rgb_run["run"] / "run.json").read_text())["data"]["source"]))
        )


def test_data_whose_shape_does_not_match_the_model(rgb_run, capsys):
    code, _, err = run_cli(capsys, "verify", str(rgb_run["run"] / "model.keras"),
                           str(rgb_run["tflite"]), "--dataset", "fashion_mnist")  # fmt: skip
    assert_one_line_error(code, err, r"\(28, 28, 1\) but the model takes \(32, 32, 3\)")


def test_train_with_different_data_into_an_existing_run_is_refused(rgb_run, folders, capsys):
    before = (rgb_run["run"] / "model.keras").read_bytes()
    code, _, err = run_cli(capsys, "train", "bnn_small", "--data", str(folders["rgb64"]),
                           "--epochs", "1", "--batch-size", "32", "--val-split", "0.2",
                           "--out", str(rgb_run["run"]))  # fmt: skip
    assert_one_line_error(code, err, "different settings", "data")
    assert (rgb_run["run"] / "model.keras").read_bytes() == before


@pytest.mark.parametrize("command", ["train", "convert", "deploy", "demo"])
def test_output_is_an_existing_file(command, rgb_run, tmp_path, capsys):
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    model = str(rgb_run["run"] / "model.keras")
    argv = {
        "train": ["train", "bnn_small", "--out", str(target)],
        "demo": ["demo", "--out", str(target)],
        "convert": ["convert", model, "-o", str(target)],
        "deploy": ["deploy", model, "--target", "rpi", "-o", str(target)],
    }[command]
    code, _, err = run_cli(capsys, *argv)
    assert_one_line_error(code, err, "precious.txt")
    assert target.read_text() == "keep me"


@pytest.mark.parametrize("command", ["train", "convert", "deploy", "demo"])
def test_output_is_not_writable(command, rgb_run, unwritable, capsys):
    model = str(rgb_run["run"] / "model.keras")
    target = unwritable / "out"
    argv = {
        "train": ["train", "bnn_small", "--out", str(target)],
        "demo": ["demo", "--out", str(target)],
        "convert": ["convert", model, "-o", str(target / "m.tflite")],
        "deploy": ["deploy", model, "--target", "rpi", "-o", str(target)],
    }[command]
    code, _, err = run_cli(capsys, *argv)
    assert_one_line_error(code, err, "not writable|writable")


# ------------------------------------------------- non-image inputs


@pytest.fixture(scope="module")
def vector_model(tmp_path_factory):
    """A Dense model on 64-d vectors (no run.json: no data to compare on)."""
    root = tmp_path_factory.mktemp("vectors")
    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential(
        [tf.keras.layers.Dense(16, activation="relu", input_shape=(64,)), tf.keras.layers.Dense(4)]
    )
    model.save(root / "vec.keras")
    x = np.random.default_rng(0).normal(size=(40, 64)).astype(np.float32)
    np.savez(root / "vec.npz", x_train=x[:30], y_train=np.arange(30) % 4,
             x_test=x[30:], y_test=np.arange(10) % 4)  # fmt: skip
    return root


def test_vector_model_convert_inspect_bench_verify(vector_model, capsys):
    keras_file, npz, tfl = (vector_model / n for n in ("vec.keras", "vec.npz", "vec.tflite"))
    code, out, err = run_cli(
        capsys, "convert", str(keras_file), "-o", str(tfl), "--portable", "--json"
    )
    assert code == 0, err
    assert "comparison skipped" in err and json.loads(out)["portable"]["comparison"] is None
    assert converters.inspect(tfl.read_bytes()).input_shapes == [(1, 64)]
    code, out, err = run_cli(capsys, "bench", str(tfl), "--runs", "3", "--warmup", "1", "--json")
    assert code == 0, err
    # verify needs data: without it, one line; with a .npz of vectors, it compares.
    code, _, err = run_cli(capsys, "verify", str(keras_file), str(tfl))
    assert_one_line_error(code, err, "no data to compare on", r"\(64,\)")
    code, out, err = run_cli(
        capsys, "verify", str(keras_file), str(tfl), "--data", str(npz), "--json"
    )
    assert code == 0, err
    doc = json.loads(out)
    assert doc["num_images"] == 10 and doc["top1_agreement"] == 1.0


# ------------------------------------------------- any input shape


def _small_models() -> list[str]:
    """Every zoo model not tagged "large" (the generic zoo tests only build those once)."""
    from bnn_tf import models as zoo

    return [name for name in zoo.available() if "large" not in zoo.info(name).tags]


SMALL_MODELS = _small_models()
SHAPES = [(28, 28, 1), (32, 32, 3), (64, 64, 3), (96, 96, 3)]


def _accepts(name: str, shape: tuple[int, int, int]) -> bool:
    from bnn_tf import models as zoo

    accepts = zoo.info(name).accepts
    return min(shape[:2]) >= accepts["min_size"] and shape[2] in accepts["channels"]


def test_small_models_come_from_the_registry():
    # Guards the filter: a renamed tag must not quietly empty the slow test below.
    assert {"bnn_small", "recu_resnet20", "meliusnet_small", "quicknet_small_input"} <= set(
        SMALL_MODELS
    )
    assert "quicknet" not in SMALL_MODELS and len(SMALL_MODELS) >= 25


@pytest.mark.slow  # ~29 models × 4 shapes, each built and trained one step: minutes
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("name", SMALL_MODELS)
def test_small_models_build_and_train_at_any_size(name, shape):
    from bnn_tf import models as zoo
    from bnn_tf import training

    if not _accepts(name, shape):
        # What `bnn-tf models` says the model does not take, `build` refuses with the fix.
        with pytest.raises(ConfigError, match="Fix"):
            zoo.build(name, input_shape=shape, num_classes=5)
        return
    tf.keras.utils.set_random_seed(0)
    model = zoo.build(name, input_shape=shape, num_classes=5)
    assert model.input_shape == (None, *shape)
    training.compile_model(model)
    x = np.random.default_rng(0).uniform(-1, 1, (8, *shape)).astype(np.float32)
    loss = model.train_on_batch(x, np.arange(8) % 5)
    assert np.isfinite(loss).all()
    assert model.predict(x, verbose=0).shape == (8, 5)
    tf.keras.backend.clear_session()


@pytest.mark.parametrize("name", SMALL_MODELS)
def test_small_models_refuse_what_they_do_not_accept(name):
    """Cheap (refused before building): below the declared minimum size, and 2 channels."""
    from bnn_tf import models as zoo

    accepts = zoo.info(name).accepts
    lo = accepts["min_size"]
    with pytest.raises(ConfigError, match=f"at least {lo}×{lo}.*Fix: --image-size {lo} {lo}"):
        zoo.build(name, input_shape=(lo - 1, lo - 1, accepts["channels"][0]))
    assert 2 not in accepts["channels"]
    with pytest.raises(ConfigError, match="not 2. Fix: --channels"):
        zoo.build(name, input_shape=(lo, lo, 2))


def _large_models() -> list[str]:
    from bnn_tf import models as zoo

    return [name for name in zoo.available() if "large" in zoo.info(name).tags]


@pytest.mark.slow  # ~23 ImageNet-size graphs built once each
@pytest.mark.parametrize("name", _large_models())
def test_large_models_build_at_the_size_they_declare(name):
    """`accepts["min_size"]` is true: the model builds there (XNOR-Net's fc6 needed 217)."""
    from bnn_tf import models as zoo

    lo = zoo.info(name).accepts["min_size"]
    model = zoo.build(name, input_shape=(lo, lo, 3), num_classes=5)
    assert model.output_shape == (None, 5)
    tf.keras.backend.clear_session()


@pytest.mark.parametrize("name", ["bnn_small", "recu_resnet20", "meliusnet_small"])
def test_small_models_build_at_32x32_rgb(name):
    """The cheap default-run part of the test above (three families at 32×32×3)."""
    from bnn_tf import models as zoo

    model = zoo.build(name, input_shape=(32, 32, 3), num_classes=3)
    assert model.output_shape == (None, 3)
    tf.keras.backend.clear_session()
