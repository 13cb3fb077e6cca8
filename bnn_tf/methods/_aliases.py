"""String names for bnn_tf's quantizers, resolved the way larq resolves its own.

larq registers each quantizer under its class name and a snake-case alias
(`"ste_sign"` → `SteSign`), so `kernel_quantizer="ste_sign"` works and a
legacy `.h5` config, which names a nested quantizer by its class name only,
loads. `register_aliases(cls, "alias")` does the same for a bnn_tf class that
is already registered with Keras under package `"bnn_tf"`.
"""

from __future__ import annotations

import tensorflow as tf


def register_aliases(cls: type, *aliases: str) -> type:
    """Resolve `cls` by its class name and by each alias (`lq.quantizers.get("xnor_weight")`).

    Raises:
        ValueError: a name already belongs to another object.
    """
    objects = tf.keras.utils.get_custom_objects()
    for name in (cls.__name__, *aliases):
        if objects.get(name, cls) is not cls:
            raise ValueError(f"{name!r} already names {objects[name]!r}; pick another alias.")
        objects[name] = cls
    return cls
