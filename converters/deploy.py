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
- `samples/`: a few real test images (PGM and PNG) with the x86 LCE
  interpreter's predictions, so the device output can be checked against them;
- for `rpi`: `runner/`, a CMake project (`bnn_runner`: TFLite + LCE op
  registration, reads a PGM/PPM image or a raw tensor, prints top-k and
  latency) and `README.md` with the exact steps on a Pi;
- for `android`: `README.md` on putting the bundle into `android_demo/`.

What runs where is listed honestly in docs/deploy.md: the C++ runner and the
Android app cannot be built here (no TFLite/LCE sources, no Android SDK).
"""

from __future__ import annotations

import hashlib
import json
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
from bnn_tf.converters.conversion import _as_model, convert
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


def _dataset_from_run(model_path: Path | None) -> str | None:
    """The data set recorded by `bnn-tf train` next to the model (run.json), if any."""
    if model_path is None:
        return None
    run_file = model_path.parent / "run.json"
    if not run_file.is_file():
        return None
    try:
        return json.loads(run_file.read_text()).get("config", {}).get("dataset")
    except (OSError, ValueError):
        return None


def _labels(num_classes: int, dataset: str | None, labels: list[str] | None) -> list[str]:
    if labels is not None:
        names = [str(x) for x in labels]
        source = "the given labels"
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
    """An 8-bit greyscale PNG (no image library needed: zlib + CRCs)."""
    height, width = image.shape

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (
            struct.pack(">I", len(payload))
            + kind
            + payload
            + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)
        )

    rows = b"".join(b"\x00" + image[y].astype(np.uint8).tobytes() for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )


def _pgm(image: np.ndarray) -> bytes:
    height, width = image.shape
    return f"P5\n{width} {height}\n255\n".encode() + image.astype(np.uint8).tobytes()


def _write_samples(
    out: Path,
    flatbuffer: bytes,
    dataset: str,
    count: int,
    labels: list[str],
    data_dir: str | os.PathLike[str] | None,
) -> tuple[list[Path], dict[str, Any]]:
    """Write `count` real test images and the x86 LCE interpreter's predictions on them."""
    from bnn_tf.converters.verification import tflite_predict

    splits = data.load(dataset, data_dir=data_dir)
    images, truth = splits.x_test[:count], splits.y_test[:count]
    logits = tflite_predict(flatbuffer, data.preprocess(images))
    written: list[Path] = []
    records = []
    for i, (img, label, out_logits) in enumerate(zip(images, truth, logits, strict=True)):
        grey = img[..., 0]
        stem = f"{i:02d}_{labels[int(label)].replace('/', '-').replace(' ', '_')}"
        for suffix, payload in ((".pgm", _pgm(grey)), (".png", _png_grey(grey))):
            written.append(atomic.write_bytes(out / SAMPLES_DIR / f"{stem}{suffix}", payload))
        top = np.argsort(-out_logits, kind="stable")[:3]
        records.append(
            {
                "pgm": f"{SAMPLES_DIR}/{stem}.pgm",
                "png": f"{SAMPLES_DIR}/{stem}.png",
                "test_index": i,
                "label": int(label),
                "label_name": labels[int(label)],
                "expected_top1": int(top[0]),
                "expected_top3": [int(k) for k in top],
                "logits": [float(v) for v in out_logits],
            }
        )
    expected = {
        "dataset": dataset,
        "data_source": splits.source,
        "reference_runtime": "larq_compute_engine Python interpreter (x86_64)",
        "samples": records,
    }
    written.append(atomic.write_json(out / SAMPLES_DIR / "expected.json", expected))
    info = {
        "files": [r["pgm"] for r in records],
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
    scale, offset = data.NORMALIZATION["scale"], data.NORMALIZATION["offset"]
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
            "normalization": {
                "formula": "pixel * scale + offset",
                "scale": scale,
                "offset": offset,
                "pixel_range": [0, 255],
            },
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
) -> DeployBundle:
    """Write a deployment bundle for `target` (`"rpi"` or `"android"`) into `out_dir`.

    Args:
        model: the trained Keras model (object or `.keras` path).
        out_dir: the bundle folder (created; must be empty unless `overwrite`).
        target: `"rpi"` (adds the C++ runner) or `"android"`.
        tflite: an already converted `.tflite` of this model; default: convert now.
        dataset: the training data set, for class names, input polarity and samples;
            default: the one in `run.json` next to a `.keras` path, else Fashion-MNIST.
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
    if dataset is None:
        dataset = _dataset_from_run(source_path) or "fashion_mnist"
    if dataset not in data.DATASETS:
        raise ConfigError(f"Unknown data set {dataset!r}; choose one of {data.available()}.")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} is a file. Fix: pass a folder for the bundle.")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise ConfigError(
            f"{out} is not empty. Fix: pass a new folder, or --overwrite to replace the bundle files."
        )

    keras_model = _as_model(model)
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
    num_classes = int(keras_model.output_shape[-1])
    names = _labels(num_classes, dataset if labels is None else None, labels)
    meta = build_metadata(
        keras_model,
        flatbuffer,
        target=target,
        labels=names,
        dataset=dataset,
        source=str(source_path) if source_path else None,
        report=report,
    )

    files = [atomic.write_bytes(out / MODEL_FILE, flatbuffer)]
    files.append(atomic.write_text(out / LABELS_FILE, "\n".join(names) + "\n"))
    if samples:
        if tuple(keras_model.input_shape[1:]) != data.IMAGE_SHAPE:
            raise ConfigError(
                f"Samples come from {dataset} (28×28×1) but the model takes "
                f"{keras_model.input_shape[1:]}. Fix: pass samples=0 (CLI: --samples 0)."
            )
        sample_files, meta["samples"] = _write_samples(
            out, flatbuffer, dataset, samples, names, data_dir
        )
        files.extend(sample_files)
    if target == "rpi":
        root = _template_root() / "rpi"
        for rel in RUNNER_FILES:
            files.append(atomic.write_bytes(out / RUNNER_DIR / rel, (root / rel).read_bytes()))
    files.append(atomic.write_text(out / "README.md", _readme(target, meta)))
    # Metadata last: a bundle with metadata.json is a complete bundle.
    files.append(atomic.write_json(out / METADATA_FILE, meta))
    return DeployBundle(directory=out, target=target, files=files, metadata=meta)
