"""Model selection reads the validation split only (mentor.selection): the default student
of `mentor export`, the highlighted leaderboard row, the method whose confusion matrix
`mentor report` shows and the highlighted selector of `mentor active`'s report all follow
the validation accuracy, whatever the test accuracies say (here they say the opposite, and
then nothing at all)."""

from __future__ import annotations

import json
import math

import pytest

from mentor.report._fmt import best_index as leaderboard_best, grouped_rows
from mentor.report.active_html import _table as active_table
from mentor.report.compare import _leaderboard, evaluate_setting, open_runs
from mentor.report.table import leaderboard_table
from mentor.runs.read import choose_student
from mentor.selection import best_index, best_row

from runfolder import tiny_run


def _rows(test, val):
    return [{"setting": "s", "method": m, "test_accuracy_mean": t, "val_accuracy_mean": v,
             "seeds": [0]} for m, t, v in zip("abc", test, val)]


def test_best_is_the_best_validation_accuracy_first_on_ties():
    rows = _rows([0.99, 0.50, 0.70], [0.60, 0.90, 0.90])
    assert best_index(rows) == 1 and best_row(rows)["method"] == "b"
    assert best_index(_rows([0.9] * 3, [None, float("nan"), True])) is None
    assert best_row(_rows([0.9] * 3, [None, None, None]))["method"] == "a"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny finished run whose results.json is edited so that validation and test
    accuracies rank the methods in opposite orders."""
    folder = tiny_run(tmp_path_factory.mktemp("sel"))
    path = folder / "results.json"
    results = json.loads(path.read_text())
    (kd,) = [r for r in results["rows"] if r["method"] == "kd"]
    (scratch,) = [r for r in results["rows"] if r["method"] == "scratch"]
    kd["val_accuracy_mean"], kd["test_accuracy_mean"] = 0.99, 0.10
    scratch["val_accuracy_mean"], scratch["test_accuracy_mean"] = 0.20, 0.95
    path.write_text(json.dumps(results))
    return folder


def _poison_test(folder):
    path = folder / "results.json"
    results = json.loads(path.read_text())
    for r in results["rows"]:
        r["test_accuracy_mean"] = float("nan")
    return results


def test_export_default_student_is_chosen_on_validation(run):
    results = json.loads((run / "results.json").read_text())
    choice = choose_student(run, results)
    assert choice.method == "kd", choice
    assert "val_accuracy_mean" in choice.reason and "test" not in choice.reason
    assert choose_student(run, _poison_test(run)).method == "kd"


def test_leaderboards_highlight_the_validation_choice(run):
    results = json.loads((run / "results.json").read_text())
    (_, rows), = grouped_rows(results)
    assert [r["method"] for r in rows] == ["scratch", "kd"]  # displayed by test accuracy
    assert rows[leaderboard_best(rows)]["method"] == "kd"
    table = leaderboard_table(results)
    bold = [i for i, r in enumerate(table.rows) if r.style == "bold"]
    assert bold == [1]  # the kd row, second in display order
    html = _leaderboard(open_runs([run]))
    (best_line,) = [line for line in html.splitlines() if 'class="best' in line]
    assert "<td>kd</td>" in best_line


def test_report_confusion_matrix_student_is_chosen_on_validation(run):
    (r,) = open_runs([run])
    ev = evaluate_setting(r, "default")
    assert ev.best[0] == "kd" and "validation" in ev.best_reason


def test_active_report_highlights_the_validation_choice():
    rows = [{"selector": s, "round": 1, "labels": 20, "teacher_queries": 0, "cost": 0.0,
             "test_accuracy_mean": t, "test_accuracy_std": 0.0, "val_accuracy_mean": v,
             "seeds": 3} for s, t, v in (("random", 0.9, 0.5), ("margin", 0.6, 0.8))]
    (best,) = [line for line in active_table(rows).splitlines() if 'class="best"' in line]
    assert "margin" in best
    for r in rows:
        r["test_accuracy_mean"] = math.nan if r["selector"] == "margin" else 1.0
    (best,) = [line for line in active_table(rows).splitlines() if 'class="best"' in line]
    assert "margin" in best
