"""`deploy`: a folder with everything needed to run a model on a Raspberry Pi or Android.

```python
from bnn_tf import converters
bundle = converters.deploy("runs/demo/model.keras", "bundle-rpi", target="rpi")
print(bundle.format())
```

A bundle holds:

- `model.tflite`: the LCE flatbuffer (`convert`, target `"arm"`), or a given one;
- `metadata.json`: input shape and normalisation (`x * scale + offset`, bnn-tf:
  `x / 127.5 - 1`), class names, output kind (logits), the runtime the model
  needs (LCE custom ops or stock TFLite) and the conversion report (`inspect`);
- `labels.txt`: one class name per line;
- `samples/`: a few test images of the run's own data at the model's input size
  (PGM for grey or binary PPM for RGB, plus PNG) with the x86 LCE interpreter's
  predictions, so the device output can be checked against them;
- for `rpi`: `runner/`, a CMake project (`bnn_runner`: TFLite + LCE op
  registration, reads a PGM/PPM image or a raw tensor, prints top-k and
  latency) and `README.md` with the exact steps on a Pi;
- for `android`: `README.md` on putting the bundle into `android_demo/`.

What runs where is listed honestly in docs/deploy.md: the C++ runner and the
Android app cannot be built here (no TFLite/LCE sources, no Android SDK).
"""

from __future__ import annotations

import hashlib
import os
import string
import struct
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata as importlib_metadata
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from bnn_tf import atomic, data
from bnn_tf.converters.conversion import convert, load_model
from bnn_tf.converters.inspection import OpReport, report_from
from bnn_tf.converters.lint import binary_conv_layers
from bnn_tf.converters.tflite_model import parse, read_bytes
from bnn_tf.errors import ConfigError

TARGETS = ("rpi", "android")
METADATA_FORMAT = "bnn-tf-deploy"
METADATA_VERSION = 1
MODEL_FILE = "model.tflite"
METADATA_FILE = "metadata.json"
LABELS_FILE = "labels.txt"
SAMPLES_DIR = "samples"
RUNNER_DIR = "runner"
# Files of the C++ runner copied from deploy_templates/rpi into the bundle.
RUNNER_FILES = (
    "CMakeLists.txt",
    "src/bnn_runner.cc",
    "src/classify.cc",
    "src/classify.h",
    "src/image_io.cc",
    "src/image_io.h",
    "src/selftest.cc",
)
# bnn-tf's data sets show light objects on a dark background.
DARK_BACKGROUND_DATASETS = frozenset({"fashion_mnist", "mnist"})


@dataclass
class DeployBundle:
    """What `deploy` wrote."""

    directory: Path
    target: str
    files: list[Path]
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "directory": str(self.directory),
            "target": self.target,
            "files": [str(p.relative_to(self.directory)) for p in self.files],
            "metadata": self.metadata,
        }

    def format(self) -> str:
        runtime = self.metadata["runtime"]
        conversion = self.metadata["conversion"]
        lines = [
            f"wrote a {self.target} bundle to {self.directory}:",
            *(f"  {p.relative_to(self.directory)}" for p in self.files),
            f"runtime: {runtime['name']}"
            + (
                f" (custom ops: {', '.join(runtime['custom_ops'])})"
                if runtime["custom_ops"]
                else ""
            ),
            f"binary convs (LceBconv2d): {conversion['binary_convs']} of "
            f"{conversion['expected_binary_convs']} binary conv layers; "
            f"float MAC ops: {conversion['float_mac_ops']}",
        ]
        samples = self.metadata.get("samples")
        if samples:
            lines.append(
                f"samples: {len(samples['files'])} test images with expected predictions in "
                f"{SAMPLES_DIR}/expected.json"
            )
        lines.append(f"next: see {self.directory / 'README.md'}")
        return "\n".join(lines)


def _template_root() -> Path:
    # The templates install as package data of bnn_tf.converters (pyproject.toml).
    return Path(str(resources.files("bnn_tf.converters") / "deploy_templates"))


def _version(dist: str) -> str | None:
    try:
        return importlib_metadata.version(dist)
    except importlib_metadata.PackageNotFoundError:
        return None


