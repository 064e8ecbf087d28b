"""Multi-stage teacher (AlexaTM, METHODS.md §6): the effect test of
``tests/methods/test_stages.py`` (:func:`stage_teachers` and :func:`kd_students`, which the
test calls: CNN 16-16 teachers, MLP 40-64-10 students, 25 epochs, 3 seeds) and
``mentor run stages`` (built-in recipe ``stages``: CNN 32-32-32 teachers adapted, stage 1
only and in-domain only; KD students and scratch, 3 seeds).

Figures: docs/methods.md's row "6 AlexaTM" and README's paragraph on ``mentor run stages``.
"""

from __future__ import annotations

import torch

from ._fmt import pct, pm, verdict, wins
from ._kd_common import generated_once
from ._run import row, run_builtin

TEACHER = {"model": "cnn", "channels": [16, 16], "kernel_size": 5, "batchnorm": True,
           "pool": "flatten", "seed": 0,
           "pretrain": [{"name": "generic", "data": {"source": "mnist1d-shifted"},
                         "train": {"epochs": 4, "batch_size": 128, "lr": 0.003}}],
           "train": {"epochs": 6, "batch_size": 64, "lr": 0.003}}


def stage_teachers(in_domain, teacher: dict = TEACHER) -> dict[bool, tuple]:
    """``{adapt: (teacher, info)}``: the stage-1 (generic) teacher and the same teacher
    adapted on the in-domain training labels."""
    from mentor.recipe import TeacherSpec, TrainSpec
    from mentor.commands.run import stage_splits, train_teacher
    stages = stage_splits(TeacherSpec(**teacher), in_domain)
    return {adapt: train_teacher(TeacherSpec(**teacher, adapt=adapt), in_domain,
                                 TrainSpec(epochs=1), None, stages=stages)
            for adapt in (False, True)}


def kd_students(teachers: dict, in_domain, seeds=(0, 1, 2), epochs: int = 25
                ) -> dict[bool, list[float]]:
    """Test accuracy of KD students (MLP 40-64-10, T 4, α 0.9) of each teacher, per seed."""
    from mentor.engine.evaluate import evaluate
    from mentor.methods import get_method
    from mentor.models import build_model
    from mentor.recipe import TrainSpec
    kd = get_method("kd").plan(temperature=4.0, alpha=0.9)
    accs: dict[bool, list[float]] = {}
    for adapt, (teacher, _) in teachers.items():
        accs[adapt] = []
        for seed in seeds:
            torch.manual_seed(seed)
            student = build_model("mlp", (40,), 10, hidden=[64])
            res = kd.fit(student, in_domain.train, in_domain.val, teacher=teacher,
                         spec=TrainSpec(epochs=epochs, batch_size=64, lr=3e-3), seed=seed,
                         num_outputs=10)
            accs[adapt].append(evaluate(res.model, in_domain.test.x,
                                        in_domain.test.y)["accuracy"])
    return accs


def _three(values: list[float]) -> str:
    return " / ".join(f"{v:.3f}" for v in values)


def _quick_stages() -> dict:
    from mentor.recipe import builtin_recipes, read_yaml
    raw = read_yaml(builtin_recipes()["stages"])
    t = raw["teacher"]
    teacher = {**t, "train": {**t["train"], "epochs": 1},
               "pretrain": [{**p, "train": {**p["train"], "epochs": 1}} for p in t["pretrain"]]}
    return {"teacher": teacher, "train": {**raw["train"], "epochs": 1, "seeds": [0]}}


def measure(quick: bool) -> dict[str, str]:
    if not quick:
        return _measure(False)
    with generated_once():  # the quick form: each generated data set once
        return _measure(True)


def _measure(quick: bool) -> dict[str, str]:
    from mentor.recipe import DataSpec
    in_domain = DataSpec(source="mnist1d").load()
    if quick:
        teacher = {**TEACHER, "pretrain": [{**TEACHER["pretrain"][0],
                                            "train": {"epochs": 1, "batch_size": 128}}],
                   "train": {"epochs": 1, "batch_size": 64}}
        teachers = stage_teachers(in_domain, teacher)
        accs = kd_students(teachers, in_domain, seeds=(0,), epochs=1)
    else:
        teachers = stage_teachers(in_domain)
        accs = kd_students(teachers, in_domain)
    out = {"test.generic": _three(accs[False]), "test.adapted": _three(accs[True]),
           "test.teacher.generic": pct(teachers[False][1]["test_accuracy"]),
           "test.teacher.adapted": pct(teachers[True][1]["test_accuracy"]),
           "test.wins": wins(accs[True], accs[False])}
    res = run_builtin("stages", _quick_stages() if quick else None)
    teachers_run = {s["name"]: s["teacher"] for s in res["settings"]}
    for s, key in (("adapted", "adapted"), ("generic-only", "generic"),
                   ("in-domain-only", "in_domain")):
        out[f"run.teacher.{key}"] = pct(teachers_run[s]["test_accuracy"])
        out[f"run.kd.{key}"] = pm(row(res, s, "kd")["test_accuracies"])
    kd_a = row(res, "adapted", "kd")["test_accuracies"]
    kd_g = row(res, "generic-only", "kd")["test_accuracies"]
    kd_i = row(res, "in-domain-only", "kd")["test_accuracies"]
    scratch = row(res, "adapted", "scratch")["test_accuracies"]
    out.update({"run.scratch": pm(scratch),
                "run.adapted_vs_generic": verdict(kd_a, kd_g),
                "run.adapted_vs_generic_wins": wins(kd_a, kd_g),
                "run.adapted_vs_scratch": verdict(kd_a, scratch),
                "run.in_domain_vs_scratch": verdict(kd_i, scratch)})
    return out


from . import measurement  # noqa: E402

measurement("stages", about="AlexaTM multi-stage teacher: tests/methods/test_stages.py's "
            "effect test (CNN 16-16, 3 seeds) and `mentor run stages` (CNN 32-32-32, 3 "
            "seeds)", ci="quick", minutes=1.5)(measure)
