"""DoReFa-Net (Zhou et al., arXiv 1606.06160) at bnn_small size.

| model | method | LCE binary kernels |
|---|---|---|
| `dorefa_small` | k-bit weights and activations | no (float CONV_2D) |

LCE's only quantized conv is the 1-bit × 1-bit `LceBconv2d`. A k-bit (k ≥ 2)
operand does not lower to it; the converter keeps a float `CONV_2D` on the
de-quantized values, so the model is *emulated* in float: the same accuracy as
in Keras, float speed and float size.
"""

from __future__ import annotations

import larq as lq
import tensorflow as tf

from bnn_tf.errors import ConfigError
from bnn_tf.methods.dorefa import MagnitudeAwareSignUnclipped, clip_by_value_activation
from bnn_tf.models._parts import SMALL, plain_small
from bnn_tf.models.registry import latent_adam, register

FAMILY = "dorefa"
PAPER = "Zhou et al., DoReFa-Net, arXiv 1606.06160"


@register(
    "dorefa_small",
    kind=SMALL,
    lce_binary=False,
    training=latent_adam(
        "DoReFa-Net trains latent k-bit weights with Adam; cosine, library-default lr",
    ),
)
def dorefa_small(args, *, k_bit: int = 2) -> tf.keras.Model:
    """DoReFa-Net k-bit weights and activations (default 2/2); float kernels under LCE.

    bnn_small layout with larq's DoReFa quantizers (activations clipped to [0, 1]).

    NOT an LCE binary model: k-bit convs convert to float `CONV_2D` on the
    de-quantized values (same outputs, float speed and size).

    Args:
        k_bit: bits of weights and activations (≥ 1; 1 is still not sign-like: {0, 1} inputs).
    """
    if k_bit < 1:
        raise ConfigError(f"k_bit must be ≥ 1 (got {k_bit}).")
    return plain_small(
        args,
        conv_kwargs=lambda: {
            "input_quantizer": lq.quantizers.DoReFa(k_bit=k_bit, mode="activations"),
            "kernel_quantizer": lq.quantizers.DoReFa(k_bit=k_bit, mode="weights"),
        },
    )


# ---------------------------------------------------------------------------------------
# DoReFa-Net (AlexNet) at ImageNet size: larq-zoo 2.4's graph (weights= loads its .h5 files).
# ---------------------------------------------------------------------------------------


from bnn_tf.models._larq_zoo import IMAGENET, finish, zoo_input  # noqa: E402

_ZOO_WHY = (
    "larq-zoo TrainDoReFaNet: Adam lr 2e-4 (ε 1e-5), ×0.2 at 60 and 75, then ×0.1 "
    "every 2 epochs from 82, 90 epochs, batch 256"
)


@register(
    "dorefanet",
    kind=IMAGENET,
    lce_binary=False,
    min_input_size=44,  # AlexNet's stride-4 stem and valid pools (measured)
    training=latent_adam(_ZOO_WHY, 2e-4, schedule="step", factor=0.2, every_epochs=60),
)
def dorefanet(args, *, activations_k_bit: int = 2) -> tf.keras.Model:
    """DoReFa-Net AlexNet (larq-zoo 2.4 graph): 1-bit weights, 2-bit activations.

    keras.applications-style options; logits out by default.

    NOT an LCE binary model: 2-bit activations convert to float `CONV_2D` (see above).

    Args:
        activations_k_bit: bits of the activations.
    """
    if activations_k_bit < 1:
        raise ConfigError(f"activations_k_bit must be ≥ 1 (got {activations_k_bit}).")

    def quant_kwargs():
        return {
            "input_quantizer": lq.quantizers.DoReFa(k_bit=activations_k_bit, mode="activations"),
            "kernel_quantizer": MagnitudeAwareSignUnclipped(),
            "use_bias": False,
        }

    def bn(name):
        return tf.keras.layers.BatchNormalization(
            scale=False, momentum=0.9, epsilon=1e-4, name=name
        )

    def conv_block(x, filters, kernel_size, *, pool=False, pool_padding="same", name):
        x = lq.layers.QuantConv2D(
            filters, kernel_size, padding="same", name=name, **quant_kwargs()
        )(x)
        x = bn(f"{name}_bn")(x)
        if pool:
            x = tf.keras.layers.MaxPool2D(3, strides=2, padding=pool_padding, name=f"{name}_pool")(
                x
            )
        return x

    inputs = zoo_input(args)
    x = tf.keras.layers.Conv2D(96, 12, strides=4, padding="valid", name="stem_conv")(inputs)
    x = conv_block(x, 256, 5, pool=True, name="conv2")
    x = conv_block(x, 384, 3, pool=True, name="conv3")
    x = conv_block(x, 384, 3, name="conv4")
    x = conv_block(x, 256, 3, pool=True, pool_padding="valid", name="conv5")
    if args.include_top:
        x = tf.keras.layers.Flatten(name="flatten")(x)
        for i in (6, 7):
            x = lq.layers.QuantDense(4096, name=f"fc{i}", **quant_kwargs())(x)
            x = bn(f"fc{i}_bn")(x)
        x = tf.keras.layers.Activation(clip_by_value_activation, name="fc_clip")(x)
        x = tf.keras.layers.Dense(args.num_classes, name="logits")(x)
    return finish(args, inputs, x)
