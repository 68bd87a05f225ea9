"""``tfkd tune`` (= ``tfkd run tune``): choose a student size, and optionally a teacher-assistant, under a budget.

Every trial trains its candidate by distillation from the teacher's cached logits (not on labels alone) for a short
budget and is scored by validation accuracy. Candidates over ``--max-params`` / ``--max-float32-bytes`` /
``--max-int8-bytes`` are refused before training; over ``--max-latency-ms`` they are trained but scored infeasible.
The report gives every trial, the accuracy-vs-size frontier (table and plot) and the best student as ``.keras``.
``--ta-search`` also searches the teacher assistant for TAKD and compares it with the teacher-assistant study's
heuristic (the TA whose stand-alone accuracy is closest to the mean of teacher and student).

Example:

    tfkd tune --dataset mnist --family plain_cnn --depths 2,4,6 --max-params 40000 --tuner hyperband
    tfkd tune --ta-search --ta-candidates plain_cnn:4,plain_cnn:6 --student plain_cnn:2
"""

from __future__ import annotations

import dataclasses
import typing

from tfkd.recipes import plots
from tfkd.recipes.config import RecipeConfig, field

NAME = "tune"
DESCRIPTION = "keras-tuner search of student (and teacher-assistant) sizes, trained by distillation, under a budget"


@dataclasses.dataclass
class Config(RecipeConfig):
    teacher: str = field("plain_cnn:6", "teacher spec or .keras path")
    teacher_epochs: int = field(20, "teacher epochs (ignored for a .keras teacher)")
    family: str = field("plain_cnn", "student family searched: plain_cnn, resnet_cifar, mlp or mobile_cnn")
    depths: typing.List[int] = field([2, 4], "depths searched (plain_cnn, resnet_cifar)")
    width_multipliers: typing.List[float] = field([0.5, 1.0], "width multipliers searched")
    mlp_widths: typing.List[int] = field([16, 32, 64], "mlp hidden widths searched")
    mlp_layers: typing.List[int] = field([1, 2], "mlp depths searched")
    temperatures: typing.List[float] = field([], "temperatures searched (empty: --temperature)")
    alphas: typing.List[float] = field([], "alphas searched (empty: --alpha)")
    temperature: float = field(4.0, "fixed temperature")
    alpha: float = field(0.5, "fixed alpha")
    tuner: str = field("hyperband", "hyperband, bayesian or random")
    max_trials: int = field(8, "trials (bayesian, random)")
    max_epochs: int = field(3, "epochs per trial (hyperband: the largest bracket's)")
    max_params: typing.Optional[int] = field(None, "budget: trainable parameters")
    max_float32_bytes: typing.Optional[int] = field(None, "budget: float32 TFLite size")
    max_int8_bytes: typing.Optional[int] = field(None, "budget: int8 TFLite size")
    max_latency_ms: typing.Optional[float] = field(None, "budget: float32 TFLite latency, 1 thread (measured)")
    ta_search: bool = field(False, "also search the teacher assistant (TAKD)")
    student: str = field("plain_cnn:2", "TA search: the student spec")
    ta_candidates: typing.List[str] = field(["plain_cnn:4"], "TA search: assistant specs")
    ta_epochs: int = field(3, "TA search: epochs per link (and for the heuristic's stand-alone models)")
    val_fraction: float = field(0.1, "share of the training set held out to score trials")
    views: str = field("none", "what student trials train on: none (the fixed training images), shift (random "
                               "shifts up to a tenth of the side) or shift_flip (also horizontal flips: photos "
                               "only); views are replayed: the teacher runs once over --max-epochs epochs of them "
                               "for the whole search")
    views_mixup: float = field(0.0, "per-example mixup Beta parameter of the trials' views (0 = off; replayed)")
    export: bool = field(False, "export the best student to TFLite")

    def validate(self):
        super().validate()
        self.refuse_search_under_strategy("the student search")
        from tfkd.tuning import TUNERS

        if self.tuner not in TUNERS:
            raise ValueError(f"tuner={self.tuner!r}; expected one of {TUNERS}.")
        if self.max_trials <= 0:
            raise ValueError(f"max_trials={self.max_trials} must be > 0.")
        if self.family not in ("plain_cnn", "resnet_cifar", "mlp", "mobile_cnn"):
            raise ValueError(f"family={self.family!r}; expected plain_cnn, resnet_cifar, mlp or mobile_cnn.")
        from tfkd.recipes.common import REPLAYED_VIEWS

        if self.views not in REPLAYED_VIEWS or self.views_mixup < 0:
            raise ValueError(f"views={self.views!r} must be one of {', '.join(REPLAYED_VIEWS)} and "
                             f"views_mixup={self.views_mixup} >= 0.")


