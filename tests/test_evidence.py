"""benchmarks.evidence judges each target from its result file, by the target's own rule, and says what is missing."""

import json
import pathlib
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # benchmarks/ is not installed; it runs from the repository root

from benchmarks import evidence  # noqa: E402


def _fmnist(teacher_test, labels, distilled, teacher_params=304_058, student_params=10_458):
    arm = lambda test, name: {"test": test, "described": name}  # noqa: E731
    return {"result": {"teacher": {"test_accuracy": teacher_test, "params": teacher_params},
                       "student_params": student_params,
                       "arms": {"labels": arm(labels, "labels only"), "distilled": arm(distilled, "DIST (T=1)")}}}


def test_target_1_needs_a_strong_teacher_a_tenth_of_the_parameters_and_a_point_paired():
    met, text = evidence.judge_fmnist(_fmnist(0.93, [0.90, 0.91, 0.92], [0.911, 0.921, 0.931]))
    assert met and "+1.10 ± 0.00 points (3 seeds)" in text and "1/29" in text
    assert not evidence.judge_fmnist(_fmnist(0.93, [0.90, 0.91, 0.92], [0.909, 0.919, 0.929]))[0]  # +0.9
    assert not evidence.judge_fmnist(_fmnist(0.92, [0.90, 0.91, 0.92], [0.93, 0.94, 0.95]))[0]     # weak teacher
    assert not evidence.judge_fmnist(_fmnist(0.93, [0.90], [0.95], student_params=40_000))[0]      # too big


def test_targets_3_4_5_follow_their_rules():
    arms = lambda n, b, t: {"results": {"arms": {"nokd": [{"accuracy": n}], "blkd": [{"accuracy": b}],  # noqa: E731
                                                 "takd": [{"accuracy": t}]}}}
    assert evidence.judge_takd(arms(0.50, 0.52, 0.53))[0]
    met, text = evidence.judge_takd(arms(0.50, 0.53, 0.52))
    assert not met and "TAKD 52.00 (vs BLKD -1.00)" in text
    verdict = {"method": "KD", "baseline": "nokd", "delta_vs_nokd_points": 0.5, "delta_stderr_points": 0.2,
               "val_delta_points": 0.3, "seeds": 3}
    assert evidence.judge_main_job({"verdict": verdict})[0]
    assert not evidence.judge_main_job({"verdict": {**verdict, "val_delta_points": -0.1}})[0]  # test alone is not it
    lines = ["target, iteration 2 vs iteration 1: ... MET (no loss on either).",
             "target, noise vs noise-off at iteration 1: ... MISSED (noise costs robustness)."]
    assert not evidence.judge_noisy({"results": {"verdicts": lines}})[0]
    assert evidence.judge_noisy({"results": {"verdicts": lines[:1]}})[0]
    assert not evidence.judge_noisy({"results": {"verdicts": []}})[0]


def test_collect_judges_what_is_there_and_names_what_is_not(tmp_path):
    (tmp_path / "fmnist_chosen.json").write_text(json.dumps(_fmnist(0.93, [0.9, 0.9], [0.9, 0.905])))
    assert evidence.main(["--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "evidence.json").read_text())
    status = {r["target"]: r["status"] for r in result["targets"]}
    assert status == {1: "missed", 2: "not measured", 3: "not measured", 4: "not measured", 5: "not measured"}
    md = (tmp_path / "evidence.md").read_text()
    assert "| 1. Fashion-MNIST" in md and "**missed**" in md and "hinton.json" in md
    with pytest.raises(SystemExit):
        evidence.main(["--run", "7", "--out", str(tmp_path)])


def test_a_report_is_kept_without_its_histories():
    report = {"results": {"arms": {"nokd": [{"accuracy": 0.5, "history": {"val_accuracy": [0.1] * 30}}]}}}
    assert evidence._without_histories(report) == {"results": {"arms": {"nokd": [{"accuracy": 0.5}]}}}
