"""String names for bnn_tf's objects, resolved the way larq resolves its own.

`register_keras_serializable(package="bnn_tf", name=...)` makes an object
resolvable as `"bnn_tf>name"` only. Two loaders need more: larq registers each
quantizer under its class name and a snake-case alias (`"ste_sign"` →
`SteSign`), so `kernel_quantizer="ste_sign"` works; and tf_keras's legacy
`.h5` loader names every nested object (a quantizer, regularizer,
initializer, constraint, activation object, an optimizer inside larq's
`CaseOptimizer`) by its *class name* alone, so an object registered under
another name ("bnn_plus" for `BnnPlusRegularizer`) does not load back.

`register_package_names()` closes both gaps for every object registered under
package `"bnn_tf"`; the packages that register objects (`bnn_tf`,
`bnn_tf.converters`, `bnn_tf.models`) call it once after importing their
modules, so a new object is covered without a call of its own.
`register_aliases(cls, "alias")` adds further names to one class.
"""

from __future__ import annotations

import functools

import tensorflow as tf

PACKAGE = "bnn_tf"


@functools.cache
def _keras_builtin_names() -> set[str]:
    # A bare custom name shadows Keras' own object of that name in every loader
    # (custom objects are looked up first): a bnn_tf class called `Activation`
    # would silently replace Keras' layer in every `.h5` file.
    modules = (
        tf.keras.layers, tf.keras.activations, tf.keras.initializers, tf.keras.regularizers,
        tf.keras.constraints, tf.keras.optimizers, tf.keras.callbacks,
        tf.keras.optimizers.schedules, tf.keras.losses, tf.keras.metrics,
    )  # fmt: skip
    return {name for module in modules for name in dir(module) if not name.startswith("_")}


def register_names(obj: object, *names: str) -> object:
    """Resolve `obj` by each of `names` (`tf.keras.utils.get_registered_object(name)`).

    Raises:
        ValueError: a name already belongs to another object or to a Keras built-in.
    """
    objects = tf.keras.utils.get_custom_objects()
    for name in names:
        if objects.get(name, obj) is not obj:
            raise ValueError(f"{name!r} already names {objects[name]!r}; pick another name.")
        if name not in objects and name in _keras_builtin_names():
            raise ValueError(f"{name!r} is a Keras built-in name; pick another name.")
        objects[name] = obj
    return obj


def register_aliases(cls: type, *aliases: str) -> type:
    """Resolve `cls` by its class name and by each alias (`lq.quantizers.get("xnor_weight")`).

    Raises:
        ValueError: a name already belongs to another object.
    """
    register_names(cls, *dict.fromkeys((cls.__name__, *aliases)))
    return cls


def register_package_names(package: str = PACKAGE) -> None:
    """Make every object registered as `"<package>>name"` resolvable by `name` too, and a
    class also by its class name.

    Idempotent: run again after more modules have registered objects.

    Raises:
        ValueError: one of those names already belongs to another object.
    """
    prefix = f"{package}>"
    for key, obj in list(tf.keras.utils.get_custom_objects().items()):
        if not key.startswith(prefix):
            continue
        alias = key[len(prefix) :]
        if isinstance(obj, type):
            register_aliases(obj, alias)
        else:  # a function or callable instance has no class name of its own to load by
            register_names(obj, alias)
