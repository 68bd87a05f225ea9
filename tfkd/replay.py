"""Replayed augmented views: augmentation as a pure function of (seed, epoch, example); teacher outputs once.

An augmented (function-matching) run pays one teacher forward per view, every epoch, and a sweep pays it again in
every arm (temperatures x alphas, seeds, tuner trials), for the same teacher. Here the random view of example ``i``
at epoch ``e`` is a pure function of ``(view seed, e, i)``: every draw comes from ``tf.random.stateless_*``
(Philox) keyed by ``fold_in([seed, salt], e)``, and row ``i`` of that epoch's draws belongs to example ``i``
wherever it sits in a batch and whatever the shuffle order or batch size. So a view can be regenerated anywhere,
bit for bit, and the teacher's logits for the views of epochs ``0..E-1`` are computed once
(:func:`compute_replay_cache`, float16 ``[E, examples, classes]``) and reused by every student that trains on those
views (:meth:`ReplayCache.dataset`, :func:`train_arms`): an epoch then costs about a student-only epoch.

A :class:`ReplayCache` is bound by a hash to the teacher (its weights), the data (the inputs' content hash), the
view config (seed included) and its epoch count; :meth:`ReplayCache.check` and :meth:`ReplayCache.load` refuse
another teacher, other data, another view seed or config, or epochs the cache does not hold, naming what differs.

What replays, and what needs the live teacher:

- **Replayable** (:class:`ViewConfig`): random shifts (zero padding + crop, ``pad`` pixels at most), horizontal
  flips, brightness and contrast jitter, and *per-example* mixup (``mixup=a``): example ``i`` is blended with an
  example ``j(seed, e, i)`` drawn from the whole training set, ``lam ~ Beta(a, a)`` drawn for ``i``; the batch then
  carries the mixed one-hot labels ``lam onehot(y_i) + (1 - lam) onehot(y_j)``, so the hard loss is exactly
  ``lam CE(y_i) + (1 - lam) CE(y_j)``.
- **Not replayable**: in-batch mixup (:class:`tfkd.augment.MixUp`, ``Distiller(augment=...)``), whose partner is
  whoever shares the batch, which depends on each run's shuffle order and batch size; and Keras's stateful random
  layers (``RandAugment``, ``RandomRotation``...), whose draws depend on the sequence of calls. Use a live teacher
  for those, or express the augmentation as a :class:`ViewConfig`.
- **Feature terms** (``Hint``, ``Attention``, ``RKD``, ``SimilarityPreserving``...) read the teacher's inner layers,
  which the cache does not hold: they need the live teacher. They can still train on replayed views
  (:func:`views_dataset` with ``Distiller(teacher, ...)``), only without the saving.

Example:

    from tfkd import replay
    config = replay.ViewConfig(seed=0, pad=1)                     # shifts of up to 1 pixel on 8x8 digits
    cache = replay.compute_replay_cache(teacher, x_train, views=config, epochs=2)   # the only teacher passes
    ds = cache.dataset(x_train, y_train, batch_size=64)          # epoch e: epoch e's views with their logits
    for temperature in (2.0, 4.0):                               # each arm reuses the cache: no teacher forward
        distiller = tfkd.Distiller(None, models.plain_cnn(2, (8, 8, 1), 10), temperature=temperature)
        distiller.compile(optimizer="adam")
        distiller.fit(ds, epochs=cache.epochs, callbacks=[replay.ReplayEpoch(ds)], verbose=0)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from tfkd import rng
from tfkd.teachers import LOGITS_KEY, STUDENT_KEY, TeacherEnsemble, check_not_probabilities, fingerprint

# Bump when the view function changes what it draws or computes: caches of an older version are then refused.
VIEWS_VERSION = 1
_SALT = 0x7E9147D3  # the second word of the base key: view streams never coincide with tfkd.rng's [seed, epoch]
_ALG = "philox"  # named, not "auto_select", so that CPU and GPU draw the same numbers
_DRAWS = 8  # uniforms per example and epoch: 0 dy, 1 dx, 2 flip, 3 brightness, 4 contrast, 5 mixup partner, 6-7 spare
_EPOCHS_ATTR = "_tfkd_replay_epochs"  # how many view epochs a dataset can serve (None: any)
_META_KEYS = ("logits", "meta", "logits_fingerprint")


@dataclass(frozen=True)
class ViewConfig:
    """What a replayed view does, and the seed it draws from; hashable, JSON-able (:meth:`to_dict`).

    Args:
        seed: the view seed. Views of the same seed, epoch and example are bit-identical anywhere.
        pad: largest shift in pixels along each spatial axis (zero padding, then a crop back to size); 0: none.
        flip: flip horizontally with probability 1/2 (not for digits or text).
        brightness: add ``d * (high - low)``, ``d ~ U(-brightness, brightness)`` per image.
        contrast: scale around the middle of ``value_range`` by ``1 + c``, ``c ~ U(-contrast, contrast)``.
        mixup: Beta parameter of per-example mixup (0: off); see the module docstring.
        value_range: ``(low, high)`` of the inputs; brightness and contrast results are clipped to it.

    Shifts and flips move pixels and fill with zeros, so they keep the input's values exactly; every operation is
    per element, so a view does not depend on which other examples share its batch.
    """

    seed: int = 0
    pad: int = 4
    flip: bool = False
    brightness: float = 0.0
    contrast: float = 0.0
    mixup: float = 0.0
    value_range: tuple = (0.0, 1.0)

    def __post_init__(self):
        for name in ("seed", "pad"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise ValueError(f"{name}={value!r} must be an integer >= 0.")
        for name in ("brightness", "contrast", "mixup"):
            value = getattr(self, name)
            if not isinstance(value, (int, float, np.floating)) or not np.isfinite(value) or value < 0:
                raise ValueError(f"{name}={value!r} must be a finite number >= 0 (0 turns it off).")
        if self.contrast >= 1:
            raise ValueError(f"contrast={self.contrast} must be < 1 (a factor 1 - contrast <= 0 would invert images).")
        try:
            low, high = (float(v) for v in self.value_range)
        except (TypeError, ValueError):
            low = high = None
        if low is None or not low < high:
            raise ValueError(f"value_range={self.value_range!r} must be (low, high) with low < high, e.g. (0.0, 1.0).")
        object.__setattr__(self, "seed", int(self.seed))
        object.__setattr__(self, "pad", int(self.pad))
        object.__setattr__(self, "flip", bool(self.flip))
        for name in ("brightness", "contrast", "mixup"):
            object.__setattr__(self, name, float(getattr(self, name)))
        object.__setattr__(self, "value_range", (low, high))

    @property
    def geometric(self) -> bool:
        return self.pad > 0 or self.flip

    def to_dict(self) -> dict:
        """The fields as plain JSON values, with the view function's version."""
        return {**dataclasses.asdict(self), "value_range": list(self.value_range), "version": VIEWS_VERSION}

    @classmethod
    def from_dict(cls, config):
        config = dict(config)
        version = config.pop("version", VIEWS_VERSION)
        if version != VIEWS_VERSION:
            raise ValueError(f"view config of version {version}; this tfkd makes views of version {VIEWS_VERSION}, "
                             "which are other images: recompute the replay cache.")
        return cls(**config)

    def describe(self) -> str:
        parts = [f"seed {self.seed}", f"shifts up to {self.pad} px" if self.pad else "no shifts"]
        parts += ["flips"] if self.flip else []
        parts += [f"brightness {self.brightness:g}"] if self.brightness else []
        parts += [f"contrast {self.contrast:g}"] if self.contrast else []
        parts += [f"mixup Beta({self.mixup:g}, {self.mixup:g})"] if self.mixup else []
        return ", ".join(parts)


