"""Stages that several recipes share: data with a validation split, teacher, cached logits, a student arm, export.

Each function is glue over ``tfkd`` (data, models, training, export) that returns a JSON-able result for
:meth:`RunContext.stage`; the training itself is always :mod:`tfkd.training`, never a loop written here.
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass
class Data:
    x_fit: np.ndarray
    y_fit: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    input_shape: tuple
    num_classes: int
    summary: str
    kind: str = "images"  # or "features": tabular inputs, fed as stored


def split_validation(x, y, fraction, seed):
    """A stratified (x_fit, y_fit, x_val, y_val) split, the same for a given seed on every machine."""
    rng = np.random.default_rng(seed)
    val_idx = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        val_idx.extend(rng.permutation(idx)[: max(1, int(round(len(idx) * fraction)))])
    mask = np.zeros(len(y), bool)
    mask[np.asarray(val_idx)] = True
    return x[~mask], y[~mask], x[mask], y[mask]


def load_options(cfg) -> dict:
    """The image-folder / tfds options of ``cfg`` that were given, as :func:`tfkd.data.load` keywords."""
    options = {"image_size": tuple(getattr(cfg, "image_size", None) or ()) or None,
               "color_mode": getattr(cfg, "color_mode", None)}
    return {k: v for k, v in options.items() if v is not None}


def check_input_scale(cfg, splits):
    """``--input-scale 255`` scales pixels; tabular features are fed as stored, so it is refused for them."""
    if getattr(cfg, "input_scale", "unit") == "255" and getattr(splits, "kind", "images") != "images":
        raise ValueError(f"input_scale=255 multiplies pixels by 255, but {cfg.dataset!r} holds {splits.kind} "
                         f"({splits.summary()}); they are fed as stored: use --input-scale unit.")


def load_splits(cfg):
    """The :class:`tfkd.data.Splits` of ``cfg.dataset``, cut to ``--n-train``/``--n-test`` (a subset fixed by
    ``cfg.seed``) when either is given."""
    from tfkd import data as data_lib

    splits = data_lib.load(cfg.dataset, data_dir=cfg.data_dir, **load_options(cfg))
    if cfg.n_train or cfg.n_test:
        splits = data_lib.subset(splits, n_train=cfg.n_train, n_test=cfg.n_test, seed=cfg.seed)
    return splits


def load_data(cfg) -> Data:
    splits = load_splits(cfg)
    x_fit, y_fit, x_val, y_val = split_validation(splits.x_train, splits.y_train, cfg.val_fraction, cfg.seed)
    x_test = splits.x_test
    scale = getattr(cfg, "input_scale", "unit")
    check_input_scale(cfg, splits)
    if scale == "255":  # every model (teacher, students, the exported TFLite) is fed [0, 255] pixels
        x_fit, x_val, x_test = (np.asarray(x, np.float32) * 255.0 for x in (x_fit, x_val, x_test))
    if getattr(splits, "kind", "images") == "images":
        fed = f"pixels in {'[0, 255]' if scale == '255' else '[0, 1]'} (--input-scale {scale})"
    else:
        fed = (f"{int(np.prod(splits.input_shape))} {splits.kind} as stored (range [{float(x_fit.min()):.3g}, "
               f"{float(x_fit.max()):.3g}])")
    classes = f"{splits.num_classes} classes"
    if splits.class_names:
        from tfkd.data import abbreviate_names

        classes += f" ({abbreviate_names(splits.class_names)})"
    summary = (f"data: {splits.name} from {splits.source}: {len(x_fit)} train / {len(x_val)} validation (curves "
               f"only) / {len(splits.x_test)} test, input {tuple(splits.input_shape)}, {fed}, {classes}")
    print(summary, flush=True)
    return Data(x_fit, y_fit.astype("int32"), x_val, y_val.astype("int32"), x_test,
                splits.y_test.astype("int32"), tuple(splits.input_shape), int(splits.num_classes), summary,
                getattr(splits, "kind", "images"))


def progress(ctx, name, epochs) -> list:
    """The callbacks that show a training's progress: a :class:`tfkd.progress.StageProgress` bar (in place on a
    terminal; in a log its one-line summary joins the stage's closing line), or none with ``--verbose``, where
    Keras's own per-epoch bars show."""
    if ctx.verbose:
        return []
    from tfkd.progress import StageProgress

    return [StageProgress(name, epochs, on_summary=getattr(ctx, "stage_note", None))]


