"""Scale-out on ``tf.distribute``: a strategy from a name, global batch sizes, and writes by the chief only.

tfkd adds no training loop of its own for several devices: a :class:`tfkd.Distiller` (or any Keras model) created
inside ``strategy.scope()`` is trained by ``fit`` on every replica, with gradients all-reduced by the strategy and
``fit``'s ``batch_size`` meaning the **global** batch (split evenly over the replicas).

- ``"none"``: TensorFlow's default strategy (one device; ``scope()`` changes nothing).
- ``"mirrored"``: :class:`tf.distribute.MirroredStrategy`, every local GPU of one host (or its CPU).
- ``"multiworker"``: :class:`tf.distribute.MultiWorkerMirroredStrategy`, several hosts described by ``TF_CONFIG``.
  It must be created before any other TensorFlow op runs in the process.

Under several workers every process runs the same program. Saving may need collective ops (values of
synchronised variables are read across workers), so **every worker saves**; the chief writes to the real path and
the others to a private temporary one that is deleted at once (the pattern Keras documents for
``MultiWorkerMirroredStrategy``): :func:`chief_path` and :func:`worker_dir`.

Example:

    import keras, tfkd
    from tfkd import distribute, models
    strategy = distribute.get_strategy("mirrored")
    with strategy.scope():              # models too: their variables must be made (built or loaded) in the scope
        teacher = models.plain_cnn(4, (8, 8, 1), 10, seed=0)
        student = models.plain_cnn(2, (8, 8, 1), 10, seed=1)
        distiller = tfkd.Distiller(teacher, student)
        distiller.compile(optimizer=keras.optimizers.Adam(distribute.scaled_learning_rate(1e-3, 256, 64)))
    distiller.fit(x, y, batch_size=distribute.global_batch_size(64, strategy), epochs=1)
    with distribute.chief_path("student.keras", strategy) as path:
        student.save(path)              # the file exists once, written by the chief
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path

STRATEGIES = ("none", "mirrored", "multiworker")

_created = {}  # (name, devices) -> strategy: a MultiWorkerMirroredStrategy can be made once per process


def get_strategy(name="none", *, devices=None):
    """The ``tf.distribute.Strategy`` called ``name`` (``"none"``, ``"mirrored"`` or ``"multiworker"``).

    ``devices`` (mirrored only) lists the devices to mirror over, e.g. ``["/gpu:0", "/gpu:1"]``; by default every
    local GPU, or if there is none every logical CPU device (one, unless ``tf.config.set_logical_device_configuration``
    split the CPU). ``"multiworker"`` reads the cluster from ``TF_CONFIG`` (checked here: JSON with ``cluster`` and
    ``task``); without ``TF_CONFIG`` it runs as a single worker. A process keeps one strategy per name, so asking
    twice returns the same object.

    Example:

        from tfkd.distribute import get_strategy
        strategy = get_strategy("mirrored")
        print(strategy.num_replicas_in_sync)   # the local GPUs, or 1 (the CPU) without one
    """
    if name not in STRATEGIES:
        raise ValueError(f"strategy={name!r} is not supported; expected one of {', '.join(STRATEGIES)} "
                         "(--strategy none|mirrored|multiworker).")
    if devices is not None and name != "mirrored":
        raise ValueError(f"devices={devices!r} is only meaningful with strategy='mirrored', not {name!r}.")
    key = (name, tuple(devices) if devices else None)
    if key in _created:
        return _created[key]
    import tensorflow as tf

    if name == "none":
        strategy = tf.distribute.get_strategy()
    elif name == "mirrored":
        if devices is None and not tf.config.list_logical_devices("GPU"):
            # TensorFlow would mirror over one CPU; several *configured* logical CPUs are meant to be used.
            cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
            devices = cpus if len(cpus) > 1 else None
        strategy = tf.distribute.MirroredStrategy(devices=list(devices) if devices else None)
    else:
        config = tf_config()
        if config is None:
            warnings.warn("strategy='multiworker' without TF_CONFIG: running as a single worker. Set TF_CONFIG on "
                          "every host (see the README, 'Several GPUs and hosts').", stacklevel=2)
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        _patch_keras_for_multi_worker()
    _created[key] = strategy
    return strategy


def _patch_keras_for_multi_worker():
    """Work around two Keras 3 bugs that make ``fit`` fail under ``MultiWorkerMirroredStrategy``.

    keras-team/keras#20585 (open, seen on keras 3.15.1 / TF 2.21): ``fit`` (1) reduces a distributed batch with
    ``strategy.reduce`` only to learn its shapes, which fails on multi-worker ``PerReplica`` values, and (2) averages
    per-replica step results with ``axis=0``, which fails for scalar losses and metrics. The replacements take this
    worker's first replica's share for (1) and average over replicas element-wise (``axis=None``) for (2); every
    other strategy goes through Keras's own code unchanged. Applied once, only when a multi-worker strategy is made.
    """
    import tensorflow as tf

    try:
        from keras.src import tree
        from keras.src.backend.tensorflow import trainer as tf_trainer
    except ImportError:  # a Keras whose layout moved: nothing known to patch
        return
    cls = tf_trainer.TensorFlowTrainer
    if getattr(cls, "_tfkd_multi_worker_patch", False) or not hasattr(tf_trainer, "reduce_per_replica"):
        return
    keras_build, keras_reduce = cls._maybe_symbolic_build, tf_trainer.reduce_per_replica

    def local_share(value, strategy):
        if isinstance(value, tf.distribute.DistributedValues):
            return strategy.experimental_local_results(value)[0]
        return value

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        strategy = self._distribute_strategy
        if iterator is None or not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
            return keras_build(self, iterator=iterator, data_batch=data_batch)
        for _, _, it in iterator:  # one batch, for its structure, shapes and dtypes only
            data_batch = tree.map_structure(lambda v: local_share(v, strategy), next(it))
            break
        with strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    def reduce_per_replica(values, strategy, reduction):
        if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and reduction in ("auto", "mean"):
            return tree.map_structure(lambda v: strategy.reduce("MEAN", v, axis=None), values)
        return keras_reduce(values, strategy, reduction)

    cls._maybe_symbolic_build = _maybe_symbolic_build
    tf_trainer.reduce_per_replica = reduce_per_replica
    cls._tfkd_multi_worker_patch = True


def tf_config(environ=None):
    """The parsed ``TF_CONFIG`` (``{"cluster": ..., "task": {"type", "index"}}``), or None when it is unset.

    A malformed value is an error naming what is wrong, rather than a hang when the workers try to meet.
    """
    raw = (os.environ if environ is None else environ).get("TF_CONFIG")
    if not raw:
        return None
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as e:
        raise ValueError(f"TF_CONFIG={raw!r} is not valid JSON ({e}); expected e.g. "
                         '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
                         '"task": {"type": "worker", "index": 0}}.') from None
    task = config.get("task") if isinstance(config, dict) else None
    cluster = config.get("cluster") if isinstance(config, dict) else None
    if not isinstance(cluster, dict) or not isinstance(task, dict) or "type" not in task or "index" not in task:
        raise ValueError(f"TF_CONFIG={raw!r} needs a 'cluster' mapping of job names to address lists and a 'task' "
                         "with 'type' and 'index' (this process's place in the cluster).")
    members = cluster.get(task["type"])
    if not isinstance(members, list) or not 0 <= int(task["index"]) < len(members):
        raise ValueError(f"TF_CONFIG task {task} is not in its cluster {cluster}: task.type must be a job of the "
                         "cluster and task.index an index into its address list.")
    return config


def task(strategy=None):
    """``(task_type, task_id)`` of this process: from the strategy's cluster resolver, else ``TF_CONFIG``.

    ``(None, None)`` outside a cluster (one process).
    """
    resolver = getattr(strategy, "cluster_resolver", None) if strategy is not None else None
    if resolver is not None and getattr(resolver, "task_type", None):
        return resolver.task_type, int(resolver.task_id)
    config = tf_config()
    if config is None:
        return None, None
    return config["task"]["type"], int(config["task"]["index"])


def is_chief(strategy=None) -> bool:
    """True for the process that writes checkpoints, models and reports.

    That is the ``chief`` task if the cluster has one, else worker 0; a single process is always the chief. Under
    a strategy that is not multi-worker each process trains alone, so it is its own chief; with ``strategy=None``
    the answer comes from ``TF_CONFIG`` (usable before the strategy exists).
    """
    if strategy is not None and not is_multi_worker(strategy):
        return True
    task_type, task_id = task(strategy)
    if task_type is None or task_type == "chief":
        return True
    config = tf_config()
    has_chief = bool(config and config["cluster"].get("chief"))
    return task_type == "worker" and task_id == 0 and not has_chief


def is_multi_worker(strategy) -> bool:
    """True if ``strategy`` spans several processes (a ``MultiWorkerMirroredStrategy``)."""
    import tensorflow as tf

    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def num_workers() -> int:
    """How many processes train together (1 unless ``TF_CONFIG`` lists several workers)."""
    config = tf_config()
    if config is None:
        return 1
    return sum(len(config["cluster"].get(job, [])) for job in ("chief", "worker"))


def replicas(strategy=None) -> int:
    """Replicas in sync: devices per worker times workers (1 for the default strategy)."""
    import tensorflow as tf

    return int((strategy or tf.distribute.get_strategy()).num_replicas_in_sync)


def global_batch_size(per_replica_batch, strategy=None) -> int:
    """The ``batch_size`` to give ``fit`` so that each replica sees ``per_replica_batch`` examples per step.

    Keras splits a batch over the replicas, so scaling out at a fixed ``batch_size`` shrinks each device's share;
    multiply by the replica count to keep it.

    Example:

        from tfkd.distribute import get_strategy, global_batch_size
        global_batch_size(64, get_strategy("mirrored"))   # 64 on one device, 128 on two GPUs: fit(batch_size=...)
    """
    per_replica_batch = int(per_replica_batch)
    if per_replica_batch <= 0:
        raise ValueError(f"per_replica_batch={per_replica_batch} must be > 0.")
    return per_replica_batch * replicas(strategy)


def per_replica_batch_size(global_batch, strategy=None) -> int:
    """Each replica's share of a global batch; refuses a global batch smaller than the replica count.

    A replica with no examples would still run the step (its gradient is zero), wasting the device.
    """
    n = replicas(strategy)
    global_batch = int(global_batch)
    if global_batch < n:
        raise ValueError(f"batch_size={global_batch} is smaller than the {n} replicas in sync; batch_size is the "
                         f"global batch under a strategy: use at least {n}, typically a multiple of {n}.")
    return global_batch // n


def scaled_learning_rate(lr, global_batch, base_batch) -> float:
    """The linear scaling rule: ``lr * global_batch / base_batch`` (Goyal et al., 2017).

    ``lr`` was tuned at ``base_batch``; a run at a larger global batch (more replicas, same per-replica batch) takes
    fewer, larger-batch steps, and a proportionally larger learning rate keeps the per-example update size. Large
    factors need a warm-up; Adam is less sensitive to batch size than SGD, so check the validation curves.

    Example:

        from tfkd.distribute import scaled_learning_rate
        scaled_learning_rate(1e-3, global_batch=256, base_batch=64)   # 0.004
    """
    if lr <= 0 or global_batch <= 0 or base_batch <= 0:
        raise ValueError(f"lr={lr}, global_batch={global_batch} and base_batch={base_batch} must all be > 0.")
    return float(lr) * float(global_batch) / float(base_batch)


def data_sharded(dataset):
    """``dataset`` with ``AutoShardPolicy.DATA``: each worker takes its share of every global batch.

    For in-memory data (``from_tensor_slices``) there are no files to shard, and the default policy would try
    files first and warn. Keras's own array adapter already does this for numpy inputs.
    """
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def _worker_temp_dir(directory, strategy):
    _, task_id = task(strategy)
    return Path(directory) / f"workertemp_{task_id}"


@contextlib.contextmanager
def chief_path(path, strategy=None):
    """Yield where this worker should write ``path``: ``path`` itself on the chief, a throw-away path elsewhere.

    Every worker must run the writing code (a save may involve collective ops); the non-chief copies go to
    ``<dir>/workertemp_<task id>/`` and are removed when the block ends, so ``path`` is written once.

    Example:

        from tfkd.distribute import chief_path, get_strategy
        with chief_path("student.keras", get_strategy("mirrored")) as p:
            student.save(p)
    """
    path = Path(path)
    if is_chief(strategy):
        yield path
        return
    temp = _worker_temp_dir(path.parent, strategy)
    temp.mkdir(parents=True, exist_ok=True)
    try:
        yield temp / path.name
    finally:
        shutil.rmtree(temp, ignore_errors=True)


def worker_dir(directory, strategy=None) -> Path:
    """The directory this worker writes a whole run into: ``directory`` on the chief, a private copy elsewhere.

    A non-chief worker gets a fresh temporary directory holding a copy of whatever ``directory`` already holds
    (so ``--resume`` sees the chief's finished stages and checkpoints; with several hosts ``directory`` must be
    on a file system every host sees). Remove it with :func:`release_worker_dir` when the run ends.
    """
    directory = Path(directory)
    if is_chief(strategy):
        return directory
    _, task_id = task(strategy)
    private = Path(tempfile.mkdtemp(prefix=f"tfkd-worker{task_id}-"))
    if directory.is_dir():
        from tfkd import io

        shutil.copytree(directory, private, dirs_exist_ok=True,
                        ignore=lambda _, names: [n for n in names if n.startswith("workertemp_") or io.is_temp_name(n)
                                                 or n == ".tfkd-lock"])
    return private


def release_worker_dir(directory, run_dir, strategy=None):
    """Delete a non-chief worker's private run directory (nothing to do on the chief)."""
    if Path(directory) != Path(run_dir) and not is_chief(strategy):
        shutil.rmtree(directory, ignore_errors=True)
