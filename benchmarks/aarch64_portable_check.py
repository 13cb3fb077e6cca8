"""aarch64 check of the portable (stock-TFLite) model: the x86_64 half.

`benchmarks/aarch64_portable_check.sh` (as root) calls this twice around the
emulated run:

1. `prepare WORK`: get a trained model (`--model FILE.keras`, or train
   bnn_small briefly on real Fashion-MNIST), export it with
   `converters.convert_portable` (float, and int8 with `--int8`), run the
   `.tflite`s on x86_64 with stock TFLite (`tf.lite.Interpreter`), and write the
   models, the uint8 test images and the x86 outputs into WORK.
2. `_aarch64_run_tflite.py WORK` runs inside the arm64 Debian chroot under
   qemu-user with the aarch64 `ai-edge-litert` + numpy wheels from PyPI.
3. `compare WORK`: top-1 agreement and logit differences x86 vs aarch64,
   written to benchmarks/results/aarch64_portable_check.json + .png.

`local WORK` runs the three steps on this host without root or emulation
(the runner with ai-edge-litert if installed, else TensorFlow's TFLite): the
smoke test of the pipeline, not the aarch64 check; the record says so.

The goal: agreement ≥ 99.9 % on the float model.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import harness
import numpy as np

import bnn_tf  # noqa: F401  sets up tf_keras first
from bnn_tf import atomic, data

BENCHMARK = harness.Benchmark(
    name="aarch64_portable_check",
    description="portable (stock TFLite) model: x86_64 vs aarch64 (qemu) top-1 agreement",
    manual="sudo benchmarks/aarch64_portable_check.sh --int8",
    smoke_args=["local", "{tmp}/work", "--limit", "64", "--train-images", "256",
                "--train-epochs", "1", "--int8"],
)  # fmt: skip
NAME = BENCHMARK.name
RUNNER = Path(__file__).resolve().parent / "_aarch64_run_tflite.py"
GOAL_AGREEMENT = 0.999


def _portable(model, *, int8: bool, calib: np.ndarray | None) -> tuple[bytes, str]:
    try:
        from bnn_tf.converters.portable import convert_portable
    except ImportError:  # converters/portable.py not there: stock converter directly
        import tensorflow as tf

        if int8:
            raise SystemExit("int8 needs bnn_tf.converters.portable.convert_portable") from None
        return bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert()), (
            "tf.lite.TFLiteConverter.from_keras_model (portable.py missing)"
        )
    flat = convert_portable(model, int8=int8, representative_data=calib)
    return flat, f"bnn_tf.converters.portable.convert_portable(int8={int8})"


def prepare(args: argparse.Namespace) -> int:
    import tensorflow as tf

    from bnn_tf import converters
    from bnn_tf.converters.stock_runtime import stock_predict

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    splits = data.load("fashion_mnist", data_dir=args.data_dir)
    x_test, y_test = splits.x_test[: args.limit], splits.y_test[: args.limit]
    x_float = data.preprocess(x_test)
    model_info: dict = {}
    if args.model:
        model = converters.load_keras_model(args.model)
        model_info = {"source": str(args.model)}
    else:
        from bnn_tf import models as zoo
        from bnn_tf import training

        tf.keras.utils.set_random_seed(0)
        model = zoo.build("bnn_small")
        training.compile_model(model)
        n = args.train_images
        start = time.perf_counter()
        model.fit(
            data.preprocess(splits.x_train[:n]), splits.y_train[:n],
            epochs=args.train_epochs, batch_size=128, verbose=0,
        )  # fmt: skip
        model_info = {
            "source": f"bnn_small trained here: {args.train_epochs} epochs on {n} "
            f"Fashion-MNIST training images, seed 0 ({time.perf_counter() - start:.0f} s)",
        }
    keras_logits = model.predict(x_float, batch_size=256, verbose=0)
    model_info["keras_accuracy"] = float((keras_logits.argmax(-1) == y_test).mean())
    np.save(work / "keras.npy", keras_logits.astype(np.float32))

    variants = {"float": False, **({"int8": True} if args.int8 else {})}
    calib = data.preprocess(splits.x_train[:300])
    models = {}
    for name, int8 in variants.items():
        flat, how = _portable(model, int8=int8, calib=calib)
        report = converters.inspect(flat)
        assert not report.requires_lce and not report.custom_ops, report.custom_ops
        atomic.write_bytes(work / f"model_{name}.tflite", flat)
        start = time.perf_counter()
        ref = stock_predict(flat, x_float)
        seconds = time.perf_counter() - start
        np.save(work / f"x86_{name}.npy", ref)
        models[name] = {
            "file": f"model_{name}.tflite",
            "converter": how,
            "size_bytes": len(flat),
            "op_counts": report.op_counts,
            "x86_seconds": seconds,
        }
        print(f"{name}: {len(flat):,} bytes, x86 stock TFLite {seconds:.1f} s", flush=True)
    np.save(work / "images.npy", x_test)
    np.save(work / "labels.npy", y_test)
    atomic.write_json(
        work / "prepare.json",
        {
            "images": "images.npy",
            "labels": "labels.npy",
            "num_images": int(len(x_test)),
            "data_source": splits.source,
            "scale": data.NORMALIZATION["scale"],
            "offset": data.NORMALIZATION["offset"],
            "model": model_info,
            "models": models,
            "x86_runtime": f"tf.lite.Interpreter (TensorFlow {tf.__version__})",
        },
    )
    return 0


def _plot(record: harness.Recorder, result: dict, diffs: dict[str, np.ndarray]) -> None:
    fig, ax = harness.figure()
    for name, d in diffs.items():
        ax.hist(np.maximum(d, 1e-12), bins=np.logspace(-12, 1, 60), alpha=0.6, label=name)
    ax.set_xscale("log")
    ax.set_xlabel("max |logit difference| per image, x86_64 vs aarch64 (qemu)")
    ax.set_ylabel("images")
    ax.set_title(
        "portable model, "
        + ", ".join(
            f"{k}: top-1 agreement {v['top1_agreement']:.2%}" for k, v in result["models"].items()
        ),
        fontsize=9,
    )
    ax.legend()
    record.write_png(NAME, fig)


def compare(args: argparse.Namespace, record: harness.Recorder, prefix: str = "aarch64") -> int:
    work = Path(args.work)
    prep = json.loads((work / "prepare.json").read_text())
    run = json.loads((work / f"{prefix}_run.json").read_text())
    labels = np.load(work / prep["labels"])
    keras = np.load(work / "keras.npy")
    result: dict = {
        "command": args.command_line or record.command,
        "emulation": args.emulation,
        "aarch64": {k: v for k, v in run.items() if k != "models"},
        "x86_litert": (
            {
                k: v
                for k, v in json.loads((work / "x86litert_run.json").read_text()).items()
                if k != "models"
            }
            if (work / "x86litert_run.json").is_file()
            else None
        ),
        "x86_runtime": prep["x86_runtime"],
        "data_source": prep["data_source"],
        "num_images": prep["num_images"],
        "model": prep["model"],
        "goal": {"float_top1_agreement_min": GOAL_AGREEMENT},
        "models": {},
    }
    diffs = {}
    for name, info in prep["models"].items():
        x86 = np.load(work / f"x86_{name}.npy")
        arm = np.load(work / f"{prefix}_{name}.npy")
        per_image = np.abs(x86 - arm).max(axis=1)
        diffs[name] = per_image
        agree = x86.argmax(-1) == arm.argmax(-1)
        result["models"][name] = {
            "converter": info["converter"],
            "size_bytes": info["size_bytes"],
            "op_counts": info["op_counts"],
            "top1_agreement": float(agree.mean()),
            "disagreeing_images": [int(i) for i in np.flatnonzero(~agree)[:50]],
            "max_abs_logit_diff": float(per_image.max()),
            "mean_abs_logit_diff": float(np.abs(x86 - arm).mean()),
            "accuracy_x86": float((x86.argmax(-1) == labels).mean()),
            "accuracy_aarch64": float((arm.argmax(-1) == labels).mean()),
            "top1_agreement_with_keras_x86": float((x86.argmax(-1) == keras.argmax(-1)).mean()),
            "top1_agreement_with_keras_aarch64": float((arm.argmax(-1) == keras.argmax(-1)).mean()),
            "x86_seconds": info["x86_seconds"],
            "aarch64_qemu_seconds": run["models"][name]["seconds"],
        }
        # Same runtime (ai-edge-litert) natively on x86_64, if the driver ran it: tells a
        # platform difference from a TF-TFLite vs LiteRT version difference.
        native = work / f"x86litert_{name}.npy"
        if native.is_file():
            lite = np.load(native)
            result["models"][name]["x86_litert"] = {
                "top1_agreement_with_aarch64": float((lite.argmax(-1) == arm.argmax(-1)).mean()),
                "max_abs_logit_diff_vs_aarch64": float(np.abs(lite - arm).max()),
                "top1_agreement_with_x86_tf_lite": float(
                    (lite.argmax(-1) == x86.argmax(-1)).mean()
                ),
                "max_abs_logit_diff_vs_x86_tf_lite": float(np.abs(lite - x86).max()),
            }
    result["passed"] = result["models"]["float"]["top1_agreement"] >= GOAL_AGREEMENT
    record.write_json(NAME, result)
    _plot(record, result, diffs)
    for name, r in result["models"].items():
        print(
            f"{name}: top-1 agreement x86 vs aarch64 {r['top1_agreement']:.4%} on "
            f"{prep['num_images']} images, max |logit diff| {r['max_abs_logit_diff']:.3g}, "
            f"accuracy x86 {r['accuracy_x86']:.4f} / aarch64 {r['accuracy_aarch64']:.4f}"
        )
    for name, r in result["models"].items():
        if "x86_litert" in r:
            n = r["x86_litert"]
            print(
                f"{name}: ai-edge-litert on x86_64 vs aarch64: agreement "
                f"{n['top1_agreement_with_aarch64']:.4%}, max |diff| "
                f"{n['max_abs_logit_diff_vs_aarch64']:.3g}; vs TF's TFLite on x86_64: "
                f"{n['top1_agreement_with_x86_tf_lite']:.4%}"
            )
    print(
        f"goal (float agreement ≥ {GOAL_AGREEMENT:.1%}): {'PASS' if result['passed'] else 'FAIL'}"
    )
    return 0 if result["passed"] else 1


def local(args: argparse.Namespace, record: harness.Recorder) -> int:
    """prepare → the runner on this host → compare: the pipeline without root or qemu."""
    prepare(args)
    subprocess.run([sys.executable, str(RUNNER), str(args.work), "host"], check=True)
    args.command_line = None
    args.emulation = "none: `local` smoke run, the runner on this host (not aarch64)"
    return compare(args, record, prefix="host")


def _prepare_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("work")
    p.add_argument("--model", default=None, help="a trained .keras; default: train bnn_small here")
    # 2 000 images: ~0.2 CPU-s per float image under qemu keeps the run under ~15 min.
    p.add_argument("--limit", type=int, default=2_000, help="test images (default 2 000)")
    p.add_argument("--train-images", type=int, default=20_000)
    p.add_argument("--train-epochs", type=int, default=2)
    p.add_argument("--int8", action="store_true", help="also check the int8 portable model")
    p.add_argument("--data-dir", default=None)


def main(argv: list[str] | None = None) -> int:
    parser = harness.argument_parser(BENCHMARK, __doc__)
    sub = parser.add_subparsers(dest="step", required=True)
    _prepare_options(sub.add_parser("prepare"))
    _prepare_options(sub.add_parser("local"))
    c = sub.add_parser("compare")
    c.add_argument("work")
    c.add_argument("--command-line", default=None, help="the command that ran the whole check")
    c.add_argument("--emulation", default=None, help="qemu version and chroot mounts")
    args = parser.parse_args(argv)
    if args.step == "prepare":
        return prepare(args)
    record = harness.Recorder(BENCHMARK, argv, args.results_dir)
    return compare(args, record) if args.step == "compare" else local(args, record)


if __name__ == "__main__":
    sys.exit(main())
