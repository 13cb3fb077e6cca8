"""benchmarks/train_budget.py --verify: the conversion check joins the record of the timed run.

A finished run's record keeps its header (the timed run's date, load and elapsed
time) when the check is added later; a fresh run with `--verify` records both at once.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCH_DIR = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.append(str(BENCH_DIR))

pytestmark = pytest.mark.slow

TINY = ["--model", "bnn_small", "--epochs", "1", "--limit-train", "256", "--limit-test", "200",
        "--name", "tiny", "--goal", "0.3"]  # fmt: skip


def _script():
    spec = importlib.util.spec_from_file_location(
        "train_budget_under_test", BENCH_DIR / "train_budget.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _timed_run(tmp_path):
    """A tiny timed run recorded without the check: the script, its arguments, the record."""
    script = _script()
    common = ["--results-dir", str(tmp_path / "results"), "--run-dir", str(tmp_path / "run"), *TINY]
    assert script.main(common) in (0, 1)  # 1: goal not met, allowed for a tiny run
    return script, common, tmp_path / "results" / "tiny.json"


def test_verify_is_added_to_a_finished_runs_record(tmp_path):
    script, common, path = _timed_run(tmp_path)
    run = tmp_path / "run"
    timed = json.loads(path.read_text())
    assert "conversion" not in timed

    assert script.main([*common, "--verify"]) == 0
    record = json.loads(path.read_text())
    for key in ("date", "command", "load_average", "elapsed_seconds", "history"):
        assert record[key] == timed[key], key  # the timed run's header and body stay
    conversion = record["conversion"]
    assert conversion["binary_layers"] == conversion["on_lce_bconv2d"] == 5  # bnn_small
    assert conversion["lce_bconv2d_ops"] == 5 and conversion["fallbacks"] == []
    assert "default" in conversion["kernels"] and conversion["kernel"] == "default"
    assert conversion["test_images"] == 200
    assert conversion["top1_agreement"] >= 0.99
    assert conversion["keras_accuracy"] == pytest.approx(record["final_test_accuracy"], abs=1e-6)
    assert "--verify" in conversion["recorded"]["command"]
    assert record["conversion_goal_met"] is (conversion["top1_agreement"] >= script.MIN_AGREEMENT)
    assert (run / "model.tflite").stat().st_size > 0


def test_a_record_of_another_configuration_is_not_merged_into(tmp_path):
    script, common, path = _timed_run(tmp_path)
    other = json.loads(path.read_text())
    other["config"]["seed"] = 99  # a record written for another run under the same name
    path.write_text(json.dumps(other))
    assert script.main([*common, "--verify"]) in (0, 1)
    record = json.loads(path.read_text())
    assert record["config"]["seed"] == 0  # re-recorded for this run, check included
    assert record["conversion"]["binary_layers"] == 5
