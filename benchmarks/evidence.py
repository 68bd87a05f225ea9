"""Does distillation win? The evidence issue's five targets in one table, each judged met or missed from the run
that measures it, never from prose.

1. ``benchmarks.fmnist_chosen``: teacher >= 92.5 % test, student <= 1/10 of its parameters, and the distilled
   student chosen on validation beats the labels-only one chosen by the same search by >= 1.0 point (3 seeds, paired).
2. ``benchmarks.hinton``: the distilled MNIST student closes >= half of its gap to the teacher in test errors.
3. ``tfkd run takd`` (CIFAR-10 subset, ``--views shift_flip``): NoKD < BLKD < TAKD on the seed-mean test accuracy.
4. ``tfkd run compress --seeds 3`` (the main job's defaults): the verdict's distilled arm beats its labels-only
   baseline on validation and on test.
5. ``tfkd run noisy-student`` (its default run): both of the recipe's target lines say MET.

The benchmarks write ``benchmarks/results/<name>.json``; the recipe runs go to ``benchmarks/results/runs/evidence/``
(git-ignored; resumed when killed) and their ``report.json``, without training histories, is kept as
``benchmarks/results/evidence/<name>.json``. This script reads those files and writes
``benchmarks/results/evidence.{json,md}``; a target whose file is missing is "not measured".

Run:  python -m benchmarks.evidence                 (collect and judge what is measured: seconds)
      python -m benchmarks.evidence --run 3,4,5     (first run these targets' commands; hours for all five on 2
                                                    CPU cores: 1 and 2 are the longest, about 50 min each)
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from benchmarks import _common

CIFAR_TEACHER = "{results}/runs/teachers/cifar10_subset/teacher.keras"  # benchmarks.teachers' cached teacher
RECIPES = {
    3: ("takd_views", ["takd", "--dataset", "cifar10_subset", "--chain", f"{CIFAR_TEACHER},plain_cnn:4,plain_cnn:2",
                       "--views", "shift_flip", "--epochs", "60", "--batch-size", "64", "--seeds", "3",
                       "--no-export"]),
    4: ("main_job", ["compress", "--seeds", "3", "--no-export"]),
    5: ("noisy_student", ["noisy-student"]),
}
BENCHMARKS = {1: "fmnist_chosen", 2: "hinton"}
TITLES = {1: "Fashion-MNIST, full set: distilled vs labels only, both chosen on validation",
          2: "Hinton et al. (2015) on MNIST: half the gap closed",
          3: "TAKD ordering NoKD < BLKD < TAKD (CIFAR-10 subset)",
          4: "The main job (digits): distilled beats labels only on validation and test",
          5: "Noisy Student: iteration 2 keeps iteration 1; noise costs no robustness"}


def _pm(mean, se):
    return f"{mean:+.2f}" + (f" ± {se:.2f}" if se is not None else "")


def judge_fmnist(result) -> tuple[bool, str]:
    r = result["result"]
    t, arms = r["teacher"], r["arms"]
    delta, se = _common.paired_points(arms["distilled"]["test"], arms["labels"]["test"])
    ratio = t["params"] / r["student_params"]
    met = t["test_accuracy"] >= 0.925 and ratio >= 10 and delta >= 1.0
    return met, (f"teacher {100 * t['test_accuracy']:.2f} %, student 1/{ratio:.0f} of its parameters; "
                 f"{arms['distilled']['described']} vs {arms['labels']['described']}: {_pm(delta, se)} points "
                 f"({len(arms['labels']['test'])} seeds)")


def judge_hinton(result) -> tuple[bool, str]:
    r = result["result"]
    removed = r["errors_removed"]
    return bool(r["target_met"]), (f"{100 * r['gap_closed']:.0f} % of the gap closed ({removed['mean']:.1f} ± "
                                   f"{removed['se']:.1f} test errors removed, {len(r['seeds'])} seeds)")


def judge_takd(report) -> tuple[bool, str]:
    arms = report["results"]["arms"]
    acc = {a: [x["accuracy"] for x in arms[a]] for a in ("nokd", "blkd", "takd")}
    mean = {a: 100 * float(np.mean(v)) for a, v in acc.items()}
    met = mean["nokd"] < mean["blkd"] < mean["takd"]
    blkd, takd = (_pm(*_common.paired_points(acc[a], acc[b])) for a, b in (("blkd", "nokd"), ("takd", "blkd")))
    return met, (f"NoKD {mean['nokd']:.2f}, BLKD {mean['blkd']:.2f} ({blkd}), "
                 f"TAKD {mean['takd']:.2f} (vs BLKD {takd}) %, "
                 f"{len(acc['nokd'])} seeds")


def judge_main_job(report) -> tuple[bool, str]:
    v = report["verdict"]
    met = v["delta_vs_nokd_points"] > 0 and v["val_delta_points"] > 0
    return met, (f"{v['method']} vs {v['baseline']}: test {_pm(v['delta_vs_nokd_points'], v['delta_stderr_points'])}"
                 f", validation {v['val_delta_points']:+.2f} points ({v['seeds']} seeds)")


def judge_noisy(report) -> tuple[bool, str]:
    lines = report["results"]["verdicts"]
    text = "; ".join(line.removeprefix("target, ").rstrip(".") for line in lines)
    return bool(lines) and all("MET" in line for line in lines), text


JUDGES = {1: judge_fmnist, 2: judge_hinton, 3: judge_takd, 4: judge_main_job, 5: judge_noisy}


def _source(target, results: Path) -> Path:
    if target in BENCHMARKS:
        return results / f"{BENCHMARKS[target]}.json"
    return results / "evidence" / f"{RECIPES[target][0]}.json"


def _without_histories(value):
    """A report without its per-epoch histories: what the judgement and a reader need, a tenth of the size."""
    if isinstance(value, dict):
        return {k: _without_histories(v) for k, v in value.items() if k != "history"}
    if isinstance(value, list):
        return [_without_histories(v) for v in value]
    return value


def run_target(target, results: Path, log=print):
    """Run one target's measurement: the benchmark's main, or the recipe into runs/evidence/ (resumed if there)."""
    import importlib

    from tfkd import io

    if target in BENCHMARKS:
        log(f"target {target}: python -m benchmarks.{BENCHMARKS[target]}")
        importlib.import_module(f"benchmarks.{BENCHMARKS[target]}").main(["--out", str(results)])
        return
    from tfkd.recipes import runner

    name, argv = RECIPES[target]
    if target == 3:  # the chain starts at the cached CIFAR teacher of benchmarks.teachers
        from benchmarks import teachers

        teachers.load_teacher("cifar10_subset", cache_dir=results / "runs" / "teachers")
    out = results / "runs" / "evidence" / name
    argv = [a.format(results=results) for a in argv]
    args = [argv[0], "--resume", str(out)] if (out / "config.json").is_file() else [*argv, "--out", str(out)]
    log(f"target {target}: tfkd run {' '.join(args)}")
    if runner.main(args) != 0:
        raise RuntimeError(f"target {target}: tfkd run {' '.join(args)} failed; see {out}")
    io.write_json(_source(target, results), _without_histories(io.read_json(out / "report.json")))


def collect(results: Path) -> list[dict]:
    from tfkd import io

    rows = []
    for target, title in TITLES.items():
        path = _source(target, results)
        row = {"target": target, "title": title, "source": _rel(path)}
        if path.is_file():
            met, measured = JUDGES[target](io.read_json(path))
            row.update(status="met" if met else "missed", measured=measured)
        else:
            row.update(status="not measured", measured=f"no {_rel(path)}")
        rows.append(row)
    return rows


def _rel(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(_common.RESULTS.parents[1]))
    except ValueError:
        return str(path)


def table(rows) -> list[str]:
    """The targets as markdown lines (also the first table of ``benchmarks.accuracy``)."""
    lines = ["Each status is computed from the file beside it (`python -m benchmarks.evidence`); the numbers are on "
             "test, every choice on validation.", "", "| target | status | measured | from |", "|---|---|---|---|"]
    return lines + [f"| {r['target']}. {r['title']} | **{r['status']}** | {r['measured']} | `{r['source']}` |"
                    for r in rows]


def parse_targets(text, error):
    """``"3,4"`` -> ``[3, 4]``; ``error(message)`` (an argparse ``parser.error``) on anything else."""
    try:
        targets = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        error(f"{text!r}: expected comma-separated target numbers from {list(TITLES)}")
    unknown = [t for t in targets if t not in TITLES]
    if unknown:
        error(f"unknown targets {unknown}; expected some of {list(TITLES)}")
    return targets


def _markdown(result) -> str:
    lines = _common.header("Does distillation win? The five targets", result)
    return "\n".join(lines + [""] + table(result["targets"])) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.evidence", description=__doc__.splitlines()[0])
    parser.add_argument("--run", default="", help="comma-separated targets (1-5) to measure first; default: none "
                        "(collect what is there)")
    parser.add_argument("--out", default=None, help="results folder (default benchmarks/results)")
    args = parser.parse_args(argv)
    to_run = parse_targets(args.run, lambda msg: parser.error(f"--run {msg}"))
    t0, env = time.time(), _common.environment()
    results = Path(args.out) if args.out else _common.RESULTS
    for target in to_run:
        run_target(target, results)
    result = {"env": env, "command": _common.command("evidence", argv), "targets": collect(results),
              "wall_s": round(time.time() - t0, 1), "env_end": _common.environment()}
    return _common.publish(results, False, "evidence", result, _markdown(result), print)


if __name__ == "__main__":
    sys.exit(main())
