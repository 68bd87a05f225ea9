"""``tfkd run self-taught``: a representation from unlabeled, unrelated source images, a classifier on few labels.

Self-taught learning (Raina et al., 2007): the source images (``--source``, default MNIST digits) are unlabeled
and need not share the target's classes; the target (``--dataset``, default Fashion-MNIST) has only
``--n-target-labels`` labelled images. Raina et al. learned sparse codes; here the representation is the trunk of
``--model`` trained as the encoder of an **autoencoder** (:mod:`tfkd.autoencoder`; ``--noise-std`` > 0 makes it
denoising) on ``--n-train`` source images. Every arm is the same ``--model`` network (its trunk, then its logits
layer as the classifier head), trained on the same labelled target images for the same ``--epochs``:

- **self-taught**: the autoencoder's encoder as the trunk, **frozen**; only the head is trained;
- **scratch**: the whole network trained from its initial weights on the target labels alone;
- **random frozen** (a control): the initial, untrained trunk frozen, only the head trained: what a frozen
  representation gives before any learning;
- **source-supervised**: the trunk of a network trained on the same source images *with their labels* (the same
  ``--pretrain-epochs``), frozen, only the head trained: the usual transfer-learning representation.

All arms start from one build of ``--model`` per seed (the same initial trunk and head); only the trunk's weights
and whether it trains differ. A frozen trunk is frozen whole: its BatchNormalization layers keep the statistics of
the images they were trained on (the source's, for a pretrained trunk). The source labels are read by one
function, :func:`source_labels`, which only the source-supervised arm calls; the autoencoder receives images
alone (its targets are its inputs). The report records, per arm, hashes of the indices, pixels and labels of the
target images it trained on.

Example:

    tfkd run self-taught --seeds 3
    tfkd run self-taught --source fashion_mnist --dataset mnist     # the reverse direction
"""

from __future__ import annotations

import dataclasses
import typing

import numpy as np

from tfkd.recipes import plots
from tfkd.recipes.common import progress
from tfkd.recipes.config import RecipeConfig, field
from tfkd.recipes.multitask import check_shapes, gap, images_seen, stratified_pick, validate_pair
from tfkd.recipes.report import mean_std

NAME = "self-taught"
DESCRIPTION = "autoencoder on unlabeled source images, frozen; a classifier on few target labels on top"

ARMS = ("self_taught", "scratch", "random_frozen", "source_supervised")
LABELS = {"self_taught": "self-taught (autoencoder trunk, frozen)", "scratch": "scratch (whole network trained)",
          "random_frozen": "random trunk, frozen (control)",
          "source_supervised": "source-supervised trunk, frozen"}
SHORT = {"scratch": "training from scratch", "random_frozen": "a frozen random trunk",
         "source_supervised": "a frozen source-supervised trunk"}


