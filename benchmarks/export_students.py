"""Export quality of every student of the accuracy benchmark: TFLite size, latency, agreement and accuracy.

For each dataset of ``benchmarks/results/accuracy.json`` and each student arm there (seed 0 of student alone, KD,
KD + decay, function matching; NoKD / BLKD / TAKD), :func:`tfkd.export.export_all` writes float32, dynamic-range,
float16 and int8 TFLite files, validates each against the Keras model on the run's real test set, and measures
size, gzip size and batch-1 latency with 1 interpreter thread; the same files are then timed with 2 threads. The
teacher is exported in float32 too, so the deployment gain is one ratio: teacher float32 latency / student int8
latency. Calibration (int8) uses the run's own training images.

Results: ``benchmarks/results/export_students.{json,md}``. Run ``python -m benchmarks.accuracy`` first.

Run:  python -m benchmarks.export_students
      python -m benchmarks.export_students --smoke --accuracy /tmp/x/accuracy_smoke.json --out /tmp/x
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from benchmarks import _common

QUANTIZE = ["none", "dynamic", "float16", "int8"]
ARM_NAMES = {"nokd": "student alone", "kd": "KD", "kd_decay": "KD + decay", "nokd_long": "student alone, long",
             "fm": "function matching", "blkd": "BLKD", "takd": "TAKD"}
# The export issue's acceptance check: int8 at most 30% of the float32 TFLite size, at most 0.5 points lost.
INT8_MAX_SIZE, INT8_MAX_LOSS = 0.30, 0.5


def _run_data(run_dir: Path, n_test=None):
    """The run's own data (same subset, same validation split) from its ``config.json``."""
    import importlib

    from tfkd.recipes import common
    from tfkd.recipes import config as config_lib
    from tfkd.recipes.runner import RECIPES

    from tfkd import io

    saved = io.read_json(run_dir / "config.json")
    cfg = config_lib.from_dict(importlib.import_module(RECIPES[saved["recipe"]]).Config, saved["config"])
    data = common.load_data(cfg)
    if n_test:
        data.x_test, data.y_test = data.x_test[:n_test], data.y_test[:n_test]
    return data


def _export(model_path, out, name, data, ds, quantize, runs, warmup):
    """export_all rows (Keras baseline first) for ``quantize``, each TFLite row with a 2-thread latency too."""
    from tfkd.export import benchmark, export_all

    report = export_all(str(model_path), out, formats=["tflite"], quantize=quantize, x_test=data.x_test,
                        y_test=data.y_test, x_calibration=data.x_fit, num_threads=1, runs=runs, warmup=warmup,
                        name=name, data=ds, report_stem=f"{name}_report", log=lambda *_: None)
    rows = []
    for row in report["rows"]:
        row = {k: v for k, v in row.items() if k not in ("latency_mean_ms", "latency_min_ms")}
        if row["format"] == "tflite" and "path" in row:
            two = benchmark(Path(out) / row["path"], num_threads=2, runs=runs, warmup=warmup, inputs=data.x_test[:1])
            row["latency_median_ms_2_threads"] = two["latency_median_ms"]
            row["latency_p90_ms_2_threads"] = two["latency_p90_ms"]
        rows.append(row)
    return rows


def export_dataset(ds, entry, runs_dir: Path, work: Path, *, runs, warmup, smoke, log=print) -> dict:
    models = {arm: a["model"] for arm, a in entry["arms"].items()}
    teacher = entry["teacher"]["model"] if entry["recipe"] == "compress" else entry["chain"][0]["model"]
    if smoke:  # one student is enough to keep the code path alive
        models = dict(list(models.items())[:1])
    run_dir = runs_dir / Path(next(iter(models.values()))).parts[0]
    data = _run_data(run_dir, n_test=200 if smoke else None)
    out = {"title": entry["title"], "data": data.summary, "students": {}, "teacher": None}
    for arm, rel in models.items():
        log(f"{ds} {arm}: {rel}")
        out["students"][arm] = {"model": rel, "rows": _export(runs_dir / rel, work / ds / arm, f"{ds}_{arm}", data, ds,
                                                              QUANTIZE, runs, warmup)}
    log(f"{ds} teacher: {teacher}")
    out["teacher"] = {"model": teacher, "spec": (entry.get("teacher") or entry["chain"][0])["spec"],
                      "rows": _export(runs_dir / teacher, work / ds / "teacher", f"{ds}_teacher", data, ds, ["none"],
                                      runs, warmup)}
    return out


