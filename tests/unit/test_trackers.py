"""Experiment trackers (``train.log_with``): what each tracker holds equals what the run
measured (metrics.jsonl), one tracker run per training, a resumed CSV log replaces the lost
points, the user's MLflow URI is respected, and a missing package is refused before anything
is written, naming the extra to install."""

from __future__ import annotations

import csv
import importlib.util
import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from mentor.runs import trackers as trk
from mentor.cli import app
from mentor.errors import MentorError
from mentor.commands.run import plan_run, run_recipe

RECIPE = {"name": "tracked", "data": {"source": "iris"},
          "teacher": {"model": "mlp", "hidden": [16], "train": {"epochs": 3}},
          "student": {"model": "mlp", "hidden": [8]},
          "methods": [{"name": "scratch"}, {"name": "kd", "temperature": 2.0}],
          "train": {"epochs": 3, "seeds": [0, 1], "log_with": ["csv", "tensorboard", "mlflow"]}}
STUDENTS = [f"default/{m}/seed{s}" for m in ("scratch", "kd") for s in (0, 1)]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return run_recipe(RECIPE, tmp_path_factory.mktemp("runs"), progress=False)


def _expected(run):
    """name -> {metric: [(step, value)]} from metrics.jsonl (what the run measured)."""
    out = {}
    for line in (run / "metrics.jsonl").read_text().splitlines():
        m = json.loads(line)
        h = m["history"]
        series = {k: list(zip(h["epoch"], h[k])) for k in ("train_loss", "val_accuracy")}
        last = h["epoch"][-1]
        series["test_accuracy"] = [(last, m["test_accuracy"])]
        series["teacher_agreement"] = [(last, m["teacher_agreement"])]
        out[f"{m['setting']}/{m['method']}/seed{m['seed']}"] = series
    return out


def _csv(path):
    got = {}
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            got.setdefault(r["name"], []).append((int(r["step"]), float(r["value"])))
    return got


def _close(a, b):
    assert [s for s, _ in a] == [s for s, _ in b], (a, b)
    assert all(math.isclose(x, y, rel_tol=1e-6, abs_tol=1e-7) for (_, x), (_, y) in zip(a, b))


def test_csv_holds_every_epoch_and_the_test_score(run):
    want = _expected(run)
    assert sorted(want) == sorted(STUDENTS)
    for name, series in want.items():
        got = _csv(run / "logs" / "csv" / f"{name}.csv")
        for metric, points in series.items():
            _close(got[metric], points)
        config = json.loads((run / "logs" / "csv" / f"{name}.config.json").read_text())
        assert config["seed"] == int(name[-1]) and config["train.epochs"] == 3
        assert config["method"] == name.split("/")[1]
    teacher = _csv(run / "logs" / "csv" / "teacher.csv")
    info = json.loads((run / "results.json").read_text())["teacher"]
    assert [s for s, _ in teacher["val_accuracy"]] == [1, 2, 3]
    assert teacher["test_accuracy"] == [(3, pytest.approx(info["test_accuracy"]))]


