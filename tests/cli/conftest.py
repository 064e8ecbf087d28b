"""Shared helpers for the CLI tests (the ``cli`` fixture is in ``tests/conftest.py``)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

@pytest.fixture
def mentor(tmp_path, cli):
    """``mentor(*args)`` runs the CLI with cwd=tmp_path and returns the CompletedProcess."""

    def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return cli(args, tmp_path, timeout)

    return run


@pytest.fixture
def write_recipe(tmp_path):
    """``write_recipe(mapping_or_text, name)`` writes a recipe file in tmp_path."""

    def write(content, name: str = "recipe.yaml") -> Path:
        path = tmp_path / name
        text = content if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False)
        path.write_text(text, encoding="utf-8")
        return path

    return write


def tiny_recipe(**over) -> dict:
    """A recipe on iris that validates in well under a second."""
    r = {"name": "tiny", "data": {"source": "iris"},
         "teacher": {"model": "mlp", "hidden": [16], "train": {"epochs": 5}},
         "student": {"model": "mlp", "hidden": [8]},
         "methods": [{"name": "scratch"}, {"name": "kd", "temperature": 2.0, "alpha": 0.5}],
         "train": {"epochs": 5, "seeds": [0, 1]}}
    r.update(over)
    return r


@pytest.fixture(scope="session")
def recipe_dict():
    return tiny_recipe


@pytest.fixture
def refused(tmp_path):
    """``refused(proc, *needles)``: exit 2, no traceback, every needle in stderr, one
    ``error:`` line, and nothing left under ``tmp_path/runs``."""

    def check(proc: subprocess.CompletedProcess, *needles: str) -> str:
        err = proc.stderr
        assert proc.returncode == 2, (proc.returncode, proc.stdout, err)
        assert "Traceback" not in err, err
        assert err.count("error:") == 1, err
        for needle in needles:
            assert needle in err, (needle, err)
        runs = tmp_path / "runs"
        assert not runs.exists() or not any(runs.iterdir()), list(runs.rglob("*"))
        return err

    return check


@pytest.fixture
def validated_run(mentor, tmp_path):
    """``validated_run(recipe_file)``: ``mentor recipes validate`` says ok, ``mentor run``
    finishes; returns the run folder and its results.json."""
    import json

    def go(recipe_file: str, out: str = "runs"):
        proc = mentor("recipes", "validate", recipe_file)
        assert proc.returncode == 0 and proc.stdout.startswith("ok"), (proc.stdout, proc.stderr)
        proc = mentor("run", recipe_file, "--out", out, "--quiet")
        assert proc.returncode == 0, (proc.stdout, proc.stderr)
        (run,) = list((tmp_path / out).iterdir())
        return run, json.loads((run / "results.json").read_text())

    return go
