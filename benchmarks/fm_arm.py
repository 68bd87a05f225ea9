"""The main job's function-matching arm through the recipe's own code: live teacher vs replayed views vs labels only.

``tfkd run compress`` trains its function-matching arm (T=1, alpha=1, mixup 0.2, ``--fm-epochs``) on replayed views
(:mod:`tfkd.replay`): the teacher runs once over every epoch's views (stage ``fm_views``) and each seed trains on
those logits. This times, on the main job's digits data, pair and config, each arm as ``compress`` runs it
(:func:`tfkd.recipes.common.student_stage`: checkpoints, logs, validation and test prediction included):

- ``labels``: labels only for the same epochs (the ``nokd_long`` arm);
- ``live``: the live teacher in every step, with in-batch mixup (``augment=``), as before replay;
- ``replayed``: one seed on the replayed views (the teacher pass is ``views`` below);
- ``views``: the teacher's pass over ``epochs`` epochs of views (the ``fm_views`` stage);
- ``pipeline``: iterating the replayed views' ``tf.data`` pipeline for ``epochs`` epochs, no training.

Arms interleaved, the order reversed every other round; medians. From them: the cost of ``seeds`` seeds, live
(``seeds x live``) against replayed (``views + seeds x replayed``).

Run:  python -m benchmarks.fm_arm                      (about 4 min on 2 CPU cores)
      python -m benchmarks.fm_arm --smoke --out /tmp/x (tiny budget, for CI)
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from benchmarks import _common

BUDGET = {"teacher_epochs": 30, "epochs": 20, "rounds": 5, "seeds": [1, 3]}  # the main job's teacher
SMOKE = {"teacher_epochs": 2, "epochs": 2, "rounds": 1, "seeds": [1, 3]}
ARMS = ("labels", "live", "replayed", "views", "pipeline")


def run(budget, log=print) -> dict:
    from tfkd import augment, replay, rng
    from tfkd.recipes import common, compress, runner

    cfg = compress.Config(teacher_epochs=budget["teacher_epochs"], fm_epochs=budget["epochs"])
    cfg.validate()
    data = common.load_data(cfg)
    ctx = runner.RunContext(tempfile.mkdtemp(prefix="tfkd_fm_arm_"), "compress", cfg)
    ctx.stage("teacher", lambda: common.teacher_stage(cfg, ctx, data))
    teacher = ctx.load_model("teacher")
    clean = common.logits_cache_stage(ctx, teacher, data)
    config = compress._fm_views(cfg, data)
    epochs = budget["epochs"]
    views = {}

    def compute_views(r):
        views["cache"] = replay.compute_replay_cache(teacher, data.x_fit, views=config, epochs=epochs)

    def arm(kind, r):
        name = f"{kind}_round{r}"  # a fresh checkpoint folder per round: nothing resumes
        if kind == "labels":
            a = common.Arm.labels_only(name, cfg.seed, epochs=epochs, keep_model=False)
        elif kind == "live":
            a = common.Arm.live(name, cfg.seed, teacher, temperature=1.0, alpha=1.0, epochs=epochs, keep_model=False,
                                augment=augment.layer("none", mixup=cfg.fm_mixup, seed=cfg.seed))
        else:
            a = common.Arm.replayed(name, cfg.seed, common.ReplayedViews(views["cache"], clean), temperature=1.0,
                                    alpha=1.0, epochs=epochs, keep_model=False)
        return common.student_stage(cfg, ctx, data, a)["accuracy"]

    def pipeline(r):
        ds = views["cache"].dataset(data.x_fit, data.y_fit, batch_size=cfg.batch_size, shuffle_seed=r)
        variable = getattr(ds, rng.EPOCH_ATTR)  # what tfkd.training.fit sets before each epoch
        for e in range(epochs):
            variable.assign(e)
            for _ in ds:
                pass

    compute_views(-1)  # traced once before timing; every arm is warmed the same way by round 0 being discarded
    work = {"labels": lambda r: arm("labels", r), "live": lambda r: arm("live", r),
            "replayed": lambda r: arm("replayed", r), "views": compute_views, "pipeline": pipeline}
    times = {k: [] for k in ARMS}
    accuracy = {k: [] for k in ("labels", "live", "replayed")}
    for r in range(budget["rounds"] + 1):
        order = list(ARMS) if r % 2 == 0 else list(ARMS)[::-1]
        for kind in order:
            t0 = time.perf_counter()
            out = work[kind](r)
            seconds = time.perf_counter() - t0
            if r:  # round 0 warms up every arm (tracing, first-call costs) and is not counted
                times[kind].append(seconds)
                if kind in accuracy:
                    accuracy[kind].append(out)
        log(f"round {r}/{budget['rounds']}: " + ", ".join(f"{k} {times[k][-1]:.2f}s" for k in ARMS if r))
    med = {k: float(np.median(v)) for k, v in times.items()}
    seeds = {str(s): {"live": s * med["live"], "replayed": med["views"] + s * med["replayed"],
                      "ratio": (med["views"] + s * med["replayed"]) / (s * med["live"])} for s in budget["seeds"]}
    return {"data": data.summary, "teacher": cfg.teacher, "student": cfg.student, "views": config.describe(),
            "epochs": epochs, "batch_size": cfg.batch_size, "times": times, "median_s": med, "seeds": seeds,
            "accuracy": accuracy}


def _markdown(result) -> str:
    r = result["result"]
    med = r["median_s"]
    lines = _common.header("The main job's function-matching arm: live teacher vs replayed views", result)
    lines += [f"- wall time: {result['wall_s']:.0f} s", "",
              f"{r['data']}", "",
              f"Pair {r['teacher']} -> {r['student']}, {r['epochs']} epochs, batch {r['batch_size']}, views: "
              f"{r['views']}. Each arm as `tfkd run compress` trains it (`tfkd.recipes.common.student_stage`: "
              f"checkpoints, logs, validation, test prediction). {len(r['times']['labels'])} interleaved rounds "
              "after one warm-up round; medians.", "",
              "| arm | median (s) | best – worst (s) | / labels only |", "|---|---|---|---|"]
    for k, v in r["times"].items():
        lines.append(f"| {k} | {med[k]:.2f} | {min(v):.2f} – {max(v):.2f} | {med[k] / med['labels']:.2f} |")
    lines += ["", "Seeds sharing the views (the compress recipe's `--seeds`):", "",
              "| seeds | live: seeds x live (s) | replayed: views + seeds x replayed (s) | replayed / live |",
              "|---|---|---|---|"]
    for s, v in r["seeds"].items():
        lines.append(f"| {s} | {v['live']:.2f} | {v['replayed']:.2f} | {v['ratio']:.2f} |")
    acc = {k: float(np.mean(v)) for k, v in r["accuracy"].items()}
    lines += ["", "Test accuracy, mean over rounds (same seed every round; live uses in-batch mixup, replayed "
              "per-example mixup, so their views differ): " + ", ".join(f"{k} {v:.4f}" for k, v in acc.items()),
              "", f"What the pipeline costs: iterating the replayed views alone takes {med['pipeline']:.2f} s of the "
              f"replayed arm's {med['replayed']:.2f} s ({med['pipeline'] / max(med['replayed'], 1e-9):.0%}; it runs "
              "beside the step through prefetch, on the same cores)."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fm_arm", description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny budget (CI): checks the script runs")
    parser.add_argument("--out", default=None, help="results folder (default benchmarks/results; a temporary "
                        "folder for --smoke)")
    args = parser.parse_args(argv)
    t0, env = time.time(), _common.environment()
    budget = SMOKE if args.smoke else BUDGET
    result = {"env": env, "command": _common.command("fm_arm", argv), "smoke": args.smoke, "budget": budget,
              "result": run(budget)}
    result.update(wall_s=round(time.time() - t0, 1), env_end=_common.environment())
    return _common.publish(_common.out_dir(args.out, args.smoke), args.smoke, "fm_arm", result, _markdown(result),
                           print)


if __name__ == "__main__":
    sys.exit(main())
