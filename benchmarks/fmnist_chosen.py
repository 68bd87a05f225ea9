"""The full Fashion-MNIST: the distilled student chosen on validation against the labels-only student chosen on
validation with the same search, 3 seeds, reported on test (the evidence issue's first target).

Teacher: :mod:`benchmarks.teachers`' cached ``fashion_mnist`` teacher (``plain_cnn:8``, augmented, cosine, epoch
chosen on validation), fed what it was trained on (float32 images in [0, 1]; its validation accuracy is re-measured
here before anything else). Student: ``plain_cnn:2`` (10,458 parameters, under 1/29 of the teacher's). Every arm:
the teacher's 55,000-image fit split, no augmentation, batch 128, Adam with a cosine-decayed learning rate over
``epochs``, the same initial weights per seed.

Two keras-tuner searches with the same number of trials (:func:`tfkd.tuning.search_tuner`: random search, first
trial the untuned defaults, scored by final validation accuracy on the teacher's held-out 5,000 images, seed 0):

- **distilled** (:class:`tfkd.tuning.MethodSearch`): KD, KD with logit standardisation, DKD and DIST, each with its
  knobs (temperature, alpha, beta) and the learning rate, from teacher logits cached once;
- **labels only** (:class:`tfkd.tuning.LabelsOnlySearch`): learning rate and label smoothing.

Each chosen setting is then trained with seeds 0, 1, 2; validation and test accuracy are logged every epoch (the
curves; test chooses nothing). Test: mean ± std and the paired delta (same seed) with its standard error.

The teacher's logits, each search (keras-tuner's trial folders) and each final run are cached under
``benchmarks/results/runs/fmnist_chosen/`` (git-ignored), so a killed run resumes. ``--arm labels`` and
``--arm distilled`` run one arm each: two processes with ``--threads 1`` use 2 cores better than one (a 10k-parameter
CNN barely uses a second thread); a last call without ``--arm`` collects both and writes the results.

Run:  python -m benchmarks.fmnist_chosen                  (about 2 h on 2 CPU cores; results/fmnist_chosen.{json,md})
      python -m benchmarks.fmnist_chosen --arm labels --threads 1 & python -m benchmarks.fmnist_chosen --arm \
distilled --threads 1; wait; python -m benchmarks.fmnist_chosen   (the two arms side by side: about 65 min)
      python -m benchmarks.fmnist_chosen --smoke --out /tmp/c   (tiny budget: checks the script still runs)
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from benchmarks import _common, teachers

NAME = "fashion_mnist"
ARMS = ("labels", "distilled")
TITLES = {"labels": "labels only, chosen on validation", "distilled": "distilled, chosen on validation"}
BUDGET = {"student": "plain_cnn:2", "epochs": 30, "batch_size": 128, "trials": 8, "seeds": [0, 1, 2],
          "schedule": "cosine", "min_teacher_test": 0.925, "target_points": 1.0}
SMOKE = {"student": "plain_cnn:2", "epochs": 1, "batch_size": 64, "trials": 2, "seeds": [0],
         "schedule": "cosine", "min_teacher_test": 0.925, "target_points": 1.0}


def teacher_data(settings, data_dir):
    x_fit, y_fit, x_val, y_val, x_test, y_test = teachers.split(NAME, data_dir, settings=settings)
    return SimpleNamespace(x_fit=x_fit, y_fit=y_fit, x_val=x_val, y_val=y_val, x_test=x_test, y_test=y_test,
                           input_shape=x_fit.shape[1:], num_classes=int(y_fit.max()) + 1)


def teacher_caches(teacher, info, data, run_dir: Path, log):
    """The teacher's logits on the fit and validation images, computed once; its validation accuracy must be the
    one it was chosen with (a teacher fed another input range than its training's would not match)."""
    from tfkd import teachers as tfkd_teachers

    paths = {part: run_dir / f"teacher_logits_{part}.npz" for part in ("fit", "val")}
    if all(p.is_file() for p in paths.values()):
        caches = {part: tfkd_teachers.TeacherCache.load(p) for part, p in paths.items()}
    else:
        log("  caching the teacher's logits on the fit and validation images ...")
        caches = {"fit": tfkd_teachers.cache_teacher_logits(teacher, data.x_fit),
                  "val": tfkd_teachers.cache_teacher_logits(teacher, data.x_val)}
        for part, cache in caches.items():
            cache.save(paths[part])
    val_acc = float(np.mean(np.argmax(caches["val"].logits, axis=1) == data.y_val))
    if abs(val_acc - info["val_accuracy"]) > 2e-3:
        raise RuntimeError(f"the teacher's validation accuracy here is {val_acc:.4f}, but it was chosen at "
                           f"{info['val_accuracy']:.4f}: it is not being fed what it was trained on "
                           f"({teachers.PREPROCESSING}).")
    return caches


def _hypermodel(arm, budget, data, caches, seed):
    from tfkd import tuning
    from tfkd.terms import LOGIT_METHODS

    common = dict(epochs=budget["epochs"], batch_size=budget["batch_size"], seed=seed, schedule=budget["schedule"])
    if arm == "distilled":
        return tuning.MethodSearch(budget["student"], caches["fit"], caches["val"], data, methods=LOGIT_METHODS,
                                   default={"method": "kd", "lr": 1e-3, "temperature": 4.0, "alpha": 0.5}, **common)
    return tuning.LabelsOnlySearch(budget["student"], data, default={"lr": 1e-3, "label_smoothing": 0.0}, **common)


def _search(arm, budget, data, caches, run_dir: Path, log):
    """keras-tuner's search for ``arm`` (resumed from its folder); returns the tuner."""
    from tfkd import tuning

    tuner = tuning.search_tuner(_hypermodel(arm, budget, data, caches, seed=0), directory=run_dir / arm,
                                project_name="search", max_trials=budget["trials"], seed=0)
    done = sum(t.status == "COMPLETED" for t in tuner.oracle.trials.values())
    if done < budget["trials"]:
        log(f"  {arm}: searching, {budget['trials']} trials of {budget['epochs']} epochs ({done} done) ...")
        from tfkd import io

        t0 = time.time()
        tuner.search(verbose=0)
        seconds = _search_seconds(run_dir, arm) + time.time() - t0  # a resumed search adds its part
        io.write_json(run_dir / arm / "search_seconds.json", {"seconds": round(seconds, 1)})
        log(f"  {arm}: search done in {time.time() - t0:.0f} s")
    return tuner


def _search_seconds(run_dir: Path, arm) -> float:
    from tfkd import io

    path = run_dir / arm / "search_seconds.json"
    return float(io.read_json(path)["seconds"]) if path.is_file() else 0.0


def _final(arm, tuner, budget, data, caches, seed, run_dir: Path, log) -> dict:
    """The chosen setting trained with ``seed`` (cached as JSON): final validation / test accuracy and curves."""
    import keras

    from tfkd import io, tuning

    path = run_dir / arm / f"seed{seed}.json"
    best = tuning.best_setting(tuner)
    setting = {k: v for k, v in best.items() if k not in ("val_accuracy", "trial_id")}
    if path.is_file():
        saved = io.read_json(path)
        if saved["setting"] == setting and saved["budget"] == budget:
            return saved
    hp = tuner.oracle.get_best_trials(1)[0].hyperparameters
    keras.utils.set_random_seed(seed)
    hm = _hypermodel(arm, budget, data, caches, seed)
    model = hm.build(hp)
    curve = _common.accuracy_curve(model, data.x_test, data.y_test)
    t0 = time.time()
    scores = hm.fit(hp, model, callbacks=[curve])
    result = {"arm": arm, "seed": seed, "setting": setting, "described": tuning.describe_setting(setting),
              "budget": budget, "val_accuracy": scores["val_accuracy"], "test_accuracy": curve.test[-1],
              "val_curve": curve.val, "test_curve": curve.test, "train_s": round(time.time() - t0, 1)}
    io.write_json(path, result)
    log(f"  {arm} seed {seed}: {result['described']}: val {result['val_accuracy']:.4f}, test "
        f"{result['test_accuracy']:.4f} [{result['train_s']:.0f} s]")
    keras.backend.clear_session()
    return result


def _trials(tuner) -> list[dict]:
    from tfkd import tuning

    return sorted((t for t in tuning.search_trials(tuner) if t["score"] is not None), key=lambda r: -r["score"])


def run(budget, data_dir, out: Path, arms, smoke: bool, log=print) -> dict:
    settings = teachers.SMOKE[NAME] if smoke else None
    cache_dir = out / "runs" / "teachers"
    run_dir = out / "runs" / "fmnist_chosen"
    teacher, info = teachers.load_teacher(NAME, data_dir, cache_dir=cache_dir, settings=settings, log=log)
    data = teacher_data(settings, data_dir)
    caches = teacher_caches(teacher, info, data, run_dir, log)
    arms_out = {}
    for arm in arms:
        tuner = _search(arm, budget, data, caches, run_dir, log)
        runs = [_final(arm, tuner, budget, data, caches, s, run_dir, log) for s in budget["seeds"]]
        arms_out[arm] = {"runs": runs, "trials": _trials(tuner), "described": runs[0]["described"],
                         "search_s": _search_seconds(run_dir, arm),
                         "test": [r["test_accuracy"] for r in runs], "val": [r["val_accuracy"] for r in runs]}
    from tfkd import models

    return {"teacher": {k: info.get(k) for k in ("spec", "params", "epochs", "chosen_epoch", "val_accuracy",
                                                  "test_accuracy", "augmentation", "path")},
            "student_params": int(models.describe(models.build(budget["student"], data.input_shape,
                                                               data.num_classes))["params"]),
            "data": {"fit": len(data.y_fit), "val": len(data.y_val), "test": len(data.y_test)}, "arms": arms_out}


def _markdown(result) -> str:
    r, b = result["result"], result["budget"]
    t, arms = r["teacher"], r["arms"]
    lines = _common.header("The full Fashion-MNIST: distilled vs labels only, both chosen on validation", result)
    lines += [f"- wall time: {result['wall_s'] / 60:.1f} min (this invocation; cached parts are reused)", "",
              f"Teacher `{t['spec']}` ({t['params']:,} parameters, {t['epochs']} epochs, best on validation at "
              f"{t['chosen_epoch']}; `benchmarks/teachers.py`): validation {100 * t['val_accuracy']:.2f} %, test "
              f"**{100 * t['test_accuracy']:.2f} %** (target >= {100 * b['min_teacher_test']:.1f} %: "
              f"{'met' if t['test_accuracy'] >= b['min_teacher_test'] else 'missed'}). Student `{b['student']}` "
              f"({r['student_params']:,} parameters, 1/{t['params'] / r['student_params']:.0f} of the teacher's). "
              f"Data: {r['data']['fit']:,} fit / {r['data']['val']:,} validation (the teacher's held-out split) / "
              f"{r['data']['test']:,} test images, no augmentation. Every trial and run: {b['epochs']} epochs, batch "
              f"{b['batch_size']}, Adam with {b['schedule']} learning rate. Each search: {b['trials']} keras-tuner "
              "trials (the first is the untuned default), seed 0, scored by final validation accuracy.", "",
              "Compute (wall, this machine; `--arm` processes may run side by side): " + "; ".join(
                  f"{arm}: search {a.get('search_s', 0) / 60:.0f} min, the {len(a['runs'])} final runs "
                  f"{sum(r['train_s'] for r in a['runs']) / 60:.0f} min" for arm, a in arms.items()) + ".", ""]
    if set(arms) == set(ARMS):
        lines += ["| arm | chosen setting | validation (%) | test (%) "
                  "| Δ test vs labels only (points, paired ± s.e.) |",
                  "|---|---|---|---|---|"]
        for arm in ARMS:
            a = arms[arm]
            delta = "—"
            if arm == "distilled":
                m, se = _common.paired_points(a["test"], arms["labels"]["test"])
                delta = f"{m:+.2f}" + (f" ± {se:.2f}" if se is not None else "")
            lines.append(f"| {TITLES[arm]} | {a['described']} | {_common.fmt_mean_std(a['val'])} | "
                         f"{_common.fmt_mean_std(a['test'])} | {delta} |")
        m, se = _common.paired_points(arms["distilled"]["test"], arms["labels"]["test"])
        lead = 100 * (t["test_accuracy"] - float(np.mean(arms["labels"]["test"])))
        seeds = ", ".join(str(s) for s in b["seeds"])
        lines += ["", f"The teacher leads the chosen labels-only student by {lead:+.2f} points on test."]
        met = m >= b["target_points"]
        lines += ["", f"**Verdict** (seeds {seeds}): the distilled student "
                  f"{'beat' if m > 0 else 'lost to'} the labels-only student by {abs(m):.2f} points on test"
                  + (f" (± {se:.2f} s.e.)" if se is not None else "")
                  + f"; target >= {b['target_points']:.1f}: **{'met' if met else 'missed'}**.", ""]
    for arm, a in arms.items():
        lines += [f"Trials of the {arm} search (final validation accuracy, best first):", ""]
        for trial in a["trials"]:
            knobs = ", ".join(f"{k}={v}" for k, v in trial.items() if k != "score")
            lines.append(f"- {100 * trial['score']:.2f} %: {knobs}")
        lines.append("")
    lines += ["Accuracy against epochs (seed mean, %), validation / test: whether the curves have flattened.", "",
              "| epoch | " + " | ".join(TITLES[a] for a in arms) + " |", "|---|" + "---|" * len(arms)]
    n = b["epochs"]
    for e in sorted({*range(0, n, max(1, n // 6)), n - 1}):
        cells = []
        for arm in arms:
            runs = arms[arm]["runs"]
            cells.append(f"{100 * np.mean([x['val_curve'][e] for x in runs]):.2f} / "
                         f"{100 * np.mean([x['test_curve'][e] for x in runs]):.2f}")
        lines.append(f"| {e + 1} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fmnist_chosen", description=__doc__.splitlines()[0])
    parser.add_argument("--arm", choices=ARMS, default=None, help="search and train one arm only (no results "
                        "written); default: both, then the results")
    parser.add_argument("--threads", type=int, default=None, help="TensorFlow threads of this process")
    parser.add_argument("--smoke", action="store_true", help="tiny budget (CI): checks the script runs")
    parser.add_argument("--out", default=None, help="results folder (default benchmarks/results; a temporary "
                        "folder for --smoke); caches under <out>/runs")
    parser.add_argument("--data-dir", default=None, help="real-data folder (default $TFKD_DATA_DIR or ../shared/data)")
    args = parser.parse_args(argv)
    if args.threads:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    t0, env = time.time(), _common.environment()
    budget = SMOKE if args.smoke else BUDGET
    out = _common.out_dir(args.out, args.smoke)
    data_dir = args.data_dir or _common.default_data_dir()
    res = run(budget, data_dir, out, [args.arm] if args.arm else list(ARMS), args.smoke)
    if args.arm:
        return 0
    result = {"env": env, "command": _common.command("fmnist_chosen", argv), "smoke": args.smoke, "budget": budget,
              "result": res, "wall_s": round(time.time() - t0, 1), "env_end": _common.environment()}
    return _common.publish(out, args.smoke, "fmnist_chosen", result, _markdown(result), print)


if __name__ == "__main__":
    sys.exit(main())
