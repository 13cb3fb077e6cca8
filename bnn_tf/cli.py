"""`bnn-tf`: train, convert, verify and benchmark binarized networks.

Human-readable output by default; `--json` prints one JSON document instead.
Bad input exits with status 2 and a one-line error that names the fix.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

DEFAULT_EPOCHS = 8


def _quiet_tensorflow() -> None:
    # TensorFlow's C++ start-up chatter (CPU features, CUDA probing) drowns the
    # CLI's own output; users can still raise it by setting the variable.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


class Output:
    """Prints human text, or collects one JSON document when `--json` is set."""

    def __init__(self, as_json: bool):
        self.as_json = as_json

    def say(self, text: str = "") -> None:
        # With --json, human progress goes to stderr so stdout stays parseable.
        print(text, file=sys.stderr if self.as_json else sys.stdout, flush=True)

    def result(self, obj: dict, human: str) -> None:
        if self.as_json:
            print(json.dumps(obj, indent=2))
        else:
            print(human, flush=True)


# ----------------------------------------------------------------- commands


def cmd_models(args: argparse.Namespace, out: Output) -> int:
    from bnn_tf import models as zoo

    rows = [zoo.info(name) for name in zoo.available()]
    obj = {
        "models": [
            {
                "name": m.name,
                "family": m.family,
                "description": m.description,
                "lce_binary_kernels": m.lce_binary,
                "default_input_shape": list(m.default_input_shape),
                "float_twin": m.float_twin,
            }
            for m in rows
        ]
    }
    width = max(len(m.name) for m in rows)
    lines = [f"{'model':<{width}}  LCE binary  input        description"]
    for m in rows:
        shape = "×".join(map(str, m.default_input_shape))
        lines.append(
            f"{m.name:<{width}}  {'yes' if m.lce_binary else 'no':<10}  {shape:<11}  {m.description}"
        )
    out.result(obj, "\n".join(lines))
    return 0


def _json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(
            f"not valid JSON ({e}); example: '{{\"width_multiplier\": 2}}'"
        ) from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(
            f"must be a JSON object like '{{\"stem_strides\": 2}}' (got {text!r})"
        )
    return value


def _train_config(args: argparse.Namespace):
    from bnn_tf.training import TrainConfig

    return TrainConfig(
        model=args.model,
        dataset=args.dataset,
        epochs=args.epochs,
        batch_size=args.batch_size,
        limit_train=args.limit_train,
        augment=args.augment,
        seed=args.seed,
        bop_threshold=args.bop_threshold,
        bop_gamma=args.bop_gamma,
        learning_rate=args.learning_rate,
        optimizer=args.optimizer,
        recipe=args.recipe,
        model_kwargs=args.model_kwargs,
        bop_gamma_schedule=args.bop_gamma_schedule,
        jit_compile=args.jit_compile,
    )


def cmd_train(args: argparse.Namespace, out: Output) -> int:
    from bnn_tf import training

    config = _train_config(args)
    verbose: Any = 0 if args.json else "auto"
    summary = training.train(config, args.out, data_dir=args.data_dir, verbose=verbose, log=out.say)
    human = (
        f"test accuracy: {summary['test_accuracy']:.4f} after {summary['epochs']} epochs "
        f"({summary['seconds_total']:.0f} s of training)\n"
        f"wrote {summary['files']['model']}, {summary['files']['history']}, {summary['files']['curves']}"
    )
    out.result(summary, human)
    return 0


def cmd_convert(args: argparse.Namespace, out: Output) -> int:
    from bnn_tf import converters
    from bnn_tf.errors import ConfigError

    if args.int8 and not args.portable:
        raise ConfigError("--int8 applies to the portable model. Fix: add --portable.")
    original = converters.load_keras_model(args.model_file)
    # Binary QuantDense → 1×1 binary conv (identical outputs) so it runs on LceBconv2d.
    model = original if args.no_dense_rewrite else converters.rewrite_binary_dense(original)
    split = not args.keep_groups
    result = converters.convert_to_file(model, args.output, target=args.target, split_groups=split)
    flatbuffer = result.path.read_bytes()
    ops = converters.inspect(flatbuffer)
    report = converters.conversion_report(model, flatbuffer, target=args.target, split_groups=split)
    expected = converters.binary_conv_layers(model)
    obj = {
        "output": str(result.path),
        "expected_binary_convs": len(expected),
        **ops.to_dict(),
        "report": report.to_dict(),
    }
    human = f"wrote {result.path}\n{report.format()}"
    if args.portable:
        portable = _convert_portable(args, original, flatbuffer, out)
        obj["portable"] = portable
        human += (
            f"\n\nwrote {portable['output']} (stock TFLite, no custom ops)\n{portable['table']}"
        )
    out.result(obj, human)
    if args.strict and report.fallbacks:
        names = ", ".join(f"{row.name} ({row.layer_type})" for row in report.fallbacks)
        out.say(
            f"error: {len(report.fallbacks)} quantized layer(s) fell back to float (--strict): {names}. "
            "The report says why and how to fix each (docs/conversion.md)."
        )
        return 1
    if args.strict and not report.kernels:
        blockers = "; ".join(
            f"{kernel}: {', '.join(names)}" for kernel, names in report.kernel_blockers.items()
        )
        out.say(
            f"error: no single LCE kernel runs this model correctly (--strict); layers each kernel "
            f"cannot run: {blockers}. The report says why (docs/lce.md)."
        )
        return 1
    return 0


def _convert_portable(args: argparse.Namespace, model, lce_flatbuffer: bytes, out: Output) -> dict:
    from bnn_tf import atomic, converters, data
    from bnn_tf.converters.portable import compare_portable

    splits = data.load(args.dataset, data_dir=args.data_dir)
    calibration = data.preprocess(splits.x_train[:300]) if args.int8 else None
    flatbuffer = converters.convert_portable(model, int8=args.int8, representative_data=calibration)
    default = Path(args.output).with_suffix(".int8.tflite" if args.int8 else ".portable.tflite")
    path = atomic.write_bytes(args.portable_output or default, flatbuffer)
    x, y = splits.x_test, splits.y_test
    if args.limit is not None:
        x, y = x[: args.limit], y[: args.limit]
    out.say(f"comparing LCE and portable models on {len(x)} {splits.name} test images")
    comparison = compare_portable(
        model, lce_flatbuffer, flatbuffer, data.preprocess(x), y, int8=args.int8
    )
    if comparison.portable_accuracy < comparison.keras_accuracy - 0.01:
        out.say(
            f"warning: the portable model loses {comparison.keras_accuracy - comparison.portable_accuracy:.1%} "
            "accuracy against Keras; ship the float portable model (drop --int8) or the LCE model."
        )
    return {"output": str(path), **comparison.to_dict(), "table": comparison.format()}


def _load_test_images(args: argparse.Namespace):
    from bnn_tf import data
    from bnn_tf.errors import ConfigError

    splits = data.load(args.dataset, data_dir=args.data_dir)
    x, y = splits.x_test, splits.y_test
    if args.limit is not None:
        if args.limit < 1:
            raise ConfigError(f"--limit must be ≥ 1 (got {args.limit}).")
        x, y = x[: args.limit], y[: args.limit]
    return data.preprocess(x), y, splits


def cmd_verify(args: argparse.Namespace, out: Output) -> int:
    from bnn_tf import converters

    model = converters.load_keras_model(args.model_file)
    converters.parse(args.tflite_file)  # fail fast on a bad .tflite, before loading data
    x, y, splits = _load_test_images(args)
    out.say(f"data: {len(x)} {splits.name} test images from {splits.source}")
    result = converters.verify(
        model, args.tflite_file, x, y, num_threads=args.threads, progress=not args.json,
        kernel=args.kernel,
    )  # fmt: skip
    obj = result.to_dict()
    obj["mismatches"] = obj["mismatches"][:100]
    out.result(obj, result.format())
    if args.min_agreement is not None and result.top1_agreement < args.min_agreement:
        out.say(
            f"error: agreement {result.top1_agreement:.4%} is below --min-agreement {args.min_agreement:.4%}"
        )
        return 1
    return 0


def cmd_bench(args: argparse.Namespace, out: Output) -> int:
    from bnn_tf import converters

    result = converters.bench(
        args.tflite_file, threads=args.threads, runs=args.runs, warmup=args.warmup
    )
    obj: dict[str, Any] = {"model": str(args.tflite_file), **result.to_dict()}
    human = result.format()
    if args.compare:
        other = converters.bench(
            args.compare, threads=args.threads, runs=args.runs, warmup=args.warmup
        )
        obj["compare"] = {"model": str(args.compare), **other.to_dict()}
        obj["speedup"] = other.median_ms / result.median_ms
        obj["size_ratio"] = other.size_bytes / result.size_bytes
        human += (
            f"\nvs {args.compare}: median {other.median_ms:.3f} ms, {other.size_bytes:,} bytes → "
            f"{obj['speedup']:.2f}× faster, {obj['size_ratio']:.1f}× smaller"
        )
    out.result(obj, human)
    return 0


def cmd_deploy(args: argparse.Namespace, out: Output) -> int:
    from bnn_tf.converters.deploy import deploy

    labels = None
    if args.labels:
        from bnn_tf.errors import ConfigError

        path = Path(args.labels)
        if not path.is_file():
            raise ConfigError(f"{path}: no such labels file. Fix: one class name per line.")
        labels = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    bundle = deploy(
        args.model_file, args.output, target=args.target, tflite=args.tflite,
        dataset=args.dataset, labels=labels, samples=args.samples,
        data_dir=args.data_dir, overwrite=args.overwrite,
    )  # fmt: skip
    out.result(bundle.to_dict(), bundle.format())
    return 0


def cmd_demo(args: argparse.Namespace, out: Output) -> int:
    from bnn_tf import demo

    report = demo.run(
        out_dir=args.out,
        epochs=args.epochs,
        limit_train=args.limit_train,
        limit_test=args.limit_test,
        data_dir=args.data_dir,
        bench_runs=args.runs,
        log=out.say,
        verbose=0 if args.json else "auto",
    )
    out.result(report, demo.format_report(report))
    return 0 if report["passed"] or not args.check else 1


# ------------------------------------------------------------------- parser


def _add_json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON document instead of text")


def _add_data(p: argparse.ArgumentParser, *, limit: bool) -> None:
    p.add_argument(
        "--dataset", default="fashion_mnist", choices=["fashion_mnist", "mnist"],
        help="data set (default: fashion_mnist)",
    )  # fmt: skip
    p.add_argument(
        "--data-dir", default=None,
        help="folder with the four IDX files; default: $BNN_TF_DATA_DIR, then the Debian "
        "package folder, then the Keras cache/download",
    )  # fmt: skip
    if limit:
        p.add_argument("--limit", type=int, default=None, help="use only the first N test images")


def build_parser() -> argparse.ArgumentParser:
    from bnn_tf.optimizers import BopAdamConfig
    from bnn_tf.recipes import RECIPES
    from bnn_tf.training import GAMMA_SCHEDULES

    parser = argparse.ArgumentParser(
        prog="bnn-tf",
        description="Train binarized neural networks in Keras and ship them as LCE TFLite models.",
        epilog="Example: bnn-tf demo --out runs/demo   (train → convert → verify → bench)",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("models", help="list the model zoo", description="List the model zoo.")
    _add_json(p)
    p.set_defaults(func=cmd_models)

    p = sub.add_parser(
        "train", help="train a zoo model",
        description="Train a zoo model with Bop (binary kernels) + Adam (everything else). "
        "Writes OUT/model.keras, OUT/history.json and OUT/curves.png; checkpoints every "
        "epoch and resumes when OUT holds an unfinished run.",
    )  # fmt: skip
    p.add_argument("model", help="zoo model name (see `bnn-tf models`)")
    _add_data(p, limit=False)
    p.add_argument(
        "--epochs", type=int, default=DEFAULT_EPOCHS, help=f"epochs (default {DEFAULT_EPOCHS})"
    )
    p.add_argument("--batch-size", type=int, default=128, help="batch size (default 128)")
    p.add_argument("--limit-train", type=int, default=None, help="train on the first N images only")
    p.add_argument("--augment", action="store_true", help="random flips and 2-pixel shifts")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--model-kwargs",
        type=_json_object,
        default={},
        metavar="JSON",
        help="options of the model factory, e.g. '{\"width_multiplier\": 2}' (default: none)",
    )
    p.add_argument(
        "--bop-threshold",
        type=float,
        default=BopAdamConfig.threshold,
        help=f"Bop flip threshold τ (default {BopAdamConfig.threshold:g})",
    )
    p.add_argument(
        "--bop-gamma",
        type=float,
        default=BopAdamConfig.gamma,
        help=f"Bop adaptivity rate γ (default {BopAdamConfig.gamma:g})",
    )
    p.add_argument(
        "--bop-gamma-schedule",
        choices=GAMMA_SCHEDULES,
        default="constant",
        help="Bop's γ over the run: constant (default), or linear/cosine decay to 0 so the "
        "binary weights stop flipping by the last epoch",
    )
    p.add_argument(
        "--learning-rate",
        type=float,
        default=BopAdamConfig.learning_rate,
        help=f"Adam learning rate for non-binary weights, cosine-decayed (default {BopAdamConfig.learning_rate:g})",
    )
    p.add_argument(
        "--optimizer",
        default=None,
        choices=["bop", "bop2", "adam"],
        help="binary kernels: bop (default), bop2 (Bop2ndOrder) or adam (latent weights "
        "with weight_clip); everything else always uses Adam",
    )
    p.add_argument(
        "--recipe",
        default=None,
        choices=list(RECIPES),
        help="staged training recipe (see docs/training.md); default: plain single-stage training",
    )
    p.add_argument(
        "--jit-compile",
        action="store_true",
        help="compile the training step with XLA: the same function, faster or slower "
        "depending on the model (time one epoch first; docs/training.md); not with --recipe",
    )
    p.add_argument("--out", required=True, help="output folder")
    _add_json(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "convert", help="convert a .keras model to an LCE .tflite",
        description="Convert a Keras model to TFLite with larq-compute-engine and print which layers "
        "run on binary kernels (per-layer table; --json for JSON). --portable also writes a "
        "stock-TFLite model for devices without LCE.",
    )  # fmt: skip
    p.add_argument("model_file", help="a .keras (or .h5) model")
    p.add_argument("-o", "--output", required=True, help="the .tflite to write")
    p.add_argument(
        "--target", default="arm", choices=["arm", "xcore"], help="LCE target (default arm)"
    )
    p.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 (listing the layers) if any quantized layer fell back to float, or if no "
        "single LCE kernel (default, indirect) runs the whole model correctly",
    )
    p.add_argument(
        "--keep-groups",
        action="store_true",
        help="keep grouped binary convs grouped (indirect-BGEMM kernel only; default: split them "
        "into per-group convs so LCE's default kernel, the one on ARM and Android, runs them)",
    )
    p.add_argument(
        "--no-dense-rewrite",
        action="store_true",
        help="keep binary QuantDense as float FULLY_CONNECTED (default: 1×1 binary conv)",
    )
    p.add_argument(
        "--portable",
        action="store_true",
        help="also write a stock-TFLite model (no LCE ops) and report its accuracy and size",
    )
    p.add_argument(
        "--int8",
        action="store_true",
        help="with --portable: int8 post-training quantization, calibrated on 300 training images",
    )
    p.add_argument(
        "--portable-output",
        default=None,
        help="path of the portable model (default: OUTPUT with .portable.tflite / .int8.tflite)",
    )
    _add_data(p, limit=True)
    _add_json(p)
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser(
        "verify", help="compare Keras and TFLite predictions on test images",
        description="Run the Keras model and the .tflite (LCE interpreter) on real test images; "
        "report top-1 agreement, both accuracies and the largest logit difference.",
    )  # fmt: skip
    p.add_argument("model_file", help="the .keras model")
    p.add_argument("tflite_file", help="the .tflite converted from it")
    _add_data(p, limit=True)
    p.add_argument("--threads", type=int, default=1, help="interpreter threads (default 1)")
    p.add_argument(
        "--kernel",
        default="default",
        choices=["default", "indirect", "reference", "auto"],
        help="LCE binary-conv kernel: default (what ARM devices and Android run; the indirect "
        "kernel is also run and reported when it disagrees), indirect (indirect BGEMM), "
        "reference, or auto (indirect where correct)",
    )
    p.add_argument(
        "--min-agreement",
        type=float,
        default=None,
        help="exit 1 if top-1 agreement is below this fraction (e.g. 0.999)",
    )
    _add_json(p)
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser(
        "bench", help="latency and size of a .tflite",
        description="Median latency (batch 1, LCE interpreter with indirect BGEMM) and file size. "
        "x86_64 numbers compare models on this machine; they are not ARM numbers.",
    )  # fmt: skip
    p.add_argument("tflite_file", help="the .tflite to time")
    p.add_argument("--threads", type=int, default=1, help="interpreter threads (default 1)")
    p.add_argument("--runs", type=int, default=50, help="timed runs (default 50)")
    p.add_argument("--warmup", type=int, default=5, help="untimed warm-up runs (default 5)")
    p.add_argument(
        "--compare", default=None, help="another .tflite (e.g. the float twin) to compare with"
    )
    _add_json(p)
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser(
        "deploy", help="write a Raspberry Pi or Android bundle",
        description="Write a folder with the LCE .tflite, metadata.json (input shape and "
        "normalisation, class names, runtime, conversion report), labels.txt, sample test "
        "images with expected predictions, a README with the steps on the device, and for "
        "--target rpi a C++ runner (CMake). See docs/deploy.md.",
    )  # fmt: skip
    p.add_argument("model_file", help="the trained .keras model")
    p.add_argument("--target", required=True, choices=["rpi", "android"], help="device")
    p.add_argument("-o", "--output", required=True, help="bundle folder (new or empty)")
    p.add_argument("--tflite", default=None, help="an already converted .tflite of this model")
    p.add_argument(
        "--dataset",
        default=None,
        choices=["fashion_mnist", "mnist"],
        help="training data set (class names, samples); default: run.json next to "
        "the model, else fashion_mnist",
    )
    p.add_argument(
        "--labels", default=None, help="class names file, one per line (overrides --dataset's)"
    )
    p.add_argument(
        "--samples",
        type=int,
        default=8,
        help="real test images to bundle with expected predictions (default 8; 0: none)",
    )
    p.add_argument("--data-dir", default=None, help="folder with the data set's IDX files")
    p.add_argument("--overwrite", action="store_true", help="write into a non-empty folder")
    _add_json(p)
    p.set_defaults(func=cmd_deploy)

    p = sub.add_parser(
        "demo", help="train → convert → verify → bench on Fashion-MNIST",
        description="The main job: train the small BNN on Fashion-MNIST, convert it with LCE, "
        "verify it on the full test set, benchmark it against its float twin, and write "
        "OUT/report.md and OUT/report.json. Rerunning resumes an interrupted training.",
    )  # fmt: skip
    p.add_argument("--out", default="runs/demo", help="output folder (default runs/demo)")
    p.add_argument(
        "--epochs", type=int, default=DEFAULT_EPOCHS, help=f"epochs (default {DEFAULT_EPOCHS})"
    )
    p.add_argument("--limit-train", type=int, default=None, help="train on the first N images only")
    p.add_argument(
        "--limit-test", type=int, default=None, help="verify on the first N test images only"
    )
    p.add_argument("--data-dir", default=None, help="folder with the Fashion-MNIST IDX files")
    p.add_argument("--runs", type=int, default=100, help="timed benchmark runs (default 100)")
    p.add_argument("--check", action="store_true", help="exit 1 if a goal in the report is missed")
    _add_json(p)
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from importlib.metadata import version

        print(f"bnn-tf {version('bnn-tf')}")
        return 0
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    _quiet_tensorflow()
    import tensorflow as tf

    # Keras' Python-side warnings (e.g. "compiled metrics have yet to be built"
    # while LCE converts) say nothing actionable to a CLI user.
    tf.get_logger().setLevel("ERROR")
    # larq warns about binary kernels without a weight clip; for Bop that is the right set-up,
    # and bnn_tf.optimizers.check_setup warns about the contradictory cases instead.
    import logging

    logging.getLogger("larq.layers_base").setLevel(logging.ERROR)
    out = Output(getattr(args, "json", False))
    func: Callable[[argparse.Namespace, Output], int] = args.func
    from bnn_tf.errors import BnnTfError

    try:
        return func(args, out)
    except KeyboardInterrupt:
        where = getattr(args, "out", None)
        hint = (
            f" Rerun the same command to resume from the last finished epoch in {where}."
            if where
            else ""
        )
        print(f"\ninterrupted.{hint}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BnnTfError as exc:
        # Our own errors already say what to fix: no traceback. Anything else is a bug: let it show.
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
