"""``tfkd run noisy-student``: self-training with Noisy Student (Xie et al., 2020).

1. A teacher is trained on the labeled part (``--labeled-fraction`` of the training set; the rest is used
   without its labels, which are kept hidden for measuring pseudo-label accuracy).
2. The teacher, **without noise** (``training=False``, clean images), labels the unlabeled images: soft or hard
   pseudo-labels, kept where its confidence is ``>= --threshold``, classes balanced by keeping the most confident
   or duplicating.
3. A student **equal to or larger than** the teacher (``--models``) trains on labeled + pseudo-labeled data
   **with noise**: input noise (``--noise``, default ``simple+degrade``: rotation/shift/zoom, then Gaussian noise,
   blur and lowered contrast of random strength), dropout, and stochastic depth for residual models. The teacher's
   targets were computed on the clean images and the student sees noised ones: a Distiller on cached targets whose
   student view is augmented per batch (no second training loop).
4. The student becomes the teacher; repeat for ``--iterations``.

The report gives, per iteration: clean test accuracy, accuracy on the corrupted test set (noise, blur, contrast at
three severities; also per family), pseudo-label accuracy against the hidden labels, and per-class counts that
passed the filter; plus the supervised-only baseline, an ablation with all noise off (plain self-training), and one
verdict line each for "iteration 2 keeps iteration 1's clean and corrupted accuracy" and "noise costs no robustness
against noise-off".

Why this noise: on MNIST with 10 % labels, RandAugment (the paper's choice, magnitude 0.3) made iteration 1 *less*
robust than noise-off (about -4 points corrupted over 3 seeds, nearly all on Gaussian noise and contrast), and so
did the geometric ``simple`` noise alone; dropout alone, or RandAugment at 0.1, gained 1.6-2.6 points. ``degrade``
shares its families with the corrupted test set (its own implementation, continuous strengths, not the test set's
function and severities), so its large robustness gain is partly training on the test families; ``simple`` before
it keeps the best clean accuracy. The measurements are in the README.

The default is a quick run (about 2 min on 2 CPU cores): a 12000-image stratified subset (1200 labeled), teacher 40
epochs, students 6. ``--full`` is the full-scale run (all 60000 images, 10 + 10 epochs, about 30 min).

Example:

    tfkd run noisy-student --dataset mnist --labeled-fraction 0.1 --iterations 2
    tfkd run noisy-student --full                   # every training image: 6000 labeled, 54000 unlabeled
"""

from __future__ import annotations

import dataclasses
import typing

import numpy as np

from tfkd.recipes.common import progress
from tfkd.recipes.config import RecipeConfig, field

NAME = "noisy-student"
DESCRIPTION = "Noisy Student self-training: clean teacher pseudo-labels, noised equal-or-larger students"


# The quick default and the full-scale run (--full); explicit flags win over either. The quick run keeps 10 % labels
# of a 12000-image stratified subset and about the full run's number of teacher steps (40 epochs of 1200 labeled
# images ~ 10 of 6000); its students see 6 epochs of ~12000 rows, the full run's 10 of ~55000.
SCALES = {"quick": {"n_train": 12000, "teacher_epochs": 40, "epochs": 6},
          "full": {"n_train": None, "teacher_epochs": 10, "epochs": 10}}
# --magnitude's default by --noise (kinds joined by "+" apply in turn at one magnitude; others default to 0.3)
MAGNITUDES = {"simple+degrade": 0.4, "degrade": 0.5, "randaugment": 0.3, "simple": 0.3, "none": 0.0}
NOISES = ("degrade", "randaugment", "simple", "none")


