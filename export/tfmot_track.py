"""Pruning and quantization-aware training (tfmot) of a tfkd student, in its own process, distilling from cached logits.

tensorflow-model-optimization 0.8 accepts only tf_keras (Keras 2) models and switches the process to legacy Keras
when imported, so this track never shares a process with Keras 3. The parent (Keras 3) side, :func:`run_track`,
writes the trained student's weights (``.npz`` keyed by layer and weight name; no pickle) and the teacher's logits
on the training examples (``.npy``) and starts ``python -m tfkd.export.tfmot_track``. That process rebuilds the
student in tf_keras from the same ``tfkd.models`` spec, checks that its logits match the Keras 3 student's, and:

- **prunes** it by weight magnitude to ``--sparsity`` (polynomial schedule over the first 70% of the fine-tuning
  steps), fine-tuning with distillation (``alpha * T^2 KL(teacher || student) + (1 - alpha) * CE``, from the cached
  logits, so the teacher never has to exist in tf_keras), then ``strip_pruning`` before export: the zeros cost as
  much as any weight on disk, so the gain shows in the **gzip** size (what a download moves);
- runs **quantization-aware training** (``quantize_model``) with the same distillation fine-tuning and exports
  full-integer int8 TFLite, next to post-training int8 of the dense student.

The report (``tfmot_report.json`` / ``.md``) compares PTQ int8 vs QAT int8 accuracy and pruned vs dense gzip size.

Example (Keras 3 side):

    from tfkd.export.tfmot_track import run_track
    report = run_track(student, "plain_cnn:4", teacher_logits_train, "out/tfmot", data="mnist", sparsity=0.5)
    report["summary"]["qat_int8_accuracy"], report["summary"]["pruned_gzip_ratio"]

or directly: ``python -m tfkd.export.tfmot_track --spec plain_cnn:4 --weights w.npz --teacher-logits t.npy
--data mnist --out out/tfmot``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from tfkd.weights import weighted_layers  # imports no Keras: safe before tfmot picks legacy Keras

__all__ = ["run_track", "save_weights_npz", "main"]

REPORT = "tfmot_report"


# --------------------------------------------------------------------------------------------------- both sides


def _weight_key(layer, index, variable):
    name = variable.name.split("/")[-1].split(":")[0]  # tf_keras "conv1/kernel:0", Keras 3 "kernel"
    return f"{layer.name}/{index}/{'kernel' if name == 'depthwise_kernel' else name}"


def save_weights_npz(model, path) -> Path:
    """Every weight of ``model`` (Keras 3 or tf_keras) into an ``.npz`` keyed ``layer/index/name``, atomically."""
    from tfkd.io import atomic_path

    arrays = {}
    for layer in weighted_layers(model):
        for i, variable in enumerate(layer.weights):
            arrays[_weight_key(layer, i, variable)] = np.asarray(variable.numpy() if hasattr(variable, "numpy")
                                                                 else variable, dtype=np.float32)
    path = Path(path)
    with atomic_path(path) as tmp:
        np.savez(tmp, **arrays)
    return path


def _load_weights_npz(model, path):
    """Set ``model``'s weights from :func:`save_weights_npz` output; every key and shape must match, or none is set."""
    with np.load(path, allow_pickle=False) as stored:
        stored = dict(stored)
    assignments = []
    for layer in weighted_layers(model):
        for i, variable in enumerate(layer.weights):
            key = _weight_key(layer, i, variable)
            if key not in stored:
                raise ValueError(f"weights file {path} has no {key!r}; it holds {sorted(stored)[:8]}... The student "
                                 "spec, input shape and class count must be the ones the weights were trained with.")
            if tuple(stored[key].shape) != tuple(variable.shape):
                raise ValueError(f"weights file {path}: {key!r} has shape {stored[key].shape}, the model expects "
                                 f"{tuple(variable.shape)}; rebuild the student from the same spec.")
            assignments.append((variable, stored.pop(key)))
    if stored:
        raise ValueError(f"weights file {path} has weights the model lacks: {sorted(stored)[:8]}; wrong spec?")
    for variable, value in assignments:
        variable.assign(value)


# --------------------------------------------------------------------------------------------- Keras 3 side


