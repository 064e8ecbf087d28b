"""Benchmarks cannot rot: every script in ``benchmarks/`` runs here in its ``--quick`` form (tiny
sizes, a fresh process, one torch thread), exits 0 and prints its machine-readable lines.

Their sanity checks (mentor and the plain loops end with bit-identical weights, the decoded
label store equals the teacher's logits, the chunked and naive token losses agree) make a
script exit 1, so a broken check fails here too. The timings of a quick run mean nothing and
are not looked at. ``report_screenshot.sh`` needs Chromium and is skipped without it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks"
NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
# script -> lines it must print (a regex for the name, then a number)
SCRIPTS = {
    "kd_overhead.py": ["RATIO online_kd", "RATIO cached_kd", "RESULT overhead_us_online",
                       "RATIO loader_kd"],
    "loader_kd.py": ["RATIO loader_kd", "RESULT min_loader_kd"],
    "image_folder.py": ["RATIO image_folder", "RESULT images_per_s_mentor"],
    "stream_memory.py": ["RATIO stream_rss", "RESULT rss_mib_10x"],
    "label_throughput.py": ["RATIO label_throughput", "RATIO store_epoch",
                            "RESULT bytes_per_row_float32"],
    "lm_memory.py": ["RATIO lm_memory"],
    "active.py": ["RESULT oracle_pcoreset", "RESULT teacher_rad", "RESULT teacher_rad-maxmin"],
    "ssl_vs_sklearn.py": [r"RESULT labelspreading_\S+", r"RESULT selftraining_svc_\S+"],
}
# modules in benchmarks/ that are not benchmarks: shared code and the docs' figures CLI
NOT_BENCHMARKS = {"__init__.py", "plain_loops.py", "docs_numbers.py"}
# benchmarks whose quick run is checked in a file of their own (it needs an optional package)
TESTED_ELSEWHERE = {"vs_trl.py": "test_vs_trl_quick.py"}


def test_every_benchmark_script_runs_here():
    scripts = {p.name for p in BENCH.glob("*.py")} - NOT_BENCHMARKS - set(TESTED_ELSEWHERE)
    assert scripts == set(SCRIPTS), ("a benchmark without a quick run here (add it with a "
                                      f"--quick mode): {sorted(scripts ^ set(SCRIPTS))}")
    here = Path(__file__).parent
    assert all((here / test).exists() for test in TESTED_ELSEWHERE.values())


def _run(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1"}
    return subprocess.run(list(args), cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_quick_run_exits_0_and_prints_its_results(script):
    proc = _run(sys.executable, str(BENCH / script), "--quick")
    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-3000:])
    assert "SANITY FAILED" not in proc.stdout + proc.stderr
    for line in SCRIPTS[script]:
        assert re.search(rf"^{line} {NUMBER}\s*$", proc.stdout, flags=re.M), (line,
                                                                              proc.stdout[-2000:])


def _chromium() -> str | None:
    if os.environ.get("CHROMIUM"):
        return os.environ["CHROMIUM"]
    return next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")
                 if shutil.which(n)), None)


@pytest.mark.skipif(_chromium() is None, reason="report_screenshot.sh needs Chromium "
                    "(apt-get install chromium, or set CHROMIUM)")
def test_report_screenshot_renders_a_page(tmp_path):
    page = tmp_path / "report.html"
    page.write_text("<!doctype html><html><body style='background:#fff'><h1 style='color:#000'>"
                    "mentor report</h1></body></html>")
    png = tmp_path / "out" / "shot.png"
    proc = _run("bash", str(BENCH / "report_screenshot.sh"), str(page), str(png), "400", "300",
                timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
