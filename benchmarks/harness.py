"""The benchmark harness: one record, one interleaved timer, one step timer, shared plots.

Every script in `benchmarks/` (except this file, `run_all.py` and helpers
whose name starts with `_`) is a benchmark. Adding a benchmark is adding one
file, `benchmarks/<name>.py`:

```python
\"\"\"Benchmark: what it measures, how, and what it writes.\"\"\"

import harness  # before bnn_tf: it only reads files, TensorFlow loads with bnn_tf

BENCHMARK = harness.Benchmark(
    name="my_bench",                      # = the file's stem; results/<name>.json
    description="one line for run_all --list",
    default_args=["--epochs", "3"],       # the command behind the committed result
    smoke_args=["--epochs", "1", "--limit-train", "256", "--work", "{tmp}/work"],
)


def main(argv: list[str] | None = None) -> int:
    parser = harness.argument_parser(BENCHMARK, __doc__)   # adds --results-dir
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args(argv)
    record = harness.Recorder(BENCHMARK, argv, args.results_dir)  # load average before
    ...                                                   # measure
    record.write_json(BENCHMARK.name, {"rows": rows})     # header + body, atomic
    fig, ax = harness.figure()
    harness.bars(ax, names, {"ms": values})
    record.write_png(BENCHMARK.name, fig)                 # atomic
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
```

- `BENCHMARK` must be built from literals only: `run_all.py` and the tests read it
  with `ast` (no import, so no TensorFlow start-up and no import side effects).
  `runs={"result_name": [...args...]}` replaces `default_args` when one script
  produces several committed results (e.g. `train_budget`); `manual="sudo ..."`
  marks a benchmark `run_all` does not start (it needs root). In `smoke_args`,
  `{tmp}` stands for a scratch folder; the smoke test adds `--results-dir`.
- The record header (`Recorder.header`, first keys of every results JSON):
  `benchmark`, `date` (UTC), `command`, `machine`, `cpu_model`, `cores`,
  `load_average` (`{"before": [1, 5, 15 min], "after": [...]}`; the machine is
  shared, so a load far above the core count means contended timings),
  `git_commit` (with `-dirty` if the tree had changes), `versions` (python,
  tensorflow, tf_keras, larq, larq_compute_engine, bnn_tf, numpy).
- `interleaved(fns, rounds=...)` times A/B/A/B...: one call of every function per
  round, so load changes hit all alike; `Timing.summary()` gives wall and CPU
  median/min in ms, `ratios()` divides by a baseline.
- `step_timer(eval_data=None)` is the Keras callback for per-step and per-epoch
  wall time (optionally evaluating a test set after each epoch, outside the
  timed part); `.steady_step_ms()` skips each epoch's first (tracing) step.
- `figure`, `bars`, `curves`, `reference_line` and `Recorder.write_png` are the
  shared plot pieces (matplotlib with the Agg backend, written atomically).
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import datetime as dt
import functools
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
# Files in benchmarks/ that are not benchmarks; `_`-prefixed files are helpers too.
NOT_BENCHMARKS = frozenset({"harness.py", "run_all.py"})
VERSIONED_PACKAGES = (
    "tensorflow",
    "tf_keras",
    "larq",
    "larq_compute_engine",
    "bnn_tf",
    "numpy",
)


@dataclass(frozen=True)
class Benchmark:
    """What a benchmark script is called and how it is run.

    Args:
        name: the script's file stem; also the default results file stem.
        description: one line, shown by `run_all.py --list`.
        default_args: the arguments that produced the committed result.
        smoke_args: tiny arguments (seconds to a minute) for the smoke test;
            `{tmp}` is replaced with a scratch folder.
        runs: several committed results from one script: result name → args
            (then `default_args` is unused).
        manual: a command run by hand instead of by `run_all` (e.g. needs root).
        requires_env: environment variables the benchmark needs (e.g. a path to
            sources CI does not have); `$VAR` in the arguments expands to them, and
            the smoke test skips, naming them, when one is unset.
    """

    name: str
    description: str
    default_args: Sequence[str] = ()
    smoke_args: Sequence[str] = ()
    runs: Mapping[str, Sequence[str]] = field(default_factory=dict)
    manual: str | None = None
    requires_env: Sequence[str] = ()

    def missing_env(self) -> list[str]:
        """The `requires_env` variables that are not set here."""
        return [v for v in self.requires_env if not os.environ.get(v)]

    def commands(self) -> dict[str, list[str]]:
        """Result name → script arguments, for every committed result of this script."""
        if self.runs:
            return {k: list(v) for k, v in self.runs.items()}
        return {self.name: list(self.default_args)}

    @property
    def script(self) -> Path:
        return HERE / f"{self.name}.py"


def benchmark_files(folder: Path = HERE) -> list[Path]:
    """Every script in `folder` that must declare a `BENCHMARK`."""
    return sorted(
        p
        for p in folder.glob("*.py")
        if p.name not in NOT_BENCHMARKS and not p.name.startswith("_")
    )


def read_declaration(path: Path) -> Benchmark:
    """The module-level `BENCHMARK = harness.Benchmark(...)` of `path`, read without importing it.

    Raises:
        ValueError: no such assignment, or its arguments are not literals.
    """
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and [getattr(t, "id", None) for t in node.targets] == ["BENCHMARK"]
            and isinstance(node.value, ast.Call)
        ):
            call = node.value
            if call.args:
                raise ValueError(f"{path.name}: give Benchmark(...) keyword arguments only")
            try:
                kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
            except ValueError as exc:
                raise ValueError(
                    f"{path.name}: BENCHMARK's arguments must be literals (run_all reads "
                    f"them without importing the script): {exc}"
                ) from None
            return Benchmark(**kwargs)
    raise ValueError(
        f"{path.name} declares no `BENCHMARK = harness.Benchmark(name=..., ...)`; "
        "every script in benchmarks/ is a benchmark (see benchmarks/harness.py)"
    )


def discover(folder: Path = HERE) -> dict[str, Benchmark]:
    """Name → declaration of every benchmark in `folder`, sorted by name."""
    found = {}
    for path in benchmark_files(folder):
        bench = read_declaration(path)
        if bench.name != path.stem:
            raise ValueError(f"{path.name}: BENCHMARK.name is {bench.name!r}; use {path.stem!r}")
        found[bench.name] = bench
    return dict(sorted(found.items()))


def argument_parser(benchmark: Benchmark, doc: str | None) -> argparse.ArgumentParser:
    """An `ArgumentParser` with the harness options (`--results-dir`) already added."""
    parser = argparse.ArgumentParser(
        prog=f"benchmarks/{benchmark.name}.py",
        description=(doc or benchmark.description).strip().splitlines()[0],
    )
    parser.add_argument(
        "--results-dir",
        type=Path,
        default=RESULTS,
        help="where the JSON and PNG go (default: benchmarks/results)",
    )
    return parser


DATA_OPTIONS = {
    "epochs": (int, "training epochs"),
    "limit_train": (int, "first N training images (default: all 60 000)"),
    "limit_test": (int, "first N test images (default: all 10 000)"),
    "batch_size": (int, "training batch size"),
}


def data_options(parser: argparse.ArgumentParser, **defaults: int | None) -> None:
    """Add the usual data/budget options, e.g. `data_options(p, epochs=3, limit_test=None)`.

    Keys: `epochs`, `limit_train`, `limit_test`, `batch_size`; the value is the default.
    """
    for key, default in defaults.items():
        kind, help_ = DATA_OPTIONS[key]
        parser.add_argument(
            "--" + key.replace("_", "-"), type=kind, default=default, help=f"{help_} ({default})"
        )


# --- the record --------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_commit() -> str | None:
    """HEAD of the checkout the benchmark runs from, `-dirty` if files were changed."""
    try:
        head = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("-dirty" if dirty else "")


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in VERSIONED_PACKAGES:
        try:
            out[name] = metadata.version(name.replace("_", "-"))
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def load_average() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


class Recorder:
    """Writes a benchmark's results: the header first, JSON and PNG atomically.

    Created at the start of the measurement (it notes the load average then);
    every `write_json` stamps the load average at that moment as "after".
    """

    def __init__(
        self, benchmark: Benchmark, argv: Sequence[str] | None, results_dir: Path | str = RESULTS
    ):
        self.benchmark = benchmark
        self.argv = list(sys.argv[1:] if argv is None else argv)
        self.results_dir = Path(results_dir)
        self.load_before = load_average()
        self.started = time.perf_counter()
        from bnn_tf.converters.benchmarking import machine_description

        self._static = {
            "machine": machine_description(),
            "cpu_model": cpu_model(),
            "cores": os.cpu_count(),
        }

    @property
    def command(self) -> str:
        try:
            script = self.benchmark.script.relative_to(Path.cwd())
        except ValueError:
            script = self.benchmark.script
        return shlex.join([sys.executable, str(script), *self.argv])

    def header(self, name: str | None = None) -> dict[str, Any]:
        return {
            "benchmark": name or self.benchmark.name,
            "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "command": self.command,
            **self._static,
            "load_average": {"before": self.load_before, "after": load_average()},
            "git_commit": git_commit(),
            "versions": versions(),
            "elapsed_seconds": round(time.perf_counter() - self.started, 1),
        }

    def path(self, stem: str, suffix: str = ".json") -> Path:
        return self.results_dir / f"{stem}{suffix}"

    def previous_rows(self, stem: str, conditions: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The rows of `results_dir/<stem>.json` if measured under `conditions`, else none.

        So a rerun with the same conditions resumes the record, and one with other
        conditions starts a new one.
        """
        path = self.path(stem)
        previous = json.loads(path.read_text()) if path.exists() else {}
        return list(previous.get("rows", [])) if previous.get("conditions") == conditions else []

    def write_json(self, stem: str, body: Mapping[str, Any]) -> Path:
        """Write `results_dir/<stem>.json`: the header, then `body` (whose keys win)."""
        from bnn_tf import atomic

        self.results_dir.mkdir(parents=True, exist_ok=True)
        path = atomic.write_json(self.path(stem), {**self.header(stem), **body})
        print(f"wrote {path}", flush=True)
        return path

    def write_png(self, stem: str, fig: Any, *, dpi: int = 110, suffix: str = ".png") -> Path:
        """Save `fig` to `results_dir/<stem><suffix>` atomically and close it."""
        self.results_dir.mkdir(parents=True, exist_ok=True)
        path = save_figure(fig, self.path(stem, suffix), dpi=dpi)
        print(f"wrote {path}", flush=True)
        return path


