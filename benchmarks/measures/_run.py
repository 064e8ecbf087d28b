"""Shared ways to rerun what the docs quote: a built-in recipe, a benchmark script."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_builtin(name: str, overrides: dict | None = None) -> dict:
    """Run the built-in recipe ``name`` (``mentor run NAME``, in process, no progress bars)
    in a temporary folder; return its results.json plus ``"metrics"``: the lines of its
    metrics.jsonl. ``overrides``: top-level recipe keys replaced (quick forms)."""
    from mentor.recipe import builtin_recipes, read_yaml
    from mentor.commands.run import run_recipe
    raw = read_yaml(builtin_recipes()[name])
    raw.update(overrides or {})
    with tempfile.TemporaryDirectory(prefix=f"measure-{name}-") as d:
        folder = run_recipe(raw, d, progress=False)
        results = json.loads((folder / "results.json").read_text())
        results["metrics"] = [json.loads(line) for line in
                              (folder / "metrics.jsonl").read_text().splitlines() if line]
    return results


def row(results: dict, setting: str, method: str) -> dict:
    (r,) = [r for r in results["rows"] if r["setting"] == setting and r["method"] == method]
    return r


def run_script(relpath: str, *args: str, timeout: float = 7200) -> str:
    """stdout of ``python <relpath> *args`` from the repository root (one torch thread)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(ROOT / relpath), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{relpath} {' '.join(args)} failed ({proc.returncode}): "
                           f"{proc.stderr[-2000:]}")
    return proc.stdout


def result_lines(out: str, tag: str = "RESULT") -> dict[str, str]:
    """``{name: value}`` of the ``TAG name value`` lines a benchmark prints."""
    return {m.group(1): m.group(2)
            for m in re.finditer(rf"^{tag} (\S+) (\S+)\s*$", out, flags=re.M)}


@contextlib.contextmanager
def one_torch_thread():
    """torch on one thread inside the block (figures that do not depend on the caller's thread
    count: float sums split over threads round differently), the caller's count after."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def over_seeds(run, seeds, quick: bool):
    """``run(seed, quick)`` for each seed on one torch thread (:func:`one_torch_thread`);
    returns ``vals(key)``: the runs' values of ``key``, in seed order."""
    with one_torch_thread():
        runs = [run(s, quick) for s in seeds]

    def vals(key: str) -> list:
        return [r[key] for r in runs]
    return vals
