"""One writer per run folder: the run that creates a ``.partial`` folder, or the one
``mentor run --resume`` that continues it, holds the folder's lock (the label store's
``flock``, :func:`mentor._util.locks.folder_lock`) until the folder is published. A second writer
exits with code 2 and one sentence naming the holder's pid and touches nothing; the lock of a
SIGKILLed process does not block; a folder is published only complete.

The run that must be refused is caught holding the lock and frozen with SIGSTOP, so no
timing is assumed; every subprocess has a timeout.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from safetensors.torch import load_file

from mentor._util import locks
from mentor.errors import MentorError
from mentor.runs.folder import claim_run_dir, finish_run_dir

SRC = Path(__file__).resolve().parents[2] / "src"
GUARD_S = 300  # against a hung process only
RECIPE = {
    "name": "lock", "data": {"source": "iris"},
    "teacher": {"model": "mlp", "hidden": [16], "train": {"epochs": 30, "batch_size": 16}},
    "student": {"model": "mlp", "hidden": [8]},
    "methods": [{"name": "scratch"}, {"name": "kd", "temperature": 2.0, "alpha": 0.5}],
    "train": {"epochs": 10, "batch_size": 16, "seeds": [0]},
}


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(SRC), "COLUMNS": "200", "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1"}


def _start(cwd: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "mentor", "run", *args, "--quiet"], cwd=cwd,
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _wait(proc: subprocess.Popen) -> tuple[int, str]:
    try:
        _, err = proc.communicate(timeout=GUARD_S)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
            proc.kill()
            proc.wait()
    return proc.returncode, err


def _weights(run: Path) -> dict[str, dict]:
    files = sorted(run.glob("checkpoints/**/student.safetensors")) + [
        run / "teacher" / "model.safetensors"]
    return {str(f.relative_to(run)): load_file(str(f)) for f in files}


def _same_as(run: Path, reference: Path) -> None:
    got, want = _weights(run), _weights(reference)
    assert got.keys() == want.keys()
    for name in want:
        for k in want[name]:
            assert got[name][k].equal(want[name][k]), (name, k)
    rows = [json.loads((r / "results.json").read_text())["rows"] for r in (run, reference)]
    assert [(r["method"], r["test_accuracies"]) for r in rows[0]] == \
        [(r["method"], r["test_accuracies"]) for r in rows[1]]
    for f in ("input.yaml", "results.json", "metrics.jsonl", "teacher/model.safetensors"):
        assert (run / f).is_file(), f  # published complete
    assert not (run / ".lock").exists()


def _only_run(out: Path) -> Path:
    """The one folder under ``out``: a finished run, no partial folder, no second copy."""
    found = sorted(p.name for p in out.iterdir())
    assert len(found) == 1 and not found[0].startswith("."), found
    return out / found[0]


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in folder.rglob("*") if p.is_file()}


def _started(out: Path, proc: subprocess.Popen) -> Path:
    """The partial folder of ``proc``'s run once its teacher has a checkpoint."""
    deadline = time.monotonic() + GUARD_S
    while True:
        found = [p for p in out.glob(".*.partial") if any((p / "teacher" / "state").glob("*"))]
        if found:
            return found[0]
        assert proc.poll() is None, ("the run ended before it was seen running",
                                     proc.communicate()[1][-2000:])
        assert time.monotonic() < deadline, "the run never wrote a checkpoint"
        time.sleep(0.002)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    cwd = tmp_path_factory.mktemp("reference")
    (cwd / "lock.yaml").write_text(yaml.safe_dump(RECIPE))
    code, err = _wait(_start(cwd, "lock.yaml", "--out", "runs"))
    assert code == 0, err[-3000:]
    return _only_run(cwd / "runs")


def _refusal(err: str, pid: int | None = None) -> None:
    assert "Traceback" not in err and err.startswith("error: ") and err.count("error:") == 1, err
    text = " ".join(err.split())
    assert "being written by another mentor process" in text, err
    assert "one writer per run folder" in text, err
    if pid is not None:
        assert f"pid {pid}" in text, err


def test_a_resume_of_a_running_run_is_refused(tmp_path, reference):
    """`mentor run --resume P` while the run that made P is going (frozen with SIGSTOP, so
    it is certainly going): exit 2 naming it, nothing touched; the run then finishes like an
    uninterrupted one, and it is the only run folder."""
    (tmp_path / "lock.yaml").write_text(yaml.safe_dump(RECIPE))
    out = tmp_path / "runs"
    first = _start(tmp_path, "lock.yaml", "--out", "runs")
    try:
        partial = _started(out, first)
        os.kill(first.pid, signal.SIGSTOP)
        before = _snapshot(partial)
        code, err = _wait(_start(tmp_path, "--resume", str(partial)))
        assert code == 2, (code, err[-3000:])
        _refusal(err, first.pid)
        assert _snapshot(partial) == before  # the refused resume touched nothing
    finally:
        os.kill(first.pid, signal.SIGCONT)
    code, err = _wait(first)
    assert code == 0, err[-3000:]
    _same_as(_only_run(out), reference)


