"""Tests for mentor.report: leaderboard table, plots and the HTML report."""

from __future__ import annotations

import math
import re

import pytest
from rich.console import Console

from mentor.report import leaderboard_table, write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

SETTINGS = [
    {"name": "compress", "description": "student MLP 64-32-10, all labels"},
    {"name": "semi", "description": "student MLP 64-32-10, 10% labels <& friends>"},
]
# Listed in an order that is NOT the accuracy order, so sorting is exercised.
METHODS = {
    "compress": {"scratch": 0.91, "kd": 0.95, "pseudo": 0.93},
    "semi": {"scratch": 0.80, "kd": 0.86, "pseudo": 0.89},
}
SEEDS = [0, 1, 2]


def _fake(name: str = "digits-default"):
    rows, histories = [], []
    for setting in SETTINGS:
        s = setting["name"]
        for method, acc in METHODS[s].items():
            accs = [acc - 0.004, acc, acc + 0.004]
            mean = sum(accs) / 3
            std = math.sqrt(sum((a - mean) ** 2 for a in accs) / 3)
            rows.append({
                "setting": s, "method": method,
                "description": f"{method} on {s}",
                "params": 2410, "seeds": SEEDS,
                "test_accuracy_mean": mean, "test_accuracy_std": std,
                "test_accuracies": accs,
                "val_accuracy_mean": mean + 0.01,
                "teacher_agreement_mean": mean - 0.01,
                "speedup": 7.3,
            })
            for seed in SEEDS:
                epochs = list(range(1, 11))
                histories.append({
                    "setting": s, "method": method, "seed": seed,
                    "epoch": epochs,
                    "val_accuracy": [acc * (1 - 0.5 ** e) + 0.003 * seed for e in epochs],
                    "train_loss": [1.0 / e for e in epochs],
                })
    results = {
        "name": name,
        "created": "2026-11-27T22:00:00Z",
        "teacher": {"description": "MLP 64-256-256-10 trained on all train labels",
                    "params": 85002, "test_accuracy": 0.978, "val_accuracy": 0.98},
        "settings": SETTINGS,
        "rows": rows,
    }
    return results, histories


def _render(table) -> str:
    console = Console(record=True, width=140)
    console.print(table)
    return console.export_text()


def test_write_report_self_contained(tmp_path):
    results, histories = _fake()
    out = write_report(tmp_path, results, histories)

    html_path = tmp_path / "report.html"
    assert out == html_path
    assert html_path.exists()
    text = html_path.read_text(encoding="utf-8")

    assert "digits-default" in text
    for methods in METHODS.values():
        for method in methods:
            assert method in text
    # Descriptions appear html-escaped.
    from html import escape
    for setting in SETTINGS:
        assert escape(setting["description"]) in text
    assert "<& friends>" not in text
    assert text.count("data:image/png;base64,") >= 2
    assert "http://" not in text and "https://" not in text
    assert "<script" not in text.lower()

    for name in ("learning_curves.png", "accuracy_vs_params.png"):
        png = tmp_path / "plots" / name
        assert png.exists()
        assert png.read_bytes()[:8] == PNG_MAGIC

    # Atomic writes leave no temp files behind.
    leftovers = [p.name for p in tmp_path.rglob("*")
                 if p.name.endswith(".tmp") or p.name.startswith(".")]
    assert leftovers == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plots", "report.html"]
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == [
        "accuracy_vs_params.png", "learning_curves.png"]


def test_html_leaderboard_sorted_and_best_marked(tmp_path):
    results, histories = _fake()
    text = write_report(tmp_path, results, histories).read_text(encoding="utf-8")
    for setting in SETTINGS:
        section = text.split(f'id="setting-{setting["name"]}"', 1)[1].split("</section>", 1)[0]
        ranked = sorted(METHODS[setting["name"]], key=METHODS[setting["name"]].get, reverse=True)
        positions = [section.index(f"<td>{m}</td>") for m in ranked]
        assert positions == sorted(positions)
        best_row = section.split('<tr class="best">', 1)[1].split("</tr>", 1)[0]
        assert f"<td>{ranked[0]}</td>" in best_row


def test_write_report_overwrites_and_tolerates_missing_keys(tmp_path):
    results, histories = _fake()
    write_report(tmp_path, results, histories)
    sparse = {"name": "sparse", "rows": [{"setting": "x", "method": "m"}]}
    text = write_report(tmp_path, sparse, []).read_text(encoding="utf-8")
    assert "sparse" in text and "digits-default" not in text
    assert text.count("data:image/png;base64,") >= 2
    for name in ("learning_curves.png", "accuracy_vs_params.png"):
        assert (tmp_path / "plots" / name).read_bytes()[:8] == PNG_MAGIC
    assert not [p for p in tmp_path.rglob("*.tmp")]


def test_leaderboard_table_renders_sorted():
    results, _ = _fake()
    text = _render(leaderboard_table(results))
    assert "digits-default" in text
    assert "±" in text
    assert "95.00 ± 0.33 %" in text
    assert "2,410" in text
    assert "7.3×" in text
    assert "MLP 64-256-256-10" in text and "97.80" in text
    for setting in SETTINGS:
        assert setting["description"] in text

    lines = text.splitlines()
    for s, accs in METHODS.items():
        ranked = sorted(accs, key=accs.get, reverse=True)
        idx = [next(i for i, line in enumerate(lines)
                    if re.search(rf"\b{s}\b.*\b{m}\b", line)) for m in ranked]
        assert idx == sorted(idx), (s, ranked, idx)
    # Settings appear in declared order.
    first = {s: next(i for i, line in enumerate(lines) if re.search(rf"│\s*{s}\b", line))
             for s in METHODS}
    assert first["compress"] < first["semi"]


