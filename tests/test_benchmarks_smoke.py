"""Every benchmark goes through the harness: declared, listed by run_all, and runnable.

The fast tests read the `BENCHMARK` declarations without importing the scripts
(so a new script that skips the harness fails the default run). The slow smoke
test runs every benchmark in-process with its tiny `smoke_args` into a scratch
results folder and checks the record: the harness header and the PNG.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest

BENCH_DIR = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.append(str(BENCH_DIR))

import harness  # noqa: E402
import run_all  # noqa: E402

BENCHMARKS = harness.discover()
HEADER_KEYS = {
    "benchmark",
    "date",
    "command",
    "machine",
    "cpu_model",
    "cores",
    "load_average",
    "git_commit",
    "versions",
}


def test_every_script_declares_a_benchmark():
    files = harness.benchmark_files()
    assert len(files) >= 12, [f.name for f in files]
    for path in files:
        bench = harness.read_declaration(path)  # raises with the fix when missing
        assert bench.name == path.stem
        assert bench.description
        assert bench.smoke_args, f"{path.name}: give it tiny smoke_args"
        assert bench.manual or bench.commands()


def test_benchmark_names_and_result_names_are_unique():
    names = [harness.read_declaration(p).name for p in harness.benchmark_files()]
    assert len(names) == len(set(names)) == len(BENCHMARKS)
    results = [r for b in BENCHMARKS.values() for r in b.commands()]
    assert len(results) == len(set(results)), results


def test_run_all_lists_every_benchmark(capsys):
    assert run_all.main(["--list"]) == 0
    listed = capsys.readouterr().out
    for bench in BENCHMARKS.values():
        for result in [bench.name] if bench.manual else bench.commands():
            assert any(line.split()[0] == result for line in listed.splitlines()), result
    runnable = run_all.commands()
    assert {r for b in BENCHMARKS.values() if not b.manual for r in b.commands()} == set(runnable)
    for result, cmd in runnable.items():
        assert Path(cmd[1]).is_file(), (result, cmd)


def test_a_script_without_declaration_is_reported(tmp_path):
    (tmp_path / "new_bench.py").write_text("def main(argv=None):\n    return 0\n")
    with pytest.raises(ValueError, match="declares no `BENCHMARK"):
        harness.discover(tmp_path)
    (tmp_path / "new_bench.py").write_text(
        "import harness\nARGS = ['--x']\n"
        "BENCHMARK = harness.Benchmark(name='new_bench', description='d', default_args=ARGS)\n"
    )
    with pytest.raises(ValueError, match="must be literals"):
        harness.discover(tmp_path)
    (tmp_path / "new_bench.py").write_text(
        "import harness\nBENCHMARK = harness.Benchmark(name='other', description='d')\n"
    )
    with pytest.raises(ValueError, match="use 'new_bench'"):
        harness.discover(tmp_path)


def test_interleaved_timer_alternates_and_summarises():
    import time

    calls: list[str] = []

    def a():
        calls.append("a")
        time.sleep(0.002)

    def b():
        calls.append("b")
        time.sleep(0.03)  # 15× a: the ratio stays > 1.5 even when a loaded machine adds ~10 ms

    timings = harness.interleaved({"a": a, "b": b}, rounds=3, warmup=1)
    assert calls == ["a", "b"] + ["a", "b"] * 3
    summary = timings["a"].summary()
    assert summary["rounds"] == 3
    assert 2 <= summary["wall_min_ms"] <= summary["wall_median_ms"]
    ratio = harness.ratios(timings, "a", stats=("wall_median",))
    assert ratio["a"]["wall_median_ratio"] == 1.0
    assert ratio["b"]["wall_median_ratio"] > 1.5
    with pytest.raises(ValueError, match="rounds"):
        harness.interleaved({"a": lambda: None}, rounds=0)
    calls.clear()
    harness.interleaved({"a": a, "b": b}, rounds=3, warmup=0, alternate=True)
    assert calls == ["a", "b", "b", "a", "a", "b"]


def _load(bench: harness.Benchmark):
    spec = importlib.util.spec_from_file_location(f"bench_{bench.name}", bench.script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.parametrize("name", list(BENCHMARKS))
def test_benchmark_smoke(name, tmp_path):
    import tensorflow as tf

    bench = BENCHMARKS[name]
    if bench.missing_env():
        pytest.skip(f"{name} needs {', '.join(bench.missing_env())} (sources CI does not have)")
    results = tmp_path / "results"
    args = [os.path.expandvars(a.replace("{tmp}", str(tmp_path))) for a in bench.smoke_args]
    module = _load(bench)
    assert bench == module.BENCHMARK  # the AST reading matches the imported object
    tf.keras.backend.clear_session()
    # 1 = "goal not met", which tiny runs are allowed; errors raise.
    assert module.main(["--results-dir", str(results), *args]) in (0, 1)
    records = sorted(results.glob("*.json"))
    assert records, f"{name} wrote no JSON into --results-dir"
    for path in records:
        record = json.loads(path.read_text())
        assert set(record) >= HEADER_KEYS, sorted(HEADER_KEYS - set(record))
        assert set(record["load_average"]) == {"before", "after"}
        assert record["versions"]["tensorflow"] and record["versions"]["larq"]
        assert record["benchmark"] == path.stem
        assert list(results.glob(f"{path.stem}*.png")), f"no PNG next to {path.name}"
    assert not list(harness.RESULTS.glob("*.tmp*")), "a temporary file left in results/"
