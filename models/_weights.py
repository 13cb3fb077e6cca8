"""Loading larq-zoo weight files (`.h5`) into the zoo's larq-zoo-compatible models.

larq-zoo saves weights with Keras' HDF5 format: one group per layer (in
`model.layers` order, listed in the root attribute `layer_names`), each with
its `weight_names`. `load_larq_zoo_weights` pairs the file's layers that hold
weights with the model's, in order, checks that every pair has the same
number of weights and the same shapes, and only then assigns them, so a
mismatch leaves the model untouched and names the first layer that differs.

larq-zoo names most layers automatically (`quant_conv2d_17`), and the counter
depends on what was built before in the same process, so names cannot be the
key: order and shapes are (Keras' own HDF5 loader does the same).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from bnn_tf.errors import ConfigError

# Why a file can fail although the options match: a model of the same name whose layout
# differs from larq-zoo's (the only one today).
_OTHER_LAYOUT = (
    " (e.g. larq-zoo's MeliusNet22 loads into meliusnet22_larq_zoo, not into meliusnet22, an "
    "LCE-oriented layout: docs/larq_zoo.md)"
)


def _file_layers(path: Path) -> list[tuple[str, list[tuple[str, np.ndarray]]]]:
    import h5py

    with h5py.File(path, "r") as f:
        group = f.get("model_weights", f)
        if "layer_names" not in group.attrs:
            raise ConfigError(
                f"{path} is not a Keras HDF5 weight file (no 'layer_names'). "
                "Fix: pass a file written by larq-zoo's `model.save_weights('x.h5')`."
            )
        layers = []
        for raw in group.attrs["layer_names"]:
            name = raw.decode() if isinstance(raw, bytes) else str(raw)
            names = [
                w.decode() if isinstance(w, bytes) else str(w)
                for w in group[name].attrs.get("weight_names", [])
            ]
            if names:
                layers.append((name, [(w, np.asarray(group[name][w])) for w in names]))
        return layers


def load_larq_zoo_weights(model: tf.keras.Model, path: str | Path) -> tf.keras.Model:
    """Assign the weights of larq-zoo's `.h5` file at `path` to `model` (in place).

    Raises:
        ConfigError: the file is missing or not a Keras weight file, or its
            layers differ from the model's (the message names the first one).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"weights file {str(path)!r} does not exist.")
    file_layers = _file_layers(path)
    ours = [layer for layer in model.layers if layer.weights]
    pairs: list[tuple[tf.Variable, np.ndarray]] = []
    for index, (layer, (file_name, values)) in enumerate(zip(ours, file_layers, strict=False)):
        ours_shapes = [tuple(w.shape) for w in layer.weights]
        file_shapes = [tuple(v.shape) for _, v in values]
        if ours_shapes != file_shapes:
            raise ConfigError(
                f"weights file {path.name}: layer #{index} with weights differs: model layer "
                f"{layer.name!r} ({type(layer).__name__}) has weights {ours_shapes}, file layer "
                f"{file_name!r} has {file_shapes}. Fix: build the model with the "
                "input_shape / num_classes / include_top the file was saved with; if those "
                f"match, the file was saved from another architecture{_OTHER_LAYOUT}."
            )
        pairs.extend(zip(layer.weights, (v for _, v in values), strict=True))
    if len(ours) != len(file_layers):
        first = (
            f"model layer {ours[len(file_layers)].name!r} has no counterpart in the file"
            if len(ours) > len(file_layers)
            else f"file layer {file_layers[len(ours)][0]!r} has no counterpart in the model"
        )
        raise ConfigError(
            f"weights file {path.name} has {len(file_layers)} layers with weights, the model "
            f"{len(ours)}: {first}. Fix: build the model with the include_top / num_classes "
            "the file was saved with; if those match, the file was saved from another "
            f"architecture{_OTHER_LAYOUT}."
        )
    tf.keras.backend.batch_set_value(pairs)
    return model


def apply_weights(model: tf.keras.Model, weights: Any) -> tf.keras.Model:
    """The factories' `weights=` argument: None (random init) or a local larq-zoo `.h5` path."""
    if weights is None:
        return model
    if isinstance(weights, str | Path) and (
        str(weights).endswith(".h5") or Path(weights).is_file()
    ):
        return load_larq_zoo_weights(model, weights)
    raise ConfigError(
        f"weights={weights!r}: bnn-tf does not download weights from a hub. Fix: download "
        "larq-zoo's weight file yourself and pass its local path (weights='path/to/x.h5'), "
        "or weights=None for random initialisation."
    )
