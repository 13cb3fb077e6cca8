"""larq-zoo 2.4 compatibility: same graphs, same weights, same outputs, LCE op census and latency.

Runs in TWO environments (larq-zoo cannot be installed beside TF 2.21):

1. Side environment (`/work/build/zoo-venv`: tensorflow 2.15.1, larq-zoo 2.4.0,
   larq-compute-engine 0.16.0, from PyPI; never a project dependency):

       nice -n 10 /work/build/zoo-venv/bin/python benchmarks/larq_zoo_compat.py --side zoo --golden
       nice -n 10 /work/build/zoo-venv/bin/python benchmarks/larq_zoo_compat.py --side zoo \
           [--models a,b] [--artifacts DIR] [--convert]

   `--golden` writes each larq-zoo model's per-layer table
   (`bnn_tf/models/_layer_table.py`) to `tests/data/larq_zoo_golden/<model>.json`.
   Otherwise, per model: build larq-zoo's with `weights=None`, randomise every
   BatchNorm/PReLU statistic (so loading non-trainable weights is tested too),
   save its weights to `<artifacts>/<model>.h5`, run it on real images
   (Fashion-MNIST test images resized to the model input, tiled to RGB,
   scaled to [−1, 1]) and save probabilities and logits; with `--convert`
   convert it with LCE to `<artifacts>/<model>_zoo.tflite`.

2. Our environment:

       nice -n 10 .venv/bin/python benchmarks/larq_zoo_compat.py --side ours [--models a,b]
           [--convert] [--pairs 30] [--zoo-python $BNN_LARQ_ZOO_PYTHON]

   Per model: build ours with `weights=<model>.h5` and larq-zoo's softmax,
   compare outputs (max |Δ| relative to the output's max |value|; goal ≤ 1e-4),
   parameter counts, convert with LCE (ours with TF 2.21), count the ops of both
   flatbuffers (float ops = every op except LCE's binary ones), and time both
   under the same LCE interpreter (1 thread, indirect BGEMM where safe),
   alternating single calls ours/zoo `--pairs` times (see `_time_interleaved`).
   Writes `<results-dir>/larq_zoo_compat.json` and `.png` (default
   `benchmarks/results`; merging rows of earlier invocations, so large models can
   be run one at a time). With `--zoo-python PYTHON` (the side environment's
   python, `$BNN_LARQ_ZOO_PYTHON`) it first runs step 1 for the same models
   with that interpreter, so one command does both.

3. Small-input variants (our environment), trained on Fashion-MNIST with their
   paper's recipe (the registered `training`, step schedules scaled to the budget):

       nice -n 10 .venv/bin/python benchmarks/larq_zoo_compat.py --side small \
           [--epochs 3] [--limit-train 6000]

   writes `<results-dir>/larq_zoo_small.json` (methods-table columns).

`--side report` prints the docs tables from the results JSONs.

The machine is shared (2 cores, ~8 engineers): the load average is recorded;
compare the ours/zoo ratio, not absolute times.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

# stdlib only at its top level: it imports in the side environment (TF 2.15, no bnn_tf) too
import harness
import numpy as np

BENCHMARK = harness.Benchmark(
    name="larq_zoo_compat",
    description="larq-zoo 2.4 compatibility: same graphs/weights/outputs, LCE op census, latency",
    runs={
        "larq_zoo_compat": ["--side", "ours", "--zoo-python", "$BNN_LARQ_ZOO_PYTHON", "--convert"],
        "larq_zoo_small": ["--side", "small", "--epochs", "3", "--limit-train", "6000"],
    },
    smoke_args=[
        "--side", "ours", "--zoo-python", "$BNN_LARQ_ZOO_PYTHON", "--models", "binary_alexnet",
        "--artifacts", "{tmp}/zoo-artifacts", "--convert", "--images", "2", "--pairs", "2",
    ],
    manual=".venv/bin/python benchmarks/larq_zoo_compat.py --side ours --convert "
    "--zoo-python /work/build/zoo-venv/bin/python  (larq-zoo side venv = $BNN_LARQ_ZOO_PYTHON)",
    requires_env=["BNN_LARQ_ZOO_PYTHON"],
)  # fmt: skip

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "data" / "larq_zoo_golden"
NAME = "larq_zoo_compat"
FASHION = Path("/usr/share/datasets/fashion-mnist")
GOAL_REL_DIFF = 1e-4

# our registry name -> larq-zoo function (module.attribute); ordered by conversion cost
MODELS: dict[str, str] = {
    "binary_alexnet": "literature.BinaryAlexNet",
    "xnornet": "literature.XNORNet",
    "dorefanet": "literature.DoReFaNet",
    "quicknet_small": "sota.QuickNetSmall",
    "quicknet": "sota.QuickNet",
    "birealnet": "literature.BiRealNet",
    "binary_resnet_e18": "literature.BinaryResNetE18",
    "real_to_binary_net": "literature.RealToBinaryNet",
    "binary_densenet28": "literature.BinaryDenseNet28",
    "quicknet_large": "sota.QuickNetLarge",
    "binary_densenet37": "literature.BinaryDenseNet37",
    "binary_densenet37_dilated": "literature.BinaryDenseNet37Dilated",
    "binary_densenet45": "literature.BinaryDenseNet45",
    "meliusnet22": "literature.MeliusNet22",
}
LCE_BINARY_OPS = ("LceBconv2d", "LceQuantize", "LceDequantize", "LceBMaxPool2d")


def _layer_table_module():
    spec = importlib.util.spec_from_file_location(
        "_layer_table", ROOT / "models" / "_layer_table.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fashion_images(n: int, size: int) -> np.ndarray:
    """The first `n` Fashion-MNIST test images, resized to size×size, tiled to RGB, in [−1, 1]."""
    import tensorflow as tf

    with gzip.open(FASHION / "t10k-images-idx3-ubyte.gz", "rb") as f:
        raw = np.frombuffer(f.read(), dtype=np.uint8, offset=16).reshape(-1, 28, 28, 1)
    x = tf.image.resize(raw[:n].astype("float32"), (size, size), method="bilinear").numpy()
    return np.repeat(x / 127.5 - 1.0, 3, axis=-1).astype("float32")


def _zoo_model(name: str):
    import larq_zoo

    module, attr = MODELS[name].split(".")
    return getattr(getattr(larq_zoo, module), attr)(weights=None)


def _randomise_statistics(model, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        for w in layer.weights:
            leaf = w.name.split("/")[-1].split(":")[0]
            shape = tuple(w.shape)
            if leaf in ("gamma", "moving_variance"):
                w.assign(rng.uniform(0.5, 1.5, shape).astype("float32"))
            elif leaf in ("beta", "moving_mean"):
                w.assign(rng.normal(0.0, 0.2, shape).astype("float32"))
            elif leaf == "alpha":  # PReLU
                w.assign(rng.uniform(0.0, 0.5, shape).astype("float32"))


def op_sequence(flatbuffer: bytes) -> list[str]:
    """Op names of the main subgraph in execution order."""
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(flatbuffer, 0))
    builtin = {v: k for k, v in vars(schema.BuiltinOperator).items() if k.isupper()}
    names = [
        c.customCode.decode()
        if c.customCode
        else builtin[max(c.builtinCode, c.deprecatedBuiltinCode)]
        for c in model.operatorCodes
    ]
    return [names[op.opcodeIndex] for op in model.subgraphs[0].operators or []]


def op_census(flatbuffer: bytes) -> dict[str, int]:
    """Op name → count over all subgraphs (parsed with TFLite's schema, either environment)."""
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(flatbuffer, 0))
    names = {}
    for i, code in enumerate(model.operatorCodes):
        builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
        if code.customCode:
            names[i] = code.customCode.decode()
        else:
            names[i] = next(
                k for k, v in vars(schema.BuiltinOperator).items() if v == builtin and k.isupper()
            )
    counts: dict[str, int] = {}
    for graph in model.subgraphs:
        for op in graph.operators or []:
            counts[names[op.opcodeIndex]] = counts.get(names[op.opcodeIndex], 0) + 1
    return dict(sorted(counts.items()))


