"""The benchmark scripts still run: each ``--smoke`` run on a tiny budget, in this process, results checked.

The numbers of a smoke run mean nothing (one epoch on a few hundred images); what is checked is that every script
runs end to end on the real data, writes its JSON and Markdown where it is told (never over the committed
results), and that what it writes is well formed: accuracies in [0, 1], the chosen sweep point in the grid,
every TFLite variant validated and timed, every speed ratio with its target.
"""

import json
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # benchmarks/ is not installed; it runs from the repository root

from benchmarks import (  # noqa: E402
    accuracy, digits_student, export_students, fm_arm, fmnist_chosen, fmnist_patient, hinton, methods, step_time,
    teachers)
from tfkd import training  # noqa: E402


@pytest.fixture(scope="module")
def accuracy_smoke(tmp_path_factory, data_dir):
    out = tmp_path_factory.mktemp("bench")
    assert accuracy.main(["--smoke", "--out", str(out), "--data-dir", str(data_dir)]) == 0
    return out


def test_accuracy_smoke_runs_both_recipes_and_collects_their_reports(accuracy_smoke):
    result = json.loads((accuracy_smoke / "accuracy_smoke.json").read_text())
    assert result["smoke"] and set(result["datasets"]) == {"digits", "cifar10_subset"}
    compress = result["datasets"]["digits"]
    assert set(compress["arms"]) >= {"nokd", "kd", "kd_decay", "nokd_long", "fm"}
    for arm in compress["arms"].values():
        assert all(0.0 <= a <= 1.0 for a in arm["accuracy"]) and len(arm["accuracy"]) == compress["budget"]["seeds"]
        assert (accuracy_smoke / "runs" / arm["model"]).is_file()
    grid = {(r["temperature"], r["alpha"]) for r in compress["sweep"]}
    assert (compress["chosen"]["temperature"], compress["chosen"]["alpha"]) in grid
    assert all(0.0 <= r["val_accuracy"] <= 1.0 for r in compress["sweep"])
    takd = result["datasets"]["cifar10_subset"]
    assert [c["name"] for c in takd["chain"]] == ["teacher", "ta1"] and set(takd["arms"]) == {"nokd", "blkd", "takd"}
    md = (accuracy_smoke / "accuracy_smoke.md").read_text()
    assert "70.16" in md and "73.51" in md and "tfkd run takd" in md and "**chosen**" in md
    # The evidence targets open the report; none is measured in this fresh folder, and the table says so.
    assert [t["target"] for t in result["targets"]] == [1, 2, 3, 4, 5]
    assert {t["status"] for t in result["targets"]} == {"not measured"} and "The five targets" in md
    assert result["env"]["versions"]["tensorflow"] and result["command"].startswith("python -m benchmarks.accuracy")
    # Run again: finished runs are reused, not retrained (a data dir without the data proves it), same numbers.
    assert accuracy.main(["--smoke", "--out", str(accuracy_smoke), "--only", "digits", "--data-dir", "."]) == 0
    again = json.loads((accuracy_smoke / "accuracy_smoke.json").read_text())
    assert again["datasets"]["digits"]["arms"] == compress["arms"] and "cifar10_subset" in again["datasets"]


def test_accuracy_refuses_an_unknown_target_before_any_work(tmp_path, capsys):
    with pytest.raises(SystemExit):
        accuracy.main(["--smoke", "--out", str(tmp_path), "--targets", "4,9"])
    assert "--targets unknown targets [9]" in capsys.readouterr().err and not list(tmp_path.iterdir())


