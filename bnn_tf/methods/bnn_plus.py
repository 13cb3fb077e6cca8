"""BNN+: the SwishSign gradient and the BNN+ weight regulariser.

Darabi, Belbahri, Courbariaux, Nia, "BNN+: Improved Binary Network
Training", arXiv 1812.11800, 2018.

- SwishSign: forward sign(x); backward the derivative of
  SS_β(x) = 2σ(βx)(1 + βx(1 − σ(βx))) − 1,

      dSS_β/dx = β (2 − βx · tanh(βx/2)) / (1 + cosh(βx)).

  larq ships it (`larq.quantizers.SwishSign`, alias `"swish_sign"`); bnn-tf
  does not duplicate it.
- The regulariser (`BnnPlusRegularizer`, alias `"bnn_plus"`) pulls every
  latent weight towards ±α:

      R₁(w) = λ Σ |α − |w||       (p = 1, "Manhattan")
      R₂(w) = λ Σ (α − |w|)²      (p = 2, "Euclidean")

  The paper ties α to a learned per-layer scale; with BatchNorm right after
  the binary conv that scale is absorbed, so α is a constant here (1, the
  range the STE/weight clip keep weights in). Its gradient is
  λ p |α − |w||^(p−1) · sign(|w| − α) · sign(w).

LCE: SwishSign is a sign forward, so convs with it as input quantizer are
`LceBconv2d`; the regulariser only acts in training.
"""

from __future__ import annotations

import tensorflow as tf

from bnn_tf.errors import ConfigError


@tf.keras.utils.register_keras_serializable(package="bnn_tf", name="bnn_plus")
class BnnPlusRegularizer(tf.keras.regularizers.Regularizer):
    r"""BNN+ regulariser `λ Σ |α − |w||^p` (p = 1 or 2).

    Args:
        scale: λ.
        alpha: the target magnitude α.
        p: 1 (Manhattan) or 2 (Euclidean).
    """

    def __init__(self, scale: float = 1e-5, alpha: float = 1.0, p: int = 2):
        if p not in (1, 2):
            raise ConfigError(f"BnnPlusRegularizer p must be 1 or 2 (got {p}).")
        if scale < 0 or alpha <= 0:
            raise ConfigError(
                f"BnnPlusRegularizer needs scale ≥ 0, alpha > 0 (got {scale}, {alpha})."
            )
        self.scale = float(scale)
        self.alpha = float(alpha)
        self.p = int(p)

    def __call__(self, w):
        gap = self.alpha - tf.abs(w)
        return self.scale * tf.reduce_sum(tf.abs(gap) if self.p == 1 else tf.square(gap))

    def get_config(self):
        return {"scale": self.scale, "alpha": self.alpha, "p": self.p}