def pending(
    rows: Sequence[Mapping[str, Any]], key: str, names: Sequence[str], seeds: Sequence[int]
) -> Iterator[tuple[str, int]]:
    """(name, seed) of every run not yet in `rows` (by `row[key]` and `row["seed"]`).

    Seeds outer, so an interrupted record has every name for its first seeds.
    """
    done = {(r[key], r.get("seed")) for r in rows}
    for seed in seeds:
        for name in names:
            if (name, seed) in done:
                print(f"{name} seed {seed}: already measured, skipped", flush=True)
            else:
                yield name, seed


def run_context(run: Path | str) -> dict[str, Any]:
    """Settings, history and state of a `bnn-tf train` folder (finished or not), for a record."""
    import json

    from bnn_tf import training

    run = Path(run)
    history_file = run / training.HISTORY_FILE
    return {
        "run_dir": str(run),
        "config": json.loads((run / training.RUN_FILE).read_text()).get("config"),
        "finished": (run / training.SUMMARY_FILE).exists(),
        "history": json.loads(history_file.read_text()) if history_file.exists() else [],
    }


def group_by(rows: Sequence[Mapping[str, Any]], key: str) -> dict[Any, list[Mapping[str, Any]]]:
    """Rows grouped by `row[key]` (e.g. the runs of every seed of one setting), in first-seen order."""
    groups: dict[Any, list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row[key], []).append(row)
    return groups


