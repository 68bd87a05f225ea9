"""``tfkd run blend``: several teachers, one student (model blending; Hinton's "many models into one").

Each teacher is trained (different architectures and/or seeds), their blend is a :class:`tfkd.TeacherEnsemble`
(average of logits or of probabilities), and one student is distilled from the blend's cached logits. Compared
with: each teacher alone, the ensemble itself, the student on labels alone, and the student distilled from the
best single teacher.

Example:

    tfkd run blend                                             # digits: three teachers -> mlp:32
    tfkd run blend --dataset fashion_mnist --teachers plain_cnn:4,plain_cnn:6,resnet_cifar:8 --seeds 3
"""

from __future__ import annotations

import dataclasses
import typing

import numpy as np

from tfkd.recipes import plots
from tfkd.recipes.config import RecipeConfig, field
from tfkd.recipes.report import mean_std

NAME = "blend"
DESCRIPTION = "several teachers blended into one student, vs each teacher, their ensemble and labels only"


@dataclasses.dataclass
class Config(RecipeConfig):
    teachers: typing.List[str] = field(["plain_cnn:4", "plain_cnn:6", "mlp:128-64"],
                                       "teacher specs (or .keras paths); teacher i is trained with seed + i")
    student: str = field("mlp:32", "student model spec")
    ensemble_space: str = field("probs", "blend teachers by averaging 'probs' or 'logits'")
    teacher_epochs: int = field(30, "epochs per teacher")
    epochs: int = field(30, "student epochs, the same for every arm")
    temperature: float = field(4.0, "distillation temperature")
    alpha: float = field(0.5, "weight of the soft loss")
    val_fraction: float = field(0.1, "share of the training set held out for the training curves")

    def validate(self):
        super().validate()
        if len(self.teachers) < 2:
            raise ValueError(f"teachers={self.teachers} needs at least two teachers to blend.")
        if self.ensemble_space not in ("probs", "logits"):
            raise ValueError(f"ensemble_space={self.ensemble_space!r}; expected 'probs' or 'logits'.")


def run(cfg: Config, ctx) -> dict:
    from tfkd import TeacherEnsemble, training
    from tfkd.recipes import common
    from tfkd.recipes.common import Arm

    data = common.load_data(cfg)
    names = [f"teacher{i + 1}" for i in range(len(cfg.teachers))]
    ctx.plan(names + ["ensemble_logits", "best_teacher_logits"]
             + [f"{arm}/seed{s}" for s in range(cfg.seeds) for arm in ("nokd", "single", "blend")]
             + (["export"] if cfg.export else []))
    teachers = []
    for i, (name, spec) in enumerate(zip(names, cfg.teachers)):
        info = ctx.stage(name, lambda: common.teacher_stage(cfg, ctx, data, name=name, spec=spec, seed=cfg.seed + i))
        teachers.append({"name": name, "spec": spec, **info})
    models = [ctx.load_model(n) for n in names]
    ensemble = TeacherEnsemble(models, space=cfg.ensemble_space)
    ensemble_acc = training.accuracy(ensemble, data.x_test, data.y_test)
    blend_cache = common.logits_cache_stage(ctx, ensemble, data, name="ensemble_logits")
    best = max(range(len(teachers)), key=lambda i: teachers[i]["accuracy"])
    single_cache = common.logits_cache_stage(ctx, models[best], data, name="best_teacher_logits")

    kd = dict(temperature=cfg.temperature, alpha=cfg.alpha)
    results = {"nokd": [], "single": [], "blend": []}
    for s in range(cfg.seeds):
        seed = cfg.seed + s
        arms = {"nokd": Arm.labels_only(f"nokd_seed{s}", seed, teacher_test_pred=blend_cache.test_pred),
                "single": Arm.from_cache(f"single_seed{s}", seed, single_cache, **kd),
                "blend": Arm.from_cache(f"blend_seed{s}", seed, blend_cache, **kd)}
        for key, arm in arms.items():
            results[key].append(common.arm_stage(cfg, ctx, data, f"{key}/seed{s}", arm))
    export_info = ctx.stage("export", lambda: common.export_stage(cfg, ctx, data, "blend_seed0")) if cfg.export \
        else None

    acc = {arm: [r["accuracy"] for r in rs] for arm, rs in results.items()}
    labels = {"nokd": "student, labels only", "single": f"student from best teacher ({names[best]})",
              "blend": f"student from the {cfg.ensemble_space} blend"}
    rows = [[f"{t['name']} {t['spec']}", f"{t['accuracy']:.4f}", f"{t['describe']['params']:,}"] for t in teachers]
    rows.append([f"ensemble of {len(teachers)} ({cfg.ensemble_space})", f"{ensemble_acc:.4f}",
                 f"{sum(t['describe']['params'] for t in teachers):,}"])
    student_params = results["nokd"][0]["describe"]["params"]
    rows += [[f"{labels[a]}, {cfg.student}", mean_std(acc[a]), f"{student_params:,}"] for a in results]
    delta = (np.mean(acc["blend"]) - np.mean(acc["single"])) * 100
    summary = [data.summary,
               f"ensemble {ensemble_acc:.4f} vs best single teacher {teachers[best]['accuracy']:.4f}.",
               f"student from the blend vs from the best single teacher: {delta:+.2f} points; vs labels only: "
               f"{(np.mean(acc['blend']) - np.mean(acc['nokd'])) * 100:+.2f} points (mean of {cfg.seeds} seed(s))."]
    histories = {labels[a]: results[a][0]["history"] for a in results}
    figures = [{"title": "validation accuracy", "path": ctx.relative(plots.curves(
        histories, "val_accuracy", ctx.path("plots", "curves_val_accuracy.png"), "Student validation accuracy"))}]
    tables = [{"title": "Test accuracy", "columns": ["model", "accuracy", "params"], "rows": rows}]
    return {"title": f"blend: {', '.join(cfg.teachers)} -> {cfg.student} on {cfg.dataset}", "summary": summary,
            "tables": tables, "figures": figures,
            "results": {"teachers": teachers, "ensemble_accuracy": ensemble_acc, "best_teacher": names[best],
                        "arms": results, "export": export_info,
                        "blend_logits": ctx.relative(ctx.path("cache", "ensemble_logits_fit.npz"))}}