@dataclasses.dataclass
class Config(RecipeConfig):
    INPUT_SCALE_255 = False  # the autoencoder reconstructs [0, 1] pixels

    dataset: str = field("fashion_mnist", "target dataset: --n-target-labels of its training images are labelled; "
                                          "its test split scores every arm")
    source: str = field("mnist", "source dataset: --n-train of its training images, unlabeled, train the "
                                 "autoencoder (only the source-supervised arm reads their labels); same image shape")
    model: str = field("plain_cnn:4", "network spec, a chain model (plain_cnn, mlp, mobile_cnn): its trunk is the "
                                      "representation, its logits layer the classifier head")
    n_train: int = field(5000, "source training images (a random subset, drawn without reading labels)")
    n_target_labels: int = field(100, "labelled target training images (a stratified subset: as many per class)")
    n_val: int = field(300, "other labelled target training images, for the validation curves only (0: none)")
    pretrain_epochs: int = field(4, "epochs of the autoencoder, and of the source-supervised network, over the "
                                    "same --n-train source images")
    epochs: int = field(30, "classifier epochs on the target labels (every arm)")
    batch_size: int = field(32, "batch size (pretraining, and the classifiers: at most the number of labels)")
    noise_std: float = field(0.0, "std of the Gaussian noise on the autoencoder's input while it trains (> 0: a "
                                  "denoising autoencoder)")
    arms: typing.List[str] = field(list(ARMS), "arms to run, of: " + ", ".join(ARMS))
    export: bool = field(False, "export the self-taught classifier (seed 0) to TFLite and validate it")

    def validate(self):
        super().validate()
        validate_pair(self)
        for name in ("n_train", "n_target_labels"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}={getattr(self, name)} must be a positive number of images.")
        if self.n_val < 0:
            raise ValueError(f"n_val={self.n_val} must be >= 0 (0: no validation curves).")
        if self.noise_std < 0:
            raise ValueError(f"noise_std={self.noise_std} must be >= 0 (0: a plain autoencoder).")
        unknown = [a for a in self.arms if a not in ARMS]
        if unknown or not self.arms or len(set(self.arms)) != len(self.arms):
            raise ValueError(f"arms={self.arms}: expected distinct names of {', '.join(ARMS)} (at least one).")


# ---------------------------------------------------------------------------------------------------------- data
@dataclasses.dataclass
class Data:
    x_source: np.ndarray      # unlabeled source training images
    source_index: np.ndarray  # their rows in the source training split
    x: np.ndarray             # labelled target training images
    y: np.ndarray
    index: np.ndarray         # their rows in the target training split
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    input_shape: tuple
    summary: str


def source_images(cfg):
    """``(images, rows, classes)``: ``cfg.n_train`` source training images drawn at random; no label is read."""
    from tfkd import data as data_lib

    splits = data_lib.load(cfg.source, data_dir=cfg.data_dir)
    n = len(splits.x_train)
    if cfg.n_train > n:
        raise ValueError(f"n_train={cfg.n_train}: {cfg.source} has only {n} training images.")
    rows = np.sort(np.random.default_rng([cfg.seed, 11]).choice(n, cfg.n_train, replace=False))
    return splits.x_train[rows], rows, int(splits.num_classes), tuple(splits.input_shape), splits.source


def source_labels(cfg, rows):
    """The labels of the source training images at ``rows``: the only place this recipe reads source labels
    (called by the source-supervised arm alone), with the source test split for that arm's sanity check."""
    from tfkd import data as data_lib

    splits = data_lib.load(cfg.source, data_dir=cfg.data_dir)
    return (np.asarray(splits.y_train)[rows].astype("int32"), int(splits.num_classes), splits.x_test,
            np.asarray(splits.y_test).astype("int32"))


def load(cfg) -> Data:
    from tfkd import data as data_lib

    x_source, source_rows, _, source_shape, source_from = source_images(cfg)
    splits = data_lib.load(cfg.dataset, data_dir=cfg.data_dir)
    if cfg.n_test:
        splits = data_lib.subset(splits, n_test=min(cfg.n_test, len(splits.x_test)), seed=cfg.seed)
    check_shapes(cfg.source, source_shape, cfg.dataset, splits.input_shape)
    y = np.asarray(splits.y_train)
    rng = np.random.default_rng([cfg.seed, 7])
    index = stratified_pick(y, cfg.n_target_labels, rng, what="n_target_labels")
    val = stratified_pick(y, cfg.n_val, rng, exclude=index, what="n_val") if cfg.n_val else np.zeros(0, int)
    summary = (f"data: source {cfg.source} ({source_from}): {len(x_source)} training images, unlabeled for the "
               f"autoencoder; target {cfg.dataset} ({splits.source}): {len(index)} labelled training images "
               f"({len(index) // int(splits.num_classes)}+ per class), {len(val)} more for validation curves, "
               f"{len(splits.x_test)} test images")
    print(summary, flush=True)
    return Data(x_source, source_rows, splits.x_train[index], y[index].astype("int32"), index, splits.x_train[val],
                y[val].astype("int32"), splits.x_test, np.asarray(splits.y_test).astype("int32"),
                int(splits.num_classes), tuple(splits.input_shape), summary)


