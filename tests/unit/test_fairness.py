"""Fair comparisons by construction (mentor.fairness, mentor.engine.views): in the
semi-supervised regime a method naming no views -- the supervised baseline -- trains its
labeled rows on the presets' weak view; a comparison whose methods see unequal views or rows
is refused unless the recipe allows it, and then the leaderboard labels the rows."""

from __future__ import annotations

import json

import pytest
import torch

import mentor
from mentor.engine import fit
from mentor.engine.views import SUPERVISED_VIEWS, labeled_view
from mentor.errors import MentorError
from mentor.methods import METHODS, MethodPlan, get_method
from mentor.models import mlp
from mentor.recipe import TrainSpec, builtin_recipes, read_yaml
from mentor.report.table import leaderboard_table
from mentor.commands.run import plan_run, run_recipe


def _ssl_fit(augment, splits):
    plan = get_method("scratch").plan()
    torch.manual_seed(0)
    student = mlp(splits.input_shape, 10, hidden=[16])
    spec = TrainSpec(epochs=2, batch_size=8, lr=3e-3, unlabeled_ratio=3, collapse_steps=0)
    res = fit(student, splits.train, splits.val, objectives=plan.objectives, spec=spec, seed=0,
              num_outputs=10, augment=augment, input_shape=splits.input_shape)
    return res.model.state_dict()


def test_the_supervised_baseline_sees_the_presets_labeled_view():
    splits = mentor.load_data("digits", labeled_fraction=0.1, standardize=False)
    fixmatch = get_method("fixmatch").plan()
    assert labeled_view(fixmatch.augment, True) == "weak"  # every preset's labeled view
    assert labeled_view(None, True) == "weak" and labeled_view(None, False) is None
    baseline = _ssl_fit(None, splits)  # scratch's plan names no views
    same = _ssl_fit(dict(SUPERVISED_VIEWS), splits)
    bare = _ssl_fit({"teacher": None, "student": None, "labeled": None}, splits)
    assert all(torch.equal(baseline[k], same[k]) for k in baseline)
    assert not all(torch.equal(baseline[k], bare[k]) for k in baseline)


def _plan_notes(raw):
    return {s.name: {k: v for k, v in s.budget_notes.items() if v}
            for s in plan_run(raw, "recipe").settings}


@pytest.mark.parametrize("name", sorted(builtin_recipes()))
def test_every_builtin_comparison_is_fair_or_says_why(name):
    raw = read_yaml(builtin_recipes()[name])
    if raw.get("task") == "tokens" or raw.get("active"):
        pytest.skip("not a comparison of classification methods")
    notes = _plan_notes(raw)
    for setting, labelled in notes.items():
        if labelled:  # only data pruning trains on fewer rows, and says so
            assert set(labelled) == {"pruned-kd"}, (setting, labelled)
            assert labelled["pruned-kd"] == "trains on a subset of the rows it selects"


@pytest.fixture
def bare_view_method():
    """A user method whose labeled rows see no view (a handicapped baseline)."""
    @mentor.register_method("test-bare-scratch", description="CE without views")
    def _bare(p):
        plan = get_method("scratch").plan()
        return MethodPlan(plan.objectives, augment={"teacher": None, "student": None,
                                                    "labeled": None})
    yield "test-bare-scratch"
    METHODS.unregister("test-bare-scratch")


def _ssl_recipe(method, **train):
    return {"name": "fair", "data": {"source": "iris", "labeled_fraction": 0.3},
            "student": {"model": "mlp", "hidden": [8]},
            "methods": [{"name": "fixmatch", "threshold": 0.7}, {"name": method}],
            "train": {"epochs": 1, "batch_size": 8, "unlabeled_ratio": 2, "seeds": [0],
                      "collapse_steps": 0, **train}}


def test_a_handicapped_baseline_is_refused(bare_view_method):
    assert _plan_notes(_ssl_recipe("scratch")) == {"default": {}}
    with pytest.raises(MentorError) as e:
        plan_run(_ssl_recipe(bare_view_method), "recipe")
    msg = str(e.value)
    assert "unequal views" in msg and "'test-bare-scratch': labeled rows un-augmented" in msg
    assert "train.allow_unequal: [views]" in msg and "\n" not in msg


def test_an_allowed_handicap_is_labeled_on_the_leaderboard(bare_view_method, tmp_path):
    folder = run_recipe(_ssl_recipe(bare_view_method, allow_unequal=["views"]), tmp_path,
                        progress=False)
    results = json.loads((folder / "results.json").read_text())
    notes = {r["method"]: r.get("budget_note") for r in results["rows"]}
    assert notes == {"fixmatch": None, bare_view_method: "labeled rows un-augmented"}
    (row,) = [r for r in leaderboard_table(results).columns[-1]._cells
              if "unequal" in str(r)]
    assert str(row).startswith("[unequal: labeled rows un-augmented]")
