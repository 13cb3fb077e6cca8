"""The bundle's C++ runner (converters/deploy_templates/rpi) built and run the way a user
would, on x86_64 natively and for aarch64 under qemu-aarch64-static.

    benchmarks/device_runner_check.py --bundle BUNDLE --lce-source-dir LCE \\
        [--tensorflow-source-dir TF] [--deps-dir DEPS] [--build-root DIR]

LCE is a larq/compute-engine checkout (its TensorFlow in third_party/tensorflow unless
--tensorflow-source-dir says otherwise); BUNDLE is a `bnn-tf deploy --target rpi` folder
with samples (≥ 200 for the record); DEPS optionally holds TFLite's CMake dependencies
unpacked as DEPS/<name> (abseil-cpp, cpuinfo, eigen, farmhash, fft2d, flatbuffers,
gemmlowp, ml_dtypes, neon2sse, ruy, pthreadpool, FXdiv): each one present is passed as
FETCHCONTENT_SOURCE_DIR_<NAME> / <NAME>_SOURCE_DIR and the build is fully disconnected.
Nothing is downloaded by this script. Not in CI (CI has no LCE source).

Steps:
1. build bnn_runner (+ self-test) for x86_64 with lce_benchmark_model, and cross-compile
   it for aarch64 (aarch64-linux-gnu-g++), with the bundle's CMake defaults;
2. `--print-kernel --require-optimized` on both: the default LceBconv2d kernel must be
   LCE's optimised BGEMM, and the build must have ruy (and popcount);
3. every sample image through the runner (`--json`, float32-exact logits) natively and
   under qemu, compared with samples/expected.json (top-1 and max |Δlogit|);
4. which code ran on aarch64: qemu's translated-block log (`-d in_asm`) of one image names
   the functions executed; the default run must contain LCE's NEON BGEMM kernel and not
   its reference kernel, and a `--reference-bconv` run must show the opposite (so the
   probe can tell them apart);
5. x86_64 latency, interleaved rounds: `bnn-tf bench` (LCE's Python interpreter,
   indirect BGEMM), LCE's lce_benchmark_model (default and indirect kernel) and
   bnn_runner (default and indirect kernel), as ratios to `bnn-tf bench`;
6. benchmarks/results/device_runner_check.{json,png}; exit 1 if a goal is missed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import harness
import numpy as np

BENCHMARK = harness.Benchmark(
    name="device_runner_check",
    description="bundle's C++ runner: optimised LCE kernel, x86_64 + aarch64 (qemu) vs expected",
    manual="LCE_SOURCE_DIR=... python benchmarks/device_runner_check.py --bundle BUNDLE "
    "--build-root DIR [--deps-dir DEPS] [--objects-only]",
    smoke_args=["--bundle", "$BNN_DEVICE_BUNDLE", "--objects-only",
                "--build-root", "{tmp}/build"],
    requires_env=["LCE_SOURCE_DIR", "BNN_DEVICE_BUNDLE"],
)  # fmt: skip

REPO = harness.REPO
# DEPS/<folder> -> the CMake variable that points TFLite's build at it.
DEPENDENCY_VARIABLES = {
    "abseil-cpp": "FETCHCONTENT_SOURCE_DIR_ABSEIL-CPP",
    "cpuinfo": "FETCHCONTENT_SOURCE_DIR_CPUINFO",
    "eigen": "FETCHCONTENT_SOURCE_DIR_EIGEN",
    "farmhash": "FETCHCONTENT_SOURCE_DIR_FARMHASH",
    "fft2d": "FETCHCONTENT_SOURCE_DIR_FFT2D",
    "flatbuffers": "FETCHCONTENT_SOURCE_DIR_FLATBUFFERS",
    "gemmlowp": "FETCHCONTENT_SOURCE_DIR_GEMMLOWP",
    "ml_dtypes": "FETCHCONTENT_SOURCE_DIR_ML_DTYPES",
    "neon2sse": "FETCHCONTENT_SOURCE_DIR_NEON2SSE",
    "ruy": "FETCHCONTENT_SOURCE_DIR_RUY",
    "pthreadpool": "PTHREADPOOL_SOURCE_DIR",
    "FXdiv": "FXDIV_SOURCE_DIR",
}
# Under --build-root: the copy of the bundle's runner/ and the two CMake build trees.
RUNNER_COPY = "src-rpi"
BUILD_DIRS = {"x86_64": "bx86", "aarch64": "barm"}
TOOLCHAIN = """set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
"""
QEMU = ["qemu-aarch64-static", "-L", "/usr/aarch64-linux-gnu"]
# Mangled-name fragments of LCE's bconv kernels, as they appear in qemu's in_asm log.
NEON_BGEMM = "BinaryKernelNeon"  # core/bgemm/kernels_aarch64.h
OPT_BGEMM = "EvalOptBGEMM"  # tflite/kernels/bconv2d.cc
REFERENCE = "EvalRef"  # tflite/kernels/bconv2d.cc
TOP1_GOAL, LOGIT_GOAL = 1.0, 1e-5


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def run(cmd: list[str], *, cwd: Path | None = None, logfile: Path | None = None) -> str:
    """Runs `cmd` at low priority; raises with the output's tail on failure."""
    res = subprocess.run(["nice", "-n", "15", *cmd], cwd=cwd, capture_output=True, text=True)
    if logfile is not None:
        with logfile.open("a") as f:
            f.write(f"$ {' '.join(cmd)}\n{res.stdout}{res.stderr}\n")
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({res.returncode}):\n{res.stdout[-3000:]}"
                           f"\n{res.stderr[-3000:]}")  # fmt: skip
    return res.stdout


