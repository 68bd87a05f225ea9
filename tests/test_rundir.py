"""The run directory is tfkd's own, and every input is checked before the first stage (issue 18, cases 1, 2, 5, 7, 9).

Nothing here trains a model: each case fails (or is refused) before the first stage, which is what it tests. The
cases that need a finished run (edited ``config.json``/``state.json``/cache, truncated checkpoints) are in
``test_reliability``, which has one.
"""

import dataclasses
import os
import signal
import subprocess
import sys
import typing

import numpy as np
import pytest

from tfkd import io as tfkd_io
from tfkd.recipes import config, runner

FAST = ["--teacher", "mlp:16", "--student", "mlp:8", "--teacher-epochs", "1", "--epochs", "1", "--no-export",
        "--no-function-matching"]


def _tree(root):
    """Every file and folder under ``root`` (dot-files and ``.git`` included) with its bytes."""
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


def _one_line(err):
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# ----------------------------------------------------------------------------------------------- 1: data loss
def test_a_folder_tfkd_did_not_make_is_refused_before_a_byte_changes(tmp_path, capsys):
    d = tmp_path / "d"
    (d / "sub" / ".git").mkdir(parents=True)
    (d / ".vimrc.tmp").write_text("k")
    (d / "sub" / ".git" / ".index.tmp123").write_text("k")
    (d / "config.json").write_text('{"mine":1}')
    before = _tree(d)
    assert runner.main(["compress", "--dataset", "nosuch", "--out", str(d)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert f"{d} already exists and is not a tfkd run directory (no .tfkd-run marker)" in line
    assert runner.main(["--resume", str(d)]) == 2
    assert "is not marked as a tfkd run directory" in _one_line(capsys.readouterr().err)
    assert _tree(d) == before


def test_stale_temp_clean_up_removes_only_names_tfkd_writes(tmp_path):
    run = tmp_path / "run"
    runner.claim(run, new=True).release()  # a new folder: made and marked by tfkd
    assert (run / runner.MARKER).is_file()
    mine = {".vimrc.tmp": "k", "sub/.git/.index.tmp123": "k", "notes.tmp": "k", ".x.abc.tmp.keras": "k"}
    for rel, text in mine.items():
        (run / rel).parent.mkdir(parents=True, exist_ok=True)
        (run / rel).write_text(text)
    # What a kill -9 leaves of tfkd's own atomic writes: a half-written file, a folder, a folder being replaced.
    with pytest.raises(RuntimeError):
        with tfkd_io.atomic_path(run / "models" / "teacher.keras") as tmp:
            tmp.write_text("half")
            stale = tmp.with_name(tmp.name.replace("teacher", "student"))
            os.link(tmp, stale)  # survives the clean-up of this (failed) write, like a killed process's file
            raise RuntimeError
    (run / "export" / ".m_saved_model.abcd1234.tfkd.tmp").mkdir(parents=True)
    (run / "export" / ".m_saved_model.tfkd.old").mkdir()
    runner.RunContext(run, "compress", config=None)
    assert not [p for p in run.rglob("*") if tfkd_io.is_temp_name(p.name)]
    for rel, text in mine.items():
        assert (run / rel).read_text() == text, rel


def test_out_that_is_a_file_is_refused_without_a_resume_hint(tmp_path, capsys):
    f = tmp_path / "f"
    f.write_text("x")
    assert runner.main(["compress", "--out", str(f)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert f"{f} is a file, not a directory" in line and "--resume" not in line
    assert f.read_text() == "x"
    empty = tmp_path / "empty"
    empty.mkdir()
    runner.claim(empty, new=True).release()  # an empty folder is taken and marked
    assert (empty / runner.MARKER).is_file()


# ------------------------------------------------------------------------------------------------- 2: lock
def test_a_held_run_directory_is_refused_with_the_holders_pid_and_kill_9_frees_it(tmp_path, capsys):
    run = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from tfkd.recipes import runner; runner.claim(sys.argv[1], "
         "new=True); print('held', flush=True); time.sleep(120)", str(run)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert runner.main(["compress", *FAST, "--out", str(run)]) == 2
        line = _one_line(capsys.readouterr().err)
        assert f"{run} is in use by another tfkd run (pid {holder.pid})" in line
        assert runner.main(["--resume", str(run)]) == 2
        assert f"(pid {holder.pid})" in capsys.readouterr().err
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    runner.claim(run, new=False).release()  # kill -9 left no stale lock


# ------------------------------------------------------------------------------- 5: every value checked first
def _float_fields():
    import importlib

    for recipe, module_name in runner.RECIPES.items():
        cls = importlib.import_module(module_name).Config
        for f in dataclasses.fields(cls):
            tp, is_list, _ = config._base_type(typing.get_type_hints(cls)[f.name])
            if tp is float:
                yield recipe, cls, f.name, is_list


@pytest.mark.parametrize("bad", ["nan", "inf", "-inf"])
def test_non_finite_floats_are_refused_for_every_field_of_every_recipe(tmp_path, bad):
    fields = list(_float_fields())
    assert len(fields) > 20
    for recipe, cls, name, is_list in fields:
        flag = "--" + name.replace("_", "-")
        with pytest.raises(ValueError, match=rf"config key '{name}'='{bad}' is not a finite number"):
            config.parse_config(cls, [f"{flag}={f'1,{bad}' if is_list else bad}"])
    yaml_file = tmp_path / "c.yaml"
    yaml_file.write_text("lr: .nan\n")
    with pytest.raises(ValueError, match="'lr'=nan is not a finite number"):
        config.parse_config(cls, ["--config", str(yaml_file)])


def test_whole_numbers_and_epoch_counts_name_their_value():
    from tfkd.recipes import compress

    with pytest.raises(ValueError, match=r"config key 'epochs'='2.5' is not a whole number; expected int"):
        config.parse_config(compress.Config, ["--epochs", "2.5"])
    with pytest.raises(ValueError, match=r"teacher_epochs=0 must be > 0"):
        config.parse_config(compress.Config, ["--teacher-epochs", "0"])


def _only_config(out):
    assert sorted(p.name for p in out.iterdir()) == [".tfkd-lock", ".tfkd-run", "config.json"]


def test_model_specs_files_and_splits_are_checked_before_the_first_stage(tmp_path, capsys):
    import keras

    out = tmp_path / "run"
    assert runner.main(["compress", *FAST, "--student", "foo:3", "--out", str(out)]) == 2
    assert "student='foo:3' is not a model spec or a .keras file" in _one_line(capsys.readouterr().err)
    _only_config(out)
    assert runner.main(["compress", *FAST, "--student", "plain_cnn:3", "--out", str(out)]) == 2
    assert "spec='plain_cnn:3'" in _one_line(capsys.readouterr().err)

    seven = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(7)])
    seven.save(tmp_path / "t7.keras")
    assert runner.main(["compress", *FAST, "--teacher", str(tmp_path / "t7.keras"), "--out", str(out)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "takes inputs (8, 8, 1) and gives 7 outputs, but the data have inputs (8, 8, 1) and 10 classes" in line
    assert "(dataset digits: inputs (8, 8, 1), 10 classes)" in line
    # a .keras student is checked the same way, before any stage
    assert runner.main(["compress", *FAST, "--student", str(tmp_path / "t7.keras"), "--out", str(out)]) == 2
    assert "student=" in (line := _one_line(capsys.readouterr().err)) and "gives 7 outputs" in line
    _only_config(out)
    assert runner.main(["compress", *FAST, "--student", "keras.applications:MobileNetV3Smal", "--out", str(out)]) == 2
    assert "did you mean 'MobileNetV3Small'" in _one_line(capsys.readouterr().err)
    assert runner.main(["compress", *FAST, "--student", "keras.applications:MobileNetV3Small", "--out", str(out)]) == 2
    assert "Input size must be at least 32x32" in _one_line(capsys.readouterr().err)
    _only_config(out)

    assert runner.main(["compress", *FAST, "--n-train", "3", "--out", str(out)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "n_train=3: no example is left to train on, since the validation split (val_fraction=0.1)" in line
    _only_config(out)


# ------------------------------------------------------------------------------- 7: one line, not a traceback
def test_bad_data_files_fail_in_one_line_before_training(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    out = tmp_path / "run"
    (data / "mnist.npz").write_bytes(b"")
    assert runner.main(["compress", *FAST, "--dataset", "mnist", "--data-dir", str(data), "--out", str(out)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert f"DataFormatError: {data / 'mnist.npz'}: not a readable numpy .npz archive" in line and "EOFError" in line
    np.savez(data / "mnist.npz", x_train=np.zeros((0, 28, 28), np.uint8), y_train=np.zeros(0, np.uint8),
             x_test=np.zeros((4, 28, 28), np.uint8), y_test=np.zeros(4, np.uint8))
    assert runner.main(["compress", *FAST, "--dataset", "mnist", "--data-dir", str(data), "--out", str(out)]) == 2
    assert "the training split is empty" in _one_line(capsys.readouterr().err)
    y = np.arange(40) % 4 - 1  # labels -1..2
    np.savez(data / "mine.npz", x_train=np.zeros((40, 8, 8), np.uint8), y_train=y.astype("int64"),
             x_test=np.zeros((8, 8, 8), np.uint8), y_test=np.zeros(8, np.int64))
    assert runner.main(["compress", *FAST, "--dataset", "mine", "--data-dir", str(data), "--out", str(out)]) == 2
    assert "y_train holds the label -1; class ids must be 0, 1, 2, ..." in _one_line(capsys.readouterr().err)
    _only_config(out)


def test_malformed_or_code_carrying_yaml_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("epochs: [3\nalpha: 0.5\n")
    assert runner.main(["compress", "--config", str(bad), "--out", str(tmp_path / "r")]) == 2
    assert f"--config {bad}: not valid YAML" in _one_line(capsys.readouterr().err)
    bad.write_text("dataset: !!python/object/apply:os.system ['echo pwned']\n")
    assert runner.main(["compress", "--config", str(bad), "--out", str(tmp_path / "r")]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "could not determine a constructor" in line and "tags that build Python objects are refused" in line
    assert not (tmp_path / "r").exists()


def test_ctrl_c_prints_one_line_with_the_resume_command(tmp_path, capsys, monkeypatch):
    from tfkd.recipes import compress

    def interrupted(cfg, ctx):
        raise KeyboardInterrupt

    monkeypatch.setattr(compress, "run", interrupted)
    out = tmp_path / "run"
    assert runner.main(["compress", *FAST, "--out", str(out)]) == 130
    err = capsys.readouterr().err
    assert _one_line(err) == f"tfkd run compress: interrupted; finished stages and epoch checkpoints are kept: " \
                             f"tfkd run --resume {out}"
    runner.claim(out, new=False).release()  # the lock went with the interrupted run


def test_export_refuses_a_file_out_a_path_name_and_explains_unsafe_for_lambda(tmp_path, capsys):
    import keras

    from tfkd.export import cli

    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                              keras.layers.Lambda(lambda t: t * 2.0), keras.layers.Dense(10)])
    model.save(tmp_path / "lam.keras")
    f = tmp_path / "file"
    f.write_text("x")
    base = [str(tmp_path / "lam.keras"), "--data", "digits"]
    assert cli.main([*base, "--out", str(f)]) == 2
    assert f"--out {str(f)!r} is a file, not a folder" in _one_line(capsys.readouterr().err)
    assert cli.main([*base, "--out", str(f / "sub")]) == 2
    assert "is a file, so no folder can be made under it" in _one_line(capsys.readouterr().err)
    assert cli.main([*base, "--out", str(tmp_path / "o"), "--name", "../../x"]) == 2
    assert "--name '../../x' must be a plain file name stem" in _one_line(capsys.readouterr().err)
    assert not (tmp_path / "o").exists() and f.read_text() == "x"
    assert cli.main([*base, "--out", str(tmp_path / "o")]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "refused in safe mode" in line and "add --unsafe" in line and "safe_mode=False" not in line
