"""Binary `QuantDense` as a 1×1 binary convolution, so LCE runs it on `LceBconv2d`.

LCE has no binary fully-connected op: a `QuantDense` with sign inputs and a
binary kernel converts to a float `FULLY_CONNECTED` on ±1 values. A dense
layer on a vector is a 1×1 convolution on a 1×1 image:

    y = x̂ · K̂ + b   with x̂ = sign(x) ∈ {±1}^C, K̂ ∈ {±1·s}^{C×U}
      = reshape(conv2d(reshape(x̂, [N, 1, 1, C]), reshape(K̂, [1, 1, C, U])), [N, U]) + b

`BinaryDenseConv` is a `QuantDense` (same config, same weights, same
training behaviour) whose forward pass is written as that convolution, so
LCE's binary-conv pattern (sign → Conv2D with a ±1·scale constant kernel)
matches it. With ±1 inputs and ±1 weights every product and partial sum is a
small integer, exact in float32, so the outputs are identical, not just
close. `rewrite_binary_dense(model)` swaps every eligible `QuantDense` of a
functional or sequential model for one, keeping names and weights.
"""

from __future__ import annotations

import larq as lq
import tensorflow as tf

from bnn_tf import introspect
from bnn_tf.converters.rules import input_quantizer_problem, kernel_problem
from bnn_tf.errors import ConfigError


@tf.keras.utils.register_keras_serializable(package="bnn_tf")
class BinaryDenseConv(lq.layers.QuantDense):
    """`QuantDense` computed as a 1×1 convolution (for LCE's `LceBconv2d`).

    Same arguments, weights and `get_config` as `larq.layers.QuantDense`;
    inputs must be rank 2 `(batch, features)`.
    """

    def call(self, inputs):
        if inputs.shape.rank != 2:
            raise ConfigError(
                f"{self.name}: BinaryDenseConv takes (batch, features) inputs, got rank {inputs.shape.rank}. "
                "Fix: Flatten or pool before the dense layer."
            )
        with lq.context.quantized_scope(True):
            # The QuantizedVariable reads as its quantized value in this scope.
            kernel = tf.convert_to_tensor(self.kernel)
        channels, units = int(kernel.shape[0]), int(kernel.shape[1])
        # Reshape first, then sign: LCE matches a sign that feeds the conv directly
        # (the quantizer is element-wise, so the order does not change the values).
        x = tf.reshape(inputs, [-1, 1, 1, channels])
        if self.input_quantizer:
            x = self.input_quantizer(x)
        y = tf.nn.conv2d(x, tf.reshape(kernel, [1, 1, channels, units]), strides=1, padding="VALID")
        y = tf.reshape(y, [-1, units])
        if self.use_bias:
            y = tf.nn.bias_add(y, self.bias)
        if self.activation is not None:
            y = self.activation(y)
        return y


def rewrite_problem(layer: tf.keras.layers.Layer, *, probe: bool = True) -> str | None:
    """Why `layer` cannot become a `BinaryDenseConv` (None if it can)."""
    problem = _quantizer_problem(layer, probe)
    if problem:
        return problem
    try:
        rank = len(layer.input_shape)
    except (AttributeError, RuntimeError):
        return "its input shape is unknown (subclassed model, or a layer shared between inputs)"
    if rank != 2:
        return f"its input has rank {rank}; only (batch, features) inputs map to a 1×1 conv"
    return None


def _quantizer_problem(layer: tf.keras.layers.Layer, probe: bool) -> str | None:
    if not isinstance(layer, lq.layers.QuantDense):
        return f"{type(layer).__name__} is not a larq QuantDense"
    return input_quantizer_problem(layer.input_quantizer, probe=probe) or kernel_problem(layer)


def _eligible(layer: tf.keras.layers.Layer, probe: bool) -> bool:
    return (
        isinstance(layer, lq.layers.QuantDense)
        and not isinstance(layer, BinaryDenseConv)
        and rewrite_problem(layer, probe=probe) is None
    )


def rewrite_binary_dense(model: tf.keras.Model, *, probe: bool = True) -> tf.keras.Model:
    """A copy of `model` where every binary `QuantDense` (sign inputs, 1-bit kernel,
    rank-2 input) is a `BinaryDenseConv` with the same name and weights.

    Returns `model` itself when nothing is eligible. Other layers are cloned
    from their config and get the original weights, so the copy computes the
    same function; nested functional models are rewritten recursively.

    Raises:
        ConfigError: a subclassed model (its graph cannot be re-wired).
    """
    functional = getattr(model, "_is_graph_network", False) or isinstance(
        model, tf.keras.Sequential
    )
    binary_dense = [
        layer
        for layer in introspect.layers(model)
        if not isinstance(layer, BinaryDenseConv) and _quantizer_problem(layer, probe) is None
    ]
    if binary_dense and not functional:
        raise ConfigError(
            f"{model.name} is a subclassed model, so its binary QuantDense layers cannot be rewritten "
            "to 1×1 binary convs. Fix: build it with the functional API, or use BinaryDenseConv "
            "(bnn_tf.converters.BinaryDenseConv) in place of QuantDense yourself."
        )
    if not any(_eligible(layer, probe) for layer in binary_dense):
        return model

    def clone(layer: tf.keras.layers.Layer) -> tf.keras.layers.Layer:
        if isinstance(layer, tf.keras.Model):
            return rewrite_binary_dense(layer, probe=probe)
        if _eligible(layer, probe):
            return BinaryDenseConv.from_config(layer.get_config())
        return layer.__class__.from_config(layer.get_config())

    new = tf.keras.models.clone_model(model, clone_function=clone)
    # Same layer order, same variable shapes and order (BinaryDenseConv keeps
    # QuantDense's weights), so the weights carry over one to one.
    new.set_weights(model.get_weights())
    return new