def tflite_facts(model, latency=False) -> dict:
    """Float32 and int8 TFLite sizes (and float32 latency) of ``model``; weights' values do not change the size.

    The ``measure`` of :class:`tfkd.tuning.DistilledStudent` for budgets on TFLite size or latency.
    """
    import tempfile
    from pathlib import Path

    import numpy as np

    from tfkd.export import benchmark, to_tflite

    facts = {}
    with tempfile.TemporaryDirectory() as tmp:
        f32 = Path(tmp) / "f32.tflite"
        to_tflite(model, f32, quantize="none")
        facts["float32_bytes"] = f32.stat().st_size
        i8 = Path(tmp) / "i8.tflite"
        rep = np.random.default_rng(0).random((16, *model.input_shape[1:]), dtype=np.float32)
        to_tflite(model, i8, quantize="int8", representative_data=rep)
        facts["int8_bytes"] = i8.stat().st_size
        if latency:
            facts["latency_ms"] = float(benchmark(f32, num_threads=1, runs=30, warmup=5)["latency_median_ms"])
    return facts


def budget(cfg):
    from tfkd.tuning import Budget

    return Budget(cfg.max_params, cfg.max_float32_bytes, cfg.max_int8_bytes, cfg.max_latency_ms)


def student_search_stage(cfg, ctx, data, caches, views=None):
    """The keras-tuner search; trials train on ``views`` (:class:`common.ReplayedViews`) when given."""
    from tfkd import tuning

    space = tuning.SearchSpace(cfg.family, tuple(cfg.depths), tuple(cfg.width_multipliers), tuple(cfg.mlp_widths),
                               tuple(cfg.mlp_layers), tuple(cfg.temperatures), tuple(cfg.alphas))
    fit_logits = views.fit if views is not None else caches.fit  # replayed augmented views, or the fixed images
    hm = tuning.DistilledStudent(space, fit_logits, caches.val, data, budget=budget(cfg), temperature=cfg.temperature,
                                 alpha=cfg.alpha, lr=cfg.lr, batch_size=cfg.batch_size, seed=cfg.seed,
                                 measure=tflite_facts)
    tuner = tuning.make_tuner(cfg.tuner, hm, directory=ctx.dir / "tuner", max_trials=cfg.max_trials,
                              max_epochs=cfg.max_epochs, seed=cfg.seed)
    tuner.search(epochs=cfg.max_epochs, verbose=int(ctx.verbose))  # resumes from ctx.dir/tuner after a kill
    rows = tuning.trials_table(tuner)
    frontier = tuning.pareto_frontier(rows)
    best_hp = tuner.get_best_hyperparameters(1)[0]
    best = tuner.get_best_models(1)[0].student  # the tuner's models are Distillers around each candidate
    from tfkd import training

    return {"trials": rows, "frontier": frontier, "best_hyperparameters": best_hp.values,
            "best_test_accuracy": training.accuracy(best, data.x_test, data.y_test),
            "best_path": ctx.save_model(best, "best_student"),
            "refused_over_budget": sum(1 for r in rows if "FAILED" in r["status"])}


def ta_search_stage(cfg, ctx, data, caches, teacher_acc):
    from tfkd import tuning
    from tfkd.recipes import common

    hm = tuning.AssistantSearch(cfg.ta_candidates, cfg.student, caches.fit, caches.val, data, epochs=cfg.ta_epochs,
                                temperature=cfg.temperature, alpha=cfg.alpha, lr=cfg.lr, batch_size=cfg.batch_size,
                                seed=cfg.seed)
    tuner = tuning.assistant_tuner(hm, directory=ctx.dir / "tuner", seed=cfg.seed)
    tuner.search(verbose=int(ctx.verbose))
    rows = tuning.trials_table(tuner)
    searched = tuner.get_best_hyperparameters(1)[0].values["assistant"]
    # The heuristic needs stand-alone (label-trained) accuracies of the student and of every candidate.
    standalone = {}
    for spec in [cfg.student, *cfg.ta_candidates]:
        r = common.student_stage(cfg, ctx, data, common.Arm.labels_only(
            f"standalone_{spec.replace(':', '_')}", cfg.seed, spec=spec, epochs=cfg.ta_epochs, keep_model=False))
        standalone[spec] = r["accuracy"]
    heuristic = tuning.closest_to_mean_heuristic({s: standalone[s] for s in cfg.ta_candidates}, teacher_acc,
                                                 standalone[cfg.student])
    return {"trials": rows, "searched": searched, "heuristic": heuristic, "agree": searched == heuristic,
            "standalone_accuracy": standalone, "teacher_accuracy": teacher_acc}


