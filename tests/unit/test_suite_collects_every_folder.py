"""Every folder of tests/ is collected by a plain ``pytest`` (the README's test command):
pytest skips folders whose names match ``norecursedirs``, and its default list names
``dist``, so tests/dist -- the 2-process runs -- went unrun until pyproject.toml set the list
without it."""

from __future__ import annotations

import fnmatch
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_no_test_folder_matches_norecursedirs(pytestconfig):
    patterns = pytestconfig.getini("norecursedirs")
    folders = {p.parent for p in TESTS.rglob("test_*.py")}
    skipped = sorted(str(f.relative_to(TESTS)) for f in folders
                     for part in f.relative_to(TESTS.parent).parts
                     if any(fnmatch.fnmatch(part, pat) for pat in patterns))
    assert not skipped, f"test folders pytest would not collect: {skipped}"
