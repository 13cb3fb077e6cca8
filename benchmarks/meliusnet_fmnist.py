"""meliusnet_small on Fashion-MNIST: Bop + Adam, test accuracy per epoch (Keras model).

The goal in issue 5 is ≥ 0.92 test accuracy; reaching it needs tens of
epochs on the full training set. Record what was actually run (epochs,
training images, seconds, machine) so a short run is never mistaken for the
goal.

    nice -n 10 .venv/bin/python benchmarks/meliusnet_fmnist.py --epochs 2 --limit-train 20000
"""

from __future__ import annotations

import argparse
import datetime as dt
import shlex
import sys
import time
from pathlib import Path

# isort: off
import bnn_tf  # noqa: F401  selects legacy Keras before TensorFlow is imported

# isort: on
import tensorflow as tf

from bnn_tf import atomic, data, optimizers, training
from bnn_tf import models as zoo
from bnn_tf.converters.benchmarking import machine_description
from bnn_tf.plotting import plot_history

RESULTS = Path(__file__).parent / "results"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--limit-train", type=int, default=None, help="first N training images")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument(
        "--learning-rate", type=float, default=optimizers.BopAdamConfig.learning_rate
    )
    parser.add_argument("--stem-strides", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(RESULTS / "meliusnet_fmnist.json"))
    args = parser.parse_args(argv)

    tf.keras.utils.set_random_seed(args.seed)
    splits = data.load("fashion_mnist", download=False)
    n = len(splits.x_train) if args.limit_train is None else args.limit_train
    train = data.make_dataset(
        splits.x_train[:n],
        splits.y_train[:n],
        batch_size=args.batch_size,
        training=True,
        seed=args.seed,
    )
    test = data.make_dataset(splits.x_test, splits.y_test, batch_size=512)
    model = zoo.build("meliusnet_small", stem_strides=args.stem_strides)
    steps = -(-n // args.batch_size)
    training.compile_model(
        model, steps_per_epoch=steps, epochs=args.epochs,
        bop=optimizers.BopAdamConfig(learning_rate=args.learning_rate),
    )  # fmt: skip
    records: list[dict] = []
    out = Path(args.out)
    started = time.perf_counter()

    def write(finished: bool) -> dict:
        result = {
            "benchmark": "meliusnet_fmnist",
            "command": " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]),
            "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "machine": machine_description(),
            "model": "meliusnet_small",
            "params": model.count_params(),
            "stem_strides": args.stem_strides,
            "train_images": n,
            "epochs_planned": args.epochs,
            "epochs_done": len(records),
            "finished": finished,
            "batch_size": args.batch_size,
            "optimizer": "Bop (binary kernels) + Adam (rest), cosine learning rate",
            "bop": optimizers.BopAdamConfig(learning_rate=args.learning_rate).to_dict(),
            "final_test_accuracy": records[-1].get("val_accuracy") if records else None,
            "goal_test_accuracy": 0.92,
            "seconds": round(time.perf_counter() - started, 1),
            "history": records,
        }
        # Written after every epoch, so an interrupted run still leaves its numbers.
        atomic.write_json(out, result)
        plot_history(records, out.with_suffix(".png"), title="meliusnet_small, Fashion-MNIST")
        return result

    class Record(tf.keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            rec = {"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()}}
            rec["seconds"] = round(time.perf_counter() - self.t0, 1)
            records.append(rec)
            print(rec, flush=True)
            write(finished=False)

    model.fit(train, validation_data=test, epochs=args.epochs, callbacks=[Record()], verbose=2)
    result = write(finished=True)
    print(f"test accuracy {result['final_test_accuracy']}, wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