def run_track(student, spec: str, teacher_logits, out_dir, *, data: str | None = None, data_dir=None,
              arrays=None, train_limit: int | None = None, test_limit: int | None = None, sparsity: float = 0.5,
              epochs: int = 2, temperature: float = 4.0, alpha: float = 0.9, batch_size: int = 64, lr: float = 1e-4,
              num_calibration: int = 300, seed: int = 0, steps: tuple = ("prune", "qat"), train_bn: bool = False,
              timeout: float | None = None, quiet: bool = False) -> dict:
    """Run the pruning / QAT track on a trained Keras 3 ``student`` in a subprocess; returns its report dict.

    ``spec``: the ``tfkd.models`` spec the student was built from (e.g. ``"plain_cnn:4"``). ``teacher_logits``:
    the teacher's logits on the training examples, row ``i`` for training example ``i`` (an array or a ``.npy`` path).
    The examples come from ``data`` (a ``tfkd.data`` name, first ``train_limit`` training examples) or ``arrays``
    (``x_train, y_train, x_test, y_test``). Inputs and results go to ``out_dir``.

    Example:

        report = run_track(student, "mlp:128-64", t_logits, "out/tfmot", data="mnist", epochs=1)
    """
    out_dir = Path(out_dir)
    inputs = out_dir / "inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    if (data is None) == (arrays is None):
        raise ValueError("pass exactly one of data= (a tfkd.data name such as 'mnist') and arrays= "
                         "((x_train, y_train, x_test, y_test)).")
    weights = save_weights_npz(student, inputs / "student_weights.npz")
    logits_path = Path(teacher_logits) if isinstance(teacher_logits, (str, Path)) else inputs / "teacher_logits.npy"
    if not isinstance(teacher_logits, (str, Path)):
        np.save(logits_path, np.asarray(teacher_logits, dtype=np.float32))
    command = [sys.executable, "-m", "tfkd.export.tfmot_track", "--spec", spec, "--weights", str(weights),
               "--teacher-logits", str(logits_path), "--out", str(out_dir), "--sparsity", str(sparsity),
               "--epochs", str(epochs), "--temperature", str(temperature), "--alpha", str(alpha),
               "--batch-size", str(batch_size), "--lr", str(lr), "--calibration", str(num_calibration),
               "--seed", str(seed), "--steps", *steps] + (["--train-bn"] if train_bn else [])
    if arrays is not None:
        x_train, y_train, x_test, y_test = arrays
        np.savez(inputs / "arrays.npz", x_train=np.asarray(x_train, np.float32), y_train=np.asarray(y_train),
                 x_test=np.asarray(x_test, np.float32), y_test=np.asarray(y_test))
        command += ["--arrays", str(inputs / "arrays.npz")]
        x_check = np.asarray(x_test[:256], np.float32)
    else:
        command += ["--data", data] + (["--data-dir", str(data_dir)] if data_dir else [])
        from tfkd import data as data_lib

        x_check = data_lib.load(data, data_dir=data_dir).x_test[:256]
    if train_limit:
        command += ["--train-limit", str(train_limit)]
    if test_limit:
        command += ["--test-limit", str(test_limit)]
    # the subprocess proves its tf_keras rebuild is this very model by reproducing these logits
    np.save(inputs / "student_check_logits.npy", np.asarray(student.predict(x_check, verbose=0), np.float32))
    command += ["--check-logits", str(inputs / "student_check_logits.npy")]
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1"}
    streams = {"capture_output": True} if quiet else {"stdout": sys.stderr}  # keep the parent's stdout clean
    result = subprocess.run(command, env=env, timeout=timeout, text=True, **streams)
    if result.returncode != 0:
        tail = "\n".join((result.stderr or "").strip().splitlines()[-25:]) if quiet else "(see the output above)"
        raise RuntimeError(f"the tfmot track failed with exit status {result.returncode}: {' '.join(command)}\n{tail}")
    return json.loads((out_dir / f"{REPORT}.json").read_text())


# ------------------------------------------------------------------------------- tf_keras side (the subprocess)


