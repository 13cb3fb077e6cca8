"""The Android demo's Android-free Java classes and their JUnit 4 tests, on a plain JVM.

`android_demo/run_jvm_tests.sh` compiles `org.bnntf.demo.core` without
android.jar (so it stays Android-free) and runs the JUnit tests. With a real
bundle from `bnn-tf deploy`, `RealBundleTest` checks the Java metadata
parser, pre-processing and top-k against Python on real Fashion-MNIST images.
Needs javac and Debian's junit4 (`make setup` installs it as root).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from bnn_tf import data
from bnn_tf.converters.deploy import deploy

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "android_demo" / "run_jvm_tests.sh"

# Skipped on a developer machine without a JDK/junit4; never in CI (CI=true), where
# `make test` installs junit4 and a missing toolchain must fail, not pass silently.
pytestmark = pytest.mark.skipif(
    not os.environ.get("CI")
    and (shutil.which("javac") is None or not Path("/usr/share/java/junit4.jar").is_file()),
    reason="needs javac and junit4 (apt-get install default-jdk-headless junit4)",
)


def _run(*jvm_args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(SCRIPT), *jvm_args], capture_output=True, text=True, timeout=300, check=False
    )


def test_jvm_unit_tests_pass():
    res = _run()
    assert res.returncode == 0, res.stdout + res.stderr
    assert "OK (" in res.stdout


@pytest.fixture(scope="module")
def android_bundle(trained_bnn_small, trained_bnn_small_tflite, fmnist, tmp_path_factory):
    """A real android bundle and Python's pre-processed inputs for its sample images."""
    root = tmp_path_factory.mktemp("android")
    bundle = deploy(
        trained_bnn_small, root / "bundle", target="android", tflite=trained_bnn_small_tflite,
        samples=4,
    )  # fmt: skip
    expected_dir = root / "expected"
    expected_dir.mkdir()
    samples = json.loads((bundle.directory / "samples" / "expected.json").read_text())["samples"]
    for s in samples:
        values = data.preprocess(fmnist.x_test[s["test_index"]]).reshape(-1)
        # 9 significant digits identify a float32 exactly, so Java can compare with ==.
        text = "\n".join(f"{float(v):.9g}" for v in values) + "\n"
        (expected_dir / (Path(s["png"]).stem + ".txt")).write_text(text)
    return bundle.directory, expected_dir


def test_java_matches_python_on_a_real_bundle(android_bundle):
    bundle, expected = android_bundle
    res = _run(f"-Dbnn.bundle={bundle}", f"-Dbnn.expected={expected}", "-Dbnn.require=1")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "OK (" in res.stdout


def test_real_bundle_check_detects_a_difference(android_bundle, tmp_path):
    bundle, expected = android_bundle
    broken = tmp_path / "expected"
    shutil.copytree(expected, broken)
    first = sorted(broken.glob("*.txt"))[0]
    values = np.array(first.read_text().split(), dtype=np.float32)
    values[300] += np.float32(1 / 127.5)  # one grey level off in one pixel
    first.write_text("\n".join(f"{float(v):.9g}" for v in values) + "\n")
    res = _run(f"-Dbnn.bundle={bundle}", f"-Dbnn.expected={broken}", "-Dbnn.require=1")
    assert res.returncode != 0
    assert "preprocessingAndTopKMatchPython" in res.stdout
