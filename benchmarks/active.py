"""Active distillation on digits: accuracy vs budget for every selector (3 seeds).

Two budgets, as in the papers: oracle labels (PCoreSet, METHODS.md §51: start from 1 % of the
labels, 3 rounds of 20) and teacher queries (RAD, §30: the same start, 3 rounds of 20 queries
to a deliberately weak teacher, an MLP 64-16-10 trained 5 epochs on every training label).
Each seed changes the split. Every registered selector that picks rows runs (``skills`` is a
weighting, not a picker), plus ``rad-maxmin`` (RAD's max-min form, ``rad(mode="maxmin")``).

The loop is :func:`benchmarks.measures.active.selector_curves`, which
``tests/methods/test_active.py`` runs too. Prints one table per budget: the mean test accuracy after rounds 0-3, then after round 3 the
mean ± population std over the seeds and each seed's value, and machine-readable lines

    RESULT <budget>_<selector> <mean test accuracy after the last round, in [0,1]>
    RESULT <budget>_<selector>_seeds <the per-seed values, comma-separated, seed order>
    RESULT script_s <wall seconds>

    python benchmarks/active.py            # ~6 min on one core
    python benchmarks/active.py --quick    # 1 seed, 1 epoch per student: a smoke test
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from benchmarks.measures.active import (ROUNDS, SEEDS, active_setting,  # noqa: E402
                                        selector_curves)
from benchmarks.plain_loops import set_threads  # noqa: E402
from mentor.registry import SELECTORS  # noqa: E402
from mentor.select import SkillProfile  # noqa: E402

EPOCHS = 30
BUDGETS = ("oracle", "teacher")
# the direction each paper claims against random selection (None: no claim)
CLAIMS = {"pcoreset": "PCoreSet > random (oracle labels)", "rad": "RAD > random (teacher "
          "queries)", "llkd": "LLKD: more data-efficient pseudo-labels", "kcenter": "core-set "
          "covers the pool", "margin": None, "entropy": None, "teacher_confidence": None,
          "random": None}


def selectors() -> list[str]:
    """The selectors that pick rows (registered ones, plus RAD's max-min form)."""
    names = [n for n in SELECTORS.names() if not isinstance(SELECTORS.get(n)(), SkillProfile)]
    return names + ["rad-maxmin"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="seed 0 only and 1 epoch per "
                    "student: checks the script runs; its accuracies mean little")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    set_threads(1)
    seeds = SEEDS[:1] if args.quick else SEEDS
    epochs = 1 if args.quick else EPOCHS
    setting = {seed: active_setting(seed) for seed in seeds}  # split + weak teacher, once
    finals = {}
    for budget in BUDGETS:
        print(f"\n{budget} budget: test accuracy after rounds 0-{ROUNDS} (mean of "
              f"{len(seeds)} seeds); after round {ROUNDS}: mean ± std and per seed "
              f"({', '.join(map(str, seeds))})")
        print(f"| selector | {' | '.join(f'round {r}' for r in range(ROUNDS + 1))} | "
              f"round {ROUNDS} mean ± std | per seed | paper's claim |")
        print("|---|" + "---|" * (ROUNDS + 4))
        for name in selectors():
            c = selector_curves(name, budget, setting, epochs)
            last = [run[-1] for run in c]
            finals[(budget, name)] = last
            means = [statistics.fmean(run[i] for run in c) for i in range(ROUNDS + 1)]
            std = statistics.pstdev(last) if len(last) > 1 else 0.0
            print(f"| {name} | " + " | ".join(f"{100 * v:.2f} %" for v in means)
                  + f" | {100 * means[-1]:.2f} ± {100 * std:.2f} % | "
                  + " / ".join(f"{100 * v:.2f}" for v in last)
                  + f" | {CLAIMS.get(name) or '-'} |", flush=True)
    for (budget, name), last in finals.items():
        print(f"RESULT {budget}_{name} {statistics.fmean(last):.4f}")
        print(f"RESULT {budget}_{name}_seeds {','.join(f'{v:.4f}' for v in last)}")
    print(f"RESULT script_s {time.perf_counter() - t0:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
