"""``tfkd run conservative``: adapt to a few target labels without forgetting the source (conservative training).

A source model is fine-tuned on ``--n-target-labels`` labeled target images two ways:

- **plain fine-tuning**: cross-entropy on the target labels alone;
- **conservative training** (learning-without-forgetting style): the same, plus a distillation term that keeps the
  model's outputs close to the *original* model's outputs on the same inputs (a frozen copy is the teacher, at
  ``--alpha`` weight).

Both are reported on the source and target test sets, next to the source model itself.

Example:

    tfkd run conservative --transform invert --n-target-labels 100
"""

from __future__ import annotations

import dataclasses
import numpy as np

from tfkd.recipes.common import progress
from tfkd.recipes.config import field
from tfkd.recipes.domains import (FewLabelConfig, clone, domain_rows, export_stage, load_domains, scores,
                                  source_and_arms, target_labels)

NAME = "conservative"
DESCRIPTION = "few-label target fine-tuning, plain vs conservative (distil from the original model)"


@dataclasses.dataclass
class Config(FewLabelConfig):
    epochs: int = field(20, "adaptation epochs")
    lr: float = field(3e-4, "adaptation learning rate (the source model uses it too)")
    alpha: float = field(0.5, "conservative arm: weight of the distillation term")
    temperature: float = field(2.0, "conservative arm: temperature")


def _adapt(cfg, ctx, d, arm, seed):
    import keras

    from tfkd import training

    keras.utils.set_random_seed(seed)
    source = ctx.load_model(f"source_seed{seed - cfg.seed}")
    x, y = target_labels(d, cfg.n_target_labels, seed)
    model = clone(source)
    name = f"{arm}_seed{seed - cfg.seed}"
    common = dict(epochs=cfg.epochs, batch_size=min(cfg.batch_size, len(x)), lr=cfg.lr,
                  checkpoint_dir=ctx.checkpoint_dir(name), log_dir=ctx.log_dir(name), label=name,
                  verbose=int(ctx.verbose), callbacks=progress(ctx, name, cfg.epochs))
    if arm == "conservative":
        # The frozen original model, on the same target inputs, is the teacher.
        training.train_distilled(clone(source, trainable=False), model, x, y, alpha=cfg.alpha,
                                 temperature=cfg.temperature, **common)
    else:
        training.train_supervised(model, x, y, **common)
    ctx.save_model(model, name)
    return {**scores(model, d), "target_labels": int(len(x))}


def run(cfg: Config, ctx) -> dict:
    d = load_domains(cfg)
    results = source_and_arms(cfg, ctx, d, "source", cfg.source_epochs, ("finetune", "conservative"),
                              lambda arm, seed: _adapt(cfg, ctx, d, arm, seed))
    arms = tuple(results)
    export_info = export_stage(cfg, ctx, d, "conservative_seed0") if cfg.export else None
    labels = {"source": "source model", "finetune": f"plain fine-tuning on {cfg.n_target_labels} target labels",
              "conservative": f"conservative (alpha={cfg.alpha:g}, T={cfg.temperature:g})"}
    rows = domain_rows(labels, results)
    mean = {a: {k: float(np.mean([r[k] for r in results[a]])) for k in ("source", "target")} for a in arms}
    d_source = (mean["conservative"]["source"] - mean["finetune"]["source"]) * 100
    d_target = (mean["conservative"]["target"] - mean["finetune"]["target"]) * 100
    summary = [d.summary, f"conservative vs plain fine-tuning: source {d_source:+.2f} points, target {d_target:+.2f} "
                          f"points (mean of {cfg.seeds} seed(s))."]
    return {"title": f"conservative: {cfg.dataset}, target = {cfg.transform}, {cfg.n_target_labels} target labels",
            "summary": summary,
            "tables": [{"title": "Accuracy per domain", "columns": ["model", "source test", "target test"],
                        "rows": rows}], "figures": [], "results": {"arms": results, "export": export_info}}
