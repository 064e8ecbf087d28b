"""``compose``: a recipe builds a method from registered parts.

- a composition written like a preset trains the preset's student, bit for bit (FixMatch,
  BCP's copy-paste);
- every registered refiner and teacher updater is reachable from a recipe (it validates and
  the plan holds the part);
- a wrong name, parameter or value is one sentence naming the field (``mentor validate``
  exits 2 without a traceback);
- parts no preset uses train end to end from `mentor run`.
"""

from __future__ import annotations

import json

import pytest
import torch
import yaml

import mentor
from mentor.errors import RecipeError
from mentor.methods import get_method
from mentor.models import build_model
from mentor.recipe import TrainSpec, parse_recipe
from mentor.registry import REFINERS, UPDATERS

FIXMATCH = {"objectives": [{"loss": "ce", "rows": "labeled"},
                           {"loss": "pseudo_ce", "rows": "unlabeled", "normalize": "rows"}],
            "refiners": [{"name": "threshold", "threshold": 0.95}],
            "updater": {"name": "live"},
            "views": {"teacher": "weak", "student": "strong", "labeled": "weak"}}
# parameters a part cannot do without
PART_ARGS = {"prototype_soft_labels": {"feature": "feat:f"}}


def _student(plan, splits, seed=0):
    spec = TrainSpec(epochs=2, batch_size=16, unlabeled_ratio=3, lr=3e-3)
    torch.manual_seed(seed)
    net = build_model("mlp", splits.input_shape, splits.num_classes, hidden=[16])
    return plan.fit(net, splits.train, splits.val, spec=spec, seed=seed,
                    num_classes=splits.num_classes, input_shape=splits.input_shape).model


def _equal(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.fixture(scope="module")
def few_labels():
    return mentor.load_data("digits", labeled_fraction=0.1)


@pytest.mark.parametrize("preset,composed", [
    ("fixmatch", FIXMATCH),
    ("bcp", {"objectives": [{"loss": "ce", "rows": "labeled"},
                            {"loss": "kd", "params": {"temperature": 1.0}, "rows": "unlabeled",
                             "normalize": "rows"}],
             "updater": {"name": "ema", "decay": 0.99, "warmup": True},
             "views": {"teacher": "weak", "student": "weak", "labeled": "weak"},
             "copy_paste": {"ratio": 2 / 3, "u_weight": 0.5}}),
])
def test_a_composition_written_like_a_preset_trains_the_same_student(few_labels, preset,
                                                                     composed):
    want = _student(get_method(preset).plan(), few_labels)
    got = _student(get_method("compose").plan(**composed), few_labels)
    assert _equal(want, got), f"compose written as {preset} trains another student"


def test_a_different_composition_trains_a_different_student(few_labels):
    """The equality above can fail: another threshold is another student."""
    other = {**FIXMATCH, "refiners": [{"name": "threshold", "threshold": 0.5}]}
    assert not _equal(_student(get_method("fixmatch").plan(), few_labels),
                      _student(get_method("compose").plan(**other), few_labels))


def _recipe(method: dict) -> dict:
    return {"name": "c", "data": {"source": "iris", "labeled_fraction": 0.3},
            "student": {"model": "mlp", "hidden": [8]},
            "methods": [method], "train": {"epochs": 1, "seeds": [0]}}


@pytest.mark.parametrize("name", REFINERS.names())
def test_every_refiner_is_reachable_from_a_recipe(name):
    method = {"name": "compose", **FIXMATCH,
              "refiners": [{"name": name, **PART_ARGS.get(name, {})}]}
    recipe = parse_recipe(_recipe(method))
    plan = get_method("compose").plan(**{k: v for k, v in method.items() if k != "name"})
    assert len(recipe.methods) == 1
    assert isinstance(plan.refiners[0], REFINERS.get(name))


@pytest.mark.parametrize("name", UPDATERS.names())
def test_every_updater_is_reachable_from_a_recipe(name):
    method = {"name": "compose", **FIXMATCH, "updater": {"name": name}}
    parse_recipe(_recipe(method))
    plan = get_method("compose").plan(**{k: v for k, v in method.items() if k != "name"})
    assert isinstance(plan.updater, UPDATERS.get(name))


@pytest.mark.parametrize("change,needles", [
    ({"refiners": [{"name": "treshold"}]}, ["refiners[0].name", "'treshold'",
                                            "did you mean 'threshold'"]),
    ({"refiners": [{"name": "threshold", "thresold": 0.9}]},
     ["refiners[0].thresold", "did you mean 'threshold'"]),
    ({"refiners": [{"name": "threshold", "threshold": 1.5}]}, ["refiners[0]", "threshold"]),
    ({"updater": {"name": "emma"}}, ["updater.name", "did you mean 'ema'"]),
    ({"objectives": [{"loss": "crossentropy"}]}, ["objectives[0].loss", "'crossentropy'"]),
    ({"objectives": []}, ["objectives"]),
    ({"views": {"teacher": "medium"}}, ["views.teacher", "weak"]),
    ({"refiners": [{"name": "prototype_soft_labels"}]},
     ["refiners[0].feature", "needs parameter 'feature'"]),
])
def test_bad_compositions_are_one_sentence_naming_the_field(change, needles):
    method = {"name": "compose", **FIXMATCH, **change}
    with pytest.raises(RecipeError) as err:
        parse_recipe(_recipe(method))
    text = str(err.value)
    for needle in needles:
        assert needle in text, (needle, text)
    assert "Traceback" not in text


def test_validate_exits_2_on_a_bad_composition(tmp_path, cli):
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(_recipe(
        {"name": "compose", **FIXMATCH, "refiners": [{"name": "treshold"}]})), encoding="utf-8")
    proc = cli(("recipes", "validate", "r.yaml"), tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "did you mean 'threshold'" in proc.stderr


def test_parts_no_preset_uses_train_from_mentor_run(tmp_path, cli):
    """curriculum admission, the learned corrector, cluster labels and uncertainty fusion of
    refiners, and the static-plus-EMA updater, from a recipe, end to end."""
    methods = [
        {"name": "compose", "label": "curriculum", **FIXMATCH,
         "refiners": [{"name": "curriculum", "ramp_epochs": 2}]},
        {"name": "compose", "label": "corrector", **FIXMATCH,
         "refiners": [{"name": "learned_corrector", "min_pairs": 5, "refit_every": 2}]},
        {"name": "compose", "label": "clusters", **FIXMATCH,
         "refiners": [{"name": "cluster_labels", "k": 3}]},
        {"name": "compose", "label": "static-ema",
         "objectives": [{"loss": "ce", "rows": "labeled"}, {"loss": "kd", "rows": "all"}],
         "updater": {"name": "static_ema", "decay": 0.9}},
    ]
    recipe = _recipe(methods[0])
    recipe.update(methods=methods, teacher={"model": "mlp", "hidden": [16],
                                            "train": {"epochs": 3}},
                  train={"epochs": 2, "seeds": [0], "allow_unequal": ["views"]})
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe), encoding="utf-8")
    proc = cli(("run", "r.yaml", "--out", "runs", "--quiet"), tmp_path)
    assert proc.returncode == 0, proc.stderr
    (run,) = (tmp_path / "runs").iterdir()
    rows = json.loads((run / "results.json").read_text())["rows"]
    assert sorted(r["method"] for r in rows) == sorted(m["label"] for m in methods)
    assert all(0 <= r["test_accuracy_mean"] <= 1 for r in rows)
