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
import json
import os
import struct
from dataclasses import asdict, dataclass, field
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


# ----------------------------------------------------------------- own data
#
# `open_data(source, ...)` reads an image folder, a `.npz` or a built-in name and
# returns `ImageData`: pipelines for the train / validation / test parts and a
# `DataDescription` that run.json records and verify/convert/deploy read back.
# Every image goes through `preprocess_tensor` (channels → resize → normalise):
# training, verify, the bundle's samples and the bundle metadata all use it.

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
RESIZE_METHOD = (
    "bilinear"  # tf.image.resize(method="bilinear", antialias=False): half-pixel centres
)
RESIZE_DESCRIPTION = (
    "bilinear, half-pixel centres, no antialiasing (tf.image.resize(method='bilinear', "
    "antialias=False)); skipped when the image already has the input size"
)
GREY_FROM_RGB = "(299 R + 587 G + 114 B + 500) // 1000 (integers, BT.601)"
DEFAULT_TEST_SPLIT = 0.2


@dataclass(frozen=True)
class Preprocessing:
    """How raw pixels (uint8, any size, grey or RGB) become the model input.

    `channels` first (grey → RGB repeats the value; RGB → grey is
    `(299 R + 587 G + 114 B + 500) // 1000`), then a bilinear resize to
    `height × width` when the size differs, then `pixel * scale + offset`.
    `height`/`width` None: no resize (and no channel change): the arrays are
    used as they are (e.g. vectors, or data already pre-processed: scale 1, offset 0).
    """

    height: int | None
    width: int | None
    channels: int | None
    scale: float = NORMALIZATION["scale"]
    offset: float = NORMALIZATION["offset"]

    @property
    def is_image(self) -> bool:
        return self.height is not None

    def to_dict(self) -> dict:
        return {
            "height": self.height,
            "width": self.width,
            "channels": self.channels,
            "layout": "HWC" if self.is_image else None,
            "channel_conversion": {"grey_from_rgb": GREY_FROM_RGB, "rgb_from_grey": "R = G = B"},
            "resize": RESIZE_DESCRIPTION if self.is_image else None,
            "normalization": {
                "formula": "pixel * scale + offset",
                "scale": self.scale,
                "offset": self.offset,
                "pixel_range": [0, 255] if self.is_image else None,
            },
        }

    @classmethod
    def from_dict(cls, d: dict) -> Preprocessing:
        norm = d.get("normalization", {})
        return cls(
            height=d.get("height"),
            width=d.get("width"),
            channels=d.get("channels"),
            scale=float(norm.get("scale", NORMALIZATION["scale"])),
            offset=float(norm.get("offset", NORMALIZATION["offset"])),
        )


def _to_channels(img, channels: int):
    """uint8 HWC image with 1–4 channels (known or not) → `channels` (1 or 3)."""
    import tensorflow as tf

    c = tf.shape(img)[-1]
    # Grey (+alpha) → RGB by repetition; RGBA → RGB by dropping alpha.
    rgb = tf.cond(c >= 3, lambda: img[..., :3], lambda: tf.tile(img[..., :1], [1, 1, 3]))
    if channels == 3:
        return rgb
    v = tf.cast(rgb, tf.int32)
    # Integer BT.601 like the C++ runner and the Android core: grey → RGB → grey is exact.
    grey = (299 * v[..., 0] + 587 * v[..., 1] + 114 * v[..., 2] + 500) // 1000
    return tf.cast(grey, tf.uint8)[..., None]


def resize_pixels(img, spec: Preprocessing):
    """uint8 image (any size, 1–4 channels) → float32 pixels 0..255 at the input size."""
    import tensorflow as tf

    img = _to_channels(img, spec.channels)
    shape = tf.shape(img)
    x = tf.cast(img, tf.float32)
    same = tf.logical_and(tf.equal(shape[0], spec.height), tf.equal(shape[1], spec.width))
    x = tf.cond(
        same,
        lambda: x,
        lambda: tf.image.resize(
            x, (spec.height, spec.width), method=RESIZE_METHOD, antialias=False
        ),
    )
    return tf.ensure_shape(x, (spec.height, spec.width, spec.channels))


