"""keras-tuner search for student (and teacher-assistant) sizes, every trial trained by distillation, under a budget.

A candidate over the parameter or TFLite-size budget is refused before any training (keras-tuner records the trial
as failed); one over the latency budget is trained but scored as infeasible. The result is the accuracy-vs-size
frontier, not only the single best model.

Example:

    from types import SimpleNamespace
    from tfkd import tuning
    split = SimpleNamespace(x_fit=x[:192], y_fit=y[:192], x_val=x[192:], y_val=y[192:], input_shape=(8, 8, 1),
                            num_classes=10)
    fit_cache = tfkd.cache_teacher_logits(teacher, split.x_fit)
    val_cache = tfkd.cache_teacher_logits(teacher, split.x_val)
    space = tuning.SearchSpace(family="mlp", mlp_widths=(16, 32, 64), mlp_layers=(1, 2))   # or plain_cnn depths
    hm = tuning.DistilledStudent(space, fit_cache, val_cache, split, budget=tuning.Budget(max_params=50_000))
    tuner = tuning.make_tuner("random", hm, directory="runs/t/tuner", max_trials=2)   # or "hyperband", "bayesian"
    tuner.search(epochs=1)
    table = tuning.trials_table(tuner); tuning.pareto_frontier(table)
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np

TUNERS = ("hyperband", "bayesian", "random")


@dataclasses.dataclass(frozen=True)
class Budget:
    """Limits a student must meet; ``None`` means no limit."""

    max_params: int | None = None
    max_float32_bytes: int | None = None   # float32 TFLite file size
    max_int8_bytes: int | None = None      # int8 TFLite file size
    max_latency_ms: float | None = None    # measured float32 TFLite latency (median, 1 thread)

    def needs_tflite(self):
        return any(v is not None for v in (self.max_float32_bytes, self.max_int8_bytes, self.max_latency_ms))


@dataclasses.dataclass(frozen=True)
class SearchSpace:
    """Architecture choices of one ``tfkd.models`` family, plus optional temperature and alpha."""

    family: str = "plain_cnn"
    depths: tuple = (2, 4, 6)                    # plain_cnn / resnet_cifar
    width_multipliers: tuple = (0.5, 1.0)        # plain_cnn / resnet_cifar / mobile_cnn
    mlp_widths: tuple = (16, 32, 64, 128)        # mlp: one hidden layer of these widths ...
    mlp_layers: tuple = (1, 2)                   # ... repeated this many times
    temperatures: tuple = ()                     # empty: fixed temperature
    alphas: tuple = ()                           # empty: fixed alpha

    def spec(self, hp):
        """(spec string, builder options) for the hyperparameters ``hp``."""
        if self.family == "mlp":
            width = hp.Choice("width", list(self.mlp_widths))
            layers = hp.Choice("layers", list(self.mlp_layers))
            return "mlp:" + "-".join([str(width)] * layers), {}
        if self.family == "mobile_cnn":
            return f"mobile_cnn:{hp.Choice('width_multiplier', list(self.width_multipliers))}", {}
        if self.family in ("plain_cnn", "resnet_cifar"):
            depth = hp.Choice("depth", list(self.depths))
            wm = hp.Choice("width_multiplier", list(self.width_multipliers))
            return f"{self.family}:{depth}", ({"width_multiplier": wm} if wm != 1.0 else {})
        raise ValueError(f"family={self.family!r} is not searchable; expected plain_cnn, resnet_cifar, mlp or "
                         "mobile_cnn.")


def _kt():
    import keras_tuner

    return keras_tuner


def _hypermodel_base():
    return _kt().HyperModel


SCHEDULES = ("constant", "cosine")


def _adam(lr, schedule, epochs, n_fit, batch_size):
    """Adam at ``lr``, constant or cosine-decayed to 0 over the trial's ``epochs`` (how a model one cares about
    is trained; both searches take the same ``schedule``, so neither arm is handicapped)."""
    import keras

    from tfkd import training

    if schedule == "constant":
        return keras.optimizers.Adam(lr)
    return training.cosine_adam(lr, epochs=epochs, examples=n_fit, batch_size=batch_size)


def _check_schedule(schedule):
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule={schedule!r}; expected one of {', '.join(SCHEDULES)}.")
    return schedule


def _fit(model, fit_cache, val_cache, data, batch_size, seed, callbacks=None, **kwargs):
    """``model.fit`` of one trial: ``data.x_fit`` with the cached logits of a :class:`tfkd.teachers.TeacherCache`,
    or a :class:`tfkd.replay.ReplayCache`'s augmented views of it (epoch ``e`` on view epoch ``e``) paired with the
    logits the teacher gave those views: no trial runs the teacher. Validation is on the clean ``data.x_val`` with
    ``val_cache``'s logits."""
    from tfkd.replay import ReplayCache, ReplayEpoch

    val_inputs = val_cache.inputs(data.x_val)
    callbacks = list(callbacks or [])
    if isinstance(fit_cache, ReplayCache):
        ds = fit_cache.dataset(data.x_fit, data.y_fit, batch_size=batch_size, shuffle_seed=seed)
        return model.fit(ds, shuffle=False, validation_data=(val_inputs, fit_cache.labels(data.y_val)),
                         callbacks=[ReplayEpoch(ds), *callbacks], **kwargs)
    return model.fit(fit_cache.inputs(data.x_fit), data.y_fit, batch_size=batch_size,
                     validation_data=(val_inputs, data.y_val), callbacks=callbacks, **kwargs)


