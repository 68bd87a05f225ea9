"""``tfkd run compress`` end to end on a small real-data budget, and kill -9 + --resume."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from run_artifacts import artifacts, assert_same

from tfkd.recipes import compress, runner
from tfkd.recipes.config import from_dict

SMALL = ["--dataset", "mnist", "--n-train", "1500", "--n-test", "500", "--teacher", "plain_cnn:2",
         "--student", "mlp:32", "--teacher-epochs", "3", "--epochs", "3", "--fm-epochs", "3", "--batch-size", "64",
         "--methods", "kd,kd_decay"]


def _run(args, env_extra=None, **kw):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", **(env_extra or {}))
    return subprocess.Popen([sys.executable, "-m", "tfkd.recipes.runner", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env, **kw)


@pytest.fixture(scope="module")
def compress_run(tmp_path_factory, data_dir):
    out = tmp_path_factory.mktemp("compress") / "run"
    proc = _run(["compress", *SMALL, "--data-dir", str(data_dir), "--out", str(out)])
    stdout, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, stdout[-4000:]
    return out, stdout


def test_compress_writes_every_artifact_and_an_honest_report(compress_run):
    out, stdout = compress_run
    for rel in ("config.json", "state.json", "report.json", "report.md", "models/teacher.keras",
                "models/nokd_seed0.keras", "models/kd_seed0.keras", "models/kd_decay_seed0.keras",
                "plots/curves_val_accuracy.png", "plots/comparison.png", "logs/kd_seed0/history.csv"):
        assert (out / rel).exists(), rel
    assert list((out / "logs" / "kd_seed0" / "tensorboard").rglob("events.out.tfevents*"))
    assert list((out / "export").glob("*_int8.tflite")) and list((out / "export").glob("*_none.tflite"))
    report = json.loads((out / "report.json").read_text())
    arms = report["results"]["arms"]
    assert set(arms) == {"nokd", "kd", "kd_decay", "nokd_long", "fm"}
    for arm in arms.values():
        assert 0.5 < arm[0]["accuracy"] <= 1.0
        assert len(arm[0]["history"]["loss"]) == 3
    assert report["results"]["teacher"]["accuracy"] > 0.7  # measured 0.776 at this tiny budget
    # The KD arms trained on the teacher: their agreement with it is measured and high; the decay arm's alpha
    # actually fell to 0 by the last epoch.
    assert arms["kd"][0]["agreement"] > 0.8
    assert arms["kd_decay"][0]["history"]["alpha"][-1] == 0.0
    assert "alpha" not in arms["kd"][0]["history"]  # constant alpha: no schedule ran
    # Honest summary: each KD arm is said to beat, tie or lose to NoKD with the measured difference.
    md = (out / "report.md").read_text()
    # function matching trains on replayed views: the teacher ran once over its 3 view epochs, before any arm
    assert arms["fm"][0]["taught_by"].startswith("replayed views ")
    work = report["results"]["teacher_work"]
    n_fit = 1348  # 1500 minus the stratified 10 % validation split
    assert work["teacher_views"] == 3 * n_fit and work["live_teacher_views"] == work["teacher_views"]
    assert "mixed_view_accuracy" in arms["fm"][0]["history"]  # mixup: clean-image names only for validation
    for arm, base in (("kd", "nokd"), ("kd_decay", "nokd"), ("fm", "nokd_long")):
        delta = (arm_acc := arms[arm][0]["accuracy"]) - arms[base][0]["accuracy"]
        word = "beat label-only" if delta > 0 else ("tied label-only" if delta == 0 else "LOST to label-only")
        assert word in md, (arm, arm_acc)
    # The verdict: the distilled arm best on validation (never on test), against its same-budget labels-only arm.
    verdict = report["verdict"]
    val = {arm: rs[0]["history"]["val_accuracy"][-1] for arm, rs in arms.items()}
    best = max(["kd", "kd_decay", "fm"], key=val.get)
    base = "nokd_long" if best == "fm" else "nokd"
    delta = (arms[best][0]["accuracy"] - arms[base][0]["accuracy"]) * 100
    assert verdict["arm"] == best and verdict["chosen_on"] == "validation"
    assert verdict["arm"] == compress._export_choice(compress.Config(export_arm="best_distilled"), arms)
    assert verdict["method"] == compress._labels(compress.Config(fm_epochs=3))[best]
    assert verdict["delta_vs_nokd_points"] == pytest.approx(delta, abs=1e-9)
    assert verdict["seeds"] == 1 and verdict["delta_stderr_points"] is None and verdict["won"] == (delta > 0)
    lead = md.splitlines()[2]  # under the title, before the summary
    assert lead.startswith(f"Verdict: {verdict['method']}, the distilled arm with the best validation accuracy, ")
    assert ("beat its" if delta > 0 else "tied its" if delta == 0 else "LOST to its") in lead
    assert (f"by {abs(delta):.2f} points (1 seed)." if delta else "(1 seed).") in lead
    assert lead in stdout  # the log's brief report carries it too
    exported = report["results"]["export"]["formats"]
    assert {e["format"] for e in exported} == {"tflite none", "tflite int8"}
    float_row = next(e for e in exported if e["format"] == "tflite none")
    assert float_row["max_abs_diff"] < 1e-4 and float_row["agreement"] == 1.0
    int8_row = next(e for e in exported if e["format"] == "tflite int8")
    assert int8_row["size_bytes"] < 0.5 * float_row["size_bytes"]
    assert "[1/" in stdout and "report:" in stdout


def test_compress_runs_logit_and_feature_methods(tmp_path, data_dir):
    """DKD and DIST from the cache, AT and RKD with the live teacher (layers from auto_pairs), each against NoKD."""
    out = tmp_path / "methods"
    proc = _run(["compress", "--dataset", "digits", "--teacher", "plain_cnn:4", "--student", "plain_cnn:2",
                 "--teacher-epochs", "3", "--epochs", "2", "--methods", "dkd,dist,at,rkd", "--no-function-matching",
                 "--no-export", "--data-dir", str(data_dir), "--out", str(out)])
    stdout, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, stdout[-4000:]
    report = json.loads((out / "report.json").read_text())
    arms = report["results"]["arms"]
    assert set(arms) == {"nokd", "dkd", "dist", "at", "rkd"}
    for name in ("dkd", "dist", "at", "rkd"):
        history = arms[name][0]["history"]
        assert len(history["loss"]) == 2 and f"{ {'at': 'attention'}.get(name, name)}_loss" in history
        assert 0.0 <= arms[name][0]["accuracy"] <= 1.0 and arms[name][0]["agreement"] is not None
    assert arms["at"][0]["taught_by"] != arms["dkd"][0]["taught_by"]  # live teacher vs the logits cache
    md = (out / "report.md").read_text()
    assert "DKD (T=4, alpha=1, beta=8)" in md and "attention transfer (weight 1000)" in md


def test_a_feature_method_the_models_cannot_serve_fails_before_training(tmp_path, data_dir):
    proc = _run(["compress", "--dataset", "digits", "--student", "mlp:32", "--methods", "at", "--data-dir",
                 str(data_dir), "--out", str(tmp_path / "r")])
    stdout, _ = proc.communicate(timeout=300)
    assert proc.returncode != 0
    assert "methods: at cannot distil plain_cnn:4 into mlp:32" in stdout and "[1/" not in stdout
    assert "methods=kd,nope" in _run_config_error(["--methods", "kd,nope"], tmp_path, data_dir)


def _run_config_error(extra, tmp_path, data_dir):
    proc = _run(["compress", *extra, "--data-dir", str(data_dir), "--out", str(tmp_path / "bad")])
    stdout, _ = proc.communicate(timeout=300)
    assert proc.returncode == 2, stdout[-2000:]
    return stdout


def test_resume_of_a_finished_run_redoes_nothing(compress_run):
    out, _ = compress_run
    before = (out / "models" / "kd_seed0.keras").stat().st_mtime_ns
    proc = _run(["--resume", str(out)])
    stdout, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, stdout[-3000:]
    assert stdout.count("skipped") >= 7
    assert "epoch 1/" not in stdout
    assert (out / "models" / "kd_seed0.keras").stat().st_mtime_ns == before


def _kill_during(proc, ckpt, epochs, timeout=300):
    """SIGKILL the run's process group once ``ckpt`` says 1..epochs-1 epochs are done; returns that count."""
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        try:
            if 1 <= json.loads(ckpt.read_text())["epochs_done"] < epochs:
                break
        except (OSError, json.JSONDecodeError, KeyError):
            pass
        time.sleep(0.005)
    assert proc.poll() is None, f"the run ended before it could be killed mid-stage ({ckpt})"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return json.loads(ckpt.read_text())["epochs_done"]


