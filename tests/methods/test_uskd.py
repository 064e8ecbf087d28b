"""USKD: teacher-free self-distillation with a weak auxiliary head (METHODS.md §18)."""

import math

import pytest
import torch
from naive_uskd import naive_uskd

import mentor
from mentor.errors import ParameterError
from mentor.engine import fit
from mentor.models.heads import AuxHead
from mentor.losses import uskd, zipf_non_target
from mentor.methods import get_method
from mentor.models import mlp
from mentor.recipe import TrainSpec


def test_uskd_matches_a_naive_float64_reference():
    """The default follows the official code (naive_uskd: a loop over floats); rank_by="probs"
    follows mentor's earlier probability form."""
    g = torch.Generator().manual_seed(0)
    for scale in (0.5, 3.0, 8.0):
        zs = torch.randn(7, 5, generator=g, dtype=torch.float64) * scale
        zw = torch.randn(7, 5, generator=g, dtype=torch.float64) * scale
        y = torch.randint(0, 5, (7,), generator=g)
        for alpha, beta in ((1.0, 0.1), (0.5, 2.0)):
            for rank_by in ("official", "probs"):
                got = uskd(zs, zw, y, alpha=alpha, beta=beta, rank_by=rank_by)
                want = naive_uskd(zs.tolist(), zw.tolist(), y.tolist(), alpha, beta, rank_by)
                for a, b in zip(got.tolist(), want):
                    assert math.isclose(a, b, rel_tol=1e-10, abs_tol=1e-12)
    assert not torch.allclose(uskd(zs, zw, y), uskd(zs, zw, y, rank_by="probs"))


def test_uskd_by_hand():
    """C = 4, two rows, student logits log(4, 3, 2, 1): s = (0.4, 0.3, 0.2, 0.1).

    Row 0, y = 0, weak head log(1, 1, 1, 2): q = (0.2, 0.2, 0.2, 0.4), q/(1 - q_0) =
    (0.25, 0.25, 0.25, 0.5). Official score q/(1-q_y) + log s/(1 - log 0.4) ~ (-0.228,
    -0.378, -0.590, -0.702): order 0, 1, 2, 3, the target first, so the non-targets get
    1/2, 1/3, 1/4 -> (6, 4, 3)/13. (The probability score q/(1-q_y) + s/(1-s_y) = (.917,
    .75, .583, .667) would put class 3 above class 2.)
    Row 1, y = 2, weak head uniform: the score orders classes as s does, 0, 1, 2, 3; the
    target is 3rd, so classes 0, 1, 3 get 1, 1/2, 1/4 -> (4, 2, 1)/7.

    Target term: s_y = (0.4, 0.2), s_y^2 = (0.16, 0.04), mean 0.1, p~ = (1.06, 0.94);
    -p~ log s_y = 1.06 ln(5/2), 0.94 ln 5.
    Non-target softmax: row 0 (3, 2, 1)/6 = (1/2, 1/3, 1/6); row 1 (4, 3, 1)/8.
    CE row 0 = (6 ln 2 + 4 ln 3 + 3 ln 6)/13 = 1.0714315...;
    CE row 1 = (4 ln 2 + 2 ln(8/3) + ln 8)/7 = (13 ln 2 - 2 ln 3)/7 = 0.9733841...
    Loss (alpha 1, beta 0.1): 1.06 ln 2.5 + 0.1 CE0 = 1.0784113..., 0.94 ln 5 + 0.1 CE1 =
    1.6102100...
    """
    zs = torch.tensor([[4.0, 3.0, 2.0, 1.0]] * 2, dtype=torch.float64).log()
    zw = torch.tensor([[1.0, 1.0, 1.0, 2.0], [1.0, 1.0, 1.0, 1.0]], dtype=torch.float64).log()
    y = torch.tensor([0, 2])
    lp = torch.log_softmax(zs, -1)
    q = torch.softmax(zw, -1)
    score = q / (1 - q[[0, 1], y][:, None] + 1e-6) + lp / (1 - lp[[0, 1], y][:, None] + 1e-6)
    z = zipf_non_target(score, y)
    want_z = torch.tensor([[0, 6 / 13, 4 / 13, 3 / 13], [4 / 7, 2 / 7, 0, 1 / 7]],
                          dtype=torch.float64)
    torch.testing.assert_close(z, want_z, rtol=0, atol=1e-15)
    ln2, ln3 = math.log(2), math.log(3)
    ce0 = (6 * ln2 + 4 * ln3 + 3 * math.log(6)) / 13
    ce1 = (13 * ln2 - 2 * ln3) / 7
    want = [1.06 * math.log(2.5) + 0.1 * ce0, 0.94 * math.log(5) + 0.1 * ce1]
    assert math.isclose(ce0, 1.0714315, abs_tol=1e-7) and math.isclose(ce1, 0.9733841,
                                                                        abs_tol=1e-7)
    got = uskd(zs, zw, y, alpha=1.0, beta=0.1).tolist()
    assert got == pytest.approx(want, abs=1e-12)
    assert got == pytest.approx([1.0784113, 1.6102100], abs=1e-7)


def test_uskd_weak_denominator_has_the_official_1e6():
    """When the weak head is nearly sure of the target (1 - q_y ~ 7.7e-9), the official
    ``1 - q_y + 1e-6`` keeps its non-target part small (~0.002, 0.006) and the student's
    log-probabilities decide: student logits (0, 0.25, 0), y = 0, put class 1 above class 2,
    so (target first) classes 1, 2 get 1/2, 1/3 -> (3/5, 2/5). Without the 1e-6 the weak part
    (0.27, 0.73) would win and give (2/5, 3/5)."""
    zs = torch.tensor([[0.0, 0.25, 0.0]], dtype=torch.float64)
    zw = torch.tensor([[20.0, 0.0, 1.0]], dtype=torch.float64)
    got = uskd(zs, zw, torch.tensor([0]), alpha=0.0, beta=1.0)
    log_nt = torch.log_softmax(torch.tensor([0.25, 0.0], dtype=torch.float64), -1)
    want = -(0.6 * log_nt[0] + 0.4 * log_nt[1])
    torch.testing.assert_close(got[0], want, rtol=0, atol=1e-12)


def test_zipf_labels_rank_all_classes_including_the_target():
    scores = torch.tensor([[0.1, 0.9, 0.5, 0.3]])
    z = zipf_non_target(scores, torch.tensor([1]))
    expected = torch.tensor([1 / 4, 0.0, 1 / 2, 1 / 3])  # target 1st: 1/2, 1/3, 1/4 follow
    torch.testing.assert_close(z[0], expected / expected.sum())
    z = zipf_non_target(scores, torch.tensor([1]), rank_target=False)
    expected = torch.tensor([1 / 3, 0.0, 1.0, 1 / 2])
    torch.testing.assert_close(z[0], expected / expected.sum())


def test_uskd_rejects_an_unknown_rank_by():
    zs = torch.zeros(2, 3)
    with pytest.raises(ParameterError, match=r"uskd\.rank_by .*'prob'"):
        uskd(zs, zs, torch.tensor([0, 1]), rank_by="prob")


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
                  spec=TrainSpec(epochs=2), seed=0, num_outputs=10)
        heads[mu] = torch.equal(before, res.model.aux.weight)
    assert heads == {0.0: True, 0.005: False}
