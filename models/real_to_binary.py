"""Real-to-Binary Net (R2B, BNN variant; larq-zoo 2.4 graph).

Martinez, Yang, Bulat, Tzimiropoulos: "Training binary neural networks with
real-to-binary convolutions", ICLR 2020. Blocks in
`bnn_tf.methods.real_to_binary`: a ResNet-18 layout of 8 binary blocks,
each two halves `PReLU(BConv(sign(BN(x))) · s(BN(x))) + shortcut(x)` with the
data-driven channel gate `s`. larq-zoo's layer names are kept (the paper's
attention-matching losses refer to `…_block_N_out`); its identity `Lambda`
block outputs are `Identity` layers here.
"""

from __future__ import annotations

import tensorflow as tf

from bnn_tf.methods import real_to_binary as r2b
from bnn_tf.models._larq_zoo import IMAGENET, finish, zoo_input
from bnn_tf.models.registry import latent_adam, register

FAMILY = "real_to_binary"
PAPER = (
    "Martinez et al., Training binary neural networks with real-to-binary convolutions, ICLR 2020"
)


_WHY = (
    "Martinez et al. 2020 (larq-zoo TrainR2BBNN): multi-stage real → BAN → BNN with "
    "attention matching; the BNN stage: Adam lr 2e-4, 5 warm-up epochs, ×0.3 at "
    "40/60/70 of 75, batch 256, initialised from the BAN stage"
)
TRAINING = latent_adam(_WHY, 2e-4, schedule="step", factor=0.3, every_epochs=40)


@register("real_to_binary_net", kind=IMAGENET, lce_binary=True, training=TRAINING)
def real_to_binary_net(args) -> tf.keras.Model:
    """Real-to-Binary Net (BNN, larq-zoo 2.4 graph): data-driven gated binary blocks.

    larq-zoo's RealToBinaryNet; keras.applications-style options, logits out by default.
    """
    name = "r2b_bnn"
    activation = args.classifier_activation
    inputs = zoo_input(args)
    x = tf.keras.layers.Conv2D(
        64, 7, strides=2, padding="same", use_bias=False,
        kernel_initializer=r2b.KERNEL_INITIALIZER, name=f"{name}_block_1_conv2d",
    )(inputs)  # fmt: skip
    x = tf.keras.layers.BatchNormalization(
        momentum=r2b.MOMENTUM, name=f"{name}_block_1_batch_norm"
    )(x)
    # larq-zoo's Real-to-Bin nets inherit the strong baseline's PReLU stem (not a ReLU)
    x = tf.keras.layers.PReLU(shared_axes=[1, 2], name=f"{name}_block_1_prelu")(x)
    x = tf.keras.layers.MaxPool2D(3, strides=2, padding="same", name=f"{name}_block_1_pool")(x)
    for block in range(2, 10):
        x = r2b.binary_block(
            x, downsample=block % 2 == 0 and block > 3, name=f"{name}_block_{block}"
        )
    if args.include_top:
        head = f"{name}_block_10"
        x = r2b.global_pool(x, f"{head}global_pool")
        x = tf.keras.layers.Dense(args.num_classes, name=f"{head}_logits")(x)
        if activation == "softmax":
            # larq-zoo ends on a Softmax layer here (not Activation): same graph, same name
            x = tf.keras.layers.Softmax(name=f"{head}_probs", dtype="float32")(x)
            activation = None
    return finish(args, inputs, x, name=name, classifier_activation=activation)