def _labels(
    num_classes: int, dataset: str | None, labels: list[str] | None, images=None
) -> list[str]:
    if labels is not None:
        names = [str(x) for x in labels]
        source = "the given labels"
    elif images is not None:
        names = list(images.class_names)
        source = f"the class names of {images.name}"
    elif dataset is not None:
        names = list(data.DATASETS[dataset].class_names)
        source = f"the {dataset} class names"
    else:
        return [str(i) for i in range(num_classes)]
    if len(names) != num_classes:
        raise ConfigError(
            f"The model has {num_classes} outputs but {source} list {len(names)} classes. "
            "Fix: pass --dataset matching the training data, or a --labels file with one "
            "class name per line."
        )
    if any(not n or "\n" in n for n in names):
        raise ConfigError("Class names must be non-empty single lines. Fix: check the labels file.")
    return names


def _png_grey(image: np.ndarray) -> bytes:
    """An 8-bit greyscale (H, W) or RGB (H, W, 3) PNG (no image library needed: zlib + CRCs)."""
    height, width = image.shape[:2]
    colour = 2 if image.ndim == 3 else 0

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (
            struct.pack(">I", len(payload))
            + kind
            + payload
            + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)
        )

    rows = b"".join(b"\x00" + image[y].astype(np.uint8).tobytes() for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )


def _pgm(image: np.ndarray) -> bytes:
    height, width = image.shape
    return f"P5\n{width} {height}\n255\n".encode() + image.astype(np.uint8).tobytes()


def _ppm(image: np.ndarray) -> bytes:
    """Binary PPM (P6): RGB, 8 bits per channel, rows top to bottom."""
    height, width, _ = image.shape
    return f"P6\n{width} {height}\n255\n".encode() + image.astype(np.uint8).tobytes()


def _spread_over_classes(labels: np.ndarray, count: int) -> np.ndarray:
    """Up to `count` indices taking the classes in turn (a folder's test part is sorted by class)."""
    by_class = [list(np.flatnonzero(labels == c)) for c in np.unique(labels)]
    picked: list[int] = []
    while len(picked) < count and any(by_class):
        for idx in by_class:
            if idx and len(picked) < count:
                picked.append(int(idx.pop(0)))
    return np.asarray(sorted(picked), dtype=np.int64)


def _write_samples(
    out: Path, flatbuffer: bytes, images: data.ImageData, count: int, labels: list[str]
) -> tuple[list[Path], dict[str, Any]]:
    """Write `count` test images of the run's data at the model's input size, with the
    x86 LCE interpreter's predictions on exactly those pixels."""
    from bnn_tf.converters.verification import tflite_predict

    spec = images.spec
    idx = _spread_over_classes(images.test_part.y, count)
    part = images.test_part.take(idx)
    if part.paths is not None:
        raw = [data.decode_file(tf.constant(p)).numpy() for p in part.paths]
        pixels = np.stack(list(data.sample_pixels_list(raw, spec))) if raw else None
    else:
        pixels = data.sample_pixels(part.x, spec) if len(part) else None
    if pixels is None:
        return [], {"files": [], "expected": None, "reference_runtime": None}
    # The sample files already have the input size: the device (and this) only normalises.
    logits = tflite_predict(flatbuffer, data.preprocess_images(pixels, spec))
    written: list[Path] = []
    records = []
    for i, (img, label, out_logits) in enumerate(zip(pixels, part.y, logits, strict=True)):
        stem = f"{i:02d}_{labels[int(label)].replace('/', '-').replace(' ', '_')}"
        grey = spec.channels == 1
        main = f"{stem}.pgm" if grey else f"{stem}.ppm"
        payload = _pgm(img[..., 0]) if grey else _ppm(img)
        written.append(atomic.write_bytes(out / SAMPLES_DIR / main, payload))
        png = _png_grey(img[..., 0] if grey else img)
        written.append(atomic.write_bytes(out / SAMPLES_DIR / f"{stem}.png", png))
        top = np.argsort(-out_logits, kind="stable")[:3]
        record = {
            "file": f"{SAMPLES_DIR}/{main}",
            "png": f"{SAMPLES_DIR}/{stem}.png",
            "channels": spec.channels,
            "test_index": int(idx[i]),
            "label": int(label),
            "label_name": labels[int(label)],
            "expected_top1": int(top[0]),
            "expected_top3": [int(k) for k in top],
            "logits": [float(v) for v in out_logits],
        }
        if grey:
            record["pgm"] = record["file"]  # older readers look for "pgm"
        if part.paths is not None:
            record["source_file"] = part.paths[i]
        records.append(record)
    expected = {
        "dataset": images.name,
        "data_source": images.source,
        "reference_runtime": "larq_compute_engine Python interpreter (x86_64)",
        "samples": records,
    }
    written.append(atomic.write_json(out / SAMPLES_DIR / "expected.json", expected))
    info = {
        "files": [r["file"] for r in records],
        "expected": f"{SAMPLES_DIR}/expected.json",
        "reference_runtime": expected["reference_runtime"],
    }
    return written, info


