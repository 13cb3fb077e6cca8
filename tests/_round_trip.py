"""Shared test helper: a layer survives saving and loading as a `.keras` file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import tensorflow as tf


def assert_keras_round_trip(
    build: Callable[[tf.Tensor], tf.Tensor], tmp_path: Path, *, atol: float = 1e-6
) -> None:
    """The model `inputs → build(inputs)` predicts and is made of the same layers after load.

    Its weights are moved off their initial values first, so the round trip really
    checks that they (not fresh initialisers) are restored.
    """
    rng = np.random.default_rng(2)
    inputs = tf.keras.Input((6, 6, 3))
    model = tf.keras.Model(inputs, build(inputs))
    for w in model.trainable_weights:
        w.assign(w + rng.uniform(0.1, 0.5, w.shape).astype(np.float32))
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = tf.keras.models.load_model(path)
    x = rng.normal(size=(2, 6, 6, 3)).astype(np.float32)
    np.testing.assert_allclose(model(x).numpy(), loaded(x).numpy(), atol=atol)
    assert [type(v).__name__ for v in loaded.layers] == [type(v).__name__ for v in model.layers]