def sync_tree(src: Path, dst: Path) -> None:
    """Copies src over dst, rewriting only changed files (unchanged mtimes: no rebuild)."""
    for f in src.rglob("*"):
        if f.is_file():
            target = dst / f.relative_to(src)
            if not target.exists() or target.read_bytes() != f.read_bytes():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(f, target)


def configure(args, arch: str, source: Path, logfile: Path) -> list[str]:
    """Runs cmake for `arch`; returns the targets a full check builds."""
    build_dir = args.build_root / BUILD_DIRS[arch]
    flags = [
        "-G", "Ninja", "-DCMAKE_BUILD_TYPE=Release", f"-DLCE_SOURCE_DIR={args.lce_source_dir}",
        f"-DTENSORFLOW_SOURCE_DIR={args.tensorflow_source_dir}",
    ]  # fmt: skip
    if args.deps_dir:
        flags.append("-DFETCHCONTENT_FULLY_DISCONNECTED=ON")
        for name, var in DEPENDENCY_VARIABLES.items():
            if (args.deps_dir / name).is_dir():
                flags.append(f"-D{var}={args.deps_dir / name}")
    targets = ["bnn_runner", "bnn_runner_selftest"]
    if arch == "x86_64":
        flags.append("-DBNN_BUILD_LCE_BENCHMARK=ON")
        targets.append("lce_benchmark_model")
    elif not (build_dir / "CMakeCache.txt").exists():
        toolchain = args.build_root / "aarch64-linux-gnu.cmake"
        toolchain.write_text(TOOLCHAIN)
        flags.append(f"-DCMAKE_TOOLCHAIN_FILE={toolchain}")
    log(f"configure {arch} in {build_dir}")
    run(["cmake", "-S", str(source), "-B", str(build_dir), *flags], logfile=logfile)
    return targets


def build(args, arch: str, source: Path, logfile: Path) -> Path:
    build_dir = args.build_root / BUILD_DIRS[arch]
    targets = configure(args, arch, source, logfile)
    log(f"build {arch} ({', '.join(targets)}), -j{args.jobs}; log: {logfile}")
    run(["cmake", "--build", str(build_dir), "-j", str(args.jobs), "--target", *targets],
        logfile=logfile)  # fmt: skip
    return build_dir


def kernel_report(prefix: list[str], runner: Path) -> dict:
    out = run([*prefix, str(runner), "--print-kernel", "--require-optimized"])
    kernel = re.search(r"bconv2d kernel: (\S+)", out).group(1)
    flags = dict(re.findall(r"(TFLITE_WITH_RUY|hardware popcount|XNNPACK) (yes|no)", out))
    return {"output": out.strip(), "kernel": kernel, "ruy": flags.get("TFLITE_WITH_RUY") == "yes",
            "popcount": flags.get("hardware popcount") == "yes", "xnnpack": flags.get("XNNPACK") == "yes"}  # fmt: skip