# -- the pure view function ------------------------------------------------------------------------------------------
def _epoch_key(seed, epoch):
    base = tf.constant([int(seed), _SALT], tf.int64)
    return tf.random.experimental.stateless_fold_in(base, tf.cast(epoch, tf.int64), alg=_ALG)


def _draw_tables(config, epoch, n):
    """(uniforms [n, _DRAWS], gammas [n, 2] or None) of one epoch: row i is example i's."""
    key = _epoch_key(config.seed, epoch)
    uniform = tf.random.stateless_uniform(tf.stack([n, _DRAWS]), seed=key, alg=_ALG)
    gamma = None
    if config.mixup:
        gkey = tf.random.experimental.stateless_fold_in(key, tf.constant(1, tf.int64), alg=_ALG)
        gamma = tf.random.stateless_gamma(tf.stack([n, 2]), seed=gkey, alpha=config.mixup)
    return uniform, gamma


def _per_example(values, rank):
    """[batch] values shaped to broadcast against a [batch, ...] tensor of ``rank``."""
    return tf.reshape(values, tf.concat([tf.shape(values), tf.ones([rank - 1], tf.int32)], 0))


def _place(config, x, index, rows):
    """Shifted / flipped copies of ``x[index]`` as float32, zeros where a shift uncovers the border.

    Two gathers of whole rows from the whole set (image rows, then the columns of the transposed batch): pure data
    movement, so the values are the input's own.
    """
    if not config.geometric:
        return tf.cast(tf.gather(x, index), tf.float32)
    shape = tf.shape(x, out_type=tf.int64)
    h, w, c = shape[1], shape[2], shape[3]
    p = config.pad
    span = float(2 * p + 1)

    def shift(u):
        return tf.minimum(tf.cast(tf.floor(u * span), tf.int64), 2 * p) - p

    dy, dx = shift(rows[:, 0]), shift(rows[:, 1])
    src_r = tf.range(h)[None, :] + dy[:, None]  # [batch, h]: output row r reads input row r + dy
    cols = tf.range(w)[None, :] + tf.zeros_like(dx)[:, None]
    if config.flip:
        cols = tf.where((rows[:, 2] < 0.5)[:, None], w - 1 - cols, cols)
    src_c = cols + dx[:, None]  # [batch, w]
    keep_r = tf.cast((src_r >= 0) & (src_r < h), tf.float32)
    keep_c = tf.cast((src_c >= 0) & (src_c < w), tf.float32)
    picked = tf.gather(tf.reshape(x, tf.stack([-1, w * c])), index[:, None] * h + tf.clip_by_value(src_r, 0, h - 1))
    picked = tf.reshape(tf.cast(picked, tf.float32), tf.stack([-1, h, w, c])) * keep_r[:, :, None, None]
    by_col = tf.reshape(tf.transpose(picked, [0, 2, 1, 3]), tf.stack([-1, h * c]))  # [batch * w, h * c]
    b = tf.shape(index, out_type=tf.int64)[0]
    picked = tf.gather(by_col, tf.range(b)[:, None] * w + tf.clip_by_value(src_c, 0, w - 1))
    picked = tf.reshape(picked, tf.stack([-1, w, h, c])) * keep_c[:, :, None, None]
    return tf.transpose(picked, [0, 2, 1, 3])


