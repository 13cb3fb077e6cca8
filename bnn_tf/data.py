"""Fashion-MNIST and MNIST as numpy arrays and `tf.data` pipelines.

Where the files come from, in order (the first that has all four files wins):

1. an explicit `data_dir=` argument, else the `BNN_TF_DATA_DIR` environment variable;
2. the Debian package folder (`apt-get install dataset-fashion-mnist` puts the
   IDX files under `/usr/share/datasets/fashion-mnist`);
3. the Keras cache (`~/.keras/datasets/...`, or `$KERAS_HOME/datasets`);
4. Keras' standard download into that cache (skipped with `download=False`
   or `BNN_TF_NO_DOWNLOAD=1`).

If all fail, `DataNotFoundError` lists every place tried and how to fix it.
Images are parsed from the IDX format here (gzip or raw), never fetched
from a hub at run time.
"""

from __future__ import annotations

import gzip
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bnn_tf.errors import ConfigError, DataNotFoundError, InvalidDataError

ENV_DATA_DIR = "BNN_TF_DATA_DIR"
ENV_NO_DOWNLOAD = "BNN_TF_NO_DOWNLOAD"

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
MNIST_CLASSES = tuple(str(i) for i in range(10))

_IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


@dataclass(frozen=True)
class DatasetSpec:
    """Where one data set can be found and how to describe it."""

    name: str
    class_names: tuple[str, ...]
    debian_dir: str | None
    debian_package: str | None
    keras_cache_subdir: str
    keras_loader: str  # attribute of tf.keras.datasets


DATASETS: dict[str, DatasetSpec] = {
    "fashion_mnist": DatasetSpec(
        name="fashion_mnist",
        class_names=FASHION_MNIST_CLASSES,
        debian_dir="/usr/share/datasets/fashion-mnist",
        debian_package="dataset-fashion-mnist",
        keras_cache_subdir="fashion-mnist",
        keras_loader="fashion_mnist",
    ),
    "mnist": DatasetSpec(
        name="mnist",
        class_names=MNIST_CLASSES,
        debian_dir=None,
        debian_package=None,
        keras_cache_subdir="",  # Keras caches MNIST as datasets/mnist.npz
        keras_loader="mnist",
    ),
}

# Fashion-MNIST and MNIST are 28×28 grey images with pixel values 0..255.
IMAGE_SHAPE = (28, 28, 1)


@dataclass
class Splits:
    """Train and test arrays (uint8 images NHWC, int64 labels) and their origin."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str
    name: str
    class_names: tuple[str, ...] = field(default_factory=tuple)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.x_train.shape[1:])  # type: ignore[return-value]


def available() -> list[str]:
    """Names accepted by `load`."""
    return sorted(DATASETS)


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Parse one IDX file (optionally gzip-compressed) into a numpy array.

    The IDX header is two zero bytes, a type code (0x08 = uint8), the number
    of dimensions, then one big-endian uint32 per dimension.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise InvalidDataError(f"{path} is not an IDX file (bad magic number).")
    dtype_code, ndim = raw[2], raw[3]
    if dtype_code != 0x08:
        raise InvalidDataError(
            f"{path}: IDX type 0x{dtype_code:02x} is not supported (only uint8)."
        )
    header_end = 4 + 4 * ndim
    shape = struct.unpack(f">{ndim}I", raw[4:header_end])
    data = np.frombuffer(raw, dtype=np.uint8, offset=header_end)
    if data.size != int(np.prod(shape)):
        raise InvalidDataError(f"{path}: expected {int(np.prod(shape))} values, found {data.size}.")
    return data.reshape(shape)


def _find_idx(directory: Path, stem: str) -> Path | None:
    for candidate in (directory / f"{stem}.gz", directory / stem):
        if candidate.is_file():
            return candidate
    return None


def _load_idx_dir(directory: Path) -> dict[str, np.ndarray] | None:
    paths = {key: _find_idx(directory, stem) for key, stem in _IDX_FILES.items()}
    if any(p is None for p in paths.values()):
        return None
    arrays = {key: read_idx(p) for key, p in paths.items()}  # type: ignore[arg-type]
    return arrays


def _load_npz(path: Path) -> dict[str, np.ndarray] | None:
    if not path.is_file():
        return None
    with np.load(path) as npz:
        return {key: npz[key] for key in _IDX_FILES}


def keras_cache_dir() -> Path:
    """Keras' download cache for data sets (`$KERAS_HOME/datasets` or `~/.keras/datasets`)."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "datasets"


def _try_dir(directory: Path) -> dict[str, np.ndarray] | None:
    arrays = _load_idx_dir(directory)
    if arrays is None:
        arrays = _load_npz(directory / "mnist.npz")
    return arrays