class DistilledStudent(_hypermodel_base()):
    """A HyperModel whose trials distil from cached teacher logits; objective: the student's validation accuracy.

    ``fit_cache``/``val_cache`` are :class:`tfkd.teachers.TeacherCache` objects for ``data.x_fit``/``data.x_val``
    (any object with ``x_fit, y_fit, x_val, y_val, input_shape, num_classes``). ``fit_cache`` may instead be a
    :class:`tfkd.replay.ReplayCache` of ``data.x_fit``: every trial then trains on the same replayed augmented views,
    whose teacher logits were computed once for the whole search.

    ``measure(model, latency) -> dict`` gives a candidate's TFLite facts (``float32_bytes``, ``int8_bytes`` and,
    when ``latency`` is true, ``latency_ms``); it is needed only when ``budget`` limits a TFLite size or latency.
    Converting is export's business, so this module takes it as an argument: ``tfkd run tune`` passes
    :func:`tfkd.recipes.tune.tflite_facts` (built on :mod:`tfkd.export`).
    """

    def __init__(self, space: SearchSpace, fit_cache, val_cache, data, *, budget=Budget(), temperature=4.0,
                 alpha=0.5, lr=1e-3, batch_size=64, seed=0, measure=None):
        super().__init__(name="distilled_student", tunable=True)
        if budget.needs_tflite() and not callable(measure):
            raise ValueError(f"budget={budget} limits a TFLite size or latency, so measure= must be a function "
                             f"(model, latency) -> dict of TFLite facts; got {measure!r}. Pass "
                             "tfkd.recipes.tune.tflite_facts, or drop the TFLite limits from the budget.")
        self.measure = measure
        self.space, self.fit_cache, self.val_cache, self.data = space, fit_cache, val_cache, data
        self.budget, self.temperature, self.alpha, self.lr = budget, temperature, alpha, lr
        self.batch_size, self.seed = batch_size, seed

    def build(self, hp):
        """The candidate student inside a compiled Distiller (so tuner checkpoints hold exactly its weights)."""
        import keras

        from tfkd import models
        from tfkd.distiller import Distiller

        spec, options = self.space.spec(hp)
        temperature = hp.Choice("temperature", list(self.space.temperatures)) if self.space.temperatures \
            else self.temperature
        alpha = hp.Choice("alpha", list(self.space.alphas)) if self.space.alphas else self.alpha
        student = models.build(spec, self.data.input_shape, self.data.num_classes, seed=self.seed, **options)
        facts = {"spec": spec, **options, "params": int(models.describe(student)["params"])}
        if self.budget.needs_tflite():
            facts.update(self.measure(student, latency=self.budget.max_latency_ms is not None))
        reason = over_budget(facts, self.budget)
        if reason and reason != "latency":
            # Refused before any training: keras-tuner marks the trial failed and moves on.
            raise _kt().errors.FailedTrialError(f"{spec} {options or ''} is over budget: {reason}")
        distiller = Distiller(None, student, temperature=temperature, alpha=alpha)
        distiller.compile(optimizer=keras.optimizers.Adam(self.lr), metrics=["accuracy"])
        distiller.tfkd_facts = {**facts, "feasible": not reason}
        return distiller

    def fit(self, hp, model, *args, callbacks=None, **kwargs):
        history = _fit(model, self.fit_cache, self.val_cache, self.data, self.batch_size, self.seed, callbacks,
                       epochs=kwargs.get("epochs", 1), initial_epoch=kwargs.get("initial_epoch", 0),
                       verbose=kwargs.get("verbose", 0))
        facts = getattr(model, "tfkd_facts", None) or self._facts(model)
        val = float(history.history["val_accuracy"][-1])
        # A latency-infeasible candidate still reports its accuracy, but scores 0 so it cannot be chosen.
        return {"val_accuracy": val if facts["feasible"] else 0.0, "raw_val_accuracy": val,
                "params": float(facts["params"])}

    def _facts(self, distiller):
        from tfkd import models

        facts = {"params": int(models.describe(distiller.student)["params"])}
        if self.budget.max_latency_ms is not None:
            facts.update(self.measure(distiller.student, latency=True))
        return {**facts, "feasible": over_budget(facts, self.budget) is None}


