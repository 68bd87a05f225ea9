"""``tfkd run dann``: domain-adversarial training (Ganin et al., 2016) for a labeled source and unpaired target.

A domain classifier sits on the features behind a :class:`tfkd.layers.GradientReversal`, so the features are
trained to stop telling the domains apart while the class head learns the source labels. The reversal weight ramps
from 0 to 1 as in the paper (``2 / (1 + exp(-10 p)) - 1``). The target images used are *unpaired*: the source
half and the target half of the training set are disjoint images.

Compared on the same target test set: the source-only model, DANN, and — because this data also has pairs — the
parallel-data teacher-student method (Li et al., the ``adapt`` recipe's logit-MSE arm).

Example:

    tfkd run dann --dataset mnist --classes 6,9 --transform vflip
"""

from __future__ import annotations

import dataclasses
import numpy as np

from tfkd.recipes.common import progress
from tfkd.recipes.config import field
from tfkd.recipes.domains import (DomainConfig, DomainData, clone, domain_rows, export_stage, load_domains, scores,
                                  source_and_arms)

NAME = "dann"
DESCRIPTION = "domain-adversarial training (gradient reversal) vs source-only vs parallel-data teacher-student"


@dataclasses.dataclass
class Config(DomainConfig):
    epochs: int = field(5, "epochs for every arm")
    domain_width: int = field(64, "hidden width of the domain classifier")

    def validate(self):
        super().validate()
        if self.domain_width <= 0:
            raise ValueError(f"domain_width={self.domain_width} must be > 0.")


def dann_model(base, domain_width, seed):
    """(class+domain model, reversal layer) around ``base``'s features; the class head is ``base``'s last layer."""
    import keras

    from tfkd.layers import GradientReversal

    features = keras.Model(base.input, base.layers[-2].output, name="features")
    inputs = keras.Input(base.input_shape[1:])
    f = features(inputs)
    class_logits = base.layers[-1](f)
    reversal = GradientReversal(0.0, name="gradient_reversal")
    h = keras.layers.Dense(domain_width, activation="relu",
                           kernel_initializer=keras.initializers.GlorotUniform(seed))(reversal(f))
    domain_logits = keras.layers.Dense(2, kernel_initializer=keras.initializers.GlorotUniform(seed + 1))(h)
    model = keras.Model(inputs, {"label": class_logits, "domain": domain_logits}, name="dann")
    return model, reversal


def _dann_stage(cfg, ctx, d: DomainData, seed):
    import keras

    from tfkd import models, schedules, training

    keras.utils.set_random_seed(seed)
    half = len(d.x_source) // 2
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(d.x_source))
    src, tgt = order[:half], order[half:]  # disjoint images: the target data is unpaired
    x = np.concatenate([d.x_source[src], d.x_target[tgt]])
    y = {"label": np.concatenate([d.y[src], np.zeros(len(tgt), "int32")]),
         "domain": np.concatenate([np.zeros(len(src), "int32"), np.ones(len(tgt), "int32")])}
    # Target labels are never used: their class-loss weight is 0.
    sw = {"label": np.concatenate([np.ones(len(src)), np.zeros(len(tgt))]).astype("float32"),
          "domain": np.ones(len(x), "float32")}
    base = models.build(cfg.model, d.x_source.shape[1:], d.num_classes, seed=seed)
    model, reversal = dann_model(base, cfg.domain_width, seed)
    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer=keras.optimizers.Adam(cfg.lr), loss={"label": ce, "domain": ce})
    name = f"dann_seed{seed - cfg.seed}"
    history = training.fit(model, x, y, sample_weight=sw, epochs=cfg.epochs, batch_size=cfg.batch_size,
                           callbacks=[schedules.VariableSchedule(reversal.weight, schedules.dann_ramp(cfg.epochs)),
                                      *progress(ctx, name, cfg.epochs)],
                           checkpoint_dir=ctx.checkpoint_dir(name),
                           log_dir=ctx.log_dir(name), label=name, verbose=int(ctx.verbose))
    classifier = keras.Model(model.input, model.output["label"])
    ctx.save_model(classifier, name)
    return {**scores(classifier, d), "history": history, "source_images": int(len(src)),
            "target_images": int(len(tgt))}


def _parallel_stage(cfg, ctx, d: DomainData, seed):
    from tfkd import training

    teacher = ctx.load_model(f"source_only_seed{seed - cfg.seed}")
    student = clone(teacher)
    name = f"parallel_seed{seed - cfg.seed}"
    training.train_distilled(teacher, student, (d.x_target, d.x_source), None, alpha=1.0, distill_loss="mse",
                             temperature=1.0, epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr,
                             checkpoint_dir=ctx.checkpoint_dir(name), log_dir=ctx.log_dir(name), label=name,
                             verbose=int(ctx.verbose), callbacks=progress(ctx, name, cfg.epochs))
    ctx.save_model(student, name)
    return scores(student, d)


def run(cfg: Config, ctx) -> dict:
    import warnings

    d = load_domains(cfg)
    stages = {"dann": _dann_stage, "parallel": _parallel_stage}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*carry no labels.*")  # the parallel arm is label-free
        results = source_and_arms(cfg, ctx, d, "source_only", cfg.epochs, tuple(stages),
                                  lambda arm, seed: stages[arm](cfg, ctx, d, seed))
    export_info = export_stage(cfg, ctx, d, "dann_seed0") if cfg.export else None
    labels = {"source_only": "source only", "dann": "DANN (unpaired target)",
              "parallel": "teacher-student on parallel pairs (logit MSE)"}
    rows = domain_rows(labels, results)
    gain = (np.mean([r["target"] for r in results["dann"]]) - np.mean([r["target"] for r in
                                                                      results["source_only"]])) * 100
    summary = [d.summary, f"DANN vs source only on the target test set: {gain:+.2f} points "
                          f"(mean of {cfg.seeds} seed(s)); DANN uses no pairs and no target labels."]
    return {"title": f"dann: {cfg.dataset} {cfg.classes or 'all'}, target = {cfg.transform}", "summary": summary,
            "tables": [{"title": "Accuracy per domain", "columns": ["model", "source test", "target test"],
                        "rows": rows}], "figures": [], "results": {"arms": results, "export": export_info}}
