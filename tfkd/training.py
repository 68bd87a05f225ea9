"""One training loop for everything tfkd trains: ``keras.Model.fit`` made resumable and logged.

Recipes train teachers, baselines and distilled students through :func:`fit`, so a run killed at any point (even
``kill -9``) continues from its last finished epoch: weights and optimizer state are checkpointed atomically at
every epoch end, with the history so far. Per-epoch CSV and TensorBoard logs are written beside.

Example:

    from tfkd import training
    distiller = tfkd.Distiller(teacher, student, temperature=4.0, alpha=0.9)
    distiller.compile(optimizer="adam")
    history = training.fit(distiller, x, y, epochs=2, batch_size=128, checkpoint_dir="runs/a/ckpt/kd")
    # killed at epoch 6? the same call continues at epoch 6 with the same optimizer state.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import keras
import numpy as np

from tfkd import distribute, io, rng

_STATE = "state.json"
_WEIGHTS = "last.weights.h5"


class _EpochGuard(keras.callbacks.Callback):
    """Stops training after an epoch that ran no batch, logged a NaN/inf or left a NaN/inf weight.

    Such an epoch is never checkpointed (see :class:`EpochCheckpoint`).
    """

    # The batch hook only sets a flag, so Keras may run it off the main thread without waiting for each step.
    async_safe = True

    def __init__(self):
        super().__init__()
        self.ran, self.problem = False, None

    def on_epoch_begin(self, epoch, logs=None):
        self.ran = False

    def on_train_batch_end(self, batch, logs=None):
        self.ran = True  # only called after a step that had data

    def on_epoch_end(self, epoch, logs=None):
        if not self.ran:
            self.problem = ("empty", epoch, [])
        else:
            bad = sorted(k for k, v in (logs or {}).items() if not math.isfinite(float(v)))
            if not _weights_finite(self.model):  # a NaN input behind a ReLU: finite loss, poisoned gradient
                bad.append("the weights")
            if bad:
                self.problem = ("nonfinite", epoch, bad)
        if self.problem:
            self.model.stop_training = True


class EpochCheckpoint(keras.callbacks.Callback):
    """Saves weights + optimizer state and the history so far at each epoch end, atomically.

    An epoch that ``guard`` (an :class:`_EpochGuard` placed before this callback) found bad is not saved.
    """

    def __init__(self, directory, history=None, guard=None):
        super().__init__()
        self.directory = Path(directory)
        self.history = {k: list(v) for k, v in (history or {}).items()}
        self.guard = guard

    def on_epoch_end(self, epoch, logs=None):
        if self.guard is not None and self.guard.problem is not None:
            return  # the last good checkpoint stays as it is
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        # Every worker saves (a save may need collective ops); only the chief's copy lands in the directory.
        strategy = getattr(self.model, "distribute_strategy", None)
        with distribute.chief_path(self.directory / _WEIGHTS, strategy) as weights_path:
            io.require_space(weights_path, io.h5_bytes_estimate(self.model), "the epoch checkpoint")
            with io.atomic_path(weights_path) as tmp:
                self.model.save_weights(tmp)
            # The state file is written last: it only ever points at complete weights. It also holds the seed
            # generators' states (Dropout, augmentation, MixUp), which save_weights leaves out, so a resumed run
            # draws the very random numbers the uninterrupted one would have.
            io.write_json(weights_path.with_name(_STATE), {"epochs_done": epoch + 1, "history": self.history,
                                                           "seed_states": rng.seed_states(self.model)})


class _StageProgress(keras.callbacks.Callback):
    """One line per epoch with elapsed time, for runs where Keras's own progress bar is off."""

    def __init__(self, label, epochs):
        super().__init__()
        self.label, self.epochs, self.t0 = label, epochs, time.time()

    def on_epoch_end(self, epoch, logs=None):
        shown = ", ".join(f"{k}={v:.4f}" for k, v in (logs or {}).items() if "loss" in k or "acc" in k)
        print(f"  {self.label} epoch {epoch + 1}/{self.epochs}  {shown}  [{time.time() - self.t0:.0f}s]", flush=True)


