"""``tfkd run teacher-free``: distillation without a better teacher, each arm against label-only training.

Arms, all with the same student, seed and budget (Yuan et al., 2020, "Revisiting KD via label smoothing"):

- **label smoothing**: cross-entropy on smoothed one-hot targets;
- **virtual teacher** (Tf-KD_reg): distil from a hand-made distribution (``--correct-prob`` on the true class);
- **reversed KD**: a *weaker* model (``--weak``), trained on labels, teaches the student;
- **defective KD**: the usual teacher trained for only ``--defective-epochs`` epochs teaches the student;
- **self-distillation** (born-again): the student's own label-trained snapshot (the NoKD arm) teaches a fresh
  copy of the student.

Example:

    tfkd run teacher-free
    tfkd run teacher-free --dataset fashion_mnist --student plain_cnn:2 --weak mlp:16 --seeds 3
"""

from __future__ import annotations

import dataclasses

import numpy as np

from tfkd.recipes import plots
from tfkd.recipes.config import RecipeConfig, field
from tfkd.recipes.report import mean_std

NAME = "teacher-free"
DESCRIPTION = "reversed, defective and self-distillation, virtual teacher and label smoothing vs labels only"


@dataclasses.dataclass
class Config(RecipeConfig):
    student: str = field("mlp:32", "student model spec")
    weak: str = field("mlp:8", "reversed KD: the weaker teacher's spec")
    teacher: str = field("plain_cnn:4", "defective KD: the teacher's spec")
    defective_epochs: int = field(2, "defective KD: epochs the teacher is trained for")
    epochs: int = field(30, "epochs for every student and for the weak teacher")
    temperature: float = field(4.0, "distillation temperature (virtual teacher: Yuan et al. use 20)")
    alpha: float = field(0.5, "weight of the soft loss")
    label_smoothing: float = field(0.1, "label smoothing epsilon")
    correct_prob: float = field(0.9, "virtual teacher: probability on the true class")
    val_fraction: float = field(0.1, "share of the training set held out for the training curves")

    def validate(self):
        super().validate()
        if not 0 < self.label_smoothing < 1:
            raise ValueError(f"label_smoothing={self.label_smoothing} must be in (0, 1).")


ARMS = ("nokd", "label_smoothing", "virtual_teacher", "reversed", "defective", "self")


def run(cfg: Config, ctx) -> dict:
    from tfkd.recipes import common
    from tfkd.recipes.common import Arm
    from tfkd.teachers import cache_from_logits, virtual_teacher_logits

    data = common.load_data(cfg)
    ctx.plan(["weak_teacher", "weak_logits", "defective_teacher", "defective_logits"]
             + [stage for i in range(cfg.seeds)
                for stage in [f"{a}/seed{i}" for a in ARMS[:-1]] + [f"self_logits_seed{i}", f"self/seed{i}"]])

    weak = ctx.stage("weak_teacher", lambda: common.teacher_stage(cfg, ctx, data, name="weak_teacher",
                                                                    spec=cfg.weak, epochs=cfg.epochs))
    weak_cache = common.logits_cache_stage(ctx, ctx.load_model("weak_teacher"), data, name="weak_logits")
    defective = ctx.stage("defective_teacher", lambda: common.teacher_stage(
        cfg, ctx, data, name="defective_teacher", spec=cfg.teacher, epochs=cfg.defective_epochs))
    defective_cache = common.logits_cache_stage(ctx, ctx.load_model("defective_teacher"), data,
                                                name="defective_logits")
    virtual = common.LogitsCache(
        fit=cache_from_logits(data.x_fit, virtual_teacher_logits(data.y_fit, data.num_classes, cfg.correct_prob)),
        val=cache_from_logits(data.x_val, virtual_teacher_logits(data.y_val, data.num_classes, cfg.correct_prob)),
        test_pred=data.y_test)
    kd = dict(temperature=cfg.temperature, alpha=cfg.alpha)

    results = {arm: [] for arm in ARMS}
    for s in range(cfg.seeds):
        seed = cfg.seed + s
        arms = {"nokd": Arm.labels_only(f"nokd_seed{s}", seed),
                "label_smoothing": Arm.labels_only(f"label_smoothing_seed{s}", seed,
                                                   label_smoothing=cfg.label_smoothing),
                "virtual_teacher": Arm.from_cache(f"virtual_teacher_seed{s}", seed, virtual, **kd),
                "reversed": Arm.from_cache(f"reversed_seed{s}", seed, weak_cache, **kd),
                "defective": Arm.from_cache(f"defective_seed{s}", seed, defective_cache, **kd)}
        for key, arm in arms.items():
            results[key].append(common.arm_stage(cfg, ctx, data, f"{key}/seed{s}", arm))
        snapshot = common.logits_cache_stage(ctx, ctx.load_model(f"nokd_seed{s}"), data, name=f"self_logits_seed{s}")
        # A fresh student of the same architecture (next seed's initialisation) learns from the snapshot.
        results["self"].append(common.arm_stage(cfg, ctx, data, f"self/seed{s}", Arm.from_cache(
            f"self_seed{s}", seed + 1000, snapshot, **kd)))

    acc = {arm: [r["accuracy"] for r in rs] for arm, rs in results.items()}
    base = float(np.mean(acc["nokd"]))
    labels = {"nokd": "labels only (NoKD)", "label_smoothing": f"label smoothing {cfg.label_smoothing:g}",
              "virtual_teacher": f"virtual teacher (p={cfg.correct_prob:g})",
              "reversed": f"reversed KD from {cfg.weak} ({weak['accuracy']:.4f})",
              "defective": f"defective KD from {cfg.teacher} after {cfg.defective_epochs} epochs "
                           f"({defective['accuracy']:.4f})",
              "self": "self-distillation (born-again)"}
    rows = [[labels[a], mean_std(acc[a]), "—" if a == "nokd" else f"{(np.mean(acc[a]) - base) * 100:+.2f}"]
            for a in ARMS]
    summary = [data.summary]
    for a in ARMS[1:]:
        delta = (np.mean(acc[a]) - base) * 100
        summary.append(f"{labels[a]}: {'beat' if delta > 0 else 'LOST to' if delta < 0 else 'tied'} labels only by "
                       f"{abs(delta):.2f} points.")
    histories = {labels[a]: results[a][0]["history"] for a in ARMS}
    figures = [{"title": "validation accuracy", "path": ctx.relative(plots.curves(
        histories, "val_accuracy", ctx.path("plots", "curves_val_accuracy.png"), "Student validation accuracy"))}]
    return {"title": f"teacher-free: {cfg.student} on {cfg.dataset}", "summary": summary,
            "tables": [{"title": f"Student {cfg.student}, test accuracy (mean of {cfg.seeds} seed(s))",
                        "columns": ["arm", "accuracy", "Δ vs labels only (points)"], "rows": rows}],
            "figures": figures,
            "results": {"weak_teacher": weak, "defective_teacher": defective, "arms": results}}
