"""``tfkd run noisy-student``: self-training with Noisy Student (Xie et al., 2020).

1. A teacher is trained on the labeled part (``--labeled-fraction`` of the training set; the rest is used
   without its labels, which are kept hidden for measuring pseudo-label accuracy).
2. The teacher, **without noise** (``training=False``, clean images), labels the unlabeled images: soft or hard
   pseudo-labels, kept where its confidence is ``>= --threshold``, classes balanced by keeping the most confident
   or duplicating.
3. A student **equal to or larger than** the teacher (``--models``) trains on labeled + pseudo-labeled data
   **with noise**: RandAugment on its inputs, dropout, and stochastic depth for residual models. The teacher's
   targets were computed on the clean images and the student sees noised ones: a Distiller on cached targets whose
   student view is augmented per batch (no second training loop).
4. The student becomes the teacher; repeat for ``--iterations``.

The report gives, per iteration: clean test accuracy, accuracy on the corrupted test set (noise, blur, contrast at
three severities), pseudo-label accuracy against the hidden labels, and per-class counts that passed the filter;
plus the supervised-only baseline and an ablation with all noise off (plain self-training).

Example:

    tfkd run noisy-student --dataset mnist --labeled-fraction 0.1 --iterations 2
"""

from __future__ import annotations

import dataclasses
import typing

import numpy as np

from tfkd.recipes.common import progress
from tfkd.recipes.config import RecipeConfig, field

NAME = "noisy-student"
DESCRIPTION = "Noisy Student self-training: clean teacher pseudo-labels, noised equal-or-larger students"


@dataclasses.dataclass
class Config(RecipeConfig):
    INPUT_SCALE_255 = False  # RandAugment noise and the corrupted test set expect [0, 1]
    dataset: str = field("mnist", "dataset")
    labeled_fraction: float = field(0.1, "share of the training set whose labels are used")
    models: typing.List[str] = field(["plain_cnn:2", "plain_cnn:4", "plain_cnn:6"],
                                     "teacher then one student per iteration, each equal or larger")
    iterations: int = field(2, "self-training iterations (students); needs len(models) >= iterations + 1")
    pseudo: str = field("soft", "pseudo-labels: soft (teacher probabilities) or hard (its top class)")
    threshold: float = field(0.3, "keep unlabeled images whose top pseudo-label probability is >= this")
    balance: bool = field(True, "balance classes among the kept images (trim the most confident / duplicate)")
    noise: str = field("randaugment", "student input noise: randaugment, simple or none")
    magnitude: float = field(0.3, "input noise strength in [0, 1]")
    dropout: float = field(0.3, "student dropout rate before the classifier")
    stochastic_depth: float = field(0.0, "student stochastic depth drop rate (residual models only)")
    teacher_epochs: int = field(10, "epochs of the first teacher (labeled data only)")
    epochs: int = field(10, "epochs of every student")
    ablation: bool = field(True, "also train iteration 1's student with all noise off (plain self-training)")

    def validate(self):
        super().validate()
        if not 0 < self.labeled_fraction < 1:
            raise ValueError(f"labeled_fraction={self.labeled_fraction} must be in (0, 1).")
        if self.iterations < 1 or len(self.models) < self.iterations + 1:
            raise ValueError(f"iterations={self.iterations} needs models with at least {self.iterations + 1} specs "
                             f"(teacher + one per iteration); got {self.models}.")
        if self.pseudo not in ("soft", "hard"):
            raise ValueError(f"pseudo={self.pseudo!r}; expected 'soft' or 'hard'.")
        if not 0 <= self.threshold < 1:
            raise ValueError(f"threshold={self.threshold} must be in [0, 1).")
        if self.noise not in ("randaugment", "simple", "none"):
            raise ValueError(f"noise={self.noise!r}; expected randaugment, simple or none.")
        if not 0 <= self.dropout < 1 or not 0 <= self.stochastic_depth < 1:
            raise ValueError("dropout and stochastic_depth must be in [0, 1).")


@dataclasses.dataclass
class SemiData:
    x_lab: np.ndarray
    y_lab: np.ndarray
    x_unl: np.ndarray
    y_unl_hidden: np.ndarray  # never used for training: only to score pseudo-labels
    x_test: np.ndarray
    y_test: np.ndarray
    corrupted: dict
    num_classes: int
    summary: str