def preprocess_tensor(img, spec: Preprocessing):
    """THE pre-processing: uint8 image → channels → resize → `pixel * scale + offset` (float32)."""
    import tensorflow as tf

    if not spec.is_image:
        return tf.cast(img, tf.float32) * spec.scale + spec.offset
    return resize_pixels(img, spec) * spec.scale + spec.offset


def preprocess_images(images: np.ndarray, spec: Preprocessing) -> np.ndarray:
    """`preprocess_tensor` on a numpy batch (N, H, W[, C]) → float32 model inputs."""
    import tensorflow as tf

    x = np.asarray(images)
    if spec.is_image and x.ndim == 3:
        x = x[..., None]
    if len(x) == 0:
        shape = (spec.height, spec.width, spec.channels) if spec.is_image else x.shape[1:]
        return np.zeros((0, *shape), np.float32)
    fn = tf.function(lambda img: preprocess_tensor(img, spec))
    ds = tf.data.Dataset.from_tensor_slices(x).map(fn).batch(1024)
    return np.concatenate([b.numpy() for b in ds])


def sample_pixels(images: np.ndarray, spec: Preprocessing) -> np.ndarray:
    """uint8 images at the input size (rounded after the resize): what a bundle's sample files hold."""
    import tensorflow as tf

    x = np.asarray(images)
    if x.ndim == 3:
        x = x[..., None]
    out = [
        np.clip(np.round(resize_pixels(tf.constant(img), spec).numpy()), 0, 255).astype(np.uint8)
        for img in x
    ]
    return np.stack(out) if out else np.zeros((0, spec.height, spec.width, spec.channels), np.uint8)


# -- image files


def _image_info(path: Path) -> tuple[int, int, int] | None:
    """(height, width, channels) from the file header, or None when it is not an image we read
    or the file is cut short (`_intact`)."""
    try:
        with open(path, "rb") as f:
            head = f.read(32)
            info: tuple[int, int, int] | None = None
            if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR":
                w, h = struct.unpack(">II", head[16:24])
                colour = head[25]
                channels = {0: 1, 2: 3, 3: 3, 4: 1, 6: 3}.get(colour)
                info = (h, w, channels) if channels else None
            elif head[:6] in (b"GIF87a", b"GIF89a"):
                w, h = struct.unpack("<HH", head[6:10])
                info = h, w, 3
            elif head[:2] == b"BM" and len(head) >= 30:
                w, h = struct.unpack("<ii", head[18:26])
                (bits,) = struct.unpack("<H", head[28:30])
                # TensorFlow decodes an 8-bit BMP as one grey channel (its palette unread).
                info = abs(h), abs(w), 1 if bits == 8 else 3
            elif head[:3] == b"\xff\xd8\xff":
                info = _jpeg_info(f)
            if info is None or not _intact(f, head):
                return None
            return info
    except OSError:
        return None


_PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"


def _intact(f, head: bytes) -> bool:
    """Whether an image file looks complete: its format's end marker is where it belongs.

    A header check alone passes a half-copied or half-downloaded file, which then
    fails to decode in the middle of training. Reading the last bytes costs one
    seek per file (docs/data.md: +0.03 s per 10 000 files, where decoding them all
    took 2-3 s); only a file whose end looks wrong is decoded in full to decide, so
    a JPEG with data appended after its end (phone "motion photos") or a PNG with
    trailing bytes is kept when TensorFlow reads it.
    """
    size = f.seek(0, os.SEEK_END)
    if head[:2] == b"BM":
        # The header declares the file size. TensorFlow reads a BMP only when its size is
        # exactly what the header implies, so bytes after the image fail as a cut does.
        (declared,) = struct.unpack("<I", head[2:6])
        ends_well = size == declared
    else:
        f.seek(max(0, size - 12))
        tail = f.read(12)
        if head[:3] == b"GIF":
            ends_well = tail.endswith(b"\x3b")
        elif head[:4] == b"\x89PNG":
            ends_well = tail == _PNG_END
        else:
            ends_well = tail.endswith(b"\xff\xd9")
    if ends_well:
        return True
    f.seek(0)
    return _decodes(f.read())


