"""A cheaper live teacher: its forward pass in reduced precision, measured against float32 before it is trusted.

A teacher only runs forward during distillation, so its cost is inference, and inference in ``bfloat16`` (CPUs with
fast bf16 kernels, e.g. AVX512_BF16) or ``float16`` (GPUs) can be much cheaper than in float32. The copy made here
runs Keras's ``mixed_<dtype>`` policy (variables stay float32, compute in the reduced type); the Distiller casts its
logits and features back to float32, so every loss is computed in float32.

Whether it pays off depends on the machine and the model: :func:`choose_teacher_dtype` measures it, side by side,
and keeps a reduced type only if it is faster *and* agrees with float32 on the inputs it is shown.

Example:

    import keras, numpy as np
    from tfkd import precision
    teacher = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(8, 3, activation="relu"),
                                keras.layers.Flatten(), keras.layers.Dense(10)])
    x = np.random.default_rng(0).random((64, 8, 8, 1)).astype("float32")
    fast = precision.reduced_precision_copy(teacher, "bfloat16")
    print(precision.agreement(teacher, fast, x))     # {'top1_agreement': ..., 'max_abs_logit_diff': ...}
    dtype, report = precision.choose_teacher_dtype(teacher, x, rounds=3)
"""

from __future__ import annotations

import time

import numpy as np

TEACHER_DTYPES = ("float32", "bfloat16", "float16")
# A reduced-precision teacher is kept only if its top-1 agrees with float32 on at least this share of the inputs
# it was checked on (and, in choose_teacher_dtype, it is at least this much faster).
MIN_AGREEMENT = 0.99
MIN_SPEEDUP = 1.10


def check_dtype(teacher_dtype, allow_auto=True) -> str:
    """``teacher_dtype`` validated: one of :data:`TEACHER_DTYPES` (or ``"auto"``)."""
    allowed = TEACHER_DTYPES + (("auto",) if allow_auto else ())
    if teacher_dtype is None:
        return "float32"
    if teacher_dtype not in allowed:
        raise ValueError(f"teacher_dtype={teacher_dtype!r} is not supported; expected one of {', '.join(allowed)} "
                         "(None means float32).")
    return teacher_dtype


def reduced_precision_copy(model, dtype):
    """A frozen copy of ``model`` computing in ``dtype`` (Keras policy ``mixed_<dtype>``), with ``model``'s weights.

    ``dtype="float32"`` returns ``model`` itself. The model must be Functional or Sequential (Keras can clone those
    layer by layer); a subclassed model gets a clear error.
    """
    import keras

    dtype = check_dtype(dtype, allow_auto=False)
    if dtype == "float32":
        return model
    from tfkd.features import is_graph_model

    if not is_graph_model(model):
        raise ValueError(f"teacher_dtype={dtype!r} needs a Functional or Sequential teacher, which Keras can rebuild "
                         f"in another precision; {model.name!r} is a subclassed {type(model).__name__}. Use "
                         "teacher_dtype='float32', or build the teacher under "
                         f"keras.mixed_precision.set_dtype_policy('mixed_{dtype}') yourself.")
    policy = keras.DTypePolicy(f"mixed_{dtype}")

    def rebuild(layer):
        config = layer.get_config()
        config["dtype"] = policy
        return layer.__class__.from_config(config)

    copy = keras.models.clone_model(model, clone_function=rebuild)
    copy.set_weights(model.get_weights())
    copy.trainable = False
    return copy


def sync_weights(source, copy):
    """Copy ``source``'s current weights into its reduced-precision ``copy`` (no-op when they are the same model)."""
    if copy is not source:
        copy.set_weights(source.get_weights())


def _logits(model, x, batch_size=256):
    import tensorflow as tf

    out = [tf.cast(model(x[i:i + batch_size], training=False), tf.float32).numpy() for i in range(0, len(x),
                                                                                              batch_size)]
    return np.concatenate(out)


def agreement(reference, copy, x) -> dict:
    """Top-1 agreement and largest absolute logit difference of ``copy`` against ``reference`` on inputs ``x``."""
    a, b = _logits(reference, x), _logits(copy, x)
    same = a.argmax(-1) == b.argmax(-1) if a.shape[-1] > 1 else (a > 0) == (b > 0)
    return {"top1_agreement": float(np.mean(same)), "max_abs_logit_diff": float(np.max(np.abs(a - b)))}


def _compiled_forward(model):
    import tensorflow as tf

    return tf.function(lambda batch: model(batch, training=False))


def _forward_time(forward, batch):
    """Mean seconds of 3 calls of an already traced ``forward`` on ``batch``."""
    start = time.perf_counter()
    for _ in range(3):
        forward(batch).numpy()
    return (time.perf_counter() - start) / 3


def choose_teacher_dtype(teacher, x, candidates=None, batch_size=128, rounds=5, min_agreement=MIN_AGREEMENT,
                         min_speedup=MIN_SPEEDUP):
    """(chosen dtype, report): the fastest teacher precision whose top-1 agrees with float32 on ``x``.

    Each candidate's forward on one ``batch_size`` batch of ``x`` is timed interleaved with float32's for
    ``rounds`` rounds (median); a candidate is kept if it agrees with float32 on at least ``min_agreement`` of
    ``x`` and is at least ``min_speedup`` times faster. The default candidates are float16 where a GPU is visible,
    and bfloat16 otherwise. The report holds every candidate's speed-up and agreement, for the log.
    """
    import tensorflow as tf

    x = np.asarray(x)[: max(batch_size, 512)]
    if candidates is None:
        candidates = ("float16",) if tf.config.list_physical_devices("GPU") else ("bfloat16",)
    copies = {"float32": teacher, **{c: reduced_precision_copy(teacher, c) for c in candidates}}
    batch = tf.constant(x[:batch_size])
    forwards = {name: _compiled_forward(model) for name, model in copies.items()}
    for forward in forwards.values():
        forward(batch)  # trace and warm up once, outside the timed rounds
    times = {name: [] for name in copies}
    for r in range(rounds):
        order = list(copies) if r % 2 == 0 else list(copies)[::-1]
        for name in order:
            times[name].append(_forward_time(forwards[name], batch))
    base = float(np.median(times["float32"]))
    report = {"float32_ms": base * 1e3, "candidates": {}}
    chosen, best = "float32", 1.0
    for name in candidates:
        speedup = base / float(np.median(times[name]))
        agree = agreement(teacher, copies[name], x)
        ok = agree["top1_agreement"] >= min_agreement and speedup >= min_speedup
        report["candidates"][name] = {"speedup": speedup, **agree, "accepted": ok}
        if ok and speedup > best:
            chosen, best = name, speedup
    report["chosen"] = chosen
    return chosen, report