def _parser():
    p = argparse.ArgumentParser(prog="python -m tfkd.export.tfmot_track", description=__doc__.split("\n\n")[0])
    p.add_argument("--spec", required=True, help="tfkd.models spec of the student, e.g. plain_cnn:4")
    p.add_argument("--weights", required=True, help=".npz written by save_weights_npz (the trained student)")
    p.add_argument("--teacher-logits", required=True, help=".npy of teacher logits, one row per training example")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--data", help="tfkd.data dataset name (e.g. mnist)")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--arrays", help=".npz with x_train, y_train, x_test, y_test (instead of --data)")
    p.add_argument("--train-limit", type=int, default=None, help="use the first N training examples")
    p.add_argument("--test-limit", type=int, default=None, help="evaluate on the first N test examples")
    p.add_argument("--check-logits", default=None, help=".npy of the Keras 3 student's logits on x_test[:N]")
    p.add_argument("--steps", nargs="+", default=["prune", "qat"], choices=["prune", "qat"])
    p.add_argument("--sparsity", type=float, default=0.5, help="target fraction of zero weights (default 0.5)")
    p.add_argument("--epochs", type=int, default=2, help="distillation fine-tuning epochs per step (default 2)")
    p.add_argument("--temperature", type=float, default=4.0)
    p.add_argument("--alpha", type=float, default=0.9, help="weight of the soft (teacher) loss")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-4, help="fine-tuning learning rate (Adam)")
    p.add_argument("--train-bn", action="store_true",
                   help="let BatchNormalization use batch statistics while fine-tuning (default: frozen)")
    p.add_argument("--calibration", type=int, default=300, help="training examples calibrating post-training int8")
    p.add_argument("--threads", type=int, default=1, help="interpreter threads for the latency")
    p.add_argument("--seed", type=int, default=0)
    return p


def _log(message):
    print(f"[tfmot] {message}", file=sys.stderr, flush=True)


def _load_data(args):
    if (args.data is None) == (args.arrays is None):
        raise SystemExit("tfmot_track: pass exactly one of --data NAME and --arrays FILE.npz")
    if args.arrays:
        with np.load(args.arrays, allow_pickle=False) as d:
            x_train, y_train, x_test, y_test = (d[k] for k in ("x_train", "y_train", "x_test", "y_test"))
    else:
        from tfkd import data as data_lib  # numpy only: no Keras

        s = data_lib.load(args.data, data_dir=args.data_dir)
        x_train, y_train, x_test, y_test = s.x_train, s.y_train, s.x_test, s.y_test
    if args.train_limit:
        x_train, y_train = x_train[:args.train_limit], y_train[:args.train_limit]
    if args.test_limit:
        x_test, y_test = x_test[:args.test_limit], y_test[:args.test_limit]
    return (np.asarray(x_train, np.float32), np.asarray(y_train).reshape(-1).astype(np.int64),
            np.asarray(x_test, np.float32), np.asarray(y_test).reshape(-1).astype(np.int64))


def _kd_loss(temperature, alpha):
    """Distillation loss on packed targets ``y = [label, teacher logits...]`` (Keras losses get one ``y_true``)."""
    import tensorflow as tf

    from tfkd.losses import kd_kl  # pure TensorFlow, no Keras

    def loss(y, logits):
        labels = tf.cast(y[:, 0], tf.int32)
        hard = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=tf.cast(logits, tf.float32))
        return alpha * kd_kl(logits, y[:, 1:], temperature) + (1.0 - alpha) * hard

    return loss


def _fine_tune(model, x, packed, args, callbacks=()):
    import tf_keras

    def accuracy(y, logits):
        return tf_keras.metrics.sparse_categorical_accuracy(y[:, 0], logits)

    model.compile(optimizer=tf_keras.optimizers.Adam(args.lr), loss=_kd_loss(args.temperature, args.alpha),
                  metrics=[accuracy])
    history = model.fit(x, packed, epochs=args.epochs, batch_size=args.batch_size, shuffle=True, verbose=0,
                        callbacks=list(callbacks))
    return {k: [float(v) for v in vals] for k, vals in history.history.items()}


def _write_saved_model(model, directory, input_shape):
    import tensorflow as tf

    from tfkd.export.savedmodel import INPUT_KEY, OUTPUT_KEY, SIGNATURE

    @tf.function(input_signature=[tf.TensorSpec((None, *input_shape), tf.float32, name=INPUT_KEY)])
    def serve(inputs):
        return {OUTPUT_KEY: tf.cast(model(inputs, training=False), tf.float32)}

    tf.saved_model.save(model, str(directory), signatures={SIGNATURE: serve})


def _export(model, path, input_shape, quantize, calibration, args):
    import tempfile

    from tfkd.export.atomic import write_bytes
    from tfkd.export.tflite import convert_saved_model

    with tempfile.TemporaryDirectory(prefix="tfkd_tfmot_") as tmp:
        _write_saved_model(model, Path(tmp) / "saved", input_shape)
        data = convert_saved_model(Path(tmp) / "saved", input_shape=input_shape, quantize=quantize,
                                   representative_data=calibration, num_calibration=args.calibration,
                                   seed=args.seed, name=model.name)
    return write_bytes(path, data)