def test_two_resumes_of_one_folder_at_once(tmp_path, reference):
    """A run SIGKILLed in its teacher's training, then two `--resume` of its folder started
    together: one finishes like an uninterrupted run, the other exits 2 in one sentence (the
    folder is being written -- or, had it come late, already published); one run folder."""
    (tmp_path / "lock.yaml").write_text(yaml.safe_dump(RECIPE))
    out = tmp_path / "runs"
    first = _start(tmp_path, "lock.yaml", "--out", "runs")
    partial = _started(out, first)
    first.kill()
    _wait(first)
    resumes = [_start(tmp_path, "--resume", str(partial)) for _ in range(2)]
    results = [_wait(p) for p in resumes]
    codes = sorted(c for c, _ in results)
    assert codes == [0, 2], results
    (err,) = [e for c, e in results if c == 2]
    winner = [p.pid for p, (c, _) in zip(resumes, results) if c == 0][0]
    if "does not exist" in err:  # the loser came after the winner had published the run
        assert err.count("error:") == 1 and "Traceback" not in err, err
    else:
        _refusal(err, winner)
    _same_as(_only_run(out), reference)


def test_a_stale_lock_does_not_block_a_resume(tmp_path, reference):
    """The .lock a SIGKILLed run leaves (naming a process that is gone) is taken over: the
    kernel released its flock."""
    (tmp_path / "lock.yaml").write_text(yaml.safe_dump(RECIPE))
    out = tmp_path / "runs"
    first = _start(tmp_path, "lock.yaml", "--out", "runs")
    partial = _started(out, first)
    first.kill()
    _wait(first)
    holder = json.loads((partial / ".lock").read_text())  # left behind, naming the dead run
    assert holder["pid"] == first.pid
    code, err = _wait(_start(tmp_path, "--resume", str(partial)))
    assert code == 0, err[-3000:]
    _same_as(_only_run(out), reference)


def test_an_incomplete_run_folder_is_not_published(tmp_path):
    """A folder without the files a run must hold stays partial (no second, incomplete
    '...-2' run can appear)."""
    tmp, final = claim_run_dir(tmp_path, "r", stamp="s")
    (tmp / "results.json").write_text("{}")
    with pytest.raises(MentorError, match="lacks input.yaml; it is incomplete"):
        finish_run_dir(tmp, final, required=("input.yaml", "results.json"))
    assert tmp.is_dir() and not final.exists()
    (tmp / "input.yaml").write_text("name: r\n")
    assert finish_run_dir(tmp, final, required=("input.yaml", "results.json")) == final


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.mark.parametrize("left", ["dead", "empty", "half"])
def test_a_contender_reads_the_new_holders_record_not_the_old_one(tmp_path, monkeypatch, left):
    """The race CI met (two resumes of a killed run's folder): the loser read the lock file
    after the winner had locked it and before the winner wrote its pid over what the killed
    run left (that run's pid, nothing, or half a record), and named no pid or a dead one. A
    contender reads again until the record names a live process; here the holder writes its
    record right after the contender's first read, so no timing is assumed."""
    import fcntl
    folder = tmp_path / "run"
    folder.mkdir()
    path = folder / locks.LOCK
    record = {"pid": _dead_pid(), "host": socket.gethostname(), "started": "then",
              "what": "mentor run"}
    left_behind = {"dead": json.dumps(record), "empty": "", "half": json.dumps(record)[:9]}
    path.write_text(left_behind[left])
    fd = os.open(path, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)  # the new holder, before it writes its record
    read, reads = locks._read_holder, []

    def read_then_holder_writes(p):
        reads.append(p)
        out = read(p)
        if len(reads) == 1:
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps({**record, "pid": os.getpid(), "started": "now"}).encode(), 0)
        return out

    monkeypatch.setattr(locks, "_read_holder", read_then_holder_writes)
    try:
        with pytest.raises(MentorError) as refused:
            with locks.folder_lock(folder, lambda holder: MentorError(holder)):
                pass
    finally:
        os.close(fd)
    expected = f"mentor run, pid {os.getpid()} on {socket.gethostname()}, since now"
    assert str(refused.value) == expected
    assert len(reads) == 2


def test_a_contender_gives_up_on_a_record_that_never_comes(tmp_path, monkeypatch):
    """A holder that never writes its record (frozen between lock and write): the contender
    says the pid is unknown after the settle time, instead of waiting forever."""
    import fcntl
    monkeypatch.setattr(locks, "SETTLE_S", 0.05)
    folder = tmp_path / "run"
    folder.mkdir()
    fd = os.open(folder / locks.LOCK, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        with pytest.raises(MentorError, match="^pid unknown: it is starting$"):
            with locks.folder_lock(folder, lambda holder: MentorError(holder)):
                pass
    finally:
        os.close(fd)
