"""PACT (Choi et al., 2018) at bnn_small size: learned-clip k-bit activations, DoReFa k-bit weights.

| model | method | LCE binary kernels |
|---|---|---|
| `pact_small` | PACT activations (α learned), DoReFa weights | no (float CONV_2D) |
"""

from __future__ import annotations

import larq as lq
import tensorflow as tf

from bnn_tf.methods.pact import Pact
from bnn_tf.models._parts import SMALL, plain_small
from bnn_tf.models.registry import latent_adam, register

FAMILY = "kbit"
PAPER = "Choi et al., PACT: Parameterized Clipping Activation, arXiv 1805.06085"


TRAINING = latent_adam(
    "k-bit latent weights (paper: SGD); Adam 2e-3 cosine, the methods-table setting", 0.002
)


@register("pact_small", kind=SMALL, lce_binary=False, training=TRAINING)
def pact_small(args, *, k_bit: int = 2, alpha: float = 3.0) -> tf.keras.Model:
    """PACT k-bit activations with learned clip α + DoReFa k-bit weights (default 2); float kernels
    under LCE.

    bnn_small layout with PACT activations and DoReFa weights, both `k_bit` bits.

    NOT an LCE binary model: k-bit convs stay float `CONV_2D` (emulated).

    Args:
        k_bit: bits of activations and weights.
        alpha: initial clipping level (paper 10; 3 suits the BN'd inputs here).
    """
    return plain_small(
        args,
        conv_kwargs=lambda: {
            # The paper's α = 10 puts the 2-bit levels at 0/3.3/6.7/10: a BN'd input (≈ N(0, 1))
            # then quantizes to 0 almost everywhere and the loss does not move (measured).
            "input_quantizer": Pact(k_bit, alpha=alpha),
            "kernel_quantizer": lq.quantizers.DoReFa(k_bit=k_bit, mode="weights"),
        },
    )
