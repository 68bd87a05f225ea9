"""Accuracy of distilled students on real data, 3 seeds, mean ± std: the recipes run end to end at a CPU budget.

Drives ``tfkd run`` (``tfkd.recipes.runner.main``) into run directories under ``benchmarks/results/runs/``
(git-ignored; a finished run is reused, a killed one resumed) and collects their ``report.json`` into
``benchmarks/results/accuracy.{json,md}``:

- **Fashion-MNIST and MNIST, ``compress``**, in two runs per dataset. (1) *sweep*: teacher, then a temperature x
  alpha grid at seed 0; the best (T, alpha) is chosen on the **validation** split (10% of the training subset, mean
  of the last 3 epochs), never on the test set. (2) *seeds*: the same teacher (loaded from run 1), then student
  alone (NoKD), KD at the chosen (T, alpha), KD with alpha decaying to 0 over the second half, and function matching
  (consistent views + mixup, T=1, alpha=1, a longer schedule), each over 3 seeds.
- **CIFAR-10 subset, ``takd``**: plain CNN 10 -> 4 (assistant) -> 2 vs BLKD vs NoKD, 3 seeds, next to the
  teacher-assistant study's published numbers (full CIFAR-10, much longer training), which only orient.

The budget (:data:`BUDGET`) is written into the results; with 2 CPU cores each dataset takes about 10-20 minutes.

These teachers are the small ones of the first round (each leads its student by under a point). The report opens
with the evidence issue's five targets, which use the cached strong teachers of :mod:`benchmarks.teachers`: each is
judged by :mod:`benchmarks.evidence` from the result file that measures it, and ``--targets 1,2,3,4,5`` measures
them first (resumed or reused where their runs are there).

Run:  python -m benchmarks.accuracy                         (all three; results/accuracy.{json,md})
      python -m benchmarks.accuracy --targets 4             (also re-measure target 4, the main job, first)
      python -m benchmarks.accuracy --only mnist            (one dataset; the others are collected if present)
      python -m benchmarks.accuracy --smoke --out /tmp/x    (tiny budget, for CI: checks the script still runs)
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from benchmarks import _common

RUNS = _common.RESULTS / "runs"

# The published reference: Mirzadeh et al. (2020), "Improved knowledge distillation via teacher assistant", plain
# CNNs 10 -> 4 -> 2 on full CIFAR-10 (50k training images, long schedules with augmentation); accuracy in %.
TAKD_REFERENCE = {"nokd": 70.16, "blkd": 72.57, "takd": 73.51}

BUDGET = {
    "compress": {"teacher": "plain_cnn:6", "student": "plain_cnn:2", "n_train": 20000, "teacher_epochs": 8,
                 "epochs": 6, "batch_size": 128, "seeds": 3, "sweep_temperatures": [2.0, 4.0, 8.0],
                 "sweep_alphas": [0.5, 0.9], "fm_epochs": 10, "fm_noise": "simple", "fm_mixup": 0.2},
    "takd": {"chain": ["plain_cnn:10", "plain_cnn:4", "plain_cnn:2"], "teacher_epochs": 12, "epochs": 15,
             "batch_size": 128, "seeds": 3, "temperature": 4.0, "alpha": 0.5},
}
SMOKE = {
    "compress": {"teacher": "plain_cnn:4", "student": "plain_cnn:2", "n_train": 300, "n_test": 200,
                 "teacher_epochs": 1, "epochs": 1, "batch_size": 64, "seeds": 1, "sweep_temperatures": [2.0],
                 "sweep_alphas": [0.5], "fm_epochs": 1, "fm_noise": "simple", "fm_mixup": 0.2, "weak_teacher_ok": True},
    "takd": {"chain": ["plain_cnn:4", "plain_cnn:2", "plain_cnn:2"], "n_train": 200, "n_test": 100,
             "teacher_epochs": 1, "epochs": 1, "batch_size": 64, "seeds": 1, "temperature": 4.0, "alpha": 0.5},
}
DATASETS = {"fashion_mnist": "compress", "mnist": "compress", "digits": "compress", "cifar10_subset": "takd"}
TITLES = {"fashion_mnist": "Fashion-MNIST", "mnist": "MNIST", "cifar10_subset": "CIFAR-10 subset",
          "digits": "8x8 digits (scikit-learn)"}
SWEEP_ONLY = ("seeds", "sweep_temperatures", "sweep_alphas", "fm_epochs", "fm_noise", "fm_mixup")


# -- driving the recipes ------------------------------------------------------------------------------------------
def _flags(options: dict) -> list[str]:
    argv = []
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            argv.append(flag if value else "--no-" + key.replace("_", "-"))
        elif isinstance(value, (list, tuple)):
            argv += [flag, ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)]
        else:
            argv += [flag, f"{value:g}" if isinstance(value, float) else str(value)]
    return argv


def _expected_config(argv):
    import importlib

    from tfkd.recipes import config as config_lib
    from tfkd.recipes.runner import RECIPES

    module = importlib.import_module(RECIPES[argv[0]])
    cfg, _ = config_lib.parse_config(module.Config, argv[1:])
    return config_lib.to_dict(cfg)


def run_recipe(argv: list[str], run_dir: Path, log=print) -> dict:
    """Run ``tfkd run <argv> --out run_dir``, resume it if it was killed, reuse it if finished; its report."""
    import keras
    from tfkd.recipes import runner

    from tfkd import io

    report = run_dir / "report.json"
    if (run_dir / "config.json").exists():
        saved = io.read_json(run_dir / "config.json")["config"]
        expected = _expected_config(argv)
        # data_dir may differ (the same files elsewhere); everything else is the budget and must match.
        changed = sorted(k for k in expected if k != "data_dir" and saved.get(k) != expected[k])
        if changed:
            raise RuntimeError(f"{run_dir} was run with another budget (keys {changed} differ: saved "
                               f"{[saved.get(k) for k in changed]}, now {[expected[k] for k in changed]}); delete "
                               "that directory to run it again with the current budget.")
    if report.exists():
        log(f"reusing finished run {run_dir}")
        return {**io.read_json(report), "reused": True}
    t0 = time.time()
    if (run_dir / "state.json").exists():
        log(f"resuming {run_dir}")
        rc = runner.main(["--resume", str(run_dir)])
    else:
        log("tfkd run " + " ".join(argv + ["--out", str(run_dir)]))
        rc = runner.main(argv + ["--out", str(run_dir)])
    keras.backend.clear_session()  # the next run starts from a clean graph and frees this one's models
    if rc != 0 or not report.exists():
        raise RuntimeError(f"tfkd run {' '.join(argv)} failed with exit code {rc}; see {run_dir}.")
    log(f"{run_dir.name}: {time.time() - t0:.0f} s")
    return {**io.read_json(report), "reused": False}


def _val_score(history, last=3) -> float:
    """Mean validation accuracy of the last ``last`` epochs: steadier than the final epoch alone."""
    values = history.get("val_accuracy") or []
    if not values:
        raise KeyError(f"no val_accuracy in the history (keys {sorted(history)}); cannot choose the sweep's best.")
    return float(np.mean(values[-last:]))


def compress_dataset(dataset, budget, runs, data_dir, log=print) -> dict:
    """Sweep run (choose T, alpha on validation), then the seeds run with the same teacher; the collected entry."""
    from tfkd import io

    base = ["compress", "--dataset", dataset, *(["--data-dir", str(data_dir)] if data_dir else [])]
    common = {k: v for k, v in budget.items() if k not in SWEEP_ONLY and k != "weak_teacher_ok"}
    sweep_argv = base + _flags({**common, "seeds": 1, "sweep": True, "sweep_temperatures": budget["sweep_temperatures"],
                                "sweep_alphas": budget["sweep_alphas"], "function_matching": False,
                                "export": False})
    sweep_dir = runs / f"{dataset}-sweep"
    sweep_report = run_recipe(sweep_argv, sweep_dir, log)
    stages = io.read_json(sweep_dir / "state.json")["stages"]
    sweep = []
    for t, a, test_acc in sweep_report["results"]["sweep"]:
        history = stages[f"sweep/T{t:g}_a{a:g}"]["result"]["history"]
        sweep.append({"temperature": t, "alpha": a, "val_accuracy": _val_score(history), "test_accuracy": test_acc})
    best = max(sweep, key=lambda r: r["val_accuracy"])  # first in grid order on a tie

    teacher_path = (sweep_dir / sweep_report["results"]["teacher"]["path"]).resolve()
    seeds_argv = base + _flags({**{k: v for k, v in common.items() if k not in ("teacher", "teacher_epochs")},
                                "teacher": str(teacher_path), "seeds": budget["seeds"],
                                "temperature": best["temperature"], "alpha": best["alpha"],
                                "fm_epochs": budget["fm_epochs"], "fm_noise": budget["fm_noise"],
                                "fm_mixup": budget["fm_mixup"], "export": False,
                                # the smoke budget's one-epoch teacher is near chance by design
                                **({"allow_weak_teacher": True} if budget.get("weak_teacher_ok") else {})})
    seeds_dir = runs / f"{dataset}-seeds"
    report = run_recipe(seeds_argv, seeds_dir, log)
    res = report["results"]
    sweep_teacher = sweep_report["results"]["teacher"]
    arms = {}
    for arm, rows in res["arms"].items():
        arms[arm] = {"accuracy": [r["accuracy"] for r in rows], "agreement": [r["agreement"] for r in rows],
                     "seeds": [r["seed"] for r in rows], "model": str((seeds_dir / rows[0]["path"]).relative_to(runs)),
                     "epochs": len(rows[0]["history"].get("loss", []))}
    return {
        "recipe": "compress", "title": f"{TITLES.get(dataset, dataset)}: {budget['teacher']} -> {budget['student']}",
        "data": report["summary"][0], "budget": budget,
        "commands": ["tfkd run " + " ".join(sweep_argv + ["--out", _rel(sweep_dir)]),
                     "tfkd run " + " ".join(seeds_argv + ["--out", _rel(seeds_dir)])],
        "runs": [_rel(sweep_dir), _rel(seeds_dir)],
        "teacher": {"spec": budget["teacher"], "accuracy": sweep_teacher["accuracy"],
                    "params": sweep_teacher["describe"]["params"], "flops": sweep_teacher["describe"]["flops"],
                    "model": str((sweep_dir / sweep_teacher["path"]).relative_to(runs))},
        "student": {"spec": budget["student"], "params": res["arms"]["nokd"][0]["describe"]["params"],
                    "flops": res["arms"]["nokd"][0]["describe"]["flops"]},
        "chosen": {"temperature": best["temperature"], "alpha": best["alpha"],
                   "by": "validation accuracy (seed 0, mean of the last 3 epochs) over the sweep"},
        "sweep": sweep, "sweep_nokd_seed0_test": sweep_report["results"]["arms"]["nokd"][0]["accuracy"],
        "arms": arms, "seconds": round(sweep_report["seconds"] + report["seconds"], 1),
        "reused": [sweep_report["reused"], report["reused"]],
    }


def takd_dataset(dataset, budget, runs, data_dir, log=print) -> dict:
    argv = ["takd", "--dataset", dataset, *(["--data-dir", str(data_dir)] if data_dir else []),
            *_flags({**budget, "export": False})]
    run_dir = runs / f"{dataset}-takd"
    report = run_recipe(argv, run_dir, log)
    res = report["results"]
    arms = {}
    for arm, rows in res["arms"].items():
        arms[arm] = {"accuracy": [r["accuracy"] for r in rows], "seeds": [r["seed"] for r in rows],
                     "agreement_with_teacher": [r.get("agreement_with_teacher", r.get("agreement")) for r in rows],
                     "model": str((run_dir / rows[0]["path"]).relative_to(runs))}
    chain = [{"name": c["name"], "spec": c["spec"], "trained_from": c.get("trained_from", "labels"),
              "accuracy": c["accuracy"], "params": c["describe"]["params"],
              "model": str((run_dir / c["path"]).relative_to(runs))} for c in res["chain"]]
    return {"recipe": "takd", "title": f"{TITLES.get(dataset, dataset)}: " + " -> ".join(budget["chain"]),
            "data": report["summary"][0], "budget": budget,
            "commands": ["tfkd run " + " ".join(argv + ["--out", _rel(run_dir)])], "runs": [_rel(run_dir)],
            "chain": chain, "arms": arms, "reference": TAKD_REFERENCE, "seconds": report["seconds"],
            "reused": [report["reused"]]}


def _rel(path) -> str:
    path = Path(path).resolve()
    try:
        return str(path.relative_to(_common.REPO))
    except ValueError:
        return str(path)


# -- summary ------------------------------------------------------------------------------------------------------
def _paired_delta(a, b) -> str:
    """Mean ± std over seeds of the per-seed difference ``a - b`` in points (arms share each seed)."""
    d = (np.asarray(a) - np.asarray(b)) * 100
    return f"{d.mean():+.2f}" if len(d) == 1 else f"{d.mean():+.2f} ± {d.std(ddof=1):.2f}"


def _baseline(arm) -> str:
    """The label-only arm a distilled arm is compared with: the one trained for the same number of epochs."""
    return "nokd_long" if arm == "fm" else "nokd"


def _plural(n, word) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _compress_md(ds, e) -> list[str]:
    b, t, s, arms = e["budget"], e["teacher"], e["student"], e["arms"]
    n, temp, alpha = b["seeds"], e["chosen"]["temperature"], e["chosen"]["alpha"]
    labels = {"nokd": f"student alone (labels only), {_plural(b['epochs'], 'epoch')}",
              "kd": f"KD, T={temp:g}, alpha={alpha:g} (best of the sweep)",
              "kd_decay": f"KD + alpha decay (T={temp:g}, alpha {alpha:g} -> 0 over the second half)",
              "nokd_long": f"student alone (labels only), {_plural(b['fm_epochs'], 'epoch')}: the fm baseline",
              "fm": f"function matching ({b['fm_noise']} views + mixup {b['fm_mixup']:g}, T=1, alpha=1, "
                    f"{_plural(b['fm_epochs'], 'epoch')})"}
    lines = ["", f"## {e['title']}", "", f"- {e['data']}",
             f"- budget: teacher {_plural(b['teacher_epochs'], 'epoch')}; students {_plural(b['epochs'], 'epoch')} "
             f"(function matching and its baseline {b['fm_epochs']}); batch {b['batch_size']}; Adam 1e-3; "
             f"{_plural(n, 'seed')}; {(e['seconds'] or 0) / 60:.1f} min for both runs", "",
             f"| model | params | FLOPs/example | test accuracy % (mean ± std, {_plural(n, 'seed')}) | "
             "Δ vs student alone, same epochs (points, paired by seed) | agreement with teacher % |",
             "|---|---|---|---|---|---|",
             f"| teacher {t['spec']} | {t['params']:,} | {t['flops']:,} | {t['accuracy'] * 100:.2f} | | |"]
    for arm, label in labels.items():
        if arm not in arms:
            continue
        acc = arms[arm]["accuracy"]
        delta = "—" if arm.startswith("nokd") else _paired_delta(acc, arms[_baseline(arm)]["accuracy"])
        lines.append(f"| {label}, {s['spec']} | {s['params']:,} | {s['flops']:,} | {_common.fmt_mean_std(acc)} | "
                     f"{delta} | {_common.fmt_mean_std(arms[arm]['agreement'])} |")
    lines += ["", f"Sweep (seed 0; the student alone at seed 0 scored {e['sweep_nokd_seed0_test'] * 100:.2f} % on "
                  "test). The setting is chosen on validation accuracy; the test column is shown, not used:", "",
              "| T | alpha | validation % (last 3 epochs) | test % | Δ test vs student alone seed 0 |",
              "|---|---|---|---|---|"]
    for r in e["sweep"]:
        mark = " **chosen**" if (r["temperature"], r["alpha"]) == (temp, alpha) else ""
        delta = (r["test_accuracy"] - e["sweep_nokd_seed0_test"]) * 100
        lines.append(f"| {r['temperature']:g} | {r['alpha']:g} | {r['val_accuracy'] * 100:.2f}{mark} | "
                     f"{r['test_accuracy'] * 100:.2f} | {delta:+.2f} |")
    lines += [""] + [f"- {v}" for v in _compress_verdicts(e)]
    lines += ["", "Commands:", ""] + [f"    {c}" for c in e["commands"]]
    return lines


def _compress_verdicts(e) -> list[str]:
    arms, out = e["arms"], []
    for arm in ("kd", "kd_decay", "fm"):
        if arm not in arms or _baseline(arm) not in arms:
            continue
        d = (np.asarray(arms[arm]["accuracy"]) - np.asarray(arms[_baseline(arm)]["accuracy"])) * 100
        wins = int(np.sum(d > 0))
        if len(d) > 1:
            se = float(d.std(ddof=1)) / np.sqrt(len(d))
            clear = "a clear difference" if abs(d.mean()) > 2 * se else "NOT a clear difference"
            clear += f" (standard error of the paired mean {se:.2f})"
        else:
            clear = "one seed: no error bar"
        word = "beat" if d.mean() > 0 else ("tied" if d.mean() == 0 else "LOST to")
        out.append(f"{arm}: {word} the student alone trained as long by {abs(d.mean()):.2f} points on average (won "
                   f"{wins} of {len(d)} seeds); {clear}.")
    return out


def _takd_md(ds, e) -> list[str]:
    b, arms, ref = e["budget"], e["arms"], e["reference"]
    lines = ["", f"## {e['title']} (teacher-assistant KD)", "", f"- {e['data']}",
             f"- budget: teacher {_plural(b['teacher_epochs'], 'epoch')}; assistant and students "
             f"{_plural(b['epochs'], 'epoch')}; batch {b['batch_size']}; T={b['temperature']:g}, alpha={b['alpha']:g}; "
             f"no augmentation; {_plural(b['seeds'], 'seed')}; {(e['seconds'] or 0) / 60:.1f} min", "",
             "| model | spec | trained from | params | test accuracy % |", "|---|---|---|---|---|"]
    lines += [f"| {c['name']} | {c['spec']} | {c['trained_from']} | {c['params']:,} | {c['accuracy'] * 100:.2f} |"
              for c in e["chain"]]
    names = {"nokd": "NoKD (labels only)", "blkd": "BLKD (teacher -> student)",
             "takd": "TAKD (teacher -> assistant -> student)"}
    lines += ["", f"| student {b['chain'][-1]} | ours: test % (mean ± std, {_plural(b['seeds'], 'seed')}) | "
                  "Δ vs NoKD (paired) | published, full CIFAR-10 | published Δ vs NoKD |", "|---|---|---|---|---|"]
    for arm, label in names.items():
        acc = arms[arm]["accuracy"]
        delta = "—" if arm == "nokd" else _paired_delta(acc, arms["nokd"]["accuracy"])
        pub = "—" if arm == "nokd" else f"{ref[arm] - ref['nokd']:+.2f}"
        lines.append(f"| {label} | {_common.fmt_mean_std(acc)} | {delta} | {ref[arm]:.2f} | {pub} |")
    takd_vs_blkd = _paired_delta(arms["takd"]["accuracy"], arms["blkd"]["accuracy"])
    lines += ["", f"- TAKD vs BLKD: {takd_vs_blkd} points here; the study reports "
                  f"{ref['takd'] - ref['blkd']:+.2f}.",
              "- The published numbers are for orientation only: they use all 50,000 CIFAR-10 training images, "
              "augmentation and schedules of hundreds of epochs; we train on the few thousand images above, without "
              "augmentation, for minutes on 2 CPU cores, so absolute accuracies are far lower and the gaps need not "
              "match.", "", "Command:", ""] + [f"    {c}" for c in e["commands"]]
    return lines


def _gap(e) -> float:
    """Teacher minus the student alone (mean over seeds), in points: how much there is to distil."""
    teacher = e["teacher"]["accuracy"] if e["recipe"] == "compress" else e["chain"][0]["accuracy"]
    return (teacher - float(np.mean(e["arms"]["nokd"]["accuracy"]))) * 100


def _summary(result) -> list[str]:
    """One line per dataset: the teacher's lead over the student, then what each method did with it."""
    lines = []
    for e in result["datasets"].values():
        arms, gap = e["arms"], _gap(e)
        parts = []
        for arm in ("kd", "kd_decay", "fm", "blkd", "takd"):
            if arm in arms and _baseline(arm) in arms:
                delta = _paired_delta(arms[arm]["accuracy"], arms[_baseline(arm)]["accuracy"])
                parts.append(f"{ARM_LABELS[arm]} {delta}")
        thin = " — a thin lead, so little to distil at this budget" if gap < 1.5 else ""
        lines.append(f"- **{e['title']}**: the teacher leads the student alone by {gap:+.2f} points{thin}; against "
                     "the student alone trained as long (points, paired by seed): " + ", ".join(parts) + ".")
    return lines


