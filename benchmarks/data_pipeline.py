"""Training from an image folder vs from in-memory arrays: step rate and peak memory.

Writes Fashion-MNIST's 60 000 training images once as PNG files in class
folders under /tmp (and a 10 000-image folder of hard links to the first
10 000), then for each of {array, folder} × {10 k, 60 k images} runs, in a fresh
subprocess, the same bnn_small training steps (batch 128) and records:

- the training step rate after a warm-up (images/s);
- the peak resident memory of the process (ru_maxrss).

Goals (issue 15): folder step rate ≥ 90 % of the array rate, and peak memory
flat in the number of images for the folder pipeline (it streams: file names
are shuffled, images decoded per batch, nothing cached).

    nice -n 10 .venv/bin/python benchmarks/data_pipeline.py [--steps 60] [--root /tmp/bnn_tf_folders]

Writes benchmarks/results/data_pipeline.json and .png. The machine is shared:
the record carries the load average before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import harness

BENCHMARK = harness.Benchmark(
    name="data_pipeline",
    description="image-folder tf.data pipeline vs in-memory arrays: step rate and peak memory",
    default_args=[],
    smoke_args=["--sizes", "300", "600", "--steps", "3", "--warmup", "1", "--repeats", "1",
                "--root", "{tmp}/folders"],
)  # fmt: skip
SIZES = (10_000, 60_000)
BATCH = 128


def write_folders(root: Path, sizes: tuple[int, ...] = SIZES) -> dict[int, Path]:
    """A PNG folder of the first max(sizes) training images (written once) and, for each
    smaller size, a folder of hard links into it."""
    import bnn_tf  # noqa: F401  selects tf_keras before TensorFlow loads

    # isort: split
    import tensorflow as tf

    from bnn_tf import data

    top = max(sizes)
    full = root / f"fm{top // 1000}k" if top % 1000 == 0 else root / f"fm{top}"
    done = full / ".complete"
    if not done.exists():
        splits = data.load("fashion_mnist")
        pairs = zip(splits.x_train[:top], splits.y_train[:top], strict=True)
        for i, (img, label) in enumerate(pairs):
            d = full / f"class_{int(label)}"
            d.mkdir(parents=True, exist_ok=True)
            (d / f"{i:05d}.png").write_bytes(tf.io.encode_png(img).numpy())
        done.write_text(f"{top}\n")
    folders = {top: full}
    for n in sorted(set(sizes) - {top}):
        small = root / (f"fm{n // 1000}k" if n % 1000 == 0 else f"fm{n}")
        if not (small / ".complete").exists():
            for p in sorted(full.rglob("*.png")):
                if int(p.stem) < n:
                    target = small / p.parent.name / p.name
                    target.parent.mkdir(parents=True, exist_ok=True)
                    if not target.exists():
                        os.link(p, target)
            (small / ".complete").write_text(f"{n}\n")
        folders[n] = small
    return folders


def measure(mode: str, n: int, folder: Path, steps: int, warmup: int) -> dict:
    """One measurement (run in its own process, so ru_maxrss is this case's peak)."""
    import bnn_tf  # noqa: F401  selects tf_keras before TensorFlow loads

    # isort: split
    import tensorflow as tf

    from bnn_tf import data, training
    from bnn_tf import models as zoo

    tf.keras.utils.set_random_seed(0)
    if mode == "array":
        splits = data.load("fashion_mnist")
        ds = data.make_dataset(
            splits.x_train[:n], splits.y_train[:n], batch_size=BATCH, training=True, seed=0
        )
    else:
        images = data.open_data(folder, val_split=0.0, test_split=0.01, log=lambda _: None)
        ds = images.dataset("train", batch_size=BATCH, training=True, seed=0)
    model = zoo.build("bnn_small", input_shape=(28, 28, 1), num_classes=10)
    training.compile_model(model, steps_per_epoch=steps, epochs=1)
    it = iter(ds.repeat())
    step = model.make_train_function()
    for _ in range(warmup):
        step(it)
    start = time.perf_counter()
    for _ in range(steps):
        logs = step(it)
    float(logs["loss"])  # wait for the last step
    seconds = time.perf_counter() - start
    return {
        "mode": mode,
        "images": n,
        "steps": steps,
        "batch_size": BATCH,
        "seconds": round(seconds, 3),
        "images_per_second": round(steps * BATCH / seconds, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def plot(record: dict, load: list[float]):
    rows = [
        {"mode": k.split("_")[0], "images": int(k.split("_")[1]), **v}
        for k, v in record["summary"].items()
    ]
    labels = [f"{r['mode']}\n{r['images'] // 1000}k" for r in rows]
    fig, (a, b) = harness.figure(2, size=(9, 3.5))
    colours = ["tab:blue" if r["mode"] == "array" else "tab:orange" for r in rows]
    a.bar(labels, [r["images_per_second"] for r in rows], color=colours)
    a.set_ylabel("training images / s")
    a.set_title("step rate (bnn_small, batch 128)")
    b.bar(labels, [r["peak_rss_mb"] for r in rows], color=colours)
    b.set_ylabel("peak RSS (MB)")
    b.set_title("peak memory")
    fig.suptitle(f"folder vs in-memory arrays; load avg before {load}")
    fig.tight_layout()
    return fig


def main(argv: list[str] | None = None) -> int:
    ap = harness.argument_parser(BENCHMARK, __doc__)
    ap.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), help="images per folder")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--root", default="/tmp/bnn_tf_folders")
    ap.add_argument("--repeats", type=int, default=2, help="runs per case (interleaved)")
    ap.add_argument("--one", nargs=3, metavar=("MODE", "N", "FOLDER"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    sizes = tuple(sorted(args.sizes))
    if args.one:
        mode, n, folder = args.one
        print(json.dumps(measure(mode, int(n), Path(folder), args.steps, args.warmup)))
        return 0

    recorder = harness.Recorder(BENCHMARK, argv, args.results_dir)
    t0 = time.perf_counter()
    folders = write_folders(Path(args.root), sizes)
    write_seconds = time.perf_counter() - t0
    rows = []
    for rep in range(args.repeats):
        for n in sizes:
            # Alternate the order so a load change on the shared machine hits both modes.
            modes = ("array", "folder") if rep % 2 == 0 else ("folder", "array")
            for mode in modes:
                cmd = [sys.executable, __file__, "--steps", str(args.steps), "--warmup",
                       str(args.warmup), "--one", mode, str(n), str(folders[n])]  # fmt: skip
                res = subprocess.run(cmd, capture_output=True, text=True, check=True)
                row = json.loads(res.stdout.strip().splitlines()[-1])
                row["repeat"] = rep
                row["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
                print(row, flush=True)
                rows.append(row)

    def best(mode: str, n: int) -> dict:
        # Fastest run per case (least disturbed by other jobs); its peak RSS alongside.
        same = [r for r in rows if r["mode"] == mode and r["images"] == n]
        rate = max(r["images_per_second"] for r in same)
        rss = sorted(r["peak_rss_mb"] for r in same)[len(same) // 2]
        return {"images_per_second": rate, "peak_rss_mb": rss}

    by = {(m, n): best(m, n) for m in ("array", "folder") for n in sizes}
    ratios = {
        n: round(by[("folder", n)]["images_per_second"] / by[("array", n)]["images_per_second"], 3)
        for n in sizes
    }
    lo, hi = sizes[0], sizes[-1]
    folder_growth = by[("folder", hi)]["peak_rss_mb"] - by[("folder", lo)]["peak_rss_mb"]
    array_growth = by[("array", hi)]["peak_rss_mb"] - by[("array", lo)]["peak_rss_mb"]
    record = {
        "note": "2-core machine shared by ~8 engineers: step rates move with the load; "
        "the ratio folder/array is measured back to back for each size.",
        "folder_png_write_seconds": round(write_seconds, 1),
        "measurements": rows,
        "summary": {f"{m}_{n}": v for (m, n), v in by.items()},
        "summary_rule": "per case: the fastest run's images/s and the median peak RSS",
        "folder_over_array_step_rate": ratios,
        f"peak_rss_growth_{lo}_to_{hi}_images_mb": {
            "folder": round(folder_growth, 1),
            "array": round(array_growth, 1),
        },
        "goals": {
            "folder_step_rate_at_least_90pct_of_array": all(v >= 0.9 for v in ratios.values()),
            # Flat: the folder pipeline's peak grows by less than 50 MB from the smallest
            # to the largest folder (10 k → 60 k images by default).
            "folder_memory_grows_less_than_50mb": folder_growth < 50,
        },
    }
    recorder.write_json(BENCHMARK.name, record)
    recorder.write_png(BENCHMARK.name, plot(record, recorder.load_before))
    print(json.dumps({"ratios": ratios, "goals": record["goals"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
