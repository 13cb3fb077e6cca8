"""Run the benchmarks with the settings of the committed results (`make bench`).

The benchmarks and their commands are the `BENCHMARK` declarations of the
scripts in this folder (see `harness.py`): nothing is listed twice. They run
one after another, each in a fresh process (the machine has 2 cores; parallel
runs would distort each other's timings). Expect a few hours on 2 cores.

    python benchmarks/run_all.py                  # all
    python benchmarks/run_all.py --list           # names and commands
    python benchmarks/run_all.py demo recu_60min  # by benchmark or result name
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import time

import harness


def commands() -> dict[str, list[str]]:
    """Result name → command line, for every committed result `run_all` can produce."""
    out = {}
    for bench in harness.discover().values():
        if bench.manual:
            continue
        for result, args in bench.commands().items():
            out[result] = [sys.executable, str(bench.script), *args]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="benchmarks or result names (default: all)")
    parser.add_argument("--list", action="store_true", help="print the benchmarks and commands")
    args = parser.parse_args(argv)
    benchmarks = harness.discover()
    runnable = commands()
    if args.list:
        for bench in benchmarks.values():
            if bench.manual:
                print(f"{bench.name:<24} {bench.manual}   (manual)")
                continue
            for result, args_ in bench.commands().items():
                cmd = shlex.join([f"benchmarks/{bench.name}.py", *args_])
                print(f"{result:<24} python {cmd}")
        return 0
    # A benchmark name selects all its results (train_budget → both budget runs).
    selected: list[str] = []
    for name in args.names:
        if name in runnable:
            selected.append(name)
        elif name in benchmarks and not benchmarks[name].manual:
            selected.extend(benchmarks[name].commands())
        else:
            parser.error(f"unknown benchmark {name!r}; choose from {sorted(runnable)}")
    failed = []
    for name in selected or list(runnable):
        cmd = runnable[name]
        print(f"== {name}: {shlex.join(cmd)}", flush=True)
        start = time.perf_counter()
        code = subprocess.call(cmd)
        print(f"== {name}: exit {code} after {time.perf_counter() - start:.0f} s", flush=True)
        if code:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
