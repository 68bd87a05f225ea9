"""``tfkd run progressive``: learn a target task with a new column beside the frozen source model (no forgetting).

A source model is trained on the labeled source images; then ``--n-target-labels`` labeled target images train
three arms for ``--epochs`` each:

- **fine-tuning**: the source model itself, trained further on the target labels (it may forget the source task);
- **target column alone**: a fresh model of the same architecture on the target labels (what the laterals add);
- **progressive network** (Rusu et al., 2016): the source model frozen as a column, a fresh column for the target
  task, and a lateral adapter from every source layer into the next target layer (:mod:`tfkd.progressive`).

Each model is measured on the target task (target test images) and on the source task (source test images; a
progressive network answers the source task with its frozen source column, as task identity is known there). The
progressive network's source column is checked after training: its weights must equal the source model's and its
source-test logits must be the same bits, which is the method's promise.

Default target: MNIST rotated by 90 degrees. The task changes (the source model is at ~10 % on it) while the
features it needs (strokes, edges, their combinations) are those the source column already computes, so lateral
connections can help, and fine-tuning on rotated digits measurably erodes upright accuracy. With ``invert`` the
frozen column sees inverted images, whose background lights up its first-layer filters, so its features transfer
less: in one run with 300 target labels fine-tuning reached 0.92 on the target and the progressive network 0.87.

Example:

    tfkd run progressive --transform rotate --n-target-labels 300 --seeds 3
"""

from __future__ import annotations

import dataclasses
import typing

import numpy as np

from tfkd.recipes.common import describe, progress
from tfkd.recipes.config import field
from tfkd.recipes.domains import FewLabelConfig, clone, export_stage, load_domains, source_and_arms, target_labels
from tfkd.recipes.report import mean_std

NAME = "progressive"
DESCRIPTION = "progressive network: frozen source column + new column with lateral adapters, vs fine-tuning"

ARMS = ("finetune", "column", "progressive")


@dataclasses.dataclass
class Config(FewLabelConfig):
    transform: str = field("rotate", "target domain transform (rotate: 90 degrees; see tfkd.data.domain_transform)")
    n_train: typing.Optional[int] = field(10000, "training images (stratified subset, each in both domains); the "
                                                 "source model trains on all of them")
    n_target_labels: int = field(300, "labeled target images used by every arm")
    epochs: int = field(20, "target-task epochs of every arm")
    adapter_reduction: int = field(2, "conv adapters: 1x1 conv to source channels / this, then the lateral conv")
    adapter_width: int = field(32, "dense adapters: at most this many hidden units")

    def validate(self):
        super().validate()
        for name in ("adapter_reduction", "adapter_width"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}={getattr(self, name)} must be > 0.")


def _arm(cfg, ctx, d, arm, seed):
    import keras

    from tfkd import models, progressive, training
    from tfkd.teachers import fingerprint

    keras.utils.set_random_seed(seed)
    source = ctx.load_model(f"source_seed{seed - cfg.seed}")
    x, y = target_labels(d, cfg.n_target_labels, seed)
    shape = d.x_source.shape[1:]
    if arm == "finetune":
        model = clone(source)
    elif arm == "column":
        model = models.build(cfg.model, shape, d.num_classes, seed=seed + 1)
    else:
        column = models.build(cfg.model, shape, d.num_classes, seed=seed + 1)  # the same fresh column as "column"
        model = progressive.progressive_network(source, column, reduction=cfg.adapter_reduction,
                                                dense_width=cfg.adapter_width)
    name = f"{arm}_seed{seed - cfg.seed}"
    history = training.train_supervised(model, x, y, epochs=cfg.epochs, batch_size=min(cfg.batch_size, len(x)),
                                        lr=cfg.lr, checkpoint_dir=ctx.checkpoint_dir(name), log_dir=ctx.log_dir(name),
                                        label=name, verbose=int(ctx.verbose), callbacks=progress(ctx, name, cfg.epochs))
    ctx.save_model(model, name)
    result = {"target": training.accuracy(model, d.test_target, d.y_test), "target_labels": int(len(x)),
              "describe": describe(model), "history": history}
    if arm != "progressive":
        result["source"] = training.accuracy(model, d.test_source, d.y_test)
        return result
    # The source task is answered by the frozen column: it must be the source model, bit for bit.
    frozen = progressive.source_column(model)
    before = source.predict(d.test_source, batch_size=512, verbose=0)
    after = frozen.predict(d.test_source, batch_size=512, verbose=0)
    result.update({
        "source": float(np.mean(after.argmax(-1) == d.y_test)),
        "source_model_source": float(np.mean(before.argmax(-1) == d.y_test)),
        "source_column_weights_identical": all(np.array_equal(a, b) for a, b in
                                               zip(frozen.get_weights(), source.get_weights())),
        "source_logits_identical": bool(np.array_equal(before, after)),
        "source_logits_fingerprints": [fingerprint(before), fingerprint(after)],
        "lateral_alphas": {layer.name: float(keras.ops.convert_to_numpy(layer.alpha)) for layer in model.layers
                           if isinstance(layer, progressive.LateralScale)},
        "describe_total_params": int(models.describe(model)["total_params"]),
    })
    return result


