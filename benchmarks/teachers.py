"""Teachers worth distilling, trained once and cached: augmentation suited to the data, cosine schedule, val-chosen.

Each teacher is trained the way a user who cares would train it: random shifts (and horizontal flips where a flipped
image is still the same class: Fashion-MNIST and CIFAR-10, not MNIST digits), Adam on a cosine-decayed learning
rate, enough epochs, and a stratified validation split held out of the training set. The epoch kept is the one with
the best **validation** accuracy; the test set is only measured, never used to choose. Next to each teacher the
student it will teach is trained **alone** (labels only, no augmentation, the same cosine schedule and split, the
budget the distillation arms use), so the teacher's lead over it is measured, not assumed.

Teachers are cached under ``benchmarks/results/runs/teachers/<dataset>/`` (git-ignored): ``teacher.keras`` (the
bare classifier: float32 NHWC images in [0, 1] in, logits out; no augmentation layer inside) and ``teacher.json``
(the settings it was trained under, the split, val/test accuracy, history). A cached teacher is reused only when its
settings equal the current ones; a killed training resumes from its last epoch; a lock file keeps two processes
from training the same teacher at once (the second waits, then loads).

Use from other benchmarks:

    from benchmarks.teachers import load_teacher, split
    teacher, info = load_teacher("fashion_mnist")          # trains on first use (~40 min, 2 busy cores), then loads
    x_fit, y_fit, x_val, y_val, x_test, y_test = split("fashion_mnist")   # exactly the teacher's split

Run:  python -m benchmarks.teachers                        (all teachers; results/teachers.{json,md})
      python -m benchmarks.teachers --only fashion_mnist   (one; the others are collected if cached)
      python -m benchmarks.teachers --smoke --out /tmp/x   (tiny budget, for CI)
      tfkd bench teachers                                  (the same, from the repository root)
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import math
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from benchmarks import _common

CACHE = _common.RESULTS / "runs" / "teachers"
INPUT_RANGE = "[0, 1]"
PREPROCESSING = ("float32 NHWC images, pixels divided by 255 (tfkd.data.load), no mean/std normalisation; "
                 "the model outputs logits")

# name -> how its teacher and the students it teaches are trained. ``split`` is part of the contract: every
# distillation arm must use the same (seed, val_size) so its validation images were never the teacher's training.
TEACHERS = {
    "fashion_mnist": {
        "dataset": "fashion_mnist", "spec": "plain_cnn:8", "seed": 0, "epochs": 30, "batch_size": 128,
        "lr": 1e-3, "augmentation": {"shift": 0.1, "flip": "horizontal"},
        "split": {"seed": 0, "val_size": 5000, "n_train": None, "n_test": None},
        "students": {"specs": ["plain_cnn:2"], "epochs": 15, "batch_size": 128, "lr": 1e-3, "seeds": [0, 1, 2]},
    },
    "mnist": {
        "dataset": "mnist", "spec": "plain_cnn:8", "seed": 0, "epochs": 4, "batch_size": 128,
        "lr": 1e-3, "augmentation": {"shift": 0.1, "flip": None},  # a mirrored 2, 3, 7 is not a digit
        "split": {"seed": 0, "val_size": 5000, "n_train": None, "n_test": None},
        "students": {"specs": ["plain_cnn:2"], "epochs": 4, "batch_size": 128, "lr": 1e-3, "seeds": [0]},
    },
    # Hinton et al. (2015), section 3: a 784-1200-1200-10 net with dropout and input jitter of up to 2 pixels.
    # Its student (784-800-800-10, no regularisation) is trained by benchmarks.hinton.
    "mnist_hinton": {
        "dataset": "mnist", "spec": "mlp:1200-1200", "options": {"dropout": 0.5}, "seed": 0, "epochs": 40,
        "batch_size": 128, "lr": 1e-3, "augmentation": {"shift": 2 / 28, "flip": None},
        "split": {"seed": 0, "val_size": 5000, "n_train": None, "n_test": None},
        "students": {"specs": ["mlp:800-800"], "epochs": 30, "batch_size": 128, "lr": 1e-3, "seeds": [0, 1, 2]},
    },
    "cifar10_subset": {
        "dataset": "cifar10_subset", "spec": "plain_cnn:8", "seed": 0, "epochs": 50, "batch_size": 64,
        "lr": 1e-3, "augmentation": {"shift": 0.125, "flip": "horizontal"},
        "split": {"seed": 0, "val_size": 500, "n_train": None, "n_test": None},
        "students": {"specs": ["plain_cnn:2"], "epochs": 50, "batch_size": 64, "lr": 1e-3, "seeds": [0]},
    },
}
# A few seconds each: a stratified subset, one epoch. Only for checking that the script runs.
SMOKE = {
    "fashion_mnist": {
        "dataset": "fashion_mnist", "spec": "plain_cnn:4", "seed": 0, "epochs": 1, "batch_size": 64,
        "lr": 1e-3, "augmentation": {"shift": 0.1, "flip": "horizontal"},
        "split": {"seed": 0, "val_size": 100, "n_train": 500, "n_test": 200},
        "students": {"specs": ["plain_cnn:2"], "epochs": 1, "batch_size": 64, "lr": 1e-3, "seeds": [0]},
    },
}
TITLES = {"fashion_mnist": "Fashion-MNIST", "mnist": "MNIST", "mnist_hinton": "MNIST (Hinton et al. 2015 nets)",
          "cifar10_subset": "CIFAR-10 subset"}
MIN_LEAD_POINTS = 2.0


# -- the split --------------------------------------------------------------------------------------------------
def _settings(name, settings=None) -> dict:
    if settings is not None:
        return copy.deepcopy(settings)
    if name not in TEACHERS:
        raise ValueError(f"name={name!r} is not a known teacher; expected one of {sorted(TEACHERS)}.")
    return copy.deepcopy(TEACHERS[name])


def split(name, data_dir=None, *, settings=None):
    """``(x_fit, y_fit, x_val, y_val, x_test, y_test)``: exactly the split the teacher ``name`` was trained on.

    The validation images are a stratified draw of ``split["val_size"]`` training images (seed ``split["seed"]``,
    :func:`tfkd.data.labeled_unlabeled_split`), kept in their original order; the rest is the fit set. Images are
    float32 in [0, 1] (:func:`tfkd.data.load`). Choose epochs / hyperparameters on (x_val, y_val), never on test.

    Example:

        x_fit, y_fit, x_val, y_val, x_test, y_test = split("fashion_mnist")    # 55000 / 5000 / 10000
    """
    from tfkd import data

    cfg = _settings(name, settings)
    sp = cfg["split"]
    splits = data.load(cfg["dataset"], _data_dir(data_dir))
    if sp.get("n_train") or sp.get("n_test"):
        splits = data.subset(splits, n_train=sp.get("n_train"), n_test=sp.get("n_test"), seed=sp["seed"])
    x, y = splits.x_train, splits.y_train
    val_size = int(sp["val_size"])
    x_val, y_val, x_fit, y_fit = data.labeled_unlabeled_split(x, y, val_size / len(y), seed=sp["seed"])
    if len(y_val) != val_size:  # the fraction rounds back to val_size for every size used here; check anyway
        raise RuntimeError(f"{name}: the validation split holds {len(y_val)} images, expected {val_size}.")
    return x_fit, y_fit, x_val, y_val, splits.x_test, splits.y_test


def _data_dir(data_dir):
    return data_dir if data_dir is not None else _common.default_data_dir()


# -- training, cached -------------------------------------------------------------------------------------------
def augmentation_layer(augmentation, seed=0):
    """Random shifts (a fraction of height/width, zero fill) and an optional random flip, as one Keras layer.

    Active only in training (``model.fit``); identity at inference.
    """
    import keras

    parts = []
    if augmentation and augmentation.get("shift"):
        f = float(augmentation["shift"])
        parts.append(keras.layers.RandomTranslation(f, f, fill_mode="constant", fill_value=0.0, seed=seed,
                                                    name="random_shift"))
    if augmentation and augmentation.get("flip"):
        parts.append(keras.layers.RandomFlip(augmentation["flip"], seed=seed + 1, name="random_flip"))
    if not parts:
        return None
    return keras.Sequential(parts, name="augmentation")


def _describe_augmentation(augmentation) -> str:
    if not augmentation or not (augmentation.get("shift") or augmentation.get("flip")):
        return "none"
    bits = []
    if augmentation.get("shift"):
        bits.append(f"random shifts up to ±{augmentation['shift']:g} of height/width (zero fill)")
    if augmentation.get("flip"):
        bits.append(f"random {augmentation['flip']} flips")
    return ", ".join(bits)


@contextlib.contextmanager
def _locked(directory: Path, stem: str, what: str):
    """Hold an exclusive lock on ``directory/.<stem>.lock``; a second process training the same model waits here
    until the first is done (other models of the directory train meanwhile)."""
    import fcntl

    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / f".{stem}.lock", "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"  {what}: another process is training it in {directory}; waiting for it ...", flush=True)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _cached(run_dir: Path, stem: str, settings: dict):
    """The metadata of a finished run bound to ``settings``, or None; an error if it ran under other settings."""
    from tfkd import io

    meta_path, model_path = run_dir / f"{stem}.json", run_dir / f"{stem}.keras"
    if not (meta_path.is_file() and model_path.is_file()):
        return None
    meta = io.read_json(meta_path)
    if meta.get("settings") != settings:
        raise RuntimeError(
            f"{model_path} was trained with other settings (saved {meta.get('settings')}, now {settings}); delete "
            f"{run_dir} to train it again with the current ones, or pass the saved settings.")
    return meta


def _train_or_load(run_dir: Path, stem: str, settings: dict, data_dir, what: str, log=print):
    """Train the model ``settings`` describe into ``run_dir/<stem>.keras`` (+ ``.json``), or load it if cached."""
    from tfkd.export.loading import load_model

    meta = _cached(run_dir, stem, settings)
    if meta is None:
        with _locked(run_dir, stem, what):
            meta = _cached(run_dir, stem, settings)  # another process may have finished it while we waited
            if meta is None:
                meta = _train(run_dir, stem, settings, data_dir, what, log)
    else:
        log(f"  {what}: reusing {run_dir / (stem + '.keras')}")
    model = load_model(run_dir / f"{stem}.keras", safe_mode=True)
    return model, meta


def _train(run_dir: Path, stem: str, settings: dict, data_dir, what: str, log):
    import keras

    from tfkd import io, models, training

    ckpt_dir, log_dir = run_dir / "ckpt" / stem, run_dir / "logs" / stem
    marker = ckpt_dir / "settings.json"
    if marker.exists() and io.read_json(marker) != settings:
        raise RuntimeError(f"{ckpt_dir} holds a checkpoint of a run with other settings ({io.read_json(marker)}); "
                           f"delete it to train {what} with {settings}.")
    x_fit, y_fit, x_val, y_val, x_test, y_test = split(settings["dataset"], data_dir, settings=settings)
    num_classes = int(max(y_fit.max(), y_test.max())) + 1
    t0 = time.time()
    keras.utils.set_random_seed(settings["seed"])
    model = models.build(settings["spec"], x_fit.shape[1:], num_classes, seed=settings["seed"],
                         **settings.get("options", {}))
    aug = augmentation_layer(settings.get("augmentation"), seed=settings["seed"])
    if aug is None:
        trainer = model
    else:  # the augmentation wraps the classifier for training only; the saved model is the bare classifier
        inputs = keras.Input(x_fit.shape[1:], name="image")
        trainer = keras.Model(inputs, model(aug(inputs)), name=f"{model.name}_augmented")
    optimizer = training.cosine_adam(settings["lr"], epochs=settings["epochs"], examples=len(x_fit),
                                     batch_size=settings["batch_size"])
    steps = settings["epochs"] * math.ceil(len(x_fit) / settings["batch_size"])  # for the report
    io.write_json(marker, settings)
    best_path = ckpt_dir / "best.weights.h5"
    # The epoch kept is the best on validation. On a resume, the best so far comes from the checkpointed history.
    done_history = (io.read_json(ckpt_dir / "state.json").get("history", {})
                    if (ckpt_dir / "state.json").exists() else {})
    best_so_far = max(done_history.get("val_accuracy", []), default=None) if best_path.exists() else None
    keep_best = keras.callbacks.ModelCheckpoint(str(best_path), monitor="val_accuracy", mode="max",
                                                save_best_only=True, save_weights_only=True,
                                                initial_value_threshold=best_so_far)
    log(f"  {what}: training {settings['spec']} on {len(x_fit)} images ({len(x_val)} held out for validation), "
        f"{settings['epochs']} epochs, augmentation: {_describe_augmentation(settings.get('augmentation'))}")
    history = training.train_supervised(trainer, x_fit, y_fit, epochs=settings["epochs"],
                                        batch_size=settings["batch_size"], optimizer=optimizer,
                                        validation_data=(x_val, y_val), callbacks=[keep_best],
                                        checkpoint_dir=ckpt_dir, log_dir=log_dir, label=what)
    last_val = training.accuracy(model, x_val, y_val)
    last_test = training.accuracy(model, x_test, y_test)
    trainer.load_weights(best_path)
    val_acc, test_acc = training.accuracy(model, x_val, y_val), training.accuracy(model, x_test, y_test)
    val_hist = history.get("val_accuracy", [])
    chosen = int(np.argmax(val_hist)) + 1 if val_hist else settings["epochs"]
    sp = settings["split"]
    meta = {
        "settings": settings, "spec": settings["spec"], "dataset": settings["dataset"], "role": stem,
        "path": str(run_dir / f"{stem}.keras"), "params": int(model.count_params()),
        "input_shape": [int(d) for d in x_fit.shape[1:]], "num_classes": num_classes,
        "input_range": INPUT_RANGE, "preprocessing": PREPROCESSING,
        "augmentation": _describe_augmentation(settings.get("augmentation")),
        "optimizer": f"Adam, cosine decay from {settings['lr']:g} to 0 over {steps} steps",
        "epochs": settings["epochs"], "batch_size": settings["batch_size"],
        "split": {"seed": sp["seed"], "val_size": len(y_val), "fit_size": len(y_fit), "test_size": len(y_test),
                  "n_train": sp.get("n_train"), "n_test": sp.get("n_test"), "stratified": True,
                  "how": ("benchmarks.teachers.split(name): tfkd.data.labeled_unlabeled_split(x_train, y_train, "
                          "val_size / len(y_train), seed) -> the labeled part is the validation split")},
        "chosen_epoch": chosen, "chosen_on": "validation accuracy (best epoch)",
        "val_accuracy": val_acc, "test_accuracy": test_acc,
        "val_accuracy_last_epoch": last_val, "test_accuracy_last_epoch": last_test,
        "history": history, "train_wall_s": round(time.time() - t0, 1),
    }
    return finish(run_dir, stem, model, meta, what, log)


def finish(run_dir: Path, stem: str, model, meta: dict, what: str, log) -> dict:
    """Save ``model`` and ``meta`` as ``run_dir/<stem>.keras`` / ``.json`` (atomically), log the scores, free TF."""
    import keras

    from tfkd import io

    with io.atomic_path(run_dir / f"{stem}.keras") as tmp:
        model.save(tmp)
    io.write_json(run_dir / f"{stem}.json", meta)
    log(f"  {what}: val {meta['val_accuracy']:.4f} test {meta['test_accuracy']:.4f} (epoch {meta['chosen_epoch']} "
        f"chosen on validation), {meta['train_wall_s']:.0f} s")
    keras.backend.clear_session()
    return meta


def _cache_dir(name, cache_dir) -> Path:
    return Path(cache_dir if cache_dir is not None else CACHE) / name


def load_teacher(name, data_dir=None, *, cache_dir=None, settings=None, log=print):
    """``(teacher, info)``: the cached teacher of dataset ``name``, trained first if it is not cached yet.

    ``teacher`` is a ``keras.Model`` taking float32 NHWC images in [0, 1] (as :func:`tfkd.data.load` gives them) and
    returning logits. ``info`` holds ``spec, dataset, val_accuracy, test_accuracy, params, epochs, input_range,
    input_shape, split`` (seed, val_size, ...; :func:`split` reproduces it), ``path``, ``chosen_epoch``, ``history``.
    ``cache_dir`` defaults to ``benchmarks/results/runs/teachers``; ``settings`` overrides :data:`TEACHERS[name]`.

    Example:

        teacher, info = load_teacher("fashion_mnist")
        print(info["spec"], info["test_accuracy"])        # plain_cnn:8 0.93...
    """
    cfg = _settings(name, settings)
    cfg.pop("students", None)
    return _train_or_load(_cache_dir(name, cache_dir), "teacher", cfg, data_dir, f"{name} teacher", log)


def _student_settings(name, spec, seed, settings=None) -> dict:
    cfg = _settings(name, settings)
    st = cfg.pop("students")
    return {"dataset": cfg["dataset"], "spec": spec, "seed": int(seed), "epochs": st["epochs"],
            "batch_size": st["batch_size"], "lr": st["lr"], "augmentation": None, "split": cfg["split"]}


def load_student_alone(name, spec=None, seed=0, data_dir=None, *, cache_dir=None, settings=None, log=print):
    """``(student, info)``: ``spec`` trained alone on labels (no augmentation, cosine, the teacher's split), cached.

    The baseline a distilled student must beat, at the distillation arms' budget (``TEACHERS[name]["students"]``).
    """
    cfg = _settings(name, settings)
    spec = spec or cfg["students"]["specs"][0]
    st = _student_settings(name, spec, seed, cfg)
    stem = f"student_{spec.replace(':', '_')}_seed{int(seed)}"
    return _train_or_load(_cache_dir(name, cache_dir), stem, st, data_dir, f"{name} {spec} alone, seed {seed}", log)


# -- the benchmark ----------------------------------------------------------------------------------------------
def _summary(info) -> dict:
    keys = ("spec", "dataset", "path", "params", "epochs", "batch_size", "augmentation", "optimizer", "input_range",
            "input_shape", "split", "chosen_epoch", "val_accuracy", "test_accuracy", "val_accuracy_last_epoch",
            "test_accuracy_last_epoch", "train_wall_s")
    return {k: info.get(k) for k in keys}


def run_one(name, settings, data_dir, cache_dir, log=print) -> dict:
    import keras

    _, teacher = load_teacher(name, data_dir, cache_dir=cache_dir, settings=settings, log=log)
    keras.backend.clear_session()
    students = {}
    for spec in settings["students"]["specs"]:
        runs = []
        for seed in settings["students"]["seeds"]:
            _, info = load_student_alone(name, spec, seed, data_dir, cache_dir=cache_dir, settings=settings, log=log)
            keras.backend.clear_session()
            runs.append({"seed": seed, **_summary(info)})
        test = [r["test_accuracy"] for r in runs]
        students[spec] = {"runs": runs, "val_accuracy": [r["val_accuracy"] for r in runs], "test_accuracy": test,
                          "test_mean": float(np.mean(test)),
                          "lead_points": round(100 * (teacher["test_accuracy"] - float(np.mean(test))), 2),
                          "val_lead_points": round(100 * (teacher["val_accuracy"]
                                                          - float(np.mean([r["val_accuracy"] for r in runs]))), 2)}
    leads = [s["lead_points"] for s in students.values()]
    return {"teacher": _summary(teacher), "students": students,
            "lead_ok": all(lead >= MIN_LEAD_POINTS for lead in leads)}


def _markdown(result) -> str:
    lines = _common.header("Teachers worth distilling" + (" (smoke)" if result["smoke"] else ""), result)
    lines += [f"- wall time: {result['wall_s']:.0f} s (this invocation; a cached teacher or student is reused, its "
              "own training time is in the table)", "",
              "Each teacher: Adam on a cosine-decayed learning rate (from 1e-3 to 0), augmentation suited to the data, "
              "a stratified validation split held out of the training set (seeded); the epoch kept is the best on "
              "**validation**, test is measured once at the end. Inputs: float32 images in [0, 1] (pixels / 255), "
              "logits out. The student alone: labels only, no augmentation, the same schedule and split, the budget "
              "the distillation arms use.", "",
              "| teacher | dataset | params | epochs | augmentation | val acc | test acc | student alone (same split, "
              "its budget) | student val / test | lead (points) | "
              "train time (teacher + student; a resumed run: its last part) |",
              "|---|---|---:|---:|---|---:|---:|---|---:|---:|---:|"]
    for name, entry in result["datasets"].items():
        t = entry["teacher"]
        for spec, s in entry["students"].items():
            first = s["runs"][0]
            seeds = ", ".join(str(r["seed"]) for r in s["runs"])
            lines.append(
                f"| {t['spec']} | {TITLES.get(name, name)} ({t['split']['fit_size']} fit / {t['split']['val_size']} "
                f"val / {t['split']['test_size']} test) | {t['params']:,} | {t['epochs']} (best: {t['chosen_epoch']})"
                f" | {t['augmentation']} | {100 * t['val_accuracy']:.2f} | {100 * t['test_accuracy']:.2f} | "
                f"{spec}, {first['params']:,} params, {first['epochs']} epochs, seed {seeds} | "
                f"{_common.fmt_mean_std(s['val_accuracy'])} / {_common.fmt_mean_std(s['test_accuracy'])} | "
                f"**{s['lead_points']:+.2f}** | {t['train_wall_s']:.0f} s + {first['train_wall_s']:.0f} s |")
    lines += [""]
    for name, entry in result["datasets"].items():
        t = entry["teacher"]
        verdict = ("leads the student alone by at least 2 points on test" if entry["lead_ok"] else
                   "does NOT lead the student alone by 2 points on test: distilling from it shows little")
        val_leads = ", ".join(f"{v.get('val_lead_points', float('nan')):+.2f}" for v in entry["students"].values())
        lines.append(f"- {TITLES.get(name, name)}: the teacher {verdict} (on validation its lead is {val_leads} "
                     f"points). Teacher's last epoch: val "
                     f"{100 * t['val_accuracy_last_epoch']:.2f}, test {100 * t['test_accuracy_last_epoch']:.2f}. "
                     f"Cached at `{_rel(t['path'])}`; split: seed {t['split']['seed']}, {t['split']['val_size']} "
                     f"validation images (`benchmarks.teachers.split({name!r})`).")
    lines += ["", "Use: `from benchmarks.teachers import load_teacher, split; teacher, info = "
              "load_teacher('fashion_mnist')`.", ""]
    return "\n".join(lines)


def _rel(path):
    try:
        return str(Path(path).resolve().relative_to(_common.REPO))
    except ValueError:
        return str(path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.teachers", description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=None, help="comma-separated datasets to train (default: all); the others "
                        "are collected into the results if they are cached")
    parser.add_argument("--seeds", default=None, help="comma-separated seeds of the student alone, for the "
                        "--only datasets (default: the budget's)")
    parser.add_argument("--smoke", action="store_true", help="tiny budget (CI): checks the script runs")
    parser.add_argument("--out", default=None, help="results folder (default benchmarks/results; a temporary "
                        "folder for --smoke); the cache is <out>/runs/teachers")
    parser.add_argument("--data-dir", default=None, help="real-data folder (default $TFKD_DATA_DIR or ../shared/data)")
    args = parser.parse_args(argv)
    t0 = time.time()
    env = _common.environment()
    budgets = copy.deepcopy(SMOKE if args.smoke else TEACHERS)
    only = [n.strip() for n in args.only.split(",")] if args.only else list(budgets)
    unknown = [n for n in only if n not in budgets]
    if unknown:
        parser.error(f"--only: unknown {unknown}; expected some of {list(budgets)}")
    if args.seeds:
        for name in only:
            budgets[name]["students"]["seeds"] = [int(s) for s in args.seeds.split(",")]
    out = _common.out_dir(args.out, args.smoke)
    cache_dir = out / "runs" / "teachers"
    data_dir = args.data_dir or _common.default_data_dir()
    datasets = {}
    for name, cfg in budgets.items():
        if name in only:
            print(f"{name}:", flush=True)
            datasets[name] = run_one(name, cfg, data_dir, cache_dir)
        else:
            try:  # collected if both teacher and students are cached, never trained here
                datasets[name] = run_one(name, cfg, None, cache_dir, log=lambda *_: None) \
                    if _all_cached(name, cfg, cache_dir) else None
            except RuntimeError:
                datasets[name] = None
    datasets = {k: v for k, v in datasets.items() if v is not None}
    result = {"env": env, "command": _common.command("teachers", argv), "smoke": args.smoke, "budget": budgets,
              "datasets": datasets, "wall_s": round(time.time() - t0, 1), "env_end": _common.environment()}
    stem = "teachers_smoke" if args.smoke else "teachers"
    paths = _common.write(out, stem, result, _markdown(result))
    print(f"wrote {paths['json']} and {paths['markdown']}")
    return 0


def _all_cached(name, cfg, cache_dir) -> bool:
    run_dir = _cache_dir(name, cache_dir)
    teacher = {k: v for k, v in cfg.items() if k != "students"}
    stems = [("teacher", teacher)] + [(f"student_{spec.replace(':', '_')}_seed{seed}",
                                       _student_settings(name, spec, seed, cfg))
                                      for spec in cfg["students"]["specs"] for seed in cfg["students"]["seeds"]]
    return all(_cached(run_dir, stem, s) is not None for stem, s in stems)


if __name__ == "__main__":
    sys.exit(main())
