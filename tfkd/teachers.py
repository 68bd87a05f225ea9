"""Teachers: ensembles of several models, and teacher logits cached once for a fixed dataset.

Example (two teachers blended in probability space, then cached):

    import tfkd
    teacher_a, teacher_b = teacher, models.mlp((64,), (8, 8, 1), 10, seed=2)   # two trained models, in practice
    ensemble = tfkd.TeacherEnsemble([teacher_a, teacher_b], weights=[0.7, 0.3], space="probs")
    cache = tfkd.cache_teacher_logits(ensemble, x_train)
    distiller = tfkd.Distiller(None, student)      # no live teacher: every batch carries its cached logits
    distiller.compile(optimizer="adam")
    distiller.fit(cache.inputs(x_train), y_train, epochs=1, verbose=0)   # no teacher forward pass per epoch
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

# Keys of the dict form of a Distiller batch's inputs (see tfkd.Distiller).
STUDENT_KEY = "student"
TEACHER_KEY = "teacher"
LOGITS_KEY = "teacher_logits"


@keras.saving.register_keras_serializable(package="tfkd")
class TeacherEnsemble(keras.Model):
    """Several teachers as one: weighted mean of logits, or the log of the weighted mean of probabilities.

    ``space="logits"`` averages logits (a geometric mean of the distributions). ``space="probs"`` forms the mixture
    ``p = sum_i w_i softmax(t_i)`` and returns ``log p`` as logits, so that ``softmax`` of the output is exactly the
    mixture; at temperature ``T`` a distiller then matches ``softmax(log p / T)``. Members run with
    ``training=False``; the ensemble has no trainable weights of its own.

    Example:

        t1, t2 = teacher, models.mlp((64,), (8, 8, 1), 10, seed=2)
        ens = tfkd.TeacherEnsemble([t1, t2], space="probs")
        logits = ens.predict(x, verbose=0)   # log of the mean of the two softmaxes: [batch, 10]
    """

    def __init__(self, teachers, weights=None, space="logits", **kwargs):
        super().__init__(**kwargs)
        teachers = list(teachers)
        if len(teachers) < 1:
            raise ValueError("teachers=[] is empty; expected at least one keras.Model.")
        if space not in ("logits", "probs"):
            raise ValueError(f"space={space!r} is not supported; expected 'logits' or 'probs'.")
        if weights is None:
            weights = [1.0] * len(teachers)
        weights = [float(w) for w in weights]
        if len(weights) != len(teachers) or any(w < 0 for w in weights) or sum(weights) <= 0:
            raise ValueError(
                f"weights={weights} must be {len(teachers)} non-negative numbers (one per teacher) with a positive sum."
            )
        shapes = {tuple(t.output_shape[1:]) for t in teachers if hasattr(t, "output_shape")}
        if len(shapes) > 1:
            raise ValueError(f"teachers have different output shapes {sorted(shapes)}; every teacher must give the "
                             "same number of logits.")
        self.teachers = teachers
        self.space = space
        total = sum(weights)
        self.member_weights = [w / total for w in weights]

    def call(self, inputs, training=False):
        del training  # teachers never train
        outs = [tf.cast(t(inputs, training=False), tf.float32) for t in self.teachers]
        if self.space == "logits":
            return tf.add_n([w * o for w, o in zip(self.member_weights, outs)])
        log_w = tf.math.log(tf.constant(self.member_weights, tf.float32))
        stacked = tf.stack([tf.nn.log_softmax(o, axis=-1) for o in outs], axis=0)  # [k, batch, classes]
        return tf.reduce_logsumexp(stacked + log_w[:, None, None], axis=0)

    def compute_output_shape(self, input_shape):
        return self.teachers[0].compute_output_shape(input_shape)

    def get_config(self):
        return {
            **super().get_config(),
            "teachers": [keras.saving.serialize_keras_object(t) for t in self.teachers],
            "weights": self.member_weights,
            "space": self.space,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        teachers = [keras.saving.deserialize_keras_object(t) for t in config.pop("teachers")]
        return cls(teachers, **config)


class _Fingerprint:
    """The hash behind :func:`fingerprint`, fed batch by batch: a tf.data pipeline and the array it would stack
    into get the same fingerprint (per-example shape and dtype first, then the bytes, then the count)."""

    def __init__(self):
        self._hash, self._head, self.count = None, None, 0

    def update(self, batch):
        batch = np.ascontiguousarray(batch)
        head = f"{tuple(batch.shape[1:])}|{batch.dtype}"
        if self._hash is None:
            self._hash, self._head = hashlib.sha1(head.encode()), head
        elif head != self._head:
            raise ValueError(f"a batch of shape {batch.shape} and dtype {batch.dtype} follows batches of examples "
                             f"{self._head}; every batch must hold examples of one shape and dtype.")
        self._hash.update(memoryview(batch).cast("B"))
        self.count += len(batch)

    def hexdigest(self) -> str:
        h = self._hash.copy() if self._hash is not None else hashlib.sha1(b"empty")
        h.update(f"|{self.count}".encode())
        return h.hexdigest()[:16]


def fingerprint(x) -> str:
    """A short content hash of an array (shape, dtype and bytes): identifies the data a cache was made from."""
    h = _Fingerprint()
    h.update(np.asarray(x))
    return h.hexdigest()


def _batch_inputs(element):
    """The model inputs of one element of a dataset: ``x`` of ``x``, ``(x,)``, ``(x, y)`` or ``(x, y, w)``."""
    return element[0] if isinstance(element, (tuple, list)) else element


def _dataset_fingerprint(ds) -> tuple[str, int]:
    h = _Fingerprint()
    for element in ds.as_numpy_iterator():
        h.update(_batch_inputs(element))
    return h.hexdigest(), h.count


@dataclass(frozen=True)
class TeacherCache:
    """Teacher logits computed once for a fixed array of inputs, bound to those inputs by a content hash.

    Use :meth:`inputs` (numpy ``fit``) or :meth:`dataset` (``tf.data``) to pair the logits with their inputs;
    both refuse inputs that are not byte-for-byte the ones the teacher saw, so cached logits cannot be paired with
    other images, a different order, or augmented views by accident. Augmentation changes the inputs every epoch,
    so it needs a live teacher (consistent teaching, Beyer et al. 2022), not this cache; or replay the views with
    :mod:`tfkd.replay`.
    """

    logits: np.ndarray
    source_fingerprint: str
    num_examples: int

    def _check(self, x):
        if len(x) != self.num_examples:
            raise ValueError(
                f"x has {len(x)} examples but the teacher cache was computed on {self.num_examples}; pass exactly "
                "the array given to cache_teacher_logits (same examples, same order)."
            )
        fp = fingerprint(x)
        if fp != self.source_fingerprint:
            raise ValueError(
                f"x (fingerprint {fp}) is not the array the teacher cache was computed on (fingerprint "
                f"{self.source_fingerprint}): same count but different contents or order. Re-run "
                "cache_teacher_logits on this x, or use a live teacher."
            )

    def pair(self, ds):
        """``ds`` (the batched ``tf.data.Dataset`` given to :func:`cache_teacher_logits`) with each batch's logits:
        ``({"student": x, "teacher_logits": t}, y, ...)``, for ``Distiller.fit``.

        ``ds`` is read once first to check it yields exactly the inputs the teacher saw, in the same order (a
        pipeline that reshuffles each pass is refused: cache before shuffling, and shuffle the paired dataset).
        """
        fp, count = _dataset_fingerprint(ds)
        if count != self.num_examples or fp != self.source_fingerprint:
            raise ValueError(
                f"ds yields {count} examples (fingerprint {fp}) but the teacher cache was computed on "
                f"{self.num_examples} (fingerprint {self.source_fingerprint}): not the same inputs in the same "
                "order. A pipeline that shuffles or augments gives other inputs on every pass: cache the "
                "deterministic pipeline, then shuffle the paired dataset, or use a live teacher.")
        logits = tf.constant(self.logits)

        def attach(offset, element):
            parts = tuple(element) if isinstance(element, (tuple, list)) else (element,)
            n = tf.shape(parts[0])[0]
            features = {STUDENT_KEY: parts[0], LOGITS_KEY: logits[offset:offset + n]}
            return offset + n, (features, *parts[1:])

        return ds.scan(tf.constant(0, tf.int32), attach)

    def inputs(self, x):
        """``{"student": x, "teacher_logits": logits}`` for ``Distiller.fit(inputs, y, shuffle=True)``."""
        self._check(x)
        return {STUDENT_KEY: x, LOGITS_KEY: self.logits}

    def dataset(self, x, y=None, *, batch_size=128, shuffle=True, seed=0, student_transform=None):
        """A batched, prefetched ``tf.data.Dataset`` of ``({"student": x, "teacher_logits": t}, y)``.

        ``student_transform`` (a batch -> batch callable, e.g. a ``keras.layers.RandAugment``) noises the
        student's view only, every epoch anew, while the logits stay those the teacher gave the clean inputs:
        Noisy Student's "teacher labels clean, student learns noised". Order and noise depend only on ``seed`` and
        the epoch (:func:`tfkd.rng.epoch_keyed`; the noise is exact on resume when ``student_transform`` is a Keras
        layer or comes from :func:`tfkd.augment.make`).
        """
        from tfkd import rng

        features = self.inputs(x)
        transform = None
        if student_transform is not None:
            def noise(features, *rest):
                return ({**features, STUDENT_KEY: student_transform(features[STUDENT_KEY])}, *rest)

            # The layer behind the noise (tfkd.augment.make keeps it as .layer) owns the seed generators that
            # rng.epoch_keyed re-seeds from the epoch, so a resumed run draws the same noise.
            owner = getattr(student_transform, "layer", student_transform)
            transform = (noise, owner if isinstance(owner, keras.layers.Layer) else None)
        # Order and noise are functions of (seed, epoch), told by tfkd.training.fit: resuming replays them exactly.
        return rng.epoch_keyed(features, y, batch_size=batch_size, seed=seed, shuffle=shuffle, transform=transform)

    def save(self, path):
        """Write the logits, their hash and the inputs' fingerprint to an ``.npz`` file (no pickle), atomically."""
        from tfkd import io

        import os

        with io.atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:  # a file object, so that savez adds no ".npz" to the name
                np.savez(fh, logits=self.logits, fingerprint=np.array(self.source_fingerprint),
                         logits_fingerprint=np.array(fingerprint(self.logits)))
                fh.flush()
                os.fsync(fh.fileno())

    @classmethod
    def load(cls, path):
        """Read a cache written by :meth:`save`; a damaged file, or logits changed since, is refused by name.

        The logits are checked against the hash written with them, so a cache whose rows were reordered or edited
        cannot silently teach a student something else.
        """
        import zipfile

        try:
            with np.load(path, allow_pickle=False) as f:
                missing = [k for k in ("logits", "fingerprint", "logits_fingerprint") if k not in f.files]
                if missing:
                    raise ValueError(f"missing keys {missing} (found {sorted(f.files)}); it was not written by "
                                     "TeacherCache.save of this tfkd version")
                logits = f["logits"]
                source, stored = str(f["fingerprint"]), str(f["logits_fingerprint"])
        except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as err:
            raise ValueError(f"teacher logits cache {path} is not readable ({type(err).__name__}: {err}): the file "
                             "is truncated, damaged or of another format. Delete it to have it recomputed (in a "
                             "run directory: start a new run), or re-create it with cache_teacher_logits.") from None
        actual = fingerprint(logits)
        if actual != stored:
            raise ValueError(f"teacher logits cache {path}: its logits (hash {actual}) are not the ones written "
                             f"with it (hash {stored}): the file was edited or damaged after it was saved. Delete "
                             "it to have it recomputed, or re-create it with cache_teacher_logits.")
        return cls(logits=logits, source_fingerprint=source, num_examples=len(logits))