def fashion_mnist(*, limit_train: int | None = None, limit_test: int | None = None):
    """The local Fashion-MNIST splits (never downloaded), cut to the first N images if asked."""
    from bnn_tf import data

    splits = data.load("fashion_mnist", download=False)
    return dataclasses.replace(
        splits,
        x_train=splits.x_train[:limit_train],
        y_train=splits.y_train[:limit_train],
        x_test=splits.x_test[:limit_test],
        y_test=splits.y_test[:limit_test],
    )


def train_arms(
    models: Sequence[str],
    seeds: Sequence[int],
    arms: Sequence[str],
    config_for: Callable[[str, int, str], Any],
    *,
    work: str,
    splits: Any,
    label: str = "arm",
    extra: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """One `bnn_tf.experiment.train` run per model × seed × arm, a result row each.

    `config_for(model, seed, arm)` gives the run's `TrainConfig`; the arms run
    interleaved per seed, so load changes hit every arm alike. Runs live under
    `work/<model>_<arm>_s<seed>` and resume when interrupted. A row has the
    run (`model/arm`), `label: arm`, the seed, test and validation accuracy,
    the training seconds, and `extra(summary)`.
    """
    from bnn_tf import experiment

    rows = []
    for model in models:
        for seed in seeds:
            for arm in arms:
                summary = experiment.train(
                    config_for(model, seed, arm), f"{work}/{model}_{arm}_s{seed}",
                    splits=splits, verbose=2,
                )  # fmt: skip
                rows.append({
                    "run": f"{model}/{arm}", "model": model, label: arm, "seed": seed,
                    "test_accuracy": round(summary["test_accuracy"], 4),
                    "validation_accuracy": summary["validation_accuracy"],
                    "seconds": summary["seconds_total"],
                    **(extra(summary) if extra else {}),
                })  # fmt: skip
                print(f"{model} {arm} seed {seed}: {summary['test_accuracy']:.4f} "
                      f"({summary['seconds_total']:.0f} s)", flush=True)  # fmt: skip
    return rows


# --- timers ------------------------------------------------------------------------------


def _ms(values: list[float], stat: str) -> float:
    import numpy as np

    return float(np.median(values) if stat == "median" else np.min(values))


@dataclass
class Timing:
    """Per-call wall-clock and CPU milliseconds of one timed function."""

    wall_ms: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)

    def summary(self, digits: int = 4) -> dict[str, float | int]:
        return {
            "wall_median_ms": round(_ms(self.wall_ms, "median"), digits),
            "wall_min_ms": round(_ms(self.wall_ms, "min"), digits),
            "cpu_median_ms": round(_ms(self.cpu_ms, "median"), digits),
            "cpu_min_ms": round(_ms(self.cpu_ms, "min"), digits),
            "rounds": len(self.wall_ms),
        }