def _jitter(config, view, rows):
    if not (config.brightness or config.contrast):
        return view
    low, high = config.value_range
    rank = view.shape.rank
    if config.brightness:
        view = view + _per_example((rows[:, 3] * 2.0 - 1.0) * (config.brightness * (high - low)), rank)
    if config.contrast:
        mid = (low + high) / 2.0
        view = (view - mid) * _per_example(1.0 + (rows[:, 4] * 2.0 - 1.0) * config.contrast, rank) + mid
    return tf.clip_by_value(view, low, high)


def _one_hot(y, num_classes):
    if y.dtype.is_floating and y.shape.rank == 2 and y.shape[-1] not in (1, None):
        return tf.cast(y, tf.float32)  # already one-hot (or soft) rows
    return tf.one_hot(tf.cast(tf.reshape(y, [-1]), tf.int32), num_classes, dtype=tf.float32)


def _apply(config, x, y, index, uniform, gamma, num_classes):
    """(views, labels) of examples ``index`` of the whole set ``x`` (and ``y``), given the epoch's draw tables."""
    index = tf.cast(index, tf.int64)
    rows = tf.gather(uniform, index)
    view = _jitter(config, _place(config, x, index, rows), rows)
    labels = None if y is None else tf.gather(y, index)
    if config.mixup:
        n = tf.shape(x, out_type=tf.int64)[0]
        partner = tf.minimum(tf.cast(tf.cast(rows[:, 5], tf.float64) * tf.cast(n, tf.float64), tf.int64), n - 1)
        prows = tf.gather(uniform, partner)
        other = _jitter(config, _place(config, x, partner, prows), prows)
        g = tf.gather(gamma, index)
        lam = g[:, 0] / (g[:, 0] + g[:, 1])
        lam_b = _per_example(lam, view.shape.rank)
        view = lam_b * view + (1.0 - lam_b) * other
        if y is not None:
            mine, theirs = _one_hot(labels, num_classes), _one_hot(tf.gather(y, partner), num_classes)
            labels = lam[:, None] * mine + (1.0 - lam[:, None]) * theirs
    return view, labels


def _check_inputs(config, x, y=None):
    if config.geometric and np.ndim(x) != 4:
        raise ValueError(f"x has shape {np.shape(x)}; shifts and flips (pad={config.pad}, flip={config.flip}) need "
                         "images [examples, height, width, channels]. Use pad=0, flip=False for other inputs.")
    if len(x) == 0:
        raise ValueError("x has 0 examples; there is nothing to make views of.")
    if config.pad and 2 * config.pad >= min(np.shape(x)[1:3]):
        # Half the image or more shifted out: digits at the default pad=4 (meant for 32x32) became noise, silently.
        raise ValueError(f"pad={config.pad} shifts {np.shape(x)[1]}x{np.shape(x)[2]} images by up to half their size "
                         f"or more; expected pad < {(min(np.shape(x)[1:3]) + 1) // 2} (about 1/8 of the side is "
                         "usual: pad=4 for 32x32, pad=1 for 8x8).")
    if y is not None and len(y) != len(x):
        raise ValueError(f"y has {len(y)} labels but x has {len(x)} examples; they must match one to one.")


def _num_classes(config, y, num_classes):
    if not config.mixup or y is None:
        return num_classes
    if num_classes is None:
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[-1] > 1:
            return int(y.shape[-1])
        raise ValueError("mixup mixes labels as one-hot rows, so it needs num_classes= (the student's logits).")
    return int(num_classes)


