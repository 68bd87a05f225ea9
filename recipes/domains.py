"""Source and target domains shared by the adaptation recipes (adapt, dann, conservative, layer-transfer).

The target domain is a deterministic transform of the source images (``tfkd.data.domain_transform``), so every
training image exists in both views (parallel pairs); recipes that must not use pairs take disjoint halves.
"""

from __future__ import annotations

import dataclasses
import typing

import numpy as np

from tfkd.recipes.config import RecipeConfig, field


@dataclasses.dataclass
class DomainConfig(RecipeConfig):
    """Fields of every adaptation recipe: which images, which target transform, which model."""

    INPUT_SCALE_255 = False  # domain transforms and corruptions expect [0, 1]

    dataset: str = field("mnist", "dataset (needs the real file in the data directory, or network for tfds)")
    classes: typing.List[int] = field([6, 9], "classes kept, relabelled 0..k-1 (empty list: all)")
    transform: str = field("vflip", "target domain transform (see tfkd.data.domain_transform)")
    model: str = field("plain_cnn:4", "model spec")
    export: bool = field(False, "export the recipe's final model to TFLite")

    def validate(self):
        super().validate()
        if self.classes and len(set(self.classes)) < 2:
            raise ValueError(f"classes={self.classes} must name at least two distinct classes (or none for all).")


@dataclasses.dataclass
class FewLabelConfig(DomainConfig):
    """Adaptation from a source model with a few labeled target images."""

    classes: typing.List[int] = field([], "classes kept, relabelled 0..k-1 (empty list: all)")
    transform: str = field("invert", "target domain transform (see tfkd.data.domain_transform)")
    source_epochs: int = field(3, "source model epochs")
    n_target_labels: int = field(100, "labeled target images used for adaptation")

    def validate(self):
        super().validate()
        if self.n_target_labels <= 0 or self.source_epochs <= 0:
            raise ValueError(f"n_target_labels={self.n_target_labels} and source_epochs={self.source_epochs} must "
                             "be > 0.")


@dataclasses.dataclass
class DomainData:
    x_source: np.ndarray  # training images, source view
    x_target: np.ndarray  # the same images, target view (parallel)
    y: np.ndarray         # labels, used only to train the teacher
    test_source: np.ndarray
    test_target: np.ndarray
    y_test: np.ndarray
    num_classes: int
    summary: str


def load_domains(cfg) -> DomainData:
    from tfkd import data as data_lib
    from tfkd.recipes.common import load_splits

    splits = load_splits(cfg)
    x, y, xt, yt = splits.x_train, splits.y_train, splits.x_test, splits.y_test
    if cfg.classes:
        x, y = data_lib.filter_classes(x, y, classes=tuple(cfg.classes))
        xt, yt = data_lib.filter_classes(xt, yt, classes=tuple(cfg.classes))
    transform = data_lib.domain_transform(cfg.transform)
    x_target, x_source = data_lib.parallel_pairs(x, transform)
    test_target, test_source = data_lib.parallel_pairs(xt, transform)
    kept = f"classes {cfg.classes} (relabelled 0..{len(cfg.classes) - 1})" if cfg.classes else "all classes"
    summary = (f"data: {splits.name} {kept} from "
               f"{splits.source}: {len(x)} parallel training pairs, {len(xt)} test images per domain; target = "
               f"{cfg.transform}(source)")
    print(summary, flush=True)
    num_classes = len(cfg.classes) if cfg.classes else int(splits.num_classes)
    return DomainData(x_source, x_target, y.astype("int32"), test_source, test_target, yt.astype("int32"),
                      num_classes, summary)


def clone(model, trainable=True):
    """A copy of ``model`` with the same weights (the user's model is not touched)."""
    import keras

    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    copy.trainable = trainable
    return copy


def scores(model, d: DomainData) -> dict:
    """Accuracy on the source and the target test sets."""
    from tfkd import training

    return {"source": training.accuracy(model, d.test_source, d.y_test),
            "target": training.accuracy(model, d.test_target, d.y_test)}


def train_source_model(cfg, ctx, d: DomainData, name, seed, spec, epochs):
    """The source-only model (teacher / baseline): trained on labeled source images, saved as ``name``."""
    import keras

    from tfkd import models, training
    from tfkd.recipes.common import progress

    keras.utils.set_random_seed(seed)
    model = models.build(spec, d.x_source.shape[1:], d.num_classes, seed=seed)
    history = training.train_supervised(model, d.x_source, d.y, epochs=epochs, batch_size=cfg.batch_size, lr=cfg.lr,
                                        validation_data=(d.test_source, d.y_test),
                                        checkpoint_dir=ctx.checkpoint_dir(name), log_dir=ctx.log_dir(name),
                                        label=name, verbose=int(ctx.verbose), callbacks=progress(ctx, name, epochs))
    ctx.save_model(model, name)
    return {**scores(model, d), "history": history}


def source_and_arms(cfg, ctx, d: DomainData, source, source_epochs, arms, train) -> dict:
    """Every seed's stages: the source-trained model, then each adapted arm; returns ``{arm: [result per seed]}``.

    For seed ``s`` (``seed = cfg.seed + s``): stage ``{source}/seed{s}`` trains ``cfg.model`` on the labeled source
    images for ``source_epochs`` and saves it as ``{source}_seed{s}``; then stage ``{arm}/seed{s}`` runs
    ``train(arm, seed)`` for each name in ``arms`` (it may load that source model). Plans these stages, and
    ``export`` when ``cfg.export``. Results are keyed ``source`` first, then ``arms``, in order.
    """
    ctx.plan([f"{a}/seed{s}" for s in range(cfg.seeds) for a in (source, *arms)] + (["export"] if cfg.export else []))
    results = {a: [] for a in (source, *arms)}
    for s in range(cfg.seeds):
        seed = cfg.seed + s
        results[source].append(ctx.stage(f"{source}/seed{s}", lambda: train_source_model(
            cfg, ctx, d, f"{source}_seed{s}", seed, cfg.model, source_epochs)))
        for arm in arms:
            results[arm].append(ctx.stage(f"{arm}/seed{s}", lambda: train(arm, seed)))
    return results


def domain_rows(labels, results) -> list:
    """Table rows ``[label, source test accuracy, target test accuracy]`` (mean ± std over seeds), one an arm."""
    from tfkd.recipes.report import mean_std

    return [[labels[a], *(mean_std([r[domain] for r in rs]) for domain in ("source", "target"))]
            for a, rs in results.items()]


def target_labels(d: DomainData, n, seed):
    """``n`` labeled target images, stratified by class, fixed by ``seed``."""
    rng = np.random.default_rng(seed)
    per_class = max(1, n // d.num_classes)
    idx = np.concatenate([rng.permutation(np.flatnonzero(d.y == c))[:per_class] for c in range(d.num_classes)])
    return d.x_target[idx], d.y[idx]


def export_stage(cfg, ctx, d: DomainData, model_name):
    """Export a saved model of an adaptation recipe to TFLite, validated on the target test set."""
    from tfkd.recipes import common

    data = common.Data(d.x_source, d.y, d.test_target, d.y_test, d.test_target, d.y_test,
                       tuple(d.x_source.shape[1:]), d.num_classes, d.summary)
    return ctx.stage("export", lambda: common.export_stage(cfg, ctx, data, model_name))