def over_budget(facts: dict, budget: Budget) -> str | None:
    """The first budget a candidate breaks ('params', 'float32 size', 'int8 size', 'latency'), or None."""
    checks = [("params", facts.get("params"), budget.max_params),
              ("float32 size", facts.get("float32_bytes"), budget.max_float32_bytes),
              ("int8 size", facts.get("int8_bytes"), budget.max_int8_bytes),
              ("latency", facts.get("latency_ms"), budget.max_latency_ms)]
    for name, value, limit in checks:
        if limit is not None and value is not None and value > limit:
            return name
    return None


def make_tuner(kind, hypermodel, *, directory, project_name="search", max_trials=10, max_epochs=3, seed=0,
               overwrite=False):
    """Hyperband (default), BayesianOptimization or RandomSearch on ``val_accuracy``; resumable (overwrite=False)."""
    kt = _kt()
    common = dict(objective=kt.Objective("val_accuracy", "max"), directory=str(directory),
                  project_name=project_name, seed=seed, overwrite=overwrite, max_consecutive_failed_trials=50)
    if kind == "hyperband":
        return kt.Hyperband(hypermodel, max_epochs=max_epochs, factor=3, hyperband_iterations=1, **common)
    if kind == "bayesian":
        return kt.BayesianOptimization(hypermodel, max_trials=max_trials, **common)
    if kind == "random":
        return kt.RandomSearch(hypermodel, max_trials=max_trials, **common)
    raise ValueError(f"tuner={kind!r} is not supported; expected one of {TUNERS}.")


def trials_table(tuner) -> list[dict]:
    """One row per trial: ``hp`` (its hyperparameters), its last metric values, status (FAILED = refused)."""
    rows = []
    for trial in tuner.oracle.trials.values():
        hp = {k: v for k, v in trial.hyperparameters.values.items() if not k.startswith("tuner/")}
        row = {"trial": trial.trial_id, "status": str(trial.status), "hp": hp}
        for name in trial.metrics.metrics:
            value = trial.metrics.get_last_value(name)
            if value is not None:
                row[name] = int(value) if name == "params" else float(value)
        if trial.message:
            row["message"] = str(trial.message).strip().splitlines()[-1][:200]
        rows.append(row)
    return rows


def pareto_frontier(rows, size_key="params", score_key="val_accuracy") -> list[dict]:
    """Rows not dominated by a smaller-or-equal row with a higher score, sorted by size."""
    done = sorted((r for r in rows if size_key in r and score_key in r and r[score_key] > 0),
                  key=lambda r: (r[size_key], -r[score_key]))
    frontier, best = [], -np.inf
    for r in done:
        if r[score_key] > best:
            frontier.append(r)
            best = r[score_key]
    return frontier


def closest_to_mean_heuristic(candidates: dict, teacher_acc: float, student_acc: float) -> str:
    """The teacher-assistant study's rule: the TA whose stand-alone accuracy is closest to mean(teacher, student)."""
    target = (teacher_acc + student_acc) / 2
    return min(candidates, key=lambda k: abs(candidates[k] - target))


def save_table(rows, path):
    from tfkd import io

    io.write_text(path, json.dumps(rows, indent=2, default=str) + "\n")


