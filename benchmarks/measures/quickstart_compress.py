"""docs/quickstart.md, "Compress my model": the output of examples/compress_my_model.py."""

from __future__ import annotations

import re

from . import measurement
from ._run import run_script


def _acc(line: str) -> tuple[float, float]:
    m = re.search(r"accuracy ([0-9.]+) ± ([0-9.]+) %", line)
    return float(m.group(1)), float(m.group(2))


@measurement("quickstart", about="docs/quickstart.md \"Compress my model\": "
             "`python examples/compress_my_model.py` (teacher, scratch and KD students over 3 "
             "seeds, speed-up)", ci="full", minutes=0.3, volatile=("compress.speedup",))
def measure(quick: bool) -> dict[str, str]:
    lines = run_script("examples/compress_my_model.py").splitlines()
    teacher = next(x for x in lines if x.startswith("teacher:"))
    scratch = next(x for x in lines if x.startswith("student scratch"))
    kd = next(x for x in lines if x.startswith("student      kd"))
    speed = next(x for x in lines if x.startswith("speed-up"))
    t_params = int(re.search(r"([0-9,]+) parameters", teacher).group(1).replace(",", ""))
    s_params = int(re.search(r"([0-9,]+) parameters", kd).group(1).replace(",", ""))
    (sm, ss), (km, ks) = _acc(scratch), _acc(kd)
    return {
        "compress.teacher": re.search(r"accuracy ([0-9.]+ %)", teacher).group(1),
        "compress.scratch": f"{sm:.2f} ± {ss:.2f} %",
        "compress.kd": f"{km:.2f} ± {ks:.2f} %",
        "compress.gain": f"{km - sm:.0f}",
        "compress.speedup": re.search(r": ([0-9.]+x)$", speed).group(1),
        "compress.fewer": f"{t_params / s_params:.0f}×",
    }
