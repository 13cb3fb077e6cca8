"""BinaryAlexNet (larq-zoo 2.4 graph).

Hubara, Courbariaux, Soudry, El-Yaniv, Bengio: "Binarized Neural Networks",
NeurIPS 2016, on AlexNet: every conv and fully-connected layer binary
(`ste_sign` kernels; `ste_sign` inputs except the first layer, which sees the
image), BN without γ after each, the classifier written as 1×1 binary convs
on the flattened map (so LCE runs it as `LceBconv2d`, not a float dense).
"""

from __future__ import annotations

import larq as lq
import tensorflow as tf

from bnn_tf.models._larq_zoo import IMAGENET, finish, zoo_input
from bnn_tf.models.registry import latent_adam, register

FAMILY = "baseline"
PAPER = "Hubara et al., Binarized Neural Networks, NeurIPS 2016 (AlexNet, larq-zoo 2.4)"


def _conv(x, features, kernel_size, *, strides=1, pool=False, first=False, name):
    x = lq.layers.QuantConv2D(
        features, kernel_size, strides=strides, padding="same", use_bias=False,
        input_quantizer=None if first else "ste_sign", kernel_quantizer="ste_sign",
        kernel_constraint="weight_clip", name=f"{name}_conv",
    )(x)  # fmt: skip
    if pool:
        x = tf.keras.layers.MaxPool2D(pool_size=3, strides=2, name=f"{name}_pool")(x)
    return tf.keras.layers.BatchNormalization(scale=False, momentum=0.9, name=f"{name}_bn")(x)


_WHY = "larq-zoo TrainBinaryAlexNet: Adam lr 1e-2 halved every 10 epochs, 150 epochs, batch 512"


@register(
    "binary_alexnet",
    kind=IMAGENET,
    lce_binary=True,
    min_input_size=57,  # the stride-4 11×11 stem and three valid 3×3/2 pools (measured)
    training=latent_adam(_WHY, 1e-2, schedule="step", factor=0.5, every_epochs=10),
)
def binary_alexnet(args) -> tf.keras.Model:
    """BinaryAlexNet (larq-zoo 2.4 graph): binary convs and 1×1-conv classifier.

    keras.applications-style options; logits out by default.
    """
    inputs = zoo_input(args)
    x = _conv(inputs, 64, 11, strides=4, pool=True, first=True, name="conv1")
    x = _conv(x, 192, 5, pool=True, name="conv2")
    x = _conv(x, 384, 3, name="conv3")
    x = _conv(x, 384, 3, name="conv4")
    x = _conv(x, 256, 3, pool=True, name="conv5")
    if args.include_top:
        channels = int(x.shape[1] * x.shape[2] * x.shape[3])
        x = tf.keras.layers.Reshape((1, 1, channels), name="flatten_map")(x)
        for i, units in enumerate((4096, 4096, args.num_classes)):
            x = lq.layers.QuantConv2D(
                units, 1, use_bias=False, input_quantizer="ste_sign",
                kernel_quantizer="ste_sign", kernel_constraint="weight_clip",
                name=f"fc{i + 1}",
            )(x)  # fmt: skip
            x = tf.keras.layers.BatchNormalization(scale=False, momentum=0.9, name=f"fc{i + 1}_bn")(
                x
            )
        x = tf.keras.layers.Flatten(name="logits")(x)
    return finish(args, inputs, x)
