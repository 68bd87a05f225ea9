"""Sweep time with replayed augmented views: teacher outputs computed once, reused by 8 arms (tfkd.replay).

One CIFAR-size pair (teacher ``plain_cnn:10``, 2.49 M params; student ``plain_cnn:2``; cifar10_subset, 4000
images), augmented views (shifts of up to 4 pixels, horizontal flips: ``tfkd.replay.ViewConfig(pad=4, flip=True)``),
an 8-arm temperature x alpha sweep (T in 1, 2, 4, 8 x alpha in 0.5, 0.9), ``--epochs`` epochs per arm, epoch
``e`` of every arm on view epoch ``e``. Arms, timed as wall clock, interleaved round by round (A B C D E, then
E D C B A, ...), medians reported with the range of the per-round ratios:

- ``tfkd_sweep``: ``tfkd.replay.compute_replay_cache`` (one teacher pass per epoch of views), then
  ``tfkd.replay.train_arms`` (8 students on the cached logits, one compiled step for all arms);
- ``keras_sweep``: 8 runs of ``keras.distillation.Distiller`` (``LogitsDistillation(temperature=T,
  loss=keras.losses.KLDivergence())``, ``student_loss_weight=1 - alpha``) with a live teacher, fed the very same
  views by the same input pipeline (``tfkd.replay.views_dataset``);
- ``student_only_sweep``: 8 fresh students trained on labels alone on the same views (one run each);
- ``teacher_pass``: the teacher's forward over one epoch of views (compiled, batch 256), once per epoch;
- ``replay_epoch`` / ``student_epoch``: one steady-state epoch (models built and traced before timing) of a
  ``Distiller(None, student)`` on the replay dataset, and of the student alone on the same views.

Ratios and targets: replay_epoch / student_epoch <= 1.10; tfkd_sweep / (student_only_sweep + epochs x
teacher_pass) <= 1.25; tfkd_sweep / keras_sweep <= 0.40. The teacher's forward passes are counted in both sweeps.

Run:  python -m benchmarks.sweep_time           (writes benchmarks/results/sweep_time.{json,md}; ~15 min on 2 cores)
      python -m benchmarks.sweep_time --quick   (small pair, 512 images, 1 round: checks that the script runs, ~1 min)
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from benchmarks import _common

STEM = "sweep_time"
TARGETS = {"replay_epoch / student_epoch": 1.10,
           "tfkd_sweep / (student_only_sweep + epochs x teacher_pass)": 1.25,
           "tfkd_sweep / keras_sweep": 0.40}
ARMS = ("tfkd_sweep", "keras_sweep", "student_only_sweep", "teacher_pass", "replay_epoch", "student_epoch")
GRID = [{"temperature": t, "alpha": a} for t in (1.0, 2.0, 4.0, 8.0) for a in (0.5, 0.9)]


def _setup(quick, data_dir, n_examples):
    from tfkd import data

    cifar = data.load("cifar10_subset", data_dir=data_dir)
    n = 512 if quick else n_examples
    return {"name": "CIFAR-size pair" + (" (quick)" if quick else ""),
            "teacher": "plain_cnn:4" if quick else "plain_cnn:10", "student": "plain_cnn:2", "data": "cifar10_subset",
            "x": cifar.x_train[:n], "y": cifar.y_train[:n].astype("int32"),
            "x_test": cifar.x_test, "y_test": cifar.y_test.astype("int32"), "num_classes": 10}


class _Counting:
    """Wraps a teacher in a keras.Model that counts the examples it is run on (one variable add per call)."""

    def __init__(self, teacher):
        import keras
        import tensorflow as tf

        self.seen = tf.Variable(0, dtype=tf.int64, trainable=False)
        seen = self.seen

        class CountingTeacher(keras.Model):
            def __init__(self, inner, **kwargs):
                super().__init__(**kwargs)
                self.inner = inner

            def call(self, x, training=False):
                seen.assign_add(tf.shape(x, out_type=tf.int64)[0])
                return self.inner(x, training=False)

        self.model = CountingTeacher(teacher, name="counting_teacher")
        self.model(np.zeros((1, *teacher.input_shape[1:]), "float32"))  # build it
        self.seen.assign(0)

    def take(self) -> int:
        value = int(self.seen.numpy())
        self.seen.assign(0)
        return value


def _build(pair, epochs, batch_size, teacher_epochs, log):
    """The arms as zero-argument callables; each returns a dict of what it wants recorded (may be empty)."""
    import keras
    import tensorflow as tf

    from tfkd import models, replay

    x, y = pair["x"], pair["y"]
    shape, k = x.shape[1:], pair["num_classes"]
    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    teacher = models.build(pair["teacher"], shape, k, seed=0)
    if teacher_epochs:
        log(f"training the teacher {pair['teacher']} for {teacher_epochs} epoch(s) (speed does not depend on it)")
        teacher.compile(optimizer="adam", loss=ce, metrics=["accuracy"], jit_compile=False)
        teacher.fit(x, y, epochs=teacher_epochs, batch_size=batch_size, verbose=0)
    t_info, s_info = models.describe(teacher), models.describe(models.build(pair["student"], shape, k, seed=1))
    counting = _Counting(teacher)
    config = replay.ViewConfig(seed=0, pad=4, flip=True)
    start = models.build(pair["student"], shape, k, seed=1).get_weights()  # every arm of every sweep starts here

    def student():
        s = models.build(pair["student"], shape, k, seed=1)
        s.set_weights(start)
        return s

    def accuracy(model):
        logits = model.predict(pair["x_test"], batch_size=512, verbose=0)
        return float(np.mean(np.argmax(logits, -1) == pair["y_test"]))

    views = replay.views_dataset(x, y, views=config, batch_size=batch_size, autotune=False)  # epoch follows fit

    def tfkd_sweep():
        cache = replay.compute_replay_cache(counting.model, x, views=config, epochs=epochs, batch_size=256)
        s = student()
        results = replay.train_arms(cache, x, y, s, GRID, batch_size=batch_size)
        return {"teacher_forward_examples": counting.take(), "_weights": [r["weights"] for r in results]}

    def keras_sweep():
        students = []
        for arm in GRID:
            s = student()
            distiller = keras.distillation.Distiller(
                counting.model, s, keras.distillation.LogitsDistillation(temperature=arm["temperature"],
                                                                         loss=keras.losses.KLDivergence()),
                student_loss_weight=1.0 - arm["alpha"])
            distiller.compile(optimizer="adam", loss=ce, jit_compile=False)
            distiller.fit(views, epochs=epochs, callbacks=[replay.ReplayEpoch(views)], shuffle=False, verbose=0)
            students.append(s)
        return {"teacher_forward_examples": counting.take(), "_students": students}

    def student_only_sweep():
        for _ in GRID:
            s = student()
            s.compile(optimizer="adam", loss=ce, jit_compile=False)
            s.fit(views, epochs=epochs, callbacks=[replay.ReplayEpoch(views)], shuffle=False, verbose=0)
        return {}

    forward = tf.function(lambda v: teacher(v, training=False), reduce_retracing=True)
    teacher_views = [replay.views_dataset(x, views=config, epoch=e, batch_size=256, shuffle=False, autotune=False)
                     for e in range(epochs)]

    def teacher_pass():  # one epoch of views (epoch 0; every epoch costs the same)
        for batch in teacher_views[0]:
            forward(batch).numpy()
        return {}

    steady_cache = replay.compute_replay_cache(teacher, x, views=config, epochs=1, batch_size=256)
    replay_ds = steady_cache.dataset(x, y, epoch=0, batch_size=batch_size, autotune=False)
    views_ds = replay.views_dataset(x, y, views=config, epoch=0, batch_size=batch_size, autotune=False)
    import tfkd

    steady_distiller = tfkd.Distiller(None, student(), temperature=4.0, alpha=0.5)
    steady_distiller.compile(optimizer="adam", jit_compile=False)
    steady_student = student()
    steady_student.compile(optimizer="adam", loss=ce, jit_compile=False)

    def replay_epoch():
        steady_distiller.fit(replay_ds, epochs=1, shuffle=False, verbose=0)
        return {}

    def student_epoch():
        steady_student.fit(views_ds, epochs=1, shuffle=False, verbose=0)
        return {}

    arms = {"tfkd_sweep": tfkd_sweep, "keras_sweep": keras_sweep, "student_only_sweep": student_only_sweep,
            "teacher_pass": teacher_pass, "replay_epoch": replay_epoch, "student_epoch": student_epoch}
    info = {"params": {"teacher": t_info["params"], "student": s_info["params"]},
            "flops_per_example": {"teacher": t_info["flops"], "student": s_info["flops"]},
            "views": config.to_dict(), "describe_views": config.describe(), "accuracy": accuracy,
            "student": student}
    return arms, info


def _ratios(t, epochs):
    return {
        "replay_epoch / student_epoch": t["replay_epoch"] / t["student_epoch"],
        "tfkd_sweep / (student_only_sweep + epochs x teacher_pass)":
            t["tfkd_sweep"] / (t["student_only_sweep"] + epochs * t["teacher_pass"]),
        "tfkd_sweep / keras_sweep": t["tfkd_sweep"] / t["keras_sweep"],
    }


def _secondary(t, epochs, arms):
    """The sweep against the stricter bound of steady-state epochs (no model building or tracing counted)."""
    bound = arms * epochs * t["student_epoch"] + epochs * t["teacher_pass"]
    return {"tfkd_sweep / (arms x epochs x student_epoch + epochs x teacher_pass)": t["tfkd_sweep"] / bound,
            "keras_sweep / (arms x epochs x student_epoch + epochs x teacher_pass)": t["keras_sweep"] / bound}


def measure(pair, *, epochs, batch_size, rounds, steady_reps, teacher_epochs, warm_sweeps=True, log=print):
    arms, info = _build(pair, epochs, batch_size, teacher_epochs, log)
    accuracy = info.pop("accuracy")
    log("warm-up: every arm once (traces the steady-state models, fills caches of tf.data and oneDNN)")
    for name, fn in arms.items():
        if not warm_sweeps and name.endswith("_sweep"):
            continue
        t0 = time.perf_counter()
        fn()
        log(f"  warm-up {name}: {time.perf_counter() - t0:.1f}s")
    times = {name: [] for name in arms}
    extras = {}
    for r in range(rounds):
        order = list(arms) if r % 2 == 0 else list(reversed(list(arms)))
        for name in order:
            reps = steady_reps if name in ("replay_epoch", "student_epoch") else 1
            for _ in range(reps):
                t0 = time.perf_counter()
                out = arms[name]()
                times[name].append(time.perf_counter() - t0)
                if out:
                    extras[name] = out
        log(f"round {r + 1}/{rounds}: " + ", ".join(f"{n} {times[n][-1]:.2f}s" for n in arms))
    # Students of the last keras sweep: their test accuracy, beside tfkd's (same views, same start, same grid).
    extras["keras_sweep"]["test_accuracy"] = [accuracy(s) for s in extras["keras_sweep"].pop("_students")]
    probe = info.pop("student")()
    tfkd_accs = []
    for weights in extras["tfkd_sweep"].pop("_weights"):
        probe.set_weights(weights)
        tfkd_accs.append(accuracy(probe))
    extras["tfkd_sweep"]["test_accuracy"] = tfkd_accs
    med = {name: float(np.median(v)) for name, v in times.items()}
    # Per-round ratios: the sweeps' r-th times with the medians of the steady epochs of that round.
    per_round = []
    for r in range(rounds):
        t = {n: times[n][r] for n in ("tfkd_sweep", "keras_sweep", "student_only_sweep", "teacher_pass")}
        for n in ("replay_epoch", "student_epoch"):
            t[n] = float(np.median(times[n][r * steady_reps:(r + 1) * steady_reps]))
        per_round.append(_ratios(t, epochs))
    ratios = _ratios(med, epochs)
    n, steps = len(pair["x"]), -(-len(pair["x"]) // batch_size)
    return {
        "pair": pair["name"], "teacher": pair["teacher"], "student": pair["student"], "data": pair["data"],
        "examples": n, "batch_size": batch_size, "steps_per_epoch": steps, "epochs_per_arm": epochs,
        "arms_per_sweep": len(GRID), "grid": GRID, "rounds": rounds, "steady_reps_per_round": steady_reps,
        "teacher_trained_epochs": teacher_epochs, **info,
        "times_s": times, "median_s": med, "ratios": ratios,
        "ratio_range": {k: [float(min(p[k] for p in per_round)), float(max(p[k] for p in per_round))]
                        for k in TARGETS},
        "met": {k: bool(v <= TARGETS[k]) for k, v in ratios.items()},
        "secondary": _secondary(med, epochs, len(GRID)),
        "teacher_forward_examples": {"tfkd_sweep": extras["tfkd_sweep"]["teacher_forward_examples"],
                                     "keras_sweep": extras["keras_sweep"]["teacher_forward_examples"],
                                     "expected_tfkd (epochs x examples)": epochs * n,
                                     "expected_keras (arms x epochs x examples)": len(GRID) * epochs * n},
        "test_accuracy": {"tfkd_sweep": extras["tfkd_sweep"]["test_accuracy"],
                          "keras_sweep": extras["keras_sweep"]["test_accuracy"]},
    }


def to_markdown(result) -> str:
    r = result["pair"]
    lines = _common.header("Sweep time with replayed augmented views" + (" (QUICK: small budget, numbers "
                                                                         "meaningless)" if result["quick"] else ""),
                           result)
    lines += ["- XLA off (jit_compile=False); every input pipeline is `tfkd.replay.views_dataset` / "
              "`ReplayCache.dataset` with tf.data autotuning off (see step_time.md for why)", "",
              f"## {r['pair']}: {r['teacher']} ({r['params']['teacher']:,} params) -> {r['student']} "
              f"({r['params']['student']:,} params) on {r['data']}", "",
              f"{r['examples']} examples, batch {r['batch_size']} ({r['steps_per_epoch']} steps an epoch); views: "
              f"{r['describe_views']}; {r['arms_per_sweep']} arms (T in 1, 2, 4, 8 x alpha in 0.5, 0.9), "
              f"{r['epochs_per_arm']} epochs each (epoch e on view epoch e); {r['rounds']} interleaved rounds (the "
              f"order reversed every other round), steady-state epochs {r['steady_reps_per_round']} per round; "
              "medians. Every student of every sweep starts from the same initial weights; Adam.", "",
              "| arm | median (s) | best – worst (s) |", "|---|---|---|"]
    for k, v in r["median_s"].items():
        lines.append(f"| {k} | {v:.2f} | {min(r['times_s'][k]):.2f} – {max(r['times_s'][k]):.2f} |")
    e = r["epochs_per_arm"]
    bound = r["median_s"]["student_only_sweep"] + e * r["median_s"]["teacher_pass"]
    lines += [f"| bound: student_only_sweep + {e} x teacher_pass | {bound:.2f} | |", "",
              "| ratio | median | per-round range | target | met (median) |", "|---|---|---|---|---|"]
    for k, v in r["ratios"].items():
        lo, hi = r["ratio_range"][k]
        lines.append(f"| {k} | {v:.3f} | {lo:.3f} – {hi:.3f} | ≤ {TARGETS[k]:.2f} | "
                     f"{'yes' if r['met'][k] else '**missed**'} |")
    lines += ["", "Against the stricter bound of steady-state epochs (no model building or tracing counted, which "
                  "every fresh run pays):", ""]
    lines += [f"- {k}: {v:.3f}" for k, v in r["secondary"].items()]
    f = r["teacher_forward_examples"]
    lines += ["", "Teacher forward passes (examples, counted by a wrapper around the teacher, last round): "
                  f"tfkd sweep {f['tfkd_sweep']:,} (expected {e} epochs x {r['examples']} = "
                  f"{f['expected_tfkd (epochs x examples)']:,}: each (epoch, example) view once, for all "
                  f"{r['arms_per_sweep']} arms); keras sweep {f['keras_sweep']:,} (expected "
                  f"{f['expected_keras (arms x epochs x examples)']:,}: every arm runs the teacher again).", ""]
    acc = r["test_accuracy"]
    lines += ["Test accuracy of the last round's students (1000 CIFAR-10 test images; same views, same start, a "
              f"teacher trained {r['teacher_trained_epochs']} epoch(s), so the absolute level is low: this checks "
              "that the replayed arms train as the live ones do, not accuracy):", "",
              "| arm | " + " | ".join(f"T={g['temperature']:g}, a={g['alpha']:g}" for g in r["grid"]) + " |",
              "|---|" + "---|" * len(r["grid"])]
    for name in ("tfkd_sweep", "keras_sweep"):
        lines.append(f"| {name} | " + " | ".join(f"{a:.3f}" for a in acc[name]) + " |")
    lines += ["", "Reading:", ""] + _notes(r) + [""]
    return "\n".join(lines) + "\n"


def _notes(r) -> list[str]:
    m, e, arms = r["median_s"], r["epochs_per_arm"], r["arms_per_sweep"]
    teacher_share = e * m["teacher_pass"] / m["tfkd_sweep"]
    out = [f"- The tfkd sweep pays the teacher {e} times (one pass per epoch of views, {e * m['teacher_pass']:.1f} s, "
           f"{teacher_share:.0%} of the sweep) instead of {arms * e} times; the rest is {arms} students on cached "
           "logits, one compiled step for all arms (temperature and alpha are variables), so no arm re-traces.",
           f"- A replayed epoch costs {r['ratios']['replay_epoch / student_epoch']:.2f}x a student-only epoch on the "
           "same views: the view pipeline is the same in both, and the cached logits add a gather of 10 float16 "
           "numbers per example and the soft loss.",
           f"- keras.distillation runs the teacher's forward in every step of every arm: {m['keras_sweep']:.1f} s "
           f"against {m['tfkd_sweep']:.1f} s."]
    for k, v in r["ratios"].items():
        if v > TARGETS[k]:
            lo, hi = r["ratio_range"][k]
            out.append(f"- **MISSED** {k}: median {v:.3f} > {TARGETS[k]:.2f} (per-round range {lo:.3f} – {hi:.3f}).")
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sweep_time", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", "--smoke", action="store_true", dest="quick",
                        help="small pair on 512 images, 1 round, 1 epoch; writes to a temporary directory unless "
                        "--out")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per arm (and epochs of views cached)")
    parser.add_argument("--steady-reps", type=int, default=3, help="steady-state epochs per arm per round")
    parser.add_argument("--examples", type=int, default=4000, help="training images (cifar10_subset has 4000)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--teacher-epochs", type=int, default=1, help="epochs the teacher is trained first")
    parser.add_argument("--data-dir", default=_common.default_data_dir(), help="folder with cifar10_subset.npz "
                        "(default $TFKD_DATA_DIR or ../shared/data)")
    parser.add_argument("--out", default=None, help="results directory (default benchmarks/results)")
    parser.add_argument("--render", action="store_true", help="measure nothing: rewrite sweep_time.md from the "
                        "JSON already in --out")
    args = parser.parse_args(argv)
    if args.render:
        return _common.rerender(args.out, args.quick, STEM, to_markdown)
    import keras

    keras.utils.set_random_seed(0)
    env = _common.environment()

    def log(msg):
        print(f"[sweep_time] {msg}", file=sys.stderr, flush=True)

    pair = _setup(args.quick, args.data_dir, args.examples)
    rounds = 1 if args.quick else args.rounds
    epochs = 1 if args.quick else args.epochs
    t0 = time.perf_counter()
    measured = measure(pair, epochs=epochs, batch_size=args.batch_size, rounds=rounds,
                       steady_reps=1 if args.quick else args.steady_reps,
                       teacher_epochs=0 if args.quick else args.teacher_epochs, warm_sweeps=not args.quick,
                       log=log)
    result = {"benchmark": STEM, "quick": args.quick, "command": _common.command(STEM, argv), "env": env,
              "env_end": _common.environment(), "wall_s": round(time.perf_counter() - t0, 1), "targets": TARGETS,
              "pair": measured}
    return _common.publish(args.out, args.quick, STEM, result, to_markdown(result), log)


if __name__ == "__main__":
    sys.exit(main())
