"""``mentor label`` on 2 gloo processes (torchrun, MENTOR_CPU=1) makes the store one process
makes: the same shard list (files, rows, sample ranges, sha256) and identical outputs.

Rank r writes shards r, r + 2, ...; with 64 samples a shard the 1079 digits samples make 17
shards, 8 of them rank 1's. Only rank 0 writes the manifest and prints ``ok``, so one ``ok``
line shows the two processes saw a world of 2 (two processes that each thought they were
alone would both print it). Which rank wrote which shard is checked with both ranks on two
threads of this process (write_store with a threading barrier), where the writes can be
watched.

(Named test_label_ranks.py: tests/dist/test_two_ranks.py exists, and test folders have no
``__init__.py``, so two test modules may not share a base name.)
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading

import pytest
from labelkit import (CLASSES, assert_same_store, cli_env, label_args, make_net, manifest,
                      run_mentor, save_teacher, shard_list)

from mentor.labels import FullLogits, write_store
from mentor.labels import store as store_module

HIDDEN = (32,)
# with the progress bar on: rank 0 starts it while rank 1 already writes its temp files (the
# race test_rank_0_removes_no_temp_file_another_rank_is_writing pins down)
OPTIONS = ("--views", 2, "--augment", "crop", "--shard-samples", 64)


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """(single-process store, two-rank store, two-rank stdout)."""
    folder = tmp_path_factory.mktemp("ranks")
    ckpt = save_teacher(folder / "teacher.safetensors", make_net(HIDDEN, seed=2, scale=3.0),
                        HIDDEN)
    single, double = folder / "single", folder / "double"
    one = run_mentor(*label_args(ckpt, single, *OPTIONS), cwd=folder)
    assert one.returncode == 0, one.stderr[-3000:]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
           "2", "-m", "mentor", *label_args(ckpt, double, *OPTIONS)]
    two = subprocess.run(cmd, env=cli_env(MENTOR_CPU="1"), cwd=folder, capture_output=True,
                         text=True, timeout=300, check=False)
    assert two.returncode == 0, (two.stdout[-2000:], two.stderr[-4000:])
    return single, double, two.stdout


def test_two_ranks_make_the_single_process_store(stores):
    single, double, _ = stores
    assert len(shard_list(single)) == 17
    assert_same_store(double, single)
    assert manifest(double)["source"] == manifest(single)["source"]
    assert manifest(double)["views_per_sample"] == 2


def test_the_two_processes_shared_the_shards(stores):
    _, double, stdout = stores
    assert stdout.count("ok: label store") == 1, stdout  # rank 1 returned no store path
    assert "rank 0: 1134 of 2158 rows" in stdout, stdout  # rank 0: shards 0, 2, .., 16 = (8·64 + 55)·2 rows
    files = {sh[0] for sh in shard_list(double)}
    assert {f"shard-{s:05d}.arrow" for s in range(1, 17, 2)} <= files  # rank 1's shards


# ------------------------------------------------- the ranks in one process, on two threads


def label_two_ranks(teacher, x, out, *, hold_rank_1_temp: bool = False):
    """write_store as rank 0 and rank 1 on two threads (a threading barrier); returns the
    errors of each rank and which rank wrote each shard. Rank 1 starts once rank 0 has gone
    past its removal of temp leftovers; with ``hold_rank_1_temp`` it starts at once instead
    and holds its first shard's temp file (written, not yet renamed) until then."""
    written, rank0_started = threading.Event(), threading.Event()
    barrier = threading.Barrier(2, timeout=60)
    real_atomic_path, real_fingerprint = store_module.atomic_path, store_module.teacher_fingerprint
    writers: dict[str, str] = {}

    @contextlib.contextmanager
    def atomic_path(path, *args, **kwargs):
        writers[path.name] = threading.current_thread().name
        with real_atomic_path(path, *args, **kwargs) as tmp:
            yield tmp
            if (hold_rank_1_temp and threading.current_thread().name == "rank1"
                    and not written.is_set()):
                written.set()
                rank0_started.wait(5)

    def teacher_fingerprint(*args, **kwargs):  # called just after the removal of leftovers
        if threading.current_thread().name == "rank0":
            rank0_started.set()
        return real_fingerprint(*args, **kwargs)

    errors: dict[int, BaseException] = {}

    def rank(r: int) -> None:
        try:
            if r == 0 and hold_rank_1_temp:
                written.wait(5)
            if r == 1 and not hold_rank_1_temp:  # no race: rank 0 first removes leftovers
                rank0_started.wait(5)
            write_store(teacher, x, out, FullLogits(CLASSES), shard_samples=200, rank=r,
                        world=2, barrier=barrier.wait)
        except BaseException as e:  # noqa: BLE001  (reported to the test)
            errors[r] = e
            barrier.abort()

    store_module.atomic_path = atomic_path
    store_module.teacher_fingerprint = teacher_fingerprint
    try:
        threads = [threading.Thread(target=rank, args=(r,), name=f"rank{r}") for r in (1, 0)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    finally:
        store_module.atomic_path = real_atomic_path
        store_module.teacher_fingerprint = real_fingerprint
    return errors, writers


def test_ranks_on_threads_make_the_single_process_store(tmp_path, teacher, digits_x):
    single = tmp_path / "single"
    write_store(teacher, digits_x, single, FullLogits(CLASSES), shard_samples=200)
    errors, writers = label_two_ranks(teacher, digits_x, tmp_path / "double")
    assert errors == {}
    assert_same_store(tmp_path / "double", single)
    # 6 shards of 200 samples: rank 0 wrote 0, 2, 4; rank 1 wrote 1, 3, 5
    assert writers == {f"shard-{s:05d}.arrow": f"rank{s % 2}" for s in range(6)}


def test_rank_0_removes_no_temp_file_another_rank_is_writing(tmp_path, teacher, digits_x):
    single = tmp_path / "single"
    write_store(teacher, digits_x, single, FullLogits(CLASSES), shard_samples=200)
    errors, _ = label_two_ranks(teacher, digits_x, tmp_path / "double", hold_rank_1_temp=True)
    assert errors == {}, errors
    assert_same_store(tmp_path / "double", single)
