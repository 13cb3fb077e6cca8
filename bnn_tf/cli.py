"""`bnn-tf`: train, convert, verify and benchmark binarized networks.

Human-readable output by default; `--json` prints one JSON document instead.
Bad input exits with status 2 and a one-line error that names the fix.

The subcommands are the rows of `COMMANDS`; `bnn-tf train`'s flags are the
fields of `bnn_tf.training.TrainConfig` (`add_dataclass_flags`), so a new
training option is a new field, not new CLI code.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
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
    from bnn_tf import experiment
    from bnn_tf import models as zoo

    rows = [zoo.info(name) for name in zoo.available()]
    trainings = {m.name: experiment.default_training(m.name) for m in rows}
    obj = {
        "models": [
            {
                "name": m.name,
                "family": m.family,
                "description": m.description,
                "lce_binary_kernels": m.lce_binary,
                "default_input_shape": list(m.default_input_shape),
                "accepts": m.accepts,
                "float_twin": m.float_twin,
                "default_training": trainings[m.name].to_dict(),
            }
            for m in rows
        ]
    }
    width = max(len(m.name) for m in rows)
    train_width = max(len(t.describe()) for t in trainings.values())
    lines = [
        f"{'model':<{width}}  LCE binary  input        accepts          "
        f"{'default training':<{train_width}}  description"
    ]
    for m in rows:
        shape = "×".join(map(str, m.default_input_shape))
        acc = m.accepts
        accepts = f"≥{acc['min_size']}px, {'/'.join(map(str, acc['channels']))} ch"
        lines.append(
            f"{m.name:<{width}}  {'yes' if m.lce_binary else 'no':<10}  {shape:<11}  "
            f"{accepts:<15}  {trainings[m.name].describe():<{train_width}}  {m.description}"
        )
    lines.append(
        "\ndefault training: what `bnn-tf train MODEL` uses without --optimizer "
        "(paper: the model's paper; library: Bop + Adam); --json says why"
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
    """The `TrainConfig` from parsed `train` arguments (one attribute per field)."""
    from bnn_tf.training import TrainConfig

    given = {f.name for f in dataclasses.fields(TrainConfig)} & set(vars(args))
    return TrainConfig(**{name: getattr(args, name) for name in given})


def cmd_train(args: argparse.Namespace, out: Output) -> int:
    from bnn_tf import experiment

    _check_output_dir(args.out, "--out")
    config = _train_config(args)
    verbose: Any = 0 if args.json else "auto"
    summary = experiment.train(
        config, args.out, data_dir=args.data_dir, verbose=verbose, log=out.say
    )
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
    _check_output_file(args.output, "-o")
    if args.portable_output:
        _check_output_file(args.portable_output, "--portable-output")
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


def _model_data(args: argparse.Namespace, model, out: Output):
    """The data to compare `model` on: --data, --dataset, the run's own data, or None."""
    from bnn_tf import data

    images, how = data.for_model(
        tuple(model.input_shape), data=getattr(args, "data", None), dataset=args.dataset,
        model_path=args.model_file, data_dir=args.data_dir, log=out.say,
    )  # fmt: skip
    return images, how


def _test_arrays(images, args: argparse.Namespace):
    from bnn_tf.errors import ConfigError

    limit = getattr(args, "limit", None)
    if limit is not None and limit < 1:
        raise ConfigError(f"--limit must be ≥ 1 (got {limit}).")
    return images.arrays("test", limit)


def _convert_portable(args: argparse.Namespace, model, lce_flatbuffer: bytes, out: Output) -> dict:
    from bnn_tf import atomic, converters
    from bnn_tf.converters.portable import compare_portable
    from bnn_tf.errors import ConfigError

    images, how = _model_data(args, model, out)
    if images is None and args.int8:
        raise ConfigError(
            f"--int8 needs calibration images but there are none: {how}. "
            "Fix: pass --data with the training data."
        )
    calibration = images.arrays("train", 300)[0] if args.int8 else None
    flatbuffer = converters.convert_portable(model, int8=args.int8, representative_data=calibration)
    default = Path(args.output).with_suffix(".int8.tflite" if args.int8 else ".portable.tflite")
    path = atomic.write_bytes(args.portable_output or default, flatbuffer)
    if images is None:
        out.say(f"comparison skipped: {how}; pass --data to compare the LCE and portable models")
        return {"output": str(path), "comparison": None, "table": "comparison skipped: " + how}
    x, y = _test_arrays(images, args)
    out.say(f"comparing LCE and portable models on {len(x)} test images of {how}")
    comparison = compare_portable(model, lce_flatbuffer, flatbuffer, x, y, int8=args.int8)
    if comparison.portable_accuracy < comparison.keras_accuracy - 0.01:
        out.say(
            f"warning: the portable model loses {comparison.keras_accuracy - comparison.portable_accuracy:.1%} "
            "accuracy against Keras; ship the float portable model (drop --int8) or the LCE model."
        )
    return {"output": str(path), **comparison.to_dict(), "table": comparison.format()}