def load_checkpoint(model, checkpoint_dir):
    """Restore weights and optimizer state from ``checkpoint_dir``; returns ``(epochs_done, history)``."""
    checkpoint_dir = Path(checkpoint_dir)
    state_path = checkpoint_dir / _STATE
    if not state_path.exists():
        return 0, {}
    fix = ("it is damaged (truncated, edited, or written by another model); delete the folder "
           f"{checkpoint_dir} to redo this training stage from its first epoch")
    try:
        state = io.read_json(state_path)
        epochs_done, history = int(state["epochs_done"]), state.get("history", {})
    except (ValueError, KeyError, TypeError, OSError) as err:
        raise ValueError(f"checkpoint state {state_path} is not readable ({type(err).__name__}: {err}): "
                         f"{fix}.") from None
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None and not optimizer.built:
        optimizer.build(model.trainable_variables)  # slots must exist before their saved values can load
    weights = checkpoint_dir / _WEIGHTS
    try:
        model.load_weights(weights)
    except Exception as err:  # h5py and Keras raise OSError, ValueError, KeyError... none names the file
        size = weights.stat().st_size if weights.exists() else 0
        raise ValueError(f"checkpoint {weights} ({size:,} bytes) could not be loaded ({type(err).__name__}: "
                         f"{' '.join(str(err).split())[:200]}): {fix}.") from None
    if "seed_states" in state:  # absent in checkpoints written before tfkd saved them
        try:
            rng.restore_seed_states(model, state["seed_states"])
        except (ValueError, TypeError) as err:
            raise ValueError(f"checkpoint state {state_path}: {err}; {fix}.") from None
    return epochs_done, history


def fit(model, x, y=None, *, epochs, batch_size=None, validation_data=None, sample_weight=None, shuffle=True,
        callbacks=(), checkpoint_dir=None, log_dir=None, label=None, verbose=0):
    """``model.fit`` that resumes from ``checkpoint_dir`` and logs to ``log_dir``; returns the full history dict.

    Args:
        model: a compiled ``keras.Model`` (a plain model or a :class:`tfkd.Distiller`).
        x, y, batch_size, validation_data, sample_weight, shuffle, callbacks, verbose: as in ``keras.Model.fit``.
        epochs: total epochs; epochs already checkpointed are not trained again.
        checkpoint_dir: where epoch checkpoints live; ``None`` trains without them.
        log_dir: per-epoch ``history.csv`` and TensorBoard event files.
        label: name shown in the one-line-per-epoch progress (used when ``verbose=0``).

    Under a strategy (``model`` created in ``strategy.scope()``), ``batch_size`` is the global batch, and with
    several workers only the chief writes checkpoints and logs (:mod:`tfkd.distribute`); every worker reads the
    checkpoint to resume, so ``checkpoint_dir`` must be a path all of them see.
    """
    if _num_examples(x) == 0:
        raise ValueError(f"{label or model.name}: x has 0 examples; there is nothing to train on. Check the data "
                         "(an empty split, a filter that kept nothing, --n-train) before calling fit.")
    done, history = (0, {})
    if checkpoint_dir is not None:
        done, history = load_checkpoint(model, checkpoint_dir)
        if done >= epochs:
            return history
        if done:
            print(f"  {label or model.name}: resuming at epoch {done + 1}/{epochs} from {checkpoint_dir}", flush=True)
    guard = _EpochGuard()
    cbs = [*callbacks, guard]
    if hasattr(x, rng.EPOCH_ATTR):  # its order and noise are those of the epoch, in a resumed run too
        cbs.insert(0, rng.epoch_callback(x))
    if log_dir is not None and distribute.is_chief(getattr(model, "distribute_strategy", None)):
        log_dir = Path(log_dir)
        log_dir.mkdir(parents=True, exist_ok=True)
        if done:
            _trim_csv(log_dir / "history.csv", done)
        cbs += [keras.callbacks.CSVLogger(str(log_dir / "history.csv"), append=done > 0),
                keras.callbacks.TensorBoard(str(log_dir / "tensorboard"), write_graph=False)]
    ckpt = EpochCheckpoint(checkpoint_dir, history, guard) if checkpoint_dir is not None else None
    if ckpt is not None:
        cbs.append(ckpt)
    if label is not None and not verbose and not any(getattr(c, "shows_progress", False) for c in callbacks):
        cbs.append(_StageProgress(label, epochs))  # a tfkd.progress.StageProgress given in callbacks replaces it
    import tensorflow as tf

    # a tf.data pipeline orders itself: Keras warns at every fit when it is also told to shuffle
    shuffle = shuffle and not isinstance(x, tf.data.Dataset)
    try:
        result = model.fit(x, y, epochs=epochs, initial_epoch=done, batch_size=batch_size, shuffle=shuffle,
                           validation_data=validation_data, sample_weight=sample_weight, callbacks=cbs,
                           verbose=verbose)
    except FloatingPointError as e:  # a Distiller's in-step NaN guard (NonFiniteLossError)
        if _weights_finite(model) or checkpoint_dir is None or not (Path(checkpoint_dir) / _STATE).exists():
            raise
        # A NaN gradient behind a finite loss (a ReLU swallows a NaN input) was applied before the loss showed it.
        good, _ = load_checkpoint(model, checkpoint_dir)
        raise type(e)(f"{e} The weights had already become NaN or infinite (a NaN gradient behind a finite loss), "
                      f"so the last good checkpoint (epoch {good}) in {checkpoint_dir} was restored.") from None
    if guard.problem is not None:
        _raise_bad_epoch(model, guard.problem, checkpoint_dir, label)
    if ckpt is not None:
        return ckpt.history
    return {k: list(v) for k, v in result.history.items()}