def build_metadata(
    model: tf.keras.Model,
    flatbuffer: bytes,
    *,
    target: str,
    labels: list[str],
    dataset: str | None,
    source: str | None,
    report: OpReport | None = None,
    preprocessing: data.Preprocessing | None = None,
) -> dict[str, Any]:
    """The `metadata.json` document for a converted model (see docs/deploy.md for the fields)."""
    report = report or report_from(parse(flatbuffer))
    input_shape = [1, *[int(d) for d in model.input_shape[1:]]]
    output_shape = [1, *[int(d) for d in model.output_shape[1:]]]
    requires_lce = report.requires_lce
    lce_version = _version("larq-compute-engine")
    runtime = {
        "requires_lce": requires_lce,
        "custom_ops": report.custom_ops,
        "name": "larq-compute-engine" if requires_lce else "tflite",
        "lce_version": lce_version,
        "note": (
            "Needs LCE's op resolver: on a Pi LCE's C++ library (runner/, built against the LCE "
            f"source tag v{lce_version}) or lce_benchmark_model; on Android LCE's lce-lite AAR."
            if requires_lce
            else "Stock TFLite runs it (no custom ops)."
        ),
    }
    spec = preprocessing or data.Preprocessing(input_shape[1], input_shape[2], input_shape[3])
    pre = spec.to_dict()
    return {
        "format": METADATA_FORMAT,
        "format_version": METADATA_VERSION,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "bnn_tf_version": _version("bnn-tf"),
        "target": target,
        "model": {
            "file": MODEL_FILE,
            "name": model.name,
            "source": source,
            "size_bytes": len(flatbuffer),
            "sha256": hashlib.sha256(flatbuffer).hexdigest(),
        },
        "input": {
            "shape": input_shape,
            "layout": "NHWC",
            "dtype": "float32",
            "height": input_shape[1],
            "width": input_shape[2],
            "channels": input_shape[3],
            "normalization": pre["normalization"],
            "resize": pre["resize"],
            "resize_method": "bilinear_half_pixel",
            "channel_conversion": pre["channel_conversion"],
            # Models trained on Fashion-MNIST/MNIST expect light objects on black.
            "background": "dark" if dataset in DARK_BACKGROUND_DATASETS else "unknown",
        },
        "output": {"shape": output_shape, "dtype": "float32", "kind": "logits"},
        "dataset": dataset,
        "labels": labels,
        "runtime": runtime,
        "conversion": {
            "converter": "larq_compute_engine.convert_keras_model",
            "converter_target": "arm",
            "expected_binary_convs": len(binary_conv_layers(model)),
            **report.to_dict(),
        },
    }


def _readme(target: str, meta: dict[str, Any]) -> str:
    template = (_template_root() / target / "README.md.in").read_text()
    norm = meta["input"]["normalization"]
    conversion = meta["conversion"]
    ops = ", ".join(f"{k} ×{v}" for k, v in sorted(conversion["op_counts"].items()))
    values = {
        "model_name": meta["model"]["name"],
        "input_shape": "×".join(str(d) for d in meta["input"]["shape"]),
        "scale": repr(norm["scale"]),
        "offset": repr(norm["offset"]),
        "num_classes": str(len(meta["labels"])),
        "runtime": meta["runtime"]["name"],
        "requires_lce": "yes" if meta["runtime"]["requires_lce"] else "no",
        "with_lce": "ON" if meta["runtime"]["requires_lce"] else "OFF",
        "lce_version": meta["runtime"]["lce_version"] or "0.16.0",
        "binary_convs": str(conversion["binary_convs"]),
        "ops": ops,
        "background": meta["input"]["background"],
    }
    return string.Template(template).substitute(values)