@dataclasses.dataclass
class Config(RecipeConfig):
    INPUT_SCALE_255 = False  # RandAugment noise and the corrupted test set expect [0, 1]
    dataset: str = field("mnist", "dataset")
    n_train: typing.Optional[int] = field(None, "training images, labeled and unlabeled together (a stratified "
                                                "subset) (default: 12000; every one with --full)")
    full: bool = field(False, "the full-scale run: every training image (MNIST: 6000 labeled, 54000 unlabeled), "
                              "10 teacher and 10 student epochs, about 30 min on 2 CPU cores; --n-train, "
                              "--teacher-epochs and --epochs given explicitly still win")
    labeled_fraction: float = field(0.1, "share of the training set whose labels are used")
    models: typing.List[str] = field(["plain_cnn:2", "plain_cnn:4", "plain_cnn:6"],
                                     "teacher then one student per iteration, each equal or larger")
    iterations: int = field(2, "self-training iterations (students); needs len(models) >= iterations + 1")
    pseudo: str = field("soft", "pseudo-labels: soft (teacher probabilities) or hard (its top class)")
    threshold: float = field(0.3, "keep unlabeled images whose top pseudo-label probability is >= this")
    balance: bool = field(True, "balance classes among the kept images (trim the most confident / duplicate)")
    noise: str = field("simple+degrade", "student input noise: simple (rotation, shift, zoom), degrade (Gaussian "
                                         "noise, blur, low contrast of random strength: the corrupted test set's "
                                         "families, see tfkd.augment.Degrade), randaugment, none, or kinds joined "
                                         "by '+'")
    magnitude: typing.Optional[float] = field(None, "input noise strength in [0, 1] (default: 0.4 for "
                                                    "simple+degrade, 0.5 for degrade, 0.3 for the others)")
    dropout: float = field(0.3, "student dropout rate before the classifier")
    stochastic_depth: float = field(0.0, "student stochastic depth drop rate (residual models only)")
    teacher_epochs: typing.Optional[int] = field(None, "epochs of the first teacher (labeled data only) "
                                                       "(default: 40; 10 with --full)")
    epochs: typing.Optional[int] = field(None, "epochs of every student (default: 6; 10 with --full)")
    ablation: bool = field(True, "also train iteration 1's student with all noise off (plain self-training)")

    def __post_init__(self):
        # Unset knobs take the scale's value (quick, or --full); the resolved values are what config.json keeps.
        for name, value in SCALES["full" if self.full else "quick"].items():
            if getattr(self, name) is None:
                setattr(self, name, value)
        if self.magnitude is None:
            self.magnitude = MAGNITUDES.get(self.noise, 0.3)

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
        kinds = self.noise.split("+")
        if any(k not in NOISES for k in kinds) or (len(kinds) > 1 and "none" in kinds):
            raise ValueError(f"noise={self.noise!r}; expected one of {', '.join(NOISES)}, or several of the first "
                             f"three joined by '+' (e.g. simple+degrade).")
        if not 0 <= self.magnitude <= 1:
            raise ValueError(f"magnitude={self.magnitude} must be in [0, 1].")
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


FAMILIES = ("noise", "blur", "contrast")


def _families(row) -> dict:
    """Corrupted accuracy per corruption family (mean over its severities)."""
    return {k: float(np.mean([v for name, v in row["corrupted"].items() if name.split("@")[0] == k]))
            for k in FAMILIES if any(name.split("@")[0] == k for name in row["corrupted"])}


def _points(a, b, key):
    return (a[key] - b[key]) * 100


def _noise_text(cfg) -> str:
    if cfg.noise == "none":
        text = "no input noise"
    else:
        text = f"{cfg.noise} input noise at magnitude {cfg.magnitude:g}"
    text += f", dropout {cfg.dropout:g}" + (f", stochastic depth {cfg.stochastic_depth:g}"
                                            if cfg.stochastic_depth else "") + f", {cfg.pseudo} pseudo-labels"
    if "degrade" in cfg.noise.split("+"):
        text += (" (degrade's families, Gaussian noise, blur and low contrast, are those of the corrupted test set: "
                 "its own implementation with continuous random strengths, not the test set's function at its "
                 "severities, yet part of the robustness it brings is training on the test families)")
    return text