# -------------------------------------------------------------------------------------------------------- stages
def _build(cfg, d, seed, num_classes=None):
    from tfkd import models

    return models.build(cfg.model, d.input_shape, num_classes or d.num_classes, seed=seed)


def _autoencoder_stage(cfg, ctx, x_source, input_shape, num_classes, seed, s):
    """The encoder learned by reconstructing the unlabeled source images: this stage gets images and nothing else."""
    import keras

    from tfkd import autoencoder, models, trunk

    keras.utils.set_random_seed(seed)
    encoder = trunk.trunk(models.build(cfg.model, input_shape, num_classes, seed=seed), name=f"encoder_ae_seed{s}")
    ae = autoencoder.autoencoder(encoder, seed=seed, noise_std=cfg.noise_std, name=f"autoencoder_seed{s}")
    name = f"autoencoder_seed{s}"
    history = autoencoder.train_autoencoder(ae, x_source, epochs=cfg.pretrain_epochs, batch_size=cfg.batch_size,
                                            lr=cfg.lr, checkpoint_dir=ctx.checkpoint_dir(name),
                                            log_dir=ctx.log_dir(name), label=name, verbose=int(ctx.verbose),
                                            callbacks=progress(ctx, name, cfg.pretrain_epochs))
    ctx.save_model(ae, name)
    ctx.save_model(encoder, f"encoder_ae_seed{s}")
    from tfkd.teachers import fingerprint

    return {"loss": history["loss"][-1], "images": int(len(x_source)), "images_sha": fingerprint(x_source),
            "labels": "none (the targets are the input images)", "history": history}


def _source_pretrain_stage(cfg, ctx, d, seed, s):
    """The source-supervised representation: the same network trained on the same source images, with labels."""
    import keras

    from tfkd import training
    from tfkd.teachers import fingerprint

    keras.utils.set_random_seed(seed)
    y_source, source_classes, x_source_test, y_source_test = source_labels(cfg, d.source_index)
    model = _build(cfg, d, seed, source_classes)
    name = f"source_net_seed{s}"
    history = training.train_supervised(model, d.x_source, y_source, epochs=cfg.pretrain_epochs,
                                        batch_size=cfg.batch_size, lr=cfg.lr, checkpoint_dir=ctx.checkpoint_dir(name),
                                        log_dir=ctx.log_dir(name), label=name, verbose=int(ctx.verbose),
                                        callbacks=progress(ctx, name, cfg.pretrain_epochs))
    ctx.save_model(model, name)
    return {"loss": history["loss"][-1], "images": int(len(d.x_source)), "images_sha": fingerprint(d.x_source),
            "labels": f"{len(y_source)} source labels", "source_test_accuracy": training.accuracy(
                model, x_source_test, y_source_test), "history": history}


