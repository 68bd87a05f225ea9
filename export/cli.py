"""``tfkd export``: a ``.keras`` model to TFLite / SavedModel / ONNX, validated on real data, with size and latency.

Example:

    tfkd export student.keras --format tflite --quantize none int8 --data mnist --data-dir ../shared/data --out out/
    tfkd export student.keras --format tflite saved_model onnx --quantize all --data mnist --out out/
    tfkd export tabular.keras --quantize none int8 --data features.npz --out out/
    tfkd export raw_pixels.keras --quantize int8 --data photos/ --image-size 96,96 --input-scale 255 --out out/

Writes the artifacts and ``report.json`` / ``report.md`` in ``--out`` and prints the table. Exit status: 0 when
every requested artifact was written and validated (a skipped ONNX row, for want of the optional packages, counts
as done), 1 when one could not be made (e.g. ops outside the TFLite builtins), 2 on bad arguments or inputs.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

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
                   help="data for calibration (train split) and validation (test split): a dataset name (e.g. "
                        "mnist), an image folder, tfds:NAME, or a .npz file")
    p.add_argument("--data-dir", default=None, help="folder holding <data>.npz (default: $TFKD_DATA_DIR)")
    p.add_argument("--image-size", nargs="+", default=None, metavar="H,W",
                   help="resize images to H x W when loading --data: 32,32 (as tfkd run takes it) or 32 32 "
                        "(default: as stored)")
    p.add_argument("--color-mode", default=None, choices=["rgb", "grayscale", "rgba"],
                   help="load images as rgb (3 channels) or grayscale (1) (default: as stored)")
    p.add_argument("--input-scale", default="unit", choices=["unit", "255"],
                   help="unit: images in [0, 1], as tfkd.data loads them (default); 255: images times 255, for "
                        "models that rescale inside (Rescaling(1/255)). Image data only")
    p.add_argument("--out", required=True, help="output folder for the artifacts and the report")
    p.add_argument("--name", default=None, help="file name stem of the artifacts (default: the model file's)")
    p.add_argument("--io", dest="io_dtype", default=None, choices=["int8", "float32", "int16"],
                   help="input/output tensor type of int8 / int16x8 models (default: int8 for int8, float32 else)")
    p.add_argument("--calibration", type=int, default=300,
                   help="number of training examples that calibrate int8/int16x8 (default: 300)")
    p.add_argument("--test-limit", type=int, default=None,
                   help="validate on the first N test examples (default: all)")
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


def _load_data(args):
    """``(x_train, x_test, y_test)`` from ``--data``, loaded and scaled as the flags say."""
    from tfkd import data as data_lib

    options = {}
    if args.image_size is not None:
        given = " ".join(args.image_size)
        parts = [p for p in given.replace(",", " ").split() if p]
        if len(parts) != 2 or not all(p.isdigit() and int(p) >= 1 for p in parts):
            raise ValueError(f"--image-size {given}: expected two positive integers H,W, e.g. --image-size 32,32.")
        options["image_size"] = tuple(int(p) for p in parts)
    if args.color_mode is not None:
        options["color_mode"] = args.color_mode
    splits = data_lib.load(args.data, data_dir=args.data_dir, **options)
    x_train, x_test = splits.x_train, splits.x_test
    if args.input_scale == "255":
        if x_train.ndim != 4:
            raise ValueError(f"--input-scale 255 multiplies images by 255, but --data {args.data} holds feature "
                             f"data of shape {tuple(x_train.shape)}, not images [N, H, W, C]; leave it at "
                             "--input-scale unit (features go in as loaded).")
        x_train, x_test = x_train * np.float32(255), x_test * np.float32(255)
    return x_train, x_test, splits.y_test


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        _check_out(args.out, args.name)
    except ValueError as err:
        print(f"tfkd export: error: {err}", file=sys.stderr)
        return 2
    from tfkd.export.pipeline import export_all

    try:
        x_train, x_test, y_test = _load_data(args)
        if args.test_limit is not None:
            if args.test_limit < 1:
                raise ValueError(f"--test-limit {args.test_limit} must be >= 1.")
            x_test, y_test = x_test[:args.test_limit], y_test[:args.test_limit]
        report = export_all(args.model, args.out, formats=args.format, quantize=args.quantize, x_test=x_test,
                            y_test=y_test, x_calibration=x_train, io_dtype=args.io_dtype,
                            num_calibration=args.calibration, num_threads=args.threads, runs=args.runs,
                            warmup=args.warmup, name=args.name, allow_flex_ops=args.allow_flex_ops,
                            safe_mode=not args.unsafe, data=args.data, report_stem=args.report_name,
                            log=lambda msg: print(msg, file=sys.stderr))
    except (ValueError, FileNotFoundError, TypeError) as err:
        message = " ".join(str(err).split())
        if "safe_mode=False" in message and not args.unsafe:  # Keras's advice is for Python callers
            message = (f"{args.model} holds a Lambda layer (or other code that runs when it is loaded), refused in "
                       "safe mode. If you trust the file and where it came from, add --unsafe.")
        if "is one array" in message and "inputs; pass a list" in message:  # the list advice is for Python
            message += (" --data gives one array, so export a model with several inputs from Python: "
                        "tfkd.export.export_all(model, out, x_test=[...], x_calibration=[...]).")
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
