"""``mentor report RUN_DIR [RUN_DIR ...]``: one self-contained HTML page comparing runs.

Two tiny iris runs (2 seeds, scratch + kd) are made once for the module. Checked: every
section, no network references, plots as data URIs, both runs, the latency note, the
calibration numbers against a naive float64 ECE loop, runs that cannot be reloaded (a
tokens run, a broken checkpoint), bad input (exit 2, nothing written), and -- when
Chromium is installed -- a headless screenshot that is not blank.
"""

from __future__ import annotations

import base64
import json
import math
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from mentor.cli import app
from mentor.report.calibration import confusion_matrix, ece, reliability_bins
from mentor.report.compare import LATENCY_HINT, SECTIONS, evaluate_setting, open_runs

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "report_screenshot.sh"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _recipe(name: str, hidden: int) -> dict:
    return {"name": name, "data": {"source": "iris"},
            "teacher": {"model": "mlp", "hidden": [16], "train": {"epochs": 5}},
            "student": {"model": "mlp", "hidden": [hidden]},
            "methods": [{"name": "scratch"}, {"name": "kd", "temperature": 2.0, "alpha": 0.5}],
            "train": {"epochs": 5, "seeds": [0, 1]}}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two finished runs; the first has a latency.json, the second none."""
    from mentor.commands.latency import bench_run
    from mentor.commands.run import run_recipe

    root = tmp_path_factory.mktemp("runs")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        a = run_recipe(_recipe("iris-narrow", 4), root, progress=False)
        b = run_recipe(_recipe("iris-wide", 12), root, progress=False)
        bench_run(a, repeats=3)
    finally:
        torch.set_num_threads(threads)
    return a, b


def cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def page(runs, tmp_path_factory):
    out = tmp_path_factory.mktemp("page") / "compare.html"
    result = cli("report", *runs, "--out", out)
    assert result.exit_code == 0, result.output
    return out, out.read_text(encoding="utf-8")


def test_every_section_heading_is_on_the_page(page):
    _, html = page
    for title in SECTIONS:
        assert re.search(rf"<h2[^>]*>{re.escape(title)}</h2>", html), title
    for sub in ("Accuracy vs parameters", "Accuracy vs latency"):
        assert f"<h3>{sub}</h3>" in html


def test_page_is_self_contained(page):
    _, html = page
    lower = html.lower()
    for needle in ("http://", "https://", "<script", "<link", "@import", "url(", "<iframe"):
        assert needle not in lower, needle
    srcs = re.findall(r'src="([^"]*)"', html)
    assert len(srcs) >= 6  # curves, params, latency, 2 reliability, 2 confusion
    for src in srcs:
        assert src.startswith("data:image/png;base64,"), src[:60]
        assert base64.b64decode(src.split(",", 1)[1]).startswith(PNG_MAGIC)


def test_both_runs_and_their_methods_are_compared(page, runs):
    _, html = page
    table = html.split('id="leaderboard"', 1)[1].split('id="learning-curves"', 1)[0]
    for run in runs:
        # every run / setting / method row and the run's teacher row
        assert len(re.findall(rf'<td class="run">{re.escape(run.name)}</td>', table)) == 3
        assert f"<h3>{run.name} / default</h3>" in html  # calibration and confusion
    for method in ("scratch", "kd", "teacher"):
        assert f"<td>{method}</td>" in table
    results = json.loads((runs[0] / "results.json").read_text())
    kd = next(r for r in results["rows"] if r["method"] == "kd")
    mean, std = 100 * kd["test_accuracy_mean"], 100 * kd["test_accuracy_std"]
    assert f"{mean:.2f} ± {std:.2f} %" in table


def test_latency_plot_for_the_measured_run_and_a_hint_for_the_other(page, runs):
    _, html = page
    section = html.split('id="accuracy-params-latency"', 1)[1].split('id="calibration"', 1)[0]
    assert 'alt="test accuracy vs CPU latency"' in section
    assert LATENCY_HINT == "run `mentor bench --latency RUN_DIR` to add latency"
    hint = "run <code>mentor bench --latency RUN_DIR</code> to add latency"
    assert hint in section
    hint = section.split(hint, 1)[1]
    assert runs[1].name in hint and runs[0].name not in hint


def test_reloaded_students_match_the_run_and_a_naive_ece(runs):
    from mentor.runs.read import load_model
    from mentor.recipe import DataSpec

    (run,) = open_runs([runs[0]])
    ev = evaluate_setting(run, "default")
    assert ev.note is None and ev.teacher is not None and ev.teacher_note is None
    splits = DataSpec(source="iris").load()
    y = splits.test.y.numpy()
    lines = [json.loads(x) for x in (runs[0] / "metrics.jsonl").read_text().splitlines()]
    teacher, _ = load_model(runs[0] / "teacher" / "model.safetensors")
    with torch.no_grad():
        t_pred = teacher(splits.test.x).argmax(1).numpy()
    assert ev.teacher.accuracy[0] == pytest.approx(float((t_pred == y).mean()))
    for m in ev.students:
        row = next(r for r in run.results["rows"] if r["method"] == m.name)
        assert m.seeds == [0, 1] and not m.notes
        assert m.accuracy == pytest.approx(row["test_accuracies"], abs=1e-12)
        for seed, agree, got in zip(m.seeds, m.agreement, m.ece):
            line = next(x for x in lines if x["method"] == m.name and x["seed"] == seed)
            assert agree == pytest.approx(line["teacher_agreement"], abs=1e-12)
            path = runs[0] / "checkpoints" / "default" / m.name / f"seed{seed}" / \
                "student.safetensors"
            model, _ = load_model(path)
            with torch.no_grad():
                probs = torch.softmax(model(splits.test.x).double(), 1).numpy()
            assert got == pytest.approx(naive_ece(probs, y, 10), abs=1e-12)
        assert sum(m.bins["counts"]) == 2 * len(y)  # pooled over the two seeds
    method, seed = ev.best
    assert method == max(run.results["rows"], key=lambda r: r["test_accuracy_mean"])["method"]
    assert seed in (0, 1)


def test_runs_that_cannot_be_reloaded_get_a_note_not_a_crash(runs, tmp_path):
    tokens = tmp_path / "tokens-run"
    shutil.copytree(runs[0], tokens)
    results = json.loads((tokens / "results.json").read_text())
    results["task"] = "tokens"
    (tokens / "results.json").write_text(json.dumps(results))
    broken = tmp_path / "broken-run"
    shutil.copytree(runs[1], broken)
    (broken / "checkpoints/default/kd/seed1/student.safetensors").write_bytes(b"not a file")
    shutil.rmtree(broken / "teacher")
    (broken / "latency.json").write_text("{ nope")
    out = tmp_path / "page.html"
    result = cli("report", tokens, broken, "--out", out)
    assert result.exit_code == 0, result.output
    html = " ".join(out.read_text().split())
    assert "tokens-run is a tokens (language-model) run" in html
    assert "seed 1: checkpoints/default/kd/seed1/student.safetensors could not be rebuilt" \
        in html
    assert "no teacher trained in this run" in html
    assert "latency.json is not readable JSON" in html
    for title in SECTIONS:
        assert title in html


@pytest.mark.parametrize("case", ["missing", "partial", "no-results", "a-file", "out-dir"])
def test_bad_input_is_one_sentence_exit_2_and_writes_nothing(case, runs, tmp_path):
    out = tmp_path / "report.html"
    bad = {"missing": tmp_path / "nope",
           "partial": tmp_path / ".tiny-20260101-000000.partial",
           "no-results": tmp_path / "empty-run",
           "a-file": tmp_path / "results.json"}.get(case)
    needle = {"missing": "does not exist", "partial": "unfinished run",
              "no-results": "has no results.json", "a-file": "is a file",
              "out-dir": "is a folder"}[case]
    if case in ("partial", "no-results"):
        bad.mkdir()
    if case == "a-file":
        bad.write_text("{}")
    if case == "out-dir":
        out.mkdir()
        result = cli("report", runs[0], "--out", out)
    else:
        result = cli("report", runs[0], bad, "--out", out)
    assert result.exit_code == 2, result.output
    err = result.stderr
    assert "Traceback" not in err and err.count("error:") == 1, err
    assert needle in " ".join(err.split()), err
    assert not out.is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".report.html")]


def naive_ece(probs, labels, bins: int) -> float:
    """Reference ECE: a plain float64 loop over rows and equal-width bins (lo, hi]."""
    n = len(labels)
    conf, correct = [], []
    for row, label in zip(probs, labels):
        best = 0
        for k in range(len(row)):
            if float(row[k]) > float(row[best]):
                best = k
        conf.append(float(row[best]))
        correct.append(1.0 if best == int(label) else 0.0)
    total = 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        members = [i for i in range(n) if lo < conf[i] <= hi or (b == 0 and conf[i] == 0.0)]
        if not members:
            continue
        acc = sum(correct[i] for i in members) / len(members)
        avg = sum(conf[i] for i in members) / len(members)
        total += len(members) / n * abs(acc - avg)
    return total


@pytest.mark.parametrize("seed", range(6))
def test_ece_matches_a_naive_float64_loop(seed):
    rng = np.random.default_rng(seed)
    n, k = [(1, 2), (7, 3), (200, 10), (500, 4), (64, 100), (1000, 2)][seed]
    logits = rng.normal(scale=rng.uniform(0.1, 5.0), size=(n, k))
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    labels = rng.integers(0, k, size=n)
    for bins in (1, 5, 10, 15):
        assert ece(probs, labels, bins) == pytest.approx(naive_ece(probs, labels, bins),
                                                         abs=1e-12)


def test_ece_bin_edges_ties_and_hand_values():
    # confidences exactly on bin edges go to the lower bin: (0.3, 0.4] holds 0.4
    probs = np.array([[0.3, 0.3, 0.4], [0.5, 0.5, 0.0], [1.0, 0.0, 0.0], [0.1, 0.2, 0.7]])
    labels = np.array([2, 1, 0, 0])  # right, wrong (tie -> class 0), right, wrong
    b = reliability_bins(probs, labels, 10)
    assert b["counts"] == [0, 0, 0, 1, 1, 0, 1, 0, 0, 1]
    assert b["accuracy"][3] == 1.0 and b["accuracy"][4] == 0.0 and b["accuracy"][6] == 0.0
    assert b["accuracy"][0] is None and b["confidence"][0] is None
    want = (abs(1 - 0.4) + abs(0 - 0.5) + abs(0 - 0.7) + abs(1 - 1.0)) / 4
    assert b["ece"] == pytest.approx(want, abs=1e-15)
    assert ece(probs, labels) == pytest.approx(naive_ece(probs, labels, 10), abs=1e-15)
    # perfectly confident and right: 0; one bin: |accuracy - mean confidence|
    assert ece(np.eye(3), [0, 1, 2]) == 0.0
    assert ece(probs, labels, 1) == pytest.approx(abs(0.5 - (0.4 + 0.5 + 1 + 0.7) / 4))
    assert reliability_bins(np.zeros((0, 3)), [], 10)["ece"] == 0.0
    assert confusion_matrix([0, 1, 1, 2], [0, 2, 1, 2], 3).tolist() == \
        [[1, 0, 0], [0, 1, 1], [0, 0, 1]]


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed")
def test_headless_chromium_screenshot_is_not_blank(page, tmp_path):
    from matplotlib.image import imread

    html, _ = page
    png = tmp_path / "shot.png"
    proc = subprocess.run(["bash", str(SCRIPT), str(html), str(png), "1400", "3000"],
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert png.is_file() and png.read_bytes().startswith(PNG_MAGIC)
    img = imread(png)[::3, ::3, :3]
    assert img.shape[0] >= 900 and img.shape[1] >= 450
    colours = np.unique((img.reshape(-1, 3) * 255).round().astype(np.uint8), axis=0)
    assert len(colours) > 64, len(colours)
    not_white = (img < 0.95).any(axis=2).mean()
    assert not_white > 0.05, not_white
    assert math.isfinite(float(img.mean()))
