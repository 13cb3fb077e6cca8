"""The main job: train → convert → verify → bench on Fashion-MNIST, with a report.

`bnn-tf demo --out DIR` (and `make demo`) runs this. DIR ends up with
`model.keras`, `history.json`, `curves.png`, `model.tflite`,
`float_twin.tflite`, `report.json` and `report.md`.

The goals checked here are the walking skeleton's acceptance: test
accuracy ≥ 0.88, Keras↔TFLite top-1 agreement ≥ 99.9 % and every binary
conv layer converted to `LceBconv2d`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bnn_tf import atomic, data, experiment, training

DEMO_MODEL = "bnn_small"
GOALS = {"test_accuracy": 0.88, "top1_agreement": 0.999}


def run(
    *,
    out_dir: str | os.PathLike[str] = "runs/demo",
    epochs: int = 8,
    limit_train: int | None = None,
    limit_test: int | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    bench_runs: int = 100,
    log: Callable[[str], None] = print,
    verbose: int | str = "auto",
) -> dict[str, Any]:
    """Run the whole demo and return the report (also written to `out_dir`)."""
    from bnn_tf import converters
    from bnn_tf import models as zoo

    out = Path(out_dir)
    started = time.perf_counter()
    splits = data.load("fashion_mnist", data_dir=data_dir)

    log(f"[1/4] train {DEMO_MODEL} for {epochs} epochs → {out}")
    config = training.TrainConfig(model=DEMO_MODEL, epochs=epochs, limit_train=limit_train)
    summary = experiment.train(config, out, splits=splits, verbose=verbose, log=log)

    log("[2/4] convert with larq-compute-engine")
    model = converters.load_keras_model(out / training.MODEL_FILE)
    conversion = converters.convert_to_file(model, out / "model.tflite")
    ops = converters.inspect(conversion.path)
    expected_binary = converters.binary_conv_layers(model)

    x_test, y_test = splits.x_test, splits.y_test
    if limit_test is not None:
        x_test, y_test = x_test[:limit_test], y_test[:limit_test]
    log(f"[3/4] verify Keras vs TFLite on {len(x_test)} test images")
    parity = converters.verify(
        model, conversion.path, data.preprocess(x_test), y_test, progress=verbose != 0
    )

    log("[4/4] bench against the float twin (LCE interpreter, 1 thread, batch 1)")
    twin_name = zoo.info(DEMO_MODEL).float_twin
    twin = zoo.build(twin_name, input_shape=splits.input_shape, num_classes=splits.num_classes)
    twin_path = atomic.write_bytes(out / "float_twin.tflite", converters.convert(twin))
    binary_bench = converters.bench(conversion.path, runs=bench_runs)
    float_bench = converters.bench(twin_path, runs=bench_runs)

    checks = {
        "test_accuracy": summary["test_accuracy"] >= GOALS["test_accuracy"],
        "top1_agreement": parity.top1_agreement >= GOALS["top1_agreement"],
        "all_binary_convs_lce": ops.binary_convs == len(expected_binary) > 0,
    }
    report: dict[str, Any] = {
        "model": DEMO_MODEL,
        "data_source": splits.source,
        "training": summary,
        "conversion": {
            "path": str(conversion.path),
            "expected_binary_convs": len(expected_binary),
            **ops.to_dict(),
        },
        "verification": {**parity.to_dict(), "mismatches": parity.mismatches[:100]},
        "bench": {
            "binary": binary_bench.to_dict(),
            "float_twin": {"path": str(twin_path), **float_bench.to_dict()},
            "speedup_vs_float": float_bench.median_ms / binary_bench.median_ms,
            "size_ratio_vs_float": float_bench.size_bytes / binary_bench.size_bytes,
        },
        "goals": GOALS,
        "checks": checks,
        "passed": all(checks.values()),
        "seconds": round(time.perf_counter() - started, 1),
    }
    atomic.write_json(out / "report.json", report)
    atomic.write_text(out / "report.md", format_report(report, markdown=True) + "\n")
    return report


def format_report(report: dict[str, Any], *, markdown: bool = False) -> str:
    """The report as text (or markdown for report.md)."""
    tr, cv, vf, bn = (
        report["training"],
        report["conversion"],
        report["verification"],
        report["bench"],
    )
    mark = {True: "PASS", False: "FAIL"}
    rows = [
        ("test accuracy (Keras, full test set)", f"{tr['test_accuracy']:.4f}",
         f"≥ {report['goals']['test_accuracy']}", mark[report["checks"]["test_accuracy"]]),
        (f"accuracy on the {vf['num_images']} verify images",
         f"Keras {vf['keras_accuracy']:.4f}, TFLite {vf['tflite_accuracy']:.4f}", "", ""),
        ("Keras↔TFLite top-1 agreement", f"{vf['top1_agreement']:.4%} of {vf['num_images']}",
         f"≥ {report['goals']['top1_agreement']:.1%}", mark[report["checks"]["top1_agreement"]]),
        ("max |logit difference|", f"{vf['max_abs_logit_diff']:.3g}", "", ""),
        ("binary convs → LceBconv2d", f"{cv['binary_convs']} of {cv['expected_binary_convs']}",
         "all", mark[report["checks"]["all_binary_convs_lce"]]),
        ("float MAC ops left", str(cv["float_mac_ops"]), "", ""),
        (".tflite size", f"{cv['size_bytes']:,} B (float twin {bn['float_twin']['size_bytes']:,} B, "
         f"{bn['size_ratio_vs_float']:.1f}× smaller)", "", ""),
        ("latency (x86_64 LCE interpreter)", f"{bn['binary']['median_ms']:.3f} ms (float twin "
         f"{bn['float_twin']['median_ms']:.3f} ms, {bn['speedup_vs_float']:.2f}×)", "", ""),
        ("training time", f"{tr['seconds_total']:.0f} s for {tr['epochs']} epochs", "", ""),
    ]  # fmt: skip
    verdict = "all goals met" if report["passed"] else "some goals missed"
    if markdown:
        lines = [
            f"# bnn-tf demo report: {report['model']} on Fashion-MNIST",
            "",
            f"Data: {report['data_source']}. Machine: {bn['binary']['machine']}. "
            f"Total time {report['seconds']:.0f} s.",
            "",
            "| what | measured | goal | |",
            "|---|---|---|---|",
            *(f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows),
            "",
            f"Result: {verdict}. Curves: curves.png. Latency is measured on this machine's "
            "x86_64 kernels, not a Raspberry Pi's.",
        ]
        return "\n".join(lines)
    width = max(len(r[0]) for r in rows)
    lines = [f"{a:<{width}}  {b}" + (f"   [{d} {c}]" if d else "") for a, b, c, d in rows]
    lines.append(f"result: {verdict}; report written next to the model")
    return "\n".join(lines)
