"""LAD (METHODS.md §1): the label-code ablation of
``tests/methods/test_lad.py::test_without_consistency_the_teacher_leans_on_the_label_code``
(:func:`label_code_gaps`, which the test calls) and ``mentor run lad`` (built-in recipe
``lad``: label-assisted teacher with and without dual-path consistency, a plain teacher, KD
students and scratch, 3 seeds).

Figures: docs/methods.md's row "1 LAD (label-assisted teacher, dual-path consistency L12)"
and README's "Teachers that see more" paragraph.
"""

from __future__ import annotations

import torch

from ._fmt import pct, pm, verdict
from ._run import row, run_builtin

CONSISTENCY = (0.0, 5.0)  # without the dual-path term, with it (LAD's w 5)


def train_label_assisted(digits, consistency: float, seed: int, epochs: int = 20):
    """The test's teacher: MLP (64+10)-8-10 reading a one-hot label code with noise σ 0.3,
    trained with the dual-path objective of weight ``consistency``."""
    from mentor.engine import fit
    from mentor.models import mlp
    from mentor.recipe import TrainSpec
    from mentor.teachers import LabelAssistedNet, dual_path_objectives
    torch.manual_seed(seed)
    lad = LabelAssistedNet(mlp((74,), 10, hidden=[8]), 10, train_noise=0.3, seed=seed)
    res = fit(lad, digits.train, digits.val, objectives=dual_path_objectives(consistency),
              spec=TrainSpec(epochs=epochs, batch_size=64, lr=3e-3), seed=seed,
              num_outputs=10)
    return res.model


def label_code_gaps(digits, seeds=(0, 1), epochs: int = 20) -> dict[float, list[float]]:
    """Per consistency weight (0 and 5), per seed: test accuracy with the true label code
    minus test accuracy with a wrong code (each test row's label shifted by a random 1..9)."""
    from mentor.engine.evaluate import evaluate
    tx, ty = digits.test.x, digits.test.y
    shift = torch.randint(1, 10, ty.shape, generator=torch.Generator().manual_seed(0))
    wrong = (ty + shift) % 10
    gaps: dict[float, list[float]] = {}
    for w in CONSISTENCY:
        gaps[w] = []
        for seed in seeds:
            m = train_label_assisted(digits, w, seed, epochs)
            true_acc = evaluate(m, tx, ty, labels_as_input=True)["accuracy"]
            with torch.no_grad():
                wrong_acc = float((m(tx, wrong).argmax(1) == ty).float().mean())
            gaps[w].append(true_acc - wrong_acc)
    return gaps


def _gaps(values: list[float]) -> str:
    return " / ".join(f"{v:.3f}" for v in values)


def _quick_lad() -> dict:
    from mentor.recipe import builtin_recipes, read_yaml
    raw = read_yaml(builtin_recipes()["lad"])
    teacher = {**raw["teacher"], "train": {**raw["teacher"]["train"], "epochs": 2}}
    return {"teacher": teacher, "train": {**raw["train"], "epochs": 2, "seeds": [0]}}


def measure(quick: bool) -> dict[str, str]:
    import mentor
    gaps = label_code_gaps(mentor.load_data("digits"), seeds=(0,) if quick else (0, 1),
                           epochs=2 if quick else 20)
    out = {"test.gap_without": _gaps(gaps[0.0]), "test.gap_with": _gaps(gaps[5.0])}
    res = run_builtin("lad", _quick_lad() if quick else None)
    teachers = {s["name"]: s["teacher"] for s in res["settings"]}
    for setting, key in (("lad", "lad"), ("lad-no-consistency", "no_consistency")):
        out[f"run.teacher.{key}.with_code"] = pct(teachers[setting]["test_accuracy"])
        out[f"run.teacher.{key}.without_code"] = pct(
            teachers[setting]["test_accuracy_without_labels"])
    kd = {s: row(res, s, "kd")["test_accuracies"]
          for s in ("lad", "lad-no-consistency", "plain-teacher")}
    scratch = row(res, "lad", "scratch")["test_accuracies"]
    out.update({"run.kd.lad": pm(kd["lad"]), "run.kd.no_consistency": pm(kd["lad-no-consistency"]),
                "run.kd.plain": pm(kd["plain-teacher"]), "run.scratch": pm(scratch),
                "run.kd.lad_vs_scratch": verdict(kd["lad"], scratch),
                "run.kd.lad_vs_plain": verdict(kd["lad"], kd["plain-teacher"])})
    return out


from . import measurement  # noqa: E402

measurement("lad", about="LAD: label-code ablation of tests/methods/test_lad.py (teacher "
            "(64+10)-8-10, 2 seeds) and `mentor run lad` (3 seeds)", ci="quick",
            minutes=1)(measure)