def cmd_verify(args: argparse.Namespace, out: Output) -> int:
    from bnn_tf import converters
    from bnn_tf.errors import ConfigError

    model = converters.load_keras_model(args.model_file)
    converters.parse(args.tflite_file)  # fail fast on a bad .tflite, before loading data
    images, how = _model_data(args, model, out)
    if images is None:
        raise ConfigError(
            f"verify has {how}. Fix: pass --data (an image folder, or a .npz whose x_test has "
            "the model's input shape)."
        )
    x, y = _test_arrays(images, args)
    out.say(f"data: {len(x)} test images of {how}")
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

    _check_output_dir(args.output, "-o")

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
        data_dir=args.data_dir, overwrite=args.overwrite, data_source=args.data, log=out.say,
    )  # fmt: skip
    out.result(bundle.to_dict(), bundle.format())
    return 0


def cmd_demo(args: argparse.Namespace, out: Output) -> int:
    from bnn_tf import demo

    _check_output_dir(args.out, "--out")
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


# --- data to compare on, and output paths checked before any work


def _add_compare_data(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data", default=None,
        help="data to compare on: an image folder (read at the model's input size), a .npz "
        "(x_test, y_test) or a built-in name; default: the run's own data (run.json next to "
        "the model), else fashion_mnist for a 28×28×1 model",
    )  # fmt: skip


def _check_output_dir(path: str, flag: str) -> None:
    """A folder to write into: refuse a file or an unwritable place before any work."""
    from bnn_tf.errors import ConfigError

    p = Path(path)
    if p.exists() and not p.is_dir():
        raise ConfigError(f"{flag} {p} is an existing file. Fix: pass a folder (new or a run's).")
    _check_writable(p, flag)


def _check_output_file(path: str, flag: str) -> None:
    """A .tflite to write: refuse a folder, a file that is not a .tflite, an unwritable place."""
    from bnn_tf.errors import ConfigError

    p = Path(path)
    if p.is_dir():
        raise ConfigError(
            f"{flag} {p} is a folder. Fix: pass a file name such as {p / 'model.tflite'}."
        )
    if p.is_file():
        with open(p, "rb") as f:
            head = f.read(8)
        if head[4:8] != b"TFL3":
            raise ConfigError(
                f"{flag} {p} exists and is not a .tflite; it was left untouched. "
                "Fix: choose another output path."
            )
    _check_writable(p.parent, flag)


def _check_writable(p: Path, flag: str) -> None:
    from bnn_tf.errors import ConfigError

    # The nearest existing ancestor must be writable; missing folders are created later.
    probe = p
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and (not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK)):
        what = "is a file" if not probe.is_dir() else "is not writable"
        raise ConfigError(f"{flag} {p}: {probe} {what}. Fix: choose a writable output path.")


def _add_data(p: argparse.ArgumentParser, *, limit: bool) -> None:
    from bnn_tf import data

    p.add_argument(
        "--dataset", default=None, choices=data.available(),
        help="built-in data set; default: the run's own data (run.json), else fashion_mnist",
    )  # fmt: skip
    _add_data_dir(p)
    if limit:
        p.add_argument("--limit", type=int, default=None, help="use only the first N test images")


def _add_data_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data-dir", default=None,
        help="folder with the four IDX files; default: $BNN_TF_DATA_DIR, then the Debian "
        "package folder, then the Keras cache/download",
    )  # fmt: skip


class _TupleAction(argparse.Action):
    # nargs gives a list; a tuple keeps the value equal to what the dataclass holds.
    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, tuple(values))