def _weights_finite(model) -> bool:
    return all(np.isfinite(keras.ops.convert_to_numpy(v)).all() for v in model.trainable_weights)


def _trim_csv(path, epochs_done):
    """Drop rows of epochs after the checkpoint (logged, then killed before the checkpoint), so none is doubled."""
    if not path.exists():
        return
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    kept = lines[:1] + [line for line in lines[1:] if line.split(",", 1)[0].strip().isdigit()
                        and int(line.split(",", 1)[0]) < epochs_done]
    if kept != lines:
        io.write_text(path, "".join(kept))


def _num_examples(x):
    """Examples in ``x`` (arrays, or a dict/list/tuple of them, or a finite ``tf.data`` dataset); None if unknown."""
    import tensorflow as tf

    if isinstance(x, tf.data.Dataset):
        cardinality = int(x.cardinality())
        return cardinality if cardinality >= 0 else None  # -1 infinite, -2 unknown
    leaves = [leaf for leaf in keras.tree.flatten(x) if hasattr(leaf, "shape") and len(leaf.shape)] \
        if x is not None else []
    return int(leaves[0].shape[0]) if leaves else None


def _raise_bad_epoch(model, problem, checkpoint_dir, label):
    """Put the last good checkpoint back into ``model`` and raise an error naming the epoch and what went wrong."""
    kind, epoch, keys = problem
    what = label or model.name
    if kind == "empty":
        raise ValueError(f"{what}: epoch {epoch + 1} ran no training batch: the dataset is empty (or exhausted). "
                         "Check the data before calling fit; nothing was checkpointed for that epoch.")
    from tfkd.distiller import NonFiniteLossError

    kept = "no checkpoint existed yet, so the model's weights are not finite either"
    if checkpoint_dir is not None and (Path(checkpoint_dir) / _STATE).exists():
        good, _ = load_checkpoint(model, checkpoint_dir)
        kept = f"the model was restored to the last good checkpoint (epoch {good}) in {checkpoint_dir}"
    raise NonFiniteLossError(
        f"{what}: {', '.join(keys)} became NaN or infinite in epoch {epoch + 1}; training stopped, that epoch was "
        f"not checkpointed and {kept}. Check the inputs for NaN/inf, or lower the learning rate.")


