"""Shared fixtures: real Fashion-MNIST slices and a briefly trained small BNN.

Tests use real images (Debian's dataset-fashion-mnist, or the Keras cache);
`make test` installs the Debian package when run as root.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import bnn_tf  # noqa: E402,F401  must come before TensorFlow (selects tf_keras)

# isort: split
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from bnn_tf import data  # noqa: E402


@pytest.fixture(scope="session")
def fmnist() -> data.Splits:
    """The real Fashion-MNIST arrays (uint8)."""
    return data.load("fashion_mnist", download=False)


@pytest.fixture(scope="session")
def fmnist_small(fmnist):
    """2 000 training and 500 test images, pre-processed to float32 in [-1, 1]."""
    return {
        "x_train": data.preprocess(fmnist.x_train[:2000]),
        "y_train": fmnist.y_train[:2000],
        "x_test": data.preprocess(fmnist.x_test[:500]),
        "y_test": fmnist.y_test[:500],
    }


def quick_train(model: tf.keras.Model, fmnist_small, *, epochs: int = 1, batch_size: int = 64):
    """Train a model for a few steps on real images with Bop + Adam (for parity tests)."""
    from bnn_tf import training

    training.compile_model(model)
    model.fit(
        fmnist_small["x_train"], fmnist_small["y_train"],
        epochs=epochs, batch_size=batch_size, verbose=0,
    )  # fmt: skip
    return model


@pytest.fixture(scope="session")
def trained_bnn_small(fmnist_small):
    """bnn_small after one epoch on 2 000 real images: real, non-degenerate weights."""
    from bnn_tf import models as zoo

    tf.keras.utils.set_random_seed(0)
    return quick_train(zoo.build("bnn_small"), fmnist_small, epochs=2)


@pytest.fixture(scope="session")
def trained_bnn_small_tflite(trained_bnn_small) -> bytes:
    from bnn_tf import converters

    return converters.convert(trained_bnn_small)


@pytest.fixture()
def rng():
    return np.random.default_rng(0)
