"""Callbacks that show whether Bop is working: flip ratios and γ/τ/learning rates per epoch.

Both write into the epoch's `logs`, so `bnn_tf.training.fit`'s `history.json`
(and Keras' own History/TensorBoard) record them, as long as they run before
the history writer (`fit` puts user callbacks first).

larq's in-graph alternative is `larq.metrics.FlipRatio`, switched on per
quantizer by building the model inside `larq.context.metrics_scope(["flip_ratio"])`;
it must be chosen when the model is built. `FlipRatioLogger` works on any
built model, Bop- or Adam-trained, and compares the binarised kernels
(`sign(w)`), so it also counts the sign changes of latent weights under Adam.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from bnn_tf import introspect, optimizers


def _binary_kernels(model: tf.keras.Model) -> list[tuple[str, tf.Variable]]:
    # The latent variable holds what Bop flips; sign() of it is what the forward pass uses.
    return [
        (layer.name, getattr(kernel, "latent_variable", kernel))
        for layer, kernel in introspect.binary_kernels(model)
    ]


def _signs(kernels) -> list[np.ndarray]:
    return [np.asarray(v.numpy() >= 0) for _, v in kernels]


class FlipRatioLogger(tf.keras.callbacks.Callback):
    """Log how many binary weights flip.

    Adds to the epoch logs:
    - `flip_ratio`: mean fraction of binary weights whose sign changed in one
      optimizer step, measured on every `every_n_steps`-th step (larq's
      `FlipRatio` definition, averaged over all binary kernels by size);
    - `flip_ratio_epoch`: fraction whose sign differs between the start and
      the end of the epoch (net change; falls towards 0 as training settles);
    - with `per_layer=True`, `flip_ratio/<layer>` for each binary layer.

    With Bop, a `flip_ratio` of 0 means τ is too high (or γ too low); a ratio
    near 0.5 means the weights are random-walking (τ too low / γ too high).
    The Bop paper reports per-step ratios of roughly 1e-5 to 1e-3 late in training.

    Args:
        every_n_steps: measure one step in every N (each measurement copies the
            binary kernels to host memory twice).
        per_layer: also log a ratio per layer.
    """

    def __init__(self, every_n_steps: int = 10, per_layer: bool = False):
        super().__init__()
        if every_n_steps < 1:
            raise ValueError(f"every_n_steps must be ≥ 1 (got {every_n_steps}).")
        self.every_n_steps = every_n_steps
        self.per_layer = per_layer
        # The batch hooks never read `logs`; without this Keras copies the
        # step's metrics to host after EVERY step, stalling the pipeline
        # (bnn_small demo: 53 s per epoch before this, 48 s after, 46 s without the logger).
        self._supports_tf_logs = True
        self._kernels: list[tuple[str, tf.Variable]] = []
        self._before: list[np.ndarray] | None = None

    def on_train_begin(self, logs=None):
        self._kernels = _binary_kernels(self.model)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = _signs(self._kernels)
        self._flips = np.zeros(len(self._kernels))
        self._samples = 0

    def on_train_batch_begin(self, batch, logs=None):
        self._before = _signs(self._kernels) if batch % self.every_n_steps == 0 else None

    def on_train_batch_end(self, batch, logs=None):
        if self._before is None or not self._kernels:
            return
        after = _signs(self._kernels)
        self._flips += [np.mean(a != b) for a, b in zip(after, self._before, strict=True)]
        self._samples += 1
        self._before = None

    def on_epoch_end(self, epoch, logs=None):
        if logs is None or not self._kernels:
            return
        sizes = np.array([v.shape.num_elements() for _, v in self._kernels], dtype=float)
        if self._samples:
            per_layer = self._flips / self._samples
            logs["flip_ratio"] = float(np.sum(per_layer * sizes) / sizes.sum())
            if self.per_layer:
                for (name, _), r in zip(self._kernels, per_layer, strict=True):
                    logs[f"flip_ratio/{name}"] = float(r)
        net = [
            np.mean(a != b) for a, b in zip(_signs(self._kernels), self._epoch_start, strict=True)
        ]
        logs["flip_ratio_epoch"] = float(np.sum(np.array(net) * sizes) / sizes.sum())


class HyperparameterLogger(tf.keras.callbacks.Callback):
    """Log γ, τ (and σ) of Bop/Bop2ndOrder and the latent-weight learning rate each epoch.

    Values are the ones in effect at the end of the epoch (schedules evaluated
    at the optimizer's step count). Keys: `bop_gamma`, `bop_threshold`,
    `bop2_gamma`, `bop2_threshold`, `bop2_sigma`, `adam_learning_rate`
    (only those present in the optimizer).
    """

    HYPERS = {"bop": ("gamma", "threshold"), "bop2": ("gamma", "threshold", "sigma")}

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        logs.update(current_hyperparameters(self.model.optimizer))


def current_hyperparameters(optimizer) -> dict[str, float]:
    """`{"bop_gamma": ..., "adam_learning_rate": ...}` for the parts of `optimizer`."""
    values: dict[str, float] = {}
    for key, opt in optimizers.inner_optimizers(optimizer).items():
        names = HyperparameterLogger.HYPERS.get(key, ("learning_rate",))
        for name in names:
            value = optimizers.hyperparameter(opt, name)
            if value is not None:
                values[f"{key}_{name}"] = value
    return values


def standard_callbacks(
    model: tf.keras.Model, epochs: int, *, steps_per_epoch: int | None = None
) -> list[tf.keras.callbacks.Callback]:
    """What `bnn_tf.training` adds to every run of `model` for `epochs` epochs.

    Flip ratios and hyper-parameters always, plus every schedule the model's
    methods declare (`bnn_tf.introspect.declared_schedules`: ReCU's τ, IR-Net's
    EDE t and k, ...). Without them those variables stay at their initial
    values and the run silently trains without the method's schedule.
    """
    found: list[tf.keras.callbacks.Callback] = [FlipRatioLogger(), HyperparameterLogger()]
    for schedule in introspect.declared_schedules(model):
        found.append(schedule.for_run(epochs=epochs, steps_per_epoch=steps_per_epoch))
    return found
