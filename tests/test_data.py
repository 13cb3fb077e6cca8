"""bnn_tf.data: IDX parsing, source order, clear errors, tf.data pipelines — on real files."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from bnn_tf import data
from bnn_tf.errors import ConfigError, DataNotFoundError, InvalidDataError


def write_idx(path, array: np.ndarray, *, compress: bool = True) -> None:
    """Write `array` (uint8) in the IDX format, the way the data set ships it."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    raw = header + array.astype(np.uint8).tobytes()
    if compress:
        with gzip.open(path, "wb") as f:
            f.write(raw)
    else:
        path.write_bytes(raw)


def write_slice(directory, fmnist, n_train=64, n_test=32, compress=True):
    """A small copy of real Fashion-MNIST in IDX files (like the Debian package)."""
    directory.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if compress else ""
    parts = {
        "train-images-idx3-ubyte": fmnist.x_train[:n_train, :, :, 0],
        "train-labels-idx1-ubyte": fmnist.y_train[:n_train],
        "t10k-images-idx3-ubyte": fmnist.x_test[:n_test, :, :, 0],
        "t10k-labels-idx1-ubyte": fmnist.y_test[:n_test],
    }
    for stem, arr in parts.items():
        write_idx(directory / f"{stem}{suffix}", arr, compress=compress)


@pytest.fixture()
def no_default_sources(monkeypatch, tmp_path):
    """Hide the Debian folder and the Keras cache; forbid downloads."""
    spec = data.DATASETS["fashion_mnist"]
    monkeypatch.setitem(
        data.DATASETS, "fashion_mnist",
        data.DatasetSpec(**{**spec.__dict__, "debian_dir": str(tmp_path / "no-debian")}),
    )  # fmt: skip
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "no-keras-home"))
    monkeypatch.delenv(data.ENV_DATA_DIR, raising=False)
    monkeypatch.setenv(data.ENV_NO_DOWNLOAD, "1")


def test_real_fashion_mnist_has_the_documented_shape(fmnist):
    assert fmnist.x_train.shape == (60_000, 28, 28, 1) and fmnist.x_train.dtype == np.uint8
    assert fmnist.x_test.shape == (10_000, 28, 28, 1)
    assert set(np.unique(fmnist.y_test)) == set(range(10))
    # Balanced classes: 1 000 test images each.
    assert np.bincount(fmnist.y_test).tolist() == [1000] * 10
    assert fmnist.num_classes == 10 and fmnist.class_names[9] == "Ankle boot"
    assert "/" in fmnist.source  # says where it came from


@pytest.mark.parametrize("compress", [True, False])
def test_explicit_dir_wins_and_round_trips(tmp_path, fmnist, no_default_sources, compress):
    write_slice(tmp_path / "fm", fmnist, compress=compress)
    splits = data.load("fashion_mnist", data_dir=tmp_path / "fm")
    assert splits.source.startswith("data_dir argument")
    np.testing.assert_array_equal(splits.x_train, fmnist.x_train[:64])
    np.testing.assert_array_equal(splits.y_test, fmnist.y_test[:32])


def test_env_var_is_tried_first(tmp_path, fmnist, no_default_sources, monkeypatch):
    write_slice(tmp_path / "env", fmnist)
    monkeypatch.setenv(data.ENV_DATA_DIR, str(tmp_path / "env"))
    assert data.load("fashion_mnist").source.startswith("$BNN_TF_DATA_DIR")


def test_keras_cache_is_used_after_debian(tmp_path, fmnist, no_default_sources):
    write_slice(tmp_path / "no-keras-home" / "datasets" / "fashion-mnist", fmnist)
    assert data.load("fashion_mnist").source.startswith("Keras cache")


def test_missing_data_error_lists_every_place_tried(tmp_path, no_default_sources):
    with pytest.raises(DataNotFoundError) as err:
        data.load("fashion_mnist", data_dir=tmp_path / "nowhere")
    message = str(err.value)
    for expected in ("nowhere", "no-debian", "Keras cache", "Keras download: skipped",
                     "apt-get install dataset-fashion-mnist"):  # fmt: skip
        assert expected in message


def test_corrupt_idx_file_is_named(tmp_path, fmnist, no_default_sources):
    write_slice(tmp_path / "bad", fmnist)
    (tmp_path / "bad" / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"\x01\x02garbage"))
    with pytest.raises(InvalidDataError, match="t10k-labels.*not an IDX file"):
        data.load("fashion_mnist", data_dir=tmp_path / "bad")


def test_truncated_idx_file_is_reported(tmp_path):
    path = tmp_path / "x-idx1-ubyte"
    path.write_bytes(bytes([0, 0, 8, 1]) + struct.pack(">I", 10) + b"\x00" * 3)
    with pytest.raises(InvalidDataError, match="expected 10 values, found 3"):
        data.read_idx(path)


