"""The zoo's registry: every model factory registers here under a name.

`available()` lists the names, `build(name, ...)` calls the factory, and the
CLI uses the same two functions, so a model registered here is usable from
`bnn-tf train NAME` without further wiring.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import tensorflow as tf

from bnn_tf.errors import ConfigError

Factory = Callable[..., tf.keras.Model]


@dataclass(frozen=True)
class ModelInfo:
    """What the zoo knows about one model.

    Attributes:
        name: registry name (`bnn-tf train NAME`).
        factory: keyword-only callable `(input_shape, num_classes, include_top, ...)`.
        description: one line for `bnn-tf models`.
        lce_binary: whether LCE runs its quantized convolutions on binary
            kernels (`LceBconv2d`); False for float twins and k-bit/ternary models.
        default_input_shape: the input the model is designed for.
        float_twin: name of the same architecture without quantizers, if any.
        family: grouping for listings (e.g. "baseline", "recu", "meliusnet").
        paper: citation string for the method.
        training: how the paper trains the model, as `bnn_tf.optimizers.OptimizerConfig`
            fields (e.g. `{"name": "adam", "learning_rate": 1e-3}`), plus optional
            `"why"` (one line: the paper's recipe, or the benchmark a departure follows).
            Empty: the library default (Bop + Adam).
        min_input_size: smallest height/width the model takes; None derives it from
            `default_input_shape` (see `input_constraints`).
        input_channels: image channels the model takes (its stem adapts to any).
    """

    name: str
    factory: Factory
    description: str
    lce_binary: bool
    default_input_shape: tuple[int, ...]
    float_twin: str | None = None
    family: str = "other"
    paper: str = ""
    tags: tuple[str, ...] = field(default_factory=tuple)
    training: Mapping[str, Any] = field(default_factory=dict)
    min_input_size: int | None = None
    input_channels: tuple[int, ...] = (1, 3)

    @property
    def accepts(self) -> dict[str, Any]:
        """What inputs `build` takes: `{"min_size": N, "channels": [1, 3]}` (images, HWC)."""
        return {"min_size": input_constraints(self), "channels": list(self.input_channels)}


# Derived minimum input size when a model does not declare one: the CIFAR-style
# zoo models (designed for ≤ 32 px) use padded convs and global pooling and were
# built and trained at 8×8 upwards; the ImageNet-size ones downsample 32× and are
# refused below 32 px.
SMALL_MODEL_MIN_SIZE = 8
IMAGENET_MODEL_MIN_SIZE = 32


def input_constraints(entry: ModelInfo) -> int:
    """The smallest height/width `entry` takes (declared, else derived from its default input)."""
    if entry.min_input_size is not None:
        return entry.min_input_size
    default = min(entry.default_input_shape[:2]) if len(entry.default_input_shape) == 3 else 0
    return SMALL_MODEL_MIN_SIZE if default <= 32 else IMAGENET_MODEL_MIN_SIZE


def check_input_shape(name: str, input_shape: tuple[int, ...]) -> None:
    """Refuse an input shape the zoo model `name` cannot take, naming the fix."""
    entry = info(name)
    shape = tuple(input_shape)
    if len(entry.default_input_shape) != 3:
        return
    if len(shape) != 3:
        raise ConfigError(
            f"model {name!r} takes images (height, width, channels), not inputs of shape {shape}. "
            "Fix: train it on images, or use a model for vectors."
        )
    h, w, c = shape
    lo = input_constraints(entry)
    if c not in entry.input_channels:
        raise ConfigError(
            f"model {name!r} takes {' or '.join(map(str, entry.input_channels))} channels, not {c}. "
            "Fix: --channels 1 (grey) or 3 (RGB)."
        )
    if h is not None and w is not None and min(h, w) < lo:
        raise ConfigError(
            f"model {name!r} needs images of at least {lo}×{lo} (got {h}×{w}). "
            f"Fix: --image-size {max(lo, h)} {max(lo, w)} or larger."
        )


_REGISTRY: dict[str, ModelInfo] = {}


def register(
    name: str,
    *,
    description: str,
    lce_binary: bool,
    default_input_shape: tuple[int, ...],
    float_twin: str | None = None,
    family: str = "other",
    paper: str = "",
    tags: tuple[str, ...] = (),
    training: Mapping[str, Any] | None = None,
    min_input_size: int | None = None,
    input_channels: tuple[int, ...] = (1, 3),
) -> Callable[[Factory], Factory]:
    """Decorator: add a model factory to the zoo under `name`."""

    def decorator(factory: Factory) -> Factory:
        if name in _REGISTRY and _REGISTRY[name].factory is not factory:
            raise ValueError(f"Model name {name!r} is already registered.")
        _REGISTRY[name] = ModelInfo(
            name=name,
            factory=factory,
            description=description,
            lce_binary=lce_binary,
            default_input_shape=tuple(default_input_shape),
            float_twin=float_twin,
            family=family,
            paper=paper,
            tags=tuple(tags),
            training=dict(training or {}),
            min_input_size=min_input_size,
            input_channels=tuple(input_channels),
        )
        return factory

    return decorator


def available() -> list[str]:
    """Sorted names of every registered model."""
    return sorted(_REGISTRY)


def info(name: str) -> ModelInfo:
    """The `ModelInfo` for `name`; a clear error (with close matches) if unknown."""
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, _REGISTRY, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(
            f"Unknown model {name!r}.{hint} Available: {', '.join(available())} "
            "(`bnn-tf models` lists them)."
        ) from None


def build(
    name: str,
    *,
    input_shape: tuple[int, ...] | None = None,
    num_classes: int = 10,
    include_top: bool = True,
    **kwargs: Any,
) -> tf.keras.Model:
    """Build the zoo model `name` (keyword arguments go to its factory).

    Raises:
        ConfigError: `name` is not in the zoo, its factory has no such keyword, or
            it cannot take `input_shape` (too small, wrong channels, not an image).
    """
    entry = info(name)
    shape = tuple(input_shape) if input_shape is not None else entry.default_input_shape
    check_input_shape(name, shape)
    accepted = inspect.signature(entry.factory).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values())
    unknown = [] if takes_any else sorted(k for k in kwargs if k not in accepted)
    if unknown:
        options = sorted(
            k for k in accepted if k not in ("input_shape", "num_classes", "include_top")
        )
        raise ConfigError(
            f"model {name!r} has no option {', '.join(map(repr, unknown))}. "
            f"Fix: use one of {options or 'none'}."
        )
    try:
        return entry.factory(
            input_shape=shape, num_classes=num_classes, include_top=include_top, **kwargs
        )
    except ValueError as exc:
        if isinstance(exc, ConfigError) or shape == entry.default_input_shape:
            raise
        # Shape errors from Keras (e.g. a pooling window larger than the feature map).
        first = str(exc).strip().splitlines()[0][:200]
        raise ConfigError(
            f"model {name!r} cannot be built for input {shape} ({first}). "
            f"Fix: use a larger --image-size (the model is designed for {entry.default_input_shape})."
        ) from None
