"""``mentor bench --latency RUN_DIR``: latency.json (teacher and one student per row at batch
1 and 256), the table, the plot, and that it measures with the leaderboard's function. No
assertions on how fast anything is: wall-clock numbers only have to be recorded, and each
recorded speed-up must be the ratio that function measured for that student."""

from __future__ import annotations

import json
import statistics

import pytest
from typer.testing import CliRunner

import mentor.latency
import mentor.commands.run
from mentor.cli import app

from runfolder import tiny_run


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return tiny_run(tmp_path_factory.mktemp("runs"),
                    [{"name": "scratch"}, {"name": "kd", "temperature": 2.0, "alpha": 0.5},
                     {"name": "dho"}])


@pytest.fixture(scope="module")
def bench(run, tmp_path_factory):
    """The CLI once, recording the calls that go through ``mentor.latency.speedup``: the
    batch size of each, and what each returned."""
    calls, measured = [], []
    real = mentor.latency.speedup

    def recording(*a, **k):
        calls.append(len(a[2]))
        measured.append(real(*a, **k))
        return measured[-1]
    mp = pytest.MonkeyPatch()
    mp.setattr(mentor.latency, "speedup", recording)
    cwd = tmp_path_factory.mktemp("cwd")
    mp.chdir(cwd)
    try:
        result = CliRunner().invoke(app, ["bench", "--latency", str(run), "--threads", "1"])
    finally:
        mp.undo()
    return result, calls, cwd, measured


def test_latency_json_has_medians_for_teacher_and_students(run, bench):
    result, _, _, measured = bench
    assert result.exit_code == 0, result.output
    data = json.loads((run / "latency.json").read_text())
    results = json.loads((run / "results.json").read_text())
    assert data["threads"] == 1 and data["batches"] == [1, 256]
    assert data["warmup"] >= 1 and data["repeats"] >= 1 and "median" in data["method"]
    (teacher,) = data["teachers"]
    assert teacher["path"] == "teacher/model.safetensors"
    assert teacher["params"] == results["teacher"]["params"]
    students = data["students"]
    assert [(s["setting"], s["method"]) for s in students] == \
        [(r["setting"], r["method"]) for r in results["rows"]]
    for s, row in zip(students, results["rows"]):
        assert s["seed"] in row["seeds"] and s["teacher"] == "teacher"
        assert s["test_accuracy_mean"] == row["test_accuracy_mean"]
    for entry in [teacher] + students:
        for b in ("1", "256"):
            e = entry["batches"][b]
            assert e["latency_s"] > 0
            assert e["throughput_rows_s"] == pytest.approx(int(b) / e["latency_s"])
    # each student's speed-up is teacher / student latency of its own interleaved call of
    # mentor.latency.speedup (the calls run batch by batch, student by student), and the
    # teacher's latency is the median of the teacher times of those calls
    for i, b in enumerate(("1", "256")):
        calls = measured[i * len(students):(i + 1) * len(students)]
        for s, m in zip(students, calls, strict=True):
            assert m["batch"] == int(b)
            assert s["batches"][b]["latency_s"] == m["student_latency_s"]
            assert s["batches"][b]["speedup"] == pytest.approx(
                m["teacher_latency_s"] / m["student_latency_s"])
        assert teacher["batches"][b]["latency_s"] == pytest.approx(
            statistics.median(m["teacher_latency_s"] for m in calls))


def test_table_and_plot(run, bench):
    result, _, _, _ = bench
    out = " ".join(result.output.split())
    assert "teacher (default)" in out and "default / dho / seed" in out and "batch 256" in out
    png = run / "plots" / "accuracy_vs_latency.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_and_leaderboard_share_the_speedup_function(bench):
    _, calls, _, _ = bench
    assert mentor.commands.run.speedup is mentor.latency.speedup  # the leaderboard's column
    assert sorted(set(calls)) == [1, 256] and len(calls) == 2 * 3  # per batch, per student


def test_no_suite_is_run(bench):
    result, _, cwd, _ = bench
    assert list(cwd.iterdir()) == []  # `mentor bench` alone writes runs/ here
    assert "suite" not in result.output.lower()


def test_bad_run_folder_exits_2(tmp_path):
    r = CliRunner().invoke(app, ["bench", "--latency", str(tmp_path / "nope")])
    assert r.exit_code == 2 and r.stderr.count("error:") == 1, r.output
    assert "--latency: " in r.stderr and "does not exist" in r.stderr
    partial = tmp_path / ".x-1.partial"
    partial.mkdir()
    r = CliRunner().invoke(app, ["bench", "--latency", str(partial)])
    assert r.exit_code == 2 and "unfinished run" in r.stderr, r.output
    assert list(partial.iterdir()) == []


class _Clock:
    """A fake ``time.perf_counter``: each call of a timed model moves it by ``step``."""

    def __init__(self, step: float):
        self.now, self.step, self.calls = 0.0, step, 0

    def __call__(self) -> float:
        return self.now

    def model(self, x):
        self.calls += 1
        self.now += self.step
        return x


@pytest.mark.parametrize("step,timed", [(0.3, mentor.latency.MIN_REPEATS), (0.001, 25),
                                        (0.08, 12)])
def test_a_time_budget_times_fewer_calls_of_a_slow_model(monkeypatch, step, timed):
    """The leaderboard's speed-up gives each model about ``budget_s`` seconds of timed calls
    per round: a slow teacher (a CNN on 512 images) is timed 5 times, not 25, and a fast one
    keeps all 25 (the digits figures in the docs were measured so)."""
    clock = _Clock(step)
    monkeypatch.setattr(mentor.latency.time, "perf_counter", clock)
    lat = mentor.latency.median_latency(clock.model, [0.0], repeats=25, budget_s=1.0)
    assert clock.calls == mentor.latency.WARMUP + timed
    assert lat == pytest.approx(step)
    clock.calls = 0
    mentor.latency.median_latency(clock.model, [0.0], repeats=25)
    assert clock.calls == mentor.latency.WARMUP + 25