class AssistantSearch(_hypermodel_base()):
    """A HyperModel over teacher-assistant specs: each trial distils teacher -> TA -> student, scores the student.

    ``candidates`` are TA specs (e.g. ``["plain_cnn:4", "plain_cnn:6"]``); the student spec and its seed are fixed,
    so trials differ only in the assistant. The teacher enters as cached logits (``fit_cache``/``val_cache``).
    """

    def __init__(self, candidates, student_spec, fit_cache, val_cache, data, *, epochs=3, temperature=4.0,
                 alpha=0.5, lr=1e-3, batch_size=64, seed=0):
        super().__init__(name="assistant_search", tunable=True)
        self.candidates, self.student_spec = list(candidates), student_spec
        self.fit_cache, self.val_cache, self.data = fit_cache, val_cache, data
        self.epochs, self.temperature, self.alpha, self.lr = epochs, temperature, alpha, lr
        self.batch_size, self.seed = batch_size, seed

    def build(self, hp):
        from tfkd import models

        spec = hp.Choice("assistant", self.candidates)
        return models.build(spec, self.data.input_shape, self.data.num_classes, seed=self.seed)

    def _distil(self, student, fit_inputs, val_inputs):
        import keras

        from tfkd.distiller import Distiller

        d = Distiller(None, student, temperature=self.temperature, alpha=self.alpha)
        d.compile(optimizer=keras.optimizers.Adam(self.lr), metrics=["accuracy"])
        h = d.fit(fit_inputs, self.data.y_fit, epochs=self.epochs, batch_size=self.batch_size,
                  validation_data=(val_inputs, self.data.y_val), verbose=0)
        return float(h.history["val_accuracy"][-1])

    def fit(self, hp, model, *args, **kwargs):
        from tfkd import models
        from tfkd.teachers import cache_teacher_logits

        ta_acc = self._distil(model, self.fit_cache.inputs(self.data.x_fit), self.val_cache.inputs(self.data.x_val))
        ta_fit = cache_teacher_logits(model, self.data.x_fit)
        ta_val = cache_teacher_logits(model, self.data.x_val)
        student = models.build(self.student_spec, self.data.input_shape, self.data.num_classes, seed=self.seed + 1)
        student_acc = self._distil(student, ta_fit.inputs(self.data.x_fit), ta_val.inputs(self.data.x_val))
        return {"val_accuracy": student_acc, "assistant_val_accuracy": ta_acc,
                "params": float(models.describe(model)["params"])}


def assistant_tuner(hypermodel, *, directory, project_name="assistant_search", seed=0, overwrite=False):
    """A grid over every assistant candidate (each trial is a whole teacher -> TA -> student chain)."""
    kt = _kt()
    return kt.GridSearch(hypermodel, objective=kt.Objective("val_accuracy", "max"), directory=str(directory),
                         project_name=project_name, seed=seed, overwrite=overwrite,
                         max_trials=len(hypermodel.candidates))


# --- the distillation method and its hyperparameters, chosen on validation (and the labels-only baseline's) -------

# What `--method auto` searches: the logit methods (cached teacher logits serve every trial), each with the knobs
# the literature tunes, and the learning rate, which the labels-only search gets too.
METHOD_SPACE = {
    "lr": (3e-4, 1e-3, 3e-3),
    "kd_temperature": (1.0, 2.0, 4.0, 8.0),   # kd, kd_std
    "kd_alpha": (0.5, 0.7, 0.9),             # kd, kd_std: soft weight; the hard term gets 1 - alpha
    "dkd_beta": (1.0, 2.0, 8.0),             # dkd (T=4, alpha=1 as the authors; beta 8 is theirs for CIFAR)
    "dist_temperature": (1.0, 4.0),          # dist (beta = gamma = 1, hard weight 1)
}
LABELS_SPACE = {"lr": (3e-4, 1e-3, 3e-3), "label_smoothing": (0.0, 0.05, 0.1)}


def _choice(hp, name, values, default=None):
    """``hp.Choice`` whose values include ``default`` (the first trial of :func:`search_tuner` uses defaults)."""
    values = list(values)
    if default is not None and default not in values:
        values = sorted(values + [default]) if not isinstance(default, str) else values + [default]
    return hp.Choice(name, values, default=default if default is not None else values[0])


def method_setting(hp, methods, epochs, default=None):
    """(setting dict, terms, hard_weight) for one trial: the method and the knobs that method uses.

    ``default`` (a setting: method, lr, temperature, alpha) gives each knob's default value, which is what the
    first trial of :func:`search_tuner` trains: the search then never does worse on validation than the default.
    """
    d = default or {}
    method = _choice(hp, "method", methods, d.get("method") if d.get("method") in methods else None)
    setting = {"method": method, "lr": _choice(hp, "lr", METHOD_SPACE["lr"], d.get("lr"))}
    if method in ("kd", "kd_std"):
        with hp.conditional_scope("method", ["kd", "kd_std"]):
            setting["temperature"] = _choice(hp, "kd_temperature", METHOD_SPACE["kd_temperature"],
                                             d.get("temperature"))
            setting["alpha"] = _choice(hp, "kd_alpha", METHOD_SPACE["kd_alpha"], d.get("alpha"))
    elif method == "dkd":
        with hp.conditional_scope("method", ["dkd"]):
            setting["beta"] = _choice(hp, "dkd_beta", METHOD_SPACE["dkd_beta"])
    elif method == "dist":
        with hp.conditional_scope("method", ["dist"]):
            setting["temperature"] = _choice(hp, "dist_temperature", METHOD_SPACE["dist_temperature"])
    return (setting, *setting_terms(setting, epochs))