def _decodes(raw: bytes) -> bool:
    """Whether TensorFlow's decoder (the one training uses) reads these bytes."""
    import tensorflow as tf

    try:
        tf.io.decode_image(raw, channels=0, expand_animations=False)
    except (tf.errors.InvalidArgumentError, tf.errors.UnknownError):
        return False
    return True


def _jpeg_info(f) -> tuple[int, int, int] | None:
    f.seek(2)
    while True:
        marker = f.read(2)
        if len(marker) < 2 or marker[0] != 0xFF:
            return None
        kind = marker[1]
        if kind in (0xD8, 0x01) or 0xD0 <= kind <= 0xD7:
            continue
        size = f.read(2)
        if len(size) < 2:
            return None
        (length,) = struct.unpack(">H", size)
        if 0xC0 <= kind <= 0xCF and kind not in (0xC4, 0xC8, 0xCC):
            seg = f.read(6)
            if len(seg) < 6:
                return None
            h, w = struct.unpack(">HH", seg[1:5])
            return h, w, (1 if seg[5] == 1 else 3)
        f.seek(length - 2, 1)


@dataclass
class _Part:
    """One split: either in-memory arrays (`x`) or image files (`paths`) with labels."""

    y: np.ndarray
    x: np.ndarray | None = None
    paths: list[str] | None = None

    def __len__(self) -> int:
        return len(self.y)

    def take(self, idx: np.ndarray) -> _Part:
        return _Part(
            y=self.y[idx],
            x=None if self.x is None else self.x[idx],
            paths=None if self.paths is None else [self.paths[i] for i in idx],
        )


@dataclass
class FolderScan:
    """What scanning an image folder found."""

    class_names: tuple[str, ...]
    paths: list[str]
    labels: np.ndarray
    sizes: dict[tuple[int, int], int]
    channels: set[int]
    skipped: list[str]  # files with an image extension but no readable header, or cut short
    ignored: int  # files without an image extension


def scan_folder(root: str | os.PathLike[str]) -> FolderScan:
    """List an image folder (one sub-folder per class, names sorted) and check its headers.

    Raises:
        InvalidDataError: no class sub-folders, or a class without images.
    """
    root = Path(root)
    if not root.is_dir():
        raise InvalidDataError(
            f"{root}: no such folder. Fix: pass an image folder, a .npz or {available()}."
        )
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise InvalidDataError(
            f"{root} has no class sub-folders. Fix: put the images of each class in its own "
            f"sub-folder ({root}/cat/*.png, {root}/dog/*.png, ...)."
        )
    paths: list[str] = []
    labels: list[int] = []
    sizes: dict[tuple[int, int], int] = {}
    channels: set[int] = set()
    skipped: list[str] = []
    ignored = 0
    for label, name in enumerate(classes):
        found = 0
        for p in sorted((root / name).rglob("*")):
            if not p.is_file():
                continue
            if p.suffix.lower() not in IMAGE_EXTENSIONS:
                ignored += 1
                continue
            info = _image_info(p)
            if info is None:
                skipped.append(str(p))
                continue
            h, w, c = info
            sizes[(h, w)] = sizes.get((h, w), 0) + 1
            channels.add(c)
            paths.append(str(p))
            labels.append(label)
            found += 1
        if not found:
            raise InvalidDataError(
                f"class folder {root / name} has no readable images "
                f"({', '.join(IMAGE_EXTENSIONS)}). Fix: add images or remove the folder."
            )
    return FolderScan(
        class_names=tuple(classes), paths=paths, labels=np.asarray(labels, np.int64),
        sizes=sizes, channels=channels, skipped=skipped, ignored=ignored,
    )  # fmt: skip


def undecodable(root: str | os.PathLike[str]) -> list[str]:
    """The image files of `root` (as `scan_folder` lists them) that TensorFlow's decoder refuses.

    Decodes every file (seconds per 10 000 small images), so it is for naming the
    files after a decode error, not for every scan: the scan checks headers and file
    ends only, and damage inside a file whose end is intact passes it.
    """
    return [p for p in scan_folder(root).paths if not _decodes(Path(p).read_bytes())]


def decode_file(path):
    """A file path (string tensor) → its decoded uint8 image (H, W, C) in the file's own channels."""
    import tensorflow as tf

    raw = tf.io.read_file(path)
    # channels=0 keeps the file's own channels; _to_channels converts them the shared way.
    return tf.io.decode_image(raw, channels=0, expand_animations=False)