def deploy(
    model: tf.keras.Model | str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    target: str,
    tflite: bytes | str | os.PathLike[str] | None = None,
    dataset: str | None = None,
    labels: list[str] | None = None,
    samples: int = 8,
    data_dir: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    data_source: str | os.PathLike[str] | None = None,
    log=print,
) -> DeployBundle:
    """Write a deployment bundle for `target` (`"rpi"` or `"android"`) into `out_dir`.

    Args:
        model: the trained Keras model (object or `.keras` path).
        out_dir: the bundle folder (created; must be empty unless `overwrite`).
        target: `"rpi"` (adds the C++ runner) or `"android"`.
        tflite: an already converted `.tflite` of this model; default: convert now.
        dataset: a built-in training data set, for class names, input polarity and samples.
        data_source: the training data (image folder, `.npz` or built-in name) for
            class names, samples and pre-processing. Default for both: the run's own
            data (`run.json` next to a `.keras` path), else Fashion-MNIST for a
            28×28×1 model, else no samples (said in the log).
        labels: class names (overrides the data set's).
        samples: how many real test images to bundle with expected predictions
            (0: none).
        data_dir: where the data set's IDX files are (see `bnn_tf.data.load`).
        overwrite: allow writing into a non-empty folder (bundle files are replaced).

    Raises:
        ConfigError: unknown target/data set, label count ≠ model outputs, a
            `.tflite` whose shapes differ from the model, a non-empty `out_dir`.
    """
    if target not in TARGETS:
        raise ConfigError(f"Unknown deploy target {target!r}; choose one of {list(TARGETS)}.")
    if samples < 0:
        raise ConfigError(f"samples must be ≥ 0 (got {samples}).")
    source_path = None if isinstance(model, tf.keras.Model) else Path(model)
    if dataset is not None and dataset not in data.DATASETS:
        raise ConfigError(f"Unknown data set {dataset!r}; choose one of {data.available()}.")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} is a file. Fix: pass a folder for the bundle.")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise ConfigError(
            f"{out} is not empty. Fix: pass a new folder, or --overwrite to replace the bundle files."
        )

    keras_model = load_model(model)
    if len(keras_model.inputs) != 1 or len(keras_model.outputs) != 1:
        raise ConfigError("deploy supports models with one image input and one output.")
    if len(keras_model.input_shape) != 4:
        raise ConfigError(
            f"deploy expects an NHWC image input; the model's input shape is "
            f"{keras_model.input_shape}."
        )
    flatbuffer = convert(keras_model, target="arm") if tflite is None else read_bytes(tflite)
    report = report_from(parse(flatbuffer))
    want_in = (1, *keras_model.input_shape[1:])
    want_out = (1, *keras_model.output_shape[1:])
    if report.input_shapes[:1] != [want_in] or report.output_shapes[:1] != [want_out]:
        raise ConfigError(
            f"The .tflite has input {report.input_shapes} and output {report.output_shapes}, "
            f"the Keras model {want_in} → {want_out}. Fix: pass the .tflite converted from this "
            "model, or omit --tflite to convert now."
        )
    recorded = data.read_run_data(source_path) or {}
    builtin = dataset or recorded.get("builtin")
    if recorded.get("kind") == "builtin":
        builtin = builtin or recorded.get("source")
    if not samples and data_source is None and builtin in data.DATASETS:
        # No samples: a built-in data set's names and pre-processing need no loading.
        images, how = None, f"{builtin} (no samples asked for)"
    else:
        images, how = data.for_model(
            tuple(keras_model.input_shape), data=data_source, dataset=dataset,
            model_path=source_path, data_dir=data_dir, log=log,
        )  # fmt: skip
    if images is None and builtin in data.DATASETS:
        dataset = builtin
    elif images is None:
        log(f"deploy: {how}; the bundle gets no samples and numbered labels (--data adds them)")
    else:
        log(f"deploy: samples and class names from {how}")
    dataset_name = images.name if images is not None else dataset
    num_classes = int(keras_model.output_shape[-1])
    names = _labels(num_classes, dataset_name if images is None else None, labels, images)
    meta = build_metadata(
        keras_model,
        flatbuffer,
        target=target,
        labels=names,
        dataset=dataset_name,
        source=str(source_path) if source_path else None,
        report=report,
        preprocessing=images.spec if images is not None else None,
    )

    files = [atomic.write_bytes(out / MODEL_FILE, flatbuffer)]
    files.append(atomic.write_text(out / LABELS_FILE, "\n".join(names) + "\n"))
    if samples and images is not None:
        sample_files, meta["samples"] = _write_samples(out, flatbuffer, images, samples, names)
        files.extend(sample_files)
    if target == "rpi":
        root = _template_root() / "rpi"
        for rel in RUNNER_FILES:
            files.append(atomic.write_bytes(out / RUNNER_DIR / rel, (root / rel).read_bytes()))
    files.append(atomic.write_text(out / "README.md", _readme(target, meta)))
    # Metadata last: a bundle with metadata.json is a complete bundle.
    files.append(atomic.write_json(out / METADATA_FILE, meta))
    return DeployBundle(directory=out, target=target, files=files, metadata=meta)
