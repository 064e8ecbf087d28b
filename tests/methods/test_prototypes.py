"""Prototype soft labels for uncertain teacher targets (PS-TTL, METHODS.md §21)."""

import pytest
import torch

from mentor.contracts import Batch, Targets
from mentor.engine import fit
from mentor.errors import MentorError
from mentor.methods import get_method
from mentor.models import mlp
from mentor.recipe import TrainSpec
from mentor.targets import PrototypeSoftLabels


def _targets(conf_logits, feats):
    return Targets(conf_logits, conf_logits.argmax(-1), extra={"feat:p": feats})


def test_bands_prototypes_and_formula():
    feats = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.9, 0.1], [0.2, 0.8], [0.5, 0.5]])
    y = torch.tensor([0, 1, -1, -1, -1])
    labeled = torch.tensor([True, True, False, False, False])
    logits = torch.tensor([[5.0, 0], [0, 5.0],
                           [0.4, 0.0],    # confidence 0.60: middle band -> prototype label
                           [0.0, 5.0],    # confidence 0.99: keeps the teacher's target
                           [0.0, 0.0]])   # confidence 0.50: middle band (low is inclusive)
    ref = PrototypeSoftLabels("feat:p", kappa=10.0, low=0.55, high=0.9)
    out = ref(_targets(logits, feats), Batch(feats, y, torch.arange(5), labeled))
    protos = torch.tensor([[1.0, 0.0], [0.0, 1.0]])  # first batch: the class means
    cos = torch.nn.functional.cosine_similarity(feats[2][None], protos, dim=-1)
    torch.testing.assert_close(out.logits[2], 10.0 * cos)
    torch.testing.assert_close(out.logits[3], logits[3])
    assert out.mask.tolist() == [True, True, True, True, False]  # 0.50 < low 0.55: dropped
    assert ref.last_counts == {"prototype": 1, "dropped": 1}


def test_prototypes_are_running_means_and_reset():
    ref = PrototypeSoftLabels("feat:p", momentum=0.5)
    for value in (2.0, 4.0):
        feats = torch.full((2, 3), value)
        ref(_targets(torch.zeros(2, 2), feats),
            Batch(feats, torch.tensor([0, 0]), torch.arange(2), None))
    torch.testing.assert_close(ref.prototypes[0], torch.full((3,), 3.0))
    assert ref.seen.tolist() == [True, False]
    ref.reset()
    assert ref.prototypes is None


def test_the_teacher_feature_must_be_tapped():
    with pytest.raises(MentorError, match="needs the teacher feature 'feat:p'"):
        PrototypeSoftLabels("feat:p")(Targets(torch.zeros(2, 2), torch.zeros(2).long()),
                                      Batch(torch.zeros(2, 1), torch.zeros(2).long(),
                                            torch.arange(2), None))


def test_proto_kd_trains_from_a_teacher_only_tap_and_resets_between_runs(few_labels, teacher):
    plan = get_method("proto-kd").plan(teacher_layer="3")
    refiner = plan.refiners[0]
    resets = []
    original = refiner.reset
    refiner.reset = lambda: (resets.append(1), original())
    for seed in (0, 1):
        torch.manual_seed(seed)
        res = fit(mlp(few_labels.input_shape, 10, hidden=[16]), few_labels.train,
                  few_labels.val, objectives=plan.objectives, refiners=plan.refiners,
                  teacher=teacher, taps=plan.taps, spec=TrainSpec(epochs=1), seed=seed,
                  num_outputs=10)
        assert refiner.prototypes.shape == (10, 128)  # the teacher's tapped width
        assert type(res.model) is torch.nn.Sequential
        assert len(resets) == seed + 1  # each run starts with fresh prototypes