def test_export_students_smoke_exports_every_variant(accuracy_smoke):
    assert export_students.main(["--smoke", "--accuracy", str(accuracy_smoke / "accuracy_smoke.json"),
                                 "--out", str(accuracy_smoke)]) == 0
    result = json.loads((accuracy_smoke / "export_students_smoke.json").read_text())
    for entry in result["datasets"].values():
        (student,) = entry["students"].values()
        rows = {(r["format"], r["quantize"]): r for r in student["rows"]}
        assert set(rows) == {("keras", "float32")} | {("tflite", q) for q in export_students.QUANTIZE}
        f32, i8 = rows[("tflite", "none")], rows[("tflite", "int8")]
        assert i8["size_bytes"] < 0.75 * f32["size_bytes"]  # a quarter of the weight bytes, plus a fixed graph
        assert f32["agreement"] == 1.0 and 0.9 <= i8["agreement"] <= 1.0
        assert f32["latency_median_ms"] > 0 and f32["latency_median_ms_2_threads"] > 0
        (teacher_f32,) = [r for r in entry["teacher"]["rows"] if r["format"] == "tflite"]
        assert teacher_f32["quantize"] == "none" and teacher_f32["latency_median_ms_2_threads"] > 0
    assert "acceptance" in (accuracy_smoke / "export_students_smoke.md").read_text()


def test_step_time_smoke_reports_every_ratio_with_its_target(tmp_path, data_dir):
    assert step_time.main(["--smoke", "--out", str(tmp_path), "--data-dir", str(data_dir)]) == 0
    result = json.loads((tmp_path / "step_time_smoke.json").read_text())
    (pair,) = result["pairs"]
    assert set(pair["median_epoch_s"]) == set(step_time.ARMS)
    assert all(len(v) == pair["rounds"] == 2 and min(v) > 0 for v in pair["times_s"].values())
    for name, target in step_time.TARGETS.items():
        lo, hi = pair["ratio_range"][name]
        assert 0 < lo <= hi and pair["ratios"][name] > 0 and pair["met"][name] == (pair["ratios"][name] <= target)
    assert pair["teacher_share_of_live_epoch"] > 0  # below 1 on a quiet machine; noise can push one round over
    assert pair["params"]["teacher"] > pair["params"]["student"] > 0
    assert set(pair["ratios_of_best_epochs"]) == set(pair["profile"]["step_ratios"]) == set(step_time.TARGETS)
    assert all(v["times_s"] for v in result["autotune_probe"].values())
    md_path = tmp_path / "step_time_smoke.md"
    md = md_path.read_text()
    assert all(name in md for name in step_time.TARGETS) and "What bounds" in md and "autotuning" in md
    md_path.unlink()  # --render rebuilds the summary from the JSON alone
    assert step_time.main(["--render", "--smoke", "--out", str(tmp_path)]) == 0 and md_path.read_text() == md


def test_hinton_smoke_chooses_on_validation_and_counts_errors_paired_by_seed(tmp_path, data_dir):
    assert hinton.main(["--smoke", "--out", str(tmp_path), "--data-dir", str(data_dir)]) == 0
    result = json.loads((tmp_path / "hinton_smoke.json").read_text())["result"]
    sweep, chosen = result["sweep"], result["chosen"]
    best = max(sweep, key=lambda r: r["val_accuracy"])
    assert (chosen["temperature"], chosen["alpha"]) == (best["temperature"], best["alpha"])
    n = result["n_test"]
    assert n == 200 and result["seeds"] == [0, 1]
    for arm in ("student_alone", "distilled"):
        assert result[arm]["test_errors"] == [round((1 - r["test_accuracy"]) * n) for r in result[arm]["runs"]]
    removed = [a - k for a, k in zip(result["student_alone"]["test_errors"], result["distilled"]["test_errors"])]
    assert result["errors_removed"]["mean"] == sum(removed) / 2
    assert "Target >= 50 %" in (tmp_path / "hinton_smoke.md").read_text()


def test_fm_arm_smoke_times_every_arm_through_the_recipe_and_costs_the_seeds(tmp_path):
    assert fm_arm.main(["--smoke", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "fm_arm_smoke.json").read_text())["result"]
    assert set(result["times"]) == set(fm_arm.ARMS) and all(len(v) == 1 for v in result["times"].values())
    med = result["median_s"]
    for seeds, row in result["seeds"].items():
        assert row["replayed"] == pytest.approx(med["views"] + int(seeds) * med["replayed"])
        assert row["ratio"] == pytest.approx(row["replayed"] / (int(seeds) * med["live"]))
    assert all(0.0 <= a <= 1.0 for v in result["accuracy"].values() for a in v)
    assert "replayed / live" in (tmp_path / "fm_arm_smoke.md").read_text()