def cache_teacher_logits(teacher, x, *, batch_size=256, verbose=0) -> TeacherCache:
    """Run ``teacher`` once over ``x`` (``training=False``) and keep its float32 logits.

    Args:
        teacher: a ``keras.Model`` (or :class:`TeacherEnsemble`, or a list of models, which is ensembled with
            logit averaging) returning logits.
        x: a numpy array of inputs: the exact array you will train on; or a batched ``tf.data.Dataset`` of
            ``x``, ``(x, y)`` or ``(x, y, sample_weight)`` that yields the same batches on every pass (no shuffle,
            no random augmentation: see :meth:`TeacherCache.pair`). It streams: only the logits are kept.

    Example:

        cache = tfkd.cache_teacher_logits(teacher, x_train)
        distiller = tfkd.Distiller(teacher, student)
        distiller.compile(optimizer="adam")
        distiller.fit(cache.inputs(x_train), y_train, epochs=1, shuffle=True, verbose=0)
    """
    if isinstance(teacher, (list, tuple)):
        teacher = TeacherEnsemble(teacher)
    if isinstance(x, tf.data.Dataset):
        return _cache_dataset(teacher, x, verbose)
    x = np.asarray(x)
    logits = np.asarray(teacher.predict(x, batch_size=batch_size, verbose=verbose), dtype=np.float32)
    if logits.ndim != 2 or len(logits) != len(x):
        raise ValueError(f"teacher returned outputs of shape {logits.shape} for {len(x)} inputs; expected "
                         "[num_examples, num_classes] logits.")
    check_not_probabilities(logits, "teacher")
    return TeacherCache(logits=logits, source_fingerprint=fingerprint(x), num_examples=len(x))