# Training-set label metrics of a Distiller that trains on mixed images (mixup): the label belongs to one of the two
# images, so these measure nothing about the student. Renamed, so no reader takes them for accuracy; validation
# metrics (clean images) keep their names.
MIXED_VIEW_METRICS = {"accuracy": "mixed_view_accuracy", "hard_loss": "mixed_view_hard_loss"}
MIXED_VIEW_NOTE = ("training-set accuracy (against the label of one of the two images) and hard_loss (against the "
                   "mixed labels) are computed on mixed (mixup) images, so they are logged as mixed_view_accuracy "
                   "and mixed_view_hard_loss and are not comparable with clean-image numbers; val_accuracy and "
                   "val_hard_loss are on clean images")


def mixed_view_metrics():
    """A callback renaming :data:`MIXED_VIEW_METRICS` in every epoch's logs (history, CSV, TensorBoard, progress).

    Placed first among a ``fit``'s callbacks, every later callback sees the new names.
    """
    import keras

    class MixedViewMetrics(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            for old, new in MIXED_VIEW_METRICS.items():
                if logs is not None and old in logs:
                    logs[new] = logs.pop(old)

    return MixedViewMetrics()


def describe(model) -> dict:
    from tfkd import models

    d = models.describe(model)
    return {"params": int(d["params"]), "flops": int(d["flops"]), "float32_bytes": int(d["float32_bytes"])}


def build(spec, data: Data, seed):
    from tfkd import models

    return models.build(spec, data.input_shape, data.num_classes, seed=seed)


def teacher_stage(cfg, ctx, data: Data, name="teacher", spec=None, epochs=None, seed=None) -> dict:
    """Train the teacher from a spec, or load it from a ``.keras`` file (safe mode); save it as ``name``."""
    import keras

    from tfkd import training

    spec = spec or cfg.teacher
    if spec.endswith(".keras"):
        # safe_mode, and "truncated or corrupted" for a damaged archive where Keras would say "File not found"
        from tfkd.loading import load_model

        teacher = load_model(spec, safe_mode=True)
        source = f"loaded from {spec}"
        # A teacher trained elsewhere may expect another input range: find out before distilling from it.
        from tfkd.checks import check_teacher

        images = data.kind == "images"
        check = check_teacher(teacher, data.x_val, data.y_val, num_classes=data.num_classes,
                              input_scale=getattr(cfg, "input_scale", "unit") if images else None,
                              allow_weak=getattr(cfg, "allow_weak_teacher", False), what=f"teacher {spec}")
        source += f" (validation accuracy {check['val_accuracy']:.4f}"
        if images:
            source += f"; at the other input scale {check['other_scale_val_accuracy']:.4f}"
        source += ")"
    else:
        seed = cfg.seed if seed is None else seed
        keras.utils.set_random_seed(seed)
        teacher = build(spec, data, seed)
        training.train_supervised(teacher, data.x_fit, data.y_fit, epochs=epochs or cfg.teacher_epochs,
                                  batch_size=cfg.batch_size, lr=cfg.lr, validation_data=(data.x_val, data.y_val),
                                  checkpoint_dir=ctx.checkpoint_dir(name), log_dir=ctx.log_dir(name), label=name,
                                  verbose=int(ctx.verbose),
                                  callbacks=progress(ctx, name, epochs or cfg.teacher_epochs))
        source = f"trained here from {spec}"
    path = ctx.save_model(teacher, name)
    return {"accuracy": training.accuracy(teacher, data.x_test, data.y_test), "describe": describe(teacher),
            "path": path, "source": source}


@dataclasses.dataclass
class LogitsCache:
    """Teacher logits for the fit and validation sets, and the teacher's test predictions (for agreement)."""

    fit: object
    val: object
    test_pred: np.ndarray


def logits_cache_stage(ctx, teacher, data: Data, name="teacher_logits") -> LogitsCache:
    """Run the teacher once over fit/val/test; the files survive a resume and are bound to their inputs."""
    from tfkd.teachers import TeacherCache, cache_teacher_logits

    paths = {k: ctx.path("cache", f"{name}_{k}.npz") for k in ("fit", "val")}
    test_path = ctx.path("cache", f"{name}_test_pred.npy")

    def compute():
        for key, x in (("fit", data.x_fit), ("val", data.x_val)):
            cache_teacher_logits(teacher, x).save(paths[key])
        from tfkd import io

        with io.atomic_path(test_path) as tmp:
            np.save(tmp, teacher.predict(data.x_test, verbose=0, batch_size=512).argmax(-1))
        return {k: ctx.relative(p) for k, p in paths.items()}

    ctx.stage(name, compute)
    return LogitsCache(TeacherCache.load(paths["fit"]), TeacherCache.load(paths["val"]), np.load(test_path))


REPLAYED_VIEWS = ("none", "shift", "shift_flip")  # view kinds a tfkd.replay.ViewConfig expresses


def replay_views(kind, data: Data, *, seed, mixup=0.0):
    """The :class:`tfkd.replay.ViewConfig` of a recipe's view ``kind``: ``none`` (mixup only, if any), ``shift``
    (random shifts of up to a tenth of the side, zero fill) or ``shift_flip`` (also horizontal flips: photos, not
    digits or text), with per-example mixup at Beta(``mixup``, ``mixup``)."""
    from tfkd import replay

    if kind not in REPLAYED_VIEWS:
        raise ValueError(f"views={kind!r} cannot be replayed; expected one of {', '.join(REPLAYED_VIEWS)}.")
    low, high = float(np.min(data.x_fit)), float(np.max(data.x_fit))
    pad = max(1, round(0.1 * data.x_fit.shape[1])) if kind.startswith("shift") else 0
    return replay.ViewConfig(seed=seed, pad=pad, flip=kind == "shift_flip", mixup=mixup,
                             value_range=(low, high) if low < high else (low, low + 1))


@dataclasses.dataclass(frozen=True, eq=False)
class ReplayedViews:
    """Teacher logits for replayed augmented views of the fit set (a :class:`tfkd.replay.ReplayCache`), and the
    :class:`LogitsCache` of the clean images, whose validation logits and test predictions the arms use."""

    fit: object
    clean: LogitsCache


def replay_stage(ctx, teacher, data: Data, views, epochs, clean: LogitsCache, name="replay") -> tuple:
    """Run the teacher once over ``epochs`` epochs of replayed ``views`` of the fit set (:mod:`tfkd.replay`).

    The logits go to ``cache/<name>.npz``, bound to the teacher, the data, the views and the epochs: a resumed run
    loads them, and a changed teacher, view seed or data is refused. Returns ``(ReplayedViews, info)``; ``info``
    (recorded as stage ``name``) counts the teacher's views and seconds.
    """
    import time

    from tfkd import replay

    path = ctx.path("cache", f"{name}.npz")
    held = {}

    def compute():
        t0 = time.perf_counter()
        held["cache"] = replay.compute_replay_cache(teacher, data.x_fit, views=views, epochs=epochs, path=path,
                                                    verbose=int(ctx.verbose))
        return {"path": ctx.relative(path), "views": views.describe(), "epochs": int(epochs),
                "teacher_views": int(epochs) * len(data.x_fit), "teacher_seconds": time.perf_counter() - t0}

    info = ctx.stage(name, compute)
    cache = held.get("cache") or replay.ReplayCache.load(path, teacher=teacher, x=data.x_fit, views=views,
                                                         epochs=epochs)
    return ReplayedViews(cache, clean), info


@dataclasses.dataclass(frozen=True, eq=False)
class Arm:
    """One student arm: its name, seed and budget, and what teaches it; built by one of three constructors.

    - :meth:`labels_only`: cross-entropy on the labels (optionally smoothed), no teacher;
    - :meth:`from_cache`: distilled from a :class:`LogitsCache` (teacher logits computed once);
    - :meth:`live`: distilled from a live teacher model (feature methods, or a teacher that sees augmented views);
    - :meth:`replayed`: distilled from :class:`ReplayedViews` (augmented views whose teacher logits were computed
      once, :mod:`tfkd.replay`), so seeds, sweep arms and trials on the same views share one teacher pass.

    ``name`` names the run's model, checkpoint and log folders; ``spec`` and ``epochs`` default to the config's
    ``student`` and ``epochs``. ``teacher_test_pred`` (the teacher's test predictions) gives the arm's agreement
    with the teacher; a cache carries its own. Compared by identity (it holds arrays and models).

    Example:

        arm = Arm.from_cache(f"kd_seed{s}", seed, cache, temperature=4.0, alpha=0.5)
        result = student_stage(cfg, ctx, data, arm)
    """

    name: str
    seed: int
    teacher: object = None  # None (labels only), a LogitsCache, ReplayedViews, or a Keras model
    temperature: float | None = None
    alpha: float | None = None
    alpha_decay_start: float | None = None
    spec: str | None = None
    epochs: int | None = None
    distill_loss: str = "kl"
    label_smoothing: float = 0.0
    augment: object = None
    method: str | None = None
    keep_model: bool = True
    teacher_test_pred: np.ndarray | None = None
    lr: float | None = None  # default: the config's --lr
    setting: dict | None = None  # a setting searched by tfkd.tuning (method and knobs) instead of temperature/alpha

    def __post_init__(self):
        if self.teacher is None:
            taught = {"temperature": self.temperature, "alpha": self.alpha, "alpha_decay_start": self.alpha_decay_start,
                      "augment": self.augment, "method": self.method}
            given = [k for k, v in taught.items() if v is not None]
            if given:
                raise ValueError(f"arm {self.name!r} has no teacher, so {', '.join(given)} would be ignored; give a "
                                 "teacher (Arm.from_cache or Arm.live) or drop them.")
        elif self.label_smoothing:
            raise ValueError(f"arm {self.name!r}: label_smoothing={self.label_smoothing} applies to labels-only arms "
                             "(Arm.labels_only); a distilled arm's hard loss is plain cross-entropy.")

    @classmethod
    def labels_only(cls, name, seed, *, label_smoothing=0.0, spec=None, epochs=None, keep_model=True,
                    teacher_test_pred=None, lr=None) -> "Arm":
        """Cross-entropy on the labels (``label_smoothing`` > 0: on smoothed one-hot targets)."""
        return cls(name, seed, label_smoothing=label_smoothing, spec=spec, epochs=epochs, keep_model=keep_model,
                   teacher_test_pred=teacher_test_pred, lr=lr)

    @classmethod
    def from_cache(cls, name, seed, cache: "LogitsCache", *, temperature=None, alpha=None, alpha_decay_start=None,
                   method=None, distill_loss="kl", spec=None, epochs=None, keep_model=True, setting=None,
                   lr=None) -> "Arm":
        """Distilled from cached teacher logits: KD at ``temperature``/``alpha``, a logit ``method``, or a
        ``setting`` chosen by a search (:func:`tfkd.tuning.best_setting`: method, knobs, ``lr``).

        ``alpha_decay_start``: alpha holds until that fraction of training, then falls linearly to 0.
        """
        if (setting is None) == (temperature is None or alpha is None):
            raise ValueError(f"arm {name!r}: give temperature and alpha, or a searched setting, not both or neither.")
        if setting is not None:
            lr = setting["lr"] if lr is None else lr
        return cls(name, seed, teacher=cache, temperature=temperature, alpha=alpha,
                   alpha_decay_start=alpha_decay_start, method=method, distill_loss=distill_loss, spec=spec,
                   epochs=epochs, keep_model=keep_model, teacher_test_pred=cache.test_pred, setting=setting, lr=lr)

    @classmethod
    def live(cls, name, seed, teacher, *, temperature, alpha, method=None, augment=None, alpha_decay_start=None,
             distill_loss="kl", spec=None, epochs=None, keep_model=True, teacher_test_pred=None) -> "Arm":
        """Distilled from a live teacher model, as feature methods need (``method``, e.g. ``"at"``) and ``augment``
        does (a Keras layer that gives teacher and student the same random view of every batch: function matching)."""
        return cls(name, seed, teacher=teacher, temperature=temperature, alpha=alpha, method=method, augment=augment,
                   alpha_decay_start=alpha_decay_start, distill_loss=distill_loss, spec=spec, epochs=epochs,
                   keep_model=keep_model, teacher_test_pred=teacher_test_pred)

    @classmethod
    def replayed(cls, name, seed, views: ReplayedViews, *, temperature, alpha, spec=None, epochs=None,
                 keep_model=True) -> "Arm":
        """Distilled on replayed augmented views (epoch ``e`` of training on view epoch ``e``), from the logits the
        teacher gave those very views; validated on the clean validation images and their cached logits."""
        return cls(name, seed, teacher=views, temperature=temperature, alpha=alpha, spec=spec, epochs=epochs,
                   keep_model=keep_model, teacher_test_pred=views.clean.test_pred)

    @property
    def kind(self) -> str:
        """``"labels"``, ``"cache"``, ``"replay"`` or ``"live"``: what teaches this arm."""
        if self.teacher is None:
            return "labels"
        if isinstance(self.teacher, ReplayedViews):
            return "replay"
        return "cache" if isinstance(self.teacher, LogitsCache) else "live"


def student_stage(cfg, ctx, data: Data, arm: Arm) -> dict:
    """Train one student :class:`Arm`: on labels, from a :class:`LogitsCache`, or from a live model.

    An arm's ``augment`` (a Keras layer) gives a live teacher and the student the same random view of every batch
    (function matching). Its ``method`` (a name of :data:`tfkd.terms.METHODS`, e.g. ``"dkd"`` or ``"at"``)
    replaces the ``temperature``/``alpha`` KD objective by that method's terms; feature methods need a live
    teacher. Returns test accuracy, agreement with the teacher on the test set, the history and the model
    description.
    """
    import keras

    from tfkd import schedules, training
    from tfkd.teachers import fingerprint

    name, seed = arm.name, arm.seed
    keras.utils.set_random_seed(seed)
    student = build(arm.spec or cfg.student, data, seed)
    taught_by = None
    epochs = arm.epochs or cfg.epochs
    common = dict(epochs=epochs, batch_size=cfg.batch_size, lr=arm.lr or cfg.lr,
                  checkpoint_dir=ctx.checkpoint_dir(name), log_dir=ctx.log_dir(name), label=name,
                  verbose=int(ctx.verbose))
    notes = []
    if arm.kind == "labels":
        history = training.train_supervised(student, data.x_fit, data.y_fit, label_smoothing=arm.label_smoothing,
                                            validation_data=(data.x_val, data.y_val),
                                            callbacks=progress(ctx, name, epochs), **common)
    else:
        callbacks = []
        from tfkd.augment import mixes

        if arm.augment is not None and mixes(arm.augment):
            callbacks.append(mixed_view_metrics())
            notes.append(MIXED_VIEW_NOTE)
        if arm.alpha_decay_start is not None and epochs >= 2:
            # alpha holds until `begin`, then falls linearly to 0 at the last epoch.
            begin = min(int(arm.alpha_decay_start * (epochs - 1)), epochs - 2)
            callbacks.append(schedules.AlphaSchedule(schedules.linear_decay(arm.alpha, 0.0, begin, epochs - 1)))
        y, batch_size = data.y_fit, cfg.batch_size
        if arm.kind == "cache":
            cache = arm.teacher
            x, val, live = cache.fit.inputs(data.x_fit), (cache.val.inputs(data.x_val), data.y_val), None
            taught_by = fingerprint(cache.fit.logits)  # which logits this student learned from, for the report
        elif arm.kind == "replay":
            views = arm.teacher.fit
            # the pipeline orders, batches and views itself, and under mixup yields mixed one-hot labels
            x, y, batch_size, live = views.dataset(data.x_fit, data.y_fit, batch_size=cfg.batch_size,
                                                   shuffle_seed=seed), None, None, None
            if views.views.mixup:
                callbacks.insert(0, mixed_view_metrics())
                notes.append(MIXED_VIEW_NOTE)
            val = (arm.teacher.clean.val.inputs(data.x_val), views.labels(data.y_val))
            taught_by = f"replayed views {views.binding}"
        else:
            x, val, live = data.x_fit, (data.x_val, data.y_val), arm.teacher
            taught_by = live.name
        extra = {"augment": arm.augment} if arm.augment is not None else {}
        if arm.setting is not None:
            from tfkd import tuning

            extra["terms"], extra["hard_weight"] = tuning.setting_terms(arm.setting, epochs)
        elif arm.method is not None:
            from tfkd import terms as kd_terms

            extra["terms"], extra["hard_weight"] = kd_terms.method_terms(
                arm.method, live, student, temperature=arm.temperature if arm.temperature is not None else 4.0,
                alpha=arm.alpha if arm.alpha is not None else 0.5, epochs=epochs)
        callbacks += progress(ctx, name, epochs)
        _, history = training.train_distilled(live, student, x, y, temperature=arm.temperature,
                                              alpha=arm.alpha, distill_loss=arm.distill_loss, validation_data=val,
                                              callbacks=callbacks, **{**common, "batch_size": batch_size}, **extra)
    pred = student.predict(data.x_test, verbose=0, batch_size=512).argmax(-1)
    result = {"accuracy": float(np.mean(pred == data.y_test)), "history": history, "describe": describe(student),
              "seed": seed, "taught_by": taught_by, "notes": notes}
    result["agreement"] = float(np.mean(pred == arm.teacher_test_pred)) if arm.teacher_test_pred is not None \
        else None
    if arm.keep_model:
        result["path"] = ctx.save_model(student, name)
    return result


def arm_stage(cfg, ctx, data: Data, stage, arm: Arm) -> dict:
    """:func:`student_stage` for ``arm`` as the run stage ``stage``: trained once, its result recorded; a resumed
    run that finished the stage gets the recorded result back without training."""
    return ctx.stage(stage, lambda: student_stage(cfg, ctx, data, arm))


def export_table(export_info, title) -> dict:
    """The report table of an :func:`export_stage` result: one row a format, with what its input is fed."""
    return {"title": title,
            "columns": ["format", "size (bytes)", "gzip (bytes)", "accuracy", "agreement with Keras", "max abs diff",
                        "latency median (ms)", "input"],
            "rows": [[e["format"], f"{e['size_bytes']:,}", f"{e['gzip_bytes']:,}", f"{e['accuracy']:.4f}",
                      f"{e['agreement']:.4f}", f"{e['max_abs_diff']:.3g}", f"{e['latency_ms']:.3f}",
                      describe_input(e.get("input"))] for e in export_info["formats"]]}


def describe_input(info) -> str:
    """``"[0, 255] as int8, scale 1, zero point -128"``: an export row's input range and TFLite quantization."""
    if not info:
        return "—"
    low, high = info["range"]
    text = f"[{low:.4g}, {high:.4g}] as {info['tensor_dtype']}"
    if info.get("scale"):
        text += f", scale {info['scale']:.4g}, zero point {info['zero_point']}"
    return text


def export_stage(cfg, ctx, data: Data, model_name) -> dict:
    """Export a saved student to float32 TFLite and ``cfg.quantize`` TFLite; validate both on the test set."""
    from tfkd.export import benchmark, to_tflite, validate

    model = ctx.load_model(model_name)
    rows = []
    for quantize in dict.fromkeys(["none", cfg.quantize]):
        path = ctx.path("export", f"{model_name}_{quantize}.tflite")
        # a seeded random 500 of the whole training split: a folder's images come sorted by class, so its first
        # 500 would calibrate the ranges of a few classes only
        to_tflite(model, path, quantize=quantize, representative_data=data.x_fit, num_calibration=500)
        check = validate(model, path, data.x_test, data.y_test)
        bench = benchmark(path, num_threads=1)
        rows.append({"format": f"tflite {quantize}", "path": ctx.relative(path),
                     "size_bytes": int(bench["size_bytes"]), "gzip_bytes": int(bench["gzip_bytes"]),
                     "accuracy": float(check["accuracy"]), "agreement": float(check["agreement"]),
                     "max_abs_diff": float(check["max_abs_diff"]), "latency_ms": float(bench["latency_median_ms"]),
                     "input": _tflite_input(path, model, data.x_test)})
    return {"model": model_name, "formats": rows}


def _tflite_input(path, model, x) -> dict:
    """What the exported file is fed: the data's range, the input tensor's dtype and, if integer, its quantization
    (the fields of ``tfkd.export``'s report rows)."""
    from tfkd.export import input_specs, tflite_inputs

    return tflite_inputs(path, input_specs(model), [{"range": [float(np.min(x)), float(np.max(x))]}])[0]