def setting_terms(setting, epochs):
    """``(terms, hard_weight)`` of a searched setting (``{"method": ..., knobs}``, as :func:`method_setting` or
    :func:`best_setting` give it), so the chosen setting trains exactly as its trial did."""
    from tfkd import terms as kd_terms

    method = setting["method"]
    if method in ("kd", "kd_std"):
        a = setting["alpha"]
        return [kd_terms.KD(setting["temperature"], standardize=method == "kd_std", weight=a)], 1.0 - a
    if method == "dkd":
        warmup = max(1, round(epochs * 20 / 240))
        return [kd_terms.DKD(temperature=4.0, alpha=1.0, beta=setting["beta"], warmup_epochs=warmup)], 1.0
    if method == "dist":
        return [kd_terms.DIST(temperature=setting["temperature"], beta=1.0, gamma=1.0)], 1.0
    raise ValueError(f"method={method!r} cannot be searched on cached logits; expected some of "
                     f"{list(kd_terms.LOGIT_METHODS)}.")


def describe_setting(setting) -> str:
    """``"DIST (T=4), lr 0.001"``: a searched setting in one line, for reports."""
    knobs = {"temperature": "T", "alpha": "alpha", "beta": "beta", "label_smoothing": "label smoothing"}
    parts = [f"{short}={setting[k]:g}" for k, short in knobs.items() if k in setting]
    name = {"kd": "KD", "kd_std": "KD (standardised logits)", "dkd": "DKD", "dist": "DIST"}.get(
        setting.get("method"), "labels only")
    lr = setting["lr"]
    return f"{name} ({', '.join(parts + [f'lr={lr:g}'])})"


class MethodSearch(_hypermodel_base()):
    """A HyperModel over distillation methods and their hyperparameters for one fixed student; objective: the
    student's final validation accuracy after ``epochs`` (the same budget the chosen setting is then trained with).

    Every trial distils from cached teacher logits (``fit_cache``/``val_cache``), so the teacher runs once for the
    whole search; ``fit_cache`` may be a :class:`tfkd.replay.ReplayCache` (augmented views, replayed), as in
    :class:`DistilledStudent`. ``methods`` are names of :data:`tfkd.terms.LOGIT_METHODS`.
    """

    def __init__(self, student_spec, fit_cache, val_cache, data, *, methods=("kd", "kd_std", "dkd", "dist"),
                 epochs=10, batch_size=64, seed=0, default=None, schedule="constant"):
        super().__init__(name="method_search", tunable=True)
        self.schedule = _check_schedule(schedule)
        from tfkd.terms import LOGIT_METHODS

        unknown = [m for m in methods if m not in LOGIT_METHODS]
        if unknown or not methods:
            raise ValueError(f"methods={list(methods)}: expected a non-empty list of {list(LOGIT_METHODS)} (feature "
                             f"methods need the live teacher, which a cached-logits search does not run).")
        self.student_spec, self.fit_cache, self.val_cache, self.data = student_spec, fit_cache, val_cache, data
        self.methods, self.epochs, self.batch_size, self.seed = tuple(methods), int(epochs), batch_size, seed
        self.default = default

    def build(self, hp):
        from tfkd import models
        from tfkd.distiller import Distiller

        setting, terms, hard_weight = method_setting(hp, self.methods, self.epochs, self.default)
        student = models.build(self.student_spec, self.data.input_shape, self.data.num_classes, seed=self.seed)
        distiller = Distiller(None, student, terms=terms, hard_weight=hard_weight)
        distiller.compile(optimizer=_adam(setting["lr"], self.schedule, self.epochs, len(self.data.y_fit),
                                          self.batch_size), metrics=["accuracy"])
        return distiller

    def fit(self, hp, model, *args, callbacks=None, **kwargs):
        history = _fit(model, self.fit_cache, self.val_cache, self.data, self.batch_size, self.seed, callbacks,
                       epochs=self.epochs, verbose=0)
        return {"val_accuracy": float(history.history["val_accuracy"][-1])}