def _tflite(rows, quantize):
    return next((r for r in rows if r["format"] == "tflite" and r["quantize"] == quantize and "size_bytes" in r),
                None)


_VARIANT = {"none": "float32", "dynamic": "dynamic", "float16": "float16", "int8": "int8"}


def _fastest(rows):
    """The TFLite variant with the lowest 1-thread latency."""
    return min((r for r in rows if r["format"] == "tflite" and "size_bytes" in r), key=lambda r: r["latency_median_ms"])


def _gain(e) -> list[str]:
    t32 = _tflite(e["teacher"]["rows"], "none")
    lines = []
    for arm, s in e["students"].items():
        f32, i8 = _tflite(s["rows"], "none"), _tflite(s["rows"], "int8")
        if not (t32 and f32 and i8):
            continue
        size, delta = i8["size_bytes"] / f32["size_bytes"], (i8["accuracy"] - f32["accuracy"]) * 100
        ok = size <= INT8_MAX_SIZE and -delta <= INT8_MAX_LOSS
        fast = _fastest(s["rows"])
        lines.append(f"| {ARM_NAMES.get(arm, arm)} | {t32['latency_median_ms'] / i8['latency_median_ms']:.1f}x | "
                     f"{t32['latency_median_ms_2_threads'] / i8['latency_median_ms_2_threads']:.1f}x | "
                     f"{_VARIANT[fast['quantize']]}: {t32['latency_median_ms'] / fast['latency_median_ms']:.1f}x | "
                     f"{t32['size_bytes'] / i8['size_bytes']:.1f}x | {(t32['accuracy'] - i8['accuracy']) * 100:+.2f} | "
                     f"{size:.0%} | {delta:+.2f} | {'yes' if ok else '**no**'} |")
    return lines


def _summary(result) -> list[str]:
    """One line per dataset: what deploying the student instead of the teacher buys, in size and time."""
    lines = []
    for e in result["datasets"].values():
        t32 = _tflite(e["teacher"]["rows"], "none")
        s = next(iter(e["students"].values()))["rows"]
        f32, i8, fast = _tflite(s, "none"), _tflite(s, "int8"), _fastest(s)
        if not (t32 and f32 and i8):
            continue
        lines.append(
            f"- **{e['title']}**: teacher float32 TFLite {t32['size_bytes'] / 1e3:.0f} kB, "
            f"{t32['latency_median_ms']:.3f} ms (1 thread); student int8 {i8['size_bytes'] / 1e3:.1f} kB "
            f"({t32['size_bytes'] / i8['size_bytes']:.0f}x smaller), {i8['latency_median_ms']:.3f} ms; the student's "
            "fastest variant is "
            f"{_VARIANT[fast['quantize']]} at {fast['latency_median_ms']:.3f} ms "
            f"({t32['latency_median_ms'] / fast['latency_median_ms']:.0f}x faster than the teacher). int8 with float32 "
            f"inputs and outputs is {i8['latency_median_ms'] / f32['latency_median_ms']:.1f}x the float32 student's "
            "latency: at ~10k parameters the fixed costs (quantizing the input, dequantizing the output, int8 kernel "
            "set-up) appear to outweigh the arithmetic saved, so int8 buys size here, not speed (the float32 and "
            "dynamic variants are the fast ones).")
    return lines


