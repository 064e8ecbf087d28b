"""Active distillation on digits: accuracy vs budget for every selector (3 seeds).

Two budgets, as in the papers: oracle labels (PCoreSet, METHODS.md §51: start from 1 % of the
labels, 3 rounds of 20) and teacher queries (RAD, §30: the same start, 3 rounds of 20 queries
to a deliberately weak teacher). Each seed changes the split. Prints one table per budget and
``RESULT <budget>_<selector> <final mean test accuracy in [0,1]>`` lines.

    python benchmarks/active.py            # ~3 min on one core
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from plain_loops import set_threads  # noqa: E402

import mentor  # noqa: E402
from mentor.active import active_loop  # noqa: E402
from mentor.engine import fit  # noqa: E402
from mentor.methods import get_method  # noqa: E402
from mentor.models import mlp  # noqa: E402
from mentor.recipe import TrainSpec  # noqa: E402
from mentor.registry import SELECTORS  # noqa: E402
from mentor.select import SkillProfile  # noqa: E402
from mentor.teachers import ModuleTeacher  # noqa: E402

SEEDS = (0, 1, 2)
SPEC = TrainSpec(epochs=30, batch_size=16, lr=3e-3)
# the direction each paper claims against random selection (None: no claim)
CLAIMS = {"pcoreset": "PCoreSet > random (oracle labels)", "rad": "RAD > random (teacher "
          "queries)", "llkd": "LLKD: more data-efficient pseudo-labels", "kcenter": "core-set "
          "covers the pool", "margin": None, "entropy": None, "teacher_confidence": None,
          "random": None}


def weak_teacher(sp):
    full = mentor.data.Split(sp.train.x, sp.train.y, torch.ones(len(sp.train), dtype=torch.bool))
    torch.manual_seed(0)
    net = fit(mlp(sp.input_shape, 10, hidden=[16]), full, sp.val,
              objectives=get_method("scratch").plan().objectives,
              spec=TrainSpec(epochs=5, lr=1e-3), seed=0, num_classes=10).model
    return ModuleTeacher(net, 10)


def curve(name: str, budget: str) -> list[float]:
    finals = []
    for seed in SEEDS:
        sp = mentor.load_data("digits", labeled_fraction=0.01, split_seed=seed)
        teacher = weak_teacher(sp)
        selector = SELECTORS.get(name)()
        if hasattr(selector, "reseed"):
            selector.reseed(seed)
        if isinstance(selector, SkillProfile):
            continue  # a weighting, not a picker of new rows
        kw = (dict(oracle_per_round=20) if budget == "oracle"
              else dict(teacher_per_round=20))
        res = active_loop(sp, make_student=lambda: mlp(sp.input_shape, 10, hidden=[32]),
                          selector=selector, rounds=3, spec=SPEC, seed=seed, teacher=teacher,
                          **kw)
        finals.append([r.test_accuracy for r in res.rounds])
    return [statistics.fmean(r[i] for r in finals) for i in range(4)] if finals else []


def main() -> None:
    set_threads(1)
    names = [n for n in SELECTORS.names() if n not in ("skills",)]
    results = {}
    for budget in ("oracle", "teacher"):
        print(f"\n{budget} budget: test accuracy after rounds 0-3 (mean of 3 seeds)")
        print("| selector | round 0 | round 1 | round 2 | round 3 | paper's claim |")
        print("|---|---|---|---|---|---|")
        for name in names:
            c = curve(name, budget)
            results[(budget, name)] = c[-1]
            print(f"| {name} | " + " | ".join(f"{100 * v:.2f} %" for v in c)
                  + f" | {CLAIMS.get(name) or '-'} |", flush=True)
    for (budget, name), v in results.items():
        print(f"RESULT {budget}_{name} {v:.4f}")


if __name__ == "__main__":
    main()
