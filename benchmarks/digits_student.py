"""The main job's pair, tuned: can distillation beat a well-tuned labels-only ``mlp:32`` on the bundled digits?

``tfkd run compress`` distils ``plain_cnn:4`` into ``mlp:32`` (2,410 parameters) on scikit-learn's 8x8 digits
(1,295 fit / 143 validation / 359 test images, the recipe's own split). Here both sides get what a careful user
would give them: the teacher random shifts (up to 1 pixel) and a cosine schedule over 100 epochs; every student arm
30 epochs (the main job's old default), Adam on a cosine schedule from lr 1e-2 (the best labels-only learning rate of a
{1e-3, 3e-3, 1e-2} x label smoothing {0, 0.1} search on validation), and the same seeds. Arms:

- ``ce_ls``: labels, label smoothing 0.1 (the tuned baseline);
- ``ce_ls_shift``: the same on randomly shifted images;
- ``kd_T{T}_a{alpha}``: KD on the teacher's cached logits for the clean images;
- ``fm_a{alpha}``: a live teacher and the student see the same shifted view (function matching), T=4;
- the main job's function matching, patiently (``--long-epochs``, 300: the main job's ``--fm-epochs``), against the
  tuned baseline trained as long: ``ce_ls_long`` (labels, smoothing 0.1, clean images), ``ce_mixup_long`` (labels on
  the same mixup views, so mixup alone is measured) and ``fm_mixup_long`` (the teacher's logits on those views, T=1,
  alpha=1); the views are replayed (per-example mixup Beta(0.2, 0.2), no shifts: the main job's ``--fm-noise none``).

Test accuracy, mean ± std over seeds, and the paired difference to the tuned baseline trained as long (``ce_ls``,
or ``ce_ls_long`` for the patient arms) with its standard error.

Run:  python -m benchmarks.digits_student                      (about 20 min on 2 CPU cores)
      python -m benchmarks.digits_student --smoke --out /tmp/x (tiny budget, for CI)
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from benchmarks import _common

BUDGET = {"teacher": "plain_cnn:4", "teacher_epochs": 100, "teacher_lr": 3e-3, "student": "mlp:32", "epochs": 30,
          "long_epochs": 300, "mixup": 0.2, "lr": 1e-2, "label_smoothing": 0.1, "shift": 0.125,
          "seeds": [1, 2, 3, 4, 5],
          "arms": ["ce_ls", "ce_ls_shift", "kd_T4_a0.5", "kd_T4_a0.9", "kd_T2_a0.5", "fm_a0.5", "fm_a0.9",
                   "ce_ls_long", "ce_mixup_long", "fm_mixup_long"]}
SMOKE = {**BUDGET, "teacher_epochs": 1, "epochs": 1, "long_epochs": 2, "seeds": [1, 2],
         "arms": ["ce_ls", "kd_T4_a0.5", "fm_a0.5", "ce_ls_long", "fm_mixup_long"]}
LONG = {"ce_ls_long", "ce_mixup_long", "fm_mixup_long"}


def _shift(fraction, seed):
    import keras

    return keras.layers.RandomTranslation(fraction, fraction, fill_mode="constant", seed=seed)


def _with_input_layer(model, layer, shape):
    import keras

    inputs = keras.Input(shape)
    return keras.Model(inputs, model(layer(inputs)))


def run(budget, data, batch_size, log=print) -> dict:
    import keras

    from tfkd import cache_teacher_logits, models, replay, training

    bs, n, shape = batch_size, len(data.x_fit), data.x_fit.shape[1:]
    keras.utils.set_random_seed(0)
    teacher = models.build(budget["teacher"], shape, data.num_classes, seed=0)
    training.train_supervised(_with_input_layer(teacher, _shift(budget["shift"], 5), shape), data.x_fit, data.y_fit,
                              epochs=budget["teacher_epochs"], batch_size=bs,
                              optimizer=training.cosine_adam(budget["teacher_lr"], epochs=budget["teacher_epochs"],
                                                             examples=n, batch_size=bs))
    t_acc = {"val": training.accuracy(teacher, data.x_val, data.y_val),
             "test": training.accuracy(teacher, data.x_test, data.y_test)}
    log(f"teacher {budget['teacher']}: val {t_acc['val']:.4f} test {t_acc['test']:.4f}")
    cache = cache_teacher_logits(teacher, data.x_fit)
    views = None
    if LONG & set(budget["arms"]) - {"ce_ls_long"}:  # one teacher pass over every epoch's views, for every seed
        config = replay.ViewConfig(seed=0, pad=0, mixup=budget["mixup"])  # the default pad=4 is for 32x32 images
        views = replay.compute_replay_cache(teacher, data.x_fit, views=config, epochs=budget["long_epochs"])
    scores = {arm: [] for arm in budget["arms"]}
    for seed in budget["seeds"]:
        for arm in budget["arms"]:
            keras.utils.set_random_seed(seed)
            student = models.build(budget["student"], shape, data.num_classes, seed=seed)
            epochs = budget["long_epochs"] if arm in LONG else budget["epochs"]
            optimizer = training.cosine_adam(budget["lr"], epochs=epochs, examples=n, batch_size=bs)
            common = dict(epochs=epochs, batch_size=bs, optimizer=optimizer)
            if arm.endswith("mixup_long"):  # alpha 0: labels on the mixed views; 1: the teacher's logits only
                ds = views.dataset(data.x_fit, data.y_fit, batch_size=bs, shuffle_seed=seed)
                training.train_distilled(None, student, ds, temperature=1.0, alpha=float(arm.startswith("fm")),
                                         callbacks=[replay.ReplayEpoch(ds)], **common)
            elif arm.startswith("ce_ls"):
                trainee = _with_input_layer(student, _shift(budget["shift"], seed), shape) if arm.endswith(
                    "shift") else student
                training.train_supervised(trainee, data.x_fit, data.y_fit, label_smoothing=budget["label_smoothing"],
                                          **common)
            elif arm.startswith("kd_"):
                t, a = (float(p[1:]) for p in arm.split("_")[1:])
                training.train_distilled(None, student, cache.inputs(data.x_fit), data.y_fit, temperature=t, alpha=a,
                                         **common)
            else:  # fm_a<alpha>: the same random shift for teacher and student
                training.train_distilled(teacher, student, data.x_fit, data.y_fit, temperature=4.0,
                                         alpha=float(arm.split("_a")[1]), augment=_shift(budget["shift"], seed),
                                         **common)
            scores[arm].append({"seed": seed, "val": training.accuracy(student, data.x_val, data.y_val),
                                "test": training.accuracy(student, data.x_test, data.y_test)})
        keras.backend.clear_session()
        log(f"seed {seed} done")
    rows = []
    for arm, runs in scores.items():
        # The tuned baseline trained as long: a longer schedule alone also helps.
        baseline = "ce_ls_long" if arm in LONG and "ce_ls_long" in scores else "ce_ls"
        test = np.array([r["test"] for r in runs])
        diff = 100 * (test - np.array([r["test"] for r in scores[baseline]]))
        rows.append({"arm": arm, "val": [r["val"] for r in runs], "test": test.tolist(), "baseline": baseline,
                     "delta_vs_baseline": float(diff.mean()),
                     "delta_se": float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else None})
    return {"teacher": t_acc, "rows": rows, "data": data.summary}


def _markdown(result) -> str:
    b = result["budget"]
    lines = _common.header("The main job's pair, tuned (8x8 digits)" + (" (smoke)" if result["smoke"] else ""),
                           result)
    lines += [f"- wall time: {result['wall_s']:.0f} s", f"- {result['result']['data']}", "",
              f"Teacher {b['teacher']} ({b['teacher_epochs']} epochs, shifts, cosine from {b['teacher_lr']:g}): val "
              f"{100 * result['result']['teacher']['val']:.2f}, test {100 * result['result']['teacher']['test']:.2f}."
              f" Student {b['student']}, {b['epochs']} epochs ({b['long_epochs']} for the *_long arms), cosine from lr "
              f"{b['lr']:g}, seeds {', '.join(map(str, b['seeds']))}.", "",
              "| arm | val % | test % | Δ test vs the tuned baseline as long (paired, points) |",
              "|---|---:|---:|---:|"]
    for r in result["result"]["rows"]:
        se = f" ± {r['delta_se']:.2f}" if r["delta_se"] is not None else ""
        lines.append(f"| {r['arm']} | {_common.fmt_mean_std(r['val'])} | {_common.fmt_mean_std(r['test'])} | "
                     f"{r['delta_vs_baseline']:+.2f}{se} vs {r['baseline']} |")
    return "\n".join(lines + [""])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.digits_student", description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny budget (CI): checks the script runs")
    parser.add_argument("--out", default=None, help="results folder (default benchmarks/results; a temporary "
                        "folder for --smoke)")
    args = parser.parse_args(argv)
    from tfkd.recipes import compress
    from tfkd.recipes.common import load_data

    t0, env = time.time(), _common.environment()
    budget = SMOKE if args.smoke else BUDGET
    cfg = compress.Config()
    cfg.validate()
    data = load_data(cfg)
    result = {"env": env, "command": _common.command("digits_student", argv), "smoke": args.smoke, "budget": budget,
              "result": run(budget, data, cfg.batch_size)}
    result.update(wall_s=round(time.time() - t0, 1), env_end=_common.environment())
    return _common.publish(_common.out_dir(args.out, args.smoke), args.smoke, "digits_student", result,
                           _markdown(result), print)


if __name__ == "__main__":
    sys.exit(main())
