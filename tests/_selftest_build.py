"""Shared test helper: the C++ runner's TFLite-free self-test, built with CMake."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest


def build_selftest(source: Path, build: Path) -> Path:
    """Configure and build the runner in `source` in self-test-only mode into `build`.

    Warnings are errors, so a template change that only warns fails here first.
    Skips the test without cmake or g++.
    """
    if shutil.which("cmake") is None or shutil.which("g++") is None:
        pytest.skip("cmake/g++ not installed")
    subprocess.run(
        ["cmake", "-S", str(source), "-B", str(build), "-DBNN_SELFTEST_ONLY=ON",
         "-DCMAKE_CXX_FLAGS=-Wall -Wextra -Werror"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    subprocess.run(["cmake", "--build", str(build)], check=True, capture_output=True, text=True)
    return build