def _row(name, path, reference_logits, x_test, y_test, args, **extra):
    from tfkd.export.bench import benchmark
    from tfkd.export.runners import load_runner
    from tfkd.export.validation import predict_batched

    logits = predict_batched(load_runner(path), x_test)
    pred = logits.argmax(-1)
    timing = benchmark(path, num_threads=args.threads, runs=100, warmup=10, inputs=x_test[:1])
    row = {"model": name, "path": path.name, "size_bytes": timing["size_bytes"], "gzip_bytes": timing["gzip_bytes"],
           "latency_median_ms": timing["latency_median_ms"], "accuracy": float(np.mean(pred == y_test)),
           "agreement_with_dense": float(np.mean(pred == reference_logits.argmax(-1))), **extra}
    _log(f"{name}: {row['size_bytes']:,} bytes, gzip {row['gzip_bytes']:,}, accuracy {row['accuracy']:.4f}")
    return row


def _freeze_batch_norm(model):
    """BN layers to inference mode with fixed statistics (``trainable=False`` does both in tf_keras).

    The distillation targets are the teacher's inference-mode logits and the fine-tuning is short: with batch
    statistics the student is trained to fit them under a normalisation it will not use at inference, and its moving
    averages trail the changed weights. Measured on MNIST (plain_cnn:2 at 92.1%, 1 epoch of self-distillation at
    lr 1e-4): 87.6% test accuracy with trainable BN, 92.1% (unchanged) with frozen BN.
    """
    import tf_keras

    for layer in model.layers:
        if isinstance(layer, tf_keras.layers.BatchNormalization):
            layer.trainable = False
        elif hasattr(layer, "layers"):
            _freeze_batch_norm(layer)


def _sparsity(model):
    """Fraction of exact zeros over the kernels of Conv / Dense layers (what magnitude pruning targets)."""
    zeros = total = 0
    for layer in weighted_layers(model):
        for variable in layer.weights:
            if "kernel" in variable.name:
                value = variable.numpy()
                zeros += int(np.sum(value == 0))
                total += value.size
    return zeros / max(total, 1)


