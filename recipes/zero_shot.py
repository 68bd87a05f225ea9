"""``tfkd run zero-shot``: recognise Fashion-MNIST classes that no training image shows, from their attributes.

The classes in ``--unseen`` are removed from every training and validation array; each class is described by a
hand-written row of 14 yes/no attributes (:mod:`tfkd.attributes`: upper body, sleeves, footwear, heel, ...).
Three methods learn from the seen classes only (:mod:`tfkd.zero_shot`), each with its own ``--model`` encoder:

- **attribute embedding**: image embedding ``f(x)`` and learned attribute embedding ``g(a)``, trained with the
  margin loss ``max(0, k - f(x).g(a_y) + max_{y' != y} f(x).g(a_y'))`` over the seen classes (``--margin``);
- **DeViSE**: the image projected onto the fixed (unit-length) attribute vectors, trained with DeViSE's hinge rank
  loss (``--devise-margin``);
- **ConSE**: an ordinary softmax classifier of the seen classes, nothing else trained; an image's vector is the
  probability-weighted mean of its ``--top`` most probable seen classes' attribute vectors.

Each is measured on the unseen classes alone (zero-shot: chance ``1 / |unseen|``), in the generalised setting
(every class a candidate: chance 1/10) and on the seen classes (chance ``1 / |seen|``). Before every training the
arrays given to ``fit`` are checked to hold seen classes only; what they held is recorded in the report.

Class vectors: no better source is available offline here. DeViSE and ConSE used word embeddings of the class
names (word2vec / GloVe); no word-vector model is installed in this environment (no spaCy vectors, gensim data or
TF Hub module), and none is downloaded, so the hand-written attribute table is the class-vector source. A
``[10, D]`` table of word vectors would plug into the same code.

Example:

    tfkd run zero-shot --unseen 2,3,9 --seeds 3
"""

from __future__ import annotations

import dataclasses
import typing

import numpy as np

from tfkd.recipes.common import progress
from tfkd.recipes.config import RecipeConfig, field
from tfkd.recipes.report import mean_std

NAME = "zero-shot"
DESCRIPTION = "zero-shot Fashion-MNIST: attribute embedding, DeViSE and ConSE on classes held out of training"

METHODS = ("embedding", "devise", "conse")


@dataclasses.dataclass
class Config(RecipeConfig):
    dataset: str = field("fashion_mnist", "dataset with a class attribute table (tfkd.attributes): fashion_mnist")
    n_train: typing.Optional[int] = field(20000, "training images before the unseen classes are removed "
                                                 "(stratified subset)")
    val_fraction: float = field(0.1, "share of the training images held out for validation curves (seen classes)")
    export: bool = field(False, "not supported: a zero-shot prediction needs the candidate class vectors")
    model: str = field("plain_cnn:4", "image encoder / classifier spec of every method")
    unseen: typing.List[int] = field([2, 3, 9], "class ids held out of training (default: Pullover, Dress, "
                                                "Ankle boot)")
    epochs: int = field(3, "training epochs of each method's model")
    embed_dim: int = field(32, "attribute embedding: dimensions of f(x) and g(a)")
    margin: float = field(1.0, "attribute embedding: margin k of the max-margin loss")
    devise_margin: float = field(0.1, "DeViSE: margin of the hinge rank loss")
    top: int = field(3, "ConSE: T, the most probable seen classes whose vectors are combined")

    def validate(self):
        super().validate()
        from tfkd import attributes
        from tfkd import data as data_lib

        if self.dataset not in attributes.TABLES:
            raise ValueError(f"dataset={self.dataset!r} has no class attribute table; zero-shot needs one "
                             f"(tables exist for: {', '.join(attributes.TABLES)}).")
        if self.export:
            raise ValueError("export=True is not supported by zero-shot: its predictions depend on the candidate "
                             "class vectors chosen at test time. Drop --export.")
        _, table = attributes.table(self.dataset)
        classes = len(table)
        names = data_lib.DATASETS[self.dataset].class_names or tuple(str(c) for c in range(classes))
        listing = ", ".join(f"{i} {n}" for i, n in enumerate(names))
        if not self.unseen or len(set(self.unseen)) != len(self.unseen):
            raise ValueError(f"unseen={self.unseen}: expected distinct class ids to hold out, at least one "
                             f"({self.dataset}: {listing}).")
        outside = [c for c in self.unseen if not 0 <= c < classes]
        if outside:
            raise ValueError(f"unseen={self.unseen} names class(es) {outside}, but {self.dataset} has classes "
                             f"0..{classes - 1} ({listing}).")
        seen = classes - len(self.unseen)
        if seen < 2:
            raise ValueError(f"unseen={self.unseen} leaves {seen} seen class(es); training needs at least 2 (the "
                             "losses rank the right class above a wrong one). Hold out fewer classes.")
        if not 1 <= self.top <= seen:
            raise ValueError(f"top={self.top} must be in 1..{seen} (the number of seen classes).")
        if self.embed_dim <= 0:
            raise ValueError(f"embed_dim={self.embed_dim} must be > 0.")
        for name in ("margin", "devise_margin"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}={getattr(self, name)} must be > 0.")


