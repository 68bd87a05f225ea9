"""One progress bar per training stage: in place on a terminal, one summary line in a log.

:class:`StageProgress` is a Keras callback. On a terminal it redraws one line as training runs (epochs done, the key
metric, elapsed and remaining time); when the output is not a terminal (CI logs, ``| tee``, a file) it writes nothing
while training and one plain line when the stage ends, so a log holds one line per stage instead of one per epoch.

Example:

    from tfkd import progress, training
    history = training.train_supervised(student, x, y, epochs=3, validation_data=(x_test, y_test),
                                        callbacks=[progress.StageProgress("nokd_seed0", 3)])
    # on a terminal, e.g.: nokd_seed0 [#############.......] 2/3 epochs  val_accuracy 0.8125  00:01 elapsed, ~00:01 left
    # in a log, e.g.:      nokd_seed0: 3 epochs in 00:02, val_accuracy 0.8047 (best 0.8125 at epoch 2)
"""

from __future__ import annotations

import sys
import threading
import time

import keras

# The key metric shown: the first of these a stage logs (``metric=`` puts another first).
KEY_METRICS = ("val_accuracy", "accuracy", "val_loss", "loss")


def clock(seconds: float) -> str:
    """``mm:ss`` (``h:mm:ss`` from an hour on)."""
    seconds = max(0, int(round(seconds)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


class StageProgress(keras.callbacks.Callback):
    """A progress bar for one ``fit``: in place on a terminal, one summary line at the end otherwise.

    Args:
        label: the stage's name, shown first.
        epochs: the stage's total epochs (default: ``fit``'s ``epochs``). A resumed ``fit`` starts at its
            ``initial_epoch``; the bar counts from there and the remaining time is estimated from this session's
            epochs only.
        metric: the key metric to show (default: the first of :data:`KEY_METRICS` the stage logs). A metric
            with ``loss`` in its name is best when lowest, any other when highest.
        stream: where to write (default: ``sys.stdout`` at each write).
        interactive: redraw in place (``True``) or one line at the end (``False``); default: whether ``stream``
            is a terminal.
        min_interval: seconds between two redraws within an epoch, on a terminal.
        on_summary: called with the summary line instead of writing it, when the output is not a terminal (``tfkd
            run`` puts it on the stage's closing line).

    ``training.fit`` leaves out its own per-epoch line when a callback like this one is given
    (``shows_progress``).
    """

    shows_progress = True
    # The batch hook only counts steps and redraws a line; it needs no metric values, so no step waits for it.
    async_safe = True

    def __init__(self, label, epochs=None, *, metric=None, stream=None, interactive=None, width=20,
                 min_interval=0.5, on_summary=None):
        super().__init__()
        self.on_summary = on_summary
        self.label, self.total, self.metric = label, epochs, metric
        self._stream, self._interactive = stream, interactive
        self.width, self.min_interval = width, min_interval
        self._lock = threading.Lock()
        self._reset()

    def _reset(self):
        self.t0 = self.first = None
        self.done, self.step, self.steps = 0, 0, None
        self.values, self.last_draw, self._shown = [], 0.0, 0

    # -- output --------------------------------------------------------------------------------------------------
    @property
    def stream(self):
        return self._stream if self._stream is not None else sys.stdout

    @property
    def interactive(self) -> bool:
        if self._interactive is not None:
            return bool(self._interactive)
        isatty = getattr(self.stream, "isatty", None)
        try:
            return bool(isatty and isatty())
        except ValueError:  # a closed stream
            return False

    def _write(self, text):
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # a closed pipe must not end the training
            pass

    # -- Keras hooks ---------------------------------------------------------------------------------------------
    def on_train_begin(self, logs=None):
        self._reset()
        self.t0 = time.time()
        if self.total is None:
            self.total = (self.params or {}).get("epochs")
        self.steps = (self.params or {}).get("steps")

    def on_epoch_begin(self, epoch, logs=None):
        if self.first is None:
            self.first, self.done = epoch, epoch
        self.step = 0
        if self.interactive:
            self._draw(force=True)

    def on_train_batch_end(self, batch, logs=None):
        self.step = batch + 1
        if self.interactive:
            self._draw()

    def on_epoch_end(self, epoch, logs=None):
        self.done, self.step = epoch + 1, 0
        name = self._key(logs or {})
        if name is not None:
            self.metric = name
            self.values.append((epoch + 1, float(logs[name])))
        if self.interactive:
            self._draw(force=True)

    def on_train_end(self, logs=None):
        if self.interactive:
            self._draw(force=True)
            self._write("\n")
        elif self.on_summary is not None:
            self.on_summary(self.summary())
        else:
            self._write(self.summary() + "\n")

    # -- text ----------------------------------------------------------------------------------------------------
    def _key(self, logs):
        for name in ((self.metric,) if self.metric else ()) + KEY_METRICS:
            if name in logs:
                return name
        return None

    def best(self):
        """``(epoch, value)`` of the best key-metric value so far, or ``None``."""
        if not self.values:
            return None
        lower = "loss" in (self.metric or "")
        return (min if lower else max)(self.values, key=lambda ev: ev[1])

    def line(self) -> str:
        """The bar as drawn on a terminal."""
        total = self.total or max(self.done, 1)
        part = min(self.step / self.steps, 1.0) if self.steps and self.done < total else 0.0  # epoch under way
        filled = int(round(self.width * min((self.done + part) / total, 1.0)))
        elapsed = time.time() - (self.t0 or time.time())
        text = f"  {self.label} [{'#' * filled}{'.' * (self.width - filled)}] {self.done}/{total} epochs"
        if self.values:
            text += f"  {self.metric} {self.values[-1][1]:.4f}"
        text += f"  {clock(elapsed)} elapsed"
        ran = self.done - (self.first or 0) + part  # in this session: a resumed stage's earlier epochs took no time
        if self.done < total and ran >= 1:  # from one whole epoch on: the first steps also pay for tracing
            text += f", ~{clock(elapsed / ran * (total - self.done - part))} left"
        return text

    def summary(self) -> str:
        """The one line written at the end when the output is not a terminal."""
        elapsed = clock(time.time() - (self.t0 or time.time()))
        total = self.total or self.done
        first = self.first or 0
        ran = self.done - first
        span = f"{ran} epochs" if not first else f"epochs {first + 1}-{self.done} (resumed)"
        if self.done < total:
            span += f" of {total} (stopped early)"
        text = f"  {self.label}: {span} in {elapsed}"
        if self.values:
            text += f", {self.metric} {self.values[-1][1]:.4f}"
            best = self.best()
            if best is not None and best[0] != self.values[-1][0]:
                text += f" (best {best[1]:.4f} at epoch {best[0]})"
        return text

    def _draw(self, force=False):
        now = time.time()
        with self._lock:
            if not force and now - self.last_draw < self.min_interval:
                return
            self.last_draw = now
            text = self.line()
            pad = max(0, self._shown - len(text))
            self._shown = len(text)
            self._write("\r" + text + " " * pad)
