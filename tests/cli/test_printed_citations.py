"""What the CLI prints cites papers and the repository's own docs, never the team's private
catalogue (``METHODS.md``, which users do not have); every ``docs/methods.md`` reference it
prints names a heading that exists there."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs" / "methods.md"
COMMANDS = ([], ["run"], ["active"], ["bench"], ["export"], ["report"], ["label"], ["inspect"],
            ["recipes"], ["recipes", "validate"])


def _headings() -> set[str]:
    return {m.group(1).strip() for m in re.finditer(r"^#+\s+(.+)$", DOCS.read_text("utf-8"),
                                                    re.M)}


def _printed(mentor) -> dict[str, str]:
    out = {}
    for args in [["recipes"], *[[*c, "--help"] for c in COMMANDS]]:
        proc = mentor(*args)
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, (args, proc.stderr)
        out[" ".join(args)] = proc.stdout + proc.stderr
    return out


@pytest.fixture(scope="module")
def printed(tmp_path_factory, cli):
    cwd = tmp_path_factory.mktemp("cite")
    return _printed(lambda *args: cli(args, cwd))


def test_nothing_printed_cites_the_private_catalogue(printed):
    for args, text in printed.items():
        assert "METHODS.md" not in text, (args, [ln for ln in text.splitlines()
                                                 if "METHODS.md" in ln])
        # "§N" alone was the catalogue's section numbering
        assert not re.search(r"§\s*\d", text), (args, [ln for ln in text.splitlines()
                                                       if "§" in ln])


def test_docs_references_name_existing_headings(printed):
    headings = _headings()
    cited = 0
    for args, text in printed.items():
        flat = " ".join(text.split())
        for m in re.finditer(r"docs/methods\.md", flat):
            section = re.match(r', section "([^"]+)"', flat[m.end():])
            assert section, (args, flat[m.start():m.start() + 120])
            assert section.group(1) in headings, (args, section.group(1), sorted(headings))
            cited += 1
    assert cited, "the listing of methods should point at docs/methods.md"