@dataclasses.dataclass
class SeenData:
    """The training and validation arrays of the seen classes; labels index ``seen``."""

    x: np.ndarray
    y: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    seen: list
    unseen: list


def seen_data(data, unseen) -> SeenData:
    """Drop every image of an ``unseen`` class from the training and validation arrays; relabel to seen indices."""
    from tfkd import data as data_lib

    seen = [c for c in range(data.num_classes) if c not in unseen]
    x, y = data_lib.filter_classes(data.x_fit, data.y_fit, classes=seen)
    x_val, y_val = data_lib.filter_classes(data.x_val, data.y_val, classes=seen)
    return SeenData(x, y.astype("int32"), x_val, y_val.astype("int32"), seen, sorted(unseen))


def checked_inputs(x, y, seen, unseen, what) -> dict:
    """What the arrays about to be given to ``fit`` hold: the classes present, the count, a fingerprint of ``x``.

    Raises if any unseen class is present (it never should be: the arrays come from :func:`seen_data`).
    """
    from tfkd.teachers import fingerprint

    present = sorted(int(seen[i]) for i in np.unique(y))
    leaked = sorted(set(present) & set(unseen))
    if leaked or len(x) != len(y):
        raise ValueError(f"{what}: the training arrays hold unseen class(es) {leaked} or mismatched lengths "
                         f"({len(x)} images, {len(y)} labels); zero-shot training must not see them.")
    return {"classes": present, "examples": int(len(y)), "x_fingerprint": fingerprint(x)}


def _train(cfg, ctx, data, sd, method, seed):
    import keras

    from tfkd import attributes, models, training, zero_shot

    keras.utils.set_random_seed(seed)
    _, vectors = attributes.table(cfg.dataset)
    name = f"{method}_seed{seed - cfg.seed}"
    common = dict(epochs=cfg.epochs, batch_size=cfg.batch_size, validation_data=(sd.x_val, sd.y_val),
                  checkpoint_dir=ctx.checkpoint_dir(name), log_dir=ctx.log_dir(name), label=name,
                  verbose=int(ctx.verbose), callbacks=progress(ctx, name, cfg.epochs))
    inputs = {"train": checked_inputs(sd.x, sd.y, sd.seen, sd.unseen, name),
              "validation": checked_inputs(sd.x_val, sd.y_val, sd.seen, sd.unseen, name + " validation")}
    if method == "conse":
        model = models.build(cfg.model, data.input_shape, len(sd.seen), seed=seed)
        history = training.train_supervised(model, sd.x, sd.y, lr=cfg.lr, **common)

        def predict(images, candidates):
            logits = model.predict(images, batch_size=512, verbose=0)
            probs = keras.ops.convert_to_numpy(keras.ops.softmax(logits, axis=-1))
            embedded = zero_shot.conse(probs, vectors[sd.seen], top=cfg.top)
            return np.asarray(candidates)[zero_shot.nearest(embedded, vectors[candidates])]
        class_rows = len(sd.seen)  # ConSE's classifier never sees a class vector while training
    else:
        embed_dim = cfg.embed_dim if method == "embedding" else None
        dims = embed_dim or vectors.shape[1]
        encoder = models.build(cfg.model, data.input_shape, dims, seed=seed)
        model = zero_shot.embedding_model(encoder, vectors[sd.seen], embed_dim=embed_dim, name=f"zero_shot_{method}")
        loss = zero_shot.MarginLoss(cfg.margin) if method == "embedding" else zero_shot.DeViSELoss(cfg.devise_margin)
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=cfg.lr), loss=loss, metrics=["accuracy"])
        history = training.fit(model, sd.x, sd.y, **common)

        def predict(images, candidates):
            return np.asarray(candidates)[zero_shot.class_scores(model, images, vectors[candidates]).argmax(1)]
        class_rows = int(model.get_layer(zero_shot.CLASS_SCORES).class_vectors.shape[0])
    ctx.save_model(model, name)
    scores = zero_shot.evaluate(predict, data.x_test, data.y_test, sd.seen, sd.unseen)
    return {**scores, "training_data": inputs, "class_vectors_in_training": class_rows, "history": history}


