"""Training precision: run a model's layers in bfloat16, export it in float32.

A binary convolution multiplies ±1 activations by ±1 (or ±α) weights. ±1 is
exact in bfloat16 and oneDNN accumulates a bfloat16 convolution in float32,
so on a CPU with AVX512-BF16 a binary model's convolutions run about twice as
fast in bfloat16 while computing the same sums (tests/test_precision.py checks
the sums; benchmarks/precision_choice.py measures time and accuracy at equal
epochs). Keras' `mixed_bfloat16` policy keeps every variable in float32 (Bop
and Adam update float32 weights) and computes in bfloat16; the model's outputs
stay in float32 so the loss and its gradient are computed at full precision.

Exactness has one limit: a convolution's output is rounded to bfloat16, which
holds integers exactly up to 256 (even ones up to 512). A binary convolution
over `k×k×C` inputs sums `k²C` terms of ±1, so its output is exact while that
sum stays within ±256; beyond, the rounding is at most 2⁻⁸ of the value. The
scaled float parts (batch norm, shortcuts, the head) round at bfloat16 too:
that is what mixed precision trades for speed, and why the accuracy is
measured, not assumed (docs/training.md).

A trained model is exported in float32 (`to_float32`): the same layers and
weights, computed in float32, which is what LCE converts and the device runs.
`bnn-tf train --precision mixed_bfloat16` does both; `bnn_tf.converters`
export any model in float32 before converting.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from typing import Any

import tensorflow as tf

from bnn_tf import introspect
from bnn_tf.errors import ConfigError

FLOAT32 = "float32"
MIXED_BFLOAT16 = "mixed_bfloat16"
# Only the binary convolutions (±1 inputs and kernels) compute in bfloat16.
BINARY_BFLOAT16 = "binary_bfloat16"
PRECISIONS = (FLOAT32, BINARY_BFLOAT16, MIXED_BFLOAT16)


def check_precision(precision: str | None) -> str:
    """`precision` resolved (None → float32), or a ConfigError naming the choices."""
    resolved = precision or FLOAT32
    if resolved not in PRECISIONS:
        raise ConfigError(
            f"precision must be one of {', '.join(PRECISIONS)} (got {precision!r}). "
            "Fix: e.g. --precision mixed_bfloat16."
        )
    return resolved


# CPU flags (Linux /proc/cpuinfo) of native bfloat16 arithmetic: x86 AVX512-BF16 / AMX-BF16,
# Arm's BF16 extension.
_BF16_FLAGS = {"avx512_bf16", "amx_bf16", "bf16"}


def native_bfloat16(cpuinfo: str | None = None) -> bool | None:
    """Whether this CPU computes bfloat16 natively; None when it cannot tell (no /proc/cpuinfo).

    Without it oneDNN emulates bfloat16, and a bfloat16 step is slower than a float32 one
    (meliusnet_small, 2 cores: 1.34 s vs 0.52 s per step on a Xeon without AVX512-BF16;
    0.49 s vs 0.68 s on an EPYC with it).
    """
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8") as f:
                cpuinfo = f.read()
        except OSError:
            return None
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            flags.update(value.split())
    if not flags:
        return None
    return bool(flags & _BF16_FLAGS)


def default_precision(native: bool | None = None) -> str:
    """The precision a training run takes when none is given.

    `binary_bfloat16` on a CPU with native bfloat16 (`native`, read from
    `/proc/cpuinfo` when None): the binary convolutions' ±1 sums are exact up
    to 256 terms, the step is faster (meliusnet_small 1.4× on a 2-core EPYC)
    and equal-epoch training loses no accuracy within seed noise
    (benchmarks/results/precision_choice.json). `float32` elsewhere, where
    bfloat16 would be emulated and slower.
    """
    if native is None:
        native = native_bfloat16()
    return BINARY_BFLOAT16 if native else FLOAT32


def describe_default(resolved: str) -> str:
    """The log line saying which precision a run without `--precision` took, and why."""
    if resolved == FLOAT32:
        return "precision: float32 (no native bfloat16 found on this CPU)"
    return (
        f"precision: {resolved} (this CPU computes bfloat16 natively: the binary convolutions "
        "run in bfloat16, the model is saved in float32; --precision float32 turns it off)"
    )


def emulation_warning(precision: str | None) -> str | None:
    """A warning when `precision` computes in bfloat16 on a CPU that would emulate it."""
    resolved = check_precision(precision)
    if resolved == FLOAT32 or native_bfloat16() is not False:
        return None
    return (
        f"warning: --precision {resolved} on a CPU without native bfloat16 (no avx512_bf16 / "
        "amx_bf16 in /proc/cpuinfo): oneDNN emulates it and training is slower than in "
        "float32 (2.6× per step measured for meliusnet_small). Fix: --precision float32."
    )


def _keras_policy(precision: str) -> str:
    return FLOAT32 if precision == FLOAT32 else MIXED_BFLOAT16


@contextlib.contextmanager
def policy_scope(precision: str | None) -> Iterator[None]:
    """Layers built inside take `precision`'s Keras dtype policy; the old global policy returns.

    `binary_bfloat16` is a choice of layers, not a Keras policy: inside the
    scope it acts as `mixed_bfloat16`.
    """
    resolved = _keras_policy(check_precision(precision))
    before = tf.keras.mixed_precision.global_policy()
    tf.keras.mixed_precision.set_global_policy(resolved)
    try:
        yield
    finally:
        tf.keras.mixed_precision.set_global_policy(before)


def binary_convolutions(model: tf.keras.Model) -> list[tf.keras.layers.Layer]:
    """The layers whose inputs and kernels are both binarised: what `binary_bfloat16` casts.

    A layer class that computes more than a ±1 sum (e.g. EBConv2D's arg-max gate)
    opts out with the class attribute `bfloat16_exact = False`. So does a layer or
    kernel quantizer that declares `latent_weights = True` (XNOR-Net's α = mean|W|,
    IR-Net's Libra-PB standardisation): Keras hands it the weights already
    rounded to bfloat16, so its statistics, and with them the signs of weights
    near a channel's mean or the scale of every output, would differ from float32.
    """
    found = []
    for layer, _ in introspect.binary_kernels(model):
        if not getattr(type(layer), "bfloat16_exact", True):
            continue
        if introspect.declares_latent_weights(layer):
            continue
        quantizer = getattr(layer, "input_quantizer", None)
        if getattr(quantizer, "precision", None) == 1:
            found.append(layer)
    return found


def model_precision(model: tf.keras.Model) -> str:
    """Which of `PRECISIONS` `model` computes in, read from its layers' compute dtypes."""
    low = {
        id(layer)
        for layer in introspect.layers(model)
        if getattr(layer, "compute_dtype", None) == "bfloat16"
    }
    if not low:
        return FLOAT32
    binary = {id(layer) for layer in binary_convolutions(model)}
    return BINARY_BFLOAT16 if low <= binary else MIXED_BFLOAT16


def _set_policies(node: Any, policy: str) -> None:
    # Every serialised Keras object with a dtype ({"class_name", "config": {"dtype"}}) is a
    # layer or a quantizer: set its policy. Input layers keep the input's dtype.
    if isinstance(node, dict):
        inner = node.get("config")
        if (
            "class_name" in node
            and isinstance(inner, dict)
            and "dtype" in inner
            and node["class_name"] != "InputLayer"
        ):
            inner["dtype"] = policy
        for value in node.values():
            _set_policies(value, policy)
    elif isinstance(node, list):
        for value in node:
            _set_policies(value, policy)


def _set_named(node: Any, names: set[str], policy: str) -> None:
    # The layer configs (at any depth: nested models) whose name is in `names`.
    if isinstance(node, dict):
        inner = node.get("config")
        if "class_name" in node and isinstance(inner, dict) and inner.get("name") in names:
            _set_policies(node, policy)
            return
        for value in node.values():
            _set_named(value, names, policy)
    elif isinstance(node, list):
        for value in node:
            _set_named(value, names, policy)


def _output_layer_names(config: dict) -> set[str]:
    outputs = config.get("output_layers")
    if outputs is None:  # Sequential: its last layer
        layers = config.get("layers") or []
        return {layers[-1]["config"]["name"]} if layers else set()
    if outputs and isinstance(outputs[0], str):  # a single output: [name, node, tensor]
        outputs = [outputs]
    return {entry[0] for entry in outputs}


def with_precision(model: tf.keras.Model, precision: str | None) -> tf.keras.Model:
    """A copy of `model` (same layers, same weights) whose layers compute in `precision`.

    The layers that produce the model's outputs compute in float32 under
    `mixed_bfloat16` (a softmax in bfloat16 would round the probabilities the
    loss is taken of). Returns `model` itself when it already computes in `precision`.

    Raises:
        ConfigError: `precision` is unknown, or `model` is not a Functional or
            Sequential model (a subclassed model has no config to rebuild from).
    """
    resolved = check_precision(precision)
    if model_precision(model) == resolved:
        return model
    # A subclassed model's get_config is its constructor arguments, not its layers.
    if not (isinstance(model, tf.keras.Sequential) or getattr(model, "_is_graph_network", False)):
        raise ConfigError(
            f"model {model.name!r} is a subclassed Keras model, which has no config to rebuild "
            "in another precision. Fix: build it as a Functional or Sequential model, or under "
            "`with bnn_tf.precision.policy_scope(...)`."
        )
    config = copy.deepcopy(model.get_config())
    if resolved == BINARY_BFLOAT16:
        _set_policies(config, FLOAT32)
        _set_named(config, {layer.name for layer in binary_convolutions(model)}, MIXED_BFLOAT16)
    else:
        _set_policies(config, resolved)
        if resolved == MIXED_BFLOAT16:
            _set_named(config, _output_layer_names(config), FLOAT32)
    # Sub-layers that custom layers create in __init__ follow the global policy.
    with policy_scope(FLOAT32 if resolved == BINARY_BFLOAT16 else resolved):
        twin = type(model).from_config(config)
    twin.set_weights(model.get_weights())
    return twin


def to_float32(model: tf.keras.Model) -> tf.keras.Model:
    """`model` computed in float32 (itself if it already is): what is converted and deployed."""
    return with_precision(model, FLOAT32)


__all__ = [
    "FLOAT32",
    "BINARY_BFLOAT16",
    "MIXED_BFLOAT16",
    "PRECISIONS",
    "binary_convolutions",
    "check_precision",
    "default_precision",
    "describe_default",
    "model_precision",
    "native_bfloat16",
    "policy_scope",
    "to_float32",
    "with_precision",
]