# -- the description


@dataclass
class DataDescription:
    """What a run was trained on; `run.json` records it as `data`.

    Attributes:
        source: the folder / file path, or the built-in name.
        kind: "folder", "npz" or "builtin".
        name: short name (folder name, file stem or built-in name).
        class_names: one per output, in label order.
        preprocessing: `Preprocessing.to_dict()` (input size, channels, resize, normalisation).
        splits: image counts per part and where each came from.
        seed / val_split / test_split: how the parts were drawn.
        test_source: the separate test folder/file, if any.
    """

    source: str
    kind: str
    name: str
    class_names: list[str]
    preprocessing: dict
    splits: dict
    seed: int = 0
    val_split: float = 0.0
    test_split: float = 0.0
    test_source: str | None = None
    location: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> DataDescription:
        fields = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        return cls(**fields)

    @property
    def spec(self) -> Preprocessing:
        return Preprocessing.from_dict(self.preprocessing)


@dataclass
class ImageData:
    """Train / validation / test parts of one data source and their pipelines.

    Quacks like `Splits` where training code needs it (`name`, `source`,
    `class_names`, `num_classes`, `input_shape`).
    """

    description: DataDescription
    train_part: _Part
    val_part: _Part
    test_part: _Part
    notes: list[str] = field(default_factory=list)

    @property
    def spec(self) -> Preprocessing:
        return self.description.spec

    @property
    def name(self) -> str:
        return self.description.name

    @property
    def source(self) -> str:
        return self.description.location or self.description.source

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(self.description.class_names)

    @property
    def num_classes(self) -> int:
        return len(self.description.class_names)

    @property
    def input_shape(self) -> tuple[int, ...]:
        s = self.spec
        if s.is_image:
            return (s.height, s.width, s.channels)
        x = self.train_part.x if len(self.train_part) else self.test_part.x
        return tuple(x.shape[1:])

    def dataset(
        self,
        part: str,
        *,
        batch_size: int = 128,
        training: bool = False,
        augment: bool = False,
        seed: int | None = None,
        limit: int | None = None,
        cache: bool | None = None,
    ):
        """A `tf.data.Dataset` of (float32 input, int64 label) batches for part
        "train", "validation" or "test".

        Files are read, decoded and pre-processed in parallel (`AUTOTUNE`), with
        prefetching; nothing is cached by default for folders (memory stays flat in
        the number of images); `cache=True` keeps the decoded inputs in memory.
        """
        import tensorflow as tf

        p = {"train": self.train_part, "validation": self.val_part, "test": self.test_part}[part]
        if limit is not None:
            p = p.take(np.arange(min(limit, len(p))))
        spec = self.spec
        if p.paths is not None:
            # An explicit dtype: an empty part (e.g. no validation split) would be float32.
            ds = tf.data.Dataset.from_tensor_slices((tf.constant(p.paths, tf.string), p.y))
            if training:
                # Shuffling file names (not images) keeps the buffer cheap for any size.
                ds = ds.shuffle(len(p), seed=seed, reshuffle_each_iteration=True)

            def load(path, label):
                return preprocess_tensor(decode_file(path), spec), label

            ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=not training)
            if cache:
                ds = ds.cache()
        else:
            x = p.x
            if spec.is_image and x.ndim == 3:
                x = x[..., None]
            ds = tf.data.Dataset.from_tensor_slices((x, p.y))
            if training:
                ds = ds.shuffle(min(len(p), 60_000), seed=seed, reshuffle_each_iteration=True)
            ds = ds.map(
                lambda img, label: (preprocess_tensor(img, spec), label),
                num_parallel_calls=tf.data.AUTOTUNE,
            )
        if training and augment and spec.is_image:
            h, w, c = spec.height, spec.width, spec.channels
            background = spec.offset

            def jitter(img, label):
                img = tf.image.random_flip_left_right(img, seed=seed)
                img = tf.pad(img, [[2, 2], [2, 2], [0, 0]], constant_values=background)
                return tf.image.random_crop(img, (h, w, c), seed=seed), label

            ds = ds.map(jitter, num_parallel_calls=tf.data.AUTOTUNE)
        return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)

    def raw(self, part: str, count: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The first `count` images of a part as uint8 arrays at their own size, and labels.

        Files of different sizes are returned at the input size (rounded), so they stack.
        """
        import tensorflow as tf

        p = {"train": self.train_part, "validation": self.val_part, "test": self.test_part}[part]
        n = len(p) if count is None else min(count, len(p))
        if p.paths is None:
            x = p.x[:n]
            return (x[..., None] if self.spec.is_image and x.ndim == 3 else x), p.y[:n]
        imgs = [decode_file(tf.constant(path)).numpy() for path in p.paths[:n]]
        if len({i.shape for i in imgs}) > 1 or (imgs and imgs[0].shape[-1] != self.spec.channels):
            imgs = list(sample_pixels_list(imgs, self.spec))
        return (np.stack(imgs) if imgs else np.zeros((0, 1, 1, 1), np.uint8)), p.y[:n]

    def arrays(self, part: str, count: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Pre-processed float32 inputs and labels of a part (for verify and comparisons)."""
        p = {"train": self.train_part, "validation": self.val_part, "test": self.test_part}[part]
        n = len(p) if count is None else min(count, len(p))
        batches = [(x.numpy(), y.numpy()) for x, y in self.dataset(part, batch_size=256, limit=n)]
        if not batches:
            return np.zeros((0, *self.input_shape), np.float32), np.zeros((0,), np.int64)
        return np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches])


