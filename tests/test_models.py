"""The zoo: registry behaviour, and every registered model builds and round-trips.

That every model trains (its loss falls in 8 steps) is checked by
`test_zoo_parity.py`, in the same worker run that converts it.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from bnn_tf import models as zoo
from bnn_tf.errors import ConfigError

ALL_MODELS = zoo.available()
SMALL_MODELS = [m for m in ALL_MODELS if "large" not in zoo.info(m).tags]


def test_registry_lists_the_demo_model_and_its_twin():
    assert "bnn_small" in ALL_MODELS
    assert zoo.info("bnn_small").float_twin == "bnn_small_float"
    assert zoo.info("bnn_small").lce_binary and not zoo.info("bnn_small_float").lce_binary


def test_unknown_model_suggests_close_names():
    with pytest.raises(ConfigError, match="Did you mean bnn_small"):
        zoo.build("bnn_smal")


def test_unknown_factory_option_is_a_clear_error():
    with pytest.raises(ConfigError, match="has no option 'width'.*width_multiplier"):
        zoo.build("recu_resnet20", width=2)
    wide = zoo.build("recu_resnet20", width_multiplier=2, stem_strides=2)
    assert wide.get_layer("stem_conv").filters == 32
    assert wide.get_layer("stem_conv").strides == (2, 2)
    assert wide.output_shape == (None, 10)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_factory_is_keyword_only_and_builds(name):
    info = zoo.info(name)
    with pytest.raises(TypeError):
        info.factory(info.default_input_shape)  # positional arguments are refused
    model = zoo.build(name, num_classes=7)
    x = np.zeros((1, *info.default_input_shape), np.float32)
    assert model(x, training=False).shape == (1, 7)


@pytest.mark.parametrize("name", SMALL_MODELS)
def test_headless_model_has_no_classifier(name):
    model = zoo.build(name, include_top=False)
    assert len(model.output_shape) == 4, "include_top=False must end on feature maps"


@pytest.mark.parametrize("name", SMALL_MODELS)
def test_keras_file_round_trip_without_custom_objects(name, tmp_path, fmnist_small):
    model = zoo.build(name)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = tf.keras.models.load_model(path)  # registration via `import bnn_tf`
    x = fmnist_small["x_test"][:8]
    np.testing.assert_allclose(model(x, training=False), loaded(x, training=False), atol=1e-5)
