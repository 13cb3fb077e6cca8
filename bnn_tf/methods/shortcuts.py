"""Parameter-free ResNet shortcuts ("option A", He et al., CVPR 2016).

When a residual stage halves the resolution and widens the channels, the
CIFAR ResNets of He et al. (and the BNNs built on them: IR-Net, ReCU) keep
the shortcut free of weights: downsample, then append zero channels.

$$
s(x) = \\operatorname{concat}_c\\big(0_{\\lfloor p/2 \\rfloor},\\; \\operatorname{avgpool}_s(x),\\; 0_{\\lceil p/2 \\rceil}\\big),
\\quad p = C_{out} - C_{in}
$$

(avg-pool rather than the original strided slice `x[::2, ::2]`, as in the
ReCU reference code's description in docs/methods.md).
"""

from __future__ import annotations

import tensorflow as tf

from bnn_tf.errors import ConfigError


@tf.keras.utils.register_keras_serializable(package="bnn_tf")
class ZeroPadShortcut(tf.keras.layers.Layer):
    """Option-A shortcut: `strides`×`strides` average pool, then zero-pad channels to `filters`.

    Args:
        filters: output channels (≥ input channels).
        strides: pooling size and stride (1 = no pooling).
    """

    def __init__(self, filters: int, strides: int = 2, **kwargs):
        super().__init__(**kwargs)
        if filters < 1 or strides < 1:
            raise ConfigError(f"filters and strides must be ≥ 1 (got {filters}, {strides}).")
        self.filters = int(filters)
        self.strides = int(strides)

    def build(self, input_shape):
        channels = int(input_shape[-1])
        if channels > self.filters:
            raise ConfigError(
                f"ZeroPadShortcut: input has {channels} channels, more than filters={self.filters}. "
                "Fix: use a 1×1 convolution shortcut to reduce channels."
            )
        extra = self.filters - channels
        self._pad = [[0, 0], [0, 0], [0, 0], [extra // 2, extra - extra // 2]]
        super().build(input_shape)

    def call(self, inputs):
        x = inputs
        if self.strides > 1:
            # "same" so odd sizes (7×7 → 4×4) match a strided 3×3 "same" conv.
            x = tf.nn.avg_pool2d(x, self.strides, self.strides, padding="SAME")
        if self._pad[-1] != [0, 0]:
            x = tf.pad(x, self._pad)
        return x

    def compute_output_shape(self, input_shape):
        shape = tf.TensorShape(input_shape).as_list()
        for axis in (1, 2):
            if shape[axis] is not None:
                shape[axis] = -(-shape[axis] // self.strides)
        shape[-1] = self.filters
        return tf.TensorShape(shape)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "strides": self.strides}
