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
        ConfigError: `name` is not in the zoo, or its factory has no such keyword.
    """
    entry = info(name)
    shape = tuple(input_shape) if input_shape is not None else entry.default_input_shape
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
    return entry.factory(
        input_shape=shape, num_classes=num_classes, include_top=include_top, **kwargs
    )