ARM_LABELS = {"kd": "KD", "kd_decay": "KD + decay", "fm": "function matching", "blkd": "BLKD", "takd": "TAKD"}


def to_markdown(result) -> str:
    lines = _common.header("Accuracy of distilled students on real data" + (" (SMOKE)" if result["smoke"] else ""),
                           result)
    lines += ["", "Every number is test accuracy of a model trained here by `tfkd run`; ± is the sample standard "
                  "deviation over seeds (each seed re-initialises and re-orders the student; the data subset and the "
                  "teacher are fixed). The budget is a CPU budget, far below the papers': read the differences "
                  "between arms, not the absolute numbers."]
    reused = sum(sum(e.get("reused", [])) for e in result["datasets"].values())
    if reused:
        lines += ["", f"{reused} of {sum(len(e.get('reused', [])) for e in result['datasets'].values())} runs were "
                      "reused from an earlier invocation (delete a run directory to retrain it): the load average "
                      "above is that of this collection, the minutes per dataset those of the original training."]
    if "targets" in result:
        from benchmarks import evidence

        lines += ["", "## Does distillation win? The five targets", ""] + evidence.table(result["targets"])
    lines += ["", "## Summary of the first-round tables", ""] + _summary(result)
    for ds, e in result["datasets"].items():
        lines += _compress_md(ds, e) if e["recipe"] == "compress" else _takd_md(ds, e)
    # Commands are shown from the repository root, where benchmarks run.
    return "\n".join(lines).replace(str(_common.REPO) + "/", "") + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.accuracy", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=list(DATASETS), help="run these datasets (default: "
                        "fashion_mnist, mnist, cifar10_subset); others already run are collected too")
    parser.add_argument("--smoke", action="store_true", help="tiny budget (digits + cifar10_subset); writes to a "
                        "temporary directory unless --out")
    parser.add_argument("--runs-dir", default=None, help="run directories (default benchmarks/results/runs; for "
                        "--smoke, <out>/runs)")
    parser.add_argument("--out", default=None, help="results directory (default benchmarks/results)")
    parser.add_argument("--data-dir", default=_common.default_data_dir(), help="folder with mnist.npz, ... (default "
                        "$TFKD_DATA_DIR or ../shared/data)")
    parser.add_argument("--fresh", action="store_true", help="delete the selected datasets' run directories first")
    parser.add_argument("--targets", default="", help="comma-separated evidence targets (1-5) to measure first, as "
                        "python -m benchmarks.evidence --run does; the table of all five is written either way")
    args = parser.parse_args(argv)
    from benchmarks import evidence

    targets = evidence.parse_targets(args.targets, lambda msg: parser.error(f"--targets {msg}"))
    out = _common.out_dir(args.out, args.smoke)
    runs = Path(args.runs_dir) if args.runs_dir else (out / "runs" if args.smoke else RUNS)
    budgets = SMOKE if args.smoke else BUDGET
    selected = args.only or (["digits", "cifar10_subset"] if args.smoke else ["fashion_mnist", "mnist",
                                                                                    "cifar10_subset"])
    result = {"benchmark": "accuracy", "smoke": args.smoke, "command": _common.command("accuracy", argv),
              "env": _common.environment(), "budget": budgets, "datasets": {}}

    def log(msg):
        print(f"[accuracy] {msg}", flush=True)

    for ds, recipe in DATASETS.items():
        wanted = ds in selected
        prefix = f"{ds}-"
        if wanted and args.fresh:
            for d in runs.glob(prefix + "*"):
                shutil.rmtree(d)
        present = any((runs / f"{ds}-{suffix}" / "report.json").exists() for suffix in ("seeds", "takd"))
        if not wanted and not present:
            continue
        fn = compress_dataset if recipe == "compress" else takd_dataset
        result["datasets"][ds] = fn(ds, budgets[recipe], runs, args.data_dir, log)
    for target in targets:
        evidence.run_target(target, out)
    result["targets"] = evidence.collect(out)
    result["env_end"] = _common.environment()
    paths = _common.write(out, "accuracy_smoke" if args.smoke else "accuracy", result, to_markdown(result))
    print(to_markdown(result))
    log(f"wrote {paths['json']} and {paths['markdown']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