def classify(prefix, runner: Path, bundle: Path, images: list[str], extra=(), runs=1) -> list:
    norm = json.loads((bundle / "metadata.json").read_text())["input"]["normalization"]
    cmd = [*prefix, str(runner), "--model", str(bundle / "model.tflite"), "--json",
           "--scale", repr(norm["scale"]), "--offset", repr(norm["offset"]), "--invert", "no",
           "--runs", str(runs), "--warmup", "0" if runs == 1 else "3", *extra]  # fmt: skip
    for image in images:
        cmd += ["--image", str(bundle / image)]
    return [json.loads(line) for line in run(cmd).splitlines() if line.startswith("{")]


def compare(results: list[dict], samples: list[dict]) -> dict:
    got = np.array([r["logits"] for r in results], dtype=np.float64)
    want = np.array([s["logits"] for s in samples], dtype=np.float64)
    top1 = np.array([r["top1"] for r in results])
    delta = np.abs(got - want)
    return {
        "images": len(results),
        "top1_agreement": float((top1 == np.array([s["expected_top1"] for s in samples])).mean()),
        "top1_vs_label": float((top1 == np.array([s["label"] for s in samples])).mean()),
        "max_abs_logit_diff": float(delta.max()),
        "mean_abs_logit_diff": float(delta.mean()),
        "images_with_identical_logits": int((delta.max(axis=1) == 0).sum()),
        "_delta": delta.max(axis=1),
    }


def qemu_trace(runner: Path, bundle: Path, image: str, extra: list[str], trace: Path) -> dict:
    """Functions qemu translated (i.e. executed) while classifying one image."""
    if trace.exists():
        trace.unlink()
    classify([*QEMU, "-d", "in_asm", "-D", str(trace)], runner, bundle, [image], extra)
    text = trace.read_text(errors="replace")
    names = set(re.findall(r"^IN: (\S+)", text, flags=re.M))
    pick = sorted(n for n in names if any(k in n for k in (NEON_BGEMM, OPT_BGEMM, REFERENCE)))
    result = {
        "flags": extra,
        "translated_functions": len(names),
        "neon_bgemm_kernel": any(NEON_BGEMM in n for n in names),
        "eval_opt_bgemm": any(OPT_BGEMM in n for n in names),
        "eval_reference": any(REFERENCE in n for n in names),
        "matching_symbols": pick[:12],
        "trace_bytes": trace.stat().st_size,
    }
    trace.unlink()  # hundreds of MB
    return result


