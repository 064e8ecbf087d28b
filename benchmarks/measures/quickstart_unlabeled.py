"""docs/quickstart.md, "Use my unlabeled data": the output of
examples/use_my_unlabeled_data.py (FixMatch against the labels alone on the same views and
steps, 3 seeds), and the gap between them by the project's rule."""

from __future__ import annotations

import re

from mentor.commands.bench import judge

from . import measurement
from ._run import run_script


def _acc(lines: list[str], name: str) -> tuple[float, float]:
    (line,) = [x for x in lines if x.strip().startswith(f"{name}:")]
    m = re.search(r"accuracy ([0-9.]+) ± ([0-9.]+) %", line)
    return float(m.group(1)), float(m.group(2))


@measurement("quickstart-unlabeled", about="docs/quickstart.md \"Use my unlabeled data\": "
             "`python examples/use_my_unlabeled_data.py` (MLP, 50 labels + 1,597 unlabeled "
             "digits, labels only vs FixMatch on the same views, 3 seeds)", ci="full",
             minutes=0.3)
def measure(quick: bool) -> dict[str, str]:
    lines = run_script("examples/use_my_unlabeled_data.py").splitlines()
    (bm, bs), (fm, fs) = _acc(lines, "labels only"), _acc(lines, "fixmatch")
    return {"labels_only": f"{bm:.2f} ± {bs:.2f} %", "fixmatch": f"{fm:.2f} ± {fs:.2f} %",
            "gain": f"{fm - bm:.1f}",
            "verdict": judge(fm / 100, fs / 100, bm / 100, bs / 100, ">").observed}
