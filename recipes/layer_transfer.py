"""``tfkd run layer-transfer``: which layers of a source model transfer to a target domain with few labels?

For each ``k`` in ``--k``: a fresh model of the same architecture receives the source model's first ``k`` layers
(a layer is a weighted layer; a BatchNormalization travels with the layer before it), those are frozen, and the
rest is trained on the labeled target images; optionally everything is then unfrozen and fine-tuned at a lower
learning rate (``--finetune-epochs``). ``k = 0`` is training from scratch on the target labels.

Example:

    tfkd run layer-transfer --transform invert --k 0,1,2,3,4 --n-target-labels 200
"""

from __future__ import annotations

import dataclasses
import typing

import numpy as np

from tfkd.recipes.common import progress
from tfkd.recipes.config import field
from tfkd.recipes.domains import FewLabelConfig, export_stage, load_domains, scores, source_and_arms, target_labels
from tfkd.recipes.report import mean_std

NAME = "layer-transfer"
DESCRIPTION = "copy and freeze the first k source layers, train the rest on few target labels; sweep k"


@dataclasses.dataclass
class Config(FewLabelConfig):
    n_target_labels: int = field(200, "labeled target images")
    k: typing.List[int] = field([0, 1, 2, 3, 4], "numbers of leading layers to transfer (0 = from scratch)")
    epochs: int = field(15, "epochs with the first k layers frozen")
    finetune_epochs: int = field(5, "then epochs with everything trainable at lr / 10 (0 to skip)")

    def validate(self):
        super().validate()
        if any(k < 0 for k in self.k) or not self.k:
            raise ValueError(f"k={self.k} must be a non-empty list of numbers >= 0.")


def layer_groups(model):
    """Weighted layers in order, each BatchNormalization grouped with the layer before it."""
    import keras

    groups = []
    for layer in model.layers:
        if not layer.weights:
            continue
        if isinstance(layer, keras.layers.BatchNormalization) and groups:
            groups[-1].append(layer)
        else:
            groups.append([layer])
    return groups


def transfer(source, target, k):
    """Copy the first ``k`` layer groups of ``source`` into ``target`` and freeze them; returns the layer names."""
    src, dst = layer_groups(source), layer_groups(target)
    if k > len(src):
        raise ValueError(f"k={k} but the model has only {len(src)} weighted layers (BatchNorm counted with its conv).")
    names = []
    for group_s, group_d in zip(src[:k], dst[:k]):
        for ls, ld in zip(group_s, group_d):
            ld.set_weights(ls.get_weights())
            ld.trainable = False
            names.append(ld.name)
    return names


def _stage(cfg, ctx, d, seed, k):
    import keras

    from tfkd import models, training

    keras.utils.set_random_seed(seed)
    source = ctx.load_model(f"source_seed{seed - cfg.seed}")
    x, y = target_labels(d, cfg.n_target_labels, seed)
    model = models.build(cfg.model, d.x_source.shape[1:], d.num_classes, seed=seed + 1)
    frozen = transfer(source, model, k)
    name = f"k{k}_seed{seed - cfg.seed}"
    common = dict(batch_size=min(cfg.batch_size, len(x)), log_dir=ctx.log_dir(name), verbose=int(ctx.verbose))
    training.train_supervised(model, x, y, epochs=cfg.epochs, lr=cfg.lr, checkpoint_dir=ctx.checkpoint_dir(name),
                              label=name, callbacks=progress(ctx, name, cfg.epochs), **common)
    frozen_scores = scores(model, d)
    result = {"k": k, "frozen_layers": frozen, "frozen": frozen_scores}
    if cfg.finetune_epochs:
        for layer in model.layers:
            layer.trainable = True
        training.train_supervised(model, x, y, epochs=cfg.finetune_epochs, lr=cfg.lr / 10,
                                  checkpoint_dir=ctx.checkpoint_dir(name + "_finetune"), label=name + " finetune",
                                  callbacks=progress(ctx, name + " finetune", cfg.finetune_epochs), **common)
        result["finetuned"] = scores(model, d)
    ctx.save_model(model, name)
    return result


def run(cfg: Config, ctx) -> dict:
    d = load_domains(cfg)
    layers = {f"k{k}": k for k in cfg.k}  # arm name -> layers transferred
    by_arm = source_and_arms(cfg, ctx, d, "source", cfg.source_epochs, tuple(layers),
                             lambda arm, seed: _stage(cfg, ctx, d, seed, layers[arm]))
    sources, results = by_arm["source"], {k: by_arm[arm] for arm, k in layers.items()}
    rows = [["source model", "—", mean_std([r["source"] for r in sources]), mean_std([r["target"] for r in sources]),
             "", ""]]
    for k in cfg.k:
        rs = results[k]
        rows.append([f"k = {k}", ", ".join(rs[0]["frozen_layers"]) or "none (from scratch)",
                     mean_std([r["frozen"]["source"] for r in rs]), mean_std([r["frozen"]["target"] for r in rs]),
                     mean_std([r["finetuned"]["source"] for r in rs]) if cfg.finetune_epochs else "",
                     mean_std([r["finetuned"]["target"] for r in rs]) if cfg.finetune_epochs else ""])
    best = max(cfg.k, key=lambda k: np.mean([r["frozen"]["target"] for r in results[k]]))
    export_info = export_stage(cfg, ctx, d, f"k{best}_seed0") if cfg.export else None
    summary = [d.summary, f"{cfg.n_target_labels} target labels; best k with frozen layers: {best} "
                          f"(target {np.mean([r['frozen']['target'] for r in results[best]]):.4f})."]
    return {"title": f"layer-transfer: {cfg.dataset}, target = {cfg.transform}", "summary": summary,
            "tables": [{"title": "Accuracy per domain",
                        "columns": ["transferred", "frozen layers", "source (frozen)", "target (frozen)",
                                    "source (fine-tuned)", "target (fine-tuned)"], "rows": rows}],
            "figures": [], "results": {"sources": sources, "k": {str(k): v for k, v in results.items()},
                                      "export": export_info}}
