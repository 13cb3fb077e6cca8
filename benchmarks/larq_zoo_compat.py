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
   compare outputs (max |Δ| relative to the output's max |value|; goal ≤ 1e-4;
   also with every layer's output exposed, see `_unfused_logits`), parameter
   counts, convert with LCE (ours with TF 2.21), count the ops of both
   flatbuffers (float ops = every op except LCE's binary ones), compare them op
   by op with tensor shapes (`op_signature`), and time both under the same LCE
   interpreter (1 thread, indirect BGEMM where safe), alternating single calls
   ours/zoo `--pairs` times, wall clock and the thread's CPU time (see
   `_time_interleaved`). `--reuse` re-times the flatbuffers an earlier run left.
   `--instructions` (or later `--side count --models a,b`) adds the
   load-independent measure: instructions of one inference of each, counted by
   valgrind's callgrind (`count_instructions`). Writes
   `<results-dir>/larq_zoo_compat.json` and `.png` (default `benchmarks/results`;
   merging rows of earlier invocations under a lock, so large models can be run
   one at a time, and a count beside a timing run). With `--zoo-python PYTHON`
   (the side environment's python, `$BNN_LARQ_ZOO_PYTHON`) it first runs step 1
   for the same models with that interpreter, so one command does both.

3. Small-input variants (our environment), trained on Fashion-MNIST with their
   paper's recipe (the registered `training`, step schedules scaled to the budget):

       nice -n 10 .venv/bin/python benchmarks/larq_zoo_compat.py --side small \
           [--epochs 3] [--limit-train 6000]

   writes `<results-dir>/larq_zoo_small.json` (methods-table columns).

`--side report` prints the docs tables from the results JSONs.

The machine is shared (2 cores, ~8 engineers): the load average is recorded
per row; compare the ours/zoo ratios, not absolute times, and prefer the
instruction count, which the load does not move.
"""

from __future__ import annotations

import argparse
import functools
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
    "meliusnet22": "literature.MeliusNet22",  # our LCE layout: census and speed only
    "meliusnet22_larq_zoo": "literature.MeliusNet22",  # larq-zoo's layout: loads its weights
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


def op_signature(flatbuffer: bytes) -> list[str]:
    """Per op of the main subgraph, in execution order: name, input and output shapes/dtypes.

    Equal signatures mean both interpreters allocate the same tensors and run the same
    kernels on the same shapes, so their cost can only differ through weight values.
    """
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(flatbuffer, 0))
    dtypes = {v: k for k, v in vars(schema.TensorType).items() if k.isupper()}
    graph = model.subgraphs[0]

    def describe(index: int) -> str:
        if index < 0:
            return "-"  # optional input left out (e.g. no bias)
        t = graph.tensors[index]
        shape = "x".join(str(int(d)) for d in (t.shape if t.shape is not None else ()))
        return f"{dtypes.get(t.type, t.type)}[{shape}]"

    names = op_sequence(flatbuffer)
    return [
        f"{name}({','.join(map(describe, op.inputs))})->({','.join(map(describe, op.outputs))})"
        for name, op in zip(names, graph.operators or [], strict=True)
    ]


def _sequence_difference(ours: list[str], zoo: list[str]) -> dict:
    """How two op lists differ: where first, and how many positions."""
    differing = sum(a != b for a, b in zip(ours, zoo, strict=False)) + abs(len(ours) - len(zoo))
    first = next((i for i, (a, b) in enumerate(zip(ours, zoo, strict=False)) if a != b), None)
    if first is None and len(ours) != len(zoo):
        first = min(len(ours), len(zoo))
    out: dict = {"ops": {"ours": len(ours), "zoo": len(zoo)}, "positions_differing": differing}
    if first is not None:
        out["first_difference"] = {
            "index": first,
            "ours": ours[first] if first < len(ours) else None,
            "zoo": zoo[first] if first < len(zoo) else None,
        }
    return out


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
            logits_unfused=_unfused_logits(model, x),
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


def _unfused_logits(model, x: np.ndarray) -> np.ndarray:
    """The logits with every layer's output exposed, so TensorFlow fuses no ops across layers.

    Grappler/oneDNN fuse e.g. conv + BN differently in TF 2.15 and 2.21; the rounding
    difference can flip the sign of a near-zero activation before a binarisation and
    move the logits of one image by percents. Without fusion both TFs compute each layer
    alone, which compares the graphs and weights rather than the graph optimisers.
    """
    import tensorflow as tf

    outputs = [layer.output for layer in model.layers[1:]]
    everything = tf.keras.Model(model.input, outputs)
    return everything.predict(x, batch_size=4, verbose=0)[-2]  # [-1] is the softmax


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), 1e-12))


def _time_interleaved(flatbuffers: dict[str, bytes], x: np.ndarray, pairs: int) -> dict:
    """Alternate single calls (ABAB…, order flipped every round) so both see the same load.

    On a shared, oversubscribed machine a single call can take 2–5× its quiet-machine
    time; the paired ratio (median over rounds of ours/zoo of the same round) and the
    minimum per model are the robust summaries, the medians are reported too. The CPU
    time is the calling thread's (the interpreter runs there with 1 thread): time spent
    waiting for a core while other jobs run is not in it, cache contention is.
    """
    from bnn_tf.converters.runtime import make_interpreter

    interpreters = {k: make_interpreter(v, num_threads=1) for k, v in flatbuffers.items()}
    sample = x[:1]
    timings = harness.interleaved(
        {k: functools.partial(it.predict, sample) for k, it in interpreters.items()},
        rounds=pairs, warmup=1, cpu_clock=time.thread_time, alternate=True,
    )  # fmt: skip
    outputs = {k: np.asarray(it.predict(x[:4])) for k, it in interpreters.items()}

    def paired(attr: str) -> float:
        ours, zoo = getattr(timings["ours"], attr), getattr(timings["zoo"], attr)
        return round(float(np.median([a / b for a, b in zip(ours, zoo, strict=True)])), 3)

    def per_model(attr: str, stat) -> dict[str, float]:
        return {k: round(float(stat(getattr(t, attr))), 2) for k, t in timings.items()}

    return {
        "median_ms": per_model("wall_ms", np.median),
        "min_ms": per_model("wall_ms", np.min),
        "paired_ratio_median": paired("wall_ms"),
        "cpu_median_ms": per_model("cpu_ms", np.median),
        "cpu_paired_ratio_median": paired("cpu_ms"),
        "pairs": pairs,
        "outputs": outputs,
    }


# fixed hashing and one BLAS thread: the same Python-side work in every count
CALLGRIND_ENV = {"PYTHONHASHSEED": "0", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}


def _lite_interpreter_class():
    """LCE's pybind `LiteInterpreter`, loaded without the `larq_compute_engine` package.

    The package's `__init__` imports its converter and so TensorFlow, which under
    callgrind costs minutes and billions of instructions that have nothing to do
    with the inference.
    """
    import importlib.machinery

    spec = importlib.util.find_spec("larq_compute_engine")  # locates, does not import
    (root,) = spec.submodule_search_locations
    name = "interpreter_wrapper_lite"
    path = Path(root) / "tflite" / "python" / f"{name}.so"
    loader = importlib.machinery.ExtensionFileLoader(name, str(path))
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader(name, loader))
    loader.exec_module(module)
    return module.LiteInterpreter


# Markers around the measured inferences: callgrind zeroes its counters on entering libc's
# getppid and writes a dump (and zeroes again) on entering getpgrp; the interpreter
# library is stripped, so its own `Invoke` cannot be named
ZERO_AT, DUMP_AT = "getppid", "getpgrp"


def invoke_side(args) -> None:
    """The callgrind child: load every `--tflite`, one warm-up inference each, then `--invokes`
    rounds of one inference per model, each between the markers (one dump per inference)."""
    lite = _lite_interpreter_class()
    # (model, threads, use_reference_bconv, use_indirect_bgemm, use_xnnpack), as LCE passes them
    indirect = args.kernel == "indirect"
    interpreters = [lite(Path(t).read_bytes(), 1, False, indirect, False) for t in args.tflite]
    x = [np.load(args.input)]
    for interpreter in interpreters:
        interpreter.predict(x)  # first call: one-time allocations and packing
    getattr(os, ZERO_AT)()
    for _ in range(args.invokes):
        for interpreter in interpreters:
            interpreter.predict(x)
            getattr(os, DUMP_AT)()
    if "tensorflow" in sys.modules:  # would cost callgrind minutes, and hide a regression
        raise RuntimeError("the callgrind child imported TensorFlow")


def _callgrind_total(out_file: Path) -> int:
    for line in out_file.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise ValueError(f"{out_file}: no callgrind summary line")


def count_instructions(
    tflites: list[Path], x: np.ndarray, kernel: str, work: Path, invokes: int = 2
) -> list[list[int]]:
    """Instructions of single-image inferences of each `.tflite` under LCE's interpreter.

    callgrind counts every instruction the process executes, whatever else runs on
    the machine. One child process loads all the models (valgrind's translation of the
    interpreter, most of its run time, is then shared), runs a warm-up inference of
    each, then `invokes` rounds of one inference per model, each counted alone (a
    dump between markers, see `ZERO_AT`). valgrind 3.19 hides AVX-512 from the
    program, so these are the AVX2 code paths (the same for every model).
    Returns, per model, its `invokes` counts.
    """
    work.mkdir(parents=True, exist_ok=True)
    sample = work / f"{tflites[0].stem}_input.npy"
    np.save(sample, x[:1])
    out = work / f"callgrind.{tflites[0].stem}"
    for old in work.glob(f"{out.name}*"):
        old.unlink()
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
           f"--zero-before={ZERO_AT}", f"--dump-before={DUMP_AT}", sys.executable,
           str(Path(__file__).resolve()), "--side", "invoke", "--tflite", *map(str, tflites),
           "--input", str(sample), "--kernel", kernel, "--invokes", str(invokes)]  # fmt: skip
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, env={**os.environ, **CALLGRIND_ENV})
    print(f"  callgrind {len(tflites)} models: {time.perf_counter() - start:.0f} s", flush=True)
    dumps = [
        _callgrind_total(out.with_name(f"{out.name}.{i + 1}"))
        for i in range(invokes * len(tflites))
    ]
    for old in work.glob(f"{out.name}*"):
        old.unlink()
    return [dumps[m :: len(tflites)] for m in range(len(tflites))]


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


def _run_record(recorder: harness.Recorder) -> dict:
    """Which command measured a row, when, under what load (rows of several runs are merged)."""
    header = recorder.header()
    return {k: header[k] for k in ("date", "command", "load_average", "git_commit")}


# written by the first version of the count (difference of two processes)
STALE_INSTRUCTION_KEYS = ("instructions_process_1_inference",)


INSTRUCTION_KEYS = (
    "instructions",
    "instructions_each_inference",
    "instruction_ratio",
    "instructions_kernel",
    "instructions_run",
)


def _write_rows(
    recorder: harness.Recorder,
    updates: dict[str, dict],
    *,
    replace: bool,
    drop: tuple = (),
    keep: tuple = (),
) -> list:
    """Merge `updates` into the results JSON as it is on disk now, and write it.

    Re-read just before writing so that an `--side count` run beside an `--side ours`
    run (callgrind needs no quiet machine) loses neither's rows. `replace` drops the
    old row of a model (a fresh measurement) except its `keep` fields; otherwise
    fields are added to it, less its `drop` fields.
    """
    import fcntl
    import tempfile

    path = recorder.path(NAME)
    with open(Path(tempfile.gettempdir()) / f"{NAME}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # read-merge-write of concurrent runs, one at a time
        previous = json.loads(path.read_text()) if path.exists() else {}
        rows = {r["model"]: r for r in previous.get("rows", [])}
        for name, fields in updates.items():
            old = rows.get(name, {})
            kept = (
                {k: v for k, v in old.items() if k in keep}
                if replace
                else {k: v for k, v in old.items() if k not in drop}
            )
            rows[name] = {**kept, **fields}
        ordered = [rows[k] for k in MODELS if k in rows]
        recorder.write_json(
            NAME,
            {
                "note": "shared 2-core machine; compare ours/zoo ratios, not absolute times. "
                "Rows are merged from several runs: each row's `run` (and `instructions_run`) "
                "records its command, date and load average; the header is the last run's.",
                "goal_rel_diff": GOAL_REL_DIFF,
                "instructions_method": INSTRUCTIONS_METHOD,
                "rows": ordered,
            },
        )
    return ordered


INSTRUCTIONS_METHOD = (
    "valgrind 3.19 --tool=callgrind: instructions of one single-image inference after a "
    "warm-up one (counters zeroed/dumped around the call), two consecutive inferences per "
    "model (`instructions_each_inference`); same LCE 0.16 interpreter, 1 thread, same kernel "
    "choice as the latency (indirect BGEMM where safe); valgrind hides AVX-512, so AVX2 paths"
)


def ours_side(args, argv: list[str] | None) -> None:
    if args.zoo_python:
        _run_zoo_side(args)
    import bnn_tf  # noqa: F401  selects tf_keras before TensorFlow loads

    # isort: split
    import tensorflow as tf

    from bnn_tf import converters
    from bnn_tf import models as zoo
    from bnn_tf.models._weights import load_larq_zoo_weights

    recorder = harness.Recorder(BENCHMARK, argv, args.results_dir)
    art = Path(args.artifacts)
    names = args.models.split(",") if args.models else list(MODELS)
    rows: list[dict] = []
    for name in names:
        h5 = art / f"{name}.h5"
        if not h5.exists():
            print(f"{name}: no {h5} (run the zoo side first); skipped", flush=True)
            continue
        recorder.load_before = harness.load_average()  # per row: rows are written one by one
        zoo_meta = json.loads((art / f"{name}_zoo.json").read_text())
        ref = np.load(art / f"{name}_zoo_outputs.npz")
        tf.keras.backend.clear_session()
        row: dict = {"model": name, "larq_zoo_function": MODELS[name]}
        kwargs = {} if name == "meliusnet22" else {"classifier_activation": "softmax"}
        tf.keras.utils.set_random_seed(args.seed)
        model = zoo.build(name, num_classes=1000, **kwargs)
        try:
            load_larq_zoo_weights(model, h5)
            row["weight_load"] = "ok"
        except Exception as e:  # noqa: BLE001  recorded, the row says what failed
            # (MeliusNet22: a different, LCE-oriented layout.) The op census and the
            # timing do not depend on the weight values, so they still compare.
            row["weight_load"] = f"failed: {e}"
            print(f"{name}: {row['weight_load']}", flush=True)
        row["params"] = {"ours": int(model.count_params()), "zoo": zoo_meta["params"]}
        x = ref["images"]
        if row["weight_load"] == "ok":
            row.update(_compare_outputs(model, name, ref))
        zoo_tflite = art / f"{name}_zoo.tflite"
        if "convert_error" in zoo_meta:
            row["zoo_convert_error"] = zoo_meta["convert_error"]
        ours_fb = None
        if args.convert:
            ours_tflite = art / f"{name}_ours.tflite"
            if args.reuse and ours_tflite.exists():
                # same weights file, same code: the flatbuffer of an earlier invocation
                ours_fb = ours_tflite.read_bytes()
                row["ours_tflite_reused"] = True
            else:
                # written first: if LCE's converter kills the process (it segfaults on
                # DoReFaNet now and then), the row says so
                crashed = {"ours_convert_error": "the LCE converter crashed the process"}
                _write_rows(recorder, {name: {**row, **crashed}}, replace=True)
                start = time.perf_counter()
                try:
                    ours_fb = converters.convert(model)
                except Exception as e:  # noqa: BLE001  recorded (DoReFaNet: LCE's converter fails)
                    row["ours_convert_error"] = f"{type(e).__name__}: {e}"
                    ours_fb = None
                row["convert_seconds"] = round(time.perf_counter() - start, 1)
                if ours_fb is not None:
                    ours_tflite.write_bytes(ours_fb)
        if ours_fb is not None:
            fbs = {"ours": ours_fb}
            if zoo_tflite.exists():
                fbs["zoo"] = zoo_tflite.read_bytes()
            census = {k: op_census(v) for k, v in fbs.items()}
            row["op_counts"] = census
            row["float_ops"] = {k: float_ops(v) for k, v in census.items()}
            row["tflite_bytes"] = {k: len(v) for k, v in fbs.items()}
            if "zoo" in fbs:
                row.update(_compare_graphs(fbs["ours"], fbs["zoo"]))
                timing = _time_interleaved(fbs, x, args.pairs)
                row["latency_ms"] = timing["median_ms"]
                row["latency_min_ms"] = timing["min_ms"]
                row["latency_pairs"] = timing["pairs"]
                row["latency_ratio_paired_median"] = timing["paired_ratio_median"]
                row["cpu_time_ms"] = timing["cpu_median_ms"]
                row["cpu_time_ratio_paired_median"] = timing["cpu_paired_ratio_median"]
                row["latency_ratio_min"] = round(
                    timing["min_ms"]["ours"] / timing["min_ms"]["zoo"], 3
                )
                if row["weight_load"] == "ok":
                    o = timing["outputs"]
                    row["tflite_rel_diff_probs"] = _relative(o["ours"], o["zoo"])
            elif row["weight_load"] == "ok":
                # larq-zoo's does not convert: our .tflite against larq-zoo's Keras outputs
                lite = converters.tflite_predict(fbs["ours"], x)
                row["tflite_rel_diff_probs_vs_zoo_keras"] = _relative(lite, ref["probs"])
        row["run"] = _run_record(recorder)
        # both flatbuffers unchanged: an earlier instruction count still describes them
        keep = INSTRUCTION_KEYS if row.get("ours_tflite_reused") else ()
        rows = _write_rows(recorder, {name: row}, replace=True, keep=keep)
        print(json.dumps({k: v for k, v in row.items() if k != "op_counts"}), flush=True)
        if args.instructions:
            rows = _count_model(recorder, name, art) or rows
    _plot(recorder, rows)


def _compare_outputs(model, name: str, ref) -> dict:
    """Our Keras model's probabilities and logits against larq-zoo's on the same images."""
    import tensorflow as tf

    x = ref["images"]
    probs = model.predict(x, batch_size=4, verbose=0)
    if name == "meliusnet22":  # ours ends on logits
        logits = probs
        probs = tf.nn.softmax(logits).numpy()
    else:
        logits = tf.keras.Model(model.input, model.layers[-2].output).predict(
            x, batch_size=4, verbose=0
        )
    rel = {"probs": _relative(probs, ref["probs"]), "logits": _relative(logits, ref["logits"])}
    out = {
        "images": int(len(x)),
        "keras_rel_diff": rel,
        "keras_top1_agreement": float(np.mean(np.argmax(probs, -1) == np.argmax(ref["probs"], -1))),
        "keras_within_goal": rel["logits"] <= GOAL_REL_DIFF,
    }
    if "logits_unfused" in ref.files and name != "meliusnet22":
        out["keras_rel_diff_unfused"] = {
            # ours vs larq-zoo, both with every layer's output exposed (no cross-layer fusion)
            "logits": _relative(_unfused_logits(model, x), ref["logits_unfused"]),
            # larq-zoo against itself: fused vs unfused (same TF 2.15, same weights)
            "zoo_fused_vs_unfused": _relative(ref["logits"], ref["logits_unfused"]),
        }
    return out


def _compare_graphs(ours: bytes, zoo: bytes) -> dict:
    """Same ops in the same order, and with the same tensor shapes/dtypes?"""
    names = {"ours": op_sequence(ours), "zoo": op_sequence(zoo)}
    signatures = {"ours": op_signature(ours), "zoo": op_signature(zoo)}
    out = {
        # identical op sequences: the same kernels run, so equal latency is expected
        # whatever a noisy timing says
        "same_op_sequence": names["ours"] == names["zoo"],
        "same_op_signature": signatures["ours"] == signatures["zoo"],
    }
    if not out["same_op_signature"]:
        out["op_signature_difference"] = _sequence_difference(signatures["ours"], signatures["zoo"])
    return out


def _count_model(recorder: harness.Recorder, name: str, art: Path) -> list[dict]:
    """callgrind instruction counts of one inference of both flatbuffers, merged into the row."""
    from bnn_tf.converters.runtime import indirect_bgemm_is_safe
    from bnn_tf.converters.tflite_model import parse

    paths = {"ours": art / f"{name}_ours.tflite", "zoo": art / f"{name}_zoo.tflite"}
    if not all(p.exists() for p in paths.values()):
        print(f"{name}: no pair of flatbuffers in {art}; not counted", flush=True)
        return []
    recorder.load_before = harness.load_average()
    x = np.load(art / f"{name}_zoo_outputs.npz")["images"]
    # the kernel `make_interpreter(kernel="auto")` picks for the latency timing
    safe = all(indirect_bgemm_is_safe(parse(p.read_bytes())) for p in paths.values())
    kernel = "indirect" if safe else "default"
    each = count_instructions(list(paths.values()), x, kernel, art / "callgrind")
    counts = dict(zip(paths, each, strict=True))
    fields = {
        "instructions": {k: v[-1] for k, v in counts.items()},
        "instructions_each_inference": counts,
        "instruction_ratio": round(counts["ours"][-1] / counts["zoo"][-1], 5),
        "instructions_kernel": kernel,
        "instructions_run": _run_record(recorder),
    }
    print(f"{name}: instructions {fields['instructions']}, ratio {fields['instruction_ratio']}",
          flush=True)  # fmt: skip
    return _write_rows(recorder, {name: fields}, replace=False, drop=STALE_INSTRUCTION_KEYS)


def count_side(args, argv: list[str] | None) -> None:
    """Instruction counts only, for flatbuffers an earlier `--side ours --convert` left."""
    import bnn_tf  # noqa: F401

    recorder = harness.Recorder(BENCHMARK, argv, args.results_dir)
    rows: list[dict] = []
    for name in args.models.split(",") if args.models else list(MODELS):
        rows = _count_model(recorder, name, Path(args.artifacts)) or rows
    _plot(recorder, rows)


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
    from methods_table import tflite_columns

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
        # the methods table's columns, measured the same way (methods_table.tflite_columns)
        cols = tflite_columns(model, x_test[:1000], y_test[:1000], runs=50)
        rows.append({
            "method": SMALL_MODELS[name],
            "model": name,
            "lce_binary": zoo.info(name).lce_binary,
            "params": int(model.count_params()),
            "test_accuracy": round(float(test_acc), 4),
            "binary_mac_fraction": cols["binary_mac_fraction"],
            "tflite_bytes": cols["tflite_bytes"],
            "lce_latency_median_ms": cols["latency_median_ms"],
            "keras_tflite_top1_agreement": cols["parity_top1_agreement"],
            "parity_images": cols["parity_images"],
            "binary_convs": cols["binary_convs"],
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
    fig, (left, right) = harness.figure(
        2, size=(max(12, 1.8 * len(rows) + 4), 5), gridspec_kw={"width_ratios": [2, 3]}
    )
    names = [r["model"] for r in rows]
    harness.bars(
        left,
        names,
        {
            "larq-zoo 2.4 (TF 2.15)": [r["latency_min_ms"]["zoo"] for r in rows],
            "bnn-tf (TF 2.21)": [r["latency_min_ms"]["ours"] for r in rows],
        },
        log=True,
        ylabel="LCE 0.16 latency, min ms (x86_64, 1 thread)",
        title="LCE latency, interleaved single calls (min of 30)",
    )
    # nan (no bar) where a model has no instruction count yet
    harness.bars(
        right,
        names,
        {
            "wall clock (paired median)": [r["latency_ratio_paired_median"] for r in rows],
            "CPU time (paired median)": [
                r.get("cpu_time_ratio_paired_median", np.nan) for r in rows
            ],
            "instructions (callgrind)": [r.get("instruction_ratio", np.nan) for r in rows],
        },
        annotate="{:.3f}",
        ylabel="ours ÷ larq-zoo",
        title="Latency ratio: noisy wall clock vs load-independent instruction count",
    )
    for text in right.texts:
        text.set_visible(text.get_text() != "nan")  # a model not counted (yet): no bar, no label
        text.set_rotation(90)  # three bars per model: horizontal labels overlap
    right.set_ylim(0.8, 1.2)
    harness.reference_line(right, 1.0, "goal ≤ 1.0", color="black")
    harness.reference_line(right, 0.9, "≤ 0.9 where float ops are removed", color="grey")
    for ax in (left, right):
        for label in ax.get_xticklabels():
            label.set_rotation(30)
            label.set_horizontalalignment("right")
    recorder.write_png(NAME, fig, dpi=120)


def _pair(r: dict, key: str, fmt: str = "{}") -> str:
    v = r.get(key)
    if not v:
        return "—"
    return " / ".join(fmt.format(v[k]) if k in v else "—" for k in ("ours", "zoo"))


def _weight_check(r: dict, *, short: bool = False) -> str:
    load = r.get("weight_load", "—")
    if load.startswith("failed"):
        if short:
            return "does not load (other layout)"
        # "failed: weights file X.h5: <what differs>. Fix: ..." → what differs
        return "does not load: " + load.split(". Fix:")[0].split(": ", 2)[-1]
    if "keras_rel_diff" in r:
        diff = r["keras_rel_diff"]["logits"]
        load += ", 0 (bit-identical)" if diff == 0 else f", {diff:.1e}"
    if "keras_rel_diff_unfused" in r:
        unfused = r["keras_rel_diff_unfused"]
        load += (
            f" ({unfused['logits']:.1e} unfused; larq-zoo vs itself "
            f"{unfused['zoo_fused_vs_unfused']:.1e})"
        )
    return load


def _graph(r: dict) -> str:
    if "same_op_signature" not in r:
        return "—"
    if r["same_op_signature"]:
        return "identical (ops, order, shapes)"
    if r["same_op_sequence"]:
        return "same op order, shapes differ"
    diff = r.get("op_signature_difference", {})
    if r["op_counts"]["ours"] != r["op_counts"]["zoo"]:
        ops = diff.get("ops", {})
        return f"different layout ({ops.get('ours', '?')} / {ops.get('zoo', '?')} ops)"
    return f"same census, order differs ({diff.get('positions_differing', '?')} positions)"


def _instruction_ratio(r: dict) -> str:
    n = r.get("instructions")
    return f"{n['ours'] / n['zoo']:.4f}" if n else "—"


def _compat_rows(results_dir: Path) -> list[dict]:
    path = results_dir / f"{NAME}.json"
    return json.loads(path.read_text())["rows"] if path.exists() else []


def report(args, argv: list[str] | None = None) -> None:
    """Print the docs table and the README's short table (markdown) from the results JSONs."""
    rows = _compat_rows(Path(args.results_dir))
    if rows:
        print(
            "| model | params ours / zoo | .tflite MB ours / zoo | float ops left ours / zoo "
            "| graphs | latency min ms ours / zoo | ratio: wall (paired median) | ratio: CPU time "
            "| ratio: instructions | weight load (`weights=`), max rel. Δ logits |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            size = {k: v / 1e6 for k, v in r.get("tflite_bytes", {}).items()}
            lat, fl = _pair(r, "latency_min_ms"), _pair(r, "float_ops")
            if "zoo_convert_error" in r:
                both = "ours_convert_error" in r
                lat = "neither converts" if both else "larq-zoo's does not convert"
                fl = "— (LCE's converter fails on both)" if both else _pair(r, "float_ops")
            print(
                f"| `{r['model']}` | {_pair(r, 'params', '{:,}')} "
                f"| {_pair({'s': size}, 's', '{:.2f}')} | {fl} | {_graph(r)} | {lat} "
                f"| {r.get('latency_ratio_paired_median', '—')} "
                f"| {r.get('cpu_time_ratio_paired_median', '—')} "
                f"| {_instruction_ratio(r)} | {_weight_check(r)} |"
            )
        print()
        print(
            "| model | params (ours = larq-zoo) | .tflite MB ours / zoo | float ops left ours / zoo "
            "| latency ours ÷ zoo: instructions (wall clock) | weight load, max rel. Δ logits |"
        )
        print("|---|---|---|---|---|---|")
        for r in rows:
            p = r.get("params", {})
            params = (
                f"{p['ours']:,}" if p.get("ours") == p.get("zoo") else _pair(r, "params", "{:,}")
            )
            size = {k: v / 1e6 for k, v in r.get("tflite_bytes", {}).items()}
            latency = _instruction_ratio(r)
            if "latency_ratio_paired_median" in r:
                latency += f" ({r['latency_ratio_paired_median']:.2f})"
            if "zoo_convert_error" in r:
                latency = (
                    "— (LCE's converter fails on both)"
                    if "ours_convert_error" in r
                    else "— (larq-zoo's does not convert; ours does, its .tflite within "
                    f"{r.get('tflite_rel_diff_probs_vs_zoo_keras', float('nan')):.1e} of "
                    "larq-zoo's Keras)"
                )
            print(
                f"| `{r['model']}` | {params} | {_pair({'s': size}, 's', '{:.2f}')} "
                f"| {_pair(r, 'float_ops')} | {latency} | {_weight_check(r, short=True)} |"
            )
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
    parser.add_argument(
        "--side", choices=("zoo", "ours", "count", "small", "report", "invoke"), required=True
    )
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
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="ours: also count one inference's instructions with valgrind's callgrind",
    )
    # the callgrind child (`count_instructions`), not meant to be run by hand
    parser.add_argument("--tflite", nargs="+", default=[], help=argparse.SUPPRESS)
    parser.add_argument("--input", default="", help=argparse.SUPPRESS)
    parser.add_argument("--kernel", default="indirect", help=argparse.SUPPRESS)
    parser.add_argument("--invokes", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=3, help="small side: epochs")
    parser.add_argument("--limit-train", type=int, default=6000, help="small side: images")
    parser.add_argument("--batch-size", type=int, default=64, help="small side")
    args = parser.parse_args(argv)
    if args.side == "zoo":
        zoo_side(args)
    elif args.side == "invoke":
        invoke_side(args)
    else:
        sides = {"ours": ours_side, "count": count_side, "small": small_side, "report": report}
        sides[args.side](args, argv)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
