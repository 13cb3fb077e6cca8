"""Self-Binarizing Networks: tanh(β·x) annealed to a sign by a declared β schedule.

Lahoud, Achanta, Márquez-Neila, Süsstrunk, "Self-Binarizing Networks",
arXiv 1902.00730, 2019.

`SelfBinarizing(beta)` (alias `"self_binarizing"`), for weights and activations:

    training:  q(x) = tanh(β · x),   ∂q/∂x = β (1 − tanh²(β x))   (exact, no STE)
    inference: q(x) = sign(x)        (the limit β → ∞; sign(0) = +1)

β is raised once per epoch by `SelfBinarizingSchedule`, which the quantizer
declares (`declared_schedules`), so `bnn_tf.callbacks.standard_callbacks`
adds it to every run: β(e) = β₀ · (β_E / β₀)^(e / (E − 1)), e = 0..E−1
(β₀ = 1, β_E = 100 by default: geometric; the paper raises β steadily during
training — its exact curve is *unverified* here).

LCE: the inference graph is a plain sign, so convs with this input quantizer
become `LceBconv2d` and their kernels ±1 constants.
"""

from __future__ import annotations

import larq as lq
import tensorflow as tf
from larq.quantizers import _BaseQuantizer

from bnn_tf import introspect
from bnn_tf.errors import ConfigError
from bnn_tf.methods._schedule import EpochSchedule

BETA_START = 1.0
BETA_END = 100.0


def beta_at(epoch: float, epochs: int, start: float = BETA_START, end: float = BETA_END) -> float:
    """β for `epoch` (0-based) of `epochs`: geometric from `start` to `end` (reached at the last)."""
    if epochs < 1:
        raise ConfigError(f"epochs must be ≥ 1 (got {epochs}).")
    if not 0 < start <= end:
        raise ConfigError(f"the β schedule needs 0 < start ≤ end (got {start}, {end}).")
    if epochs == 1:
        return end
    return start * (end / start) ** (epoch / (epochs - 1))


@tf.keras.utils.register_keras_serializable(package="bnn_tf", name="self_binarizing")
class SelfBinarizing(_BaseQuantizer):
    r"""`tanh(β·x)` in training, `sign(x)` at inference; β set per epoch by its schedule.

    Args:
        beta: initial β (the schedule overwrites it every epoch).
    """

    precision = 1

    def __init__(self, beta: float = BETA_START, **kwargs):
        super().__init__(**kwargs)
        # Schedule state, not model state: a plain variable the callback resets each epoch.
        self.beta = tf.Variable(float(beta), trainable=False, name="self_binarizing_beta")

    def call(self, inputs, training=None):
        if training is None:
            training = tf.keras.backend.learning_phase()
        if training:
            return super().call(tf.tanh(self.beta * inputs))
        return super().call(lq.math.sign(inputs))

    def get_config(self):
        return {**super().get_config(), "beta": float(self.beta.numpy())}


class SelfBinarizingSchedule(EpochSchedule):
    """Raise β of every `SelfBinarizing` quantizer at the start of each epoch."""

    def __init__(self, epochs: int, *, start: float = BETA_START, end: float = BETA_END):
        super().__init__()
        beta_at(0, epochs, start, end)  # validate now, not mid-training
        self.epochs, self.start, self.end = epochs, start, end
        self.history: list[float] = []

    def on_train_begin(self, logs=None):
        if not introspect.find(self.model, SelfBinarizing):
            raise ConfigError(
                "SelfBinarizingSchedule found no SelfBinarizing quantizer in the model. "
                "Fix: drop the callback, or build the model with self-binarizing quantizers."
            )

    def on_epoch_begin(self, epoch, logs=None):
        beta = beta_at(self.scheduled_epoch(epoch), self.epochs, self.start, self.end)
        for v in self.scheduled_variables(self.model):
            v.assign(beta)
        self.history.append(beta)

    @staticmethod
    def scheduled_variables(model: tf.keras.Model) -> list[tf.Variable]:
        return [q.beta for q in introspect.find(model, SelfBinarizing)]


# Without the schedule β stays at its start value and the network never becomes binary.
SelfBinarizing.declared_schedules = (SelfBinarizingSchedule,)