def test_unknown_dataset_name():
    with pytest.raises(ConfigError, match="fashion_mnist"):
        data.load("cifar100")


def test_preprocess_maps_pixels_to_minus_one_one():
    x = np.array([[0, 255, 127]], dtype=np.uint8)
    np.testing.assert_allclose(data.preprocess(x), [[-1.0, 1.0, 127 / 127.5 - 1]], atol=1e-6)


def test_pipeline_batches_normalises_and_augments(fmnist):
    x, y = fmnist.x_train[:100], fmnist.y_train[:100]
    plain = next(iter(data.make_dataset(x, y, batch_size=32)))
    assert plain[0].shape == (32, 28, 28, 1)
    np.testing.assert_allclose(plain[0].numpy(), data.preprocess(x[:32]), atol=1e-6)
    np.testing.assert_array_equal(plain[1].numpy(), y[:32])

    aug = data.make_dataset(x, y, batch_size=100, training=True, augment=True, seed=3)
    images, labels = next(iter(aug))
    assert images.shape == (100, 28, 28, 1)
    assert float(images.numpy().min()) >= -1.0 and float(images.numpy().max()) <= 1.0
    # Shuffled and augmented: the same multiset of labels, but not the same pixels.
    assert sorted(labels.numpy().tolist()) == sorted(y.tolist())
    assert not np.allclose(np.sort(images.numpy().ravel()), np.sort(data.preprocess(x).ravel()))


def test_atomic_writes_replace_whole_files_with_normal_permissions(tmp_path):
    import os

    from bnn_tf import atomic

    path = tmp_path / "out" / "r.json"
    atomic.write_json(path, {"a": 1})
    old_mask = os.umask(0o022)
    try:
        atomic.write_text(path, "new")
    finally:
        os.umask(old_mask)
    assert path.read_text() == "new"
    assert oct(path.stat().st_mode & 0o777) == oct(0o644)
    with pytest.raises(RuntimeError), atomic.atomic_path(path) as tmp:
        tmp.write_text("half-written")
        raise RuntimeError("crash mid-write")
    assert path.read_text() == "new"  # the previous file is intact
    assert sorted(p.name for p in path.parent.iterdir()) == ["r.json"]  # no temp leftovers


# ------------------------------------------------------------ own data (issue 15)


def test_channel_conversion_is_the_integer_bt601_rule_and_exact_for_grey():
    import tensorflow as tf

    rgb = np.array([[[255, 0, 0], [10, 200, 30], [7, 7, 7]]], np.uint8)
    grey = data._to_channels(tf.constant(rgb), 1).numpy()[..., 0]
    assert grey.tolist() == [[76, (299 * 10 + 587 * 200 + 114 * 30 + 500) // 1000, 7]]
    g = np.arange(256, dtype=np.uint8).reshape(16, 16, 1)
    back = data._to_channels(data._to_channels(tf.constant(g), 3), 1).numpy()
    np.testing.assert_array_equal(back, g)  # grey → RGB → grey loses nothing


@pytest.mark.parametrize("shape", [(28, 28, 1), (17, 40, 3), (64, 64, 3)])
def test_preprocess_images_resizes_like_tf_image_resize(shape, rng):
    import tensorflow as tf

    x = rng.integers(0, 256, (3, 30, 30, 3), dtype=np.uint8)
    spec = data.Preprocessing(*shape)
    out = data.preprocess_images(x, spec)
    assert out.shape == (3, *shape) and out.dtype == np.float32
    src = x if shape[2] == 3 else data._to_channels(tf.constant(x[0]), 1).numpy()[None]
    ref = tf.image.resize(src.astype(np.float32), shape[:2], antialias=False).numpy() / 127.5 - 1
    np.testing.assert_allclose(out[: len(ref)], ref, atol=1e-6)
    # Round trip of the description that run.json and metadata.json carry.
    assert data.Preprocessing.from_dict(spec.to_dict()) == spec


def test_same_size_is_not_resampled(fmnist):
    spec = data.Preprocessing(28, 28, 1)
    np.testing.assert_array_equal(
        data.preprocess_images(fmnist.x_test[:4], spec), data.preprocess(fmnist.x_test[:4])
    )
    np.testing.assert_array_equal(data.sample_pixels(fmnist.x_test[:4], spec), fmnist.x_test[:4])


def test_unknown_source_and_bad_options(tmp_path):
    with pytest.raises(InvalidDataError, match="not an image folder, a .npz"):
        data.open_data(tmp_path / "nothing-here")
    with pytest.raises(ConfigError, match="channels must be 1 or 3"):
        data.open_data("fashion_mnist", channels=2)
    with pytest.raises(ConfigError, match="val_split"):
        data.open_data("fashion_mnist", val_split=1.5)
