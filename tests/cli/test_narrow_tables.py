"""Tables at the terminal's width: piped output honours ``COLUMNS``; at 80 columns no figure
or method name is cut with an ellipsis and no line is wider than 80 characters."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

SRC = Path(__file__).resolve().parents[2] / "src"
# long names on purpose: at 80 columns the old table cut them to "met…" / "78.66 ± 0.…"
METHODS = [{"name": "scratch"}, {"name": "kd", "temperature": 2.0, "alpha": 0.5},
           {"name": "ls-dkd"}, {"name": "ls-kd"}]


def _mentor(args, cwd, columns: str | None):
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    env["PYTHONPATH"] = str(SRC)
    if columns is not None:
        env["COLUMNS"] = columns
    proc = subprocess.run([sys.executable, "-m", "mentor", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)  # stdout is a pipe
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, (proc.stdout, proc.stderr)
    return proc.stdout


@pytest.fixture(scope="module")
def run(tmp_path_factory, recipe_dict):
    """One tiny run (iris, two settings, four methods); ``(folder, results)``."""
    cwd = tmp_path_factory.mktemp("narrow")
    recipe = recipe_dict(methods=METHODS, name="narrow-table-check")
    recipe["settings"] = [{"name": "all-labels"},
                          {"name": "few-labels-setting", "data": {"labeled_fraction": 0.3}}]
    (cwd / "r.yaml").write_text(yaml.safe_dump(recipe, sort_keys=False), encoding="utf-8")
    out = _mentor(["run", "r.yaml", "--quiet"], cwd, "80")
    (folder,) = (cwd / "runs").iterdir()
    return cwd, folder, out, json.loads((folder / "results.json").read_text())


def _figures(results) -> set[str]:
    return {f"{100 * r['test_accuracy_mean']:.2f} ± {100 * r['test_accuracy_std']:.2f}"
            for r in results["rows"]}


def _whole(out: str, results) -> None:
    assert "…" not in out, out
    for figure in _figures(results):
        assert figure in out, (figure, out)
    for row in results["rows"]:
        assert re.search(rf"(^|[\s│|]){re.escape(row['method'])}($|[\s│|])", out, re.M), \
            (row["method"], out)
    for s in results["settings"]:
        assert s["name"] in out, (s["name"], out)


def test_the_leaderboard_fits_80_columns_without_cutting(run):
    _, _, out, results = run
    _whole(out, results)
    too_wide = [line for line in out.splitlines() if len(line) > 80]
    assert not too_wide, "\n".join(too_wide)


@pytest.mark.parametrize("columns", ["200", None])
def test_piped_output_honours_columns(run, columns):
    """``COLUMNS=200`` lets the table be wider than 80; without ``COLUMNS`` piped output is 80
    columns wide (a sensible width for a file or a pager)."""
    cwd, folder, _, results = run
    out = _mentor(["recipes"], cwd, columns)
    widest = max(len(line) for line in out.splitlines())
    if columns is None:
        assert widest <= 80, widest
    else:
        assert 80 < widest <= 200, widest
    # the leaderboard itself, rendered again by the code the CLI uses, at 200 columns
    from rich.console import Console

    from mentor.report.table import leaderboard
    console = Console(record=True, width=int(columns or 80), file=open(os.devnull, "w"))
    console.print(leaderboard(results))
    text = console.export_text()
    _whole(text, results)
    widest = max(len(line) for line in text.splitlines())
    assert widest <= int(columns or 80)
    if columns:
        assert widest > 80, text


@pytest.mark.parametrize("width", [79, 60, 45])
def test_narrower_consoles_stack_rather_than_cut(run, width):
    """Below what the table needs, the descriptions move under it, then each row becomes a
    block of ``header value`` lines: still no figure or name cut, no line too wide."""
    from rich.console import Console

    from mentor.report.table import leaderboard
    console = Console(record=True, width=width, file=open(os.devnull, "w"))
    console.print(leaderboard(run[3]))
    text = console.export_text()
    _whole(text, run[3])
    assert max(len(line) for line in text.splitlines()) <= width, text
