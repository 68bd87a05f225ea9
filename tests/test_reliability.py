"""Reliability: bad input fails with its exact error and corrupts nothing; faults (SIGKILL, full disk, NaN) resume.

What other files already show is not repeated here: class-count mismatch, probability teachers, labels out of range
and NaN teacher logits (test_distiller), npz layout errors of the loader (test_data), unreadable files given to
``tfkd export`` and unsupported ops (test_export), config parsing (test_recipe_config), Lambda archives
(test_security) and one kill -9 of a long stage (test_recipe_compress). This file drives the same inputs through
``tfkd.training.fit`` and ``tfkd run``, checks that what was written before stays intact, and kills a small
multi-stage run at random points: every resume must end with the very same artifacts as an uninterrupted run.
"""

import errno
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
from run_artifacts import artifacts, assert_same, h5_arrays

from tfkd import io as tfkd_io
from tfkd import training
from tfkd.distiller import NonFiniteLossError
from tfkd.recipes import runner

# A five-stage run (teacher, cached logits, three student arms) on the 8x8 digits bundled with scikit-learn.
SMALL = ["compress", "--teacher", "mlp:32", "--student", "mlp:16", "--teacher-epochs", "3", "--epochs", "3",
         "--no-export", "--no-function-matching"]
STAGES = {"teacher": ["models/teacher.keras"], "teacher_logits": ["cache/teacher_logits_fit.npz"],
          "nokd/seed0": ["models/nokd_seed0.keras"], "kd/seed0": ["models/kd_seed0.keras"],
          "kd_decay/seed0": ["models/kd_decay_seed0.keras"]}