def load_semi(cfg) -> SemiData:
    from tfkd import data as data_lib
    from tfkd.recipes.common import load_splits

    splits = load_splits(cfg)
    x_lab, y_lab, x_unl, y_hidden = data_lib.labeled_unlabeled_split(splits.x_train, splits.y_train,
                                                                     cfg.labeled_fraction, seed=cfg.seed)
    corrupted = data_lib.corrupted_test_set(splits.x_test, splits.y_test, seed=cfg.seed)
    summary = (f"data: {splits.name} from {splits.source}: {len(x_lab)} labeled ({cfg.labeled_fraction:.0%}), "
               f"{len(x_unl)} unlabeled (labels hidden), {len(splits.x_test)} test; corrupted test: "
               f"{len(corrupted)} (kind, severity) sets")
    print(summary, flush=True)
    return SemiData(x_lab, y_lab.astype("int32"), x_unl, np.asarray(y_hidden).astype("int32"), splits.x_test,
                    splits.y_test.astype("int32"), corrupted, int(splits.num_classes), summary)


def _evaluate(model, d: SemiData) -> dict:
    from tfkd import training

    per = {f"{kind}@{sev}": training.accuracy(model, x, y) for (kind, sev), (x, y) in d.corrupted.items()}
    return {"clean": training.accuracy(model, d.x_test, d.y_test), "corrupted_mean": float(np.mean(list(per.values()))),
            "corrupted": per}


def _build(cfg, spec, d: SemiData, seed, noisy):
    from tfkd import models

    options = {}
    if noisy and cfg.dropout:
        options["dropout"] = cfg.dropout
    if noisy and cfg.stochastic_depth and spec.startswith("resnet"):
        options["stochastic_depth"] = cfg.stochastic_depth
    return models.build(spec, d.x_lab.shape[1:], d.num_classes, seed=seed, **options)


def _teacher_stage(cfg, ctx, d: SemiData):
    import keras

    from tfkd import training

    keras.utils.set_random_seed(cfg.seed)
    model = _build(cfg, cfg.models[0], d, cfg.seed, noisy=True)
    training.train_supervised(model, d.x_lab, d.y_lab, epochs=cfg.teacher_epochs, batch_size=cfg.batch_size,
                              lr=cfg.lr, checkpoint_dir=ctx.checkpoint_dir("iter0"), log_dir=ctx.log_dir("iter0"),
                              label="iter0 (supervised)", verbose=int(ctx.verbose),
                              callbacks=progress(ctx, "iter0 (supervised)", cfg.teacher_epochs))
    ctx.save_model(model, "iter0")
    return {"spec": cfg.models[0], **_evaluate(model, d)}


def _pseudo_stage(cfg, ctx, d: SemiData, it):
    """The previous model labels the clean unlabeled images; save the selection and the training targets."""
    from tfkd import io, pseudo
    from tfkd.teachers import fingerprint, virtual_teacher_logits

    teacher = ctx.load_model(f"iter{it - 1}")
    logits = teacher.predict(d.x_unl, batch_size=512, verbose=0)  # predict runs training=False: no dropout/noise
    probs = _softmax(logits)
    sel = pseudo.select(probs, threshold=cfg.threshold, balance=cfg.balance, seed=cfg.seed + it)
    if cfg.pseudo == "soft":
        unl_targets = np.log(np.clip(probs[sel.indices], 1e-12, 1.0))
    else:
        unl_targets = virtual_teacher_logits(probs[sel.indices].argmax(1), d.num_classes, 1 - 1e-4)
    lab_targets = virtual_teacher_logits(d.y_lab, d.num_classes, 1 - 1e-4)  # true labels as (near) one-hot targets
    path = ctx.path("pseudo", f"iter{it}.npz")
    with io.atomic_path(path) as tmp:
        np.savez(tmp, indices=sel.indices, targets=np.concatenate([lab_targets, unl_targets]).astype("float32"),
                 teacher_logits=logits.astype("float32"))
    kept_pred = probs[sel.indices].argmax(1)
    passed = np.flatnonzero(probs.max(1) >= cfg.threshold)
    return {"path": ctx.relative(path), "labelled_inputs_fingerprint": fingerprint(d.x_unl),
            "passed_per_class": sel.passed_per_class, "kept_per_class": sel.kept_per_class,
            "passed": int(len(passed)), "kept_rows": int(len(sel.indices)),
            "pseudo_label_accuracy_passed": float(np.mean(probs[passed].argmax(1) == d.y_unl_hidden[passed]))
            if len(passed) else None,
            "pseudo_label_accuracy_kept": float(np.mean(kept_pred == d.y_unl_hidden[sel.indices]))
            if len(sel.indices) else None}


