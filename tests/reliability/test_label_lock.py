"""One labeler per label store: while `mentor label` writes a store folder it holds an
exclusive ``flock`` on ``STORE/.lock``; a second labeler of that folder exits with code 2 and
one sentence naming the folder and the holder's pid, and touches nothing. A SIGKILLed holder
releases the lock with its death (the kernel drops it), so the rerun resumes at once.

The first labeler is caught holding the lock and frozen with SIGSTOP while the second one
runs, so no timing is assumed; SIGCONT lets it finish, and its store must verify.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from mentor.engine.checkpoint import save_weights
from mentor.labels import LabelStore, StoreError, make_kind, store_lock, write_store
from mentor.models import mlp
from mentor.teachers import ModuleTeacher

SRC = Path(__file__).resolve().parents[2] / "src"
HIDDEN = [1024, 1024]  # ~0.3 s of labeling on one thread: time to catch it holding the lock
OPTIONS = ("--views", 8, "--augment", "crop", "--shard-samples", 64, "--quiet")
GUARD_S = 120  # against a hung labeler only


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(SRC), "COLUMNS": "200", "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1"}


def _cmd(ckpt: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "mentor", "label", "--teacher", str(ckpt), "--data",
            "digits", "--out", str(out), *map(str, OPTIONS)]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("lock") / "teacher.safetensors"
    torch.manual_seed(0)
    save_weights(path, mlp((8, 8), 10, hidden=HIDDEN),
                 {"mentor.model": {"model": "mlp", "hidden": HIDDEN}, "mentor.num_classes": 10,
                  "mentor.input_shape": [8, 8]})
    return path


def _holding(out: Path, proc: subprocess.Popen, log: Path) -> dict:
    """Wait until ``proc`` holds the store's lock (its pid in ``.lock``); freeze it."""
    deadline = time.monotonic() + GUARD_S
    while True:
        try:
            info = json.loads((out / ".lock").read_text())
            if info.get("pid") == proc.pid:
                os.kill(proc.pid, signal.SIGSTOP)
                return info
        except (OSError, ValueError):
            pass
        assert proc.poll() is None, ("the labeler ended before it was seen holding the lock",
                                     proc.returncode, log.read_text()[-2000:])
        assert time.monotonic() < deadline, "the labeler never took the lock"
        time.sleep(0.0005)


def _files(out: Path) -> dict[str, tuple[int, int, int]]:
    return {p.name: (p.stat().st_ino, p.stat().st_size, p.stat().st_mtime_ns)
            for p in out.iterdir()}


def _check_store(out: Path) -> None:
    store = LabelStore.open(out, verify=True)  # every shard's sha256
    assert store.outputs().shape == (1079, 8, 10)  # every (sample, view) exactly once
    assert not (out / ".lock").exists()
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]


def _start_labeler(ckpt: Path, out: Path, log: Path) -> subprocess.Popen:
    """``mentor label`` into ``out`` in the background, its stderr going to ``log``."""
    with open(log, "wb") as err:
        return subprocess.Popen(_cmd(ckpt, out), env=_env(), cwd=out.parent,
                                stdout=subprocess.DEVNULL, stderr=err)


def test_a_second_labeler_is_refused_while_the_first_runs(tmp_path, ckpt):
    out, log = tmp_path / "store", tmp_path / "first.log"
    first = _start_labeler(ckpt, out, log)
    try:
        info = _holding(out, first, log)
        assert info["host"] and info["started"]
        before = _files(out)
        second = subprocess.run(_cmd(ckpt, out), env=_env(), cwd=tmp_path,
                                capture_output=True, text=True, timeout=GUARD_S)
        assert second.returncode == 2, (second.returncode, second.stderr)
        err = second.stderr
        assert "Traceback" not in err and err.count("error:") == 1, err
        for needle in (f"label store '{out}'", "is locked by another labeler",
                       f"pid {first.pid}", "one labeler per store folder"):
            assert needle in " ".join(err.split()), (needle, err)
        assert _files(out) == before  # the refused labeler touched nothing
        os.kill(first.pid, signal.SIGCONT)
        assert first.wait(timeout=GUARD_S) == 0, log.read_text()[-3000:]
    finally:
        if first.poll() is None:
            os.kill(first.pid, signal.SIGCONT)
            first.kill()
            first.wait()
    _check_store(out)


def test_a_killed_labelers_lock_does_not_block_the_rerun(tmp_path, ckpt):
    out, log = tmp_path / "store", tmp_path / "killed.log"
    first = _start_labeler(ckpt, out, log)
    try:
        _holding(out, first, log)
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=GUARD_S)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert first.returncode == -signal.SIGKILL
    assert (out / ".lock").exists()  # left behind by the killed holder, but not locked
    assert not (out / "manifest.json").exists()
    rerun = subprocess.run(_cmd(ckpt, out), env=_env(), cwd=tmp_path, capture_output=True,
                           text=True, timeout=GUARD_S)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    _check_store(out)


# ------------------------------------------------------------------------- in one process

@pytest.fixture(scope="module")
def small():
    """A small teacher and 100 digits-like rows (64 features, 10 classes)."""
    torch.manual_seed(1)
    return ModuleTeacher(mlp((8, 8), 10, hidden=[16]).eval(), 10), torch.randn(100, 64)


def test_write_store_refuses_a_held_lock_and_takes_it_after(tmp_path, small):
    teacher, x = small
    out = tmp_path / "store"
    out.mkdir()
    kind = make_kind("logits", num_classes=10)
    with store_lock(out):
        holder = json.loads((out / ".lock").read_text())
        assert holder["pid"] == os.getpid()
        with pytest.raises(StoreError, match=f"pid {os.getpid()}") as info:
            write_store(teacher, x, out, kind, shard_samples=40)
        assert f"label store '{out}' is locked by another labeler" in str(info.value)
        assert "\n" not in str(info.value)
        assert sorted(p.name for p in out.iterdir()) == [".lock"]  # nothing was written
    assert not (out / ".lock").exists()  # removed on release
    write_store(teacher, x, out, kind, shard_samples=40)
    assert LabelStore.open(out).outputs().shape == (100, 1, 10)
    assert not (out / ".lock").exists()


def test_a_stale_lock_file_is_taken_over(tmp_path, small):
    """A ``.lock`` left by a killed labeler (any content, nobody holding the flock)."""
    teacher, x = small
    out = tmp_path / "store"
    out.mkdir()
    (out / ".lock").write_text('{"pid": 999999, "host": "gone", "started": "then"}')
    write_store(teacher, x, out, make_kind("logits", num_classes=10), shard_samples=40)
    assert LabelStore.open(out).outputs().shape == (100, 1, 10)
    assert not (out / ".lock").exists()


def test_the_lock_is_released_when_labeling_fails(tmp_path, small):
    teacher, x = small
    out = tmp_path / "store"
    with pytest.raises(Exception):
        write_store(teacher, x[:, :10], out, make_kind("logits", num_classes=10))
    assert not (out / ".lock").exists()
    with store_lock(out):  # free again
        pass
