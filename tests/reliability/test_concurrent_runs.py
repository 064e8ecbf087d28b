"""Concurrency: runs started at the same time into the same runs folder never share or
clobber a folder (exclusive claim of the partial folder, a rename that never replaces a run)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from mentor.errors import MentorError
from mentor.runs.folder import claim_run_dir, final_name, finish_run_dir

SRC = Path(__file__).resolve().parents[2] / "src"


def test_claims_with_the_same_name_and_second_get_distinct_folders(tmp_path):
    claims = [claim_run_dir(tmp_path, "r", stamp="20260101-000000") for _ in range(5)]
    partials = [p for p, _ in claims]
    finals = [f for _, f in claims]
    assert len(set(partials)) == 5 and len(set(finals)) == 5
    assert all(p.is_dir() and p.name.startswith(".") for p in partials)
    assert [f.name for f in finals] == ["r-20260101-000000"] + [
        f"r-20260101-000000-{i}" for i in range(2, 6)]


def test_many_threads_claiming_at_once_never_share(tmp_path):
    with ThreadPoolExecutor(8) as pool:
        claims = list(pool.map(lambda _: claim_run_dir(tmp_path, "r", stamp="s"), range(32)))
    assert len({p for p, _ in claims}) == 32


def test_finishing_never_replaces_an_existing_run(tmp_path):
    tmp, final = claim_run_dir(tmp_path, "r", stamp="s")
    (tmp / "mine.txt").write_text("new")
    final.mkdir()
    (final / "theirs.txt").write_text("old")  # a run that took the name meanwhile
    done = finish_run_dir(tmp, final)
    assert done != final and (done / "mine.txt").read_text() == "new"
    assert (final / "theirs.txt").read_text() == "old"


def test_final_name_of_a_partial_folder(tmp_path):
    assert final_name(tmp_path / ".r-s.partial") == tmp_path / "r-s"
    with pytest.raises(MentorError, match="not an unfinished run folder"):
        final_name(tmp_path / "r-s")


def test_two_mentor_runs_into_one_folder_both_complete(tmp_path):
    recipe = {"name": "same", "data": {"source": "iris"}, "student": {"model": "mlp",
              "hidden": [8]}, "method": {"name": "scratch"},
              "train": {"epochs": 3, "seeds": [0]}}
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "mentor", "run", "r.yaml", "--out", "runs", "--quiet"]
    procs = [subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err[-2000:]
    runs = sorted((tmp_path / "runs").iterdir())
    assert len(runs) == 2 and not any(r.name.startswith(".") for r in runs)
    for r in runs:  # each folder is one complete run
        assert json.loads((r / "results.json").read_text())["rows"][0]["method"] == "scratch"
        assert len((r / "metrics.jsonl").read_text().splitlines()) == 1
