"""Knowledge distillation: a float teacher's logits and attention maps train a binary student.

- `kd_loss`: logit distillation (Hinton et al. 2015),
  `L_KD = T²·KL(softmax(t/T) ‖ softmax(s/T))`; the `Distiller` trains on
  `(1 − α)·CE(y, s) + α·L_KD`.
- `attention_map` and `matching_layers`: attention transfer (Zagoruyko &
  Komodakis 2017; used by Real-to-Binary, Martinez et al. ICLR 2020) at the
  last layer of each spatial resolution shared by teacher and student:
  `β·Σ_l mean((q_s − q_t)²)`, `q = a/‖a‖₂`, `a = mean_c(x²)` flattened.
- `Distiller`: a `tf.keras.Model` wrapping student and frozen teacher, so
  `compile`/`fit` (and `bnn_tf.training.fit`'s resume) work unchanged.

`bnn_tf.recipes` uses these for the `two_stage_kd*` recipes; they work on any
pair of Keras models with the same input.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import tensorflow as tf


def attention_map(x: tf.Tensor) -> tf.Tensor:
    """`a = mean_c(x²)` flattened and L2-normalised per sample (Zagoruyko & Komodakis)."""
    a = tf.reshape(tf.reduce_mean(tf.square(x), axis=-1), (tf.shape(x)[0], -1))
    return tf.math.l2_normalize(a, axis=1)


def kd_loss(student_logits: tf.Tensor, teacher_logits: tf.Tensor, temperature: float) -> tf.Tensor:
    """`T² · KL(softmax(t/T) ‖ softmax(s/T))`, mean over the batch."""
    t = tf.nn.softmax(teacher_logits / temperature)
    log_s = tf.nn.log_softmax(student_logits / temperature)
    log_t = tf.nn.log_softmax(teacher_logits / temperature)
    return temperature**2 * tf.reduce_mean(tf.reduce_sum(t * (log_t - log_s), axis=-1))


def matching_layers(student: tf.keras.Model, teacher: tf.keras.Model) -> list[str]:
    """Last BatchNormalization of each spatial size present by name in both models."""
    names: dict[tuple, str] = {}
    teacher_names = {layer.name for layer in teacher.layers}
    for layer in student.layers:
        shape = layer.output.shape
        if (
            isinstance(layer, tf.keras.layers.BatchNormalization)
            and layer.name in teacher_names
            and len(shape) == 4
            and teacher.get_layer(layer.name).output.shape[1:3] == shape[1:3]
        ):
            names[tuple(shape[1:3])] = layer.name
    return list(names.values())


class Distiller(tf.keras.Model):
    """Train `student` against labels and a frozen `teacher` (logit KD + optional attention).

    Only the student's variables are trained; `predict`/`evaluate` run the
    student. Save `distiller.student`, not the distiller: a Distiller is a
    training-time wrapper and is deliberately not registered with Keras, so
    saving one cannot produce a file that looks loadable but is not.
    """

    def __init__(
        self,
        student: tf.keras.Model,
        teacher: tf.keras.Model,
        *,
        temperature: float = 4.0,
        alpha: float = 0.9,
        attention_layers: Sequence[str] = (),
        attention_weight: float = 1e3,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.student, self.teacher = student, teacher
        self.teacher.trainable = False
        self.temperature, self.alpha = temperature, alpha
        self.attention_layers, self.attention_weight = tuple(attention_layers), attention_weight
        self._s = tf.keras.Model(
            student.inputs,
            [student.output, *(student.get_layer(n).output for n in attention_layers)],
        )
        self._t = tf.keras.Model(
            teacher.inputs,
            [teacher.output, *(teacher.get_layer(n).output for n in attention_layers)],
        )
        self.kd_tracker = tf.keras.metrics.Mean("kd_loss")
        self.at_tracker = tf.keras.metrics.Mean("at_loss")

    def call(self, x, training=False):
        return self.student(x, training=training)

    @property
    def metrics(self):
        return [*super().metrics, self.kd_tracker, self.at_tracker]

    def train_step(self, batch):
        x, y = batch[:2]
        t_out = self._t(x, training=False)
        t_out = t_out if isinstance(t_out, list) else [t_out]
        with tf.GradientTape() as tape:
            s_out = self._s(x, training=True)
            s_out = s_out if isinstance(s_out, list) else [s_out]
            ce = self.compiled_loss(y, s_out[0], regularization_losses=self.student.losses)
            kd = kd_loss(s_out[0], t_out[0], self.temperature)
            at = tf.add_n(
                [tf.constant(0.0)]
                + [
                    tf.reduce_mean(tf.square(attention_map(s) - attention_map(t)))
                    for s, t in zip(s_out[1:], t_out[1:], strict=True)
                ]
            )
            loss = (1 - self.alpha) * ce + self.alpha * kd + self.attention_weight * at
        variables = self.student.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
        self.compiled_metrics.update_state(y, s_out[0])
        self.kd_tracker.update_state(kd)
        self.at_tracker.update_state(at)
        return {m.name: m.result() for m in self.metrics}

    def get_config(self) -> dict:
        raise NotImplementedError(
            "A Distiller is not saved: save `distiller.student` (the trained model) instead."
        )


__all__ = ["Distiller", "attention_map", "kd_loss", "matching_layers"]
