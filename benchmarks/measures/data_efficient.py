"""``mentor run data-efficient`` (built-in recipe ``data-efficient``: digits, settings
few-labels and compress, scratch / kd / ssld / pruned-kd / ferkd / proto-kd / uskd, 3 seeds).

Figures: README's paragraph on ``mentor run data-efficient`` (every accuracy, the range in
compress, the compute time).
"""

from __future__ import annotations

import time

from ._fmt import pct, pm
from ._run import row, run_builtin

METHODS = ("scratch", "kd", "ssld", "pruned-kd", "ferkd", "proto-kd", "uskd")


def _quick() -> dict:
    from mentor.recipe import builtin_recipes, read_yaml
    raw = read_yaml(builtin_recipes()["data-efficient"])
    teacher = {**raw["teacher"], "train": {**raw["teacher"]["train"], "epochs": 1}}
    return {"teacher": teacher, "train": {**raw["train"], "epochs": 1, "seeds": [0]}}


def measure(quick: bool) -> dict[str, str]:
    t0 = time.process_time()  # one torch thread: CPU seconds, not inflated by other jobs
    res = run_builtin("data-efficient", _quick() if quick else None)
    out = {"compute": f"{time.process_time() - t0:.0f} s"}
    for m in METHODS:
        out[f"few.{m}"] = pm(row(res, "few-labels", m)["test_accuracies"])
    comp = sorted((r for r in res["rows"] if r["setting"] == "compress"),
                  key=lambda r: r["test_accuracy_mean"])
    lo, hi = comp[0], comp[-1]
    out["compress.min"] = pct(lo["test_accuracy_mean"])
    out["compress.min_by"] = ", ".join(f"`{r['method']}`" for r in comp
                                       if r["test_accuracy_mean"] == lo["test_accuracy_mean"])
    out["compress.max"] = pct(hi["test_accuracy_mean"])
    out["compress.max_by"] = ", ".join(f"`{r['method']}`" for r in comp
                                       if r["test_accuracy_mean"] == hi["test_accuracy_mean"])
    return out


from . import measurement  # noqa: E402

measurement("data-efficient", about="`mentor run data-efficient` (digits, few-labels and "
            "compress, 7 methods, 3 seeds): accuracies, the compress range, compute time",
            ci="quick", minutes=1)(measure)