def run(cfg: Config, ctx) -> dict:
    from tfkd import attributes
    from tfkd import data as data_lib
    from tfkd.recipes import common, plots

    data = common.load_data(cfg)
    attribute_names, table = attributes.table(cfg.dataset)
    if data.num_classes != len(table):
        raise ValueError(f"dataset={cfg.dataset!r} loaded with {data.num_classes} classes but its attribute table "
                         f"has {len(table)} rows.")
    sd = seen_data(data, cfg.unseen)
    ctx.plan([f"{m}/seed{s}" for s in range(cfg.seeds) for m in METHODS])
    results = {m: [] for m in METHODS}
    for s in range(cfg.seeds):
        for m in METHODS:
            results[m].append(ctx.stage(f"{m}/seed{s}", lambda: _train(cfg, ctx, data, sd, m, cfg.seed + s)))
    names = data_lib.DATASETS[cfg.dataset].class_names
    unseen_names = ", ".join(names[c] for c in sd.unseen)
    labels = {"embedding": f"attribute embedding (margin loss, k={cfg.margin:g}, d={cfg.embed_dim})",
              "devise": f"DeViSE (fixed attribute vectors, hinge rank loss, margin {cfg.devise_margin:g})",
              "conse": f"ConSE (seen-class classifier, top {cfg.top})"}
    n_u, n_s, n_all = len(sd.unseen), len(sd.seen), len(table)
    keys = ("unseen", "generalised_unseen", "generalised_seen", "generalised_harmonic", "generalised_all", "seen")
    rows = [["chance", f"{1 / n_u:.4f}", "—", "—", "—", f"{1 / n_all:.4f}", f"{1 / n_s:.4f}"]]
    rows += [[labels[m], *(mean_std([r[k] for r in results[m]]) for k in keys)] for m in METHODS]
    present = sorted({c for m in METHODS for r in results[m] for part in r["training_data"].values()
                      for c in part["classes"]})
    leaked = sorted(set(present) & set(sd.unseen))
    summary = [
        data.summary,
        f"held out: {unseen_names} (classes {sd.unseen}); trained on {n_s} seen classes. The arrays given to fit "
        f"held classes {present} only ({results['embedding'][0]['training_data']['train']['examples']} training, "
        f"{results['embedding'][0]['training_data']['validation']['examples']} validation images): "
        + ("no unseen class, checked before every training." if not leaked else f"UNSEEN CLASSES {leaked} PRESENT."),
        f"class vectors: {len(attribute_names)} hand-written binary attributes per class (tfkd.attributes: "
        f"{', '.join(attribute_names)}).",
    ]
    for m in METHODS:
        u = float(np.mean([r["unseen"] for r in results[m]]))
        g = float(np.mean([r["generalised_unseen"] for r in results[m]]))
        summary.append(f"{labels[m]}: unseen classes {u:.4f} vs chance {1 / n_u:.4f} "
                       f"({'above' if u > 1 / n_u else 'NOT above'} chance, {(u - 1 / n_u) * 100:+.1f} points); in "
                       f"the generalised setting it finds {g:.4f} of the unseen images.")
    biased = [labels[m] for m in METHODS if np.mean([r["generalised_unseen"] for r in results[m]])
              < np.mean([r["generalised_seen"] for r in results[m]])]
    if biased:
        summary.append(f"In the generalised setting {len(biased)} of {len(METHODS)} methods favour the seen classes "
                       "(unseen images found less often than seen ones): trained to score the seen classes high, "
                       "they give an unseen image a similar seen class (the known seen-class bias of zero-shot "
                       "learning; the harmonic mean shows it).")
    vals = {m: [r["unseen"] for r in results[m]] for m in METHODS}
    chance_label = f"chance (1/{n_u})"
    figures = [
        {"title": "unseen-class accuracy", "path": ctx.relative(plots.comparison(
            [chance_label] + [labels[m] for m in METHODS], [1 / n_u] + [float(np.mean(vals[m])) for m in METHODS],
            [0.0] + [float(np.std(vals[m], ddof=1)) if len(vals[m]) > 1 else 0.0 for m in METHODS],
            [1] + [len(vals[m]) for m in METHODS], ctx.path("plots", "unseen_accuracy.png"),
            f"Zero-shot accuracy on {unseen_names} (unseen candidates only)", "test accuracy",
            reference=chance_label))},
        {"title": "validation accuracy (seen classes)", "path": ctx.relative(plots.curves(
            {labels[m]: results[m][0]["history"] for m in METHODS}, "val_accuracy",
            ctx.path("plots", "curves_val_accuracy.png"), "Validation accuracy among the seen classes"))},
    ]
    lead = ", ".join(f"{m} {np.mean(vals[m]):.4f}" for m in METHODS)
    return {"title": f"zero-shot: {cfg.dataset}, unseen = {unseen_names}",
            "lead": f"Accuracy on the {n_u} unseen classes (chance {1 / n_u:.4f}): {lead}.",
            "summary": summary,
            "tables": [{"title": f"Test accuracy (mean ± std over {cfg.seeds} seed(s))",
                        "columns": ["method", f"unseen only ({n_u} candidates)", "generalised: unseen images",
                                    "generalised: seen images", "generalised: harmonic mean",
                                    f"generalised: all images ({n_all} candidates)", f"seen only ({n_s} candidates)"],
                        "rows": rows},
                       {"title": "Attribute table (class vectors)", "columns": ["class", *attribute_names],
                        "rows": [[f"{c} {names[c]}" + (" (unseen)" if c in sd.unseen else ""),
                                  *(str(int(v)) for v in table[c])] for c in range(n_all)]}],
            "figures": figures,
            "results": {"methods": results, "seen": sd.seen, "unseen": sd.unseen,
                        "classes_in_training_arrays": present, "attributes": list(attribute_names)}}
