"""FerKD calibration with a weak teacher (METHODS.md §15): digits, all labels, a teacher
MLP 64-64-10 trained 3 epochs; students MLP 64-32-10 (30 epochs, 3 seeds) distilled with
soft-label KD at T 1 without CE (``kd``, α 1), with ``ferkd`` (its calibration of the least
reliable targets), and trained from scratch.

:func:`weak_teacher_students` is what
``tests/methods/test_ferkd.py::test_calibration_rescues_distillation_from_a_weak_teacher``
asserts on. Figures: docs/methods.md's row "15 FerKD" (weak teacher).
"""

from __future__ import annotations

import torch

from ._fmt import pct, pm, verdict, wins
from ._kd_common import student_accuracy

SEEDS = (0, 1, 2)
METHODS = {"kd": {"temperature": 1.0, "alpha": 1.0}, "ferkd": {}, "scratch": {}}


def weak_teacher(splits, epochs: int = 3):
    """MLP 64-64-10 trained ``epochs`` epochs (batch 64, lr 1e-3, seed 0) on every label."""
    from mentor.engine import fit
    from mentor.methods import get_method
    from mentor.models import mlp
    from mentor.recipe import TrainSpec
    from mentor.teachers import ModuleTeacher
    torch.manual_seed(0)
    t = fit(mlp(splits.input_shape, 10, hidden=[64]), splits.train, splits.val,
            objectives=get_method("scratch").plan().objectives, spec=TrainSpec(epochs=epochs),
            seed=0, num_outputs=10)
    return ModuleTeacher(t.model, 10)


def weak_teacher_students(splits, teacher, seeds=SEEDS, epochs: int = 30,
                          methods=tuple(METHODS)) -> dict[str, list[float]]:
    """``{method: [test accuracy per seed]}`` for ``kd`` (T 1, α 1), ``ferkd``, ``scratch``."""
    return {m: [student_accuracy(splits, m, METHODS[m], teacher=teacher, seed=s,
                                 epochs=epochs) for s in seeds] for m in methods}


def measure(quick: bool) -> dict[str, str]:
    import mentor
    from mentor.engine.evaluate import evaluate
    s = mentor.load_data("digits")
    teacher = weak_teacher(s)
    accs = weak_teacher_students(s, teacher, seeds=(0,) if quick else SEEDS,
                                 epochs=2 if quick else 30)
    return {"teacher": pct(evaluate(teacher.module, s.test.x, s.test.y)["accuracy"], 1),
            "kd": pm(accs["kd"]), "ferkd": pm(accs["ferkd"]), "scratch": pm(accs["scratch"]),
            "ferkd_vs_kd": verdict(accs["ferkd"], accs["kd"]),
            "ferkd_vs_kd.wins": wins(accs["ferkd"], accs["kd"]),
            "ferkd_vs_scratch": verdict(accs["ferkd"], accs["scratch"])}


from . import measurement  # noqa: E402

measurement("ferkd-weak-teacher", about="FerKD vs soft-label KD from a weak teacher (digits, "
            "teacher 3 epochs, students 30 epochs, 3 seeds) and scratch", ci="quick",
            minutes=0.5)(measure)