def float_ops(counts: dict[str, int]) -> int:
    return sum(v for k, v in counts.items() if k not in LCE_BINARY_OPS)


def zoo_side(args) -> None:
    import tensorflow as tf

    table = _layer_table_module()
    names = args.models.split(",") if args.models else list(MODELS)
    art = Path(args.artifacts)
    art.mkdir(parents=True, exist_ok=True)
    for name in names:
        tf.keras.backend.clear_session()
        tf.keras.utils.set_random_seed(args.seed)
        model = _zoo_model(name)
        if args.golden:
            GOLDEN.mkdir(parents=True, exist_ok=True)
            record = {
                "generated_by": "larq-zoo "
                + __import__("importlib.metadata").metadata.version("larq-zoo")
                + f", TF {tf.__version__}, larq "
                + __import__("larq").__version__,
                "command": " ".join([sys.executable, *sys.argv]),
                "larq_zoo_function": MODELS[name],
                **table.layer_table(model),
            }
            (GOLDEN / f"{name}.json").write_text(json.dumps(record, indent=1) + "\n")
            print(
                f"{name}: {record['params']:,} params, {len(record['layers'])} layers", flush=True
            )
            continue
        _randomise_statistics(model, args.seed)
        model.save_weights(str(art / f"{name}.h5"))
        size = int(model.input_shape[1])
        x = fashion_images(args.images, size)
        logits_model = tf.keras.Model(model.input, model.layers[-2].output)
        np.savez(
            art / f"{name}_zoo_outputs.npz",
            images=x,
            probs=model.predict(x, batch_size=4, verbose=0),
            logits=logits_model.predict(x, batch_size=4, verbose=0),
        )
        meta = {"params": int(model.count_params()), "tf": tf.__version__}
        if args.convert:
            import larq_compute_engine as lce

            # written first: if LCE's converter kills the process (it segfaults on
            # DoReFaNet under TF 2.15), the record says so
            crashed = {**meta, "convert_error": "the LCE converter crashed the process"}
            (art / f"{name}_zoo.json").write_text(json.dumps(crashed, indent=1))
            start = time.perf_counter()
            try:
                flatbuffer = lce.convert_keras_model(model)
            except Exception as e:  # noqa: BLE001  recorded: larq-zoo's model does not convert
                meta["convert_error"] = f"{type(e).__name__}: {e}"
            else:
                (art / f"{name}_zoo.tflite").write_bytes(flatbuffer)
                meta["op_counts"] = op_census(flatbuffer)
            meta["convert_seconds"] = round(time.perf_counter() - start, 1)
        (art / f"{name}_zoo.json").write_text(json.dumps(meta, indent=1))
        print(f"{name}: saved ({meta})", flush=True)


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), 1e-12))