def _student_stage(cfg, ctx, d: SemiData, it, name, noisy):
    import keras

    from tfkd import augment, training
    from tfkd.teachers import cache_from_logits

    with np.load(ctx.dir / "pseudo" / f"iter{it}.npz") as f:
        indices, targets = f["indices"], f["targets"]
    x = np.concatenate([d.x_lab, d.x_unl[indices]])
    cache = cache_from_logits(x, targets)  # targets were computed on these clean images
    seed = cfg.seed + it
    keras.utils.set_random_seed(seed)
    noise = augment.make(cfg.noise if noisy else "none", magnitude=cfg.magnitude, seed=seed)
    ds = cache.dataset(x, batch_size=cfg.batch_size, shuffle=True, seed=seed, student_transform=noise)
    student = _build(cfg, cfg.models[it], d, seed, noisy=noisy)
    _, history = training.train_distilled(None, student, ds, epochs=cfg.epochs, alpha=1.0, temperature=1.0,
                                          lr=cfg.lr, checkpoint_dir=ctx.checkpoint_dir(name),
                                          log_dir=ctx.log_dir(name), label=name, verbose=int(ctx.verbose),
                                          callbacks=progress(ctx, name, cfg.epochs))
    ctx.save_model(student, name)
    return {"spec": cfg.models[it], "noisy": noisy, "train_examples": int(len(x)), **_evaluate(student, d),
            "history": history}


def _fmt(value):
    return "—" if value is None else f"{value:.4f}"


def _softmax(z):
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def run(cfg: Config, ctx) -> dict:
    import warnings

    d = load_semi(cfg)
    stages = ["iter0"] + [s for it in range(1, cfg.iterations + 1) for s in (f"pseudo/iter{it}", f"iter{it}")]
    ctx.plan(stages + (["self_training/iter1"] if cfg.ablation else []))
    rows = {"iter0": ctx.stage("iter0", lambda: _teacher_stage(cfg, ctx, d))}
    pseudo_info = {}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*carry no labels.*")  # by design: targets are the cached ones
        for it in range(1, cfg.iterations + 1):
            pseudo_info[it] = ctx.stage(f"pseudo/iter{it}", lambda: _pseudo_stage(cfg, ctx, d, it))
            rows[f"iter{it}"] = ctx.stage(f"iter{it}", lambda: _student_stage(cfg, ctx, d, it, f"iter{it}", True))
        if cfg.ablation:
            rows["self_training"] = ctx.stage("self_training/iter1", lambda: _student_stage(
                cfg, ctx, d, 1, "self_training_iter1", False))
    return _report(cfg, d, rows, pseudo_info)


def _report(cfg, d, rows, pseudo_info):
    table = [["supervised only (iteration 0)", cfg.models[0], f"{rows['iter0']['clean']:.4f}",
              f"{rows['iter0']['corrupted_mean']:.4f}", "—", "—"]]
    for it in range(1, cfg.iterations + 1):
        p = pseudo_info[it]
        table.append([f"Noisy Student iteration {it}", cfg.models[it], f"{rows[f'iter{it}']['clean']:.4f}",
                      f"{rows[f'iter{it}']['corrupted_mean']:.4f}", _fmt(p['pseudo_label_accuracy_kept']),
                      f"{p['passed']} passed, {p['kept_rows']} rows after balancing"])
    if "self_training" in rows:
        table.append(["ablation: noise off, iteration 1", cfg.models[1], f"{rows['self_training']['clean']:.4f}",
                      f"{rows['self_training']['corrupted_mean']:.4f}",
                      _fmt(pseudo_info[1]['pseudo_label_accuracy_kept']), "same pseudo-labels"])
    counts = [[f"iteration {it}"] + [f"{p}/{k}" for p, k in zip(pseudo_info[it]["passed_per_class"],
                                                                 pseudo_info[it]["kept_per_class"])]
              for it in pseudo_info]
    base = rows["iter0"]
    last = rows[f"iter{cfg.iterations}"]
    summary = [d.summary,
               f"clean: supervised {base['clean']:.4f} -> iteration {cfg.iterations} {last['clean']:.4f} "
               f"({(last['clean'] - base['clean']) * 100:+.2f} points); corrupted: {base['corrupted_mean']:.4f} -> "
               f"{last['corrupted_mean']:.4f} ({(last['corrupted_mean'] - base['corrupted_mean']) * 100:+.2f})."]
    if "self_training" in rows:
        gain = (rows["iter1"]["clean"] - rows["self_training"]["clean"]) * 100
        gain_c = (rows["iter1"]["corrupted_mean"] - rows["self_training"]["corrupted_mean"]) * 100
        summary.append(f"noise {'helped' if gain > 0 else 'did NOT help'} at this scale: iteration 1 with noise vs "
                       f"without: {gain:+.2f} points clean, {gain_c:+.2f} corrupted.")
    return {"title": f"noisy-student: {cfg.dataset}, {cfg.labeled_fraction:.0%} labeled, {cfg.iterations} iterations",
            "summary": summary,
            "tables": [{"title": "Accuracy per iteration", "columns": ["model", "spec", "clean test",
                                                                      "corrupted test (mean)", "pseudo-label acc.",
                                                                      "unlabeled used"], "rows": table},
                       {"title": "Unlabeled images per predicted class: passed the threshold / kept after balancing",
                        "columns": ["iteration"] + [str(c) for c in range(d.num_classes)], "rows": counts}],
            "figures": [], "results": {"models": rows, "pseudo": pseudo_info}}
