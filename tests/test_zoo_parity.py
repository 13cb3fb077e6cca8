"""Every zoo model trains, converts, its expected binary convs become LceBconv2d, and TFLite agrees.

Parametrised over `bnn_tf.models.available()`, so a newly registered model is
covered without editing this file. Each model is trained for 8 steps (2
epochs of 256 real Fashion-MNIST images, the training set-up the model is
compiled with by default) and its training-mode loss on those images must
fall; then it is converted (binary QuantDense rewritten to 1×1 binary convs
first, as `bnn-tf convert` does) and run on 100 real test images by Keras and
by LCE's interpreter. Models tagged "large" (ImageNet size) run the same
checks under `-m slow` on up-sampled images (32 of them, 4 steps).

Models run in a worker process, not in the test process: LCE's converter
occasionally segfaulted (measured twice, in `convert_saved_model`, on the
fifth model of a process that had already converted and run four) and a
segfault must fail one test, not kill the whole test session. One worker
serves model after model (a Python + TensorFlow start-up per model cost
~3 s × every model); when it dies, the model it was on is retried once in a
fresh worker, and fails if that crashes too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

import pytest

from bnn_tf import models as zoo

# Known gaps, each with the reason; the test still runs (xfail, not skip), so a
# fix shows up as XPASS.
KNOWN_GAPS: dict[str, str] = {}


# Models whose training-mode loss does not fall in 8 steps, with the reason (none today).
TRAINING_STEP_GAPS: dict[str, str] = {}
# Small models whose layers a cheaper model of the same family already covers here; they
# cost > 25 s each (ResNet-18 widths), so they run with the large ones under `-m slow`.
SLOW_SMALL = {"recu_resnet18": "recu_resnet20 has the same ReCUConv2D blocks"}


def _param(name: str, gaps: dict[str, str]):
    marks = [pytest.mark.slow] if "large" in zoo.info(name).tags or name in SLOW_SMALL else []
    if name in gaps:
        marks.append(pytest.mark.xfail(reason=gaps[name], strict=True))
    return pytest.param(name, marks=marks)


ALL_MODELS = zoo.available()
PARAMS = [_param(name, KNOWN_GAPS) for name in ALL_MODELS]
TRAINING_PARAMS = [_param(name, TRAINING_STEP_GAPS) for name in ALL_MODELS]
# Top-1 agreement floor on 100 real images. Binary nets can flip a sign where
# a pre-activation is ~0 and LCE sums in another order (BN folded into
# thresholds), and deep nets a few steps into training have near-tied logits,
# so some disagreement is legitimate. Measured: 100 % for most models,
# recu_resnet18 95 % (3 steps, Keras accuracy 15 %) and 99 % (4 steps, 200
# images). benchmarks/zoo_parity.py measures trained models on 10 000 images.
MIN_AGREEMENT = 0.94


def _images_for(shape, x):
    """Fashion-MNIST images resized/tiled to the model's input shape (for large models)."""
    import numpy as np
    import tensorflow as tf

    if tuple(x.shape[1:]) == tuple(shape):
        return x
    h, w, c = shape
    resized = tf.image.resize(x, (h, w)).numpy()
    return np.repeat(resized, c, axis=-1) if resized.shape[-1] == 1 and c > 1 else resized


def _training_mode_loss(model, x, y, batch: int) -> float:
    """The loss the optimizer minimises (BatchNorm on batch statistics), model left unchanged.

    Not the inference-mode loss: after 8 steps BatchNorm's moving statistics
    (momentum 0.99) still describe the initial network, so that loss rose or
    fell with the seed and the thread schedule (quicknet_small_input, CI).
    """
    import numpy as np
    import tensorflow as tf

    saved = model.get_weights()  # a training-mode call moves the BN moving statistics
    losses = []
    for start in range(0, len(x), batch):
        xb = tf.convert_to_tensor(x[start : start + batch])
        yb = tf.convert_to_tensor(y[start : start + batch])
        losses.append(float(model.compute_loss(xb, yb, model(xb, training=True))))
    model.set_weights(saved)
    return float(np.mean(losses))


