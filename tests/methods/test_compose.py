"""``compose``: a recipe builds a method from registered parts.

- a composition written like a preset trains the preset's student, bit for bit (FixMatch,
  BCP's copy-paste);
- every registered refiner and teacher updater is reachable from a recipe (it validates and
  the plan holds the part);
- a wrong name, parameter or value is one sentence naming the field (``mentor validate``
  exits 2 without a traceback);
- parts no preset uses train end to end from `mentor run`;
- every registered mixer is reachable from a recipe and trains; the copy-paste mixers are
  BCP's copy-paste batch; mixup trains another student than no mixer, semi-supervised and in
  distillation; compositions whose losses cannot read a mixed target are refused in one
  sentence.
"""

from __future__ import annotations

import json

import pytest
import torch
import yaml

import mentor
from mentor.errors import MentorError, RecipeError
from mentor.methods import get_method
from mentor.models import build_model
from mentor.recipe import TrainSpec, parse_recipe
from mentor.registry import MIXERS, REFINERS, UPDATERS

FIXMATCH = {"objectives": [{"loss": "ce", "rows": "labeled"},
                           {"loss": "pseudo_ce", "rows": "unlabeled", "normalize": "rows"}],
            "refiners": [{"name": "threshold", "threshold": 0.95}],
            "updater": {"name": "live"},
            "views": {"teacher": "weak", "student": "strong", "labeled": "weak"}}
# a mean teacher whose unlabeled loss reads soft targets: what a mixed row can carry
SOFT = {"objectives": [{"loss": "ce", "rows": "labeled"},
                       {"loss": "kd", "params": {"temperature": 1.0}, "rows": "unlabeled",
                        "normalize": "rows"}],
        "updater": {"name": "ema", "decay": 0.99, "warmup": True}}
BCP = {**SOFT, "views": {"teacher": "weak", "student": "weak", "labeled": "weak"}}
# parameters a part cannot do without
PART_ARGS = {"prototype_soft_labels": {"feature": "feat:f"}}


def _student(plan, splits, seed=0, max_steps=None):
    spec = TrainSpec(epochs=2, batch_size=16, unlabeled_ratio=3, lr=3e-3)
    torch.manual_seed(seed)
    net = build_model("mlp", splits.input_shape, splits.num_classes, hidden=[16])
    return plan.fit(net, splits.train, splits.val, spec=spec, seed=seed,
                    num_outputs=splits.num_classes, input_shape=splits.input_shape,
                    max_steps=max_steps).model