def _classifier_stage(cfg, ctx, d, arm, seed, s):
    """One arm's classifier on the labelled target images: the same build, the same images, epochs and batch."""
    import keras

    from tfkd import training, trunk

    keras.utils.set_random_seed(seed)
    model = _build(cfg, d, seed)  # every arm starts from this build; the trunk may then be replaced
    frozen = []
    if arm == "self_taught":
        frozen = trunk.copy_trunk(ctx.load_model(f"encoder_ae_seed{s}"), model, freeze=True)
    elif arm == "source_supervised":
        frozen = trunk.copy_trunk(ctx.load_model(f"source_net_seed{s}"), model, freeze=True)
    elif arm == "random_frozen":
        for group in trunk.layer_groups(model)[:-1]:
            for layer in group:
                layer.trainable = False
        frozen = [layer.name for group in trunk.layer_groups(model)[:-1] for layer in group if layer.weights]
    name = f"{arm}_seed{s}"
    batch = min(cfg.batch_size, len(d.x))
    history = training.train_supervised(model, d.x, d.y, epochs=cfg.epochs, batch_size=batch, lr=cfg.lr,
                                        validation_data=(d.x_val, d.y_val) if len(d.x_val) else None,
                                        checkpoint_dir=ctx.checkpoint_dir(name), log_dir=ctx.log_dir(name),
                                        label=name, verbose=int(ctx.verbose), callbacks=progress(ctx, name, cfg.epochs))
    ctx.save_model(model, name)
    trainable = int(sum(int(np.prod(w.shape)) for w in model.trainable_weights))
    return {"accuracy": training.accuracy(model, d.x_test, d.y_test), "params": int(model.count_params()),
            "trainable_params": trainable, "frozen_layers": frozen, "seen": images_seen(d.x, d.y, d.index),
            "history": history}


# ---------------------------------------------------------------------------------------------------------- run
def run(cfg: Config, ctx) -> dict:
    from tfkd import trunk

    d = load(cfg)
    trunk.trunk_depth(_build(cfg, d, cfg.seed))  # a chain model with a trunk, before any training
    arms = [a for a in ARMS if a in cfg.arms]
    plan = []
    for s in range(cfg.seeds):
        plan += [f"autoencoder/seed{s}"] if "self_taught" in arms else []
        plan += [f"{a}/seed{s}" for a in arms if a != "source_supervised"]
        plan += [f"source_pretrain/seed{s}", f"source_supervised/seed{s}"] if "source_supervised" in arms else []
    ctx.plan(plan + (["export"] if cfg.export and "self_taught" in arms else []))
    pretrain = {"autoencoder": [], "source_pretrain": []}
    results = {a: [] for a in arms}
    for s in range(cfg.seeds):
        seed = cfg.seed + s
        if "self_taught" in arms:  # images only: neither d.y of the source nor source_labels reach this stage
            pretrain["autoencoder"].append(ctx.stage(f"autoencoder/seed{s}", lambda: _autoencoder_stage(
                cfg, ctx, d.x_source, d.input_shape, d.num_classes, seed, s)))
        for arm in arms:
            if arm == "source_supervised":
                pretrain["source_pretrain"].append(ctx.stage(f"source_pretrain/seed{s}", lambda: _source_pretrain_stage(
                    cfg, ctx, d, seed, s)))
            results[arm].append(ctx.stage(f"{arm}/seed{s}", lambda: _classifier_stage(cfg, ctx, d, arm, seed, s)))
    export_info = None
    if cfg.export and "self_taught" in arms:
        from tfkd.recipes import common

        data = common.Data(d.x, d.y, d.x_val, d.y_val, d.x_test, d.y_test, d.input_shape, d.num_classes, d.summary)
        export_info = ctx.stage("export", lambda: common.export_stage(cfg, ctx, data, "self_taught_seed0"))
    return _report(cfg, ctx, d, arms, results, pretrain, export_info)


