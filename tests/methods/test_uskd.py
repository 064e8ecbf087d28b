"""USKD: teacher-free self-distillation with a weak auxiliary head (METHODS.md §18)."""

import math

import torch
from naive_uskd import naive_uskd

import mentor
from mentor.engine import fit
from mentor.heads import AuxHead
from mentor.losses import uskd, zipf_non_target
from mentor.methods import get_method
from mentor.models import mlp
from mentor.recipe import TrainSpec


def test_uskd_matches_a_naive_float64_reference():
    g = torch.Generator().manual_seed(0)
    for scale in (0.5, 3.0):
        zs = torch.randn(7, 5, generator=g, dtype=torch.float64) * scale
        zw = torch.randn(7, 5, generator=g, dtype=torch.float64) * scale
        y = torch.randint(0, 5, (7,), generator=g)
        for alpha, beta in ((1.0, 0.1), (0.5, 2.0)):
            got = uskd(zs, zw, y, alpha=alpha, beta=beta)
            want = naive_uskd(zs.tolist(), zw.tolist(), y.tolist(), alpha, beta)
            for a, b in zip(got.tolist(), want):
                assert math.isclose(a, b, rel_tol=1e-10, abs_tol=1e-12)


def test_zipf_labels_rank_non_target_classes_by_score():
    scores = torch.tensor([[0.1, 0.9, 0.5, 0.3]])
    z = zipf_non_target(scores, torch.tensor([1]))
    expected = torch.tensor([1 / 3, 0.0, 1.0, 1 / 2])
    torch.testing.assert_close(z[0], expected / expected.sum())


def test_aux_head_returns_both_heads_only_in_training():
    torch.manual_seed(0)
    net = AuxHead(mlp((4,), 3, hidden=[8]), torch.randn(2, 4), layer="0")
    x = torch.randn(2, 4)
    net.eval()
    assert net(x).shape == (2, 3)
    net.train()
    out = net(x)
    assert set(out) == {"logits", "head:aux"} and out["head:aux"].shape == (2, 3)


def test_uskd_needs_no_teacher_and_its_self_target_is_detached():
    """With mu = 0 the weak head gets no gradient at all: USKD reads it as a detached target.
    With mu > 0 it learns."""
    s = mentor.load_data("digits")
    heads = {}
    for mu in (0.0, 0.005):
        plan = get_method("uskd").plan(mu=mu)
        torch.manual_seed(0)
        student = plan.prepare_student(mlp(s.input_shape, 10, hidden=[16]), s.train.x[:2])
        before = student.aux.weight.detach().clone()
        res = fit(student, s.train, s.val, objectives=plan.objectives, teacher=None,
                  spec=TrainSpec(epochs=2), seed=0, num_classes=10)
        heads[mu] = torch.equal(before, res.model.aux.weight)
    assert heads == {0.0: True, 0.005: False}