def test_digits_student_smoke_pairs_every_arm_with_the_tuned_baseline(tmp_path):
    assert digits_student.main(["--smoke", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "digits_student_smoke.json").read_text())
    rows = {r["arm"]: r for r in result["result"]["rows"]}
    assert list(rows) == digits_student.SMOKE["arms"] and rows["ce_ls"]["delta_vs_baseline"] == 0.0
    # Each arm is paired with the tuned baseline trained as long as it: the patient arms with ce_ls_long.
    assert {a: r["baseline"] for a, r in rows.items()} == {"ce_ls": "ce_ls", "kd_T4_a0.5": "ce_ls", "fm_a0.5": "ce_ls",
                                                            "ce_ls_long": "ce_ls_long", "fm_mixup_long": "ce_ls_long"}
    assert rows["ce_ls_long"]["delta_vs_baseline"] == 0.0
    for r in rows.values():
        assert len(r["test"]) == 2 and all(0.0 <= a <= 1.0 for a in r["test"] + r["val"])
    assert "vs ce_ls_long" in (tmp_path / "digits_student_smoke.md").read_text()


def test_teachers_smoke_trains_once_then_reuses_the_cached_teacher(tmp_path, data_dir):
    assert teachers.main(["--smoke", "--out", str(tmp_path), "--data-dir", str(data_dir)]) == 0
    result = json.loads((tmp_path / "teachers_smoke.json").read_text())
    entry = result["datasets"]["fashion_mnist"]
    t, (s,) = entry["teacher"], entry["students"].values()
    assert t["input_range"] == "[0, 1]" and t["split"]["val_size"] == 100 and 1 <= t["chosen_epoch"] <= t["epochs"]
    assert all(0.0 <= a <= 1.0 for a in (t["val_accuracy"], t["test_accuracy"], *s["test_accuracy"]))
    assert s["lead_points"] == round(100 * (t["test_accuracy"] - s["test_mean"]), 2)
    assert "lead (points)" in (tmp_path / "teachers_smoke.md").read_text()
    # Cached: loading again trains nothing (a data dir without the data proves it) and gives the same teacher.
    cache = tmp_path / "runs" / "teachers"
    model, info = teachers.load_teacher("fashion_mnist", data_dir=".", cache_dir=cache,
                                        settings=teachers.SMOKE["fashion_mnist"])
    assert info["test_accuracy"] == t["test_accuracy"] and model.output_shape == (None, 10)
    assert not any("random" in layer.name for layer in model.layers)  # no augmentation inside the saved teacher
    x_fit, y_fit, x_val, y_val, x_test, y_test = teachers.split("fashion_mnist", data_dir,
                                                                settings=teachers.SMOKE["fashion_mnist"])
    assert (len(x_fit), len(x_val), len(x_test)) == (400, 100, 200) and float(x_fit.max()) <= 1.0
    assert abs(training.accuracy(model, x_val, y_val) - t["val_accuracy"]) < 1e-6
    with pytest.raises(RuntimeError, match="other settings"):
        teachers.load_teacher("fashion_mnist", data_dir=".", cache_dir=cache,
                              settings={**teachers.SMOKE["fashion_mnist"], "epochs": 2})


def test_methods_smoke_reports_each_method_against_nokd_and_resumes_from_its_cache(tmp_path, data_dir):
    args = ["--smoke", "--methods", "kd,dist,at", "--out", str(tmp_path), "--data-dir", str(data_dir)]
    assert methods.main(args) == 0
    result = json.loads((tmp_path / "methods.json").read_text())
    assert [r["method"] for r in result["rows"]] == ["nokd", "kd", "dist", "at"]
    for row in result["rows"][1:]:
        assert row["delta_vs_nokd"]["n"] == 1 and all(0.0 <= a <= 1.0 for a in row["test_accuracies"])
    assert len(result["verdicts"]) == 3 and "published CIFAR-100" in (tmp_path / "methods.md").read_text()
    cached = sorted(p.name for p in (tmp_path / "runs" / "methods" / "smoke").glob("*.json"))
    assert cached == ["at_seed0.json", "dist_seed0.json", "kd_seed0.json", "nokd_seed0.json"]
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "runs" / "methods" / "smoke").glob("*.json")}
    assert methods.main(args) == 0  # every arm is read back, none retrained
    assert all(p.stat().st_mtime_ns == t for p, t in before.items())


