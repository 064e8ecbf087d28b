"""Crash-safe training: `mentor run` killed with SIGKILL (at random moments, and inside a
checkpoint write) and continued with `mentor run --resume` ends with the same weights as an
uninterrupted run, bit for bit, and the same results.

The recipe checkpoints after every step (``train.checkpoint_every: 1``), so most kills land
near or inside a checkpoint write. ``MENTOR_KILL_IN_CHECKPOINT=N`` (fault injection in
:mod:`mentor.engine.checkpoint`) kills the process inside its N-th write: after the new
checkpoint's tensors, before the ``state.json`` that makes them current. One more trial runs
with the default settings (a checkpoint at each epoch end only) and kills the teacher's
training: it resumes from the last epoch end.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from safetensors.torch import load_file

SRC = Path(__file__).resolve().parents[2] / "src"
RECIPE = {
    "name": "crash", "data": {"source": "iris"},
    "teacher": {"model": "mlp", "hidden": [16], "train": {"epochs": 15, "batch_size": 16}},
    "student": {"model": "mlp", "hidden": [8]},
    "methods": [{"name": "scratch"}, {"name": "kd", "temperature": 2.0, "alpha": 0.5}],
    "train": {"epochs": 12, "batch_size": 16, "seeds": [0, 1], "checkpoint_every": 1},
}
# checkpoint writes of one uninterrupted run: the teacher (no checkpoint_every of its own)
# one per epoch end, 4 students x 12 x 6 steps (one per step, the epoch-end one replacing the
# step's)
TOTAL_WRITES = 15 + 4 * 12 * 6


def _env(**extra):
    return {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1", **extra}


def _start(cwd: Path, *args, **env) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "mentor", "run", *args, "--quiet"],
                            cwd=cwd, env=_env(**env), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _finish(proc: subprocess.Popen) -> None:
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]


def _weights(run: Path) -> dict[str, dict]:
    files = sorted(run.glob("checkpoints/**/student.safetensors")) + [
        run / "teacher" / "model.safetensors"]
    return {str(f.relative_to(run)): load_file(str(f)) for f in files}


def _scores(run: Path) -> list:
    rows = json.loads((run / "results.json").read_text())["rows"]
    return [(r["method"], r["test_accuracies"], r["val_accuracy_mean"]) for r in rows]


def _resumed_steps(run: Path) -> int:
    """Steps the resumed process did not redo: it continued from checkpoints, not from
    scratch (a silent restart would also end with equal weights)."""
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    teacher = json.loads((run / "results.json").read_text())["teacher"]
    return sum(x["resumed_from_step"] for x in lines) + teacher.get("resumed_from_step", 0)


def _orphans(partial: Path) -> list[Path]:
    """Checkpoint tensor files that their folder's state.json does not name."""
    out = []
    for f in partial.rglob("ckpt-*.safetensors"):
        state = f.parent / "state.json"
        named = json.loads(state.read_text())["tensors"]["file"] if state.exists() else None
        if named != f.name:
            out.append(f)
    return out


def _partial(out: Path) -> Path:
    (p,) = [d for d in out.iterdir() if d.name.endswith(".partial")]
    return p


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("reference")
    (cwd / "crash.yaml").write_text(yaml.safe_dump(RECIPE))
    t0 = time.monotonic()
    _finish(_start(cwd, "crash.yaml", "--out", "runs"))
    (run,) = list((cwd / "runs").iterdir())
    return run, time.monotonic() - t0


def _assert_same(run: Path, reference: Path) -> None:
    got, want = _weights(run), _weights(reference)
    assert got.keys() == want.keys()
    for name in want:
        for k in want[name]:
            assert got[name][k].equal(want[name][k]), (name, k)
    assert _scores(run) == _scores(reference)


@pytest.mark.parametrize("trial", [0, 1])
def test_kill_inside_a_checkpoint_write_then_resume_is_bit_exact(tmp_path, reference, trial):
    n = random.Random(trial).randrange(5, TOTAL_WRITES - 5)
    (tmp_path / "crash.yaml").write_text(yaml.safe_dump(RECIPE))
    proc = _start(tmp_path, "crash.yaml", "--out", "runs", MENTOR_KILL_IN_CHECKPOINT=str(n))
    proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL  # it died inside write n
    partial = _partial(tmp_path / "runs")
    # the interrupted write left a checkpoint's tensors that no state.json names
    assert _orphans(partial), f"write {n} left no trace"
    _finish(_start(tmp_path, "--resume", str(partial)))
    (run,) = [d for d in (tmp_path / "runs").iterdir()]
    assert not run.name.startswith(".")
    _assert_same(run, reference[0])
    assert _resumed_steps(run) > 0