def test_tensorboard_events_hold_the_same_scalars(run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    for name, series in _expected(run).items():
        acc = EventAccumulator(str(run / "logs" / "tensorboard" / name))
        acc.Reload()
        for metric, points in series.items():
            _close([(e.step, e.value) for e in acc.Scalars(metric)], points)


def test_mlflow_runs_hold_the_same_metrics_and_parameters(run):
    import mlflow
    from mlflow.tracking import MlflowClient
    db = run / "logs" / "mlflow.db"
    assert db.is_file() and not mlflow.tracking.is_tracking_uri_set()  # restored after the run
    client = MlflowClient(tracking_uri=f"sqlite:///{db}")
    exp = client.get_experiment_by_name("tracked")
    runs = {r.info.run_name: r for r in client.search_runs([exp.experiment_id])}
    assert sorted(runs) == sorted(STUDENTS + ["teacher"])
    for name, series in _expected(run).items():
        r = runs[name]
        assert r.data.tags["mentor.run"] == run.name
        assert r.data.params["method"] == name.split("/")[1]
        for metric, points in series.items():
            hist = sorted((m.step, m.value) for m in client.get_metric_history(r.info.run_id,
                                                                               metric))
            _close(hist, points)


def test_no_trackers_write_no_logs(tmp_path):
    recipe = {**RECIPE, "methods": [{"name": "scratch"}],
              "train": {"epochs": 1, "seeds": [0]}}
    run = run_recipe(recipe, tmp_path, progress=False)
    assert not (run / "logs").exists()


def test_a_resumed_csv_log_replaces_the_lost_points(tmp_path):
    first = trk.CSVTracker("s/kd/seed0", tmp_path)
    first.start()
    for step in (1, 2, 3):  # step 3 was logged, then the process died before its checkpoint
        first.log({"val_accuracy": step / 10, "pl_thresholds": [0.9], "nan": float("nan")},
                  step=step)
    again = trk.CSVTracker("s/kd/seed0", tmp_path)
    again.start()
    again.log({"val_accuracy": 0.35}, step=3)
    again.log({"val_accuracy": 0.4}, step=4)
    assert _csv(tmp_path / "s" / "kd" / "seed0.csv") == {
        "val_accuracy": [(1, 0.1), (2, 0.2), (3, 0.35), (4, 0.4)]}


def test_a_user_mlflow_uri_is_used_and_kept(tmp_path, monkeypatch):
    import mlflow
    from mlflow.tracking import MlflowClient
    uri = f"sqlite:///{tmp_path / 'mine.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    recipe = {**RECIPE, "name": "mine", "teacher": None, "methods": [{"name": "scratch"}],
              "train": {"epochs": 2, "seeds": [0], "log_with": ["mlflow"]}}
    del recipe["teacher"]
    run = run_recipe(recipe, tmp_path / "runs", progress=False)
    assert not (run / "logs" / "mlflow.db").exists()
    assert mlflow.get_tracking_uri() == uri
    client = MlflowClient(tracking_uri=uri)
    (r,) = client.search_runs([client.get_experiment_by_name("mine").experiment_id])
    assert r.info.run_name == "default/scratch/seed0" and "val_accuracy" in r.data.metrics


@pytest.mark.parametrize("name, extra, module", [("tensorboard", "tensorboard", "tensorboard"),
                                                  ("mlflow", "mlflow", "sqlalchemy")])
def test_a_missing_tracker_package_names_the_extra(tmp_path, monkeypatch, name, extra, module):
    real = importlib.util.find_spec
    monkeypatch.setattr(trk.importlib.util, "find_spec",
                        lambda m, *a: None if m == module else real(m, *a))
    recipe = {**RECIPE, "train": {**RECIPE["train"], "log_with": ["csv", name]}}
    with pytest.raises(MentorError, match=rf"train.log_with: tracker '{name}' needs the "
                       rf"package\(s\) {module}.*pip install 'mentor\[{extra}\]'"):
        plan_run(recipe)
    (tmp_path / "r.yaml").write_text(json.dumps(recipe))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["run", "r.yaml", "--out", "runs", "--quiet"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.stderr.count("error:") == 1 and f"mentor[{extra}]" in result.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_an_unknown_tracker_is_a_recipe_error():
    recipe = {**RECIPE, "train": {**RECIPE["train"], "log_with": ["wandb"]}}
    with pytest.raises(MentorError, match=r"train.log_with\[0\] must be one of 'tensorboard', "
                       r"'mlflow' or 'csv', got 'wandb'"):
        plan_run(recipe)


def test_flat_config_flattens_to_tracker_types():
    assert trk.flat_config({"a": {"b": 1, "c": [1, 2]}, "d": None, "e": True}) == {
        "a.b": 1, "a.c": "[1, 2]", "d": "none", "e": True}


def test_a_failed_run_ends_its_trackers_and_marks_mlflow_failed(tmp_path, monkeypatch):
    import mlflow
    from mlflow.tracking import MlflowClient

    from mentor.errors import TrainingFault
    uri = f"sqlite:///{tmp_path / 'mine.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    recipe = {"name": "diverges", "data": {"source": "iris"}, "methods": [{"name": "scratch"}],
              "student": {"model": "mlp", "hidden": [8]},
              "train": {"epochs": 2, "seeds": [0], "lr": 1e30, "log_with": ["mlflow", "csv"]}}
    with pytest.raises(TrainingFault):
        run_recipe(recipe, tmp_path / "runs", progress=False)
    assert mlflow.active_run() is None  # the next run in this process can start
    client = MlflowClient(tracking_uri=uri)
    (r,) = client.search_runs([client.get_experiment_by_name("diverges").experiment_id])
    assert r.info.status == "FAILED"
    assert not any((tmp_path / "runs").iterdir())  # a failed new run leaves no folder


