"""The README's Python examples run as written, except a block marked
``<!-- not run: REASON -->`` on the line before it (one that needs a server); at most one
such block, and it must still compile."""

import re
from pathlib import Path

README = Path(__file__).parents[2] / "README.md"
BLOCK = re.compile(r"(<!-- not run: [^>]+ -->\n)?```python\n(.*?)```", flags=re.S)


def test_readme_python_example_runs(capsys):
    blocks = BLOCK.findall(README.read_text())
    assert blocks, "README has no python example"
    skipped = [code for mark, code in blocks if mark]
    assert len(skipped) <= 1, "more than one README example is marked not run"
    for mark, code in blocks:
        compiled = compile(code, "README.md", "exec")
        if not mark:
            exec(compiled, {"__name__": "readme"})
    out = capsys.readouterr().out
    acc = float(re.search(r"'accuracy': ([0-9.]+)", out).group(1))
    assert acc > 0.9