class LabelsOnlySearch(_hypermodel_base()):
    """The labels-only baseline's search, with the same trial budget and epochs as :class:`MethodSearch`: learning
    rate and label smoothing (:data:`LABELS_SPACE`), so a distillation win is not a win over an untuned baseline.
    ``schedule`` (``constant`` or ``cosine``) as :class:`MethodSearch`'s."""

    def __init__(self, student_spec, data, *, epochs=10, batch_size=64, seed=0, default=None, schedule="constant"):
        super().__init__(name="labels_only_search", tunable=True)
        self.schedule = _check_schedule(schedule)
        self.student_spec, self.data = student_spec, data
        self.epochs, self.batch_size, self.seed = int(epochs), batch_size, seed
        self.default = default or {}

    def build(self, hp):
        import keras

        from tfkd import models

        lr = _choice(hp, "lr", LABELS_SPACE["lr"], self.default.get("lr"))
        smoothing = _choice(hp, "label_smoothing", LABELS_SPACE["label_smoothing"],
                            self.default.get("label_smoothing", 0.0))
        model = models.build(self.student_spec, self.data.input_shape, self.data.num_classes, seed=self.seed)
        # Label smoothing needs one-hot targets: the loss is categorical, the labels converted in fit.
        model.compile(optimizer=_adam(lr, self.schedule, self.epochs, len(self.data.y_fit), self.batch_size),
                      metrics=["accuracy"],
                      loss=keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=smoothing))
        return model

    def fit(self, hp, model, *args, callbacks=None, **kwargs):
        import keras

        k = self.data.num_classes
        history = model.fit(self.data.x_fit, keras.utils.to_categorical(self.data.y_fit, k), epochs=self.epochs,
                            batch_size=self.batch_size, callbacks=callbacks, verbose=0,
                            validation_data=(self.data.x_val, keras.utils.to_categorical(self.data.y_val, k)))
        return {"val_accuracy": float(history.history["val_accuracy"][-1])}


def _defaults_first_oracle():
    from keras_tuner.src.engine import hyperparameters as hp_module
    from keras_tuner.src.tuners.randomsearch import RandomSearchOracle

    class DefaultsFirst(RandomSearchOracle):
        """Random search whose first trial is every hyperparameter's default (the untuned setting)."""

        def populate_space(self, trial_id):
            if self.trials:
                return super().populate_space(trial_id)
            hps = hp_module.HyperParameters()
            for hp in self.hyperparameters.space:
                hps.merge([hp])  # at its default
            return {"status": "RUNNING", "values": {k: v for k, v in hps.values.items() if hps.is_active(k)}}

    return DefaultsFirst


def search_tuner(hypermodel, *, directory, project_name, max_trials, seed=0, overwrite=False):
    """Random search on final validation accuracy whose first trial is the defaults (so the chosen setting is never
    worse on validation than the untuned one); resumable from ``directory`` (finished trials are kept)."""
    kt = _kt()
    oracle = _defaults_first_oracle()(objective=kt.Objective("val_accuracy", "max"), max_trials=max_trials,
                                      seed=seed, max_consecutive_failed_trials=3)
    return kt.Tuner(oracle, hypermodel, directory=str(directory), project_name=project_name, overwrite=overwrite)


# The tuner's names of the methods' knobs -> the setting's (kd_temperature and dist_temperature are both "T").
_KNOB_NAMES = {"kd_temperature": "temperature", "kd_alpha": "alpha", "dkd_beta": "beta",
               "dist_temperature": "temperature"}


def search_trials(tuner) -> list[dict]:
    """Every trial of a :func:`search_tuner` search, in trial order: its ``score`` (None if it did not finish) and
    the hyperparameters active in it."""
    return [{"score": t.score, **{k: v for k, v in t.hyperparameters.values.items() if t.hyperparameters.is_active(k)}}
            for t in tuner.oracle.trials.values()]


def best_setting(tuner) -> dict:
    """The best trial's setting (``method`` if searched, ``lr`` and the knobs active in it), its validation
    accuracy and trial id; :func:`setting_terms` turns a distillation setting back into terms."""
    trial = tuner.oracle.get_best_trials(1)[0]
    hp = trial.hyperparameters
    values = {_KNOB_NAMES.get(k, k): v for k, v in hp.values.items() if hp.is_active(k)}
    return {**values, "val_accuracy": float(trial.score), "trial_id": trial.trial_id}
