"""A labeler killed with SIGKILL and rerun with the same command ends with the store an
uninterrupted run makes: the same shards (bytes and sha256), identical decoded outputs, every
(sample_id, view_id) exactly once, no temp leftovers, and the shards finished before a kill
are kept as they were (same inode and mtime: not recomputed, not rewritten).

The labeler must run long enough to be killed part-way: a [2048, 2048] mlp teacher and 16
crop views put 1024 rows in each of the 17 shards of 64 digits samples (about 0.1 s of
compute per shard on one thread), and the test kills it within about a millisecond of seeing
the k-th shard sidecar (or a temp file) appear.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from labelkit import (CLASSES, INPUT_SHAPE, assert_same_store, cli_env, file_ids, label_args,
                      leftovers, make_net, make_teacher, manifest, mentor_cmd, run_mentor,
                      save_teacher, shard_list)

from mentor.labels import FullLogits, LabelStore, StoreError, Views, write_store
from mentor.teachers import load_checkpoint_teacher

HIDDEN = (2048, 2048)
VIEWS = 16
SHARD_SAMPLES = 64
N_SHARDS = 17  # ceil(1079 / 64)
OPTIONS = ("--views", VIEWS, "--augment", "crop", "--shard-samples", SHARD_SAMPLES, "--quiet")
GUARD_S = 240  # only against a hung labeler; no timing is asserted


@pytest.fixture(scope="module")
def big_teacher(tmp_path_factory):
    folder = tmp_path_factory.mktemp("kill")
    return save_teacher(folder / "teacher.safetensors", make_net(HIDDEN, seed=0, scale=1.0),
                        HIDDEN)


class Uninterrupted:
    """One uninterrupted labeling run, started in the background (it runs on the second core
    while the kill test runs the interrupted ones); ``path()`` waits for it."""

    def __init__(self, ckpt: Path):
        self.out = ckpt.parent / "reference"
        self.log = ckpt.parent / "reference.log"
        with open(self.log, "wb") as err:
            self.proc = subprocess.Popen(mentor_cmd(*label_args(ckpt, self.out, *OPTIONS)),
                                         env=cli_env(), cwd=ckpt.parent,
                                         stdout=subprocess.DEVNULL, stderr=err)

    def path(self) -> Path:
        rc = self.proc.wait(timeout=GUARD_S)
        assert rc == 0, self.log.read_text()[-3000:]
        assert len(shard_list(self.out)) == N_SHARDS
        return self.out


@pytest.fixture(scope="module")
def reference(big_teacher):
    run = Uninterrupted(big_teacher)
    yield run
    run.proc.kill()
    run.proc.wait()


def sidecars(out: Path) -> set[str]:
    try:
        return {n for n in os.listdir(out) if n.startswith("shard-") and n.endswith(".json")}
    except FileNotFoundError:
        return set()


def temps(out: Path) -> bool:
    try:
        return any(n.endswith(".tmp") for n in os.listdir(out))
    except FileNotFoundError:
        return False


def finished(out: Path) -> dict[str, tuple[int, int]]:
    """(inode, mtime_ns) of both files of every shard that has its sidecar."""
    ids = file_ids(out)
    done = {n[: -len(".json")] for n in sidecars(out)}
    return {n: ids[n] for n in ids if n.rsplit(".", 1)[0] in done}


def label_and_kill(ckpt: Path, out: Path, after: int, on_temp: bool, log: Path) -> None:
    """Start the labeler and SIGKILL it once ``after`` shard sidecars exist -- right away, or
    (``on_temp``) when a temp file next shows up, i.e. while a file is being written (if the
    next sidecar appears first, it is killed then)."""
    with open(log, "ab") as err:
        proc = subprocess.Popen(mentor_cmd(*label_args(ckpt, out, *OPTIONS)), env=cli_env(),
                                cwd=ckpt.parent, stdout=subprocess.DEVNULL, stderr=err)
    try:
        deadline = time.monotonic() + GUARD_S
        while len(sidecars(out)) < after:
            assert proc.poll() is None, (f"the labeler exited ({proc.returncode}) before "
                                         f"{after} shards: {log.read_text()[-2000:]}")
            assert time.monotonic() < deadline, "the labeler hung"
            time.sleep(0.001)
        if on_temp:
            while not temps(out) and len(sidecars(out)) <= after and proc.poll() is None:
                time.sleep(0.0005)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, (
        "the labeler finished before it was killed; it needs more work per shard (a bigger "
        "teacher or more views)")
    assert not (out / "manifest.json").exists()
    assert after <= len(sidecars(out)) < N_SHARDS


# Kill points of one interrupted sequence: (shard sidecars seen, kill while a file is being
# written?); each rerun resumes from what the previous kill left.
KILLS = [(1, False), (4, True), (9, False)]


def test_killed_and_resumed_equals_uninterrupted(tmp_path, big_teacher, reference):
    out, log = tmp_path / "store", tmp_path / "labeler.log"
    kept: dict[str, tuple[int, int]] = {}
    left: list[str] = []
    for after, on_temp in KILLS:
        label_and_kill(big_teacher, out, after, on_temp, log)
        now = finished(out)
        for name, ident in kept.items():  # the rerun skipped what was done before it
            assert now.get(name) == ident, f"{name} was rewritten by the rerun"
        assert not any((out / name).exists() for name in left)  # the rerun removed them
        kept, left = now, leftovers(out)
        assert len(kept) >= 2 * after
    proc = run_mentor(*label_args(big_teacher, out, *OPTIONS), cwd=tmp_path, timeout=GUARD_S)
    assert proc.returncode == 0, proc.stderr[-3000:]
    after_rerun = file_ids(out)
    for name, ident in kept.items():
        assert after_rerun[name] == ident, f"{name} was recomputed by the final rerun"
    ref = reference.path()
    assert_same_store(out, ref)
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in ref.iterdir())


def test_the_reference_holds_the_teachers_outputs_on_the_views(big_teacher, reference,
                                                               digits_x):
    """The store the kill tests compare with is itself right: rows (i, v) are the teacher's
    logits on view v of sample i, regenerated from the manifest (checked on 128 samples)."""
    reference = reference.path()
    m = manifest(reference)
    assert m["views"] == {"augment": "crop", "params": {}, "seed": 0, "views": VIEWS,
                          "input_shape": list(INPUT_SHAPE)}
    teacher = load_checkpoint_teacher(big_teacher, input_shape=INPUT_SHAPE,
                                      num_classes=CLASSES)
    store = LabelStore.open(reference, teacher=teacher, data=digits_x)
    views = Views.from_manifest(m["views"])
    n, sid = len(digits_x), torch.arange(900, 1028)
    out = store.outputs()
    for v in (0, 7, 15):
        xv = views.apply(digits_x[sid], sid, torch.full_like(sid, v), n)
        with torch.no_grad():
            assert torch.equal(out[sid, v], teacher.logits(xv)), v


# --------------------------------------------------------------- deterministic resume states


@pytest.fixture(scope="module")
def small_reference(tmp_path_factory, teacher, digits_x):
    out = tmp_path_factory.mktemp("resume") / "reference"
    views = Views("crop", 2, seed=3, input_shape=INPUT_SHAPE)
    write_store(teacher, digits_x, out, FullLogits(CLASSES), views=views, shard_samples=100)
    return out, views


def test_rerun_repairs_every_state_a_kill_can_leave(tmp_path, teacher, digits_x,
                                                    small_reference):
    """Temp files of a shard, of a sidecar and of the manifest; a shard renamed into place
    whose sidecar was not yet written; a shard whose bytes no longer match its sidecar."""
    reference, views = small_reference
    out = shutil.copytree(reference, tmp_path / "store")
    (out / "manifest.json").unlink()
    arrow3 = (out / "shard-00003.arrow").read_bytes()
    (out / ".shard-00003.arrow.k1l2m3.tmp").write_bytes(arrow3[: len(arrow3) // 3])
    (out / ".shard-00004.json.a1b2c3.tmp").write_text('{"file": "shard-0')
    (out / ".manifest.json.zz9.tmp").write_text("{")
    (out / "shard-00005.json").unlink()  # killed between the shard's rename and its sidecar's
    data = bytearray((out / "shard-00007.arrow").read_bytes())
    data[-100] ^= 0xFF
    (out / "shard-00007.arrow").write_bytes(bytes(data))
    before = file_ids(out)
    write_store(teacher, digits_x, out, FullLogits(CLASSES), views=views, shard_samples=100)
    after = file_ids(out)
    rewritten = sorted(n for n in before if before[n] != after.get(n))
    assert rewritten == ["shard-00005.arrow", "shard-00007.arrow", "shard-00007.json"]
    assert_same_store(out, reference)


def test_rerun_with_a_stale_sidecar_of_another_teacher_relabels_it(tmp_path, digits_x,
                                                                   small_reference):
    """Shards left by a killed run of another teacher (no manifest yet) are not taken as
    done: their sidecars name another identity."""
    reference, views = small_reference
    out = tmp_path / "store"
    other = make_teacher((32,), seed=5, scale=3.0)
    write_store(other, digits_x, out, FullLogits(CLASSES), views=views, shard_samples=100)
    (out / "manifest.json").unlink()  # as if killed before the manifest
    before = file_ids(out)
    same = make_teacher((32,), seed=0, scale=3.0)  # the conftest teacher, rebuilt
    write_store(same, digits_x, out, FullLogits(CLASSES), views=views, shard_samples=100)
    after = file_ids(out)
    assert all(after[n] != before[n] for n in before)  # every shard labeled again
    assert_same_store(out, reference)


def test_a_rerun_with_another_shard_size_never_keeps_shards_of_other_samples(
        tmp_path, teacher, digits_x):
    """Killed with --shard-samples 100, rerun with 79: the old last shard (samples
    1000..1078, 79 of them) has as many rows as the new shard-00010 (samples 790..868).
    Relabeling or refusing are both fine; keeping it is not."""
    out = tmp_path / "store"
    write_store(teacher, digits_x, out, FullLogits(CLASSES), shard_samples=100)
    (out / "manifest.json").unlink()  # killed before the manifest
    try:
        write_store(teacher, digits_x, out, FullLogits(CLASSES), shard_samples=79)
    except StoreError:
        return  # refused: fine
    store = LabelStore.open(out, teacher=teacher, data=digits_x)
    for s, sh in enumerate(store.manifest["shards"]):
        assert sh["samples"] == [79 * s, min(79 * (s + 1), len(digits_x))], sh
    with torch.no_grad():
        assert torch.equal(store.outputs()[:, 0], teacher.logits(digits_x))