def views(x, y=None, *, seed=None, epoch, index=None, config=None, num_classes=None, **options):
    """Epoch ``epoch``'s views of examples ``index`` (default: all) of the training set ``x``: ``(views, labels)``.

    A pure function: the same ``(config, epoch, example)`` gives the same bytes in any batch, order or process.
    ``x`` is the whole training set (mixup partners come from it); ``index`` picks the examples (a view does not
    depend on what else ``index`` holds). ``config`` is a :class:`ViewConfig`, or its fields as ``options`` (with
    ``seed``). Returns float32 tensors; ``labels`` is ``y[index]``, mixed one-hot rows under mixup (then pass
    ``num_classes``), or None without ``y``.

    Example:

        from tfkd import replay
        a, _ = replay.views(x_train, seed=0, epoch=3, index=[5, 9], pad=1)
        b, _ = replay.views(x_train, seed=0, epoch=3, index=[9, 2, 5], pad=1)
        assert np.array_equal(a.numpy()[0], b.numpy()[2])   # example 5 of epoch 3, wherever it sits
    """
    config = _config(config, seed, options)
    _check_inputs(config, x, y)
    num_classes = _num_classes(config, y, num_classes)
    x = tf.convert_to_tensor(x)
    y = None if y is None else tf.convert_to_tensor(y)
    n = tf.shape(x, out_type=tf.int64)[0]
    index = tf.range(n) if index is None else tf.convert_to_tensor(index, tf.int64)
    uniform, gamma = _draw_tables(config, epoch, n)
    return _apply(config, x, y, index, uniform, gamma, num_classes)


def _config(config, seed, options):
    if config is None:
        return ViewConfig(seed=0 if seed is None else seed, **options)
    if not isinstance(config, ViewConfig):
        raise TypeError(f"config={config!r} must be a tfkd.replay.ViewConfig.")
    if options:
        config = dataclasses.replace(config, **options)
    if seed is not None and seed != config.seed:
        config = dataclasses.replace(config, seed=seed)
    return config


# -- pipelines -------------------------------------------------------------------------------------------------------
def _pipeline(x, y, config, *, epoch, batch_size, shuffle, shuffle_seed, drop_remainder, autotune,
              logits=None, epochs=None, num_classes=None):
    """Batches of views (and labels, and cached logits) of one epoch or of the epoch a variable holds."""
    n = int(len(x))
    if int(batch_size) < 1:
        raise ValueError(f"batch_size={batch_size} must be >= 1.")
    batch_size = int(batch_size)
    variable = None
    if epoch is None:
        variable = tf.Variable(0, dtype=tf.int64, trainable=False, name="tfkd_replay_epoch")
    elif int(epoch) < 0:
        raise ValueError(f"epoch={epoch} must be >= 0.")
    fixed = None if epoch is None else int(epoch)

    def epoch_batches(_):
        e = variable.read_value() if variable is not None else tf.constant(fixed, tf.int64)
        if epochs is not None and variable is not None:  # a fixed epoch was checked in Python already
            in_range = tf.debugging.assert_less(e, tf.constant(epochs, tf.int64), message=(
                f"tfkd.replay: this dataset serves view epochs 0..{epochs - 1} (the replay cache holds {epochs}); "
                "a later epoch's views were never seen by the teacher. Compute a cache with more epochs, or "
                "train for fewer."))
            with tf.control_dependencies([in_range]):
                e = tf.identity(e)
        order = tf.range(n, dtype=tf.int64)
        if shuffle:
            order = tf.random.experimental.stateless_shuffle(order, seed=tf.stack([tf.constant(shuffle_seed,
                                                                                              tf.int64), e]))
        uniform, gamma = _draw_tables(config, e, tf.constant(n, tf.int64))
        gamma = tf.zeros([0, 2]) if gamma is None else gamma
        batches = tf.data.Dataset.from_tensor_slices(order).batch(batch_size, drop_remainder=drop_remainder)
        return tf.data.Dataset.zip((batches, tf.data.Dataset.from_tensors((e, uniform, gamma)).repeat()))

    structure = {"x": x}
    if y is not None:
        structure["y"] = y
    if logits is not None:
        structure["logits"] = logits
    data = tf.data.Dataset.from_tensors(structure).repeat()
    batches = tf.data.Dataset.range(1).flat_map(epoch_batches)

    def make(batch, d):
        idx, (e, uniform, gamma) = batch
        view, labels = _apply(config, d["x"], d.get("y"), idx, uniform, gamma if config.mixup else None,
                              num_classes)
        if logits is None:
            return view if labels is None else (view, labels)
        t = tf.cast(tf.gather_nd(d["logits"], tf.stack([tf.fill(tf.shape(idx), e), idx], axis=1)), tf.float32)
        features = {STUDENT_KEY: view, LOGITS_KEY: t}
        return (features,) if labels is None else (features, labels)

    parallel = tf.data.AUTOTUNE if autotune else max(1, len(os.sched_getaffinity(0)) if hasattr(
        os, "sched_getaffinity") else (os.cpu_count() or 1))
    ds = tf.data.Dataset.zip((batches, data)).map(make, num_parallel_calls=parallel, deterministic=True)
    steps = n // batch_size if drop_remainder else -(-n // batch_size)
    ds = ds.apply(tf.data.experimental.assert_cardinality(steps)).prefetch(tf.data.AUTOTUNE if autotune else 2)
    if not autotune:
        options = tf.data.Options()
        options.autotune.enabled = False
        ds = ds.with_options(options)
    if variable is not None:
        setattr(ds, rng.EPOCH_ATTR, variable)  # tfkd.training.fit (and ReplayEpoch) set it before each epoch
    setattr(ds, _EPOCHS_ATTR, epochs)
    return ds


