"""Test-wide settings: one torch thread (the models are tiny; on 2 shared cores extra threads
only contend), and the same for subprocesses the tests start."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import torch  # noqa: E402

torch.set_num_threads(1)

SRC = Path(__file__).resolve().parents[1] / "src"


def run_cli(args, cwd, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``python -m mentor *args`` in ``cwd`` with this checkout's ``src`` on the path."""
    env = {**os.environ, "PYTHONPATH": str(SRC), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "mentor", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def cli():
    """``cli(args, cwd)``: the CLI in a subprocess (for fixtures wider than one test)."""
    return run_cli