# checkpoint folders in the order a run creates them (setting 'default')
STAGES = ["teacher/state"] + [f"checkpoints/default/{m}/seed{s}"
                              for m in ("scratch", "kd") for s in (0, 1)]


def _kill_after(proc: subprocess.Popen, out: Path, stage: str, delay: float) -> None:
    """SIGKILL ``proc`` ``delay`` seconds after ``stage`` wrote its first checkpoint."""
    while not list(out.glob(f".*.partial/{stage}/state.json")):
        if proc.poll() is not None:
            return  # it finished (or failed: the caller's checks say which)
        time.sleep(0.01)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)


@pytest.mark.parametrize("trial", [0, 1])
def test_sigkill_at_random_moments_then_resume_is_bit_exact(tmp_path, reference, trial):
    """Two kills at random moments (the second during the resumed run), then a resume to
    the end."""
    rng = random.Random(100 + trial)
    (tmp_path / "crash.yaml").write_text(yaml.safe_dump(RECIPE))
    out = tmp_path / "runs"
    first, second = sorted(rng.sample(range(len(STAGES)), 2))
    proc = _start(tmp_path, "crash.yaml", "--out", "runs")
    _kill_after(proc, out, STAGES[first], rng.uniform(0.0, 0.3))
    partial = _partial(out)
    again = _start(tmp_path, "--resume", str(partial))
    _kill_after(again, out, STAGES[second], rng.uniform(0.0, 0.3))
    if partial.exists():  # (the resumed run may have finished before the kill)
        _finish(_start(tmp_path, "--resume", str(partial)))
    (run,) = [d for d in out.iterdir()]
    _assert_same(run, reference[0])
    assert _resumed_steps(run) > 0


def test_an_uninterrupted_run_reports_no_resumption(reference):
    assert _resumed_steps(reference[0]) == 0


def test_resume_refuses_a_finished_run_and_a_different_recipe(tmp_path, reference):
    env = _env()
    run = [sys.executable, "-m", "mentor", "run"]
    finished = subprocess.run([*run, "--resume", str(reference[0])], cwd=tmp_path, env=env,
                              capture_output=True, text=True)
    assert finished.returncode == 2 and "not an unfinished run folder" in finished.stderr
    partial = tmp_path / ".crash-x.partial"
    partial.mkdir()
    (partial / "input.yaml").write_text(yaml.safe_dump(RECIPE))
    other = dict(RECIPE, train={**RECIPE["train"], "epochs": 3})
    (tmp_path / "other.yaml").write_text(yaml.safe_dump(other))
    diff = subprocess.run([*run, "other.yaml", "--resume", str(partial)], cwd=tmp_path, env=env,
                          capture_output=True, text=True)
    assert diff.returncode == 2 and "different recipe" in diff.stderr, diff.stderr
    assert "Traceback" not in diff.stderr + finished.stderr
    assert partial.exists()  # a refused resume deletes nothing


# ------------------------------------------------------------------ the default setting

DEFAULT = {
    "name": "crashd", "data": {"source": "iris"},
    "teacher": {"model": "mlp", "hidden": [16], "train": {"epochs": 40, "batch_size": 16}},
    "student": {"model": "mlp", "hidden": [8]},
    "methods": [{"name": "kd", "temperature": 2.0, "alpha": 0.5}],
    "train": {"epochs": 8, "batch_size": 16, "seeds": [0]},  # checkpoint_every: default
}
STEPS = 6  # per epoch: 90 training rows in batches of 16


def test_default_settings_resume_from_the_last_epoch_end(tmp_path):
    """No checkpoint_every: the teacher's training is SIGKILLed soon after its first
    checkpoint; the resumed run continues from the last epoch end the teacher reached (not
    from step 0, not after the teacher) and ends bit for bit like an uninterrupted run."""
    (tmp_path / "d.yaml").write_text(yaml.safe_dump(DEFAULT))
    _finish(_start(tmp_path, "d.yaml", "--out", "reference"))
    (reference,) = list((tmp_path / "reference").iterdir())
    out = tmp_path / "runs"
    proc = _start(tmp_path, "d.yaml", "--out", "runs")
    # its first complete checkpoint (LATEST: the older layout, to show it fail there)
    while not [p for name in ("state.json", "LATEST")
               for p in out.glob(f".*.partial/teacher/state/{name}")]:
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        time.sleep(0.005)
    time.sleep(random.Random(7).uniform(0.0, 0.2))
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    partial = _partial(out)
    _finish(_start(tmp_path, "--resume", str(partial)))
    (run,) = list(out.iterdir())
    _assert_same(run, reference)
    resumed = json.loads((run / "results.json").read_text())["teacher"].get("resumed_from_step")
    total = DEFAULT["teacher"]["train"]["epochs"] * STEPS
    assert resumed and resumed % STEPS == 0 and 0 < resumed < total, (resumed, total)