def lce_benchmark(binary: Path, model: Path, runs: int, indirect: bool) -> float:
    out = subprocess.run(
        ["nice", "-n", "15", str(binary), f"--graph={model}", "--num_threads=1",
         f"--num_runs={runs}", "--warmup_runs=5", "--min_secs=0",
         f"--use_indirect_bgemm={'true' if indirect else 'false'}"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    text = out.stdout + out.stderr
    m = re.search(r"Inference \(avg\): ([0-9.e+]+)", text)
    if not m:
        raise RuntimeError(f"no timing in lce_benchmark_model output:\n{text[-2000:]}")
    return float(m.group(1)) / 1e3  # µs -> ms (mean)


def bnn_tf_bench(model: Path, runs: int) -> float:
    out = run([str(REPO / ".venv" / "bin" / "bnn-tf"), "bench", str(model), "--runs", str(runs),
               "--json"])  # fmt: skip
    return float(json.loads(out)["mean_ms"])


def latency(args, bx86: Path, bundle: Path, image: str) -> dict:
    model = bundle / "model.tflite"
    runner = bx86 / "bnn_runner"
    contenders = {
        "bnn_tf_bench (LCE Python, indirect)": lambda: bnn_tf_bench(model, args.bench_runs),
        "lce_benchmark_model (default)": lambda: lce_benchmark(
            bx86 / "lce_benchmark_model", model, args.bench_runs, False),
        "lce_benchmark_model (indirect)": lambda: lce_benchmark(
            bx86 / "lce_benchmark_model", model, args.bench_runs, True),
        "bnn_runner (default)": lambda: classify(
            [], runner, bundle, [image], runs=args.bench_runs)[0]["latency_ms"]["mean"],
        "bnn_runner (indirect)": lambda: classify(
            [], runner, bundle, [image], ["--indirect-bgemm"], runs=args.bench_runs
        )[0]["latency_ms"]["mean"],
    }  # fmt: skip
    rounds: dict[str, list[float]] = {k: [] for k in contenders}
    loads = []
    for r in range(args.rounds):
        loads.append(os.getloadavg()[0])
        for name, fn in contenders.items():  # interleaved: drift in load hits every contender
            rounds[name].append(fn())
        log(f"latency round {r + 1}/{args.rounds}: " + ", ".join(
            f"{k.split(' ')[0]} {v[-1]:.3f}" for k, v in rounds.items()))  # fmt: skip
    ref = "bnn_tf_bench (LCE Python, indirect)"
    per_round_ratio = {
        k: [a / b for a, b in zip(v, rounds[ref], strict=True)] for k, v in rounds.items()
    }
    return {
        "unit": "ms, mean of each contender's timed runs (lce_benchmark_model reports means)",
        "runs_per_measurement": args.bench_runs,
        "rounds": args.rounds,
        "load_average_1min_per_round": [round(v, 2) for v in loads],
        "per_round_ms": rounds,
        "median_ms": {k: float(np.median(v)) for k, v in rounds.items()},
        "median_ratio_to_bnn_tf_bench": {
            k: float(np.median(v)) for k, v in per_round_ratio.items()
        },
    }


# ---- object-level checks (--objects-only): no TFLite library needed -----------------------

KERNEL_OBJ = "bnn_lce_kernels.dir"  # CMake's object folder of the LCE kernels library
REGISTRATIONS = ("REF", "OPT_BGEMM", "OPT_INDIRECT_BGEMM")


def _object_target(build_dir: Path, suffix: str) -> str:
    targets = run(["ninja", "-C", str(build_dir), "-t", "targets", "all"])
    for line in targets.splitlines():
        name = line.split(":")[0]
        if name.endswith(suffix):
            return name
    raise RuntimeError(f"no ninja target ending in {suffix} in {build_dir}")


def _control_compile(build_dir: Path, target: str, drop: tuple[str, ...], out: Path) -> None:
    """The build's own compile command for `target`, minus the flags in `drop`, into `out`."""
    cmd = run(["ninja", "-C", str(build_dir), "-t", "commands", target]).strip().splitlines()[-1]
    argv = cmd.split()
    kept, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a in drop or a == "-MD":
            continue
        if a in ("-MT", "-MF", "-o"):
            skip = True
            continue
        kept.append(a)
    run([*kept, "-o", str(out)], cwd=build_dir)


def _function_bodies(disassembly: str) -> dict[str, list[str]]:
    """Instruction + relocation text of each function, without addresses (comparable)."""
    bodies: dict[str, list[str]] = {}
    current = None
    for line in disassembly.splitlines():
        head = re.match(r"^[0-9a-f]+ <(.+)>:$", line)
        if head:
            current = head.group(1)
            bodies[current] = []
        elif current and line.strip():
            text = re.sub(r"^\s*[0-9a-f]+:\s*", "", line)
            text = re.sub(r"\s+#\s.*$", "", text)  # x86 comments name the function itself
            text = re.sub(r"\b[0-9a-f]+ <", "<", text)  # branch targets' addresses
            if not text.startswith("nop"):  # alignment padding
                bodies[current].append(text.strip())
    return bodies


def _registration_of_default(objdump: str, obj: Path) -> str:
    """Which of LCE's registrations Register_BCONV_2D() returns, from its machine code."""
    bodies = _function_bodies(run([objdump, "-d", "-C", "-r", "--no-show-raw-insn", str(obj)]))
    ns = "compute_engine::tflite::"
    default = bodies[f"{ns}Register_BCONV_2D()"]
    same = [r for r in REGISTRATIONS if bodies.get(f"{ns}Register_BCONV_2D_{r}()") == default]
    return same[0] if len(same) == 1 else f"undetermined ({same})"


def _count(pattern: str, text: str) -> int:
    return len(re.findall(pattern, text, flags=re.M))


def object_checks(args, source: Path, logfile: Path) -> dict:
    """Configures both builds, compiles only the runner and LCE's kernels, and reads the
    machine code: the default bconv registration, popcount instructions, NEON kernels.
    Controls: the same compile commands without -DTFLITE_WITH_RUY and without -mpopcnt
    (what the bundle's CMake produced before issue 17)."""
    out: dict = {}
    for arch, objdump in (("x86_64", "objdump"), ("aarch64", "aarch64-linux-gnu-objdump")):
        build_dir = args.build_root / BUILD_DIRS[arch]
        configure(args, arch, source, logfile)
        bconv = _object_target(build_dir, "kernels/bconv2d.cc.o")
        runner = _object_target(build_dir, "src/bnn_runner.cc.o")
        (build_dir / runner).unlink(missing_ok=True)  # recompiled: its warnings are counted
        log(f"{arch}: compile bnn_runner.cc and LCE's kernels only")
        text = run(["ninja", "-C", str(build_dir), "-j", str(args.jobs), runner, bconv,
                    _object_target(build_dir, "kernels/bmaxpool.cc.o"),
                    _object_target(build_dir, "kernels/quantization.cc.o")], logfile=logfile)  # fmt: skip
        runner_warnings = [
            line for line in text.splitlines() if "warning:" in line and "bnn_runner" in line
        ]
        control = args.build_root / f"control-bconv2d-{arch}.o"
        log(f"{arch}: control compile of bconv2d.cc without TFLITE_WITH_RUY / -mpopcnt")
        _control_compile(build_dir, bconv, ("-DTFLITE_WITH_RUY", "-mpopcnt"), control)
        entry = {"bnn_runner_cc_warnings": runner_warnings}
        for name, obj in (("bundle_cmake", build_dir / bconv), ("control_before", control)):
            dis = run([objdump, "-d", "-r", "--no-show-raw-insn", str(obj)])
            syms = run(["nm", "-C", str(obj)] if arch == "x86_64" else
                       ["aarch64-linux-gnu-nm", "-C", str(obj)])  # fmt: skip
            e = {"default_registration": _registration_of_default(objdump, obj)}
            if arch == "x86_64":
                e["popcnt_instructions"] = _count(r"\tpopcnt\s", dis)
                e["libgcc_popcount_calls"] = _count(r"__popcount[sd]i2", dis)
            else:
                e["neon_cnt_instructions"] = _count(r"\tcnt\s+v\d+\.", dis)
                e["neon_bgemm_kernels_compiled"] = sorted(
                    set(re.findall(r"BinaryKernelNeon\w+<[^>]*>", syms))
                )
            entry[name] = e
        out[arch] = entry
        log(f"  {arch}: {entry}")
    return out


def plot_objects(record: dict):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x86 = record["object_checks"]["x86_64"]
    arm = record["object_checks"]["aarch64"]
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    labels = ["before (no ruy, no -mpopcnt)", "bundle CMake now"]
    keys = ["control_before", "bundle_cmake"]
    w = 0.38
    xs = np.arange(2)
    a.bar(xs - w / 2, [x86[k]["popcnt_instructions"] for k in keys], w, label="popcnt instructions")
    a.bar(xs + w / 2, [x86[k]["libgcc_popcount_calls"] for k in keys], w,
          label="calls to libgcc __popcountdi2")  # fmt: skip
    a.set_xticks(xs, labels)
    a.set_title("x86_64 LCE bconv2d.o: popcount")
    a.legend(fontsize=8)
    rows = [[arch, k.replace("_", " "), record["object_checks"][arch][k]["default_registration"]]
            for arch in ("x86_64", "aarch64") for k in keys]  # fmt: skip
    b.axis("off")
    table = b.table(cellText=rows, colLabels=["arch", "build", "Register_BCONV_2D() returns"],
                    loc="center")  # fmt: skip
    table.scale(1, 1.6)
    b.set_title(f"default LceBconv2d kernel (machine code); aarch64 NEON CNT: "
                f"{arm['bundle_cmake']['neon_cnt_instructions']}", fontsize=9)  # fmt: skip
    fig.tight_layout()
    return fig


def plot(record: dict, deltas: dict):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.5))
    for name, d in deltas.items():
        a.hist(np.maximum(d, 1e-9), bins=np.logspace(-9, -3, 40), alpha=0.6, label=name)
    a.axvline(LOGIT_GOAL, color="k", ls="--", lw=1, label="goal 1e-5")
    a.set_xscale("log")
    a.set_xlabel("max |Δlogit| per image vs samples/expected.json (1e-9 = identical)")
    a.set_ylabel("images")
    a.legend(fontsize=8)
    a.set_title("bnn_runner vs LCE's Python interpreter")
    lat = record["latency_x86_64"]
    names = list(lat["median_ratio_to_bnn_tf_bench"])
    ratios = [lat["median_ratio_to_bnn_tf_bench"][n] for n in names]
    b.barh(names, ratios, color="tab:blue")
    for i, (n, r) in enumerate(zip(names, ratios, strict=True)):
        b.text(r, i, f" {r:.2f}× ({lat['median_ms'][n]:.2f} ms)", va="center", fontsize=8)
    b.axvline(1.0, color="k", lw=1)
    b.set_xlabel("latency / bnn-tf bench (median of interleaved rounds; x86_64, 1 thread)")
    b.invert_yaxis()
    b.set_xlim(0, max(ratios) * 1.45)
    b.set_title("x86_64 latency, same model")
    fig.suptitle(f"device_runner_check: {record['bundle_model']}", fontsize=10)
    fig.tight_layout()
    return fig