def test_each_teacher_of_a_run_has_its_own_tracker_run(tmp_path):
    """Settings with different teachers: one log per teacher folder (teacher, teacher-1),
    none overwriting another."""
    recipe = {"name": "two", "data": {"source": "iris"},
              "teacher": {"model": "mlp", "hidden": [16], "train": {"epochs": 2}},
              "student": {"model": "mlp", "hidden": [8]}, "methods": [{"name": "kd"}],
              "settings": [{"name": "a"}, {"name": "b", "teacher": {
                  "model": "mlp", "hidden": [12], "train": {"epochs": 3}}}],
              "train": {"epochs": 2, "seeds": [0], "log_with": ["csv"]}}
    run = run_recipe(recipe, tmp_path, progress=False)
    logs = run / "logs" / "csv"
    assert [s for s, _ in _csv(logs / "teacher.csv")["val_accuracy"]] == [1, 2]
    assert [s for s, _ in _csv(logs / "teacher-1.csv")["val_accuracy"]] == [1, 2, 3]
    assert json.loads((logs / "teacher-1.config.json").read_text())["teacher.hidden"] == "[12]"
    # the run records each teacher's folder, where export, report and bench find it
    from mentor.runs.read import teacher_checkpoint
    results = json.loads((run / "results.json").read_text())
    assert [s["teacher"]["folder"] for s in results["settings"]] == ["teacher", "teacher-1"]
    assert teacher_checkpoint(run, results, "b") == run / "teacher-1" / "model.safetensors"
    for s in results["settings"]:  # a run folder written before the folder was recorded
        del s["teacher"]["folder"]
    assert teacher_checkpoint(run, results, "b") == run / "teacher-1" / "model.safetensors"


def test_a_resumed_run_continues_its_tracker_runs(tmp_path):
    """A run killed inside a checkpoint write (teacher done, the student in its 2nd epoch)
    and resumed with --resume: the CSV log holds every epoch once, and MLflow has one run per
    training, the student's continued (not a second one) with every epoch's point."""
    from mlflow.tracking import MlflowClient
    recipe = {"name": "again", "data": {"source": "iris"},
              "teacher": {"model": "mlp", "hidden": [16], "train": {"epochs": 3,
                                                                    "batch_size": 16}},
              "student": {"model": "mlp", "hidden": [8]}, "methods": [{"name": "kd"}],
              "train": {"epochs": 4, "batch_size": 16, "seeds": [0], "checkpoint_every": 1,
                        "log_with": ["csv", "mlflow"]}}
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(PYTHONPATH=str(Path(__file__).resolve().parents[2] / "src"),
               OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "mentor", "run", "--quiet"]
    # the teacher (no checkpoint_every of its own) writes 1 checkpoint, the student one per step
    # (6 an epoch): write 10 is in the student's 2nd epoch
    killed = subprocess.run([*cmd, "r.yaml", "--out", "runs"], cwd=tmp_path, timeout=300,
                            env={**env, "MENTOR_KILL_IN_CHECKPOINT": "10"},
                            capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    (partial,) = (tmp_path / "runs").iterdir()
    done = subprocess.run([*cmd, "--resume", str(partial)], cwd=tmp_path, timeout=300, env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    (run,) = (tmp_path / "runs").iterdir()
    student = _csv(run / "logs" / "csv" / "default" / "kd" / "seed0.csv")
    assert [s for s, _ in student["val_accuracy"]] == [1, 2, 3, 4]
    client = MlflowClient(tracking_uri=f"sqlite:///{run / 'logs' / 'mlflow.db'}")
    exp = client.get_experiment_by_name("again")
    runs = client.search_runs([exp.experiment_id])
    assert sorted(r.info.run_name for r in runs) == ["default/kd/seed0", "teacher"]
    (r,) = [r for r in runs if r.info.run_name == "default/kd/seed0"]
    steps = sorted({m.step for m in client.get_metric_history(r.info.run_id, "val_accuracy")})
    assert steps == [1, 2, 3, 4] and r.info.status == "FINISHED"