def _cli(args, **kw):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    return subprocess.Popen([sys.executable, "-m", "tfkd.recipes.runner", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env, **kw)


def _temp_files(run: Path):
    return [p for p in run.rglob("*") if tfkd_io.is_temp_name(p.name) or p.name.endswith(".tmp.npz")]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run every faulted run is compared with."""
    out = tmp_path_factory.mktemp("reliability") / "reference"
    proc = _cli([*SMALL, "--out", str(out)])
    stdout, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, stdout[-3000:]
    return out, artifacts(out)


def _mlp(seed, width=8, out=3):
    init = keras.initializers.GlorotUniform
    return keras.Sequential([keras.Input((6,)), keras.layers.Dense(width, "relu", kernel_initializer=init(seed)),
                             keras.layers.Dense(out, kernel_initializer=init(seed + 1))])


def _xy(n=96, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype("float32")
    return x, np.abs(x[:, :3]).argmax(-1).astype("int32")


def _train(kind, x, y, epochs, ckpt, model=None):
    """Train a plain model on labels, or distil into one, through tfkd.training with epoch checkpoints."""
    model = model or _mlp(3)
    if kind == "plain":
        training.train_supervised(model, x, y, epochs=epochs, batch_size=32, checkpoint_dir=ckpt)
    else:
        training.train_distilled(_mlp(1, 16), model, x, y, epochs=epochs, batch_size=32, checkpoint_dir=ckpt)
    return model


def _snapshot(directory: Path):
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


# ------------------------------------------------------------------------------------------------ training.fit
def test_empty_data_is_refused_and_no_epoch_is_checkpointed(tmp_path):
    import tensorflow as tf

    x, y = _xy()
    ckpt = tmp_path / "ckpt"
    student = _train("distil", x, y, 1, ckpt)
    before = _snapshot(ckpt)
    with pytest.raises(ValueError, match=r"x has 0 examples; there is nothing to train on"):
        _train("distil", x[:0], y[:0], 2, ckpt, model=student)
    empty = tf.data.Dataset.from_tensor_slices((x, y)).filter(lambda a, b: False).batch(8)  # size unknown upfront
    model = _mlp(3)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    with pytest.raises(ValueError, match=r"epoch 1 ran no training batch: the dataset is empty \(or exhausted\)"):
        training.fit(model, empty, epochs=2, checkpoint_dir=tmp_path / "ckpt2")
    assert _snapshot(ckpt) == before and not (tmp_path / "ckpt2" / "state.json").exists()


# Where a NaN input meets a ReLU, whether relu(NaN) is NaN or 0 depends on the CPU's vector max instruction: the
# NaN then reaches the loss (the Distiller's in-step guard aborts that step before its update) or only the weights
# (the end-of-epoch weight check restores the last checkpoint). Either way training stops and nothing good is lost.
_WEIGHT_CHECK = "the weights became NaN or infinite in epoch 3; training stopped"
_STEP_GUARD = "became NaN or infinite at optimizer step"


@pytest.mark.parametrize("kind, bad, expected", [
    ("plain", np.nan, (_WEIGHT_CHECK,)),
    ("distil", np.nan, (_WEIGHT_CHECK, _STEP_GUARD)),
    ("plain", np.inf, (_WEIGHT_CHECK,)),
    # An inf reaches the logits: the Distiller's in-step guard aborts that step before its update.
    ("distil", np.inf, (_STEP_GUARD,)),
])
def test_nan_or_inf_inputs_stop_training_and_keep_the_last_good_checkpoint(tmp_path, kind, bad, expected):
    x, y = _xy()
    ckpt = tmp_path / "ckpt"
    model = _train(kind, x, y, 2, ckpt)
    before, good = _snapshot(ckpt), [w.copy() for w in model.get_weights()]
    x_bad = x.copy()
    x_bad[:, 2] = bad  # one feature of every example of epoch 3
    with pytest.raises(NonFiniteLossError) as err:
        _train(kind, x_bad, y, 4, ckpt, model=model)
    message = str(err.value)
    assert any(e in message for e in expected), message
    assert all(np.isfinite(w).all() for w in model.get_weights())
    if _WEIGHT_CHECK in message:
        assert f"restored to the last good checkpoint (epoch 2) in {ckpt}" in message
        for a, b in zip(model.get_weights(), good):
            np.testing.assert_array_equal(a, b)
    else:
        assert "that step's update was not applied, so the student keeps its last good weights" in message
    assert _snapshot(ckpt) == before  # nothing already written changed
    state = tfkd_io.read_json(ckpt / "state.json")
    assert state["epochs_done"] == 2 and all(np.isfinite(state["history"]["loss"]))
    # The data fixed, the same call resumes at epoch 3 from that checkpoint and finishes.
    _train(kind, x, y, 4, ckpt, model=model)
    assert tfkd_io.read_json(ckpt / "state.json")["epochs_done"] == 4


def test_weights_poisoned_before_the_loss_shows_it_are_replaced_by_the_checkpoint(tmp_path):
    # A NaN gradient behind a finite loss lands in the weights; the Distiller's step guard fires only a step later,
    # when the loss turns NaN, and by then its "last good weights" are not good: tfkd.training restores epoch 2.
    x, y = _xy()
    ckpt = tmp_path / "ckpt"
    student = _train("distil", x, y, 2, ckpt)
    good = [w.copy() for w in student.get_weights()]

    class NanGradientLanded(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            if batch == 1:  # the first step of epoch 3 went through; say its update was NaN
                kernel = student.layers[-1].kernel
                kernel.assign(np.full(kernel.shape, np.nan, "float32"))

    with pytest.raises(NonFiniteLossError, match=r"The weights had already become NaN or infinite \(a NaN gradient "
                                                 r"behind a finite loss\), so the last good checkpoint \(epoch 2\)"):
        training.train_distilled(_mlp(1, 16), student, x, y, epochs=4, batch_size=32, checkpoint_dir=ckpt,
                                 callbacks=[NanGradientLanded()])
    for a, b in zip(student.get_weights(), good):
        np.testing.assert_array_equal(a, b)


def test_wrong_input_shape_is_named_and_the_checkpoint_is_untouched(tmp_path):
    x, y = _xy()
    ckpt = tmp_path / "ckpt"
    student = _train("distil", x, y, 1, ckpt)
    before = _snapshot(ckpt)
    wide = np.concatenate([x, x[:, :1]], axis=1)
    with pytest.raises(ValueError, match=r"expected axis -1 of input shape to have value 6, but received input "
                                         r"with shape \((None|32), 7\)"):
        _train("distil", wide, y, 2, ckpt, model=student)
    assert _snapshot(ckpt) == before


# ------------------------------------------------------------------------------------------- disk full
def _disk_full(path):
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))


def test_disk_full_while_writing_keeps_the_previous_file_whole(tmp_path, monkeypatch):
    state = tmp_path / "json" / "state.json"
    tfkd_io.write_json(state, {"stages": {"teacher": {"status": "done"}}})

    def no_space(fd):
        raise _disk_full(state)

    monkeypatch.setattr(tfkd_io.os, "fsync", no_space)
    with pytest.raises(OSError, match="No space left on device"):
        tfkd_io.write_json(state, {"stages": {}})
    monkeypatch.undo()
    assert json.loads(state.read_text()) == {"stages": {"teacher": {"status": "done"}}}

    ctx = runner.RunContext(tmp_path / "run", "compress", config=None)
    model = _mlp(3)
    ctx.save_model(model, "student")
    before = (tmp_path / "run" / "models" / "student.keras").read_bytes()

    def half_then_full(self, filepath, *args, **kwargs):
        Path(filepath).write_bytes(before[: len(before) // 2])
        raise _disk_full(filepath)

    monkeypatch.setattr(keras.Model, "save", half_then_full)
    with pytest.raises(OSError, match="No space left on device"):
        ctx.save_model(_mlp(4), "student")
    monkeypatch.undo()
    assert (tmp_path / "run" / "models" / "student.keras").read_bytes() == before
    assert not _temp_files(tmp_path / "run")
    ctx._models.clear()
    np.testing.assert_array_equal(ctx.load_model("student").get_weights()[0], model.get_weights()[0])


def test_disk_full_mid_run_exits_1_then_resume_ends_like_an_uninterrupted_run(reference, tmp_path, monkeypatch,
                                                                             capsys):
    out = tmp_path / "run"
    real_save_weights = keras.Model.save_weights
    calls = []

    def full_on_the_eighth(self, filepath, *args, **kwargs):  # 3 teacher + 3 nokd epochs, then kd epoch 2
        calls.append(filepath)
        if len(calls) == 8:
            Path(filepath).write_bytes(b"\0" * 64)
            raise _disk_full(filepath)
        return real_save_weights(self, filepath, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "save_weights", full_on_the_eighth)
    assert runner.main([*SMALL, "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "OSError: [Errno 28] No space left on device" in err and f"tfkd run --resume {out}" in err
    monkeypatch.undo()
    assert list(json.loads((out / "state.json").read_text())["stages"]) == ["teacher", "teacher_logits",
                                                                            "nokd/seed0"]
    assert json.loads((out / "checkpoints" / "kd_seed0" / "state.json").read_text())["epochs_done"] == 1
    assert not _temp_files(out)
    assert runner.main(["--resume", str(out)]) == 0
    assert_same(artifacts(out), reference[1])


# ------------------------------------------------------------------------------------------- tfkd run input
def test_wrong_npz_layout_fails_before_training_with_the_file_and_keys(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    np.savez(data / "mnist.npz", images=np.zeros((4, 28, 28), np.uint8), labels=np.zeros(4, np.uint8))
    out = tmp_path / "run"
    assert runner.main(["compress", "--dataset", "mnist", "--data-dir", str(data), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"tfkd run compress: DataFormatError: {data / 'mnist.npz'}: missing keys" in err
    assert "found keys ['images', 'labels']" in err
    # nothing trained, nothing half-written: the config, the marker and the lock file only
    assert sorted(p.name for p in out.iterdir()) == [".tfkd-lock", ".tfkd-run", "config.json"]


def test_damaged_keras_files_are_named_and_the_run_keeps_its_state(reference, tmp_path, capsys):
    whole = reference[0] / "models" / "nokd_seed0.keras"
    truncated = tmp_path / "teacher.keras"
    truncated.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    out = tmp_path / "run"
    assert runner.main([*SMALL, "--teacher", str(truncated), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"model={str(truncated)!r} ({truncated.stat().st_size:,} bytes) is not a readable .keras archive: the " \
           "file is truncated or corrupted" in err
    assert not (out / "state.json").exists() and not (out / "models").exists()

    # A finished run whose saved teacher was damaged afterwards: --resume names the file and changes nothing.
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(reference[0], run)
    teacher = run / "models" / "teacher.keras"
    teacher.write_bytes(teacher.read_bytes()[:1000])
    state = (run / "state.json").read_bytes()
    assert runner.main(["--resume", str(run)]) == 2
    assert "is not a readable .keras archive: the file is truncated or corrupted" in capsys.readouterr().err
    assert (run / "state.json").read_bytes() == state


def test_config_errors_exit_2_and_write_nothing(reference, tmp_path, capsys):
    out = tmp_path / "run"
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("epochs: 3\ntemprature: 4\n")
    assert runner.main(["compress", "--config", str(bad_yaml), "--out", str(out)]) == 2
    assert "tfkd run compress: unknown config key(s) ['temprature'] for compress; valid keys:" in \
        capsys.readouterr().err
    bad_json = tmp_path / "bad.json"
    bad_json.write_text(json.dumps({"epochs": "three", "seeds": 1}))
    assert runner.main(["compress", "--config", str(bad_json), "--out", str(out)]) == 2
    assert "config key 'epochs'='three' has type str; expected int." in capsys.readouterr().err
    assert runner.main(["compress", "--batch-size", "sixty-four", "--out", str(out)]) == 2
    assert "config key 'batch_size'='sixty-four' has type str; expected int." in capsys.readouterr().err
    assert not out.exists()

    # A run directory whose config.json was edited by hand (a typo, then broken JSON): --resume refuses it.
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(reference[0], run)
    saved = json.loads((run / "config.json").read_text())
    saved["config"]["epocs"] = 5
    (run / "config.json").write_text(json.dumps(saved))
    state = (run / "state.json").read_bytes()
    assert runner.main(["--resume", str(run)]) == 2
    assert f"{run / 'config.json'} is not a valid tfkd run config (ValueError: unknown config key(s) ['epocs']" in \
        capsys.readouterr().err
    (run / "config.json").write_text('{"recipe": "compress", "config": {')
    assert runner.main(["--resume", str(run)]) == 2
    assert "is not a valid tfkd run config (JSONDecodeError" in capsys.readouterr().err
    assert (run / "state.json").read_bytes() == state


# ------------------------------------------------------------------------------------------- SIGKILL
def _milestones():
    """Points of the run to kill at: the directory just made, the logits cache written, each epoch checkpoint."""
    points = [("config.json", 0), ("cache/teacher_logits_fit.npz", 0)]
    for stage in ("teacher", "nokd_seed0", "kd_seed0", "kd_decay_seed0"):
        points += [(f"checkpoints/{stage}/state.json", epoch) for epoch in (1, 2, 3)]
    return points[:-2]  # not the last stage's last epochs: the run could end before the kill lands


def _reached(out, path, epochs):
    try:
        return (out / path).exists() if not epochs else \
            json.loads((out / path).read_text())["epochs_done"] >= epochs
    except (OSError, ValueError, KeyError):
        return False


def _check_consistent(out):
    """What a killed run left: valid JSON, and every stage recorded as done has its artifacts, readable."""
    if (out / "state.json").exists():
        for stage in json.loads((out / "state.json").read_text())["stages"]:
            for rel in STAGES[stage]:
                assert (out / rel).exists(), (stage, rel)
    for ckpt in (out / "checkpoints").glob("*/state.json"):
        json.loads(ckpt.read_text())
        assert h5_arrays(ckpt.with_name("last.weights.h5"))


def test_sigkill_at_random_points_always_resumes_to_the_same_artifacts(reference, tmp_path):
    seed = int(os.environ.get("TFKD_FAULT_SEED", "0"))  # set it to explore other points
    rng = random.Random(seed)
    points = rng.sample(_milestones(), 3)
    for i, (path, epochs) in enumerate(points):
        where = f"seed {seed}, kill #{i} after {path} epochs_done>={epochs}"
        out = tmp_path / f"run{i}"
        proc = _cli([*SMALL, "--out", str(out)], start_new_session=True)
        deadline = time.time() + 240
        while proc.poll() is None and time.time() < deadline and not _reached(out, path, epochs):
            time.sleep(0.005)
        time.sleep(rng.uniform(0.0, 0.15))
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        assert proc.returncode == -signal.SIGKILL, where  # it was killed, it did not finish
        _check_consistent(out)
        proc = _cli(["--resume", str(out)])
        stdout, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, (where, stdout[-3000:])
        assert not _temp_files(out), where
        assert_same(artifacts(out), reference[1], where)


# ------------------------------------------------------------------------------- resume is bound to its config
def _copy(reference, tmp_path):
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(reference[0], run)
    return run


def _models(run):
    return {p.name: p.read_bytes() for p in sorted((run / "models").iterdir())}


def test_resume_refuses_added_flags_and_a_config_edited_after_stages_ran(reference, tmp_path, capsys):
    run = _copy(reference, tmp_path)
    state, models = (run / "state.json").read_bytes(), _models(run)
    assert runner.main(["--resume", str(run), "--epochs", "10"]) == 2
    assert "--epochs 10 cannot be given with --resume: a resumed run keeps the config it started with" in \
        capsys.readouterr().err
    assert runner.main(["compress", "--resume", str(run), "--temperature", "8"]) == 2
    assert "--temperature 8 cannot be given with --resume" in capsys.readouterr().err
    saved = json.loads((run / "config.json").read_text())
    saved["config"]["epochs"] = 5
    (run / "config.json").write_text(json.dumps(saved))
    assert runner.main(["--resume", str(run)]) == 2
    assert "config.json was edited after the run started" in capsys.readouterr().err
    del saved["config_sha256"]  # the file's own hash removed too: the finished stages still know their config
    (run / "config.json").write_text(json.dumps(saved))
    assert runner.main(["--resume", str(run)]) == 2
    assert "the config changed since this run's finished stages ran (epochs: 3 -> 5)" in capsys.readouterr().err
    assert (run / "state.json").read_bytes() == state and _models(run) == models


def test_resume_refuses_a_state_json_edited_or_missing_a_result(reference, tmp_path, capsys):
    run = _copy(reference, tmp_path)
    state = json.loads((run / "state.json").read_text())
    state["stages"]["nokd/seed0"]["result"]["accuracy"] = 0.2
    (run / "state.json").write_text(json.dumps(state))
    assert runner.main(["--resume", str(run)]) == 2
    assert "stage 'nokd/seed0' was changed after it finished (its result no longer matches its digest)" in \
        capsys.readouterr().err
    del state["stages"]["nokd/seed0"]["result"]
    (run / "state.json").write_text(json.dumps(state))
    assert runner.main(["--resume", str(run)]) == 2
    err = capsys.readouterr().err
    assert "stage 'nokd/seed0' has no result" in err and "Traceback" not in err


def test_a_logits_cache_reordered_or_truncated_is_refused_by_name(reference, tmp_path, capsys):
    run = _copy(reference, tmp_path)
    cache = run / "cache" / "teacher_logits_fit.npz"
    whole = cache.read_bytes()
    with np.load(cache) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["logits"] = arrays["logits"][::-1].copy()  # rows shuffled, both fingerprints kept
    np.savez(cache, **arrays)
    assert runner.main(["--resume", str(run)]) == 2
    assert f"teacher logits cache {cache}: its logits (hash " in capsys.readouterr().err
    cache.write_bytes(whole[: len(whole) // 2])
    assert runner.main(["--resume", str(run)]) == 2
    err = capsys.readouterr().err
    assert f"teacher logits cache {cache} is not readable (BadZipFile" in err and "Traceback" not in err


def test_a_truncated_epoch_checkpoint_is_named(reference, tmp_path, capsys):
    run = _copy(reference, tmp_path)
    state = json.loads((run / "state.json").read_text())
    del state["stages"]["kd_decay/seed0"]  # that stage is redone from its checkpoint...
    (run / "state.json").write_text(json.dumps(state))
    weights = run / "checkpoints" / "kd_decay_seed0" / "last.weights.h5"
    weights.write_bytes(weights.read_bytes()[:300])  # ...which is damaged
    assert runner.main(["--resume", str(run)]) == 2
    err = capsys.readouterr().err
    assert f"checkpoint {weights} (300 bytes) could not be loaded" in err
    assert f"delete the folder {weights.parent} to redo this training stage" in err


def test_a_real_full_disk_ends_in_one_line_and_resumes_like_an_uninterrupted_run(reference, tmp_path):
    # h5py used to crash the process (exit 139, hundreds of HDF5 error lines) once a checkpoint write hit ENOSPC;
    # a free-space check before every HDF5 write now ends the run cleanly. Needs a real small file system.
    mount = tmp_path / "small"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(mount)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({made.stderr.decode().strip() or 'not permitted'})")
    try:
        out = mount / "run"
        proc = _cli([*SMALL, "--out", str(out)])
        stdout, _ = proc.communicate(timeout=300)
        assert proc.returncode == 1, stdout[-3000:]
        errors = [line for line in stdout.splitlines() if "Error" in line or "HDF5" in line]
        assert len(errors) == 1 and "OSError: [Errno 28] No space left on device" in errors[0], stdout[-3000:]
        assert f"finished stages are kept: tfkd run --resume {out}" in errors[0]
        subprocess.run(["mount", "-o", "remount,size=16m", str(mount)], check=True)
        proc = _cli(["--resume", str(out)])
        stdout, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, stdout[-3000:]
        assert_same(artifacts(out), reference[1])
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)