def cosine_adam(lr, *, epochs, examples, batch_size):
    """Adam whose learning rate falls from ``lr`` to 0 along a cosine over ``epochs`` epochs of ``examples`` in
    batches of ``batch_size`` (the last batch may be short): how a model one cares about is usually trained."""
    steps = int(epochs) * math.ceil(int(examples) / int(batch_size))
    return keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(lr, decay_steps=steps))


def _optimizer(lr, optimizer):
    if optimizer is not None:
        return optimizer
    return keras.optimizers.Adam(learning_rate=lr)


def train_supervised(model, x, y, *, epochs, batch_size=128, lr=1e-3, optimizer=None, validation_data=None,
                     callbacks=(), checkpoint_dir=None, log_dir=None, label=None, verbose=0, label_smoothing=0.0):
    """Train ``model`` (logits out) on labels alone with cross-entropy; resumable like :func:`fit`.

    ``label_smoothing > 0`` trains on smoothed one-hot targets (integer labels are converted here).

    Example:

        from tfkd import training
        history = training.train_supervised(student, x, y, epochs=1, checkpoint_dir="runs/a/ckpt/nokd")
    """
    if label_smoothing:
        import numpy as np

        num_classes = model.output_shape[-1]
        y = np.eye(num_classes, dtype="float32")[np.asarray(y).reshape(-1)]
        if validation_data is not None:
            validation_data = (validation_data[0],
                               np.eye(num_classes, dtype="float32")[np.asarray(validation_data[1]).reshape(-1)])
        loss = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=label_smoothing)
    else:
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer=_optimizer(lr, optimizer), loss=loss, metrics=["accuracy"])
    return fit(model, x, y, epochs=epochs, batch_size=batch_size, validation_data=validation_data,
               callbacks=callbacks, checkpoint_dir=checkpoint_dir, log_dir=log_dir, label=label, verbose=verbose)


def train_distilled(teacher, student, x, y=None, *, epochs, temperature=4.0, alpha=0.5, distill_loss="kl",
                    terms=None, hard_weight=None, batch_size=128, lr=1e-3, optimizer=None, validation_data=None,
                    callbacks=(), checkpoint_dir=None, log_dir=None, label=None, verbose=0, **distiller_kwargs):
    """Distil ``teacher`` into ``student`` with :class:`tfkd.Distiller`; resumable like :func:`fit`.

    ``x`` may be anything a Distiller batch accepts (arrays, two views, ``cache.inputs(x)``, a ``tf.data``
    dataset). ``teacher`` may be a model, a list of models (ensemble) or ``None`` with cached logits. ``terms``
    (with ``hard_weight``) replaces the ``temperature``/``alpha``/``distill_loss`` shorthand.
    Returns ``(distiller, history)``.
    """
    from tfkd.distiller import Distiller

    objective = dict(terms=terms, hard_weight=hard_weight) if terms is not None else dict(
        temperature=temperature, alpha=alpha, distill_loss=distill_loss)
    distiller = Distiller(teacher, student, **objective, **distiller_kwargs)
    distiller.compile(optimizer=_optimizer(lr, optimizer), metrics=["accuracy"])
    history = fit(distiller, x, y, epochs=epochs, batch_size=batch_size, validation_data=validation_data,
                  callbacks=callbacks, checkpoint_dir=checkpoint_dir, log_dir=log_dir, label=label, verbose=verbose)
    return distiller, history


def accuracy(model, x, y, batch_size=512) -> float:
    """Top-1 accuracy of a logits model on integer labels."""
    import numpy as np

    logits = model.predict(x, batch_size=batch_size, verbose=0)
    return float(np.mean(np.argmax(logits, -1) == np.asarray(y).reshape(-1)))
