"""Grouped binary convolutions as per-group convolutions, for LCE's default kernel.

LCE 0.16 converts a grouped binary conv (input channels per group a multiple
of 32) to one grouped `LceBconv2d`, but only its indirect-BGEMM kernel runs
it: the default kernel, the one LCE registers on ARM and in its Android AAR,
fails at `AllocateTensors` ("Grouped binary convolutions are not supported
with this kernel"). A grouped convolution with `g` groups is exactly `g`
ungrouped ones on the channel slices of its input, concatenated:

    conv_g(x, K) = concat_j conv(x_j, K_j),   x_j = x[..., j·C/g : (j+1)·C/g],
                                               K_j = K[..., j·F/g : (j+1)·F/g]

`split_grouped_convs(model)` rewrites every grouped binary conv of a
functional/Sequential model that way (`converters.convert` does it by
default), for any layer class:

- a layer whose config has a `split_groups` key (e.g. `EBConv2DExport`)
  splits itself: it is rebuilt with `split_groups=True`;
- any other grouped conv layer becomes a `GroupSplitConv2D` holding `g`
  copies of the layer built with `groups=1` and `filters/g`, each with its
  slice of the weights. That is valid when every weight is per output channel
  (sliced along its last axis) or shared (same shape in the copy: copied);
  a weight that depends on all input channels (e.g. EBConv2D's gate) makes the
  layer unsplittable, and it stays grouped (the lint and the report say which
  kernel can run it). Each split is checked numerically against the grouped
  layer before it is used.

Splitting also removes LCE's "multiple of 32 input channels per group" rule:
each per-group conv is an ordinary binary conv.
"""

from __future__ import annotations

import logging

import tensorflow as tf

from bnn_tf import introspect
from bnn_tf.converters.rewrite import is_functional, rewrite_layers, same_outputs
from bnn_tf.converters.rules import is_binary_conv
from bnn_tf.errors import ConfigError

log = logging.getLogger("bnn_tf")


def groups_of(layer: tf.keras.layers.Layer) -> int:
    """The `groups` of a conv layer (1 for anything else)."""
    try:
        return max(int(getattr(layer, "groups", 1) or 1), 1)
    except (TypeError, ValueError):
        return 1