def _markdown(rows, summary, settings):
    lines = ["# Pruning and quantization-aware training (tfmot)", "",
             "- settings: " + ", ".join(f"{k}={v}" for k, v in settings.items()), "",
             "| model | size (bytes) | gzip (bytes) | gzip / dense float32 | kernel sparsity | accuracy | "
             "agreement with dense | latency median (ms) |", "|---|---|---|---|---|---|---|---|"]
    base = rows[0]["gzip_bytes"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['size_bytes']:,} | {r['gzip_bytes']:,} | {r['gzip_bytes'] / base:.3f} | "
                     f"{r.get('sparsity', 0.0):.3f} | {r['accuracy']:.4f} | {r['agreement_with_dense']:.4f} | "
                     f"{r['latency_median_ms']:.4f} |")
    lines += ["", *(f"- {k}: {v:.4f}" if isinstance(v, float) else f"- {k}: {v}" for k, v in summary.items())]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # tfmot probes `from keras.src.engine import ...` and falls back when that fails; blocking the Keras 3 package
    # gives the same fallback and guarantees nothing here runs on Keras 3 (tf.keras is tf_keras in this process).
    if "keras" in sys.modules and sys.modules["keras"] is not None:
        raise SystemExit("tfmot_track must run in its own process, before any Keras 3 import: use run_track() or "
                         "python -m tfkd.export.tfmot_track.")
    sys.modules["keras"] = None
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    start = time.time()
    import tensorflow_model_optimization as tfmot
    import tf_keras

    from tfkd import models
    from tfkd.io import write_json, write_text

    tf_keras.utils.set_random_seed(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    x_train, y_train, x_test, y_test = _load_data(args)
    teacher = np.load(args.teacher_logits, allow_pickle=False).astype(np.float32)
    if len(teacher) != len(x_train):
        raise SystemExit(f"--teacher-logits has {len(teacher)} rows but there are {len(x_train)} training examples; "
                         "row i must be the teacher's logits on training example i (use --train-limit to match).")
    packed = np.concatenate([y_train[:, None].astype(np.float32), teacher], axis=1)
    input_shape, num_classes = tuple(x_train.shape[1:]), int(teacher.shape[1])

    def fresh_student():
        model = models.build(args.spec, input_shape, num_classes, seed=args.seed, framework="tf_keras")
        _load_weights_npz(model, args.weights)
        if not args.train_bn:
            _freeze_batch_norm(model)
        return model

    dense = fresh_student()
    if args.check_logits:
        expected = np.load(args.check_logits)
        got = dense.predict(x_test[:len(expected)], verbose=0, batch_size=256)
        diff = float(np.max(np.abs(got - expected)))
        if diff > 1e-3:
            raise SystemExit(f"the tf_keras rebuild of {args.spec!r} does not reproduce the Keras 3 student (max "
                             f"logit difference {diff:.3g}); the spec or input shape differs from the trained model's.")
        _log(f"tf_keras rebuild matches the Keras 3 student (max logit difference {diff:.2g})")
    dense_logits = dense.predict(x_test, verbose=0, batch_size=256)
    calibration = x_train
    rows = [_row("dense float32", _export(dense, out / "dense_float32.tflite", input_shape, "none", None, args),
                 dense_logits, x_test, y_test, args, sparsity=_sparsity(dense)),
            _row("dense int8 (PTQ)", _export(dense, out / "dense_int8_ptq.tflite", input_shape, "int8", calibration,
                                              args), dense_logits, x_test, y_test, args, sparsity=_sparsity(dense))]
    histories = {}
    steps_per_epoch = int(np.ceil(len(x_train) / args.batch_size))
    if "prune" in args.steps:
        total = steps_per_epoch * args.epochs
        schedule = tfmot.sparsity.keras.PolynomialDecay(initial_sparsity=0.0, final_sparsity=args.sparsity,
                                                        begin_step=0, end_step=max(1, int(0.7 * total)),
                                                        frequency=max(1, total // 20))
        pruned = tfmot.sparsity.keras.prune_low_magnitude(fresh_student(), pruning_schedule=schedule)
        histories["prune"] = _fine_tune(pruned, x_train, packed, args,
                                        callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
        stripped = tfmot.sparsity.keras.strip_pruning(pruned)
        sparsity = _sparsity(stripped)
        rows.append(_row(f"pruned {args.sparsity:.0%} float32", _export(
            stripped, out / "pruned_float32.tflite", input_shape, "none", None, args), dense_logits, x_test, y_test,
            args, sparsity=sparsity))
        rows.append(_row(f"pruned {args.sparsity:.0%} int8 (PTQ)", _export(
            stripped, out / "pruned_int8_ptq.tflite", input_shape, "int8", calibration, args), dense_logits, x_test,
            y_test, args, sparsity=sparsity))
    if "qat" in args.steps:
        qat = tfmot.quantization.keras.quantize_model(fresh_student())
        histories["qat"] = _fine_tune(qat, x_train, packed, args)
        rows.append(_row("QAT int8", _export(qat, out / "qat_int8.tflite", input_shape, "int8", calibration, args),
                         dense_logits, x_test, y_test, args, sparsity=0.0))

    by_name = {r["model"]: r for r in rows}
    summary = {"dense_float32_accuracy": by_name["dense float32"]["accuracy"],
               "ptq_int8_accuracy": by_name["dense int8 (PTQ)"]["accuracy"]}
    if "qat" in args.steps:
        summary["qat_int8_accuracy"] = by_name["QAT int8"]["accuracy"]
        summary["qat_minus_ptq_points"] = (summary["qat_int8_accuracy"] - summary["ptq_int8_accuracy"]) * 100
    if "prune" in args.steps:
        pruned_row = rows[2]
        summary.update({"target_sparsity": args.sparsity, "kernel_sparsity": pruned_row["sparsity"],
                        "pruned_float32_accuracy": pruned_row["accuracy"],
                        "dense_gzip_bytes": rows[0]["gzip_bytes"], "pruned_gzip_bytes": pruned_row["gzip_bytes"],
                        "pruned_gzip_ratio": pruned_row["gzip_bytes"] / rows[0]["gzip_bytes"],
                        "pruned_int8_gzip_ratio": rows[3]["gzip_bytes"] / rows[0]["gzip_bytes"]})
    settings = {"spec": args.spec, "epochs": args.epochs, "frozen_bn": not args.train_bn,
                "temperature": args.temperature, "alpha": args.alpha, "lr": args.lr,
                "batch_size": args.batch_size, "n_train": int(len(x_train)),
                "n_test": int(len(x_test)), "seed": args.seed, "tfmot": tfmot.__version__,
                "seconds": round(time.time() - start, 1),
                "keras3_imported": sys.modules.get("keras") is not None or "keras.src" in sys.modules}
    report = {"settings": settings, "rows": rows, "summary": summary, "histories": histories,
              "note": "pruned and QAT rows had their own distillation fine-tuning (epochs above) from the dense "
                      "student; dense rows are the student as given."}
    write_json(out / f"{REPORT}.json", report)
    write_text(out / f"{REPORT}.md", _markdown(rows, summary, settings))
    _log(f"done in {settings['seconds']} s: {out / (REPORT + '.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