def _time_interleaved(flatbuffers: dict[str, bytes], x: np.ndarray, pairs: int) -> dict:
    """Alternate single calls (ABAB…, order flipped every round) so both see the same load.

    On a shared, oversubscribed machine a single call can take 2–5× its quiet-machine
    time; the paired ratio (median over rounds of ours/zoo of the same round) and the
    minimum per model are the robust summaries, the medians are reported too.
    """
    from bnn_tf.converters.runtime import make_interpreter

    interpreters = {k: make_interpreter(v, num_threads=1) for k, v in flatbuffers.items()}
    sample = x[:1]
    for it in interpreters.values():
        it.predict(sample)  # warm-up
    keys = list(interpreters)
    times: dict[str, list[float]] = {k: [] for k in keys}
    for i in range(pairs):
        for key in keys if i % 2 == 0 else keys[::-1]:
            start = time.perf_counter()
            interpreters[key].predict(sample)
            times[key].append((time.perf_counter() - start) * 1e3)
    outputs = {k: np.asarray(it.predict(x[:4])) for k, it in interpreters.items()}
    paired = [a / b for a, b in zip(times["ours"], times["zoo"], strict=True)]
    return {
        "median_ms": {k: round(float(np.median(v)), 2) for k, v in times.items()},
        "min_ms": {k: round(float(np.min(v)), 2) for k, v in times.items()},
        "paired_ratio_median": round(float(np.median(paired)), 3),
        "pairs": pairs,
        "outputs": outputs,
    }


def _run_zoo_side(args) -> None:
    """Step 1 for the same models, in the side environment (`--zoo-python`)."""
    cmd = [args.zoo_python, str(Path(__file__).resolve()), "--side", "zoo"]
    cmd += ["--artifacts", args.artifacts, "--images", str(args.images), "--seed", str(args.seed)]
    cmd += ["--models", args.models] if args.models else []
    cmd += ["--convert"] if args.convert else []
    print("zoo side:", " ".join(cmd), flush=True)
    # bnn_tf (imported here, e.g. by the smoke test) sets TF_USE_LEGACY_KERAS; TF 2.15's
    # own Keras is what larq-zoo runs on, and the side venv has no tf_keras
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    subprocess.run(cmd, check=True, cwd=ROOT, env=env)