def views_dataset(x, y=None, *, views=None, epoch=None, batch_size=128, shuffle=True, shuffle_seed=0,
                  drop_remainder=False, num_classes=None, autotune=True):
    """A batched, prefetched ``tf.data.Dataset`` of replayed views ``(view, y)`` (``view`` alone without ``y``).

    For a student trained on the views without distillation, or with a live teacher (feature terms). ``epoch``
    fixes the view epoch; ``None`` follows the training epoch (set by :class:`ReplayEpoch` or
    :func:`tfkd.training.fit`, as :func:`tfkd.rng.epoch_keyed` does). The order is a stateless shuffle of
    ``(shuffle_seed, epoch)``; views are regenerated on the fly in a parallel map.
    """
    views = views if views is not None else ViewConfig()
    x = np.asarray(x)
    _check_inputs(views, x, y)
    return _pipeline(x, None if y is None else np.asarray(y), views, epoch=epoch, batch_size=batch_size,
                     shuffle=shuffle, shuffle_seed=shuffle_seed, drop_remainder=drop_remainder, autotune=autotune,
                     num_classes=_num_classes(views, y, num_classes))


class ReplayEpoch(keras.callbacks.Callback):
    """Tells a replay dataset (epoch ``None``) the training epoch before Keras iterates it: epoch e, views of e.

    ``offset`` shifts the mapping (training epoch ``k`` uses view epoch ``k + offset``). An epoch the dataset's
    cache does not hold is refused before the epoch starts. :func:`tfkd.training.fit` needs no such callback.
    """

    def __init__(self, dataset, offset=0):
        super().__init__()
        if getattr(dataset, rng.EPOCH_ATTR, None) is None:
            raise ValueError("dataset does not follow the epoch: build it with epoch=None (ReplayCache.dataset or "
                             "views_dataset), and pass that very object to fit (ds.with_options(...) or .map(...) "
                             "return another dataset).")
        self.dataset, self.offset = dataset, int(offset)

    def on_epoch_begin(self, epoch, logs=None):
        e = epoch + self.offset
        limit = getattr(self.dataset, _EPOCHS_ATTR, None)
        if limit is not None and not 0 <= e < limit:
            raise ValueError(f"training epoch {epoch} needs view epoch {e}, but the replay cache holds epochs "
                             f"0..{limit - 1}: the teacher never saw those views. Compute the cache with "
                             f"epochs={e + 1} or more, or train for at most {limit - self.offset} epochs.")
        rng.set_epoch(self.dataset, e)


