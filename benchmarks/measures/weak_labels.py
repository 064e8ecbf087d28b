"""QUEACO-style weak-label refinement (METHODS.md §12): reruns the setup of
``tests/methods/test_weak_labels.py::test_teacher_refined_weak_labels_beat_the_weak_labels``
(the test imports :func:`weak_setting` and :func:`student`).

Digits with 5 % strong labels; the other training rows carry weak labels that are wrong with
probability 0.3, either always the next class (``next``) or a uniformly drawn other class
(``uniform``). A teacher MLP (64 hidden, 60 epochs, seed 0) is trained on the strong labels;
a student MLP (32 hidden, 20 epochs) learns the unlabeled rows' weak labels as they are
(threshold 2: never overridden) or refined (the teacher overrides a weak label where it is
>= 0.9 confident of another class), student seeds 0-4. Figures: the teacher's test accuracy,
the label precision on the unlabeled rows (weak vs refined), the students' test accuracies
and the project's verdict.
"""

from __future__ import annotations

import statistics
from functools import lru_cache

from . import measurement
from ._fmt import num, pct, pm, verdict, wins

SEEDS = (0, 1, 2, 3, 4)
THRESHOLD = 0.9
NEVER = 2.0  # a threshold above 1: the weak labels are used as they are


@lru_cache(maxsize=2)
def weak_setting(flip: str = "next", teacher_epochs: int = 60):
    """(splits with weak labels, the teacher trained on the strong labels)."""
    import torch

    import mentor
    from mentor.data import Split
    from mentor.engine import fit
    from mentor.methods import get_method
    from mentor.models import mlp
    from mentor.recipe import TrainSpec
    from mentor.teachers import ModuleTeacher
    sp = mentor.load_data("digits", labeled_fraction=0.05, weak_noise=0.3, weak_flip=flip)
    tr = sp.train
    strong = Split(tr.x[tr.labeled], tr.y[tr.labeled],
                   torch.ones(int(tr.labeled.sum()), dtype=torch.bool))
    torch.manual_seed(0)
    net = fit(mlp(sp.input_shape, 10, hidden=[64]), strong, sp.val,
              objectives=get_method("scratch").plan().objectives,
              spec=TrainSpec(epochs=teacher_epochs, batch_size=16, lr=3e-3), seed=0,
              num_outputs=10).model
    return sp, ModuleTeacher(net, 10)


def student(sp, teacher, threshold: float, seed: int, epochs: int = 20):
    """(test accuracy, history) of a student taught the (refined) weak labels."""
    import torch

    from mentor.engine import fit
    from mentor.engine.evaluate import evaluate
    from mentor.losses.objective import Objective
    from mentor.models import mlp
    from mentor.recipe import TrainSpec
    from mentor.targets import WeakLabelRefiner
    objectives = [Objective("ce", 1.0, rows="labeled"),
                  Objective("pseudo_ce", 1.0, rows="unlabeled")]
    torch.manual_seed(seed)
    res = fit(mlp(sp.input_shape, 10, hidden=[32]), sp.train, sp.val, objectives=objectives,
              refiners=[WeakLabelRefiner(threshold)], teacher=teacher,
              spec=TrainSpec(epochs=epochs, batch_size=64, lr=3e-3, collapse_steps=0),
              seed=seed, num_outputs=10)
    return evaluate(res.model, sp.test.x, sp.test.y)["accuracy"], res.history


def compare(flip: str, seeds=SEEDS, epochs: int = 20, teacher_epochs: int = 60) -> dict:
    """``{"weak"|"refined": {"acc": [...], "precision": [...]}, "teacher": accuracy}``."""
    from mentor.engine.evaluate import evaluate
    sp, teacher = weak_setting(flip, teacher_epochs)
    out: dict = {"teacher": evaluate(teacher.module, sp.test.x, sp.test.y)["accuracy"]}
    for arm, thr in (("weak", NEVER), ("refined", THRESHOLD)):
        runs = [student(sp, teacher, thr, s, epochs) for s in seeds]
        out[arm] = {"acc": [a for a, _ in runs],
                    "precision": [h["pl_precision"][-1] for _, h in runs]}
    return out


@measurement("weak-labels", about="weak labels 30 % wrong (next class / uniform) refined by a "
             "teacher on the 5 % strong digits labels (τ 0.9): label precision and student "
             "accuracy, student seeds 0-4", ci="quick", minutes=1)
def measure(quick: bool) -> dict[str, str]:
    seeds, epochs, t_epochs = ((0,), 1, 2) if quick else (SEEDS, 20, 60)
    out: dict[str, str] = {}
    for flip in ("next", "uniform"):
        r = compare(flip, seeds, epochs, t_epochs)
        weak, ref = r["weak"], r["refined"]
        if flip == "next":  # the same teacher for both kinds of noise (the strong labels)
            out["teacher"] = pct(r["teacher"], 1)
        out[f"{flip}.precision_weak"] = num(statistics.fmean(weak["precision"]), 2)
        out[f"{flip}.precision_refined"] = num(statistics.fmean(ref["precision"]), 2)
        out[f"{flip}.weak"] = pm(weak["acc"])
        out[f"{flip}.refined"] = pm(ref["acc"])
        out[f"{flip}.verdict"] = verdict(ref["acc"], weak["acc"])
        out[f"{flip}.wins"] = wins(ref["acc"], weak["acc"])
    return out
