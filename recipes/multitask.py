"""``tfkd run multitask``: two labelled tasks trained together, one shared trunk and a head per task.

Source (``--source``, default MNIST digits) and target (``--dataset``, default Fashion-MNIST) are both labelled
and share an input shape. Three arms, every one trained on exactly the same labelled images, each image the same
number of times, for the same number of steps:

- **multitask**: :func:`tfkd.multitask.multi_head`: the first ``--share-depth`` layer groups of ``--model`` (default:
  its whole trunk, so each task owns only its logits layer) shared, trained with ``fit`` on both tasks at once.
  Unequal sizes are handled by **cycling** the smaller task: each epoch holds ``max(n_source, n_target)`` rows of
  each task (the smaller task's images repeated, each equally often give or take one), shuffled together, with
  **sample weights** that give every row a loss on its own task's head only and each task half of the loss
  (:func:`tfkd.multitask.task_union`). A batch of ``--batch-size`` holds about half of each task.
- **separate** (baseline a): one ``--model`` network per task, nothing shared, each trained on its task's rows of
  that same union (the same images, repeats included) with half the batch size, so each takes the multitask arm's
  number of steps and the two together cost what it costs. Its source network starts from the multitask arm's
  initial trunk and source head (the same build seed); its target network is its own draw.
- **target only** (baseline b): the multitask arm's own shared trunk and target head, from the same initial
  weights, trained on the target rows alone (half batch, same steps): what the target gets without the source task.

With ``--share-depth`` equal to the whole trunk (the default), (a)'s target network and (b) are the same
architecture; they differ in their initial weights only, (b)'s being the multitask arm's.

The report gives per-task test accuracy and parameter counts, and, for every arm and task, a hash of the
indices and of the pixels of the labelled images it trained on (repeats included), which must agree across arms.
``--n-target-labels`` (e.g. 100) is the few-label variant, where sharing is expected to help most.

Example:

    tfkd run multitask --seeds 3
    tfkd run multitask --n-target-labels 100 --share-depth 2
"""

from __future__ import annotations

import dataclasses
import typing

import numpy as np

from tfkd.recipes import plots
from tfkd.recipes.common import progress
from tfkd.recipes.config import RecipeConfig, field
from tfkd.recipes.report import mean_std

NAME = "multitask"
DESCRIPTION = "one shared trunk with a head per task (source + target, both labelled) vs separate models"

ARMS = ("multitask", "separate", "target_only")


@dataclasses.dataclass
class Config(RecipeConfig):
    INPUT_SCALE_255 = False  # the two datasets are loaded as [0, 1] images and fed as such

    dataset: str = field("fashion_mnist", "target dataset (labelled; --n-target-labels of its training images)")
    source: str = field("mnist", "source dataset (labelled; --n-train of its training images), same image shape "
                                 "as the target")
    model: str = field("plain_cnn:4", "network spec, a chain model (plain_cnn, mlp, mobile_cnn)")
    share_depth: typing.Optional[int] = field(None, "layer groups of --model shared by the tasks, 0 for none; a "
                                                    "group is a weighted layer with its BN, activation and pooling "
                                                    "(default: the whole trunk, each task owning its logits layer)")
    n_train: int = field(4000, "labelled source training images (a stratified subset)")
    n_target_labels: typing.Optional[int] = field(None, "labelled target training images, a stratified subset; "
                                                        "e.g. 100 for few labels (default: as many as --n-train)")
    n_val: int = field(500, "other labelled training images per task, for the validation curves only (0: none)")
    epochs: int = field(5, "epochs, each max(n_train, n_target_labels) rows of every task")
    batch_size: int = field(64, "multitask batch (about half of each task); the single-task arms take half of it")
    export: bool = field(False, "export the multitask arm's target network (seed 0) to TFLite and validate it")

    def validate(self):
        super().validate()
        validate_pair(self)
        if self.batch_size < 2 or self.batch_size % 2:
            raise ValueError(f"batch_size={self.batch_size}: expected an even number >= 2 (the single-task arms "
                             "train with half of it, so that every arm takes the same number of steps).")
        if self.n_train <= 0:
            raise ValueError(f"n_train={self.n_train} must be a positive number of labelled source images.")
        if self.n_target_labels is not None and self.n_target_labels <= 0:
            raise ValueError(f"n_target_labels={self.n_target_labels} must be a positive number of labelled target "
                             "images, or omitted (as many as --n-train).")
        if self.n_val < 0:
            raise ValueError(f"n_val={self.n_val} must be >= 0 (0: no validation curves).")
        if self.share_depth is not None and self.share_depth < 0:
            raise ValueError(f"share_depth={self.share_depth} must be >= 0 (0 shares nothing) or omitted (the "
                             "whole trunk).")