def test_kill_9_mid_stage_then_resume_completes_without_redoing_finished_stages(compress_run, tmp_path, data_dir):
    """Killed in a KD arm, resumed, killed again in the function-matching arm (MixUp and random geometry in the
    Distiller), resumed: every artifact, the report's numbers and the .tflite bytes equal the uninterrupted run's."""
    out = tmp_path / "run"
    proc = _run(["compress", *SMALL, "--data-dir", str(data_dir), "--out", str(out)], start_new_session=True)
    killed_at = _kill_during(proc, out / "checkpoints" / "kd_seed0" / "state.json", 3)
    state = json.loads((out / "state.json").read_text())
    assert state["stages"]["nokd/seed0"]["status"] == "done"
    assert "kd/seed0" not in state["stages"]
    nokd_mtime = (out / "models" / "nokd_seed0.keras").stat().st_mtime_ns

    proc = _run(["--resume", str(out)], start_new_session=True)
    fm_killed_at = _kill_during(proc, out / "checkpoints" / "fm_seed0" / "state.json", 3)
    stdout = proc.stdout.read()
    assert "teacher: done in an earlier session, skipped" in stdout
    assert "nokd/seed0: done in an earlier session, skipped" in stdout
    assert f"resuming at epoch {killed_at + 1}/3" in stdout
    assert "fm/seed0" not in json.loads((out / "state.json").read_text())["stages"]

    proc = _run(["--resume", str(out)])
    stdout, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, stdout[-3000:]
    assert f"resuming at epoch {fm_killed_at + 1}/3" in stdout
    assert (out / "models" / "nokd_seed0.keras").stat().st_mtime_ns == nokd_mtime
    report = json.loads((out / "report.json").read_text())
    assert len(report["results"]["arms"]["fm"][0]["history"]["loss"]) == 3  # nothing finished was lost
    assert_same(artifacts(out), artifacts(compress_run[0]))
    assert report["verdict"] == json.loads((compress_run[0] / "report.json").read_text())["verdict"]