def _cache_dataset(teacher, ds, verbose) -> TeacherCache:
    """:func:`cache_teacher_logits` over a batched dataset: one teacher call a batch, the inputs hashed as they pass."""
    h, chunks = _Fingerprint(), []
    forward = tf.function(lambda x: teacher(x, training=False), reduce_retracing=True)
    for i, element in enumerate(ds):
        x = _batch_inputs(element)
        if isinstance(x, dict):
            raise ValueError("x: a dataset of dict inputs is not supported by cache_teacher_logits; map it to "
                             "(x, y) batches of the teacher's input first.")
        h.update(x.numpy())
        chunks.append(np.asarray(forward(x), np.float32))
        if verbose and i % 50 == 0:
            print(f"cache_teacher_logits: {h.count} examples", flush=True)
    if not chunks:
        raise ValueError("x: the dataset yielded no batches; expected a batched tf.data.Dataset of (x, y).")
    logits = np.concatenate(chunks)
    if logits.ndim != 2 or len(logits) != h.count:
        raise ValueError(f"teacher returned outputs of shape {logits.shape} for {h.count} inputs; expected "
                         "[num_examples, num_classes] logits (is the dataset batched? use ds.batch(256)).")
    check_not_probabilities(logits, "teacher")
    return TeacherCache(logits=logits, source_fingerprint=h.hexdigest(), num_examples=h.count)


