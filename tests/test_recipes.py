"""End-to-end tests of the compression-family recipes on small real-data budgets, each checking a method property."""

import dataclasses
import json
import re

import keras
import numpy as np
import pytest

from tfkd.recipes import runner
from tfkd.teachers import fingerprint, virtual_teacher_logits

MNIST = ["--dataset", "mnist", "--n-train", "1200", "--n-test", "300", "--batch-size", "64", "--no-export"]


def _run(tmp_path, data_dir, recipe, *args):
    out = tmp_path / recipe
    assert runner.main([recipe, *MNIST, "--data-dir", str(data_dir), *args, "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert (out / "report.md").read_text().startswith("# ")
    return out, report


def _logits(out, name):
    with np.load(out / "cache" / f"{name}_fit.npz") as f:
        return f["logits"]


def test_takd_student_learns_from_the_assistant_not_the_teacher(tmp_path, data_dir):
    out, report = _run(tmp_path, data_dir, "takd", "--chain", "plain_cnn:4,mlp:64,mlp:16", "--teacher-epochs", "2",
                       "--epochs", "2", "--export", "--quantize", "dynamic")
    res = report["results"]
    assert [c["name"] for c in res["chain"]] == ["teacher", "ta1"]
    assert res["chain"][1]["trained_from"] == "teacher"
    assert res["chain"][1]["taught_by"] == fingerprint(_logits(out, "teacher_logits"))
    takd, blkd = res["arms"]["takd"][0], res["arms"]["blkd"][0]
    assert takd["taught_by"] == fingerprint(_logits(out, "ta1_logits"))
    assert blkd["taught_by"] == fingerprint(_logits(out, "teacher_logits"))
    assert takd["taught_by"] != blkd["taught_by"]
    assert 0 <= takd["agreement_with_teacher"] <= 1 and res["arms"]["nokd"][0]["taught_by"] is None
    for rel in ("models/ta1.keras", "models/takd_seed0.keras", "plots/curves_val_accuracy.png",
                "export/takd_seed0_dynamic.tflite"):
        assert (out / rel).exists()
    assert {e["format"] for e in res["export"]["formats"]} == {"tflite none", "tflite dynamic"}


def test_takd_views_train_every_link_on_replayed_views_of_its_own_teacher(tmp_path, data_dir):
    out, report = _run(tmp_path, data_dir, "takd", "--chain", "plain_cnn:4,plain_cnn:2,mlp:16", "--teacher-epochs",
                       "1", "--epochs", "2", "--views", "shift")
    res = report["results"]
    ta, (blkd,), (takd,), (nokd,) = res["chain"][1], *(res["arms"][a] for a in ("blkd", "takd", "nokd"))
    assert ta["taught_by"].startswith("replayed views") and blkd["taught_by"] == ta["taught_by"]
    assert takd["taught_by"].startswith("replayed views") and takd["taught_by"] != blkd["taught_by"]
    # NoKD sees the teacher's views with the soft term off: the same images as BLKD, labels only
    assert nokd["taught_by"] == blkd["taught_by"]
    assert (out / "cache" / "teacher_views.npz").is_file() and (out / "cache" / "ta1_views.npz").is_file()
    assert "replayed shift views" in (out / "report.md").read_text()
    from tfkd.recipes import takd as takd_recipe

    with pytest.raises(ValueError, match=r"views='flip'; expected one of clean, shift, shift_flip"):
        takd_recipe.Config(views="flip").validate()
    with pytest.raises(ValueError, match=r"--ta auto: the assistant search trains on the fixed images"):
        takd_recipe.Config(views="shift", ta="auto").validate()


def test_blend_student_is_taught_by_the_ensemble(tmp_path, data_dir):
    out, report = _run(tmp_path, data_dir, "blend", "--teachers", "plain_cnn:2,mlp:64", "--student", "mlp:16",
                       "--teacher-epochs", "2", "--epochs", "2")
    res = report["results"]
    ensemble_logits = _logits(out, "ensemble_logits")
    assert res["arms"]["blend"][0]["taught_by"] == fingerprint(ensemble_logits)
    # The ensemble logits are log(mean softmax) of the two saved teachers (probability-space blend).
    import tfkd
    from tfkd.recipes.common import load_data  # the same split as the run

    teachers = [keras.models.load_model(out / "models" / f"teacher{i}.keras") for i in (1, 2)]
    saved = json.loads((out / "config.json").read_text())["config"]
    cfg = runner.config_lib.from_dict(tfkd.recipes.blend.Config, saved)
    data = load_data(cfg)
    probs = np.mean([keras.ops.convert_to_numpy(keras.ops.softmax(t.predict(data.x_fit, verbose=0))) for t in teachers],
                    axis=0)
    np.testing.assert_allclose(np.exp(ensemble_logits), probs, rtol=1e-4, atol=1e-5)
    assert res["best_teacher"] in ("teacher1", "teacher2")
    assert 0.0 < res["ensemble_accuracy"] <= 1.0


def test_teacher_free_arms_against_labels_only(tmp_path, data_dir):
    out, report = _run(tmp_path, data_dir, "teacher-free", "--student", "mlp:32", "--weak", "mlp:8",
                       "--teacher", "plain_cnn:2", "--defective-epochs", "1", "--epochs", "2")
    arms = report["results"]["arms"]
    assert set(arms) == {"nokd", "label_smoothing", "virtual_teacher", "reversed", "defective", "self"}
    # Reversed KD really uses a weaker (smaller) teacher; self-distillation learns from the NoKD snapshot.
    assert report["results"]["weak_teacher"]["describe"]["params"] < arms["nokd"][0]["describe"]["params"]
    assert arms["self"][0]["taught_by"] == fingerprint(_logits(out, "self_logits_seed0"))
    assert arms["reversed"][0]["taught_by"] == fingerprint(_logits(out, "weak_logits"))
    # The virtual teacher's logits are the hand-made distribution of the true labels.
    import tfkd
    from tfkd.recipes.common import load_data

    cfg = runner.config_lib.from_dict(tfkd.recipes.teacher_free.Config,
                                      json.loads((out / "config.json").read_text())["config"])
    data = load_data(cfg)
    assert arms["virtual_teacher"][0]["taught_by"] == fingerprint(virtual_teacher_logits(data.y_fit, 10, 0.9))
    md = (out / "report.md").read_text()
    assert md.count("labels only by") == 5


def test_noisy_student_labels_clean_images_and_filters_as_configured(tmp_path, data_dir):
    out, report = _run(tmp_path, data_dir, "noisy-student", "--models", "plain_cnn:2,plain_cnn:2,plain_cnn:4",
                       "--n-train", "2000", "--labeled-fraction", "0.25", "--threshold", "0.5", "--batch-size", "32",
                       "--teacher-epochs", "5", "--epochs", "2")
    import tfkd
    from tfkd.recipes import noisy_student

    cfg = runner.config_lib.from_dict(tfkd.recipes.noisy_student.Config,
                                      json.loads((out / "config.json").read_text())["config"])
    d = noisy_student.load_semi(cfg)
    for it in (1, 2):
        info = report["results"]["pseudo"][str(it)]
        with np.load(out / "pseudo" / f"iter{it}.npz") as f:
            saved_logits, indices = f["teacher_logits"], f["indices"]
        # The teacher labelled the clean images: re-running it on them (training=False) gives the saved logits.
        teacher = keras.models.load_model(out / "models" / f"iter{it - 1}.keras")
        np.testing.assert_allclose(teacher.predict(d.x_unl, verbose=0), saved_logits, rtol=1e-4, atol=1e-4)
        assert info["labelled_inputs_fingerprint"] == fingerprint(d.x_unl)
        probs = keras.ops.convert_to_numpy(keras.ops.softmax(saved_logits))
        passed = probs.max(1) >= 0.5
        assert info["passed"] == int(passed.sum())
        assert info["passed_per_class"] == np.bincount(probs[passed].argmax(1), minlength=10).tolist()
        kept = [k for k in info["kept_per_class"] if k]
        assert len(set(kept)) <= 1  # balanced: every class that passed has the same count
        if it == 1:
            assert info["passed"] > 0 and len(kept) >= 5
        assert np.all(probs[indices].max(1) >= 0.5)
    models = report["results"]["models"]
    assert models["self_training"]["noisy"] is False and models["iter1"]["noisy"] is True
    assert set(models["iter2"]["corrupted"]) == {f"{k}@{s}" for k in ("noise", "blur", "contrast") for s in (1, 3, 5)}
    assert set(models["iter1"]["corrupted_by_family"]) == {"noise", "blur", "contrast"}
    verdicts = report["results"]["verdicts"]
    assert [v.split(":")[0] for v in verdicts] == ["target, iteration 2 vs iteration 1",
                                                  "target, noise vs noise-off at iteration 1"]
    assert all(("MET" in v) != ("MISSED" in v) for v in verdicts) and set(verdicts) <= set(report["summary"])


def test_noisy_student_quick_default_full_flag_and_noise_names():
    from tfkd.recipes import noisy_student

    quick = runner.config_lib.from_dict(noisy_student.Config, {})
    assert (quick.n_train, quick.teacher_epochs, quick.epochs) == (12000, 40, 6)
    assert (quick.noise, quick.magnitude) == ("simple+degrade", 0.4)
    full = runner.config_lib.from_dict(noisy_student.Config, {"full": True, "epochs": 3})
    assert (full.n_train, full.teacher_epochs, full.epochs) == (None, 10, 3)  # explicit values win over --full
    again = runner.config_lib.from_dict(noisy_student.Config, runner.config_lib.to_dict(full))
    assert again == full  # config.json holds the resolved values: a resumed run gets the same config
    assert runner.config_lib.from_dict(noisy_student.Config, {"noise": "randaugment"}).magnitude == 0.3
    for bad in ("cutout", "none+degrade"):
        with pytest.raises(ValueError, match=re.escape(f"noise='{bad}'")):
            runner.config_lib.from_dict(noisy_student.Config, {"noise": bad})


@pytest.mark.parametrize("resume", [False, True])
def test_tune_budget_frontier_resume_and_ta_search(tmp_path, data_dir, resume):
    args = ["--teacher", "plain_cnn:4", "--teacher-epochs", "2", "--family", "mlp", "--mlp-widths", "8,64",
            "--mlp-layers", "1", "--tuner", "random", "--max-trials", "2", "--max-epochs", "1",
            "--max-params", "20000"]
    if not resume:
        args += ["--ta-search", "--student", "mlp:8", "--ta-candidates", "mlp:32,plain_cnn:2", "--ta-epochs", "1"]
    else:  # the trials train on replayed augmented views: one teacher pass over them for the whole search
        args += ["--views", "shift", "--views-mixup", "0.2"]
    out, report = _run(tmp_path, data_dir, "tune", *args)
    search = report["results"]["search"]
    views = report["results"]["trial_views"]
    if resume:
        n_fit = len(np.load(out / "cache" / "teacher_logits_fit.npz")["logits"])
        assert views["epochs"] == 1 and views["teacher_views"] == n_fit and "shifts up to 3 px" in views["views"]
        assert "trials trained on replayed views" in (out / "report.md").read_text()
    else:
        assert views is None
    refused = [r for r in search["trials"] if "FAILED" in r["status"]]
    trained = [r for r in search["trials"] if "val_accuracy" in r]
    # mlp:64 on 28x28 has 50,890 params > 20,000: refused before training; mlp:8 fits.
    assert refused and all(r["hp"]["width"] == 64 for r in refused)
    assert trained and all(r["params"] <= 20000 for r in trained)
    assert [r["trial"] for r in search["frontier"]] == [r["trial"] for r in trained][:len(search["frontier"])]
    assert (out / "models" / "best_student.keras").exists() and (out / "plots" / "frontier.png").exists()
    if resume:
        # Re-running the search stage in the same run directory continues the tuner instead of restarting it.
        from tfkd import tuning

        import tfkd
        from tfkd.recipes import common, tune

        hm_trials = len(search["trials"])
        cfg = runner.config_lib.from_dict(tfkd.recipes.tune.Config,
                                          json.loads((out / "config.json").read_text())["config"])
        ctx = runner.RunContext(out, "tune", cfg)
        data = common.load_data(cfg)
        caches = common.logits_cache_stage(ctx, ctx.load_model("teacher"), data)
        views, _ = common.replay_stage(ctx, ctx.load_model("teacher"), data, common.replay_views(
            cfg.views, data, seed=cfg.seed, mixup=cfg.views_mixup), cfg.max_epochs, caches, name="trial_views")
        again = tune.student_search_stage(cfg, ctx, data, caches, views)
        assert len(again["trials"]) == hm_trials  # no new trials: the oracle state was reloaded
        assert tuning.pareto_frontier(again["trials"]) == again["frontier"]
    else:
        from tfkd import models

        ta = report["results"]["ta_search"]
        assert ta["searched"] in ("mlp:32", "plain_cnn:2") and ta["heuristic"] in ("mlp:32", "plain_cnn:2")
        size = {s: models.describe(models.build(s, (28, 28, 1), 10))["params"] for s in ("mlp:8", ta["searched"])}
        teacher_params = report["results"]["teacher"]["describe"]["params"]
        assert size["mlp:8"] < size[ta["searched"]] < teacher_params  # between student and teacher
        assert len(ta["trials"]) == 2 and set(ta["standalone_accuracy"]) == {"mlp:8", "mlp:32", "plain_cnn:2"}


def test_pareto_frontier_by_hand():
    from tfkd.tuning import pareto_frontier

    rows = [{"trial": "a", "params": 100, "val_accuracy": 0.80}, {"trial": "b", "params": 50, "val_accuracy": 0.85},
            {"trial": "c", "params": 200, "val_accuracy": 0.90}, {"trial": "d", "params": 150, "val_accuracy": 0.84},
            {"trial": "e", "params": 10, "val_accuracy": 0.0}]
    assert [r["trial"] for r in pareto_frontier(rows)] == ["b", "c"]


def test_a_student_arm_says_what_teaches_it_and_refuses_settings_it_would_ignore():
    from tfkd.recipes.common import Arm, LogitsCache

    cache = LogitsCache(fit=None, val=None, test_pred=np.array([1, 2, 3]))
    assert Arm.labels_only("nokd_seed0", 0).kind == "labels"
    arm = Arm.from_cache("kd_seed0", 0, cache, temperature=4.0, alpha=0.5, alpha_decay_start=0.5)
    assert arm.kind == "cache" and arm.teacher_test_pred is cache.test_pred  # agreement with the cached teacher
    teacher = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3)], name="teacher")
    assert Arm.live("fm_seed0", 0, teacher, temperature=1.0, alpha=1.0).kind == "live"
    with pytest.raises(ValueError, match="arm 'nokd_seed0' has no teacher, so temperature, method would be ignored"):
        Arm("nokd_seed0", 0, temperature=4.0, method="dkd")
    with pytest.raises(ValueError, match="label_smoothing=0.1 applies to labels-only arms"):
        Arm("kd_seed0", 0, teacher=cache, temperature=4.0, alpha=0.5, label_smoothing=0.1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        arm.seed = 1