def interleaved(
    fns: Mapping[str, Callable[[], Any]],
    *,
    rounds: int,
    warmup: int = 2,
    cpu_clock: Callable[[], float] = time.process_time,
    alternate: bool = False,
) -> dict[str, Timing]:
    """Time every function `rounds` times, one call of each per round (A, B, A, B, ...).

    Interleaving makes a change in machine load hit every function alike, so
    the ratios hold on a shared machine even when absolute times do not.
    `warmup` untimed calls of each come first (tracing, allocation).
    `cpu_clock` is `time.process_time` (all threads: TensorFlow's pools) or
    `time.thread_time` (only the caller's thread, e.g. a 1-thread interpreter).
    `alternate` reverses the order every other round (AB, BA, ...), so neither
    function always runs right after the other (warm caches, turbo state).
    """
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    timings = {k: Timing() for k in fns}
    keys = list(fns)
    for i in range(rounds):
        for k in keys[::-1] if alternate and i % 2 else keys:
            fn = fns[k]
            wall, cpu = time.perf_counter(), cpu_clock()
            fn()
            timings[k].cpu_ms.append((cpu_clock() - cpu) * 1e3)
            timings[k].wall_ms.append((time.perf_counter() - wall) * 1e3)
    return timings


def ratios(
    timings: Mapping[str, Timing],
    base: str,
    *,
    stats: Sequence[str] = ("cpu_median", "wall_median"),
) -> dict[str, dict[str, float]]:
    """`{name: {"<stat>_ratio": value / base's value}}` for every timed function."""
    ref = timings[base].summary()
    return {
        k: {f"{s}_ratio": round(t.summary()[f"{s}_ms"] / ref[f"{s}_ms"], 3) for s in stats}
        for k, t in timings.items()
    }


@functools.cache
def step_timer_class() -> type:
    """The `StepTimer` Keras callback class (built on first use: importing the harness
    does not start TensorFlow)."""
    import tensorflow as tf

    class StepTimer(tf.keras.callbacks.Callback):
        """Wall time of every training step and epoch; optionally a test evaluation per epoch.

        `steps` holds seconds per batch, `epochs` one dict per epoch: `epoch`,
        `seconds` (training only), the epoch's logs (`loss`, `accuracy`, ...) and,
        with `eval_data=(x, y)`, `test_accuracy` (evaluated after the clock stops).
        """

        def __init__(self, eval_data: tuple[Any, Any] | None = None, *, verbose: bool = False):
            super().__init__()
            self.eval_data = eval_data
            self.verbose = verbose
            self.steps: list[float] = []
            self.epochs: list[dict[str, Any]] = []
            self._step_count_at_epoch: list[int] = []

        def on_train_batch_begin(self, batch, logs=None):
            self._t = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.steps.append(time.perf_counter() - self._t)

        def on_epoch_begin(self, epoch, logs=None):
            self._step_count_at_epoch.append(len(self.steps))
            self._e = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            entry: dict[str, Any] = {"epoch": epoch + 1, "seconds": time.perf_counter() - self._e}
            entry.update({k: float(v) for k, v in (logs or {}).items()})
            if self.eval_data is not None:
                x, y = self.eval_data
                _, acc = self.model.evaluate(x, y, batch_size=500, verbose=0)
                entry["test_accuracy"] = float(acc)
            self.epochs.append(entry)
            if self.verbose:
                print(f"  epoch {epoch + 1}: {entry}", flush=True)

        def steady_step_ms(self) -> dict[str, float]:
            """Median and min ms per step, skipping each epoch's first step (tracing, warm-up)."""
            import numpy as np

            bounds = [*self._step_count_at_epoch, len(self.steps)]
            spans = zip(bounds, bounds[1:], strict=False)
            steady = [s for a, b in spans for s in self.steps[a + 1 : b]]
            steady = steady or self.steps
            return {
                "step_ms_median": round(1e3 * float(np.median(steady)), 1),
                "step_ms_min": round(1e3 * float(np.min(steady)), 1),
            }

    return StepTimer


