"""The base of the per-epoch schedules that method modules declare (IR-Net, ReCU, Self-Binarizing)."""

from __future__ import annotations

from typing import TypeVar

import tensorflow as tf

S = TypeVar("S", bound="EpochSchedule")


class EpochSchedule(tf.keras.callbacks.Callback):
    """A callback that sets a method's variables every epoch of a run of `epochs` epochs.

    Subclasses take `epochs` as their first argument. `for_run` is how training
    builds a schedule that a layer or quantizer declares. They read the epoch
    through `scheduled_epoch`, so a time-budgeted run that re-plans its length
    (`bnn_tf.budget.Stretch`, set as `epoch_clock`) ends them with the new plan.
    """

    # None, or a callable mapping the run's epoch to the (fractional) epoch of the
    # schedule as built for `epochs`.
    epoch_clock = None

    def scheduled_epoch(self, epoch: int) -> float:
        return epoch if self.epoch_clock is None else self.epoch_clock(epoch)

    @classmethod
    def from_config(cls, config: dict):
        # Keras' Callback has no from_config; this makes the schedule deserialisable.
        return cls(**config)

    @classmethod
    def for_run(cls: type[S], *, epochs: int, steps_per_epoch: int | None = None) -> S:
        """The schedule for a run of `epochs` epochs."""
        return cls(epochs)
