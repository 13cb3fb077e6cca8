"""Inference form of EBConv for LCE: run only the chosen expert, on `LceBconv2d`.

`export_model(model)` clones a functional Keras model with every `EBConv2D`
replaced by `EBConv2DExport` (same weights, batch fixed to 1); convert the
result with `bnn_tf.converters.convert`:

```python
from bnn_tf import converters
from bnn_tf.methods import ebconv_export
flatbuffer = converters.convert(ebconv_export.export_model(model))
```

How the chosen expert runs alone (strategy `"cond"`, the default): the gate
(`argmax(GAP(x) · G + b)`, softmax dropped: same arg-max) picks an index, and
a balanced tree of `tf.cond` (TFLite `IF` subgraphs, depth ⌈log2 N⌉) runs
one branch per expert. Each branch holds its OWN `sign → pad(+1) → conv` on
a kernel that is a constant inside the branch (sign(W_n)·α baked at trace
time), which is what LCE needs to emit `LceQuantize` + `LceBconv2d` in the
branch (docs/lce.md, docs/ebconv.md). A kernel captured from outside the
branch stays a float `CONV_2D`.

Other strategies, kept for the measurements in benchmarks/ebconv_export.py:

- `"all_experts"`: N binary convs on the same input, outputs combined with the
  one-hot gate: correct for any batch, ≈ N× the cost of one conv.
- `"gather_kernel"`: gather the chosen kernel from a constant stack, one conv.
  The kernel is no longer a constant, so LCE leaves a float `CONV_2D`.

The export layer reads its weights when it is traced: build the export model
after training (as `export_model` does) and convert it right away.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from bnn_tf.errors import ConfigError
from bnn_tf.methods.ebconv import EBConv2D

STRATEGIES = ("cond", "all_experts", "gather_kernel")


def _eager_value(tensor_fn) -> np.ndarray:
    # init_scope leaves any graph being traced, so the value is read eagerly and
    # can be embedded as a constant (what LCE needs for a binary kernel).
    with tf.init_scope():
        return np.asarray(tensor_fn())


@tf.keras.utils.register_keras_serializable(package="bnn_tf")
class EBConv2DExport(EBConv2D):
    """`EBConv2D` for inference at batch 1: only the chosen expert's binary conv runs.

    Same weights and config as `EBConv2D` plus `strategy` (`"cond"`,
    `"all_experts"` or `"gather_kernel"`, see the module docstring).
    """

    def __init__(self, *args, strategy: str = "cond", split_groups: bool = True, **kwargs):
        if strategy not in STRATEGIES:
            raise ConfigError(f"strategy must be one of {STRATEGIES} (got {strategy!r}).")
        super().__init__(*args, **kwargs)
        self.strategy = strategy
        self.split_groups = bool(split_groups)

    def folded_kernels(self) -> np.ndarray:
        """sign(W_n) · α for every expert (N, kh, kw, Cin/g, Cout), read eagerly."""
        return _eager_value(lambda: self.binary_kernels() * self.alpha)

    def _branch(self, inputs: tf.Tensor, kernel: np.ndarray):
        def run():
            # Everything inside the branch: LCE only fuses sign → pad → conv with a
            # constant kernel when all three live in the same (sub)graph.
            if self.groups == 1 or not self.split_groups:
                return self._conv(self.quantize_and_pad(inputs), tf.constant(kernel))
            # One ungrouped binary conv per group: LCE's default kernel (the one
            # that is correct inside IF subgraphs) rejects grouped convolutions.
            parts = tf.split(inputs, self.groups, axis=-1)
            kernels = np.split(kernel, self.groups, axis=-1)
            outs = [
                self._conv(self.quantize_and_pad(part), tf.constant(k))
                for part, k in zip(parts, kernels, strict=True)
            ]
            return tf.concat(outs, axis=-1)

        return run

    def call(self, inputs):
        batch = inputs.shape[0]
        kernels = self.folded_kernels()
        pooled = tf.reduce_mean(inputs, axis=[1, 2])
        single = self.num_experts == 1 or _eager_value(lambda: self.single_expert) > 0.5
        if single:
            y = self._branch(inputs, kernels[0])()
        else:
            logits = self.gate_logits(pooled)
            idx = tf.argmax(logits, axis=-1, output_type=tf.int32)
            if self.strategy == "all_experts":
                outs = tf.stack([self._branch(inputs, k)() for k in kernels], axis=1)
                onehot = tf.one_hot(idx, self.num_experts, dtype=outs.dtype)
                y = tf.reduce_sum(outs * onehot[:, :, None, None, None], axis=1)
            else:
                if batch != 1:
                    raise ConfigError(
                        f"EBConv2DExport {self.name} (strategy {self.strategy!r}) runs one "
                        f"sample at a time but got batch {batch}. Fix: build the export model "
                        "with `export_model(model)` (batch 1), or use the training model."
                    )
                if self.strategy == "gather_kernel":
                    kernel = tf.gather(tf.constant(kernels), idx[0])
                    y = self._conv(self.quantize_and_pad(inputs), kernel)
                else:
                    y = self._cond_tree(idx[0], inputs, kernels, 0, self.num_experts)
        if self.use_se:
            y = y * self.se_scale(pooled)[:, None, None, :]
        return y

    def _cond_tree(self, idx, inputs, kernels, lo: int, hi: int):
        if hi - lo == 1:
            return self._branch(inputs, kernels[lo])()
        mid = (lo + hi) // 2
        return tf.cond(
            idx < mid,
            lambda: self._cond_tree(idx, inputs, kernels, lo, mid),
            lambda: self._cond_tree(idx, inputs, kernels, mid, hi),
        )

    def get_config(self):
        return {
            **super().get_config(),
            "strategy": self.strategy,
            "split_groups": self.split_groups,
        }


def export_model(
    model: tf.keras.Model, *, strategy: str = "cond", split_groups: bool = True
) -> tf.keras.Model:
    """A batch-1 copy of `model` whose `EBConv2D` layers run only their chosen expert.

    Args:
        model: a functional Keras model (e.g. `ebnet_small`), trained.
        strategy: `"cond"` (default), `"all_experts"` or `"gather_kernel"`.
        split_groups: run a grouped EBConv as one binary conv per group
            (needed for LCE's default kernel, see `lce_interpreter`).

    Returns:
        A new functional model with input batch 1 and the same weights; convert
        it with `bnn_tf.converters.convert`.

    Raises:
        ConfigError: `model` is not a functional model, or an EBConv2D sits in
            a nested model (flatten it first).
    """
    if strategy not in STRATEGIES:
        raise ConfigError(f"strategy must be one of {STRATEGIES} (got {strategy!r}).")
    if not getattr(model, "_is_graph_network", False):
        raise ConfigError(
            f"export_model needs a functional Keras model; {model.name!r} is subclassed. "
            "Fix: build the model with tf.keras.Input and layer calls."
        )
    for layer in model.layers:
        if isinstance(layer, tf.keras.Model) and any(
            isinstance(sub, EBConv2D) for sub in layer.submodules
        ):
            raise ConfigError(
                f"export_model: nested model {layer.name!r} contains EBConv2D layers. "
                "Fix: build the model flat (layers directly in one functional model)."
            )

    def clone(layer):
        config = layer.get_config()
        if isinstance(layer, EBConv2D):
            config.pop("strategy", None)
            config.pop("split_groups", None)
            return EBConv2DExport(**config, strategy=strategy, split_groups=split_groups)
        return layer.__class__.from_config(config)

    inputs = [
        tf.keras.Input(
            shape=tuple(t.shape[1:]), batch_size=1, dtype=t.dtype, name=t.name.split(":")[0]
        )
        for t in model.inputs
    ]
    exported = tf.keras.models.clone_model(
        model, input_tensors=inputs if len(inputs) > 1 else inputs[0], clone_function=clone
    )
    for layer in model.layers:
        if isinstance(layer, tf.keras.layers.InputLayer):
            continue
        exported.get_layer(layer.name).set_weights(layer.get_weights())
    return exported


def lce_interpreter(flatbuffer: bytes, *, num_threads: int = 1):
    """An LCE interpreter whose binary-conv kernel is correct inside `IF` subgraphs.

    LCE 0.16's indirect-BGEMM kernel (`use_indirect_bgemm=True`, the fast x86
    choice in `bnn_tf.converters`) returns wrong outputs from the second call
    of an `LceBconv2d` that sits in an `IF` branch (measured: docs/ebconv.md).
    The default kernel, the one LCE registers on ARM and in its Android AAR,
    is correct, so EBConv models are run and verified with it.
    """
    from larq_compute_engine.tflite.python.interpreter import Interpreter

    return Interpreter(bytes(flatbuffer), num_threads=num_threads, use_indirect_bgemm=False)