def test_fmnist_chosen_smoke_searches_both_arms_equally_and_resumes_from_its_cache(tmp_path, data_dir):
    args = ["--smoke", "--out", str(tmp_path), "--data-dir", str(data_dir)]
    assert fmnist_chosen.main(args) == 0
    result = json.loads((tmp_path / "fmnist_chosen_smoke.json").read_text())["result"]
    arms = result["arms"]
    assert set(arms) == {"labels", "distilled"}
    # the same search budget for both; the first trial of each is its untuned default
    assert len(arms["labels"]["trials"]) == len(arms["distilled"]["trials"]) == fmnist_chosen.SMOKE["trials"]
    for arm in arms.values():
        run = arm["runs"][0]
        assert len(run["val_curve"]) == len(run["test_curve"]) == fmnist_chosen.SMOKE["epochs"]
        assert 0.0 <= run["test_accuracy"] <= 1.0 and run["test_accuracy"] == run["test_curve"][-1]
    assert arms["distilled"]["runs"][0]["setting"]["method"] in ("kd", "kd_std", "dkd", "dist")
    md = (tmp_path / "fmnist_chosen_smoke.md").read_text()
    assert "**Verdict**" in md and "Accuracy against epochs" in md
    runs = tmp_path / "runs" / "fmnist_chosen"
    before = {p: p.stat().st_mtime_ns for p in runs.glob("*/seed*.json")}
    assert len(before) == 2 and fmnist_chosen.main(args) == 0  # read back, nothing retrained
    assert all(p.stat().st_mtime_ns == t for p, t in before.items())


def test_fmnist_patient_smoke_trains_three_arms_on_one_teacher_pass_and_reads_them_back(tmp_path, data_dir):
    args = ["--smoke", "--out", str(tmp_path), "--data-dir", str(data_dir)]
    assert fmnist_patient.main(args) == 0
    result = json.loads((tmp_path / "fmnist_patient_smoke.json").read_text())["result"]
    assert set(result["arms"]) == set(fmnist_patient.ARMS) and "mixup Beta(0.2, 0.2)" in result["views"]
    for arm in result["arms"].values():
        assert len(arm["val_curve"]) == len(arm["test_curve"]) == fmnist_patient.SMOKE["epochs"]
        assert 0.0 <= arm["test_accuracy"] <= 1.0 and arm["test_accuracy"] == arm["test_curve"][-1]
    assert "Accuracy against epochs" in (tmp_path / "fmnist_patient_smoke.md").read_text()
    runs = tmp_path / "runs" / "fmnist_patient"
    before = {p: p.stat().st_mtime_ns for p in runs.glob("*.json")}
    assert len(before) == 3 and len(list(runs.glob("views_*.npz"))) == 1
    assert fmnist_patient.main(args) == 0  # read back: no arm retrained, the views not recomputed
    assert all(p.stat().st_mtime_ns == t for p, t in before.items())


def test_tfkd_bench_routes_to_the_benchmarks_from_the_repository_root():
    def tfkd(*args):
        return subprocess.run([sys.executable, "-m", "tfkd.cli", "bench", *args], cwd=REPO, capture_output=True,
                              text=True, timeout=60)

    out = tfkd("--help")
    assert out.returncode == 0 and "step_time" in out.stdout and "accuracy" in out.stdout and "teachers" in out.stdout
    out = tfkd("nonexistent")
    assert out.returncode == 2 and "unknown benchmark 'nonexistent'" in out.stderr
