"""Random state that evolves across epochs, made part of a training run's resumable state.

Two kinds of randomness change from one epoch to the next, and a run resumed after ``kill -9`` must replay both
exactly (bit-identical weights on CPU):

* **Inside the model**: every Keras ``SeedGenerator`` a layer owns (``Dropout``, ``tfkd.layers`` stochastic depth,
  a Distiller's ``augment=`` layer with its ``RandomRotation``/``RandAugment``/``MixUp``...) advances at each
  training step, yet ``save_weights`` does not store it. :func:`seed_states` / :func:`restore_seed_states` read and
  write them; :class:`tfkd.training.EpochCheckpoint` saves them with each epoch checkpoint.
* **Inside the input pipeline**: the shuffle order and the noise of a ``tf.data`` pipeline (Noisy Student's
  student-only noise). A ``tf.data`` reshuffle draws from the dataset object's hidden state, so a resumed run
  (a new dataset) would see epoch 0's order again. :func:`epoch_keyed` builds a pipeline whose order and noise are
  a pure function of ``(seed, epoch)``; :func:`tfkd.training.fit` tells it the epoch (:func:`set_epoch`) before
  each epoch starts, as PyTorch's ``DistributedSampler.set_epoch`` does.

Example:

    from tfkd import rng, training
    noise = keras.layers.GaussianNoise(0.1, seed=0)            # owns the seed generator that is re-seeded per epoch
    ds = rng.epoch_keyed(x, y, batch_size=64, seed=0, transform=(lambda xb, yb: (noise(xb, training=True), yb), noise))
    student.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    training.fit(student, ds, epochs=2, checkpoint_dir="runs/a/ckpt")   # killed in epoch 2? rerun: same order and noise
"""

from __future__ import annotations

EPOCH_ATTR = "_tfkd_epoch"


def seed_generators(obj) -> list:
    """Every ``keras.random.SeedGenerator`` owned by ``obj`` (a layer or model) and its sub-layers, in a fixed order.

    The order is that of the layer tree, so two builds of the same architecture list them alike whatever else the
    process created before (generator *names* depend on that, so they are not used).
    """
    import keras

    if obj is None:
        return []
    if isinstance(obj, keras.random.SeedGenerator):
        return [obj]
    layers = obj._flatten_layers(include_self=True, recursive=True) if isinstance(obj, keras.layers.Layer) else []
    found, seen = [], set()
    for layer in layers:
        for gen in getattr(layer, "_seed_generators", ()):
            if id(gen) not in seen:
                seen.add(id(gen))
                found.append(gen)
    return found


def seed_states(obj) -> list:
    """The states of :func:`seed_generators` as plain ``[[int, int], ...]`` (JSON-ready)."""
    import keras

    return [[int(v) for v in keras.ops.convert_to_numpy(gen.state.value).reshape(-1)] for gen in seed_generators(obj)]


def restore_seed_states(obj, states) -> None:
    """Put back states saved by :func:`seed_states`; ``ValueError`` if ``obj`` does not own as many generators."""
    import numpy as np

    gens = seed_generators(obj)
    if len(gens) != len(states):
        raise ValueError(f"the checkpoint holds {len(states)} random-seed states but the model owns {len(gens)} "
                         "seed generators (Dropout, augmentation or noise layers): it was written by another model")
    for gen, state in zip(gens, states):
        gen.state.assign(np.asarray(state, dtype=gen.state.dtype))


def set_epoch(dataset, epoch: int) -> bool:
    """Tell an :func:`epoch_keyed` dataset which epoch comes next; ``False`` for any other dataset."""
    variable = getattr(dataset, EPOCH_ATTR, None)
    if variable is None:
        return False
    variable.assign(int(epoch))
    return True


def epoch_callback(dataset):
    """A Keras callback that tells ``dataset`` (:func:`epoch_keyed`, or a :mod:`tfkd.replay` pipeline) its epoch
    before Keras iterates it: :func:`tfkd.training.fit` and ``Distiller.fit`` add it themselves."""
    import keras

    class EpochKey(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            set_epoch(dataset, epoch)

    return EpochKey()


def epoch_keyed(features, labels=None, *, batch_size, seed=0, shuffle=True, transform=None, drop_remainder=False):
    """A batched ``tf.data.Dataset`` whose order and ``transform`` noise depend only on ``(seed, epoch)``.

    Args:
        features: an array or a dict/tuple of arrays of the same length (the model's inputs).
        labels: optional array of the same length; elements are ``(features, labels)``, else ``(features,)``.
        batch_size: examples per batch (the last batch may be smaller).
        seed: the shuffle and noise seed.
        shuffle: a new order every epoch (a stateless permutation of ``(seed, epoch)``); ``False`` keeps the order.
        transform: optional ``(features, *rest) -> (features, *rest)`` applied to each batch, or a pair
            ``(function, owner)`` where ``owner`` (a Keras layer) holds the seed generators ``function`` draws from:
            they are re-seeded from ``(their seed, epoch)`` at the start of every epoch and the batches are
            transformed one after another, so the noise of epoch ``e`` is the same in any run that reaches it.
        drop_remainder: drop the last, smaller batch.

    The epoch is read from a variable when an iteration starts; :func:`tfkd.training.fit` sets it (see
    :func:`set_epoch`) before every epoch, so a run resumed at epoch ``k`` sees epoch ``k``'s order and noise.
    """
    import keras
    import numpy as np
    import tensorflow as tf

    structure = (features,) if labels is None else (features, labels)
    leaves = keras.tree.flatten(structure)
    n = int(len(leaves[0]))
    epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="tfkd_epoch")
    fn, owner = transform if isinstance(transform, tuple) else (transform, None)
    gens = seed_generators(owner)
    initial = [np.asarray(keras.ops.convert_to_numpy(g.state.value)) for g in gens]

    def epoch_order(_):
        e = epoch.read_value()
        # Each generator restarts every epoch at (its own seed, epoch * 2**32): streams of different epochs and of
        # different generators never overlap, and nothing depends on how far an earlier iteration ran.
        resets = [g.state.assign(tf.stack([tf.constant(s[0], g.state.dtype),
                                           tf.cast(e, g.state.dtype) * tf.constant(2 ** 32, g.state.dtype)]))
                  for g, s in zip(gens, initial)]
        with tf.control_dependencies(resets):
            indices = tf.range(n, dtype=tf.int64)
            if shuffle:
                indices = tf.random.experimental.stateless_shuffle(indices, seed=tf.stack([tf.constant(seed, tf.int64),
                                                                                          e]))
        return tf.data.Dataset.from_tensor_slices(indices)

    batches = tf.data.Dataset.range(1).flat_map(epoch_order).batch(int(batch_size), drop_remainder=drop_remainder)
    data = tf.data.Dataset.from_tensors(structure).repeat()
    ds = tf.data.Dataset.zip((batches, data)).map(
        lambda idx, d: keras.tree.map_structure(lambda t: tf.gather(t, idx), d),
        num_parallel_calls=tf.data.AUTOTUNE)
    if fn is not None:
        # Sequential on purpose: the transform's seed generators are shared state, so parallel calls would draw
        # their seeds in a racing order and no two runs would match.
        ds = ds.map(lambda *batch: fn(*batch))
    steps = n // int(batch_size) if drop_remainder else -(-n // int(batch_size))
    ds = ds.apply(tf.data.experimental.assert_cardinality(steps)).prefetch(tf.data.AUTOTUNE)
    setattr(ds, EPOCH_ATTR, epoch)
    return ds
