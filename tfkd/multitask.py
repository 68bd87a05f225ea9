"""Multi-task learning with a shared trunk: one network, one head per task, trained on every task at once.

:func:`multi_head` builds one image-in model with a logits output per task: the first ``share_depth`` layer groups
of a chain model (see :mod:`tfkd.trunk`) are shared, the rest (at least the logits layer) is copied once per task.
:func:`task_union` puts the tasks' labelled images into one training set for ``fit``: each task is **cycled** to
the size of the largest (its images repeated, each the same number of times give or take one), every row
carries the label of its own task, and **sample weights** switch the other tasks' losses off on it (weight 0)
and give each task the same share of the loss (weight = rows / rows of that task). Each batch mixes the tasks at
random, about equally; BatchNormalization in the shared layers normalises over the mixed batch, in training and
(through its moving statistics) at test time alike. Layers after the shared ones see every row too, but learn
only from their own task's rows.

Example:

    from tfkd import multitask
    model = multitask.multi_head("plain_cnn:2", (8, 8, 1), {"digit": 10, "parity": 2}, seed=0)
    union = multitask.task_union({"digit": (x_train, y_train), "parity": (x_train[:64], y_train[:64] % 2)})
    history = multitask.train_multitask(model, union, epochs=1, batch_size=64)
    digit = multitask.task_model(model, "digit")   # image -> that task's logits, sharing the model's layers
    x_parity, y_parity, index = union.rows("parity")  # 256 rows: each of the 64 parity images 4 times
"""

from __future__ import annotations

import dataclasses

import numpy as np

__all__ = ["TaskUnion", "multi_head", "task_model", "task_seed", "task_union", "train_multitask"]


def task_seed(seed, task_index) -> int:
    """The build seed of task ``task_index``'s own layers: ``seed`` for the first task, a derived one after."""
    if task_index == 0:
        return int(seed)
    return int(np.random.SeedSequence([int(seed), int(task_index)]).generate_state(1)[0] % (2**31 - 1))


def _check_tasks(tasks, what):
    if not isinstance(tasks, dict) or not tasks:
        raise ValueError(f"{what}={tasks!r}: expected a non-empty dict keyed by task name.")
    bad = [t for t in tasks if not (isinstance(t, str) and t.isidentifier())]
    if bad:
        raise ValueError(f"{what}: task names {bad} must be identifiers (they name outputs and layers), e.g. "
                         "'digits' or 'fashion'.")


def multi_head(spec, input_shape, tasks: dict, *, share_depth=None, seed=0, name=None):
    """A model ``image -> {task: logits}``: ``spec``'s first ``share_depth`` layer groups shared, the rest per task.

    Args:
        spec: a chain model spec of :func:`tfkd.models.build` (``plain_cnn:4``, ``mlp:128-64``, ``mobile_cnn:1``).
        input_shape: one image's shape, the same for every task.
        tasks: ``{task name: number of classes}``, in output order.
        share_depth: layer groups shared (0 shares nothing; default: the whole trunk, so each task has only its
            own logits layer); at most :func:`tfkd.trunk.trunk_depth` of the spec's model.
        seed: the shared layers and the first task's layers are those of ``models.build(spec, seed=seed)``; task
            ``i``'s own layers come from a build with :func:`task_seed` ``(seed, i)``.

    Shared layers keep the spec's layer names (``conv1``); a task's own layers are prefixed (``fashion_logits``).
    """
    import keras

    from tfkd import models, trunk

    _check_tasks(tasks, "tasks")
    builds = [models.build(spec, input_shape, int(n), seed=task_seed(seed, i)) for i, n in enumerate(tasks.values())]
    depth = trunk.check_depth(builds[0], share_depth, "share_depth")
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    shared = inputs
    for group in trunk.layer_groups(builds[0])[:depth]:
        for layer in group:
            shared = layer(shared)
    outputs, copies = {}, []
    for task, build in zip(tasks, builds):
        x = shared
        for group in trunk.layer_groups(build)[depth:]:
            for layer in group:
                own = type(layer).from_config({**layer.get_config(), "name": f"{task}_{layer.name}"})
                x = own(x)
                copies.append((layer, own))
        outputs[task] = x
    for layer, own in copies:  # the same start as the per-task build (seeded initializers give it anyway)
        own.set_weights(layer.get_weights())
    return keras.Model(inputs, outputs, name=name or f"multitask_{'_'.join(tasks)}_shared{depth}")


def task_model(model, task, name=None):
    """``image -> logits`` of one task of a :func:`multi_head` model, sharing its layers (and weights)."""
    import keras

    names = list(model.output.keys()) if isinstance(model.output, dict) else []
    if task not in names:
        raise ValueError(f"task={task!r}: model {model.name!r} has outputs {names}; expected one of them.")
    return keras.Model(model.inputs, model.output[task], name=name or f"{model.name}_{task}")


