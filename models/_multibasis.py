"""The bnn_small layout with multi-basis binary convs (ABC-Net, ReBNet, least-squares).

Float stem → five `MultiBasisConv2D` 3×3 (64, 64, 128, 128, 256) each
followed by BatchNorm, MaxPool after the 2nd and 4th → GAP → float Dense:
`bnn_small`'s size, so the multi-bit models compare at equal architecture.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import tensorflow as tf

from bnn_tf.errors import ConfigError
from bnn_tf.methods.multibasis import ActivationBases, MultiBasisConv2D, WeightBases
from bnn_tf.methods.rebnet import ResidualSign
from bnn_tf.models._parts import POOL_AFTER, check_widths, small_model, small_stem

# The bases are functions of real-valued latent weights: Adam trains them (as the papers);
# Bop would see no binary variable. 2e-3 with cosine decay is the methods-table setting.
TRAINING = {
    "name": "adam",
    "learning_rate": 2e-3,
    "why": "latent real weights define the bases (ABC-Net/ReBNet/LSQ train with Adam/SGD); "
    "2e-3 cosine is benchmarks/multibit.py's setting",
}


def activation_choice(
    model: str, activation_levels: int, option: str, value: Any, make: Callable[[Any], Any]
) -> Callable[[], ActivationBases]:
    """A factory of input quantizers: `make(value)`, or ReBNet residual signs when `value` is None.

    Raises:
        ConfigError: both `option` and `activation_levels` (≠ 1) were given.
    """
    if value is None:
        return lambda: ResidualSign(activation_levels)
    if activation_levels != 1:
        raise ConfigError(
            f"{model}: give {option} or activation_levels (residual signs), not both."
        )
    return lambda: make(value)


def multibasis_small(
    args: Any,
    *,
    kernel_quantizer: Callable[[], WeightBases],
    input_quantizer: Callable[[], ActivationBases],
) -> tf.keras.Model:
    """bnn_small layout (`args`: a `SMALL` factory's options) of multi-basis convs.

    `kernel_quantizer`/`input_quantizer` make fresh quantizers per conv.
    """
    check_widths(args.widths)
    inputs = tf.keras.Input(shape=tuple(args.input_shape))
    x = small_stem(inputs, args.stem_width)
    for i, width in enumerate(args.widths):
        x = MultiBasisConv2D(
            width,
            3,
            padding="same",
            kernel_quantizer=kernel_quantizer(),
            input_quantizer=input_quantizer(),
            name=f"conv{i + 1}",
        )(x)
        x = tf.keras.layers.BatchNormalization(momentum=0.9, name=f"bn{i + 1}")(x)
        if i in POOL_AFTER:
            x = tf.keras.layers.MaxPool2D(2, name=f"pool{i + 1}")(x)
    return small_model(args, inputs, x)
