"""The bnn-tf model zoo (installed as `bnn_tf.models`).

```python
import bnn_tf.models as zoo
zoo.available()                      # ["bnn_small", "bnn_small_float", ...]
model = zoo.build("bnn_small", input_shape=(28, 28, 1), num_classes=10)
```

Every factory is keyword-only, in the style of `keras.applications`:
`(input_shape, num_classes, include_top, ...)`. Importing this package
imports every module in it, and each module registers its factories with
`@register(...)`, so adding a model is adding a file.
"""

import importlib
import pkgutil

import bnn_tf  # noqa: F401  sets up tf_keras before any model module imports TensorFlow
from bnn_tf.methods import register_package_names
from bnn_tf.models.registry import ModelInfo, available, build, info, register

for _module in pkgutil.iter_modules(__path__):
    if _module.name != "registry" and not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")

# Any object a model module registers loads from `.h5` by class name too
# (bnn_tf.methods._aliases).
register_package_names()

__all__ = ["ModelInfo", "available", "build", "info", "register"]