def step_timer(eval_data: tuple[Any, Any] | None = None, *, verbose: bool = False):
    """A new `StepTimer` callback (see `step_timer_class`)."""
    return step_timer_class()(eval_data, verbose=verbose)


# --- plots -------------------------------------------------------------------------------


def figure(ncols: int = 1, *, size: tuple[float, float] = (7, 4), **kwargs):
    """`(fig, axes)` from matplotlib (Agg backend); `axes` is one Axes when `ncols == 1`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(1, ncols, figsize=size, **kwargs)


def save_figure(fig: Any, path: Path, *, dpi: int = 110) -> Path:
    import matplotlib.pyplot as plt

    from bnn_tf import atomic

    fig.tight_layout()
    atomic.write_with(path, lambda tmp: fig.savefig(tmp, format="png", dpi=dpi))
    plt.close(fig)
    return path


def bars(
    ax: Any,
    labels: Sequence[str],
    series: Mapping[str, Sequence[float]],
    *,
    horizontal: bool = False,
    colors: Sequence[str] | str | None = None,
    annotate: str | None = None,
    log: bool = False,
    **labels_kw: str,
) -> None:
    """Grouped bars: one group per label, one bar per series (a legend if > 1 series).

    `annotate="{:.3f}"` writes each value on its bar; `labels_kw` are Axes setters
    (`xlabel=`, `ylabel=`, `title=`).
    """
    import numpy as np

    pos = np.arange(len(labels))
    width = 0.8 / max(len(series), 1)
    for i, (name, values) in enumerate(series.items()):
        offset = (i - (len(series) - 1) / 2) * width
        color = colors if len(series) == 1 else None
        draw = ax.barh if horizontal else ax.bar
        # A lone series is named by the axis label; a legend entry would only repeat it.
        label = name if len(series) > 1 else "_nolegend_"
        drawn = draw(pos + offset, list(values), width, label=label, color=color)
        if annotate:
            ax.bar_label(drawn, labels=[annotate.format(v) for v in values], fontsize=7)
    (ax.set_yticks if horizontal else ax.set_xticks)(pos, list(labels))
    if log:
        (ax.set_xscale if horizontal else ax.set_yscale)("log")
    if len(series) > 1:
        ax.legend(fontsize=8)
    ax.grid(axis="x" if horizontal else "y", alpha=0.3)
    _set(ax, labels_kw)


def curves(
    ax: Any,
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    *,
    logy: bool = False,
    integer_x: bool = False,
    **labels_kw: str,
) -> None:
    """One line with markers per `label: (x, y)`; `None` in y is drawn as a gap."""
    import numpy as np

    for name, (x, y) in series.items():
        y = [np.nan if v is None else v for v in y]
        (ax.semilogy if logy else ax.plot)(list(x), y, "-o", markersize=3, label=name)
    if integer_x:
        import matplotlib.ticker

        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    if series:
        ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    _set(ax, labels_kw)


def reference_line(
    ax: Any, value: float, label: str, *, vertical: bool = False, color: str = "red", ls: str = "--"
) -> None:
    """A goal / budget / baseline line, added to the legend."""
    (ax.axvline if vertical else ax.axhline)(value, color=color, ls=ls, lw=1, label=label)
    ax.legend(fontsize=8)


def _set(ax: Any, labels_kw: Mapping[str, str]) -> None:
    for key, value in labels_kw.items():
        getattr(ax, f"set_{key}")(value)
