"""``tfkd export``: a ``.keras`` model to TFLite / SavedModel / ONNX, validated on real data, with size and latency.

Example:

    tfkd export student.keras --format tflite --quantize none int8 --data mnist --data-dir ../shared/data --out out/
    tfkd export student.keras --format tflite saved_model onnx --quantize all --data mnist --out out/

Writes the artifacts and ``report.json`` / ``report.md`` in ``--out`` and prints the table. Exit status: 0 when
every requested artifact was written and validated (a skipped ONNX row, for want of the optional packages, counts
as done), 1 when one could not be made (e.g. ops outside the TFLite builtins), 2 on bad arguments or inputs.
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["main"]


def _parser():
    from tfkd.export.pipeline import FORMATS
    from tfkd.export.tflite import QUANTIZE_MODES

    p = argparse.ArgumentParser(prog="tfkd export", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="the .keras model to export (loaded with safe_mode unless --unsafe)")
    p.add_argument("--format", nargs="+", default=["tflite"], metavar="FORMAT",
                   help=f"one or more of {', '.join(FORMATS)} or all (default: tflite)")
    p.add_argument("--quantize", nargs="+", default=["none"], metavar="MODE",
                   help=f"TFLite quantization, one or more of {', '.join(QUANTIZE_MODES)} or all (default: none)")
    p.add_argument("--data", required=True,
                   help="dataset for calibration (train split) and validation (test split), e.g. mnist")
    p.add_argument("--data-dir", default=None, help="folder holding <data>.npz (default: $TFKD_DATA_DIR)")
    p.add_argument("--out", required=True, help="output folder for the artifacts and the report")
    p.add_argument("--name", default=None, help="file name stem of the artifacts (default: the model file's)")
    p.add_argument("--io", dest="io_dtype", default=None, choices=["int8", "float32", "int16"],
                   help="input/output tensor type of int8 / int16x8 models (default: int8 for int8, float32 else)")
    p.add_argument("--calibration", type=int, default=300,
                   help="number of training images that calibrate int8/int16x8 (default: 300)")
    p.add_argument("--test-limit", type=int, default=None, help="validate on the first N test images (default: all)")
    p.add_argument("--threads", type=int, default=1, help="interpreter threads for the latency (default: 1)")
    p.add_argument("--runs", type=int, default=200, help="timed invocations per format (default: 200)")
    p.add_argument("--warmup", type=int, default=20, help="untimed invocations first (default: 20)")
    p.add_argument("--report-name", default="report", help="stem of the report files (default: report)")
    p.add_argument("--allow-flex-ops", action="store_true",
                   help="let TF (Flex) ops into TFLite files; they then need the Flex delegate to run")
    p.add_argument("--unsafe", action="store_true",
                   help="load the model with safe_mode=False (runs Lambda-layer code: only for files you trust)")
    p.add_argument("--verbose", action="store_true",
                   help="keep TensorFlow's own logging (the tfkd command quiets it; see tfkd.console)")
    return p


def _check_out(out, name):
    """Refuse, before any work, an artifact name that is a path and an --out that cannot hold files."""
    import os
    from pathlib import Path

    if name is not None and (not name.strip() or name in (".", "..") or any(c in name for c in "/\\")):
        raise ValueError(f"--name {name!r} must be a plain file name stem (no '/' or '\\'): the artifacts are "
                         "written inside --out.")
    out = Path(out)
    existing = next((p for p in [out, *out.parents] if p.exists()), None)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {str(out)!r} is a file, not a folder; give a folder (it is created if needed).")
    if existing is not None and existing.is_dir() and not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"--out {str(out)!r}: {existing} is not writable; give a folder you can write to.")
    if existing is not None and not existing.is_dir():
        raise ValueError(f"--out {str(out)!r}: {existing} is a file, so no folder can be made under it.")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        _check_out(args.out, args.name)
    except ValueError as err:
        print(f"tfkd export: error: {err}", file=sys.stderr)
        return 2
    from tfkd.export.pipeline import export_all

    try:
        from tfkd import data as data_lib

        splits = data_lib.load(args.data, data_dir=args.data_dir)
        x_test, y_test = splits.x_test, splits.y_test
        if args.test_limit is not None:
            if args.test_limit < 1:
                raise ValueError(f"--test-limit {args.test_limit} must be >= 1.")
            x_test, y_test = x_test[:args.test_limit], y_test[:args.test_limit]
        report = export_all(args.model, args.out, formats=args.format, quantize=args.quantize, x_test=x_test,
                            y_test=y_test, x_calibration=splits.x_train, io_dtype=args.io_dtype,
                            num_calibration=args.calibration, num_threads=args.threads, runs=args.runs,
                            warmup=args.warmup, name=args.name, allow_flex_ops=args.allow_flex_ops,
                            safe_mode=not args.unsafe, data=args.data, report_stem=args.report_name,
                            log=lambda msg: print(msg, file=sys.stderr))
    except (ValueError, FileNotFoundError, TypeError) as err:
        message = " ".join(str(err).split())
        if "safe_mode=False" in message and not args.unsafe:  # Keras's advice is for Python callers
            message = (f"{args.model} holds a Lambda layer (or other code that runs when it is loaded), refused in "
                       "safe mode. If you trust the file and where it came from, add --unsafe.")
        print(f"tfkd export: error: {message}", file=sys.stderr)
        return 2
    except OSError as err:  # a full disk or a folder that became unwritable mid-export
        print(f"tfkd export: error: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    print(report["markdown_table"], end="")
    for note in report["notes"][1:]:
        print(note)
    print(f"report: {report['json']} and {report['markdown']}")
    failed = [row for row in report["rows"] if "error" in row]
    for row in failed:
        print(f"tfkd export: {row['format']} {row['quantize']} failed: {row['error']}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