def sample_pixels_list(images: list[np.ndarray], spec: Preprocessing):
    import tensorflow as tf

    for img in images:
        px = resize_pixels(tf.constant(img), spec).numpy()
        yield np.clip(np.round(px), 0, 255).astype(np.uint8)


def _seeded_split(part: _Part, fraction: float, seed: int, salt: int) -> tuple[_Part, _Part]:
    """(kept, held out): a seeded random `fraction` of `part` held out."""
    if fraction <= 0:
        return part, part.take(np.arange(0))
    n_out = max(1, int(round(len(part) * fraction)))
    if n_out >= len(part):
        raise ConfigError(
            f"a split of {fraction:g} of {len(part)} images leaves an empty part. "
            "Fix: use more images or a split between 0 and 1 that keeps both parts non-empty."
        )
    order = np.random.default_rng([seed, salt]).permutation(len(part))
    return part.take(np.sort(order[n_out:])), part.take(np.sort(order[:n_out]))


def _check_labels(y: np.ndarray, num_classes: int, what: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise InvalidDataError(
            f"{what} must be a 1-D array of integer class indices (got {y.dtype} {y.shape}). "
            "Fix: store labels as integers 0..num_classes-1."
        )
    if len(y) and (y.min() < 0 or y.max() >= num_classes):
        raise InvalidDataError(
            f"{what} has labels {int(y.min())}..{int(y.max())}, outside 0..{num_classes - 1}. "
            "Fix: number the classes 0..N-1 (and give x_train every class)."
        )
    return y.astype(np.int64)


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except Exception as exc:  # noqa: BLE001  zip/pickle errors: the file is not a usable .npz
        raise InvalidDataError(
            f"{path} is not a readable .npz ({exc}). Fix: write it with numpy.savez."
        ) from None
    missing = [k for k in ("x_train", "y_train") if k not in arrays]
    if ("x_test" in arrays) != ("y_test" in arrays):
        missing.append("y_test" if "x_test" in arrays else "x_test")
    if missing:
        raise InvalidDataError(
            f"{path} has no {', '.join(missing)} (it has {', '.join(sorted(arrays)) or 'nothing'}). "
            "Fix: numpy.savez(path, x_train=..., y_train=..., [x_test=..., y_test=...])."
        )
    return arrays


def _npz_images(x: np.ndarray, what: str) -> np.ndarray:
    if x.dtype == np.uint8 and x.ndim in (3, 4):
        return x if x.ndim == 4 else x[..., None]
    if np.issubdtype(x.dtype, np.floating):
        return x.astype(np.float32)
    raise InvalidDataError(
        f"{what} has dtype {x.dtype} and shape {x.shape}. Fix: uint8 images (N, H, W) or "
        "(N, H, W, C), or float32 inputs that are already pre-processed."
    )


def _parse_size(image_size) -> tuple[int, int] | None:
    if image_size is None:
        return None
    h, w = (int(v) for v in image_size)
    if h < 1 or w < 1:
        raise ConfigError(f"image size must be positive (got {h}×{w}). Fix: --image-size H W.")
    return h, w


def open_data(
    source: str | os.PathLike[str] = "fashion_mnist",
    *,
    image_size: tuple[int, int] | None = None,
    channels: int | None = None,
    val_split: float = 0.0,
    test_data: str | os.PathLike[str] | None = None,
    test_split: float = DEFAULT_TEST_SPLIT,
    seed: int = 0,
    limit_train: int | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    splits: Splits | None = None,
    log=print,
) -> ImageData:
    """Open an image folder, a `.npz` or a built-in data set (`fashion_mnist`, `mnist`).

    Args:
        source: folder with one sub-folder per class (png/jpg/bmp/gif; class names
            are the sorted folder names), a `.npz` (`x_train`, `y_train`, optional
            `x_test`, `y_test`; uint8 images, or float inputs used as they are), or a
            built-in name.
        image_size: (H, W) to resize to; default: the images' size (the most common
            one when sizes differ; every other image is resized, and the log says so).
        channels: 1 (grey) or 3 (RGB); default: 3 if any image is in colour, else 1.
        val_split: fraction of the training images held out (seeded) as validation:
            what Keras logs as `val_*` during training.
        test_data: a separate test folder / `.npz` (same classes). Otherwise the
            source's own test part (built-in, `.npz` with `x_test`), else a seeded
            `test_split` of a folder.
        limit_train: use only the first N training images (before the validation split).
        splits: already loaded built-in arrays (tests; skips loading).

    Raises:
        InvalidDataError / ConfigError: with the problem and the fix in one line.
    """
    if channels not in (None, 1, 3):
        raise ConfigError(f"channels must be 1 or 3 (got {channels}). Fix: --channels 1|3.")
    if not 0 <= val_split < 1:
        raise ConfigError(
            f"val_split must be in [0, 1) (got {val_split}). Fix: e.g. --val-split 0.1."
        )
    size = _parse_size(image_size)
    notes: list[str] = []
    src = str(source)
    path = Path(src)
    test_source = str(test_data) if test_data is not None else None

    if splits is not None or src in DATASETS:
        splits = splits if splits is not None else load(src, data_dir=data_dir)
        kind, name, location = "builtin", splits.name, splits.source
        class_names = list(splits.class_names)
        train = _Part(y=splits.y_train, x=splits.x_train)
        test: _Part | None = _Part(y=splits.y_test, x=splits.x_test)
        native = (28, 28, 1)
        src = splits.name
    elif path.is_dir():
        scan = scan_folder(path)
        kind, name, location = "folder", path.name, str(path.resolve())
        class_names = list(scan.class_names)
        train = _Part(y=scan.labels, paths=scan.paths)
        test = None
        _report_scan(scan, path, notes)
        common = max(scan.sizes.items(), key=lambda kv: kv[1])[0]
        native = (*common, 3 if 3 in scan.channels else 1)
        if len(scan.sizes) > 1:
            target = size or common
            notes.append(
                f"images have {len(scan.sizes)} different sizes "
                f"({', '.join(f'{h}×{w}' for h, w in list(scan.sizes)[:4])}...); all are resized "
                f"to {target[0]}×{target[1]} (bilinear){'' if size else '; --image-size H W chooses another size'}"
            )
    elif path.is_file() and path.suffix == ".npz":
        arrays = _read_npz(path)
        kind, name, location = "npz", path.stem, str(path.resolve())
        x_train = _npz_images(arrays["x_train"], f"{path}: x_train")
        if len(x_train) != len(arrays["y_train"]):
            raise InvalidDataError(
                f"{path}: {len(x_train)} x_train images but {len(arrays['y_train'])} y_train labels. "
                "Fix: one label per image."
            )
        y_tr = np.asarray(arrays["y_train"])
        # The classes are what the training labels show; test labels must stay within them.
        integer = np.issubdtype(y_tr.dtype, np.integer) and len(y_tr)
        num = int(y_tr.max()) + 1 if integer else 1
        if "class_names" in arrays:
            class_names = [str(c) for c in arrays["class_names"]]
        else:
            class_names = [str(i) for i in range(num)]
        train = _Part(
            y=_check_labels(arrays["y_train"], len(class_names), f"{path}: y_train"), x=x_train
        )
        test = None
        if "x_test" in arrays:
            x_test = _npz_images(arrays["x_test"], f"{path}: x_test")
            if x_test.shape[1:] != x_train.shape[1:]:
                raise InvalidDataError(
                    f"{path}: x_test has shape {x_test.shape[1:]} per item but x_train {x_train.shape[1:]}. "
                    "Fix: store both at the same size."
                )
            test = _Part(
                y=_check_labels(arrays["y_test"], len(class_names), f"{path}: y_test"), x=x_test
            )
            if len(x_test) != len(test.y):
                raise InvalidDataError(
                    f"{path}: {len(x_test)} x_test items but {len(test.y)} y_test labels."
                )
        native = tuple(x_train.shape[1:]) if x_train.dtype == np.uint8 else None
    else:
        raise InvalidDataError(
            f"{src}: not an image folder, a .npz file or a built-in data set. Fix: pass a folder "
            f"with one sub-folder per class, a .npz with x_train/y_train, or one of {available()}."
        )

    if native is None:  # float inputs: used as they are
        if size is not None or channels is not None:
            raise ConfigError(
                f"{src} holds float inputs (already pre-processed); --image-size/--channels "
                "apply to uint8 images only. Fix: drop them, or store uint8 images."
            )
        spec = Preprocessing(None, None, None, scale=1.0, offset=0.0)
    else:
        h, w = size or native[:2]
        spec = Preprocessing(h, w, channels or native[2])
    if test_data is not None:
        tsrc = Path(test_data)
        if tsrc.is_dir():
            tscan = scan_folder(tsrc)
            if list(tscan.class_names) != class_names:
                raise InvalidDataError(
                    f"the test folder {tsrc} has classes {list(tscan.class_names)} but the training "
                    f"data {class_names}. Fix: use the same class sub-folders in both."
                )
            _report_scan(tscan, tsrc, notes)
            test = _Part(y=tscan.labels, paths=tscan.paths)
        elif tsrc.is_file() and tsrc.suffix == ".npz":
            tarr = _read_npz_test(tsrc)
            x = _npz_images(tarr[0], f"{tsrc}: x_test")
            test = _Part(y=_check_labels(tarr[1], len(class_names), f"{tsrc}: y_test"), x=x)
        else:
            raise InvalidDataError(
                f"{tsrc}: the test data must be an image folder or a .npz. Fix: --test-data PATH."
            )
        used_test_split = 0.0
    elif test is None:
        train, test = _seeded_split(train, test_split, seed, salt=1)
        used_test_split = test_split
        notes.append(
            f"test: a seeded {test_split:.0%} split of {src} ({len(test)} images), used only for the final report"
        )
    else:
        used_test_split = 0.0
    # After the test split, so a limited run is tested on the same images as a full one.
    if limit_train is not None and limit_train < len(train):
        if train.paths is not None:
            # A folder lists its files class by class: the first N would be the first classes only.
            keep = np.random.default_rng([seed, 3]).permutation(len(train))[:limit_train]
            train = train.take(np.sort(keep))
        else:
            train = train.take(np.arange(limit_train))
    train, val = _seeded_split(train, val_split, seed, salt=2)

    description = DataDescription(
        source=src if kind == "builtin" else location,
        kind=kind,
        name=name,
        class_names=class_names,
        preprocessing=spec.to_dict(),
        splits={"train": len(train), "validation": len(val), "test": len(test)},
        seed=seed,
        val_split=val_split,
        test_split=used_test_split,
        test_source=str(Path(test_source).resolve()) if test_source else None,
        location=location,
    )
    for note in notes:
        log(f"data: {note}")
    return ImageData(
        description=description, train_part=train, val_part=val, test_part=test, notes=notes
    )


def _read_npz_test(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with np.load(path, allow_pickle=False) as npz:
        keys = set(npz.files)
        for xk, yk in (("x_test", "y_test"), ("x_train", "y_train")):
            if {xk, yk} <= keys:
                return npz[xk], npz[yk]
    raise InvalidDataError(
        f"{path} has no x_test/y_test. Fix: numpy.savez(path, x_test=..., y_test=...)."
    )


def _report_scan(scan: FolderScan, root: Path, notes: list[str]) -> None:
    if scan.skipped:
        notes.append(
            f"skipped {len(scan.skipped)} file(s) in {root} that are not readable images or are "
            f"cut short (e.g. {scan.skipped[0]}); they are left out, the rest is used"
        )
    if scan.ignored:
        notes.append(f"ignored {scan.ignored} file(s) in {root} without an image extension")


def open_from_description(desc: dict | DataDescription, *, data_dir=None, log=print) -> ImageData:
    """Reopen the data a run recorded (`run.json` `data`), with the same splits."""
    d = desc if isinstance(desc, DataDescription) else DataDescription.from_dict(desc)
    spec = d.spec
    source = d.source
    if d.kind != "builtin" and not Path(source).exists():
        raise DataNotFoundError(
            f"the run's data {source} is gone. Fix: pass --data PATH (the same images), or restore it."
        )
    return open_data(
        source,
        image_size=(spec.height, spec.width) if spec.is_image else None,
        channels=spec.channels,
        val_split=d.val_split,
        test_data=d.test_source,
        test_split=d.test_split or DEFAULT_TEST_SPLIT,
        seed=d.seed,
        data_dir=data_dir,
        log=lambda _msg: None,
    )


RUN_FILE = "run.json"


def read_run_data(model_path: str | os.PathLike[str] | None) -> dict | None:
    """The data description `bnn-tf train` recorded in `run.json` next to a model file.

    Runs from before issue 15 recorded only a built-in name: `{"builtin": name}`.
    """
    if model_path is None:
        return None
    run_file = Path(model_path).parent / RUN_FILE
    if not run_file.is_file():
        return None
    try:
        record = json.loads(run_file.read_text())
    except (OSError, ValueError):
        return None
    if "data" in record:
        return record["data"]
    name = record.get("config", {}).get("dataset")
    return {"builtin": name} if name in DATASETS else None


def for_model(
    input_shape: tuple,
    *,
    data: str | os.PathLike[str] | None = None,
    dataset: str | None = None,
    model_path: str | os.PathLike[str] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    log=print,
) -> tuple[ImageData | None, str]:
    """The data to check a model on, and how it was chosen.

    In order: `data` (a folder is read at the model's input size and channels;
    arrays must already have the model's shape), `dataset` (a built-in name), the
    run's own data (`run.json` next to `model_path`), and for a 28×28×1 model
    without either, Fashion-MNIST (said in the returned note). Otherwise None: no
    data to compare on.

    Raises:
        InvalidDataError: the data's shape does not match the model.
    """
    shape = tuple(int(d) if d is not None else None for d in input_shape[1:])
    image_model = len(shape) == 3
    if data is not None or dataset is not None:
        src = str(data if data is not None else dataset)
        kw: dict = {}
        if image_model and Path(src).is_dir():
            kw = {"image_size": shape[:2], "channels": shape[2]}
        images = open_data(src, data_dir=data_dir, log=log, **kw)
        how = f"--data {src}" if data is not None else f"--dataset {src}"
    else:
        recorded = read_run_data(model_path)
        if recorded is not None and "builtin" in recorded:
            images = open_data(recorded["builtin"], data_dir=data_dir, log=log)
            how = f"the run's data ({recorded['builtin']}, run.json)"
        elif recorded is not None:
            images = open_from_description(recorded, data_dir=data_dir, log=log)
            how = f"the run's own data ({recorded['source']}, run.json)"
        elif shape == IMAGE_SHAPE:
            images = open_data("fashion_mnist", data_dir=data_dir, log=log)
            how = "fashion_mnist (no run.json next to the model and its input is 28×28×1; --data chooses)"
        else:
            return None, (
                f"no data to compare on: the model takes inputs of shape {shape} and has no run.json "
                "next to it"
            )
    if tuple(images.input_shape) != shape:
        raise InvalidDataError(
            f"the data ({how}) gives inputs of shape {tuple(images.input_shape)} but the model takes "
            f"{shape}. Fix: pass --data with the data the model was trained on."
        )
    return images, how
