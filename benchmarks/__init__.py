"""Benchmarks: speed, accuracy and export quality; results in ``benchmarks/results/`` (JSON + Markdown).

``benchmarks/`` lives in the repository, not in the installed package, so run it from the repository root:

    python -m benchmarks.step_time            # speed of a distillation epoch (arms interleaved, medians, ratios)
    python -m benchmarks.accuracy             # recipes on real data, 3 seeds -> results/accuracy.{json,md}
    python -m benchmarks.export_students      # every accuracy student exported to TFLite -> results/export_students.*
    python -m benchmarks.teachers             # augmented, val-chosen teachers, cached; -> results/teachers.{json,md}
    python -m benchmarks.methods              # every distillation method vs NoKD and KD -> results/methods.{json,md}
    python -m benchmarks.export_quality       # one MNIST student in every format (+ --tfmot) -> results/export_mnist*
    python -m benchmarks.sweep_time           # a T x alpha sweep on replayed views -> results/sweep_time.{json,md}
    python -m benchmarks.fm_arm               # compress's function-matching arm: live vs replayed -> results/fm_arm.*
    python -m benchmarks.fmnist_chosen        # full Fashion-MNIST, distilled vs labels, both val-chosen -> results/
    python -m benchmarks.fmnist_patient       # full Fashion-MNIST, function matching for 100 epochs, curves -> results/
    python -m benchmarks.evidence             # the evidence issue's five targets, met or missed -> results/evidence.*
    tfkd bench step_time --smoke              # the same through the tfkd command (tiny budget)

Order for a full refresh: ``accuracy``, then ``export_students`` (it exports the accuracy runs' students), then
``step_time`` last, on the quietest machine you can get.
"""

from __future__ import annotations

import importlib
import sys

# name -> one-line description (the module benchmarks.<name> exposes main(argv))
BENCHMARKS = {
    "step_time": "speed of a distillation epoch: tfkd vs keras.distillation vs the lower bound, two scales",
    "accuracy": "compress (Fashion-MNIST, MNIST) and takd (CIFAR-10 subset) recipes, 3 seeds, mean ± std",
    "export_students": "each accuracy student as float32/dynamic/float16/int8 TFLite: size, latency, agreement",
    "teachers": "teachers worth distilling (augmented, cosine, val-chosen), cached; the student alone beside",
    "export_quality": "one MNIST student in every export format; --tfmot adds the pruning / QAT track",
    "hinton": "Hinton et al. (2015) MNIST nets: teacher, student alone, distilled (T, alpha chosen on validation)",
    "digits_student": "the main job's digits pair with a tuned labels-only baseline vs KD and function matching",
    "sweep_time": "an 8-arm T x alpha sweep on augmented views: teacher outputs replayed once vs keras.distillation",
    "fm_arm": "the main job's function-matching arm through the recipe: live teacher vs replayed views vs labels",
    "fmnist_chosen": "full Fashion-MNIST: distilled vs labels-only students, each chosen by an equal keras-tuner "
                     "search on validation, 3 seeds",
    "fmnist_patient": "full Fashion-MNIST, patiently: function matching vs labels on the same views and on clean "
                      "images, 100 epochs, one seed, accuracy against epochs",
    "evidence": "does distillation win? the five evidence targets judged met / missed from their result files "
                "(--run N,...: measure them first)",
    "methods": "every distillation method (KD, DKD, DIST, FitNet, AT, RKD, SP, ...) vs NoKD, cached teacher, 3 seeds",
}


def _usage() -> str:
    lines = ["usage: tfkd bench <name> [options]   (from the repository root: benchmarks/ is not installed)", "",
             "benchmarks:"]
    lines += [f"  {name:<15} {text}" for name, text in BENCHMARKS.items()]
    lines += ["", "Run 'tfkd bench <name> --help' for its options; results go to benchmarks/results/."]
    return "\n".join(lines)


def main(argv=None) -> int:
    """Entry point of ``tfkd bench <name> [args]``: runs ``benchmarks.<name>.main(args)``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in BENCHMARKS:
        print(f"tfkd bench: unknown benchmark {name!r}; expected one of: {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    result = importlib.import_module(f"benchmarks.{name}").main(rest)
    return result if isinstance(result, int) else 0