def _points(results, a, b, key):
    return (np.mean([r[key] for r in results[a]]) - np.mean([r[key] for r in results[b]])) * 100


def run(cfg: Config, ctx) -> dict:
    from tfkd.recipes import plots

    d = load_domains(cfg)
    results = source_and_arms(cfg, ctx, d, "source", cfg.source_epochs, ARMS,
                              lambda arm, seed: _arm(cfg, ctx, d, arm, seed))
    export_info = export_stage(cfg, ctx, d, "progressive_seed0") if cfg.export else None
    n = cfg.n_target_labels
    labels = {"source": "source model (no target labels)", "finetune": f"fine-tuning the source on {n} target labels",
              "column": f"target column alone on {n} target labels (no laterals)",
              "progressive": f"progressive network on {n} target labels (source column frozen)"}
    prog = results["progressive"]
    # The source model has the fine-tuned model's architecture; a progressive network holds both columns.
    trains = {a: results["finetune" if a == "source" else a][0]["describe"]["params"] for a in results}
    holds = {**trains, "progressive": prog[0]["describe_total_params"]}
    rows = [[labels[a], mean_std([r["target"] for r in rs]),
             "—" if a == "column" else mean_std([r["source"] for r in rs]), f"{trains[a]:,}", f"{holds[a]:,}"]
            for a, rs in results.items()]
    identical = all(r["source_column_weights_identical"] and r["source_logits_identical"] for r in prog)
    source_acc = np.mean([r["source"] for r in results["source"]])
    forgot = _points(results, "source", "finetune", "source")
    summary = [
        d.summary,
        f"source task (source test accuracy): source model {source_acc:.4f}; fine-tuning "
        f"{np.mean([r['source'] for r in results['finetune']]):.4f} ({-forgot:+.2f} points: "
        f"{'it forgot' if forgot > 0 else 'it did not forget'}); progressive network "
        f"{np.mean([r['source'] for r in prog]):.4f} (its frozen source column).",
        f"source column after target training, every seed: weights {'bit-identical' if identical else 'CHANGED'} "
        f"to the source model's, source-test logits {'bit-identical' if identical else 'DIFFERENT'}.",
        f"target task: progressive vs fine-tuning {_points(results, 'progressive', 'finetune', 'target'):+.2f} "
        f"points, progressive vs the target column alone {_points(results, 'progressive', 'column', 'target'):+.2f} "
        f"points (what the laterals and the frozen source features add); mean of {cfg.seeds} seed(s).",
        f"parameters: progressive network trains {prog[0]['describe']['params']:,} (target column and adapters) and "
        f"holds {prog[0]['describe_total_params']:,} in all; fine-tuning trains "
        f"{results['finetune'][0]['describe']['params']:,}.",
    ]

    def figure(key, title, file):
        arms = [a for a in results if not (key == "source" and a == "column")]
        vals = [[r[key] for r in results[a]] for a in arms]
        return {"title": title, "path": ctx.relative(plots.comparison(
            [labels[a] for a in arms], [float(np.mean(v)) for v in vals],
            [float(np.std(v, ddof=1)) if len(v) > 1 else 0.0 for v in vals], [len(v) for v in vals],
            ctx.path("plots", file), title, "test accuracy", reference=labels["source"]))}

    figures = [figure("target", "Target task accuracy", "target_accuracy.png"),
               figure("source", "Source task accuracy after target training (forgetting)", "source_accuracy.png")]
    return {"title": f"progressive: {cfg.dataset}, target = {cfg.transform}, {n} target labels",
            "lead": f"The progressive network kept the source task exactly "
                    f"({'bit-identical' if identical else 'NOT identical'}); fine-tuning moved it by {-forgot:+.2f} "
                    f"points. Target task: progressive {np.mean([r['target'] for r in prog]):.4f} vs fine-tuning "
                    f"{np.mean([r['target'] for r in results['finetune']]):.4f}.",
            "summary": summary,
            "tables": [{"title": "Accuracy per task (mean ± std over seeds)",
                        "columns": ["model", "target task (target test)", "source task (source test)",
                                    "trainable params", "total params"], "rows": rows}],
            "figures": figures, "results": {"arms": results, "export": export_info}}