# -- the cache -------------------------------------------------------------------------------------------------------
def teacher_fingerprint(teacher) -> str:
    """A short hash of a teacher's weights (shapes, dtypes, bytes, in order), class and dtype policy.

    Two teachers with the same architecture and weights share it; retraining, or another checkpoint, changes it.
    """
    if isinstance(teacher, (list, tuple)):
        teacher = TeacherEnsemble(teacher)
    weights = list(getattr(teacher, "weights", []))
    if not weights:
        raise ValueError(f"teacher {getattr(teacher, 'name', teacher)!r} has no weights (not built, or not a "
                         "keras.Model): it cannot be identified. Build it (call it on a batch) first.")
    policy = getattr(getattr(teacher, "dtype_policy", None), "name", "")
    h = hashlib.sha1(f"{type(teacher).__name__}|{policy}".encode())
    if isinstance(teacher, TeacherEnsemble):
        h.update(f"|{teacher.space}|{teacher.member_weights}".encode())
    for w in weights:
        a = np.ascontiguousarray(keras.ops.convert_to_numpy(w))
        h.update(f"|{a.shape}|{a.dtype}|".encode())
        h.update(memoryview(a).cast("B"))
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class ReplayCache:
    """Teacher logits of the replayed views of epochs ``0..E-1``, ``[E, examples, classes]`` (float16).

    Bound to the teacher, the data, the views and ``E``: see :meth:`check`. :meth:`dataset` pairs epoch ``e``'s
    views with epoch ``e``'s logits in the Distiller's cached-logits format, so ``tfkd.Distiller(None, student)``
    trains on them with no teacher at all.
    """

    logits: np.ndarray
    teacher_fingerprint: str
    data_fingerprint: str
    views: ViewConfig

    @property
    def epochs(self) -> int:
        return int(self.logits.shape[0])

    @property
    def num_examples(self) -> int:
        return int(self.logits.shape[1])

    @property
    def num_classes(self) -> int:
        return int(self.logits.shape[2])

    @property
    def binding(self) -> str:
        """The hash of everything the logits depend on: teacher, data, views, epochs, shape and storage type."""
        return _binding(self.teacher_fingerprint, self.data_fingerprint, self.views, self.logits.shape,
                        self.logits.dtype)

    def check(self, *, teacher=None, x=None, views=None, epochs=None):
        """Refuse (``ValueError`` naming each difference) a teacher, data, views or epoch count it does not serve.

        ``epochs`` is the number of epochs a run will train: refused if the cache holds fewer (a cache of more
        epochs serves a shorter run, since the views of epoch ``e`` do not depend on how many epochs follow).
        """
        problems = []
        if teacher is not None:
            fp = teacher_fingerprint(teacher)
            if fp != self.teacher_fingerprint:
                problems.append(f"teacher: its weights hash to {fp}, the cache was computed by teacher "
                                f"{self.teacher_fingerprint} (another model or other weights)")
        if x is not None:
            if len(x) != self.num_examples:
                problems.append(f"data: x has {len(x)} examples, the cache was computed on {self.num_examples}")
            else:
                fp = fingerprint(x)
                if fp != self.data_fingerprint:
                    problems.append(f"data: x hashes to {fp}, the cache was computed on {self.data_fingerprint} "
                                    "(same count, other contents or order)")
        if views is not None:
            if not isinstance(views, ViewConfig):
                raise TypeError(f"views={views!r} must be a tfkd.replay.ViewConfig.")
            if views.seed != self.views.seed:
                problems.append(f"seed: view seed {views.seed}, the cache holds the views of seed {self.views.seed}")
            mine, theirs = self.views.to_dict(), views.to_dict()
            other = [f"{k}={theirs[k]!r} (cache: {mine[k]!r})" for k in mine if k != "seed" and mine[k] != theirs[k]]
            if other:
                problems.append("view config: " + ", ".join(other))
        if epochs is not None and int(epochs) > self.epochs:
            problems.append(f"epoch: {int(epochs)} epochs requested, the cache holds the views of epochs "
                            f"0..{self.epochs - 1} only")
        if problems:
            raise ValueError("replay cache does not match: " + "; ".join(problems) + ". Its logits belong to other "
                             "views than these; recompute it with tfkd.replay.compute_replay_cache for this teacher, "
                             "data, views and epochs, or train with the live teacher.")

    def _check_epoch(self, epoch):
        if epoch is not None and not 0 <= int(epoch) < self.epochs:
            raise ValueError(f"epoch={epoch} is outside the replay cache, which holds view epochs "
                             f"0..{self.epochs - 1}: the teacher never saw epoch {epoch}'s views.")

    def labels(self, y) -> np.ndarray:
        """Class indices ``y`` in the form :meth:`dataset` yields them: one-hot float32 rows under mixup (so one
        compiled accuracy serves training and clean-image validation alike), else unchanged."""
        y = np.asarray(y)
        return np.eye(self.num_classes, dtype="float32")[y] if self.views.mixup else y

    def logits_for(self, epoch) -> np.ndarray:
        """Epoch ``epoch``'s logits as float32 ``[examples, classes]``, example ``i`` in row ``i``."""
        self._check_epoch(epoch)
        return np.asarray(self.logits[int(epoch)], np.float32)

    def dataset(self, x, y=None, *, epoch=None, batch_size=128, shuffle=True, shuffle_seed=0, drop_remainder=False,
                autotune=True):
        """``({"student": view, "teacher_logits": logits}, y)`` batches of epoch ``epoch``'s views, for ``fit``.

        ``x`` must be the very array the cache was computed on (checked by hash). ``epoch=None`` follows the
        training epoch: pass :class:`ReplayEpoch` (``ds``) to ``fit``, or train with :func:`tfkd.training.fit`;
        an epoch beyond the cache is refused. ``epoch=k`` always yields view epoch ``k``. Views are regenerated
        on the fly (parallel map, prefetch); the logits are cast to float32. Under mixup ``y`` comes as mixed
        one-hot rows.
        """
        x = np.asarray(x)
        self.check(x=x)
        self._check_epoch(epoch)
        _check_inputs(self.views, x, y)
        return _pipeline(x, None if y is None else np.asarray(y), self.views, epoch=epoch, batch_size=batch_size,
                         shuffle=shuffle, shuffle_seed=shuffle_seed, drop_remainder=drop_remainder,
                         autotune=autotune, logits=self.logits, epochs=self.epochs,
                         num_classes=_num_classes(self.views, y, self.num_classes))

    def save(self, path):
        """Write the logits and their binding to an ``.npz`` file (no pickle), atomically."""
        from tfkd import io

        meta = {"teacher": self.teacher_fingerprint, "data": self.data_fingerprint, "views": self.views.to_dict(),
                "binding": self.binding}
        with io.atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:  # a file object, so that savez adds no ".npz" to the name
                np.savez(fh, logits=self.logits, meta=np.array(json.dumps(meta, sort_keys=True)),
                         logits_fingerprint=np.array(fingerprint(self.logits)))
                fh.flush()
                os.fsync(fh.fileno())
        return path

    @classmethod
    def load(cls, path, *, teacher=None, x=None, views=None, epochs=None):
        """Read a cache written by :meth:`save`; a damaged or edited file is refused, and so is (with the
        arguments given) another teacher, other data, other views or more epochs than it holds (:meth:`check`)."""
        import zipfile

        fix = "Delete it to have it recomputed, or re-create it with tfkd.replay.compute_replay_cache."
        try:
            with np.load(path, allow_pickle=False) as f:
                missing = [k for k in _META_KEYS if k not in f.files]
                if missing:
                    raise ValueError(f"missing keys {missing} (found {sorted(f.files)}); it was not written by "
                                     "ReplayCache.save")
                logits, meta, stored = f["logits"], json.loads(str(f["meta"])), str(f["logits_fingerprint"])
            cache = cls(logits=logits, teacher_fingerprint=meta["teacher"], data_fingerprint=meta["data"],
                        views=ViewConfig.from_dict(meta["views"]))
        except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError, TypeError) as err:
            raise ValueError(f"replay cache {path} is not readable ({type(err).__name__}: {err}): the file is "
                             f"truncated, damaged, of another format or of another tfkd version. {fix}") from None
        if logits.ndim != 3:
            raise ValueError(f"replay cache {path}: logits of shape {logits.shape}, expected [epochs, examples, "
                             f"classes]. {fix}")
        actual = fingerprint(logits)
        if actual != stored or cache.binding != meta.get("binding"):
            raise ValueError(f"replay cache {path}: its logits or binding are not the ones written with it (the "
                             f"file was edited or damaged after it was saved). {fix}")
        cache.check(teacher=teacher, x=x, views=views, epochs=epochs)
        return cache


