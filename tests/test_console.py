"""The ``tfkd`` command's console: progress bars, quiet TensorFlow, one line a stage in a log, help defaults once."""

import io
import json
import os
import re
import subprocess
import sys

import pytest

from tfkd import cli, console
from tfkd.progress import StageProgress, clock


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def _drive(bar, epochs, values, first=0, steps=4):
    """Call the hooks Keras calls for a fit of ``epochs`` starting at ``first``, logging ``values[i]`` at epoch i."""
    bar.set_params({"epochs": epochs, "steps": steps})
    bar.on_train_begin()
    for epoch in range(first, epochs):
        bar.on_epoch_begin(epoch)
        for step in range(steps):
            bar.on_train_batch_end(step)
        bar.on_epoch_end(epoch, {"loss": 1.0 / (epoch + 1), "val_accuracy": values[epoch]})
    bar.on_train_end()


def test_progress_writes_one_summary_line_when_not_on_a_terminal():
    stream = io.StringIO()
    _drive(StageProgress("nokd_seed0", stream=stream), 4, [0.5, 0.9, 0.8, 0.85])
    text = stream.getvalue()
    assert text.count("\n") == 1 and "\r" not in text
    assert re.fullmatch(r"  nokd_seed0: 4 epochs in \d\d:\d\d, val_accuracy 0\.8500 \(best 0\.9000 at epoch 2\)\n",
                        text), text


def test_progress_redraws_in_place_on_a_terminal():
    stream = _Terminal()
    _drive(StageProgress("kd_seed0", stream=stream, min_interval=0.0), 3, [0.5, 0.6, 0.7])
    text = stream.getvalue()
    assert text.count("\n") == 1 and text.endswith("\n") and text.count("\r") >= 3 * 4
    last = text.rstrip("\n").split("\r")[-1]
    assert "kd_seed0 [####################] 3/3 epochs  val_accuracy 0.7000" in last and "elapsed" in last
    assert "left" in text.split("\r")[-3] or "left" in text  # remaining time shown while epochs remain


def test_progress_after_a_resume_counts_this_sessions_epochs_and_can_hand_its_line_over():
    lines = []
    bar = StageProgress("fm_seed0", metric="val_loss", stream=io.StringIO(), on_summary=lines.append)
    bar.set_params({"epochs": 5, "steps": 2})
    bar.on_train_begin()
    for epoch, loss in zip(range(3, 5), (0.4, 0.5)):
        bar.on_epoch_begin(epoch)
        bar.on_epoch_end(epoch, {"val_loss": loss})
    bar.on_train_end()
    assert bar.stream.getvalue() == ""  # handed to on_summary instead
    assert lines == [lines[0]] and "epochs 4-5 (resumed)" in lines[0]
    assert "val_loss 0.5000 (best 0.4000 at epoch 4)" in lines[0]  # a loss is best when lowest
    assert clock(75) == "01:15" and clock(3725) == "1:02:05"


def test_training_fit_leaves_its_per_epoch_line_to_a_progress_bar(capsys):
    import keras
    import numpy as np

    from tfkd import training

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = np.random.default_rng(0).random((16, 3), dtype=np.float32), np.arange(16) % 2
    training.fit(model, x, y, epochs=2, batch_size=8, label="m")
    assert capsys.readouterr().out.count("epoch ") == 2  # the old line a epoch, without a bar
    stream = io.StringIO()
    training.fit(model, x, y, epochs=2, batch_size=8, label="m", callbacks=[StageProgress("m", 2, stream=stream)])
    assert "epoch " not in capsys.readouterr().out and stream.getvalue().startswith("  m: 2 epochs in ")


