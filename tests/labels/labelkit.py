"""Helpers for the label-store tests: teachers, checkpoints, the CLI in a subprocess, and
comparisons of two stores by their manifests, shards and decoded outputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pyarrow as pa
import torch

from mentor.engine.checkpoint import save_weights
from mentor.labels import LabelStore
from mentor.models import mlp
from mentor.teachers import ModuleTeacher

SRC = Path(__file__).resolve().parents[2] / "src"
INPUT_SHAPE = (8, 8)
CLASSES = 10


def cli_env(**extra: str) -> dict[str, str]:
    """The environment of a ``python -m mentor`` subprocess: this checkout's src, one thread."""
    return {**os.environ, "PYTHONPATH": str(SRC), "COLUMNS": "200", "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1", **extra}


def mentor_cmd(*args) -> list[str]:
    return [sys.executable, "-m", "mentor", *map(str, args)]


def run_mentor(*args, cwd: Path | None = None, timeout: float = 300,
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(mentor_cmd(*args), cwd=cwd, env=env or cli_env(),
                          capture_output=True, text=True, timeout=timeout, check=False)


def label_args(ckpt: Path, out: Path, *more) -> list[str]:
    """``label`` arguments for the digits train split (add ``--quiet`` etc. in ``more``)."""
    return ["label", "--teacher", str(ckpt), "--data", "digits", "--out", str(out),
            *map(str, more)]


def make_net(hidden, seed: int = 0, scale: float = 1.0) -> torch.nn.Module:
    """An untrained mlp; ``scale`` > 1 multiplies every weight, giving peaked outputs (a
    spread of confidences, like a trained teacher) instead of near-uniform ones."""
    torch.manual_seed(seed)
    net = mlp(INPUT_SHAPE, CLASSES, hidden=list(hidden))
    if scale != 1.0:
        with torch.no_grad():
            for p in net.parameters():
                p.mul_(scale)
    return net.eval()


def make_teacher(hidden=(32,), seed: int = 0, scale: float = 1.0) -> ModuleTeacher:
    return ModuleTeacher(make_net(hidden, seed, scale), CLASSES)


def save_teacher(path: Path, net: torch.nn.Module, hidden) -> Path:
    """A mentor teacher checkpoint (architecture in its metadata), as ``mentor label`` reads."""
    save_weights(path, net, {"mentor.model": {"model": "mlp", "hidden": list(hidden)},
                             "mentor.num_classes": CLASSES,
                             "mentor.input_shape": list(INPUT_SHAPE)})
    return path


def manifest(store: Path) -> dict:
    return json.loads((Path(store) / "manifest.json").read_text())


def shard_list(store: Path) -> list[tuple]:
    """The manifest's shard list as (file, rows, samples, sha256, bytes) tuples."""
    return [(s["file"], s["rows"], tuple(s["samples"]), s["sha256"], s["bytes"])
            for s in manifest(store)["shards"]]


def read_shard(path: Path) -> pa.Table:
    """A shard read with plain pyarrow (no mentor code)."""
    with pa.OSFile(str(path), "rb") as f:
        return pa.ipc.open_file(f).read_all()


def row_pairs(store: Path) -> Counter:
    """How often each (sample_id, view_id) occurs over every shard file in the store."""
    counts: Counter = Counter()
    for f in sorted(Path(store).glob("shard-*.arrow")):
        t = read_shard(f)
        counts.update(zip(t.column("sample_id").to_pylist(), t.column("view_id").to_pylist()))
    return counts


def file_ids(store: Path, pattern: str = "shard-*") -> dict[str, tuple[int, int]]:
    """(inode, mtime_ns) of the store's files: a rewritten file (temp + rename) changes both."""
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns)
            for p in sorted(Path(store).glob(pattern))}


def leftovers(store: Path) -> list[str]:
    return sorted(p.name for p in Path(store).iterdir() if p.name.endswith(".tmp"))


def assert_same_store(store: Path, reference: Path) -> None:
    """Same shard list (files, rows, samples, sha256, bytes), same identity fields, identical
    decoded outputs, every (sample_id, view_id) exactly once, and no temp leftovers."""
    assert shard_list(store) == shard_list(reference)
    m, r = manifest(store), manifest(reference)
    for key in ("kind", "teacher", "data", "views", "samples", "views_per_sample", "rows",
                "shard_samples"):
        assert m[key] == r[key], key
    a = LabelStore.open(store).outputs()
    b = LabelStore.open(reference).outputs()
    assert a.shape == b.shape
    assert torch.equal(a, b)
    pairs = row_pairs(store)
    expected = {(i, v) for i in range(m["samples"]) for v in range(m["views_per_sample"])}
    assert set(pairs) == expected  # nothing lost, nothing foreign
    assert max(pairs.values()) == 1  # nothing duplicated
    assert leftovers(store) == []
