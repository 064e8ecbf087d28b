"""KD for data pruning (METHODS.md §57): students trained on a random fraction f of the
digits training rows (a new subset per seed) with KD weight α(f) (method ``pruned-kd``) and
without KD (α 0, the same subsets), f 0.5 / 0.2 / 0.1, teacher and students of the
built-in digits recipes (all labels, MLP 64-32-10, 40 epochs, 3 seeds). Also f 0.5 when the
student may see 10 % of the labels (the teacher saw them all, as in ``mentor run``), against
the same subsets without KD and against ``scratch`` on every row.

:func:`pruned_students` is what ``tests/methods/test_pruning.py`` asserts on.
Figures: docs/methods.md's row "57 KD for data pruning".
"""

from __future__ import annotations

from ._fmt import pm, verdict, wins
from ._kd_common import recipe_teacher, student_accuracy

FRACTIONS = (0.5, 0.2, 0.1)
SEEDS = (0, 1, 2)


def pruned_students(splits, teacher, fractions=FRACTIONS, seeds=SEEDS, epochs: int = 40
                    ) -> dict[tuple[float, bool], list[float]]:
    """``{(f, with_kd): [test accuracy per seed]}``; without KD is ``pruned-kd`` with α 0
    (scratch on the same subset)."""
    out = {}
    for f in fractions:
        for kd in (True, False):
            params = {"keep_fraction": f, **({} if kd else {"alpha": 0.0})}
            out[(f, kd)] = [student_accuracy(splits, "pruned-kd", params, teacher=teacher,
                                             seed=s, epochs=epochs) for s in seeds]
    return out


def few_label_half(teacher, seeds=SEEDS, epochs: int = 40) -> dict[str, list[float]]:
    """f 0.5 with 10 % of the digits labels visible: ``{"kd": ..., "no_kd": ...}`` on the same
    halves and ``"scratch_all_rows"`` (every row, no KD); test accuracy per seed."""
    import mentor
    few = mentor.load_data("digits", labeled_fraction=0.1)
    accs = pruned_students(few, teacher, fractions=(0.5,), seeds=seeds, epochs=epochs)
    return {"kd": accs[(0.5, True)], "no_kd": accs[(0.5, False)],
            "scratch_all_rows": [student_accuracy(few, "scratch", seed=s, epochs=epochs)
                                 for s in seeds]}


def measure(quick: bool) -> dict[str, str]:
    import mentor
    from mentor.methods import pruning_kd_weight
    s = mentor.load_data("digits")
    teacher, _ = recipe_teacher(s, epochs=2 if quick else None)
    accs = pruned_students(s, teacher, seeds=(0,) if quick else SEEDS,
                           epochs=2 if quick else 40)
    few = few_label_half(teacher, seeds=(0,) if quick else SEEDS, epochs=2 if quick else 40)
    kd, no, full = few["kd"], few["no_kd"], few["scratch_all_rows"]
    out = {"few.kd": pm(kd), "few.no_kd": pm(no), "few.scratch_all_rows": pm(full),
           "few.verdict": verdict(kd, no), "few.wins": wins(kd, no),
           "few.vs_all_rows": verdict(kd, full), "few.vs_all_rows.wins": wins(kd, full)}
    for f in FRACTIONS:
        kd, no = accs[(f, True)], accs[(f, False)]
        key = f"f{f:g}".replace(".", "")
        out.update({f"{key}.kd": pm(kd), f"{key}.no_kd": pm(no),
                    f"{key}.verdict": verdict(kd, no), f"{key}.wins": wins(kd, no),
                    f"{key}.rows": f"{round(f * len(s.train)):,}",
                    f"{key}.alpha": f"{pruning_kd_weight(f):g}"})
    return out


from . import measurement  # noqa: E402

measurement("pruning", about="KD for data pruning: `pruned-kd` vs the same subsets without "
            "KD at f 0.5 / 0.2 / 0.1 (digits, recipe teacher, 3 seeds)", ci="quick",
            minutes=0.5)(measure)
