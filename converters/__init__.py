"""Converters (installed as `bnn_tf.converters`): Keras → LCE TFLite and checks on the result.

```python
from bnn_tf import converters
flatbuffer = converters.convert(model)          # bytes, via larq-compute-engine
print(converters.inspect(flatbuffer).format())   # ops, LceBconv2d count, size
result = converters.verify(model, flatbuffer, x_test, y_test)
print(converters.bench(flatbuffer).format())     # median latency, bytes
print(converters.lint(model).format())             # before converting: what will stay float, and why
# convert() splits grouped binary convs (split_grouped_convs) so LCE's default
# kernel, the one on ARM and Android, runs them; verify() runs that kernel.
print(converters.conversion_report(model, flatbuffer).format())  # per layer: binary or float, MACs
portable = converters.convert_portable(model)      # stock TFLite, no custom ops
```

These work on any Keras model or `.tflite`, not only zoo models. LCE's
acceptance rules (when a layer becomes a binary kernel, which kernel runs
it) live in `converters.rules`.
"""

import bnn_tf  # noqa: F401  sets up tf_keras first
from bnn_tf.converters.benchmarking import BenchResult, bench  # noqa: E402
from bnn_tf.converters.binary_dense import BinaryDenseConv, rewrite_binary_dense  # noqa: E402
from bnn_tf.converters.conversion import (  # noqa: E402
    ConversionResult,
    convert,
    convert_to_file,
    load_keras_model,
    load_model,
)
from bnn_tf.converters.groups import (  # noqa: E402
    GroupSplitConv2D,
    split_grouped_convs,
)
from bnn_tf.converters.inspection import OpReport, inspect  # noqa: E402
from bnn_tf.converters.kernel_fold import fold_kernel_quantizers  # noqa: E402
from bnn_tf.converters.lint import LayerLint, LintReport, binary_conv_layers, lint  # noqa: E402
from bnn_tf.converters.portable import (  # noqa: E402
    PortableComparison,
    PortableExportError,
    compare_portable,
    convert_portable,
)
from bnn_tf.converters.report import ConversionReport, LayerRow, conversion_report  # noqa: E402
from bnn_tf.converters.rules import KERNELS  # noqa: E402
from bnn_tf.converters.runtime import kernel_blockers, make_interpreter  # noqa: E402
from bnn_tf.converters.stock_runtime import (  # noqa: E402
    LceRuntimeRequiredError,
    make_stock_interpreter,
    required_runtime,
    stock_predict,
)
from bnn_tf.converters.tflite_model import TfliteModel, parse  # noqa: E402
from bnn_tf.converters.verification import VerifyResult, tflite_predict, verify  # noqa: E402
from bnn_tf.methods import register_package_names  # noqa: E402

# The layers registered above load from `.h5` by class name too (bnn_tf.methods._aliases).
register_package_names()

__all__ = [
    "BenchResult",
    "BinaryDenseConv",
    "GroupSplitConv2D",
    "fold_kernel_quantizers",
    "KERNELS",
    "ConversionReport",
    "ConversionResult",
    "LayerLint",
    "LayerRow",
    "LceRuntimeRequiredError",
    "LintReport",
    "PortableComparison",
    "PortableExportError",
    "compare_portable",
    "conversion_report",
    "convert_portable",
    "kernel_blockers",
    "lint",
    "load_model",
    "make_interpreter",
    "split_grouped_convs",
    "make_stock_interpreter",
    "required_runtime",
    "rewrite_binary_dense",
    "stock_predict",
    "OpReport",
    "TfliteModel",
    "VerifyResult",
    "bench",
    "binary_conv_layers",
    "convert",
    "convert_to_file",
    "inspect",
    "load_keras_model",
    "parse",
    "tflite_predict",
    "verify",
]
