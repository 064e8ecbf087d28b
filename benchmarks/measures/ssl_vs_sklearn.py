"""`benchmarks/ssl_vs_sklearn.py`: mentor's presets against scikit-learn's semi-supervised
baselines on digits (5 % and 10 % labels, split seeds 0-2, the ``ssl`` recipe's CNN and 300
epochs; scikit-learn's input and hyperparameters and mentor's preset picked on the
validation split, the test split scored once). The quick form runs the script's ``--quick``
smoke run (split seed 0, 2 epochs, the four presets the docs quote)."""

from __future__ import annotations

import json
import statistics
import tempfile
from pathlib import Path

from . import measurement
from ._fmt import pm, seeds, verdict, wins
from ._run import run_script

QUOTED = ("fixmatch", "flexmatch", "freematch", "softmatch")  # presets methods.md quotes
SKLEARN = ("labelspreading", "selftraining_svc")
LAST_RUN = Path(tempfile.gettempdir()) / "mentor-ssl-vs-sklearn.json"  # the script's output


def figures(doc: dict) -> dict[str, str]:
    """The docs' figures from the script's ``--json`` output."""
    out: dict[str, str] = {}
    best_accs = {}
    for pct, f in doc["fractions"].items():
        test, val = f["test"], f["val"]
        presets = [m for m in test if m != "supervised" and m not in SKLEARN]
        best = f["best_by_validation"]
        top = max(presets, key=lambda m: statistics.fmean(test[m]))
        best_accs[pct] = test[best]
        out[f"best_{pct}"] = pm(test[best])
        out[f"best_{pct}.name"] = best
        out[f"best_{pct}.seeds"] = seeds(test[best], digits=2)
        out[f"best_{pct}.vs_supervised"] = verdict(test[best], test["supervised"])
        out[f"best_{pct}.wins_supervised"] = wins(test[best], test["supervised"])
        out[f"best_{pct}.vs_labelspreading"] = verdict(test[best], test["labelspreading"])
        out[f"best_{pct}.wins_labelspreading"] = wins(test[best], test["labelspreading"])
        out[f"top_test_{pct}"] = pm(test[top])
        out[f"top_test_{pct}.name"] = top
        out[f"supervised_{pct}"] = pm(test["supervised"])
        for kind in SKLEARN:
            out[f"{kind}_{pct}"] = pm(test[kind])
            out[f"{kind}_{pct}.config"] = f["picked"][kind]
        for m in QUOTED:
            out[f"{m}_{pct}"] = pm(test[m])
        assert val[best] == max((val[m] for m in presets), key=statistics.fmean)
    out["best.ten_vs_five"] = verdict(best_accs["10"], best_accs["5"])
    return out


@measurement("ssl-vs-sklearn", about="`python benchmarks/ssl_vs_sklearn.py`: mentor's "
             "presets (picked on validation) vs LabelSpreading and SelfTraining(SVC) (input and "
             "grid picked on validation) vs supervised on the same views; digits 5 %/10 % "
             "labels, split seeds 0-2, CNN, 300 epochs", ci="quick", minutes=100)
def measure(quick: bool) -> dict[str, str]:
    with tempfile.TemporaryDirectory(prefix="measure-ssl-sklearn-") as d:
        path = Path(d) / "ssl.json"
        args = ["--json", str(path)]
        if quick:
            args += ["--quick", "--presets", ",".join(QUOTED)]
        run_script("benchmarks/ssl_vs_sklearn.py", *args, timeout=6 * 3600)
        doc = json.loads(path.read_text())
    if not quick:
        LAST_RUN.write_text(json.dumps(doc, indent=1))
    return figures(doc)
