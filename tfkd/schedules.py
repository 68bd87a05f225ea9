"""``alpha`` and ``temperature`` schedules as Keras callbacks.

The Distiller holds ``alpha`` and ``temperature`` in non-trainable variables that its compiled step reads, so a
schedule assigns a new value at the start of an epoch and nothing is retraced.

Example (lower the soft weight over the last third of training):

    sched = tfkd.AlphaSchedule(tfkd.schedules.linear_decay(start=0.9, end=0.1, begin_epoch=1, end_epoch=2))
    distiller = tfkd.Distiller(teacher, student, temperature=4.0, alpha=0.9)
    distiller.compile(optimizer="adam")
    history = distiller.fit(x, y, epochs=3, callbacks=[sched], verbose=0)
    history.history["alpha"]   # [0.9, 0.9, 0.1]: epochs are 0-based, the last third at alpha 0.1
"""

from __future__ import annotations

from typing import Callable

import keras


def constant(value: float) -> Callable[[int], float]:
    """``epoch -> value``."""
    return lambda epoch: float(value)


def linear_decay(start: float, end: float, begin_epoch: int, end_epoch: int) -> Callable[[int], float]:
    """``start`` until ``begin_epoch``, then linear to ``end`` at ``end_epoch``, ``end`` after (0-based epochs)."""
    if end_epoch <= begin_epoch:
        raise ValueError(f"end_epoch={end_epoch} must be greater than begin_epoch={begin_epoch}.")

    def fn(epoch: int) -> float:
        if epoch <= begin_epoch:
            return float(start)
        if epoch >= end_epoch:
            return float(end)
        frac = (epoch - begin_epoch) / (end_epoch - begin_epoch)
        return float(start + frac * (end - start))

    return fn


def step(values: dict[int, float]) -> Callable[[int], float]:
    """Piecewise constant: ``{0: 0.9, 20: 0.5}`` means 0.9 from epoch 0, 0.5 from epoch 20."""
    if not values or 0 not in values:
        raise ValueError(f"values={values!r} must map epoch 0 (and any later epochs) to a value.")
    points = sorted(values.items())

    def fn(epoch: int) -> float:
        current = points[0][1]
        for start, value in points:
            if epoch >= start:
                current = value
        return float(current)

    return fn


class _VariableSchedule(keras.callbacks.Callback):
    attribute = ""

    def __init__(self, schedule: Callable[[int], float], verbose: int = 0):
        super().__init__()
        if not callable(schedule):
            raise TypeError(f"schedule={schedule!r} must be a callable epoch -> value (see tfkd.schedules).")
        self.schedule = schedule
        self.verbose = verbose

    def on_epoch_begin(self, epoch, logs=None):
        value = self.schedule(epoch)
        setattr(self.model, self.attribute, value)  # the Distiller validates and assigns its variable
        if self.verbose:
            print(f"\nEpoch {epoch + 1}: {self.attribute} = {value:.4g}")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs[self.attribute] = float(getattr(self.model, self.attribute))


class AlphaSchedule(_VariableSchedule):
    """Sets ``Distiller.alpha`` (weight of the single term; ``hard_weight = 1 - alpha``) at each epoch start.

    For a Distiller of several terms, schedule each weight with :class:`TermSchedule`.
    """

    attribute = "alpha"


class TemperatureSchedule(_VariableSchedule):
    """Sets ``Distiller.temperature`` (every term that has one) from ``schedule(epoch)`` at each epoch start."""

    attribute = "temperature"


class TermSchedule(keras.callbacks.Callback):
    """Sets an attribute (``"weight"`` or ``"temperature"``) of the Distiller term called ``term`` each epoch.

    Example (DIST's weight from 2 down to 0.5 over 30 epochs):

        tfkd.schedules.TermSchedule("dist", "weight", tfkd.schedules.linear_decay(2.0, 0.5, 0, 30))
    """

    def __init__(self, term: str, attribute: str, schedule: Callable[[int], float], verbose: int = 0):
        super().__init__()
        if attribute not in ("weight", "temperature"):
            raise ValueError(f"attribute={attribute!r} is not schedulable; expected 'weight' or 'temperature'.")
        if not callable(schedule):
            raise TypeError(f"schedule={schedule!r} must be a callable epoch -> value (see tfkd.schedules).")
        self.term, self.attribute, self.schedule, self.verbose = term, attribute, schedule, verbose

    def _target(self):
        term = self.model.get_term(self.term)
        if self.attribute == "temperature" and not term.has_temperature:
            raise ValueError(f"term {self.term!r} ({type(term).__name__}) has no temperature.")
        return term

    def on_epoch_begin(self, epoch, logs=None):
        value = self.schedule(epoch)
        setattr(self._target(), self.attribute, value)
        if self.verbose:
            print(f"\nEpoch {epoch + 1}: {self.term}.{self.attribute} = {value:.4g}")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs[f"{self.term}_{self.attribute}"] = float(getattr(self._target(), self.attribute))


def dann_ramp(epochs: int) -> Callable[[int], float]:
    """Ganin et al. (2016): ``2 / (1 + exp(-10 p)) - 1`` with ``p`` the training progress in [0, 1]."""
    import math

    return lambda epoch: 2.0 / (1.0 + math.exp(-10.0 * epoch / max(epochs - 1, 1))) - 1.0


class VariableSchedule(keras.callbacks.Callback):
    """Assigns ``schedule(epoch)`` to any scalar variable at each epoch start (e.g. ``GradientReversal.weight``)."""

    def __init__(self, variable, schedule: Callable[[int], float]):
        super().__init__()
        self.variable, self.schedule = variable, schedule

    def on_epoch_begin(self, epoch, logs=None):
        self.variable.assign(self.schedule(epoch))