def _equal(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.fixture(scope="module")
def few_labels():
    return mentor.load_data("digits", labeled_fraction=0.1)


@pytest.mark.parametrize("preset,composed", [
    ("fixmatch", FIXMATCH),
    ("bcp", {**BCP, "copy_paste": {"ratio": 2 / 3, "u_weight": 0.5}}),
    ("bcp", {**BCP, "mixers": [{"name": "bidirectional_copy_paste", "ratio": 2 / 3,
                                "u_weight": 0.5}]}),
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


@pytest.mark.parametrize("name", MIXERS.names())
def test_every_mixer_is_reachable_from_a_recipe_and_trains(few_labels, name):
    """A recipe names the mixer; the plan's batch mixer holds it, and a few training steps
    with it give another student than the same steps without it."""
    method = {"name": "compose", **SOFT, "mixers": [{"name": name}]}
    recipe = parse_recipe(_recipe(method))
    plan = get_method("compose").plan(**{k: v for k, v in method.items() if k != "name"})
    assert len(recipe.methods) == 1
    assert isinstance(plan.batch_mixer.mixer, MIXERS.get(name))
    mixed = _student(plan, few_labels, max_steps=4)
    plain = _student(get_method("compose").plan(**SOFT), few_labels, max_steps=4)
    assert all(bool(torch.isfinite(v).all()) for v in mixed.state_dict().values())
    assert not _equal(mixed, plain), f"mixer {name} left the training unchanged"


@pytest.mark.parametrize("spec,attrs", [
    ({"name": "mixup", "alpha": 0.2}, {"mixer.alpha": 0.2, "temperature": 2.0}),
    ({"name": "cutmix", "lam_min": 0.1, "lam_max": 0.4},
     {"mixer.lam_min": 0.1, "mixer.lam_max": 0.4, "temperature": 2.0}),
    ({"name": "bidirectional_copy_paste", "ratio": 0.5, "u_weight": 0.3},
     {"mixer.ratio": 0.5, "u_weight": 0.3, "temperature": 2.0}),
    ({"name": "multiscale_patches", "num_coarse": 3, "fine": 0.25},
     {"mixer.num_coarse": 3, "mixer.fine": 0.25, "u_weight": 0.5}),
    ({"name": "frequency_amplitude_switch", "size": 0.3}, {"mixer.size": 0.3}),
])
def test_mixer_parameters_and_the_objectives_temperature_reach_the_batch_mixer(spec, attrs):
    soft = {**SOFT, "objectives": [SOFT["objectives"][0],
                                   {**SOFT["objectives"][1], "params": {"temperature": 2.0}}]}
    plan = get_method("compose").plan(**soft, mixers=[spec, {"name": "mixup"}])
    first, second = plan.batch_mixer.mixers  # several mixers apply in order
    assert isinstance(second.mixer, MIXERS.get("mixup"))
    for path, want in attrs.items():
        value = first
        for part in path.split("."):
            value = getattr(value, part)
        assert value == want, (path, value)


def test_multiscale_mixer_is_the_multiscale_copy_paste(few_labels):
    """``mixers: [multiscale_patches]`` is ``copy_paste: {scales: multi}``, bit for bit."""
    a = get_method("compose").plan(**BCP, copy_paste={"scales": "multi"})
    b = get_method("compose").plan(**BCP, mixers=[{"name": "multiscale_patches"}])
    assert _equal(_student(a, few_labels, max_steps=6), _student(b, few_labels, max_steps=6))


def test_composed_mixup_trains_another_student_than_no_mixer(few_labels):
    """Through :meth:`MethodPlan.fit`: mixup (ICT-style, unlabeled rows mixed with
    mean-teacher targets) trains, and trains another student than the same composition
    without it. (``mentor.SemiSupervised(..., "compose", updater=...)`` would take
    ``updater`` as its own argument, not the composition's.)"""
    def train(**extra):
        plan = get_method("compose").plan(**SOFT, **extra)
        spec = TrainSpec(epochs=2, batch_size=16, unlabeled_ratio=3, lr=3e-3)
        torch.manual_seed(0)
        net = build_model("mlp", few_labels.input_shape, few_labels.num_classes, hidden=[16])
        result = plan.fit(net, few_labels.train, few_labels.val, spec=spec, seed=0,
                          num_outputs=few_labels.num_classes,
                          input_shape=few_labels.input_shape)
        assert all(v == v for v in result.history["train_loss"])
        return plan, result

    (plan, mixed), (_, plain) = train(mixers=[{"name": "mixup", "alpha": 0.75}]), train()
    assert not _equal(mixed.model, plain.model)
    assert "mixers mixup" in plan.description
    assert mixed.best_val_accuracy > 0.2  # it learns (10 classes)


def test_mixup_in_distillation_mixes_every_row():
    """Through :class:`mentor.Distiller`: with every label visible, mixup mixes every row;
    kd alone trains another student than without it, and an objective on rows: labeled
    (none stay) is refused at the first step."""
    splits = mentor.load_data("iris")
    torch.manual_seed(0)
    teacher = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(),
                                  torch.nn.Linear(16, 3))
    kd_only = [{"loss": "kd", "params": {"temperature": 2.0}}]

    def train(objectives, **extra):
        torch.manual_seed(0)
        d = mentor.Distiller(torch.nn.Linear(4, 3), teacher, method="compose",
                             objectives=objectives, epochs=2, **extra)
        d.fit(splits)
        return d.model

    assert not _equal(train(kd_only, mixers=[{"name": "cutmix"}]), train(kd_only))
    with pytest.raises(MentorError, match="rows: labeled would read none"):
        train([{"loss": "ce", "rows": "labeled"}, *kd_only], mixers=[{"name": "mixup"}])


@pytest.mark.parametrize("change,needles", [
    ({"mixers": [{"name": "mixupp"}]}, ["mixers[0].name", "did you mean 'mixup'"]),
    ({"mixers": [{"name": "mixup", "alfa": 0.5}]}, ["mixers[0].alfa",
                                                     "did you mean 'alpha'"]),
    ({"mixers": [{"name": "cutmix", "lam_min": 2}]}, ["mixers[0]", "cutmix.lam_min"]),
    ({"mixers": [{"name": "multiscale_patches", "u_weight": -1}]}, ["mixers[0].u_weight"]),
    ({"mixers": [{"name": "mixup"}], "objectives": FIXMATCH["objectives"]},
     ["mixers[0]", "objectives[1]", "'pseudo_ce'", "hard label", "rows: labeled"]),
    ({"copy_paste": {}, "objectives": FIXMATCH["objectives"]},
     ["copy_paste", "objectives[1]", "'pseudo_ce'"]),
    ({"mixers": [{"name": "cutmix"}], "objectives": [{"loss": "ce"}, {"loss": "kd"}]},
     ["mixers[0]", "objectives[0]", "'ce'", "rows: all"]),
    ({"mixers": [{"name": "mixup"}], "objectives": [{"loss": "symmetric_kl",
                                                     "rows": "unlabeled"}]},
     ["objectives[0].loss", "'symmetric_kl'", "not linear"]),
    ({"mixers": [{"name": "mixup"}], "objectives": [{"loss": "kd", "rows": "unlabeled",
                                                     "standardize": True}]},
     ["objectives[0].standardize"]),
    ({"mixers": [{"name": "mixup"}], "objectives": [{"loss": "kd", "rows": "unlabeled"},
                                                    {"loss": "prob_mse"}]},
     ["temperature 4", "objectives[1] at 1"]),
    ({"mixers": [{"name": "frequency_amplitude_switch"}],
      "objectives": [{"loss": "ce", "rows": "labeled"}]}, ["mixers", "teacher objective"]),
    ({"mixers": [{"name": "mixup"}], "objectives": [{"loss": "ce", "rows": "labeled"},
                                                    {"loss": "kd", "rows": "labeled"}]},
     ["mixers[0]", "no teacher objective reads them"]),
])
def test_bad_mixers_are_one_sentence_naming_the_field(change, needles):
    method = {"name": "compose", **SOFT, **change}
    with pytest.raises(RecipeError) as err:
        parse_recipe(_recipe(method))
    text = str(err.value)
    for needle in needles:
        assert needle in text, (needle, text)
    assert "Traceback" not in text and "\n" not in text


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
    refiners, the static-plus-EMA updater, and mixup followed by the amplitude switch, from
    a recipe, end to end."""
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
        {"name": "compose", "label": "mixup-fds", **SOFT,
         "mixers": [{"name": "mixup", "alpha": 0.5},
                    {"name": "frequency_amplitude_switch", "size": 0.5}]},
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
