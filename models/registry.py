"""The zoo's registry: every model factory registers here under a name.

`available()` lists the names, `build(name, ...)` calls the factory, and the
CLI uses the same two functions, so a model registered here is usable from
`bnn-tf train NAME` without further wiring.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from types import SimpleNamespace
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
# name → the function registered under it (re-importing a module registers the same again).
_SOURCES: dict[str, Callable[..., tf.keras.Model]] = {}


@dataclass(frozen=True)
class Kind:
    """A family of factories that share their leading keyword options and registry defaults.

    A factory registered with a kind is written as `def f(args, *, own_option=...)`:
    it receives the shared options as one `args` object (attributes named after
    `parameters`, plus `name`, the registry name) and declares only its own. The
    registered factory is keyword-only over both, with a real signature
    (`inspect.signature`, `bnn-tf models`, `build`'s option check see every option).

    Attributes:
        parameters: the shared keyword-only parameters, in order, with defaults.
        defaults: `register` arguments the kind sets unless given (e.g. the default input).
        doc: the shared options' docs, appended to every factory's docstring.
    """

    parameters: tuple[inspect.Parameter, ...]
    defaults: Mapping[str, Any] = field(default_factory=dict)
    doc: str = ""

    def with_defaults(self, register_defaults: Mapping[str, Any], **options: Any) -> Kind:
        """This kind with other defaults: of some options (`options`) and of `register`.

        For a sibling (e.g. a small-input variant) whose options are the same but
        whose defaults differ.
        """
        unknown = sorted(set(options) - {p.name for p in self.parameters})
        if unknown:
            raise ValueError(f"kind has no options {unknown}.")
        parameters = tuple(
            p.replace(default=options.get(p.name, p.default)) for p in self.parameters
        )
        defaults = {**self.defaults, **register_defaults}
        return replace(self, parameters=parameters, defaults=defaults)


def option(name: str, default: Any, annotation: Any = inspect.Parameter.empty) -> inspect.Parameter:
    """A keyword-only factory parameter, for `Kind.parameters`."""
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
    )


def _with_kind(function: Callable[..., tf.keras.Model], kind: Kind, name: str) -> Factory:
    own = list(inspect.signature(function).parameters.values())[1:]
    signature = inspect.Signature([*kind.parameters, *own], return_annotation=tf.keras.Model)
    shared = [p.name for p in kind.parameters]

    @functools.wraps(function)
    def factory(**kwargs: Any) -> tf.keras.Model:
        bound = signature.bind(**kwargs)
        bound.apply_defaults()
        values = dict(bound.arguments)
        args = SimpleNamespace(name=name, **{k: values.pop(k) for k in shared})
        return function(args, **values)

    factory.__signature__ = signature  # type: ignore[attr-defined]
    if kind.doc:
        factory.__doc__ = f"{inspect.getdoc(function) or ''}\n\n{kind.doc}"
    return factory


def _module_value(function: Callable, attribute: str, default: Any) -> Any:
    return getattr(sys.modules.get(function.__module__), attribute, default)


def _first_paragraph(function: Callable) -> str:
    doc = inspect.getdoc(function) or ""
    return " ".join(doc.split("\n\n", 1)[0].split()).rstrip(".")


def latent_adam(
    why: str, learning_rate: float = 1e-3, schedule: str = "cosine", **schedule_options: Any
) -> dict[str, Any]:
    """A `register(training=...)` entry: Adam on latent weights, `schedule` learning rate.

    `schedule_options` are the schedule's `ScheduleConfig` fields (e.g. `factor`,
    `every_epochs` for "step"); "cosine" without options is OptimizerConfig's default.
    """
    spec: dict[str, Any] = {"name": "adam", "learning_rate": learning_rate, "why": why}
    if schedule != "cosine" or schedule_options:
        spec["lr_schedule"] = {"kind": schedule, **schedule_options}
    return spec


def bop_adam(
    why: str, threshold: float = 1e-6, gamma: float = 1e-3, learning_rate: float = 1e-3
) -> dict[str, Any]:
    """A `register(training=...)` entry: Bop on the binary kernels, cosine Adam on the rest."""
    return {
        "name": "bop",
        "threshold": threshold,
        "gamma": gamma,
        "learning_rate": learning_rate,
        "why": why,
    }


def register(
    name: str,
    *,
    lce_binary: bool,
    kind: Kind | None = None,
    description: str | None = None,
    default_input_shape: tuple[int, ...] | None = None,
    float_twin: str | None = None,
    family: str | None = None,
    paper: str | None = None,
    tags: tuple[str, ...] = (),
    training: Mapping[str, Any] | None = None,
    min_input_size: int | None = None,
    input_channels: tuple[int, ...] = (1, 3),
) -> Callable[[Callable[..., tf.keras.Model]], Factory]:
    """Decorator: add a model factory to the zoo under `name`; returns the registered factory.

    What is not given comes from the factory and its module, so a model module
    states each fact once: `description` is the docstring's first paragraph,
    `family` and `paper` the module's `FAMILY` and `PAPER` constants, and `kind`
    (see `Kind`) supplies shared options and defaults such as `default_input_shape`.
    """

    def decorator(function: Callable[..., tf.keras.Model]) -> Factory:
        factory = _with_kind(function, kind, name) if kind is not None else function
        if _SOURCES.setdefault(name, function) is not function:
            raise ValueError(f"Model name {name!r} is already registered.")
        given = {
            "default_input_shape": default_input_shape,
            "float_twin": float_twin,
            "tags": tags or None,
        }
        values = dict(kind.defaults) if kind else {}
        values.update({k: v for k, v in given.items() if v is not None})
        if values.get("float_twin") == name:  # a kind's twin is no twin of itself
            values["float_twin"] = None
        if "default_input_shape" not in values:
            raise ValueError(f"model {name!r} registers no default_input_shape (nor its kind).")
        _REGISTRY[name] = ModelInfo(
            name=name,
            factory=factory,
            description=description or _first_paragraph(function),
            lce_binary=lce_binary,
            default_input_shape=tuple(values["default_input_shape"]),
            float_twin=values.get("float_twin"),
            family=family or _module_value(function, "FAMILY", "other"),
            paper=paper if paper is not None else _module_value(function, "PAPER", ""),
            tags=tuple(values.get("tags", ())),
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
