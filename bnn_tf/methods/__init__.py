"""Binarization methods: one module per paper.

Each module holds a method's math, its quantizers, its layers and the
schedules its layers declare (see `bnn_tf.introspect.declared_schedules`).
Importing this package imports every module in it, which registers their
Keras objects (package `"bnn_tf"`), so adding a method is adding a file, as
adding a model is adding a file to `bnn_tf.models`.

Modules whose name starts with `_` are private helpers and are not imported
automatically.
"""

import importlib
import pkgutil

from bnn_tf.methods._aliases import register_package_names

MODULES: tuple[str, ...] = tuple(
    sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))
)

for _name in MODULES:
    importlib.import_module(f"{__name__}.{_name}")

# Every object registered as "bnn_tf>alias" also resolves by its alias and, for a class,
# by its class name, as larq's quantizers do: `kernel_quantizer="abc_weight"` works, and
# a legacy `.h5` config (which names a nested object by class name only) loads.
register_package_names()

__all__ = list(MODULES)