def _binding(teacher_fp, data_fp, views, shape, dtype) -> str:
    blob = json.dumps({"teacher": teacher_fp, "data": data_fp, "views": views.to_dict(),
                       "shape": [int(s) for s in shape], "dtype": str(np.dtype(dtype))}, sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


def compute_replay_cache(teacher, x, *, views=None, seed=None, epochs, batch_size=256, dtype="float16", path=None,
                         verbose=0) -> ReplayCache:
    """Run ``teacher`` once on every (epoch, example) view, epochs ``0..epochs-1``, and keep its logits.

    Args:
        teacher: a ``keras.Model`` returning logits (or a list of them, ensembled by logit averaging).
        x: the training inputs (numpy), exactly as the students will get them.
        views: a :class:`ViewConfig` (default ``ViewConfig()``: shifts of up to 4 pixels); ``seed`` overrides its
            seed.
        epochs: how many epochs of views to cover; each costs one teacher pass over ``x``.
        batch_size: teacher batch size (the logits do not depend on it beyond float rounding).
        dtype: ``"float16"`` (half the memory; ample for logits) or ``"float32"``.
        path: an ``.npz`` file. If it exists, it is loaded and checked against this teacher, data, views and
            epochs (a mismatch is refused, naming what differs) and no teacher pass runs; else the new cache is
            saved there.
        verbose: print one line per epoch.
    """
    if isinstance(teacher, (list, tuple)):
        teacher = TeacherEnsemble(teacher)
    views = _config(views, seed, {})
    if int(epochs) < 1:
        raise ValueError(f"epochs={epochs} must be >= 1.")
    if dtype not in ("float16", "float32"):
        raise ValueError(f"dtype={dtype!r} must be 'float16' or 'float32'.")
    x = np.asarray(x)
    _check_inputs(views, x)
    if path is not None and os.path.exists(path):
        cache = ReplayCache.load(path, teacher=teacher, x=x, views=views, epochs=epochs)
        if verbose:
            print(f"replay cache: reusing {path} ({cache.epochs} epochs x {cache.num_examples} views; no teacher "
                  "pass)", flush=True)
        return cache
    forward = tf.function(lambda v: teacher(v, training=False), reduce_retracing=True)
    epochs_logits = []
    t0 = time.perf_counter()
    # one pipeline for all epochs, its epoch variable set before each: building one per epoch cost more than a
    # small teacher's forward over the epoch
    ds = _pipeline(x, None, views, epoch=None, batch_size=batch_size, shuffle=False, shuffle_seed=0,
                   drop_remainder=False, autotune=True)
    for e in range(int(epochs)):
        getattr(ds, rng.EPOCH_ATTR).assign(e)
        chunks = [np.asarray(forward(batch), np.float32) for batch in ds]
        logits = np.concatenate(chunks)
        if logits.ndim != 2 or len(logits) != len(x):
            raise ValueError(f"teacher returned outputs of shape {logits.shape} for {len(x)} views; expected "
                             "[num_examples, num_classes] logits.")
        if e == 0:
            check_not_probabilities(logits, "teacher")
        epochs_logits.append(logits)
        if verbose:
            print(f"replay cache: epoch {e + 1}/{epochs}: {len(x)} views through the teacher "
                  f"[{time.perf_counter() - t0:.1f}s]", flush=True)
    stacked = np.stack(epochs_logits)
    stored = stacked.astype(dtype)
    if not np.isfinite(stored).all():
        worst = float(np.nanmax(np.abs(stacked)))
        raise ValueError(f"teacher logits reach {worst:.4g}, beyond {dtype}'s range (or are NaN/inf): pass "
                         "dtype='float32', or check the teacher." if dtype == "float16" else
                         "teacher logits hold NaN or infinite values; check the teacher and its inputs.")
    cache = ReplayCache(logits=stored, teacher_fingerprint=teacher_fingerprint(teacher),
                        data_fingerprint=fingerprint(x), views=views)
    if path is not None:
        cache.save(path)
    return cache


# -- a sweep over one cache ------------------------------------------------------------------------------------------
_ARM_KEYS = ("temperature", "alpha")


def train_arms(cache, x, y, student, arms, *, epochs=None, batch_size=128, shuffle_seed=0, optimizer="adam",
               metrics=None, callbacks=(), verbose=0):
    """Train ``student`` once per arm (``{"temperature": T, "alpha": a}``) on ``cache``'s views: no teacher runs.

    Every arm starts from ``student``'s current weights and a fresh optimizer state, and trains ``epochs``
    (default ``cache.epochs``) epochs, epoch ``e`` on view epoch ``e``. One Distiller and one compiled step serve
    all arms: temperature and alpha live in variables, so changing them retraces nothing; weights, optimizer
    variables and seed generators are put back between arms, so each arm trains exactly as a fresh Distiller
    would. ``optimizer`` is a name or a ``keras.optimizers.Optimizer`` (its state is reset per arm).

    Returns one dict per arm: ``{"arm": ..., "weights": student weights at the end, "history": ...}``; the
    student is left with the last arm's weights.

    Example:

        from tfkd import replay
        cache = replay.compute_replay_cache(teacher, x_train, views=replay.ViewConfig(pad=1), epochs=1)
        arms = [{"temperature": t, "alpha": a} for t in (2.0, 4.0) for a in (0.5, 0.9)]
        results = replay.train_arms(cache, x_train, y_train, student, arms, batch_size=64)
        student.set_weights(results[0]["weights"])   # the student of arm 0
    """
    from tfkd.distiller import Distiller

    arms = [dict(a) for a in arms]
    if not arms:
        raise ValueError("arms=[] is empty; give at least one {'temperature': T, 'alpha': a}.")
    for arm in arms:
        unknown = set(arm) - set(_ARM_KEYS)
        if unknown:
            raise ValueError(f"arm {arm} has unknown keys {sorted(unknown)}; an arm sets {list(_ARM_KEYS)}.")
    epochs = cache.epochs if epochs is None else int(epochs)
    cache.check(epochs=epochs)
    optimizer = keras.optimizers.get(optimizer)
    first = arms[0]
    distiller = Distiller(None, student, temperature=first.get("temperature"), alpha=first.get("alpha"))
    distiller.compile(optimizer=optimizer, metrics=metrics)
    if not optimizer.built:
        optimizer.build(distiller.trainable_variables)
    start_weights = student.get_weights()
    start_optimizer = [np.array(keras.ops.convert_to_numpy(v)) for v in optimizer.variables]
    start_seeds = rng.seed_states(student)
    ds = cache.dataset(x, y, batch_size=batch_size, shuffle_seed=shuffle_seed)
    defaults = {"temperature": distiller.temperature, "alpha": distiller.alpha}
    results = []
    for arm in arms:
        student.set_weights(start_weights)
        for variable, value in zip(optimizer.variables, start_optimizer):
            variable.assign(value)
        rng.restore_seed_states(student, start_seeds)
        distiller.temperature = arm.get("temperature", defaults["temperature"])
        distiller.alpha = arm.get("alpha", defaults["alpha"])
        history = distiller.fit(ds, epochs=epochs, callbacks=[ReplayEpoch(ds), *callbacks], shuffle=False,
                                verbose=verbose)  # ds has its own order
        results.append({"arm": arm, "weights": student.get_weights(), "history": history.history})
    return results
