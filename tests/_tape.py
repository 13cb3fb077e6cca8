"""Shared test helper: a quantizer's value and gradients for a given upstream gradient."""

from __future__ import annotations

import tensorflow as tf


def value_and_grads(fn, x, dy, extra=()):
    """(fn(x), [∂C/∂x, ∂C/∂e for e in extra]) with ∂C/∂fn(x) = dy, as numpy arrays."""
    x = tf.Variable(x)
    with tf.GradientTape() as tape:
        y = fn(x)
    grads = tape.gradient(y, [x, *extra], output_gradients=tf.constant(dy))
    return y.numpy(), [g.numpy() for g in grads]
