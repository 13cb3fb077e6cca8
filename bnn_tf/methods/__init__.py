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

MODULES: tuple[str, ...] = tuple(
    sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))
)

for _name in MODULES:
    importlib.import_module(f"{__name__}.{_name}")

__all__ = list(MODULES)
