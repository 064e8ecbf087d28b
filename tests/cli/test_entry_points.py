"""One wiring from a method's plan to a training (``MethodPlan.fit``), whatever the entry
point: every registered method trained by ``mentor run`` from a recipe, by
``mentor.Distiller`` / ``mentor.SemiSupervised`` and -- for the methods that need no external
teacher -- by the scikit-learn estimator gives the same student for the same seed, bit for
bit. Before the wiring was shared, the estimator dropped BCP's batch mixer and a benchmark
skipped the plan's student wrapper; these tests fail on either drift."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file

import mentor
from mentor.models.heads import for_export
from mentor.models import build_model
from mentor.registry import METHODS

from methodargs import METHOD_ARGS as EXTRA
HIDDEN = [8]


def _state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    saved, _ = for_export(module)
    return {k: v.detach().cpu() for k, v in saved.state_dict().items()}


def _assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], what: str) -> None:
    assert sorted(a) == sorted(b), (what, sorted(a), sorted(b))
    differ = [k for k in a if not torch.equal(a[k], b[k])]
    assert not differ, f"{what}: tensors {differ} differ"


@pytest.fixture(scope="module")
def all_methods_run(cli, recipe_dict, tmp_path_factory):
    """One `mentor run` of every registered method on iris (1 epoch, seed 0)."""
    root = tmp_path_factory.mktemp("every-method")
    methods = [{"name": n, **EXTRA.get(n, {})} for n in METHODS.names()]
    recipe = recipe_dict(name="all", methods=methods, student={"model": "mlp", "hidden": HIDDEN},
                         train={"epochs": 1, "seeds": [0], "allow_unequal": ["views", "rows"]})
    (root / "all.yaml").write_text(yaml.safe_dump(recipe, sort_keys=False), encoding="utf-8")
    proc = cli(("run", "all.yaml", "--out", "runs", "--quiet"), root, 600)
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    (run,) = list((root / "runs").iterdir())
    return run


def test_every_method_runs_from_a_recipe(all_methods_run):
    """Every registered method runs through `mentor run` (wrapped students, taps, pruning,
    refiners, mixers): one epoch, one seed, one row each."""
    rows = json.loads((all_methods_run / "results.json").read_text())["rows"]
    assert sorted(r["method"] for r in rows) == sorted(METHODS.names())


def test_the_python_api_trains_the_student_mentor_run_trains(all_methods_run, tmp_path):
    """`Distiller` (with the run's own teacher) gives, for every method, the student that
    `mentor run` saved: same seed, same weights, bit for bit."""
    from mentor.runs.read import load_model, teacher_checkpoint
    results = json.loads((all_methods_run / "results.json").read_text())
    teacher, _ = load_model(teacher_checkpoint(all_methods_run, results, "default"))
    splits = mentor.load_data("iris")
    mismatched = []
    for name in METHODS.names():
        torch.manual_seed(0)
        student = build_model("mlp", splits.input_shape, splits.num_classes, hidden=HIDDEN)
        d = mentor.Distiller(student, teacher, method=name, seed=0, epochs=1,
                             **EXTRA.get(name, {}))
        d.fit(splits)
        path = d.save(tmp_path / f"{name}.safetensors")
        ran = load_file(all_methods_run / "checkpoints" / "default" / name / "seed0"
                        / "student.safetensors")
        mine = load_file(path)
        if sorted(ran) != sorted(mine) or any(not torch.equal(ran[k], mine[k]) for k in ran):
            mismatched.append(name)
    assert not mismatched, f"Distiller and `mentor run` train different students: {mismatched}"


TEACHER_FREE = [n for n in METHODS.names() if not METHODS.get(n).plan(
    **EXTRA.get(n, {})).needs_teacher]


def test_teacher_free_methods_exist():
    assert {"scratch", "fixmatch", "bcp", "mean-teacher"} <= set(TEACHER_FREE)


@pytest.mark.parametrize("name", TEACHER_FREE)
def test_the_estimator_trains_the_student_semi_supervised_trains(name):
    """`SemiSupervisedClassifier` and `mentor.SemiSupervised` on the same rows (30 % of
    iris labeled, no hold-out, no standardization) give the same network for the same seed:
    the estimator trains with every part of the plan (BCP's copy-paste included)."""
    from sklearn.utils import check_random_state

    from mentor.data.splits import Split, Splits
    from mentor.sklearn import SemiSupervisedClassifier
    data = mentor.load_data("iris", labeled_fraction=0.3)
    x = data.train.x
    y = torch.where(data.train.labeled, data.train.y, torch.full_like(data.train.y, -1))
    options = dict(epochs=2, batch_size=8, unlabeled_ratio=2, lr=3e-3, weight_decay=5e-4,
                   collapse_steps=0)
    clf = SemiSupervisedClassifier(name, dict(EXTRA.get(name, {})), hidden=tuple(HIDDEN),
                                   standardize=False, validation_fraction=0.0,
                                   random_state=7, **options)
    clf.fit(x.numpy().astype(np.float64), y.numpy())

    seed = int(check_random_state(7).randint(np.iinfo(np.int32).max))
    torch.manual_seed(seed)
    net = build_model("mlp", data.input_shape, data.num_classes, hidden=HIDDEN)
    empty = Split(x[:0], y[:0], torch.zeros(0, dtype=torch.bool))
    same_rows = Splits("iris", Split(x, y, y >= 0), empty, empty, data.num_classes,
                       data.input_shape, data.seed)
    ssl = mentor.SemiSupervised(net, name, seed=seed, select="last", **options,
                                **EXTRA.get(name, {}))
    ssl.fit(same_rows)
    _assert_same(_state(clf.model_), _state(ssl.model), f"{name}: estimator vs SemiSupervised")