def validate_pair(cfg):
    """``--source`` and ``--dataset`` (the target) name two different known datasets."""
    from tfkd import data as data_lib

    for name in ("source", "dataset"):
        value = getattr(cfg, name)
        if value not in data_lib.NAMES:
            raise ValueError(f"{name}={value!r} is not a dataset tfkd knows; expected one of "
                             f"{', '.join(data_lib.NAMES)}.")
    if cfg.source == cfg.dataset:
        raise ValueError(f"source={cfg.source!r} and dataset={cfg.dataset!r} are the same dataset; give two "
                         "different ones (e.g. --source mnist --dataset fashion_mnist).")


# ---------------------------------------------------------------------------------------------------------- data
@dataclasses.dataclass
class Task:
    """One labelled task: training images with their rows in the dataset's training split, validation, test."""

    name: str
    x: np.ndarray
    y: np.ndarray
    index: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    input_shape: tuple
    source: str


def stratified_pick(y, n, rng, exclude=None, what="n"):
    """Sorted rows of ``n`` examples, ``n // k`` per class and one more for ``n % k`` random classes (``k``
    classes), never a row in ``exclude``."""
    classes = np.unique(y)
    if n < len(classes):
        raise ValueError(f"{what}={n} is fewer than the {len(classes)} classes; expected at least one image per "
                         f"class, i.e. {what} >= {len(classes)}.")
    quota = np.full(len(classes), n // len(classes))
    quota[rng.permutation(len(classes))[: n % len(classes)]] += 1
    free = np.ones(len(y), bool)
    if exclude is not None:
        free[exclude] = False
    picks = []
    for c, q in zip(classes, quota):
        rows = np.flatnonzero((y == c) & free)
        if len(rows) < q:
            raise ValueError(f"{what}={n}: class {c} has only {len(rows)} images left to draw {q} from; lower {what}.")
        picks.append(rng.choice(rows, q, replace=False))
    return np.sort(np.concatenate(picks))


def load_task(cfg, dataset, n, name, what, seed):
    """``n`` labelled training images of ``dataset`` (stratified), ``cfg.n_val`` others and the test split."""
    from tfkd import data as data_lib

    splits = data_lib.load(dataset, data_dir=cfg.data_dir)
    if cfg.n_test:
        splits = data_lib.subset(splits, n_test=min(cfg.n_test, len(splits.x_test)), seed=seed)
    y = np.asarray(splits.y_train)
    if n > len(y):
        raise ValueError(f"{what}={n}: {dataset} has only {len(y)} training images.")
    rng = np.random.default_rng([seed, 7])
    index = stratified_pick(y, n, rng, what=what)
    val = stratified_pick(y, cfg.n_val, rng, exclude=index, what="n_val") if cfg.n_val else np.zeros(0, int)
    return Task(name, splits.x_train[index], y[index].astype("int32"), index, splits.x_train[val],
                y[val].astype("int32"), splits.x_test, np.asarray(splits.y_test).astype("int32"),
                int(splits.num_classes), tuple(splits.input_shape), splits.source)


def check_shapes(source, source_shape, target, target_shape):
    """Source and target images must have one shape: one network takes both."""
    if tuple(source_shape) != tuple(target_shape):
        raise ValueError(f"source={source!r} has images {tuple(source_shape)} but dataset={target!r} (the target) "
                         f"has {tuple(target_shape)}; one network takes both, so give two datasets of one image "
                         "shape (mnist and fashion_mnist are both 28x28x1).")


def images_seen(x, y, index) -> dict:
    """What a training saw of one task: rows (repeats included), distinct images, and hashes of its indices,
    pixels and labels taken in index order (equal for two trainings on the same images the same number of times,
    whatever their order)."""
    from tfkd.teachers import fingerprint

    order = np.argsort(index, kind="stable")
    return {"rows": int(len(index)), "distinct": int(len(np.unique(index))),
            "index_sha": fingerprint(np.asarray(index, np.int64)[order]),
            "images_sha": fingerprint(np.ascontiguousarray(x[order])), "labels_sha": fingerprint(
                np.asarray(y, np.int64)[order])}


# -------------------------------------------------------------------------------------------------------- stages
def _union(cfg, src, tgt, seed):
    from tfkd import multitask

    union = multitask.task_union({"source": (src.x, src.y), "target": (tgt.x, tgt.y)}, seed=seed)
    val = multitask.task_union({"source": (src.x_val, src.y_val), "target": (tgt.x_val, tgt.y_val)}, seed=seed) \
        if cfg.n_val else None
    return union, val


def _scores(model, task) -> float:
    from tfkd import training

    return training.accuracy(model, task.x_test, task.y_test)


def _params(model) -> int:
    return int(sum(int(np.prod(w.shape)) for w in model.weights))


def _multi_head(cfg, src, tgt, seed):
    from tfkd import multitask

    return multitask.multi_head(cfg.model, src.input_shape, {"source": src.num_classes, "target": tgt.num_classes},
                                share_depth=cfg.share_depth, seed=seed)


def _multitask_stage(cfg, ctx, src, tgt, union, val, seed, s):
    import keras

    from tfkd import multitask, trunk

    keras.utils.set_random_seed(seed)
    model = _multi_head(cfg, src, tgt, seed)
    name = f"multitask_seed{s}"
    history = multitask.train_multitask(model, union, epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr,
                                        validation_data=val, checkpoint_dir=ctx.checkpoint_dir(name),
                                        log_dir=ctx.log_dir(name), label=name, verbose=int(ctx.verbose),
                                        callbacks=_target_progress(cfg, ctx, name))
    ctx.save_model(model, name)
    target_net = multitask.task_model(model, "target", name=f"multitask_target_seed{s}")
    ctx.save_model(target_net, f"multitask_target_seed{s}")
    seen = {}
    for t, task in (("source", src), ("target", tgt)):
        rows = union.sample_weight[t] > 0  # the rows whose loss reaches this task's head
        seen[t] = images_seen(union.x[rows], union.y[t][rows], task.index[union.index[rows]])  # dataset rows
    first = _builds_first(cfg, src, seed)
    base, depth = trunk.layer_groups(first), trunk.check_depth(first, cfg.share_depth, "share_depth")
    return {"source": _scores(multitask.task_model(model, "source"), src), "target": _scores(target_net, tgt),
            "params": _params(model), "params_per_task": {"source": _params(multitask.task_model(model, "source")),
                                                          "target": _params(target_net)},
            "shared_groups": [g[0].name for g in base[:depth]], "steps_per_epoch": -(-len(union) // cfg.batch_size),
            "seen": seen, "history": history}


def _target_progress(cfg, ctx, name):
    """:func:`tfkd.recipes.common.progress`, showing the target head's accuracy (a multitask fit logs no
    ``val_accuracy``)."""
    if ctx.verbose:
        return []
    from tfkd.progress import StageProgress

    return [StageProgress(name, cfg.epochs, metric="val_target_accuracy" if cfg.n_val else "target_accuracy",
                          on_summary=getattr(ctx, "stage_note", None))]


def _builds_first(cfg, src, seed):
    from tfkd import models

    return models.build(cfg.model, src.input_shape, src.num_classes, seed=seed)


def _single_stage(cfg, ctx, union, task_name, task, model, name):
    """Train ``model`` on one task's rows of the union, half batch: the multitask arm's steps, images, repeats."""
    from tfkd import training

    x, y, index = union.rows(task_name)
    half = cfg.batch_size // 2
    history = training.train_supervised(model, x, y, epochs=cfg.epochs, batch_size=half, lr=cfg.lr,
                                        validation_data=(task.x_val, task.y_val) if cfg.n_val else None,
                                        checkpoint_dir=ctx.checkpoint_dir(name), log_dir=ctx.log_dir(name),
                                        label=name, verbose=int(ctx.verbose),
                                        callbacks=progress(ctx, name, cfg.epochs))
    ctx.save_model(model, name)
    return {task_name: _scores(model, task), "params": _params(model), "steps_per_epoch": -(-len(x) // half),
            "seen": {task_name: images_seen(x, y, task.index[index])}, "history": history}


def _separate_stage(cfg, ctx, src, tgt, union, seed, s, which):
    import keras

    from tfkd import models, multitask

    keras.utils.set_random_seed(seed)
    task = src if which == "source" else tgt
    # The source network starts as the multitask arm's trunk + source head; the target network is its own draw.
    model = models.build(cfg.model, task.input_shape, task.num_classes,
                         seed=multitask.task_seed(seed, 0 if which == "source" else 1))
    return _single_stage(cfg, ctx, union, which, task, model, f"separate_{which}_seed{s}")


def _target_only_stage(cfg, ctx, src, tgt, union, seed, s):
    import keras

    from tfkd import multitask

    keras.utils.set_random_seed(seed)
    model = multitask.task_model(_multi_head(cfg, src, tgt, seed), "target", name=f"target_only_seed{s}")
    return _single_stage(cfg, ctx, union, "target", tgt, model, f"target_only_seed{s}")


# ---------------------------------------------------------------------------------------------------------- run
def gap(mine, theirs) -> str:
    """``"beat X by 1.23 points"``-style words for two arms' accuracies over seeds (``X`` left for the caller):
    ``"beat"``, ``"LOST to"`` or ``"tied"``, and, with several seeds, ``"(within seed noise)"`` where the gap of
    the means is no larger than the larger of the two standard deviations."""
    delta = (float(np.mean(mine)) - float(np.mean(theirs))) * 100
    verdict = "beat" if delta > 0 else "LOST to" if delta < 0 else "tied"
    noisy = len(mine) > 1 and len(theirs) > 1 and \
        abs(delta) <= 100 * max(float(np.std(mine, ddof=1)), float(np.std(theirs, ddof=1)))
    return f"{verdict} {{}} by {abs(delta):.2f} points" + (" (within seed noise)" if noisy else "")


def run(cfg: Config, ctx) -> dict:
    n_target = cfg.n_target_labels or cfg.n_train
    src = load_task(cfg, cfg.source, cfg.n_train, cfg.source, "n_train", cfg.seed)
    tgt = load_task(cfg, cfg.dataset, n_target, cfg.dataset, "n_target_labels", cfg.seed)
    check_shapes(cfg.source, src.input_shape, cfg.dataset, tgt.input_shape)
    from tfkd import trunk

    trunk.check_depth(_builds_first(cfg, src, cfg.seed), cfg.share_depth, "share_depth")  # before any training
    summary_data = (f"data: source {src.name} ({src.source}): {len(src.x)} labelled training images; target "
                    f"{tgt.name} ({tgt.source}): {len(tgt.x)} labelled training images; {cfg.n_val} more per task "
                    f"for validation curves; test {len(src.x_test)} / {len(tgt.x_test)} images")
    print(summary_data, flush=True)
    stages = ["multitask", "separate_source", "separate_target", "target_only"]
    ctx.plan([f"{a}/seed{s}" for s in range(cfg.seeds) for a in stages] + (["export"] if cfg.export else []))
    results = {a: [] for a in ARMS}
    for s in range(cfg.seeds):
        seed = cfg.seed + s
        union, val = _union(cfg, src, tgt, seed)
        results["multitask"].append(ctx.stage(f"multitask/seed{s}", lambda: _multitask_stage(
            cfg, ctx, src, tgt, union, val, seed, s)))
        a = ctx.stage(f"separate_source/seed{s}", lambda: _separate_stage(cfg, ctx, src, tgt, union, seed, s,
                                                                          "source"))
        b = ctx.stage(f"separate_target/seed{s}", lambda: _separate_stage(cfg, ctx, src, tgt, union, seed, s,
                                                                          "target"))
        results["separate"].append({"source": a["source"], "target": b["target"], "params": a["params"] + b["params"],
                                    "networks": {"source": a, "target": b},
                                    "seen": {"source": a["seen"]["source"], "target": b["seen"]["target"]}})
        results["target_only"].append(ctx.stage(f"target_only/seed{s}", lambda: _target_only_stage(
            cfg, ctx, src, tgt, union, seed, s)))
    export_info = None
    if cfg.export:
        from tfkd.recipes import common

        data = common.Data(tgt.x, tgt.y, tgt.x_val, tgt.y_val, tgt.x_test, tgt.y_test, tgt.input_shape,
                           tgt.num_classes, summary_data)
        export_info = ctx.stage("export", lambda: common.export_stage(cfg, ctx, data, "multitask_target_seed0"))
    return _report(cfg, ctx, src, tgt, results, summary_data, export_info)


def _report(cfg, ctx, src, tgt, results, summary_data, export_info):
    from tfkd.recipes import common

    mt = results["multitask"][0]
    shared = mt["shared_groups"]
    labels = {"multitask": f"multitask (shares {', '.join(shared) if shared else 'nothing'})",
              "separate": "(a) separate networks, one per task",
              "target_only": "(b) shared trunk + target head, target alone"}
    acc = {a: {t: [r[t] for r in rs if t in r] for t in ("source", "target")} for a, rs in results.items()}
    mean = {a: {t: float(np.mean(v)) if v else None for t, v in acc[a].items()} for a in acc}
    rows = []
    for a in ARMS:
        r = results[a][0]
        params = f"{r['params']:,}" if a != "separate" else \
            f"{r['params']:,} ({r['networks']['source']['params']:,} + {r['networks']['target']['params']:,})"
        rows.append([labels[a], params, mean_std(acc[a]["source"]) if acc[a]["source"] else "—",
                     mean_std(acc[a]["target"]),
                     "—" if a == "multitask" else f"{(mean['multitask']['target'] - mean[a]['target']) * 100:+.2f}"])
    seen_rows = []
    for a in ARMS:
        for t, task in (("source", src), ("target", tgt)):
            seen = results[a][0]["seen"].get(t)
            if seen:
                seen_rows.append([labels[a], f"{t} ({task.name})", f"{seen['rows']:,}", f"{seen['distinct']:,}",
                                  seen["index_sha"], seen["images_sha"]])
    saved = results["separate"][0]["params"] - mt["params"]
    n_t, n_s = len(tgt.x), len(src.x)
    lead = (f"With {n_t} target labels, the multitask network "
            + gap(acc["multitask"]["target"], acc["target_only"]["target"]).format(f"the target-only network on "
                                                                                     f"{tgt.name}")
            + "; it " + gap(acc["multitask"]["target"], acc["separate"]["target"]).format("a separate network")
            + f" there, and on {src.name} it "
            + gap(acc["multitask"]["source"], acc["separate"]["source"]).format("a separate network")
            + f" (mean of {cfg.seeds} seed(s)).")
    summary = [summary_data,
               f"every arm: {cfg.epochs} epochs of {max(n_s, n_t):,} rows per task (the smaller task cycled), "
               f"{mt['steps_per_epoch']} steps per epoch; multitask batch {cfg.batch_size} (about half each task), "
               f"single-task arms batch {cfg.batch_size // 2}; lr {cfg.lr:g}; --model {cfg.model}.",
               f"parameters: the multitask network has {mt['params']:,}, the two separate networks "
               f"{saved + mt['params']:,} ({saved:,} more: the shared groups are counted once).",
               "every arm trained each task on the same labelled images, each the same number of times: the index "
               "and pixel hashes below agree across arms" if _hashes_agree(results) else
               "WARNING: the arms did not train on the same labelled images (hashes below differ)"]
    histories = {}
    for a in ARMS:
        r = results[a][0] if a != "separate" else results[a][0]["networks"]["target"]
        histories[labels[a]] = r["history"]
    figures = []
    if cfg.n_val:
        figures.append({"title": "target validation accuracy", "path": ctx.relative(plots.curves(
            histories, ["val_target_accuracy", "val_accuracy"], ctx.path("plots", "curves_target_val_accuracy.png"),
            f"Target ({tgt.name}) validation accuracy, seed {cfg.seed}", "validation accuracy"))})
    figures.append({"title": "target test accuracy", "path": ctx.relative(plots.comparison(
        [labels[a] for a in ARMS], [mean[a]["target"] for a in ARMS],
        [float(np.std(acc[a]["target"], ddof=1)) if len(acc[a]["target"]) > 1 else 0.0 for a in ARMS],
        [len(acc[a]["target"]) for a in ARMS], ctx.path("plots", "comparison_target.png"),
        f"Target ({tgt.name}) test accuracy, {n_t} labels", "test accuracy", reference=labels["target_only"]))})
    tables = [{"title": f"Test accuracy per task (mean ± std over {cfg.seeds} seed(s))",
               "columns": ["arm", "parameters", f"source: {src.name}", f"target: {tgt.name}",
                           "multitask's target gain (points)"], "rows": rows},
              {"title": f"Labelled images each arm trained on (seed {cfg.seed}; rows include repeats)",
               "columns": ["arm", "task", "rows per epoch", "distinct images", "index hash", "pixel hash"],
               "rows": seen_rows}]
    if export_info:
        tables.append(common.export_table(export_info, "Exported multitask target network (seed 0)"))
    return {"title": f"multitask: {src.name} + {tgt.name} ({n_t} target labels), {cfg.model}", "lead": lead,
            "summary": summary, "tables": tables, "figures": figures,
            "results": {"arms": results, "export": export_info,
                        "target_index": tgt.index.tolist(), "source_index": src.index.tolist()}}


def _hashes_agree(results) -> bool:
    """Whether, in every seed, every arm that trained a task saw the same labelled images of it."""
    for i in range(len(results["multitask"])):
        for t in ("source", "target"):
            keys = {tuple(rs[i]["seen"][t][k] for k in ("rows", "index_sha", "images_sha", "labels_sha"))
                    for rs in results.values() if t in rs[i]["seen"]}
            if len(keys) != 1:
                return False
    return True