def main(argv: list[str] | None = None) -> int:
    p = harness.argument_parser(BENCHMARK, __doc__)
    p.add_argument("--bundle", type=Path, required=True)
    p.add_argument("--lce-source-dir", type=Path, default=os.environ.get("LCE_SOURCE_DIR"))
    p.add_argument("--tensorflow-source-dir", type=Path,
                   default=os.environ.get("TENSORFLOW_SOURCE_DIR"))  # fmt: skip
    p.add_argument("--tensorflow-version-note", default="",
                   help="what the TensorFlow copy is (goes into the record)")  # fmt: skip
    p.add_argument("--deps-dir", type=Path, default=os.environ.get("BNN_TFLITE_DEPS_DIR"))
    p.add_argument("--build-root", type=Path, default=Path("/var/tmp/bnn-tf-device-runner"))
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--rounds", type=int, default=5, help="interleaved latency rounds")
    p.add_argument("--bench-runs", type=int, default=50)
    p.add_argument("--objects-only", action="store_true",
                   help="compile only the runner and LCE's kernels (minutes, not hours) and "
                   "check their machine code; no TFLite library, no runs")  # fmt: skip
    args = p.parse_args(argv)
    recorder = harness.Recorder(BENCHMARK, argv, args.results_dir)
    if not args.lce_source_dir:
        p.error("give --lce-source-dir or LCE_SOURCE_DIR")
    args.lce_source_dir = args.lce_source_dir.resolve()
    args.tensorflow_source_dir = (
        args.tensorflow_source_dir or args.lce_source_dir / "third_party" / "tensorflow"
    ).resolve()
    for tool in ("cmake", "ninja", "g++", "aarch64-linux-gnu-g++", "qemu-aarch64-static"):
        if shutil.which(tool) is None:
            p.error(f"{tool} not found (Debian: cmake ninja-build g++ g++-aarch64-linux-gnu "
                    "qemu-user-static)")  # fmt: skip
    bundle = args.bundle.resolve()
    expected = json.loads((bundle / "samples" / "expected.json").read_text())
    samples = expected["samples"]
    images = [s.get("file") or s["pgm"] for s in samples]  # "pgm": bundles before RGB samples
    args.build_root.mkdir(parents=True, exist_ok=True)
    logfile = args.build_root / "device_runner_check.log"
    source = args.build_root / RUNNER_COPY
    sync_tree(bundle / "runner", source)

    record: dict = {}
    record["bundle_model"] = json.loads((bundle / "metadata.json").read_text())["model"].get(
        "name", bundle.name
    )
    record["sources"] = {
        "lce_source_dir": str(args.lce_source_dir),
        "tensorflow_source_dir": str(args.tensorflow_source_dir),
        "tensorflow_version": _tf_version(args.tensorflow_source_dir),
        "tensorflow_note": args.tensorflow_version_note,
        "offline_dependencies": sorted(
            n for n in DEPENDENCY_VARIABLES if args.deps_dir and (args.deps_dir / n).is_dir()
        ),
        "compilers": {
            "x86_64": run(["g++", "--version"]).splitlines()[0],
            "aarch64": run(["aarch64-linux-gnu-g++", "--version"]).splitlines()[0],
            "qemu": run(["qemu-aarch64-static", "--version"]).splitlines()[0],
        },
    }
    if args.objects_only:
        record["mode"] = (
            "objects-only: runner and LCE kernels compiled, TFLite not built, nothing run"
        )
        record["object_checks"] = object_checks(args, source, logfile)
        oc = record["object_checks"]
        record["goals"] = {
            "default_registration_is_opt_bgemm_on_both": all(
                oc[a]["bundle_cmake"]["default_registration"] == "OPT_BGEMM" for a in oc
            ),
            "control_shows_reference_before": all(
                oc[a]["control_before"]["default_registration"] == "REF" for a in oc
            ),
            "x86_64_hardware_popcount": oc["x86_64"]["bundle_cmake"]["popcnt_instructions"] > 0
            and oc["x86_64"]["bundle_cmake"]["libgcc_popcount_calls"] == 0,
            "aarch64_neon_bgemm_compiled": bool(
                oc["aarch64"]["bundle_cmake"]["neon_bgemm_kernels_compiled"]
            ),
            "bnn_runner_cc_compiles_without_warnings": not any(
                oc[a]["bnn_runner_cc_warnings"] for a in oc
            ),
        }
        recorder.write_json(BENCHMARK.name, record)
        recorder.write_png(BENCHMARK.name, plot_objects(record))
        log(f"goals: {record['goals']}")
        return 0 if all(record["goals"].values()) else 1

    t0 = time.monotonic()
    bx86 = build(args, "x86_64", source, logfile)
    barm = build(args, "aarch64", source, logfile)
    record["build_seconds_this_run"] = round(time.monotonic() - t0)

    targets = {"x86_64": ([], bx86), "aarch64_qemu": (QEMU, barm)}
    record["selftest"] = {k: run([*pre, str(b / "bnn_runner_selftest")]).strip().splitlines()[-1]
                          for k, (pre, b) in targets.items()}  # fmt: skip
    record["kernel"] = {k: kernel_report(pre, b / "bnn_runner") for k, (pre, b) in targets.items()}
    kernels = {k: v["kernel"] for k, v in record["kernel"].items()}
    log(f"kernels: {kernels}")

    accuracy, deltas = {}, {}
    for name, (pre, b) in targets.items():
        for flags in ([], ["--indirect-bgemm"]):
            key = f"{name}{' indirect' if flags else ''}"
            log(f"classify {len(images)} images: {key}")
            results = classify(pre, b / "bnn_runner", bundle, images, flags)
            c = compare(results, samples)
            deltas[key] = c.pop("_delta")
            c["bconv_kernel"] = results[0]["bconv_kernel"]
            accuracy[key] = c
            log(f"  {c}")
    record["agreement_with_expected_json"] = accuracy
    record["expected_json_reference_runtime"] = expected.get("reference_runtime")

    log("qemu in_asm traces (default and reference kernel)")
    record["aarch64_executed_kernels"] = {
        name: qemu_trace(barm / "bnn_runner", bundle, images[0], flags,
                         args.build_root / f"trace-{name}.log")
        for name, flags in (("default", []), ("reference", ["--reference-bconv"]))
    }  # fmt: skip
    log(f"  {record['aarch64_executed_kernels']}")

    log("x86_64 latency")
    record["latency_x86_64"] = latency(args, bx86, bundle, images[0])

    traces = record["aarch64_executed_kernels"]
    goals = {
        "default_kernel_is_optimized_bgemm_on_both": all(
            v["kernel"] == "optimized_bgemm" and v["ruy"] for v in record["kernel"].values()
        ),
        "x86_64_has_hardware_popcount": record["kernel"]["x86_64"]["popcount"],
        "top1_100_percent_everywhere": all(
            v["top1_agreement"] >= TOP1_GOAL for v in accuracy.values()
        ),
        "max_abs_logit_diff_le_1e-5_everywhere": all(
            v["max_abs_logit_diff"] <= LOGIT_GOAL for v in accuracy.values()
        ),
        "aarch64_default_runs_neon_bgemm_not_reference": traces["default"]["neon_bgemm_kernel"]
        and not traces["default"]["eval_reference"],
        "probe_sees_reference_kernel_when_asked": traces["reference"]["eval_reference"]
        and not traces["reference"]["neon_bgemm_kernel"],
        "at_least_200_images": len(images) >= 200,
    }
    record["goals"] = goals
    recorder.write_json(BENCHMARK.name, record)
    recorder.write_png(BENCHMARK.name, plot(record, deltas))
    log(f"goals: {goals}")
    return 0 if all(goals.values()) else 1


def _tf_version(tf_dir: Path) -> str:
    header = tf_dir / "tensorflow" / "core" / "public" / "version.h"
    if not header.exists():
        return "unknown"
    text = header.read_text()
    parts = [re.search(rf"#define TF_{k}_VERSION (\d+)", text) for k in ("MAJOR", "MINOR", "PATCH")]
    return ".".join(m.group(1) for m in parts if m)


if __name__ == "__main__":
    sys.exit(main())