def to_markdown(result) -> str:
    lines = _common.header("Export quality of the distilled students" + (" (SMOKE)" if result["smoke"] else ""),
                           result)
    lines += [f"- latency: batch 1, median of {result['settings']['runs']} calls after {result['settings']['warmup']} "
              "warm-up calls, ai_edge_litert interpreter with 1 and with 2 threads, on the shared CPU above; "
              "agreement: top-1 agreement with the Keras model on the whole test set; int8: full-integer "
              "quantization calibrated on the run's training images (float32 inputs and outputs).", "",
              "## Summary", ""] + _summary(result) + [""]
    cols = ["model", "format", "size (bytes)", "gzip (bytes)", "latency 1 thread (ms)", "latency 2 threads (ms)",
            "agreement with Keras", "accuracy %", "Δ vs Keras (points)"]
    for e in result["datasets"].values():
        lines += [f"## {e['title']}", "", f"- {e['data']}", "", "| " + " | ".join(cols) + " |",
                  "|" + "---|" * len(cols)]
        groups = [(f"teacher {e['teacher']['spec']}", e["teacher"]["rows"])]
        groups += [(ARM_NAMES.get(arm, arm), s["rows"]) for arm, s in e["students"].items()]
        for label, rows in groups:
            for r in rows:
                if "size_bytes" not in r:
                    lines.append(f"| {label} | {r['format']} {r['quantize']} | {r.get('error') or r.get('skipped')} |")
                    continue
                fmt = "Keras float32" if r["format"] == "keras" else \
                    f"TFLite {r['quantize'].replace('none', 'float32')}"
                two = r.get("latency_median_ms_2_threads")
                lines.append(
                    f"| {label} | {fmt} | {r['size_bytes']:,} | {r['gzip_bytes']:,} | {r['latency_median_ms']:.3f} | "
                    f"{'' if two is None else f'{two:.3f}'} | {r['agreement']:.4f} | {r['accuracy'] * 100:.2f} | "
                    f"{r.get('accuracy_delta_points', 0.0):+.2f} |")
        gain = _gain(e)
        if gain:
            lines += ["", "Deployment gain of the int8 student over the float32 TFLite teacher, and the export "
                          f"acceptance check (int8 ≤ {INT8_MAX_SIZE:.0%} of the float32 size, ≤ {INT8_MAX_LOSS} "
                          "points lost):", "",
                      "| student | teacher f32 / student int8 latency, 1 thread | same, 2 threads | fastest student "
                      "variant: teacher f32 / it, 1 thread | size ratio (teacher f32 / student int8) | accuracy: "
                      "teacher − student int8 (points) | int8 / float32 size | int8 − float32 accuracy (points) | "
                      "acceptance |", "|---|---|---|---|---|---|---|---|---|"] + gain
        lines.append("")
    lines += ["Notes:", "",
              "- At these model sizes (10k-13k parameters) a TFLite file carries a fixed few kilobytes of graph and "
              "metadata, so quantization shrinks the file by less than the 4x of the weights alone: int8 is 33-35% "
              "of float32 here, above the export issue's 30% bar, which was set on a 78k-parameter model (29% there, "
              "see export_mnist.md).",
              "- Latencies of well under a millisecond are dominated by per-call interpreter overhead; on a shared "
              "machine their medians can move by 10-20% between runs."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.export_students",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--accuracy", default=None, help="accuracy results to read (default "
                        "benchmarks/results/accuracy.json)")
    parser.add_argument("--runs-dir", default=None, help="their run directories (default: runs/ beside --accuracy)")
    parser.add_argument("--out", default=None, help="results directory (default benchmarks/results)")
    parser.add_argument("--work", default=None, help="where the .tflite files go (default: a temporary directory)")
    parser.add_argument("--runs", type=int, default=200, help="timed calls per latency measurement")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--smoke", action="store_true", help="one student per dataset, 200 test images, 5 timed "
                        "calls; writes to a temporary directory unless --out")
    parser.add_argument("--render", action="store_true", help="measure nothing: rewrite the Markdown from the "
                        "JSON already in --out")
    args = parser.parse_args(argv)
    from tfkd import io

    if args.render:
        return _common.rerender(args.out, args.smoke, "export_students", to_markdown)

    accuracy = Path(args.accuracy) if args.accuracy else _common.RESULTS / "accuracy.json"
    if not accuracy.exists():
        print(f"export_students: {accuracy} not found; run 'python -m benchmarks.accuracy' first (or pass "
              "--accuracy PATH).", file=sys.stderr)
        return 2
    runs_dir = Path(args.runs_dir) if args.runs_dir else accuracy.parent / "runs"
    acc = io.read_json(accuracy)
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="tfkd_export_students_"))
    runs, warmup = (5, 1) if args.smoke else (args.runs, args.warmup)
    result = {"benchmark": "export_students", "smoke": args.smoke, "command": _common.command("export_students", argv),
              "env": _common.environment(), "source": str(accuracy), "settings": {"runs": runs, "warmup": warmup,
                                                                                 "quantize": QUANTIZE},
              "datasets": {}}

    def log(msg):
        print(f"[export_students] {msg}", file=sys.stderr, flush=True)

    for ds, entry in acc["datasets"].items():
        result["datasets"][ds] = export_dataset(ds, entry, runs_dir, work, runs=runs, warmup=warmup,
                                                smoke=args.smoke, log=log)
    result["env_end"] = _common.environment()
    return _common.publish(args.out, args.smoke, "export_students", result, to_markdown(result), log)


if __name__ == "__main__":
    sys.exit(main())