def _per_group_config(layer: tf.keras.layers.Layer, j: int) -> dict:
    config = dict(layer.get_config())
    g = groups_of(layer)
    config.update(groups=1, filters=int(layer.filters) // g, name=f"{layer.name}_g{j}")
    return config


def _slice_plan(layer: tf.keras.layers.Layer, probe: tf.keras.layers.Layer) -> list[str] | str:
    """Per weight "slice" or "copy", or the reason the layer cannot be split."""
    g = groups_of(layer)
    filters = int(layer.filters)
    plan = []
    if len(layer.weights) != len(probe.weights):
        return "the per-group layer has different weights"
    for w, p in zip(layer.weights, probe.weights, strict=True):
        ws, ps = tuple(w.shape), tuple(p.shape)
        if ws == ps:
            plan.append("copy")
        elif ws and ps and ws[:-1] == ps[:-1] and ws[-1] == filters and ps[-1] == filters // g:
            plan.append("slice")
        else:
            return (
                f"weight {w.name.split('/')[-1]} {ws} is not per output channel "
                "(it depends on all input channels), so the layer is not g independent convs"
            )
    return plan


def _build_per_group(layer: tf.keras.layers.Layer, j: int) -> tf.keras.layers.Layer:
    sub = layer.__class__.from_config(_per_group_config(layer, j))
    shape = tf.TensorShape(layer.input_shape).as_list()
    shape[-1] = shape[-1] // groups_of(layer)
    sub.build(tf.TensorShape(shape))
    return sub


def split_problem(layer: tf.keras.layers.Layer) -> str | None:
    """Why a grouped conv `layer` cannot be split into per-group convs (None if it can)."""
    g = groups_of(layer)
    if g == 1:
        return "it is not grouped"
    if "split_groups" in layer.get_config():
        return None
    if not layer.built or not hasattr(layer, "filters"):
        return "it is not built (build the model first)"
    try:
        plan = _slice_plan(layer, _build_per_group(layer, 0))
    except Exception as exc:  # noqa: BLE001  a layer we cannot rebuild stays as it is
        return f"it cannot be rebuilt with groups=1 ({type(exc).__name__}: {exc})"
    return plan if isinstance(plan, str) else None


@tf.keras.utils.register_keras_serializable(package="bnn_tf")
class GroupSplitConv2D(tf.keras.layers.Layer):
    """A grouped conv run as `groups` ungrouped convs on channel slices, concatenated.

    `y = concat_j layer_j(x_j)`, `x_j` the j-th of `groups` equal channel slices
    of the input, `layer_j` the original layer's class with `groups=1`,
    `filters/groups` and the j-th slice of its per-output-channel weights.
    Built by `split_grouped_convs`; same outputs as the grouped layer.

    Args:
        group_configs: the `get_config()` of each per-group layer.
        layer_class: registered name of the per-group layers' class
            (`tf.keras.utils.get_registered_name`).
        groups: number of groups.
    """

    def __init__(self, group_configs: list[dict], layer_class: str, groups: int, **kwargs):
        super().__init__(**kwargs)
        if groups < 2 or len(group_configs) != groups:
            raise ConfigError(
                f"GroupSplitConv2D needs groups ≥ 2 and one config per group "
                f"(got groups={groups}, {len(group_configs)} configs)."
            )
        self.group_configs = [dict(c) for c in group_configs]
        self.layer_class = layer_class
        self.groups = int(groups)
        cls = tf.keras.utils.get_registered_object(layer_class)
        if cls is None:
            cls = tf.keras.layers.deserialize(
                {"class_name": layer_class, "config": group_configs[0]}
            )
            cls = type(cls)
        self.parts = [cls.from_config(dict(c)) for c in self.group_configs]

    def build(self, input_shape):
        shape = tf.TensorShape(input_shape).as_list()
        if shape[-1] is None or shape[-1] % self.groups:
            raise ConfigError(
                f"{self.name}: {shape[-1]} input channels do not split into {self.groups} groups."
            )
        shape[-1] //= self.groups
        for part in self.parts:
            # Scoped so each part's weights get their own names (.h5 stores weights by name).
            with tf.name_scope(part.name):
                part.build(tf.TensorShape(shape))
        super().build(input_shape)

    def call(self, inputs):
        slices = tf.split(inputs, self.groups, axis=-1)
        return tf.concat([part(x) for part, x in zip(self.parts, slices, strict=True)], axis=-1)

    def compute_output_shape(self, input_shape):
        shape = tf.TensorShape(input_shape).as_list()
        shape[-1] //= self.groups
        out = tf.TensorShape(self.parts[0].compute_output_shape(shape)).as_list()
        out[-1] *= self.groups
        return tf.TensorShape(out)

    def get_config(self):
        return {
            **super().get_config(),
            "group_configs": self.group_configs,
            "layer_class": self.layer_class,
            "groups": self.groups,
        }


def split_layer(layer: tf.keras.layers.Layer) -> tf.keras.layers.Layer:
    """The per-group form of a built grouped conv `layer` (same name, same outputs).

    Raises:
        ConfigError: the layer cannot be split (`split_problem` says why), or the
            split form does not compute the same outputs.
    """
    problem = split_problem(layer)
    if problem is not None:
        raise ConfigError(f"{layer.name}: cannot split the grouped conv: {problem}.")
    config = layer.get_config()
    if "split_groups" in config:
        new = layer.__class__.from_config({**config, "split_groups": True})
        new.build(layer.input_shape)
        new.set_weights(layer.get_weights())
        return new
    g = groups_of(layer)
    parts = [_build_per_group(layer, j) for j in range(g)]
    new = GroupSplitConv2D(
        [p.get_config() for p in parts],
        tf.keras.utils.get_registered_name(layer.__class__),
        g,
        name=layer.name,
    )
    new.build(layer.input_shape)
    plan = _slice_plan(layer, new.parts[0])
    per = int(layer.filters) // g
    for j, part in enumerate(new.parts):
        values = [
            w if how == "copy" else w[..., j * per : (j + 1) * per]
            for w, how in zip(layer.get_weights(), plan, strict=True)
        ]
        part.set_weights(values)
    _check_same(layer, new)
    return new


def _check_same(layer, new) -> None:
    # dynamic spatial size (no probe, None): the per-group algebra is exact
    if same_outputs(layer, new, rtol=1e-4) is False:
        raise ConfigError(
            f"{layer.name}: the per-group form of this {type(layer).__name__} does not compute "
            "the grouped layer's outputs, so it is kept grouped."
        )


def grouped_binary_convs(model: tf.keras.Model) -> list[tf.keras.layers.Layer]:
    """The conv layers of `model` with `groups > 1` that binarise (nested models included)."""
    return [
        layer
        for layer in introspect.layers(model)
        if groups_of(layer) > 1
        and not (getattr(layer, "split_groups", False))
        and is_binary_conv(layer)
    ]


def split_grouped_convs(model: tf.keras.Model) -> tf.keras.Model:
    """A copy of `model` in which every grouped binary conv is per-group convs + concat.

    Returns `model` itself when there is nothing to split. Layers that cannot be
    split (see `split_problem`) stay grouped, with a warning; a subclassed
    model is returned unchanged with a warning (its graph cannot be re-wired).
    Weights are carried over, so the copy computes the same function.
    """
    targets = {}
    for layer in grouped_binary_convs(model):
        problem = split_problem(layer)
        if problem is None:
            targets[id(layer)] = layer
        else:
            log.warning(
                "%s stays a grouped binary conv (%s): LCE's default kernel cannot run it.",
                layer.name,
                problem,
            )
    if not targets:
        return model
    if not is_functional(model):
        log.warning(
            "%s is a subclassed model: its grouped binary convs cannot be split; LCE's default "
            "kernel will not run it. Build it with the functional API.",
            model.name,
        )
        return model

    def replace(layer: tf.keras.layers.Layer) -> tf.keras.layers.Layer | None:
        if id(layer) not in targets:
            return None
        try:
            return split_layer(layer)
        except ConfigError as exc:
            log.warning("%s", exc)
            return None

    return rewrite_layers(model, replace)


__all__ = [
    "GroupSplitConv2D",
    "grouped_binary_convs",
    "groups_of",
    "split_grouped_convs",
    "split_layer",
    "split_problem",
]
