"""Every schedule a zoo model's methods declare is run by `standard_callbacks` and moves.

`bnn_tf.introspect.declared_schedules(model)` lists the schedule callbacks the
model's layers and quantizers declare (ReCU's τ, IR-Net's EDE t and k,
EBConv's expert expansion);
`bnn_tf.callbacks.standard_callbacks` adds them to every run. Here each zoo
model is built, and each declared schedule's `scheduled_variables` are read at
the start of epochs 1 and 2 of a 2-epoch run: a schedule that is declared but
not applied, or applied but constant, fails.

Small models (28×28) fit 2 epochs on 64 real Fashion-MNIST images. Models
tagged "large" (ImageNet-size; `-m slow`) are built at 64×64×3 (same layers, cheaper) and
only the callbacks' `on_epoch_begin` runs at epochs 0 and 1 (no fit).
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from bnn_tf import callbacks, introspect
from bnn_tf import models as zoo

EPOCHS = 2
LARGE_INPUT = (64, 64, 3)


# ImageNet-size models take 10–20 s each to build on 2 cores; their specs and
# schedules are the same objects as their small siblings' (covered in the default
# run), so they run with `-m slow`.
PARAMS = [
    pytest.param(name, marks=[pytest.mark.slow] if "large" in zoo.info(name).tags else [])
    for name in zoo.available()
]


def _build(name: str) -> tuple[tf.keras.Model, bool]:
    info = zoo.info(name)
    if "large" in info.tags:
        size = max(LARGE_INPUT[0], info.accepts["min_size"])  # XNOR-Net's fc6 needs 217 px
        return zoo.build(name, input_shape=(size, size, 3), num_classes=10), True
    return zoo.build(name), False


def _values(schedule, model) -> list[np.ndarray]:
    return [np.array(v.numpy()) for v in schedule.scheduled_variables(model)]


class _Probe(tf.keras.callbacks.Callback):
    """Reads the scheduled variables at each epoch start, after the schedules set them."""

    def __init__(self, schedules):
        super().__init__()
        self.schedules = schedules
        self.seen: list[dict[str, list[np.ndarray]]] = []

    def on_epoch_begin(self, epoch, logs=None):
        self.seen.append({s.__name__: _values(s, self.model) for s in self.schedules})


@pytest.mark.parametrize("name", PARAMS)
def test_declared_schedules_run_and_move(name, fmnist_small):
    tf.keras.utils.set_random_seed(0)
    model, large = _build(name)
    declared = introspect.declared_schedules(model)
    found = callbacks.standard_callbacks(model, EPOCHS, steps_per_epoch=2)
    # Loggers first, then exactly one callback per declared schedule.
    assert [type(c) for c in found[2:]] == declared
    for schedule in declared:
        assert schedule.scheduled_variables(model), f"{schedule.__name__} drives no variable"
    if not declared:
        return
    probe = _Probe(declared)
    if large:
        for cb in [*found, probe]:
            cb.set_model(model)
        for epoch in range(EPOCHS):
            for cb in [*found, probe]:
                cb.on_epoch_begin(epoch)
    else:
        model.compile(
            optimizer=tf.keras.optimizers.legacy.Adam(1e-3),
            loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        x = fmnist_small["x_train"][:64]
        y = fmnist_small["y_train"][:64]
        model.fit(x, y, batch_size=32, epochs=EPOCHS, verbose=0, callbacks=[*found, probe])
    assert len(probe.seen) == EPOCHS
    for schedule in declared:
        first, second = probe.seen[0][schedule.__name__], probe.seen[1][schedule.__name__]
        moved = [not np.allclose(a, b) for a, b in zip(first, second, strict=True)]
        assert all(moved), (
            f"{name}: {schedule.__name__} left {moved.count(False)} variables unchanged"
        )


def test_the_zoo_declares_the_schedules_its_methods_need():
    """IR-Net models declare EDE, ReCU models τ, EBNets the expansion; BinaryNet nothing."""
    expect = {
        "irnet_small": ["EdeSchedule"],
        "recu_resnet20": ["TauScheduler"],
        "ebnet_small": ["ExpertExpansion"],
        "bnn_small": [],
    }
    for name, schedules in expect.items():
        model = zoo.build(name)
        assert [s.__name__ for s in introspect.declared_schedules(model)] == schedules