def run(cfg: Config, ctx) -> dict:
    from tfkd.recipes import common

    data = common.load_data(cfg)
    replayed = cfg.views != "none" or cfg.views_mixup > 0  # trials on replayed views: one teacher pass over them
    ctx.plan(["teacher", "teacher_logits"] + (["trial_views"] if replayed else [])
             + ["student_search"] + (["ta_search"] if cfg.ta_search else [])
             + (["export"] if cfg.export else []))
    teacher = ctx.stage("teacher", lambda: common.teacher_stage(cfg, ctx, data))
    teacher_model = ctx.load_model("teacher")
    caches = common.logits_cache_stage(ctx, teacher_model, data)
    views = views_info = None
    if replayed:
        views, views_info = common.replay_stage(
            ctx, teacher_model, data, common.replay_views(cfg.views, data, seed=cfg.seed, mixup=cfg.views_mixup),
            cfg.max_epochs, caches, name="trial_views")
    search = ctx.stage("student_search", lambda: student_search_stage(cfg, ctx, data, caches, views))
    ta = ctx.stage("ta_search", lambda: ta_search_stage(cfg, ctx, data, caches, teacher["accuracy"])) \
        if cfg.ta_search else None
    export_info = ctx.stage("export", lambda: common.export_stage(cfg, ctx, data, "best_student")) if cfg.export \
        else None
    return _report(cfg, ctx, data, teacher, search, ta, export_info, views_info)


def _report(cfg, ctx, data, teacher, search, ta, export_info, views_info=None):
    rows = search["trials"]
    frontier_ids = {r["trial"] for r in search["frontier"]}
    hp_keys = sorted({k for r in rows for k in r["hp"]})
    table = [[r["trial"], *(str(r["hp"].get(k, "")) for k in hp_keys), f"{r['params']:,}" if "params" in r else "—",
              f"{r['val_accuracy']:.4f}" if "val_accuracy" in r else "—",
              "refused: " + r.get("message", "over budget") if "FAILED" in r["status"] else
              ("frontier" if r["trial"] in frontier_ids else "")] for r in rows]
    figure = plots.frontier([r for r in rows if "params" in r and r.get("val_accuracy", 0) > 0], search["frontier"],
                            ctx.path("plots", "frontier.png"), f"{cfg.family} students: accuracy vs size")
    b = budget(cfg)
    summary = [data.summary, f"teacher {cfg.teacher}: test accuracy {teacher['accuracy']:.4f}",
               f"budget: {', '.join(f'{k}={v}' for k, v in dataclasses.asdict(b).items() if v is not None) or 'none'}; "
               f"{search['refused_over_budget']} candidate(s) refused before training.",
               f"best student {_hp(search['best_hyperparameters'])}: test accuracy "
               f"{search['best_test_accuracy']:.4f}; "
               f"{len(search['frontier'])} point(s) on the accuracy-vs-size frontier."]
    if views_info:
        summary.append(f"trials trained on replayed views ({views_info['views']}): the teacher ran once over "
                       f"{views_info['epochs']} epochs of them ({views_info['teacher_views']:,} views) for all "
                       f"{len(rows)} trials; validation on the clean images.")
    tables = [{"title": f"Trials ({cfg.tuner})", "columns": ["trial", *hp_keys, "params", "val accuracy", "note"],
               "rows": table}]
    if ta:
        summary.append(f"TA search chose {ta['searched']}; the closest-to-mean heuristic chose {ta['heuristic']}: "
                       f"{'they agree' if ta['agree'] else 'they DISAGREE'}.")
        tables.append({"title": "Teacher-assistant search (student accuracy after teacher -> TA -> student)",
                       "columns": ["assistant", "student val accuracy", "TA val accuracy", "TA stand-alone accuracy"],
                       "rows": [[r["hp"]["assistant"], f"{r.get('val_accuracy', float('nan')):.4f}",
                                 f"{r.get('assistant_val_accuracy', float('nan')):.4f}",
                                 f"{ta['standalone_accuracy'][r['hp']['assistant']]:.4f}"] for r in ta["trials"]]})
    return {"title": f"tune: {cfg.family} students for {cfg.teacher} on {cfg.dataset}", "summary": summary,
            "tables": tables, "figures": [{"title": "frontier", "path": ctx.relative(figure)}],
            "results": {"teacher": teacher, "search": search, "ta_search": ta, "export": export_info,
                        "trial_views": views_info}}


def _hp(values):
    """Hyperparameters without keras-tuner's bookkeeping (tuner/epochs, tuner/bracket, ...)."""
    return {k: v for k, v in values.items() if not k.startswith("tuner/")}


def main(argv) -> int:
    """``tfkd tune ...`` is ``tfkd run tune ...``."""
    from tfkd.recipes import runner

    return runner.main(["tune", *argv])