def check_model(name: str) -> dict:
    """Train a few steps, convert, report and verify one zoo model (runs in the child process)."""
    import tensorflow as tf

    from bnn_tf import converters, data, experiment, introspect, precision
    from bnn_tf.methods import ebconv_export
    from bnn_tf.methods.ebconv import EBConv2D

    info = zoo.info(name)
    large = "large" in info.tags
    n_train, n_test, batch = (32, 32, 16) if large else (256, 100, 64)
    splits = data.load("fashion_mnist", download=False)
    x_train = _images_for(info.default_input_shape, data.preprocess(splits.x_train[:n_train]))
    x_test = _images_for(info.default_input_shape, data.preprocess(splits.x_test[:n_test]))
    y_train, y_test = splits.y_train[:n_train], splits.y_test[:n_test]

    tf.keras.backend.clear_session()
    tf.keras.utils.set_random_seed(0)
    # What `bnn-tf train NAME` trains with: the model's registered (paper's) optimizer.
    model = experiment.build_and_compile(name, steps_per_epoch=-(-n_train // batch), epochs=2)
    loss_before = _training_mode_loss(model, x_train, y_train, batch)
    model.fit(x_train, y_train, batch_size=batch, epochs=2, verbose=0)
    loss_after = _training_mode_loss(model, x_train, y_train, batch)

    # The same weights with the binary convolutions in bfloat16 (`--precision binary_bfloat16`).
    low = precision.with_precision(model, precision.BINARY_BFLOAT16)
    bf16_agreement = float(
        (
            low.predict(x_test, verbose=0).argmax(1) == model.predict(x_test, verbose=0).argmax(1)
        ).mean()
    )

    rewritten = converters.rewrite_binary_dense(model)
    if introspect.find(rewritten, EBConv2D):
        # A gated EBConv reads all input channels, so it cannot be split per group: its
        # documented inference form (one expert per sample) is what converts and deploys.
        rewritten = ebconv_export.export_model(rewritten)
    flatbuffer = converters.convert(rewritten)
    report = converters.conversion_report(rewritten, flatbuffer)
    result = converters.verify(model, flatbuffer, x_test, y_test)
    return {
        "loss_before": loss_before,
        "loss_after": loss_after,
        "lce_binary": info.lce_binary,
        "expected_binary": converters.binary_conv_layers(rewritten),
        "actual": {row.name: row.actual for row in report.layers},
        "lint_mismatches": [row.name for row in report.lint_mismatches],
        "requires_lce": report.requires_lce,
        "binary_macs": report.binary_macs,
        "report": report.format(),
        "agreement": result.top1_agreement,
        "max_abs_logit_diff": result.max_abs_logit_diff,
        "verify": result.format(),
        "bf16_precision": precision.model_precision(low),
        "bf16_layers": len(precision.binary_convolutions(model)),
        "bf16_agreement": bf16_agreement,
    }


class _Worker:
    """A child process that runs `check_model` for each name written to its stdin."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self.results: dict[str, dict] = {}
        # A file, not a pipe: an unread pipe fills up and blocks the worker.
        self.stderr = tempfile.TemporaryFile("w+")  # noqa: SIM115  closed in close()

    def _start(self) -> subprocess.Popen:
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        self.stderr.seek(0)
        self.stderr.truncate()
        return subprocess.Popen(
            [sys.executable, __file__, "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self.stderr, text=True, env=env,
        )  # fmt: skip

    def _ask(self, name: str) -> dict | None:
        if self.proc is None or self.proc.poll() is not None:
            self.proc = self._start()
        self.proc.stdin.write(name + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        return json.loads(line) if line.startswith("{") else None

    def result(self, name: str) -> dict:
        if name not in self.results:
            r = self._ask(name)
            if r is None:  # the worker died: once more in a fresh one, so a crash is this model's
                self.close()
                r = self._ask(name)
            if r is None:
                code = self.proc.wait()
                self.stderr.seek(0)
                r = {"crash": f"worker exited {code}\n{self.stderr.read()[-3000:]}"}
                self.close()
            self.results[name] = r
        return self.results[name]

    def close(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


@pytest.fixture(scope="module")
def worker():
    w = _Worker()
    yield w
    w.close()
    w.stderr.close()


def _result(worker: _Worker, name: str) -> dict:
    r = worker.result(name)
    assert "crash" not in r, f"{name}: {r['crash']}"
    assert "error" not in r, f"{name}: {r['error']}"
    return r


@pytest.mark.parametrize("name", TRAINING_PARAMS)
def test_zoo_model_trains_on_real_images(name, worker):
    r = _result(worker, name)
    before, after = r["loss_before"], r["loss_after"]
    assert after == after and after < float("inf"), f"{name}: loss is {after}"
    if "large" not in zoo.info(name).tags:  # 4 steps on 32 up-sampled images prove little
        assert after < before, f"{name}: loss did not fall ({before:.3f} → {after:.3f})"


@pytest.mark.parametrize("name", PARAMS)
def test_zoo_model_converts_with_binary_kernels_and_matches_keras(name, worker):
    r = _result(worker, name)

    # The lint's prediction is what LCE did, layer by layer (the lint is trustworthy).
    assert not r["lint_mismatches"], "\n" + r["report"]
    if r["lce_binary"]:
        expected = r["expected_binary"]
        assert expected, f"{name} is registered lce_binary=True but has no binary conv layer"
        not_binary = {
            n: r["actual"].get(n, "missing") for n in expected if r["actual"].get(n) != "binary"
        }
        assert not not_binary, f"expected LceBconv2d, got {not_binary}\n{r['report']}"
        assert r["requires_lce"] and r["binary_macs"] > 0
    assert r["agreement"] >= MIN_AGREEMENT, f"{name}: {r['verify']}"


@pytest.mark.parametrize("name", PARAMS)
def test_zoo_model_runs_its_binary_convolutions_in_bfloat16(name, worker):
    r = _result(worker, name)
    binary = r["bf16_layers"] > 0
    assert r["bf16_precision"] == ("binary_bfloat16" if binary else "float32")
    # ±1 sums are exact in bfloat16 up to 256 terms; wider convolutions round by ≤ 2⁻⁸.
    assert r["bf16_agreement"] >= MIN_AGREEMENT, f"{name}: {r['bf16_agreement']:.2f}"


def _serve() -> None:
    """Worker loop: a model name per stdin line, one JSON line per model on stdout."""
    import traceback

    out = sys.stdout
    sys.stdout = sys.stderr  # whatever TensorFlow/LCE print must not break the protocol
    for line in sys.stdin:
        name = line.strip()
        try:
            result = check_model(name)
        except Exception:  # noqa: BLE001  reported by the parent test, the worker goes on
            result = {"error": traceback.format_exc()[-3000:]}
        out.write(json.dumps(result) + "\n")
        out.flush()


if __name__ == "__main__":
    if sys.argv[1:] == ["--serve"]:
        _serve()
    else:  # one model by hand: python tests/test_zoo_parity.py NAME
        print(json.dumps(check_model(sys.argv[1]), indent=1))
