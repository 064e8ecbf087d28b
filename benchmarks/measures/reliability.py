"""docs/reliability.md's counts: how many cases, trials, tests and generated examples the
reliability tests hold. Collected by pytest itself (``--collect-only`` in a fresh process,
no test runs) from ``tests/reliability/`` and the collapse tests of
``tests/methods/test_ssl_engine.py``, plus the settings the tests read (hypothesis'
``max_examples`` of each fuzzing test, the checkpoint writes a kill is drawn from).

The page quotes no wall times: they depend on the machine and its load (``pytest
--durations=0`` prints them for a run).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter

from . import measurement
from ._run import ROOT

FILES = ("tests/reliability", "tests/methods/test_ssl_engine.py")

_COLLECT = r"""
import json, sys
import pytest

class Collect:
    out = {}
    def pytest_collection_modifyitems(self, items):
        ids = [i.nodeid for i in items]
        examples = {}
        writes = api = None
        for i in items:
            s = getattr(i.obj, "_hypothesis_internal_use_settings", None)
            if s is not None:
                examples[i.name] = s.max_examples
            if i.nodeid.startswith("tests/reliability/test_kill_resume_run.py"):
                writes = i.module.TOTAL_WRITES
            if i.nodeid.startswith("tests/reliability/test_bad_input.py"):
                api = len(i.module.API_CASES)
        self.out = {"ids": ids, "examples": examples, "writes": writes, "api": api}

c = Collect()
rc = pytest.main(["--collect-only", "-qq", "-p", "no:cacheprovider", *sys.argv[1:]],
                 plugins=[c])
if rc != 0:
    sys.exit(f"collection failed ({rc})")
print("COLLECTED " + json.dumps(c.out))
"""


def collect() -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1",
           "MENTOR_FUZZ_SCALE": "1"}
    proc = subprocess.run([sys.executable, "-c", _COLLECT, *FILES], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    line = [x for x in proc.stdout.splitlines() if x.startswith("COLLECTED ")]
    if proc.returncode != 0 or not line:
        raise RuntimeError(f"pytest --collect-only failed ({proc.returncode}): "
                           f"{(proc.stdout + proc.stderr)[-2000:]}")
    return json.loads(line[0][len("COLLECTED "):])


def _n(x: int) -> str:
    return f"{x:,}"


def measure(quick: bool) -> dict[str, str]:
    got = collect()
    by_fn = Counter(i.split("[")[0] for i in got["ids"])

    def count(path: str, name: str = "") -> int:
        return sum(n for fn, n in by_fn.items()
                   if fn.startswith(f"tests/{path}::") and name in fn.split("::")[1])

    bad = "reliability/test_bad_input.py"
    safe = "reliability/test_safe_loading.py"
    fuzz = "reliability/test_recipe_fuzz.py"
    loaders = [fn for fn in by_fn if fn.startswith(f"tests/{safe}::") and "pickl" in fn
               and "cli" not in fn]
    ex = got["examples"]
    out = {
        "bad_input.cli": _n(count(bad, "test_bad_input")),
        "bad_input.api": _n(got["api"]),
        "kill.in_write": _n(count("reliability/test_kill_resume_run.py",
                                  "kill_inside_a_checkpoint_write")),
        "kill.random": _n(count("reliability/test_kill_resume_run.py", "random_moments")),
        "kill.default": _n(count("reliability/test_kill_resume_run.py", "default_settings")),
        "kill.writes": _n(got["writes"]),
        "faults": _n(count("reliability/test_runtime_faults.py")),
        "collapse": _n(count("methods/test_ssl_engine.py", "collapse")),
        "safe": _n(count(safe)),
        "safe.loaders": _n(len(loaders)),
        "safe.tags": _n(count(safe, "yaml_tags")),
        "fuzz.examples": _n(sum(ex.values())),
        "fuzz.hostile": _n(count(fuzz, "hostile")),
        "fuzz.found": _n(count(fuzz, "fuzzing_found")),
        "lock": _n(count("reliability/test_label_lock.py")),
        "run_lock": _n(count("reliability/test_run_lock.py")),
    }
    for key, name in (("mutated", "test_parse_recipe_on_mutated_recipes"),
                      ("plan", "test_plan_run_on_mutated_recipes"),
                      ("structures", "test_parse_recipe_on_random_structures"),
                      ("overrides", "test_set_overrides"),
                      ("text", "test_read_yaml_on_text"), ("bytes", "test_read_yaml_on_bytes")):
        out[f"fuzz.{key}"] = _n(ex[name])
    out["kill.trials"] = _n(int(out["kill.in_write"]) + int(out["kill.random"])
                            + int(out["kill.default"]))
    return out


measurement("reliability", about="docs/reliability.md's counts: cases, kill trials, tests and "
            "generated examples of tests/reliability/ (pytest --collect-only; no test runs)",
            ci="full", minutes=0.3)(measure)