def load(
    name: str = "fashion_mnist",
    *,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool | None = None,
) -> Splits:
    """Load a data set as uint8 arrays, from the first source that has it.

    Args:
        name: `"fashion_mnist"` or `"mnist"`.
        data_dir: a folder holding the four IDX files (`.gz` or raw). When
            given, it is the only explicit place tried before the defaults.
        download: allow Keras' standard download as the last resort
            (default: yes unless `BNN_TF_NO_DOWNLOAD=1`).

    Returns:
        `Splits` with images shaped (N, 28, 28, 1) and `source` naming where
        they came from.

    Raises:
        DataNotFoundError: no source had the data; the message lists each
            place tried and what to do.
    """
    if name not in DATASETS:
        raise ConfigError(f"Unknown data set {name!r}; choose one of {available()}.")
    spec = DATASETS[name]
    if download is None:
        download = os.environ.get(ENV_NO_DOWNLOAD, "") not in ("1", "true", "yes")

    tried: list[str] = []
    candidates: list[tuple[str, Path]] = []
    explicit = data_dir if data_dir is not None else os.environ.get(ENV_DATA_DIR)
    if explicit:
        label = "data_dir argument" if data_dir is not None else f"${ENV_DATA_DIR}"
        candidates.append((label, Path(explicit)))
    if spec.debian_dir:
        candidates.append((f"Debian package {spec.debian_package}", Path(spec.debian_dir)))
    cache = keras_cache_dir() / spec.keras_cache_subdir
    candidates.append(("Keras cache", cache))

    for label, directory in candidates:
        arrays = _try_dir(directory)
        if arrays is not None:
            return _to_splits(arrays, spec, f"{label}: {directory}")
        tried.append(f"{label}: {directory} (no {name} IDX files there)")

    if download:
        try:
            import tensorflow as tf

            loader = getattr(tf.keras.datasets, spec.keras_loader)
            (x_train, y_train), (x_test, y_test) = loader.load_data()
        except Exception as exc:  # noqa: BLE001  any download failure means "not found"
            tried.append(f"Keras download: failed ({type(exc).__name__}: {exc})".strip())
        else:
            arrays = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
            return _to_splits(arrays, spec, "Keras download")
    else:
        tried.append("Keras download: skipped (download=False or BNN_TF_NO_DOWNLOAD=1)")

    fixes = [
        f"pass data_dir= (CLI: --data-dir) pointing at the four IDX files, or set ${ENV_DATA_DIR}"
    ]
    if spec.debian_package:
        fixes.append(f"on Debian/Ubuntu: `sudo apt-get install {spec.debian_package}`")
    fixes.append("or allow Keras' download (needs internet)")
    raise DataNotFoundError(
        f"Could not find the {name} data set. Tried:\n  - "
        + "\n  - ".join(tried)
        + "\nFix: "
        + "; ".join(fixes)
        + "."
    )


def _to_splits(arrays: dict[str, np.ndarray], spec: DatasetSpec, source: str) -> Splits:
    def images(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.uint8)
        return x.reshape((-1, *IMAGE_SHAPE))

    splits = Splits(
        x_train=images(arrays["x_train"]),
        y_train=np.asarray(arrays["y_train"], dtype=np.int64),
        x_test=images(arrays["x_test"]),
        y_test=np.asarray(arrays["y_test"], dtype=np.int64),
        source=source,
        name=spec.name,
        class_names=spec.class_names,
    )
    for split in ("train", "test"):
        x, y = getattr(splits, f"x_{split}"), getattr(splits, f"y_{split}")
        if len(x) != len(y):
            raise InvalidDataError(f"{source}: {len(x)} {split} images but {len(y)} labels.")
    return splits


# Pixels are mapped to [-1, 1]: symmetric around 0, which suits a sign().
NORMALIZATION = {"scale": 1 / 127.5, "offset": -1.0}


def preprocess(x: np.ndarray) -> np.ndarray:
    """uint8 images → float32 in [-1, 1] (`x / 127.5 - 1`), the models' input."""
    return x.astype(np.float32) * NORMALIZATION["scale"] + NORMALIZATION["offset"]


def make_dataset(
    x: np.ndarray,
    y: np.ndarray,
    *,
    batch_size: int = 128,
    training: bool = False,
    augment: bool = False,
    seed: int | None = None,
):
    """A `tf.data.Dataset` of (float32 image in [-1, 1], int label) batches.

    With `training=True` the data is shuffled every epoch; `augment=True`
    adds random horizontal flips and random shifts of up to 2 pixels
    (pad-and-crop), both cheap enough for a 2-core CPU.
    """
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if training:
        ds = ds.shuffle(min(len(x), 60_000), seed=seed, reshuffle_each_iteration=True)

    scale, offset = NORMALIZATION["scale"], NORMALIZATION["offset"]

    def to_float(img, label):
        return tf.cast(img, tf.float32) * scale + offset, label

    ds = ds.map(to_float, num_parallel_calls=tf.data.AUTOTUNE)
    if training and augment:
        height, width, channels = x.shape[1:]

        def jitter(img, label):
            img = tf.image.random_flip_left_right(img, seed=seed)
            # Pad with -1 (the background after normalisation), then crop back.
            img = tf.pad(img, [[2, 2], [2, 2], [0, 0]], constant_values=offset)
            img = tf.image.random_crop(img, (height, width, channels), seed=seed)
            return img, label

        ds = ds.map(jitter, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