def test_leaderboard_table_best_row_bold():
    results, _ = _fake()
    table = leaderboard_table(results)
    bold_rows = [i for i, row in enumerate(table.rows) if row.style == "bold"]
    assert len(bold_rows) == len(SETTINGS)


@pytest.mark.parametrize("results", [{}, {"name": "empty", "rows": []},
                                     {"rows": [{"setting": "s", "method": "[red]m"}]}])
def test_leaderboard_table_tolerates_sparse_input(results):
    text = _render(leaderboard_table(results))
    assert "Leaderboard" in text
    if results.get("rows"):
        assert "[red]m" in text


def test_report_plots_accuracy_vs_the_leaderboards_latency(tmp_path):
    """Rows that carry the leaderboard's latency (teacher and student on the test split) get
    an accuracy-vs-latency figure: one point per row at its own student latency, the teacher
    as a star per setting; without latency there is no such figure."""
    from mentor.report.html import leaderboard_latency
    results, histories = _fake()
    assert leaderboard_latency(results) is None
    html = write_report(tmp_path / "plain", results, histories).read_text()
    assert "vs CPU latency" not in html
    for i, row in enumerate(results["rows"]):
        row["latency"] = {"teacher_latency_s": 1e-3, "student_latency_s": 1e-5 * (i + 1),
                          "speedup": 100 / (i + 1), "batch": 359, "threads": 1}
    results["settings"] = [{**s, "teacher": {"test_accuracy": 0.97}} for s in SETTINGS]
    got = leaderboard_latency(results)
    assert got["batches"] == ["359"] and got["threads"] == 1
    assert [s["batches"]["359"]["latency_s"] for s in got["students"]] == [
        1e-5 * (i + 1) for i in range(len(results["rows"]))]
    assert len(got["teachers"]) == 2 and got["teachers"][0]["test_accuracy"] == 0.97
    out = tmp_path / "timed"
    html = write_report(out, results, histories).read_text()
    assert 'alt="test accuracy vs CPU latency"' in html
    assert (out / "plots" / "accuracy_vs_latency.png").stat().st_size > 1000


def test_the_speedup_column_is_measured_for_every_method(tmp_path, monkeypatch):
    """Each leaderboard row's speed-up is its own method's student against the teacher, not
    the first method's copied to every row."""
    import mentor.commands.run as runner
    calls = []

    def fake_speedup(teacher_fn, student, x, budget_s=None):
        calls.append(student)
        return {"teacher_latency_s": 1.0, "student_latency_s": 1.0 / len(calls),
                "speedup": float(len(calls)), "batch": len(x), "threads": 1}
    monkeypatch.setattr(runner, "speedup", fake_speedup)
    recipe = {"name": "lat", "data": {"source": "iris"},
              "teacher": {"model": "mlp", "hidden": [16], "train": {"epochs": 2}},
              "student": {"model": "mlp", "hidden": [8]},
              "methods": [{"name": "scratch"}, {"name": "kd"}, {"name": "dkd"}],
              "train": {"epochs": 2, "seeds": [0, 1]}}
    import json
    run = runner.run_recipe(recipe, tmp_path, progress=False)
    rows = json.loads((run / "results.json").read_text())["rows"]
    assert len(calls) == 3  # once per method (its first seed), not once per setting
    assert [r["speedup"] for r in rows] == [1.0, 2.0, 3.0]


@pytest.mark.parametrize("lo, hi", [(0.013, 0.027), (0.04, 0.9), (0.01, 1.0), (1e-3, 100.0),
                                    (1e-6, 1e6), (0.2, 0.21)])
def test_latency_axis_ticks_are_few_distinct_and_inside_the_range(lo, hi):
    """A latency axis under a decade used to get a crowd of overlapping labels
    (0.014 0.016 0.018 0.02 ...): now 2 to 6 distinct ticks inside the range, and when 1-2-5
    steps are too many, decades only."""
    from mentor.report.plots import _log_ticks
    ticks = _log_ticks(lo, hi)
    assert 2 <= len(ticks) <= 6 and ticks == sorted(set(ticks))
    assert all(lo <= t <= hi for t in ticks)
    labels = [f"{t:.2g}" for t in ticks]
    assert len(set(labels)) == len(labels)
    if hi / lo > 1e3:
        assert all(f"{t:.0e}".startswith("1e") for t in ticks), ticks


def test_latency_markers_follow_the_pages_setting_order(tmp_path, monkeypatch):
    """On a page whose parameters plot gave setting 'b' the second marker, the latency plot
    gives 'b' the second marker too, even when 'a' has no latency measurement."""
    from matplotlib.axes import Axes

    from mentor.report.plots import _MARKERS, accuracy_vs_latency
    fmts = []
    errorbar = Axes.errorbar

    def spy(self, *args, **kwargs):
        fmts.append(kwargs.get("fmt"))
        return errorbar(self, *args, **kwargs)
    monkeypatch.setattr(Axes, "errorbar", spy)
    latency = {"batches": ["1"], "threads": 1, "teachers": [], "students": [
        {"setting": "b", "method": "kd", "test_accuracy_mean": 0.9, "test_accuracy_std": 0.01,
         "batches": {"1": {"latency_s": 1e-5}}}]}
    accuracy_vs_latency({"rows": []}, latency, tmp_path / "a.png", settings=["a", "b"])
    accuracy_vs_latency({"rows": []}, latency, tmp_path / "b.png")
    assert fmts == [_MARKERS[1], _MARKERS[0]]