def looks_like_probabilities(outputs, atol=1e-3) -> bool:
    """True if every row is in [0, 1] and sums to 1: the model ends in a softmax rather than logits."""
    outputs = np.asarray(outputs, dtype=np.float64)
    if outputs.ndim != 2 or outputs.shape[-1] < 2:
        return False
    return bool(np.all(outputs >= -atol) and np.all(outputs <= 1 + atol)
                and np.allclose(outputs.sum(-1), 1.0, atol=atol))


def check_not_probabilities(outputs, what: str):
    if looks_like_probabilities(outputs):
        raise ValueError(
            f"the {what} outputs look like probabilities (each row is in [0, 1] and sums to 1), not logits: its last "
            "layer applies a softmax. tfkd needs logits, because the temperature divides logits. Rebuild the "
            "model with a linear last layer (activation=None), e.g. "
            "keras.Model(model.input, model.layers[-1].output) after setting that layer's activation to linear."
        )


def virtual_teacher_logits(y, num_classes, correct_prob=0.9) -> np.ndarray:
    """Logits of the hand-designed "virtual teacher" of teacher-free KD (Yuan et al., 2020).

    The teacher puts ``correct_prob`` on the true class and spreads the rest evenly; its logits are the log of that
    distribution (so ``softmax`` gives it back exactly). Distilling from it at a temperature is a
    label-smoothing-like regulariser that needs no trained teacher.
    """
    if not 1.0 / num_classes < correct_prob < 1.0:
        raise ValueError(f"correct_prob={correct_prob} must be in (1/num_classes, 1) = ({1 / num_classes:.3g}, 1).")
    y = np.asarray(y).reshape(-1)
    probs = np.full((len(y), num_classes), (1.0 - correct_prob) / (num_classes - 1), np.float32)
    probs[np.arange(len(y)), y] = correct_prob
    return np.log(probs)


def cache_from_logits(x, logits) -> TeacherCache:
    """Bind externally computed teacher logits (a virtual teacher, another framework) to the inputs ``x``."""
    logits = np.asarray(logits, np.float32)
    if len(logits) != len(x):
        raise ValueError(f"logits has {len(logits)} rows but x has {len(x)} examples; they must match one to one.")
    check_not_probabilities(logits, "given")
    return TeacherCache(logits=logits, source_fingerprint=fingerprint(x), num_examples=len(x))