def test_cli_quiets_tensorflow_unless_verbose(monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(console, "quiet", lambda: calls.append(True))
    assert cli.main(["run", "--help"]) == 0 and calls == [True]
    assert cli.main(["run", "--help", "--verbose"]) == 0 and calls == [True]
    assert "compress" in capsys.readouterr().out


def test_quiet_import_drops_what_native_code_writes_to_stderr_and_keeps_the_real_loader(tmp_path, monkeypatch,
                                                                                       capfd):
    (tmp_path / "noisy_native.py").write_text("import os\nos.write(2, b'I0000 banner\\n')\nVALUE = 1\n")
    (tmp_path / "broken_native.py").write_text("import os\nos.write(2, b'why it broke\\n')\nraise ImportError('x')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("noisy_native", "broken_native"):
        monkeypatch.delitem(sys.modules, name, raising=False)
        monkeypatch.setattr(sys, "meta_path", [console._SilentImport(name), *sys.meta_path])
    import noisy_native

    assert noisy_native.VALUE == 1 and "banner" not in capfd.readouterr().err
    assert type(noisy_native.__spec__.loader).__name__ == "SourceFileLoader"
    with pytest.raises(ImportError):
        import broken_native  # noqa: F401
    assert "why it broke" in capfd.readouterr().err  # a failed import shows what it wrote


def test_help_shows_each_default_once():
    import importlib

    from tfkd.recipes import config, runner

    for name, module_name in runner.RECIPES.items():
        module = importlib.import_module(module_name)
        text = " ".join(config.build_parser(module.Config, f"tfkd run {name}", "").format_help().split())
        assert not re.search(r"\(default: [^()]*\)\s*\(default:", text), name
        assert "(default: None) (default" not in text and "(default: $TFKD_DATA_DIR)" in text
    text = " ".join(config.build_parser(importlib.import_module("tfkd.recipes.compress").Config, "x", "")
                    .format_help().split())
    assert "(default: kd,kd_decay,dkd,dist)" in text and "(default: 1,2,4,8)" in text


# Stage lines of the run below: teacher, teacher_logits, nokd, kd, nokd_long, fm, export.
_TINY = ["compress", "--n-train", "300", "--n-test", "100", "--teacher", "plain_cnn:2", "--teacher-epochs", "1",
         "--epochs", "1", "--fm-epochs", "2", "--methods", "kd"]
_NOISE = ("absl::InitializeLog", "cuInit", "cuda", "cpu_feature_guard", "oneDNN", "retracing", "XNNPACK",
          "fully_quantize", "I0000", "W0000", "E0000")


def test_tfkd_run_in_a_log_is_short_and_free_of_tensorflow_noise(tmp_path, data_dir):
    out = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # what a user's shell has
    proc = subprocess.run([sys.executable, "-m", "tfkd.cli", "run", *_TINY, "--data-dir", str(data_dir), "--out",
                           str(out)], capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert len(lines) <= 40, proc.stdout
    noise = [line for line in proc.stderr.splitlines() if any(n in line for n in _NOISE)]
    assert not noise, proc.stderr
    stage_lines = [line for line in lines if line.startswith("[")]
    assert len(stage_lines) == 8 and all(": finished in " in line for line in stage_lines), stage_lines
    assert "] fm_views: finished in " in stage_lines[2]  # the teacher's one pass over the replayed views
    assert "| nokd_seed0: 1 epochs in " in stage_lines[3] and "val_accuracy" in stage_lines[3]
    assert "epoch 1/" not in proc.stdout and "Also in report.md:" in proc.stdout
    report = json.loads((out / "report.json").read_text())
    # Label metrics on mixed (mixup) images are renamed, and the report says why.
    fm = report["results"]["arms"]["fm"][0]
    assert "mixed_view_accuracy" in fm["history"] and "accuracy" not in fm["history"]
    assert "val_accuracy" in fm["history"] and fm["notes"]
    assert "mixed_view_accuracy" in (out / "logs" / "fm_seed0" / "history.csv").read_text().splitlines()[0]
    assert any("mixed (mixup) images" in line for line in report["summary"])
    # The export is chosen on validation, NoKD included, and the report's first line says which and why.
    val = report["results"]["val_accuracy"]
    assert report["results"]["export_arm"] == max(val, key=val.get)
    assert report["summary"][0].startswith(("Exported student:", "WARNING: the exported distilled student"))
    for name in ("curves_val_accuracy.png", "curves_loss.png", "comparison.png"):
        assert (out / "plots" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
