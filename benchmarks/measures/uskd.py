"""USKD (METHODS.md §18) against label smoothing and plain cross-entropy: digits, all
labels, MLP 64-32-10 students, 40 epochs (batch 64, lr 3e-3, as the built-in digits
recipes), 3 seeds, no teacher. ``uskd`` with its official config (α 1, β 0.1, μ 0.005),
``scratch`` with label smoothing 0.1, ``scratch``.

Figures: docs/methods.md's row "18 USKD". Rerun after any change to ``mentor.losses.uskd``.
"""

from __future__ import annotations

from ._fmt import pm, verdict, wins
from ._kd_common import student_accuracy

SEEDS = (0, 1, 2)
METHODS = {"uskd": ("uskd", {"alpha": 1.0, "beta": 0.1, "mu": 0.005}),
           "ls": ("scratch", {"label_smoothing": 0.1}),
           "scratch": ("scratch", {})}


def self_kd_students(splits, seeds=SEEDS, epochs: int = 40) -> dict[str, list[float]]:
    return {k: [student_accuracy(splits, m, p, seed=s, epochs=epochs) for s in seeds]
            for k, (m, p) in METHODS.items()}


def measure(quick: bool) -> dict[str, str]:
    import mentor
    accs = self_kd_students(mentor.load_data("digits"), seeds=(0,) if quick else SEEDS,
                            epochs=2 if quick else 40)
    u, ls, ce = accs["uskd"], accs["ls"], accs["scratch"]
    return {"uskd": pm(u), "ls": pm(ls), "scratch": pm(ce),
            "uskd_vs_scratch": verdict(u, ce), "uskd_vs_scratch.wins": wins(u, ce),
            "uskd_vs_ls": verdict(u, ls), "ls_vs_scratch": verdict(ls, ce)}


from . import measurement  # noqa: E402

measurement("uskd", about="USKD vs label smoothing 0.1 vs cross-entropy (digits, all labels, "
            "MLP 64-32-10, 3 seeds)", ci="quick", minutes=0.5)(measure)
