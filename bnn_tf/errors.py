"""Errors that bnn_tf raises for bad input: each names the problem and the fix."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import NoReturn


class BnnTfError(Exception):
    """Base class: a user-facing error whose message says what to do.

    The CLI prints these as one line (no traceback) and exits with status 2.
    """


class DataNotFoundError(BnnTfError, FileNotFoundError):
    """No source for a data set could be found or downloaded."""


class InvalidModelFileError(BnnTfError, ValueError):
    """A file given as a Keras model is missing or not a Keras model."""


class InvalidTfliteError(BnnTfError, ValueError):
    """A file or byte string given as a TFLite model is not a valid flatbuffer."""


class ResumeMismatchError(BnnTfError, ValueError):
    """An output folder holds a run whose settings differ from the ones asked for."""


class ConfigError(BnnTfError, ValueError):
    """An argument or setting is out of range or unknown."""


class InvalidDataError(BnnTfError, ValueError):
    """A data file exists but is not in the expected format (corrupt or wrong file)."""


def check_momentum(momentum: float, owner: str = "") -> float:
    """`momentum` as a float, for a moving average m·old + (1 − m)·new; ConfigError unless 0 ≤ m < 1."""
    if not 0 <= momentum < 1:
        prefix = f"{owner} " if owner else ""
        raise ConfigError(f"{prefix}momentum must be in [0, 1) (got {momentum}).")
    return float(momentum)


def moved_names(module: str, moved: Mapping[str, str]) -> Callable[[str], NoReturn]:
    """A module `__getattr__` for names that moved up to `bnn_tf.experiment` (issue 18).

    A forward from the old module would import a higher floor, so an old call
    gets an error naming the new place (`moved`: old name → new dotted path) instead.
    """

    def __getattr__(name: str) -> NoReturn:
        if name in moved:
            raise AttributeError(
                f"{module}.{name} moved to {moved[name]} (same arguments). "
                f"Fix: `from bnn_tf import experiment; experiment.{name}(...)`."
            )
        raise AttributeError(f"module {module!r} has no attribute {name!r}")

    return __getattr__