def _report(cfg, ctx, d, arms, results, pretrain, export_info):
    from tfkd.recipes import common

    acc = {a: [r["accuracy"] for r in results[a]] for a in arms}
    mean = {a: float(np.mean(v)) for a, v in acc.items()}
    ref = "scratch" if "scratch" in arms else None
    rows = [[LABELS[a], f"{results[a][0]['trainable_params']:,} of {results[a][0]['params']:,}", mean_std(acc[a]),
             "—" if a == ref or ref is None else f"{(mean[a] - mean[ref]) * 100:+.2f}"] for a in arms]
    summary = [d.summary,
               f"every arm: the same {cfg.model} build per seed, {cfg.epochs} epochs on the {len(d.x)} labelled "
               f"target images, batch {min(cfg.batch_size, len(d.x))}, lr {cfg.lr:g}; frozen trunks train the head "
               "alone."]
    lead = None
    if "self_taught" in arms:
        others = [a for a in ("scratch", "source_supervised", "random_frozen") if a in arms]
        parts = [gap(acc["self_taught"], acc[a]).format(SHORT[a]) for a in others]
        lead = (f"Self-taught learning from {len(d.x_source):,} unlabeled {cfg.source} images, with "
                f"{len(d.x)} {cfg.dataset} labels: {mean['self_taught']:.4f}" +
                (f", which {'; '.join(parts)}" if parts else "") + f" (mean of {cfg.seeds} seed(s)).")
    same = all(len({tuple(results[a][i]["seen"][k] for k in ("rows", "index_sha", "images_sha", "labels_sha"))
                    for a in arms}) == 1 for i in range(cfg.seeds))
    summary.append("every arm trained on the same labelled target images (hashes below agree)" if same else
                   "WARNING: the arms did not train on the same labelled target images (hashes below differ)")
    pre_rows = []
    for key, label in (("autoencoder", "autoencoder"), ("source_pretrain", "source-supervised network")):
        rs = pretrain[key]
        if rs:
            pre_rows.append([label, f"{rs[0]['images']:,} {cfg.source} images ({rs[0]['images_sha']})",
                             rs[0]["labels"], str(cfg.pretrain_epochs), mean_std([r["loss"] for r in rs]),
                             mean_std([r["source_test_accuracy"] for r in rs]) if key == "source_pretrain" else "—"])
    seen_rows = [[LABELS[a], results[a][0]["seen"]["rows"], results[a][0]["seen"]["index_sha"],
                  results[a][0]["seen"]["images_sha"], results[a][0]["seen"]["labels_sha"]] for a in arms]
    tables = [{"title": f"Target ({cfg.dataset}) test accuracy, {len(d.x)} labels (mean ± std over {cfg.seeds} "
                        "seed(s))",
               "columns": ["arm", "trainable parameters", "test accuracy", "Δ vs scratch (points)"], "rows": rows},
              {"title": f"Representations learned on the source (mean ± std over {cfg.seeds} seed(s))",
               "columns": ["representation", "trained on", "labels used", "epochs", "final training loss",
                           f"{cfg.source} test accuracy"], "rows": pre_rows},
              {"title": f"Labelled target images each arm trained on (seed {cfg.seed})",
               "columns": ["arm", "images", "index hash", "pixel hash", "label hash"], "rows": seen_rows}]
    if export_info:
        tables.append(common.export_table(export_info, "Exported self-taught classifier (seed 0)"))
    figures = []
    if cfg.n_val:
        figures.append({"title": "target validation accuracy", "path": ctx.relative(plots.curves(
            {LABELS[a]: results[a][0]["history"] for a in arms}, "val_accuracy",
            ctx.path("plots", "curves_val_accuracy.png"), f"Target ({cfg.dataset}) validation accuracy, seed "
                                                          f"{cfg.seed}"))})
    figures.append({"title": "target test accuracy", "path": ctx.relative(plots.comparison(
        [LABELS[a] for a in arms], [mean[a] for a in arms],
        [float(np.std(acc[a], ddof=1)) if len(acc[a]) > 1 else 0.0 for a in arms], [len(acc[a]) for a in arms],
        ctx.path("plots", "comparison.png"), f"Target ({cfg.dataset}) test accuracy, {len(d.x)} labels",
        "test accuracy", reference=LABELS["scratch"] if "scratch" in arms else None))})
    return {"title": f"self-taught: unlabeled {cfg.source} -> {len(d.x)} labels of {cfg.dataset}, {cfg.model}",
            "lead": lead, "summary": summary, "tables": tables, "figures": figures,
            "results": {"arms": results, "pretrain": pretrain, "export": export_info,
                        "target_index": d.index.tolist(), "source_index": d.source_index.tolist()}}