@dataclasses.dataclass(frozen=True, eq=False)
class TaskUnion:
    """Every task's labelled images in one training set (see the module docstring); built by :func:`task_union`.

    ``x`` holds the rows, ``y`` and ``sample_weight`` one array per task (label and weight of every row for that
    task's head), ``task`` the task number of each row and ``index`` its row in that task's own arrays.
    """

    x: np.ndarray
    y: dict
    sample_weight: dict
    task: np.ndarray
    index: np.ndarray
    names: tuple

    def rows(self, task):
        """``(x, y, index)`` of one task's rows, in union order: what its head learns from, repeats included."""
        if task not in self.names:
            raise ValueError(f"task={task!r}: this union holds the tasks {list(self.names)}.")
        mask = self.task == self.names.index(task)
        return self.x[mask], self.y[task][mask], self.index[mask]

    def __len__(self):
        return len(self.x)


def task_union(tasks: dict, *, length=None, seed=0) -> TaskUnion:
    """One training set from ``{task: (x, y)}``: each task cycled to ``length`` rows (default: the largest task).

    A task of ``n`` images fills its ``length`` rows with whole random permutations of its images, the last one cut
    short, so each image appears ``length // n`` or ``length // n + 1`` times; the largest task (at the default
    ``length``) appears exactly once each. Fixed by ``seed``.
    """
    _check_tasks(tasks, "tasks")
    names = tuple(tasks)
    sizes = {t: len(xy[0]) for t, xy in tasks.items()}
    for t, (x, y) in tasks.items():
        if len(x) == 0 or len(x) != len(y):
            raise ValueError(f"task {t!r} has {len(x)} images and {len(y)} labels; expected the same number, > 0.")
    length = max(sizes.values()) if length is None else int(length)
    if length < 1:
        raise ValueError(f"length={length}: expected a positive number of rows per task.")
    rng = np.random.default_rng(seed)
    xs, index, task = [], [], []
    for i, (t, (x, _)) in enumerate(tasks.items()):
        n = sizes[t]
        idx = np.concatenate([rng.permutation(n) for _ in range(-(-length // n))])[:length]
        xs.append(np.asarray(x)[idx])
        index.append(idx)
        task.append(np.full(length, i))
    task, index = np.concatenate(task), np.concatenate(index)
    y, weight = {}, {}
    for i, (t, (_, labels)) in enumerate(tasks.items()):
        own = task == i
        y[t] = np.zeros(len(task), "int32")
        y[t][own] = np.asarray(labels)[index[own]]
        weight[t] = np.where(own, len(task) / own.sum(), 0.0).astype("float32")
    return TaskUnion(np.concatenate(xs), y, weight, task, index, names)


def train_multitask(model, union: TaskUnion, *, epochs, batch_size=128, lr=1e-3, optimizer=None,
                    validation_data: TaskUnion | None = None, callbacks=(), checkpoint_dir=None, log_dir=None,
                    label=None, verbose=0):
    """Train a :func:`multi_head` model on a :class:`TaskUnion` with ``fit``; resumable like :func:`tfkd.training.fit`.

    Each head's loss is cross-entropy on its own task's rows (sample weights), the losses summed; Keras logs
    ``<task>_loss`` and ``<task>_accuracy`` (and ``val_`` ones with ``validation_data``, another union).
    """
    import keras

    from tfkd import training

    missing = [t for t in union.names if t not in (model.output.keys() if isinstance(model.output, dict) else ())]
    if missing:
        raise ValueError(f"union: tasks {missing} have no output in model {model.name!r}; build it with "
                         f"multi_head(..., tasks={{{', '.join(repr(t) + ': classes' for t in union.names)}}}).")
    loss = {t: keras.losses.SparseCategoricalCrossentropy(from_logits=True) for t in union.names}
    # weighted_metrics: Keras applies sample weights to these only, so each head's accuracy counts its own rows.
    model.compile(optimizer=optimizer or keras.optimizers.Adam(learning_rate=lr), loss=loss,
                  weighted_metrics={t: ["accuracy"] for t in union.names})
    val = None if validation_data is None else (validation_data.x, validation_data.y, validation_data.sample_weight)
    return training.fit(model, union.x, union.y, sample_weight=union.sample_weight, epochs=epochs,
                        batch_size=batch_size, validation_data=val, callbacks=callbacks, checkpoint_dir=checkpoint_dir,
                        log_dir=log_dir, label=label, verbose=verbose)