def ours_side(args, argv: list[str] | None) -> None:
    if args.zoo_python:
        _run_zoo_side(args)
    import bnn_tf  # noqa: F401  selects tf_keras before TensorFlow loads

    # isort: split
    import tensorflow as tf

    from bnn_tf import converters
    from bnn_tf import models as zoo

    recorder = harness.Recorder(BENCHMARK, argv, args.results_dir)
    art = Path(args.artifacts)
    names = args.models.split(",") if args.models else list(MODELS)
    out_path = recorder.path(NAME)
    previous = json.loads(out_path.read_text()) if out_path.exists() else {}
    rows = {r["model"]: r for r in previous.get("rows", [])}
    for name in names:
        h5 = art / f"{name}.h5"
        if not h5.exists():
            print(f"{name}: no {h5} (run the zoo side first); skipped", flush=True)
            continue
        zoo_meta = json.loads((art / f"{name}_zoo.json").read_text())
        ref = np.load(art / f"{name}_zoo_outputs.npz")
        tf.keras.backend.clear_session()
        row: dict = {"model": name, "larq_zoo_function": MODELS[name]}
        kwargs = {} if name == "meliusnet22" else {"classifier_activation": "softmax"}
        try:
            model = zoo.build(name, num_classes=1000, **kwargs)
            from bnn_tf.models._weights import load_larq_zoo_weights

            load_larq_zoo_weights(model, h5)
            row["weight_load"] = "ok"
        except Exception as e:  # noqa: BLE001  recorded, the row says what failed
            row["weight_load"] = f"failed: {e}"
            rows[name] = row
            print(f"{name}: {row['weight_load']}", flush=True)
            continue
        row["params"] = {"ours": int(model.count_params()), "zoo": zoo_meta["params"]}
        x = ref["images"]
        probs = model.predict(x, batch_size=4, verbose=0)
        if name == "meliusnet22":
            logits = probs
            probs = tf.nn.softmax(logits).numpy()
        else:
            logits = tf.keras.Model(model.input, model.layers[-2].output).predict(
                x, batch_size=4, verbose=0
            )
        row["images"] = int(len(x))
        row["keras_rel_diff"] = {
            "probs": _relative(probs, ref["probs"]),
            "logits": _relative(logits, ref["logits"]),
        }
        row["keras_top1_agreement"] = float(
            np.mean(np.argmax(probs, -1) == np.argmax(ref["probs"], -1))
        )
        row["keras_within_goal"] = row["keras_rel_diff"]["logits"] <= GOAL_REL_DIFF
        zoo_tflite = art / f"{name}_zoo.tflite"
        if "convert_error" in zoo_meta:
            row["zoo_convert_error"] = zoo_meta["convert_error"]
        if args.convert and zoo_tflite.exists():
            ours_tflite = art / f"{name}_ours.tflite"
            if args.reuse and ours_tflite.exists():
                # same weights file, same code: the flatbuffer of an earlier invocation
                ours_fb = ours_tflite.read_bytes()
                row["ours_tflite_reused"] = True
            else:
                start = time.perf_counter()
                ours_fb = converters.convert(model)
                row["convert_seconds"] = round(time.perf_counter() - start, 1)
                ours_tflite.write_bytes(ours_fb)
            zoo_fb = zoo_tflite.read_bytes()
            census = {"ours": op_census(ours_fb), "zoo": op_census(zoo_fb)}
            row["op_counts"] = census
            row["float_ops"] = {k: float_ops(v) for k, v in census.items()}
            row["tflite_bytes"] = {"ours": len(ours_fb), "zoo": len(zoo_fb)}
            # identical op sequences: the same kernels run, so equal latency is expected
            # whatever a noisy timing says
            row["same_op_sequence"] = op_sequence(ours_fb) == op_sequence(zoo_fb)
            timing = _time_interleaved({"ours": ours_fb, "zoo": zoo_fb}, x, args.pairs)
            row["latency_ms"] = timing["median_ms"]
            row["latency_min_ms"] = timing["min_ms"]
            row["latency_pairs"] = timing["pairs"]
            row["latency_ratio_paired_median"] = timing["paired_ratio_median"]
            row["latency_ratio_min"] = round(timing["min_ms"]["ours"] / timing["min_ms"]["zoo"], 3)
            o = timing["outputs"]
            row["tflite_rel_diff_probs"] = _relative(o["ours"], o["zoo"])
        rows[name] = row
        print(json.dumps({k: v for k, v in row.items() if k != "op_counts"}), flush=True)
        recorder.write_json(
            NAME,
            {
                "note": "shared 2-core machine; compare ours/zoo ratios, not absolute times",
                "goal_rel_diff": GOAL_REL_DIFF,
                "rows": [rows[k] for k in MODELS if k in rows],
            },
        )
    _plot(recorder, [rows[k] for k in MODELS if k in rows])