def _flag_type(hint: Any) -> tuple[Any, Any, tuple | None, type]:
    """(element type, nargs, Literal choices, container) for a type hint; `X | None` is X."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        # `str | os.PathLike[str]` and the like: the CLI passes the path as text.
        hint = args[0] if len(args) == 1 else str
    origin = typing.get_origin(hint)
    if origin is typing.Literal:
        values = typing.get_args(hint)
        return type(values[0]), None, values, tuple
    if origin is tuple:
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return args[0], "+", None, tuple
        return (args[0] if args else str), len(args) or "+", None, tuple
    if origin in (list, Sequence) or hint is list:
        args = typing.get_args(hint)
        return (args[0] if args else str), "+", None, list
    if origin is dict or hint is dict:
        return dict, None, None, tuple
    if hint in (Path, os.PathLike) or origin is os.PathLike:
        return str, None, None, tuple
    return hint, None, None, tuple


def add_dataclass_flags(
    parser: argparse.ArgumentParser,
    cls: type,
    *,
    choices: dict[str, Any] | None = None,
) -> list[str]:
    """One argument per field of dataclass `cls`: `--batch-size` for `batch_size`.

    Read from each field: its type (`int`, `float`, `str`, `bool` → a switch,
    `dict` → a JSON object, `tuple[int, int]` → two values, `X | None` → X,
    `Literal[...]` → choices), its default, and `metadata`: `help` (required),
    optional `flag` (another option name), `choices` (a sequence, or a callable
    returning one), `nargs`, `type`, `metavar`, `positional` (an argument
    without `--`) and `cli` (False: no flag). Several values (`nargs`) arrive
    as the field's container (a tuple, or a list for `list[...]` fields). `choices` given here win for fields whose
    allowed values live above the dataclass's module (e.g. recipe names).

    Returns:
        The field names added (each parsed value is `args.<field name>`).
    """
    hints = typing.get_type_hints(cls)
    added = []
    for f in dataclasses.fields(cls):
        meta = f.metadata
        if meta.get("cli", True) is False:
            continue
        if "help" not in meta:
            raise TypeError(f"{cls.__name__}.{f.name}: give it metadata={{'help': ...}}")
        kind, nargs, literal, container = _flag_type(hints[f.name])
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = None
        allowed = (choices or {}).get(f.name, meta.get("choices", literal))
        if callable(allowed):
            allowed = allowed()
        text = meta["help"]
        if default not in (None, False, {}, (), []) and "default" not in text:
            shown = f"{default:g}" if isinstance(default, float) else default
            text += f" (default {shown})"
        kwargs: dict[str, Any] = {"help": text}
        if kind is bool:
            kwargs["action"] = argparse.BooleanOptionalAction if default else "store_true"
        else:
            kwargs["type"] = meta.get("type", _json_object if kind is dict else kind)
            nargs = meta.get("nargs", nargs)
            if nargs is not None:
                kwargs.update(nargs=nargs, action=_TupleAction if container is tuple else "store")
            if allowed is not None:
                kwargs["choices"] = list(allowed)
            for key in ("metavar",):
                if key in meta:
                    kwargs[key] = meta[key]
        if meta.get("positional"):
            parser.add_argument(f.name, **kwargs)
        else:
            flag = meta.get("flag", "--" + f.name.replace("_", "-"))
            parser.add_argument(flag, dest=f.name, default=default, **kwargs)
        added.append(f.name)
    return added


def _args_models(p: argparse.ArgumentParser) -> None:
    _add_json(p)


def _args_train(p: argparse.ArgumentParser) -> None:
    from bnn_tf.recipes import RECIPES
    from bnn_tf.training import TrainConfig

    add_dataclass_flags(p, TrainConfig, choices={"recipe": list(RECIPES)})
    _add_data_dir(p)
    p.add_argument("--out", required=True, help="output folder")
    _add_json(p)


def _args_convert(p: argparse.ArgumentParser) -> None:
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
    _add_compare_data(p)
    _add_json(p)


def _args_verify(p: argparse.ArgumentParser) -> None:
    from bnn_tf.converters.runtime import KERNEL_CHOICES

    p.add_argument("model_file", help="the .keras model")
    p.add_argument("tflite_file", help="the .tflite converted from it")
    _add_data(p, limit=True)
    _add_compare_data(p)
    p.add_argument("--threads", type=int, default=1, help="interpreter threads (default 1)")
    p.add_argument(
        "--kernel",
        default="default",
        choices=KERNEL_CHOICES,
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


def _args_bench(p: argparse.ArgumentParser) -> None:
    p.add_argument("tflite_file", help="the .tflite to time")
    p.add_argument("--threads", type=int, default=1, help="interpreter threads (default 1)")
    p.add_argument("--runs", type=int, default=50, help="timed runs (default 50)")
    p.add_argument("--warmup", type=int, default=5, help="untimed warm-up runs (default 5)")
    p.add_argument(
        "--compare", default=None, help="another .tflite (e.g. the float twin) to compare with"
    )
    _add_json(p)


def _args_deploy(p: argparse.ArgumentParser) -> None:
    from bnn_tf import data

    p.add_argument("model_file", help="the trained .keras model")
    p.add_argument("--target", required=True, choices=["rpi", "android"], help="device")
    p.add_argument("-o", "--output", required=True, help="bundle folder (new or empty)")
    p.add_argument("--tflite", default=None, help="an already converted .tflite of this model")
    p.add_argument(
        "--dataset",
        default=None,
        choices=data.available(),
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
    _add_compare_data(p)
    p.add_argument("--overwrite", action="store_true", help="write into a non-empty folder")
    _add_json(p)


def _args_demo(p: argparse.ArgumentParser) -> None:
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


@dataclass(frozen=True)
class Command:
    """One `bnn-tf` subcommand: adding a command is adding a row to `COMMANDS`."""

    name: str
    run: Callable[[argparse.Namespace, Output], int]
    add_arguments: Callable[[argparse.ArgumentParser], None]
    help: str
    description: str


COMMANDS: tuple[Command, ...] = (
    Command("models", cmd_models, _args_models, "list the model zoo",
            "List the model zoo, with the training each model gets by default."),
    Command("train", cmd_train, _args_train, "train a zoo model",
            "Train a zoo model: binary kernels with the model's paper optimizer (default: Bop), "
            "everything else with Adam. Writes OUT/model.keras, OUT/history.json and "
            "OUT/curves.png; checkpoints every epoch and resumes when OUT holds an unfinished run."),
    Command("convert", cmd_convert, _args_convert, "convert a .keras model to an LCE .tflite",
            "Convert a Keras model to TFLite with larq-compute-engine and print which layers "
            "run on binary kernels (per-layer table; --json for JSON). --portable also writes a "
            "stock-TFLite model for devices without LCE."),
    Command("verify", cmd_verify, _args_verify, "compare Keras and TFLite predictions on test images",
            "Run the Keras model and the .tflite (LCE interpreter) on real test images; "
            "report top-1 agreement, both accuracies and the largest logit difference."),
    Command("bench", cmd_bench, _args_bench, "latency and size of a .tflite",
            "Median latency (batch 1, LCE interpreter with indirect BGEMM) and file size. "
            "x86_64 numbers compare models on this machine; they are not ARM numbers."),
    Command("deploy", cmd_deploy, _args_deploy, "write a Raspberry Pi or Android bundle",
            "Write a folder with the LCE .tflite, metadata.json (input shape and "
            "normalisation, class names, runtime, conversion report), labels.txt, sample test "
            "images with expected predictions, a README with the steps on the device, and for "
            "--target rpi a C++ runner (CMake). See docs/deploy.md."),
    Command("demo", cmd_demo, _args_demo, "train → convert → verify → bench on Fashion-MNIST",
            "The main job: train the small BNN on Fashion-MNIST, convert it with LCE, "
            "verify it on the full test set, benchmark it against its float twin, and write "
            "OUT/report.md and OUT/report.json. Rerunning resumes an interrupted training."),
)  # fmt: skip


def _undecodable_images(args: argparse.Namespace, exc: Exception) -> str | None:
    """The one-line error when the data pipeline met an image it cannot decode, naming the
    files; None when the error did not come from decoding, or no file of the data is to blame
    (then it is a bug and keeps its traceback)."""
    from bnn_tf import data

    if "DecodeImage" not in str(exc):  # the op of data.decode_file
        return None
    folders = [getattr(args, "data", None), getattr(args, "test_data", None)]
    recorded = data.read_run_data(getattr(args, "model_file", None))
    if recorded is not None and recorded.get("kind") == "folder":
        folders += [recorded.get("source"), recorded.get("test_source")]
    bad: list[str] = []
    for folder in dict.fromkeys(f for f in folders if f and Path(f).is_dir()):
        bad += data.undecodable(folder)
    if not bad:
        return None
    return (
        f"{len(bad)} image file(s) cannot be decoded although their header and end look whole "
        f"(e.g. {bad[0]}), so the scan kept them. Fix: remove or replace them and rerun the "
        "same command."
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bnn-tf",
        description="Train binarized neural networks in Keras and ship them as LCE TFLite models.",
        epilog="Example: bnn-tf demo --out runs/demo   (train → convert → verify → bench)",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        p = sub.add_parser(command.name, help=command.help, description=command.description)
        command.add_arguments(p)
        p.set_defaults(func=command.run)
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
    except tf.errors.InvalidArgumentError as exc:
        message = _undecodable_images(args, exc)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except (PermissionError, IsADirectoryError, NotADirectoryError) as exc:
        # A path the user chose cannot be written (or read): their input, not a bug.
        print(
            f"error: {exc.filename or ''}: {exc.strerror}. Fix: choose a path you can write.",
            file=sys.stderr,
        )
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