def _verdicts(cfg, rows) -> list:
    """One line per half of the target: iteration 2 keeps iteration 1's accuracy; noise costs no robustness."""
    lines = []
    if cfg.iterations >= 2:
        a, b = rows["iter2"], rows["iter1"]
        clean, corr = _points(a, b, "clean"), _points(a, b, "corrupted_mean")
        lost = [name for name, v in (("clean", clean), ("corrupted", corr)) if v < 0]
        lines.append(f"target, iteration 2 vs iteration 1: {clean:+.2f} points clean, {corr:+.2f} corrupted: "
                     + ("MET (no loss on either)" if not lost else f"MISSED (lost {' and '.join(lost)})") + ".")
    if "self_training" in rows:
        a, b = rows["iter1"], rows["self_training"]
        clean, corr = _points(a, b, "clean"), _points(a, b, "corrupted_mean")
        fa, fb = _families(a), _families(b)
        worst = min(fa, key=lambda k: fa[k] - fb[k]) if fa else None
        line = (f"target, noise vs noise-off at iteration 1: {clean:+.2f} points clean, {corr:+.2f} corrupted: "
                + ("MET (noise costs no robustness)" if corr >= 0 else "MISSED (noise costs robustness)"))
        if corr < 0 and worst is not None:
            line += f"; the loss is on {worst} ({(fa[worst] - fb[worst]) * 100:+.2f} points)"
        lines.append(line + ".")
    return lines


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
    names = {"iter0": "supervised only (iteration 0)", "self_training": "ablation: noise off, iteration 1",
             **{f"iter{it}": f"Noisy Student iteration {it}" for it in range(1, cfg.iterations + 1)}}
    order = ["iter0"] + [f"iter{it}" for it in range(1, cfg.iterations + 1)] + \
        (["self_training"] if "self_training" in rows else [])
    for key in order:
        rows[key]["corrupted_by_family"] = _families(rows[key])
    families = [[names[key], f"{rows[key]['clean']:.4f}"] + [f"{rows[key]['corrupted_by_family'][k]:.4f}"
                                                             for k in FAMILIES] for key in order]
    counts = [[f"iteration {it}"] + [f"{p}/{k}" for p, k in zip(pseudo_info[it]["passed_per_class"],
                                                                 pseudo_info[it]["kept_per_class"])]
              for it in pseudo_info]
    base = rows["iter0"]
    last = rows[f"iter{cfg.iterations}"]
    scale = "every training image" if cfg.n_train is None else \
        f"a {cfg.n_train}-image subset (--n-train; --full trains on every image)"
    summary = [d.summary + f"; {scale}, teacher {cfg.teacher_epochs} epochs, students {cfg.epochs}.",
               f"student noise: {_noise_text(cfg)}.",
               f"clean: supervised {base['clean']:.4f} -> iteration {cfg.iterations} {last['clean']:.4f} "
               f"({(last['clean'] - base['clean']) * 100:+.2f} points); corrupted: {base['corrupted_mean']:.4f} -> "
               f"{last['corrupted_mean']:.4f} ({(last['corrupted_mean'] - base['corrupted_mean']) * 100:+.2f})."]
    summary += _verdicts(cfg, rows)
    return {"title": f"noisy-student: {cfg.dataset}, {cfg.labeled_fraction:.0%} labeled, {cfg.iterations} iterations",
            "summary": summary,
            "tables": [{"title": "Accuracy per iteration", "columns": ["model", "spec", "clean test",
                                                                      "corrupted test (mean)", "pseudo-label acc.",
                                                                      "unlabeled used"], "rows": table},
                       {"title": "Corrupted test accuracy per family (mean over severities 1, 3, 5)",
                        "columns": ["model", "clean test"] + list(FAMILIES), "rows": families},
                       {"title": "Unlabeled images per predicted class: passed the threshold / kept after balancing",
                        "columns": ["iteration"] + [str(c) for c in range(d.num_classes)], "rows": counts}],
            "figures": [], "results": {"models": rows, "pseudo": pseudo_info, "verdicts": _verdicts(cfg, rows)}}