SMALL_MODELS = {
    "quicknet_small_input": "QuickNet (small input)",
    "binary_densenet_small": "BinaryDenseNet (small input, from scratch)",
}
PAPER_EPOCHS = {"quicknet": 600, "binary_densenet": 120}


def _scaled_training(name: str, epochs: int):
    """The model's registered paper recipe with its schedule scaled to `epochs`."""
    from bnn_tf import models as zoo
    from bnn_tf import optimizers

    info = zoo.info(name)
    cfg = {k: v for k, v in info.training.items() if k != "why"}
    schedule = dict(cfg.pop("lr_schedule", {"kind": "constant"}))
    if schedule.get("kind") == "step":
        paper = PAPER_EPOCHS[info.family]
        schedule["every_epochs"] = max(1, round(schedule["every_epochs"] * epochs / paper))
    return optimizers.OptimizerConfig(**cfg, lr_schedule=optimizers.ScheduleConfig(**schedule))


def small_side(args, argv: list[str] | None) -> None:
    """Train the small-input variants on Fashion-MNIST as their papers train them (scaled)."""
    import bnn_tf  # noqa: F401  selects tf_keras before TensorFlow loads

    # isort: split
    import tensorflow as tf
    from methods_table import mac_counts

    from bnn_tf import converters, data, training
    from bnn_tf import models as zoo

    recorder = harness.Recorder(BENCHMARK, argv, args.results_dir)
    splits = data.load("fashion_mnist", download=False)
    x_train = data.preprocess(splits.x_train[: args.limit_train])
    y_train = splits.y_train[: args.limit_train]
    x_test, y_test = data.preprocess(splits.x_test), splits.y_test
    rows = []
    names = args.models.split(",") if args.models else list(SMALL_MODELS)
    for name in names:
        tf.keras.utils.set_random_seed(args.seed)
        model = zoo.build(name)
        config = _scaled_training(name, args.epochs)
        steps = -(-len(x_train) // args.batch_size)
        training.compile_model(
            model, optimizer_config=config, steps_per_epoch=steps, epochs=args.epochs
        )
        start = time.perf_counter()
        model.fit(x_train, y_train, epochs=args.epochs, batch_size=args.batch_size, verbose=0)
        train_seconds = time.perf_counter() - start
        _, test_acc = model.evaluate(x_test, y_test, batch_size=512, verbose=0)
        flatbuffer = converters.convert(model)
        report = converters.inspect(flatbuffer)
        macs = mac_counts(flatbuffer)
        total = macs["binary_macs"] + macs["float_macs"]
        parity = converters.verify(model, flatbuffer, x_test[:1000], y_test[:1000])
        latency = converters.bench(flatbuffer, runs=50, warmup=5)
        rows.append({
            "method": SMALL_MODELS[name],
            "model": name,
            "lce_binary": zoo.info(name).lce_binary,
            "params": int(model.count_params()),
            "test_accuracy": round(float(test_acc), 4),
            "binary_mac_fraction": round(macs["binary_macs"] / total, 4) if total else 0.0,
            "tflite_bytes": report.size_bytes,
            "lce_latency_median_ms": round(latency.median_ms, 3),
            "keras_tflite_top1_agreement": parity.top1_agreement,
            "parity_images": parity.num_images,
            "binary_convs": report.binary_convs,
            "binary_conv_layers": len(converters.binary_conv_layers(model)),
            "train_seconds": round(train_seconds, 1),
            "training": {
                "optimizer": config.name, "learning_rate": config.learning_rate,
                "lr_schedule": vars(config.lr_schedule), "epochs": args.epochs,
                "train_images": len(x_train), "batch_size": args.batch_size,
                "paper": zoo.info(name).training.get("why"),
            },
        })  # fmt: skip
        print(json.dumps(rows[-1]), flush=True)
        recorder.write_json(
            "larq_zoo_small",
            {
                "note": "shared 2-core machine; accuracy is Keras on the full 10 000-image test set",
                "rows": rows,
            },
        )


def _plot(recorder: harness.Recorder, rows: list[dict]) -> None:
    rows = [r for r in rows if "latency_min_ms" in r]
    if not rows:
        return
    fig, ax = harness.figure(size=(max(6, 0.8 * len(rows) + 2), 4))
    key = "latency_min_ms"
    harness.bars(
        ax,
        [r["model"] for r in rows],
        {
            "larq-zoo 2.4 (TF 2.15)": [r[key]["zoo"] for r in rows],
            "bnn-tf (TF 2.21)": [r[key]["ours"] for r in rows],
        },
        log=True,
        ylabel="LCE 0.16 latency, min ms (x86_64, 1 thread)",
        title="Same graphs and weights: LCE latency, interleaved",
    )
    for label in ax.get_xticklabels():
        label.set_rotation(30)
        label.set_horizontalalignment("right")
    recorder.write_png(NAME, fig, dpi=120)


def report(args, argv: list[str] | None = None) -> None:
    """Print the docs tables (markdown) from the results JSONs."""
    compat = Path(args.results_dir) / f"{NAME}.json"
    if compat.exists():
        print(
            "| model | params ours / zoo | .tflite MB ours / zoo | float ops left ours / zoo "
            "| latency min ms ours / zoo | ratio (paired median) | weight load, max rel. Δ logits |"
        )
        print("|---|---|---|---|---|---|---|")
        for r in json.loads(compat.read_text())["rows"]:
            p = r.get("params", {})
            params = f"{p.get('ours', 0):,} / {p.get('zoo', 0):,}" if p else "—"
            size = (
                "{:.2f} / {:.2f}".format(*(r["tflite_bytes"][k] / 1e6 for k in ("ours", "zoo")))
                if "tflite_bytes" in r
                else "—"
            )
            fl = "{ours} / {zoo}".format(**r["float_ops"]) if "float_ops" in r else "—"
            lat = "{ours} / {zoo}".format(**r["latency_min_ms"]) if "latency_min_ms" in r else "—"
            ratio = str(r.get("latency_ratio_paired_median", "—"))
            if "zoo_convert_error" in r:
                fl = lat = f"zoo: {r['zoo_convert_error']}"
            load = r.get("weight_load", "—")
            if "keras_rel_diff" in r:
                load += f", {r['keras_rel_diff']['logits']:.1e}"
            print(f"| `{r['model']}` | {params} | {size} | {fl} | {lat} | {ratio} | {load} |")
    small = Path(args.results_dir) / "larq_zoo_small.json"
    if small.exists():
        print()
        print(
            "| method | model | LCE binary | params | test acc | binary-MAC fraction "
            "| .tflite bytes | LCE latency ms | Keras↔TFLite top-1 |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        for r in json.loads(small.read_text())["rows"]:
            print(f"| {r['method']} | `{r['model']}` | {'yes' if r['lce_binary'] else 'no'} "
                  f"| {r['params']:,} | {r['test_accuracy']:.4f} | {r['binary_mac_fraction']:.4f} "
                  f"| {r['tflite_bytes']:,} | {r['lce_latency_median_ms']} "
                  f"| {r['keras_tflite_top1_agreement']:.3f} |")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = harness.argument_parser(BENCHMARK, __doc__)
    parser.add_argument("--side", choices=("zoo", "ours", "small", "report"), required=True)
    parser.add_argument("--golden", action="store_true", help="zoo side: write golden tables")
    parser.add_argument("--convert", action="store_true", help="convert with LCE (and time)")
    parser.add_argument("--models", default="", help="comma-separated registry names")
    parser.add_argument("--artifacts", default="/work/build/zoo-artifacts")
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument(
        "--reuse", action="store_true", help="ours: reuse <artifacts>/<model>_ours.tflite"
    )
    parser.add_argument("--pairs", type=int, default=30, help="interleaved ours/zoo call pairs")
    parser.add_argument(
        "--zoo-python",
        default="",
        help="ours: run the zoo side first with this python (the side venv, $BNN_LARQ_ZOO_PYTHON)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=3, help="small side: epochs")
    parser.add_argument("--limit-train", type=int, default=6000, help="small side: images")
    parser.add_argument("--batch-size", type=int, default=64, help="small side")
    args = parser.parse_args(argv)
    if args.side == "zoo":
        zoo_side(args)
    else:
        {"ours": ours_side, "small": small_side, "report": report}[args.side](args, argv)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