def test_sweep_on_replayed_views_shares_one_teacher_pass(tmp_path, data_dir):
    """``--sweep --sweep-views``: the sweep arms and the function-matching arm train on the same replayed views,
    whose logits the teacher computed once (stage fm_views); no arm runs a teacher of its own."""
    out = tmp_path / "sweep"
    proc = _run(["compress", "--dataset", "mnist", "--n-train", "600", "--n-test", "200", "--teacher", "plain_cnn:2",
                 "--student", "mlp:16", "--teacher-epochs", "2", "--epochs", "2", "--fm-epochs", "3",
                 "--fm-noise", "shift", "--methods", "kd", "--sweep", "--sweep-temperatures", "2,4",
                 "--sweep-alphas", "0.5", "--sweep-views", "--no-export", "--data-dir", str(data_dir),
                 "--out", str(out)])
    stdout, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, stdout[-3000:]
    report = json.loads((out / "report.json").read_text())
    work, n_fit = report["results"]["teacher_work"], 540
    assert work["epochs"] == 3 and work["teacher_views"] == 3 * n_fit and work["arms"] == 3
    assert work["live_teacher_views"] == (3 + 2 * 2) * n_fit  # what a live teacher in every arm's step would see
    assert "shifts up to 3 px" in work["views"]
    state = json.loads((out / "state.json").read_text())["stages"]
    taught = {state[f"sweep/T{t}_a0.5"]["result"]["taught_by"] for t in (2, 4)}
    assert taught == {report["results"]["arms"]["fm"][0]["taught_by"]}  # one cache, one binding
    assert "replayed: the teacher ran once over 3 epochs" in (out / "report.md").read_text()
    # views a stateful Keras layer draws cannot be replayed: refused before any work
    bad = tmp_path / "bad"
    assert runner.main(["compress", "--sweep", "--sweep-views", "--fm-noise", "simple", "--out", str(bad)]) == 2
    assert not bad.exists()


def test_config_is_validated_before_any_training(tmp_path):
    with pytest.raises(ValueError, match="unknown config key"):
        from_dict(compress.Config, {"dataset": "mnist", "epocs": 3})
    assert runner.main(["compress", "--epochs", "0", "--out", str(tmp_path / "r")]) == 2
    assert not (tmp_path / "r").exists()


def test_methods_auto_searches_both_sides_on_validation_and_compares_them(tmp_path, data_dir):
    """``--methods auto``: one search over logit methods and knobs, one over labels-only training, with the same
    trials and epochs, each starting from the untuned setting; the chosen settings train the auto and nokd_tuned
    arms, and the verdict compares the two."""
    out = tmp_path / "auto"
    proc = _run(["compress", "--methods", "auto", "--auto-trials", "2", "--epochs", "2", "--teacher-epochs", "3",
                 "--no-function-matching", "--no-export", "--data-dir", str(data_dir), "--out", str(out)])
    stdout, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, stdout[-3000:]
    state = json.loads((out / "state.json").read_text())["stages"]
    searched = {kind: state[f"search/{kind}"]["result"] for kind in ("distilled", "labels")}
    for kind, result in searched.items():
        scores = [t["score"] for t in result["trials"]]
        assert len(scores) == 2 and result["val_accuracy"] == max(scores), kind
    assert any(t.get("kd_temperature") == 4.0 and t.get("kd_alpha") == 0.5 and t["method"] == "kd"
               for t in searched["distilled"]["trials"])  # the untuned KD arm is one of the trials
    assert any(t == {"score": t["score"], "lr": 1e-3, "label_smoothing": 0.0} for t in searched["labels"]["trials"])
    report = json.loads((out / "report.json").read_text())
    arms = report["results"]["arms"]
    assert {"nokd", "nokd_tuned", "auto"} <= set(arms)
    verdict = report["verdict"]
    assert verdict["arm"] == "auto" and verdict["chosen_on"] == "validation"
    mean = {arm: sum(r["accuracy"] for r in arms[arm]) / len(arms[arm]) for arm in ("auto", "nokd_tuned")}
    delta = 100 * (mean["auto"] - mean["nokd_tuned"])
    assert verdict["delta_vs_nokd_points"] == pytest.approx(delta)
    assert "NoKD tuned on validation" in (out / "report.md").read_text()
