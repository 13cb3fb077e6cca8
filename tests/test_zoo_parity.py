"""Every zoo model converts, its expected binary convs become LceBconv2d, and TFLite agrees with Keras.

Parametrised over `bnn_tf.models.available()`, so a newly registered model is
covered without editing this file. Each model is first trained for 3 steps
on 192 real Fashion-MNIST images (batch-norm statistics and weights move off
their initial values), then converted (binary QuantDense rewritten to 1×1
binary convs first, as `bnn-tf convert` does) and run on 100 real test images
by Keras and by LCE's interpreter. Models tagged "large" (ImageNet size) run
the same checks under `-m slow` on up-sampled images.
"""

from __future__ import annotations

import larq as lq
import numpy as np
import pytest
import tensorflow as tf

from bnn_tf import converters
from bnn_tf import models as zoo

ALL_MODELS = zoo.available()
PARAMS = [
    pytest.param(name, marks=pytest.mark.slow) if "large" in zoo.info(name).tags else name
    for name in ALL_MODELS
]
# Top-1 agreement floor on real images. Binary nets can flip a sign where a
# pre-activation is ~0 and float sums run in a different order, so a rare
# disagreement is legitimate; more than 2 % is a conversion bug.
MIN_AGREEMENT = 0.98


def _images_for(shape: tuple[int, ...], x: np.ndarray) -> np.ndarray:
    """Fashion-MNIST images resized/tiled to the model's input shape (for large models)."""
    if tuple(x.shape[1:]) == tuple(shape):
        return x
    h, w, c = shape
    resized = tf.image.resize(x, (h, w)).numpy()
    return np.repeat(resized, c, axis=-1) if resized.shape[-1] == 1 and c > 1 else resized


def _train_a_few_steps(model: tf.keras.Model, x: np.ndarray, y: np.ndarray, *, batch: int) -> None:
    from bnn_tf import training

    if any(lq.optimizers.Bop.is_binary_variable(v) for v in model.trainable_variables):
        training.compile_model(model)
    else:  # float twins, ternary/k-bit models: Bop would claim no variable
        training.compile_model(model, optimizer=tf.keras.optimizers.legacy.Adam(1e-3))
    model.fit(x, y, batch_size=batch, epochs=1, verbose=0)


@pytest.mark.parametrize("name", PARAMS)
def test_zoo_model_converts_with_binary_kernels_and_matches_keras(name, fmnist_small):
    info = zoo.info(name)
    large = "large" in info.tags
    n_train, n_test, batch = (32, 32, 8) if large else (192, 100, 64)
    x_train = _images_for(info.default_input_shape, fmnist_small["x_train"][:n_train])
    x_test = _images_for(info.default_input_shape, fmnist_small["x_test"][:n_test])
    y_train, y_test = fmnist_small["y_train"][:n_train], fmnist_small["y_test"][:n_test]

    tf.keras.utils.set_random_seed(0)
    model = zoo.build(name)
    _train_a_few_steps(model, x_train, y_train, batch=batch)
    rewritten = converters.rewrite_binary_dense(model)
    flatbuffer = converters.convert(rewritten)
    report = converters.conversion_report(rewritten, flatbuffer)
    actual = {row.name: row.actual for row in report.layers}

    # The lint's prediction is what LCE did, layer by layer (the lint is trustworthy).
    assert not report.lint_mismatches, "\n" + report.format()
    if info.lce_binary:
        expected = converters.binary_conv_layers(rewritten)
        assert expected, f"{name} is registered lce_binary=True but has no binary conv layer"
        not_binary = {n: actual.get(n, "missing") for n in expected if actual.get(n) != "binary"}
        assert not not_binary, f"expected LceBconv2d, got {not_binary}\n{report.format()}"
        assert report.requires_lce and report.binary_macs > 0

    result = converters.verify(model, flatbuffer, x_test, y_test)
    assert result.top1_agreement >= MIN_AGREEMENT, f"{name}: {result.format()}"
    assert np.isfinite(result.max_abs_logit_diff)
