"""Report plots read at a glance (checked on the matplotlib objects) and the compress export choice on validation."""

import pytest

from tfkd.recipes import compress, plots, report


@pytest.fixture
def figures(monkeypatch):
    """The figures the plot functions make, kept open instead of saved."""
    made = []

    def keep(fig, path):
        made.append(fig)
        return str(path)

    monkeypatch.setattr(plots, "_save", keep)
    yield made
    import matplotlib.pyplot as plt

    for fig in made:
        plt.close(fig)


def test_curves_tell_arms_apart_and_draw_comparable_losses(figures):
    distilled = {"loss": [9.0, 8.0], "val_loss": [7.0, 6.0], "val_hard_loss": [0.9, 0.5]}
    histories = {"NoKD": {"loss": [1.0, 0.6], "val_loss": [1.1, 0.7]}, "KD": distilled, "KD + decay": distilled,
                 "no validation": {"loss": [1.0]}}
    plots.curves(histories, ["val_hard_loss", "val_loss"], "x.png", "t", "validation cross-entropy")
    (ax,) = figures[0].axes
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == ["NoKD", "KD", "KD + decay"]
    # The Distiller arms show their label cross-entropy, not the T^2-scaled total: one scale with NoKD's.
    assert [list(line.get_ydata()) for line in lines] == [[1.1, 0.7], [0.9, 0.5], [0.9, 0.5]]
    styles = {(line.get_linestyle(), line.get_marker(), line.get_color()) for line in lines}
    assert len(styles) == 3  # two arms on the same points are still two different lines
    assert ax.get_ylabel() == "validation cross-entropy"


def test_comparison_ranks_arms_with_values_and_says_when_its_axis_is_zoomed(figures):
    labels = ["teacher", "NoKD", "KD", "DKD"]
    plots.comparison(labels, [0.97, 0.93, 0.94, 0.92], [0.0, 0.004, 0.003, 0.01], [1, 3, 3, 3], "c.png",
                     "Test accuracy", "test accuracy", reference="NoKD")
    (ax,) = figures[0].axes
    assert [t.get_text() for t in ax.get_yticklabels()] == ["DKD", "NoKD", "KD", "teacher"]  # best on top
    low, high = ax.get_xlim()
    assert low == 0 or "zoomed" in ax.get_xlabel(), (low, ax.get_xlabel())
    assert high <= 1.0
    texts = [t.get_text() for t in ax.texts]
    assert "0.9400 ± 0.0030 (3 runs)" in texts and "0.9700 (1 run)" in texts
    assert "±1 std" in ax.get_title()


def test_comparison_of_single_runs_draws_no_error_bars(figures):
    plots.comparison(["a", "b"], [0.5, 0.6], [0.0, 0.0], [1, 1], "c.png", "Test accuracy", "test accuracy")
    (ax,) = figures[0].axes
    assert "no error bars" in ax.get_title()
    assert not [c for c in ax.containers if getattr(c, "has_xerr", False)]


def _arm(val, test):
    return {"accuracy": test, "history": {"val_accuracy": [0.1, val]}}


def _results(nokd, kd, fm=None, nokd_long=None):
    results = {"nokd": [_arm(*nokd)], "kd": [_arm(*kd)]}
    if fm is not None:
        results.update(nokd_long=[_arm(*nokd_long)], fm=[_arm(*fm)])
    return results


def test_export_is_chosen_on_validation_with_labels_only_included():
    cfg = compress.Config()
    results = _results(nokd=(0.95, 0.90), kd=(0.94, 0.93))  # KD is better on test, worse on validation
    assert compress._export_choice(cfg, results) == "nokd"
    assert compress._export_choice(compress.Config(export_arm="best_distilled"), results) == "kd"
    assert compress._export_choice(compress.Config(export_arm="kd"), results) == "kd"
    labels = compress._labels(cfg)
    lines = compress._export_lines(cfg, results, labels, "nokd")
    assert lines[0].startswith("Exported student: NoKD") and "validation 0.9500" in lines[0]
    assert "No distilled arm beat labels-only training on validation" in lines[0]
    with pytest.raises(ValueError, match="export_arm='fm'"):
        compress.Config(export_arm="fm", function_matching=False).validate()


def test_report_says_first_when_the_exported_distilled_student_lost_to_labels_only():
    cfg = compress.Config(export_arm="best_distilled")
    results = _results(nokd=(0.90, 0.95), kd=(0.93, 0.91), fm=(0.96, 0.94), nokd_long=(0.95, 0.96))
    arm = compress._export_choice(cfg, results)
    assert arm == "fm"
    lines = compress._export_lines(cfg, results, compress._labels(cfg), arm)
    # fm is compared with labels-only training at its own (longer) budget.
    assert lines[0].startswith("WARNING: the exported distilled student") and "BELOW labels-only" in lines[0]
    assert "0.9600" in lines[0] and "-2.00 points" in lines[0]
    assert lines[1].startswith("Exported student: function matching")


def test_verdict_picks_the_distilled_arm_on_validation_and_pairs_seeds_for_its_error():
    cfg = compress.Config()
    # kd is best on validation, kd_decay best on test: the verdict goes by validation, as the export choice does.
    results = {"nokd": [_arm(0.95, 0.90), _arm(0.94, 0.91), _arm(0.93, 0.92)],
               "kd": [_arm(0.96, 0.93), _arm(0.95, 0.91), _arm(0.96, 0.925)],
               "kd_decay": [_arm(0.90, 0.99)] * 3}
    labels = compress._labels(cfg)
    verdict = compress._verdict(results, labels)
    assert verdict["arm"] == "kd" == compress._export_choice(compress.Config(export_arm="best_distilled"), results)
    assert verdict["method"] == labels["kd"] and verdict["chosen_on"] == "validation" and verdict["seeds"] == 3
    # By hand: per-seed differences 3, 0 and 0.5 points; mean 7/6; sample std sqrt(31/12); stderr that / sqrt(3).
    assert verdict["delta_vs_nokd_points"] == pytest.approx(7 / 6)
    assert verdict["delta_stderr_points"] == pytest.approx((31 / 12) ** 0.5 / 3 ** 0.5)
    assert verdict["won"] is True and verdict["baseline"] == "nokd"
    # validation: kd (0.96 + 0.95 + 0.96) / 3 against nokd (0.95 + 0.94 + 0.93) / 3
    assert verdict["val_delta_points"] == pytest.approx((2.87 - 2.82) / 3 * 100)
    sentence = compress._verdict_sentence(verdict, labels)
    assert sentence.startswith("Verdict: KD (T=4, alpha=0.5), the distilled arm with the best validation accuracy, "
                               "beat its labels-only baseline at the same budget, NoKD (labels only), on the test "
                               "set by 1.17 ± 0.93 points (mean of 3 seeds")
    # One seed: no standard error; a loss is said plainly; function matching is compared at its own budget.
    one = {"nokd": [_arm(0.90, 0.95)], "kd": [_arm(0.93, 0.91)], "nokd_long": [_arm(0.95, 0.96)],
           "fm": [_arm(0.96, 0.94)]}
    verdict = compress._verdict(one, labels)
    assert verdict["arm"] == "fm" and verdict["delta_stderr_points"] is None and verdict["won"] is False
    assert verdict["delta_vs_nokd_points"] == pytest.approx(-2.0)
    assert f"LOST to its labels-only baseline at the same budget, NoKD, {cfg.fm_epochs} epochs, on the test set by " \
           "2.00 points (1 seed)." in compress._verdict_sentence(verdict, labels)
    md = report.to_markdown({"title": "t", "lead": "The answer.", "summary": ["s"]})
    assert md.splitlines()[:4] == ["# t", "", "The answer.", ""]
