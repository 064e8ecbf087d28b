"""Unit tests for the newer logit losses: nkd, binary_kl, binary_kl_norm, symmetric_kl,
topk_kd (``mentor.losses.logits``) and pld / teacher_optimal_order (``mentor.losses.ranking``).

``tests/unit/test_losses.py`` already runs the generic contract battery (shape, finiteness,
dtype, masking, parameter ranges) over every registered loss; this file adds what it lacks:

1. Naive float64 references: explicit Python loops over rows and classes with
   ``math.exp``/``math.log`` on Python floats, compared at rtol 1e-10.
2. Degenerate cases (one-hot teachers give the cross-entropy, top-k with k = C is KD, ...).
3. Invariances to per-row constant shifts of the logits (and the shifts that must NOT be
   invariances).
4. Gradients reach only the student.
5. Bad input (k / top_k beyond the class count, missing labels).
6. ``teacher_optimal_order`` structure.
"""

from __future__ import annotations

import math

import pytest
import torch
from naive import kl as _kl, log_softmax as _log_softmax, logsumexp as _logsumexp

import mentor.losses  # noqa: F401  (registers the built-in losses)
from mentor.errors import ParameterError
from mentor.losses import (binary_kl, binary_kl_norm, cross_entropy, kd, nkd, pld,
                           symmetric_kl, teacher_optimal_order, topk_kd)

RTOL = 1e-10
ATOL = 1e-12

SCALES = [0.1, 3.0, 30.0]
B, C = 5, 7


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------

def _logits(seed: int, b: int = B, c: int = C, scale: float = 3.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, c, generator=g, dtype=torch.float64) * scale


def _labels(seed: int, b: int = B, c: int = C) -> torch.Tensor:
    g = torch.Generator().manual_seed(1000 + seed)
    return torch.randint(0, c, (b,), generator=g)


def _shift(b: int = B) -> torch.Tensor:
    """A different constant for every row (column vector)."""
    return torch.linspace(-25.0, 40.0, b, dtype=torch.float64)[:, None]





def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def _kl_bin(p: float, q: float) -> float:
    """KL(Bernoulli(p) || Bernoulli(q)), no clamping (callers keep p, q away from 0 and 1)."""
    return p * math.log(p / q) + (1.0 - p) * math.log((1.0 - p) / (1.0 - q))


def _close(actual: torch.Tensor, expected, rtol: float = RTOL, atol: float = ATOL) -> None:
    expected_t = torch.tensor(expected, dtype=torch.float64)
    assert actual.dtype == torch.float64
    assert actual.shape == expected_t.shape
    torch.testing.assert_close(actual, expected_t, rtol=rtol, atol=atol)


# --- naive references (Python floats, explicit loops) -----------------------------------------

def ref_nkd(zs, zt, labels, t: float, gamma: float) -> list[float]:
    out = []
    for rs, rt, y in zip(zs.tolist(), zt.tolist(), labels.tolist()):
        log_ps = _log_softmax(rs, 1.0)
        log_pt = _log_softmax(rt, 1.0)
        target = -math.exp(log_pt[y]) * log_ps[y]
        others = [c for c in range(len(rs)) if c != y]
        lq_s = _log_softmax([rs[c] for c in others], t)
        lq_t = _log_softmax([rt[c] for c in others], t)
        cross = 0.0
        for a, b in zip(lq_t, lq_s):
            cross += math.exp(a) * b
        out.append(target - gamma * t * t * cross)
    return out


def ref_binary_kl(zs, zt, t: float) -> list[float]:
    out = []
    for rs, rt in zip(zs.tolist(), zt.tolist()):
        total = 0.0
        for s, u in zip(rs, rt):
            total += _kl_bin(_sigmoid(u / t), _sigmoid(s / t))
        out.append(t * t * total)
    return out


def ref_binary_kl_norm(zs, zt, t: float) -> list[float]:
    out = []
    for rs, rt in zip(zs.tolist(), zt.tolist()):
        total = 0.0
        for s, u in zip(rs, rt):
            total += _kl_bin(0.5, _sigmoid((s - u) / t))
        out.append(t * t * total)
    return out


def ref_symmetric_kl(zs, zt, t: float) -> list[float]:
    out = []
    for rs, rt in zip(zs.tolist(), zt.tolist()):
        log_ps, log_pt = _log_softmax(rs, t), _log_softmax(rt, t)
        out.append(t * t * 0.5 * (_kl(log_ps, log_pt) + _kl(log_pt, log_ps)))
    return out


def ref_topk_kd(zs, zt, k: int, t: float) -> list[float]:
    out = []
    for rs, rt in zip(zs.tolist(), zt.tolist()):
        h = sorted(range(len(rt)), key=lambda c: rt[c], reverse=True)[:k]
        log_ps = _log_softmax([rs[c] for c in h], t)
        log_pt = _log_softmax([rt[c] for c in h], t)
        out.append(t * t * _kl(log_pt, log_ps))
    return out


def ref_order(rt: list[float], y: int) -> list[int]:
    rest = sorted((c for c in range(len(rt)) if c != y), key=lambda c: rt[c], reverse=True)
    return [y] + rest


def ref_pld(zs, zt, labels, t: float, top_k: int) -> list[float]:
    out = []
    for rs, rt, y in zip(zs.tolist(), zt.tolist(), labels.tolist()):
        n = len(rs)
        pi = ref_order(rt, y)
        log_pt = _log_softmax(rt, t)
        kk = n if top_k == 0 else top_k
        total = 0.0
        for k in range(kk):
            alpha = math.exp(log_pt[pi[k]])
            tail = _logsumexp([rs[pi[j]] for j in range(k, n)])
            total += alpha * (tail - rs[pi[k]])
        out.append(total)
    return out


def ref_ce(z, labels) -> list[float]:
    return [-_log_softmax(row, 1.0)[y] for row, y in zip(z.tolist(), labels.tolist())]


def _one_hot_teacher(labels: torch.Tensor, c: int = C) -> torch.Tensor:
    return torch.nn.functional.one_hot(labels, c).to(torch.float64) * 1000.0


# ---------------------------------------------------------------------------------------------
# 1. naive float64 references
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("gamma", [0.0, 0.5, 1.5, 4.0])
@pytest.mark.parametrize("t", [0.5, 1.0, 2.0, 4.0])
@pytest.mark.parametrize("scale", SCALES)
def test_nkd_matches_naive_reference(scale, t, gamma):
    """nkd == -p_t[y] log p_s[y] - gamma*T^2*sum_{c!=y} q_t log q_s, row by row."""
    zs, zt, y = _logits(1, scale=scale), _logits(2, scale=scale), _labels(1)
    _close(nkd(zs, zt, y, temperature=t, gamma=gamma), ref_nkd(zs, zt, y, t, gamma))


# (scale, T) pairs with max |z/T| well below logit(1 - 1e-8) ~ 18.4: the clamp is inactive
BINARY_CASES = [(0.1, 0.5), (0.1, 1.0), (0.1, 4.0), (3.0, 1.0), (3.0, 2.0), (3.0, 4.0),
                (30.0, 10.0), (30.0, 20.0)]


@pytest.mark.parametrize("scale,t", BINARY_CASES)
def test_binary_kl_matches_naive_reference(scale, t):
    """binary_kl == T^2 * sum_c KLbin(sigmoid(z_t/T) || sigmoid(z_s/T))."""
    zs, zt = _logits(3, scale=scale), _logits(4, scale=scale)
    assert max(zs.abs().max().item(), zt.abs().max().item()) / t < 15.0  # clamp inactive
    _close(binary_kl(zs, zt, temperature=t), ref_binary_kl(zs, zt, t))


def test_binary_kl_finite_where_the_clamp_is_active():
    """|z/T| of 100+ saturates the sigmoid; the 1e-8 clamp keeps values finite and >= 0."""
    zs, zt = _logits(5, scale=30.0), -_logits(6, scale=30.0)
    zs[0, 0], zt[0, 0] = 200.0, -200.0
    zs[1, 1], zt[1, 1] = -300.0, -300.0
    zs.requires_grad_(True)
    out = binary_kl(zs, zt, temperature=1.0)
    (grad,) = torch.autograd.grad(out.sum(), zs)
    assert torch.isfinite(out).all() and torch.isfinite(grad).all()
    assert (out >= 0).all()
    # row 0 has a full disagreement clamped at 1e-8: about log(1e8) ~ 18.4 from that class alone
    assert out[0].item() > 15.0


@pytest.mark.parametrize("scale,t", BINARY_CASES)
def test_binary_kl_norm_matches_naive_reference(scale, t):
    """binary_kl_norm == T^2 * sum_c KLbin(0.5 || sigmoid((z_s - z_t)/T))."""
    zs, zt = _logits(7, scale=scale), _logits(8, scale=scale)
    assert (zs - zt).abs().max().item() / t < 15.0  # clamp inactive
    _close(binary_kl_norm(zs, zt, temperature=t), ref_binary_kl_norm(zs, zt, t))


@pytest.mark.parametrize("t", [0.5, 1.0, 2.0, 4.0])
@pytest.mark.parametrize("scale", SCALES)
def test_symmetric_kl_matches_naive_reference(scale, t):
    """symmetric_kl == T^2 * (KL(p_s||p_t) + KL(p_t||p_s)) / 2 at temperature T."""
    zs, zt = _logits(9, scale=scale), _logits(10, scale=scale)
    _close(symmetric_kl(zs, zt, temperature=t), ref_symmetric_kl(zs, zt, t))


@pytest.mark.parametrize("k", [1, 2, 3, 5, C])
@pytest.mark.parametrize("t", [0.5, 1.0, 4.0])
@pytest.mark.parametrize("scale", SCALES)
def test_topk_kd_matches_naive_reference(scale, t, k):
    """topk_kd == T^2 * KL(p_t|H || p_s|H), H = teacher's top-k, softmax over H only."""
    zs, zt = _logits(11, scale=scale), _logits(12, scale=scale)
    out = topk_kd(zs, zt, k=k, temperature=t)
    _close(out, ref_topk_kd(zs, zt, k, t))
    if k == 1:  # a one-class distribution: KL is 0
        assert out.abs().max().item() == 0.0


@pytest.mark.parametrize("top_k", [0, 1, 3, C])
@pytest.mark.parametrize("t", [0.5, 1.0, 4.0])
@pytest.mark.parametrize("scale", SCALES)
def test_pld_matches_naive_reference(scale, t, top_k):
    """pld == sum_{k<=K} alpha_k (logsumexp_{j>=k} z_s[pi_j] - z_s[pi_k]), pi = [y] + by z_t."""
    zs, zt, y = _logits(13, scale=scale), _logits(14, scale=scale), _labels(13)
    _close(pld(zs, zt, y, temperature=t, top_k=top_k), ref_pld(zs, zt, y, t, top_k))


def test_pld_top_k_zero_equals_top_k_c():
    """top_k = 0 means all ranks: identical to top_k = C."""
    zs, zt, y = _logits(15), _logits(16), _labels(15)
    assert torch.equal(pld(zs, zt, y, top_k=0), pld(zs, zt, y, top_k=C))


# ---------------------------------------------------------------------------------------------
# 2. degenerate cases
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("top_k", [0, 1, 3])
@pytest.mark.parametrize("scale", SCALES)
def test_pld_one_hot_teacher_is_cross_entropy(scale, top_k):
    """Teacher +1000 at y: alpha = (1, 0, ..., 0), so pld = -log softmax(z_s)[y]."""
    zs, y = _logits(17, scale=scale), _labels(17)
    out = pld(zs, _one_hot_teacher(y), y, temperature=1.0, top_k=top_k)
    _close(out, ref_ce(zs, y))
    torch.testing.assert_close(out, cross_entropy(zs, None, y), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("t", [0.5, 1.0, 4.0])
@pytest.mark.parametrize("scale", SCALES)
def test_nkd_gamma_zero_one_hot_teacher_is_cross_entropy(scale, t):
    """gamma = 0 and a one-hot teacher: nkd = -1 * log p_s[y] = cross-entropy."""
    zs, y = _logits(18, scale=scale), _labels(18)
    out = nkd(zs, _one_hot_teacher(y), y, temperature=t, gamma=0.0)
    _close(out, ref_ce(zs, y))
    torch.testing.assert_close(out, cross_entropy(zs, None, y), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("t", [0.5, 1.0, 4.0])
@pytest.mark.parametrize("scale", SCALES)
def test_topk_kd_with_k_equal_c_is_kd(scale, t):
    """H = all classes: topk_kd(k=C) == kd at the same temperature."""
    zs, zt = _logits(19, scale=scale), _logits(20, scale=scale)
    torch.testing.assert_close(topk_kd(zs, zt, k=C, temperature=t), kd(zs, zt, temperature=t),
                               rtol=RTOL, atol=ATOL)


def test_topk_kd_with_k_below_c_differs_from_kd():
    """Control for the above: restricting to the top 2 classes changes the value."""
    zs, zt = _logits(21), _logits(22)
    diff = topk_kd(zs, zt, k=2, temperature=1.0) - kd(zs, zt, temperature=1.0)
    assert diff.abs().max().item() > 1e-3


@pytest.mark.parametrize("t", [0.5, 1.0, 2.0, 4.0])
@pytest.mark.parametrize("scale", SCALES)
def test_binary_kl_norm_zero_exactly_at_equality_positive_otherwise(scale, t):
    """KLbin(0.5 || sigmoid(0)) = 0 exactly; any difference makes every row positive."""
    z = _logits(23, scale=scale)
    assert torch.equal(binary_kl_norm(z, z.clone(), temperature=t), torch.zeros(B, dtype=z.dtype))
    other = z.clone()
    other[:, 3] += 0.5  # one class per row differs
    assert (binary_kl_norm(other, z, temperature=t) > 0).all()
    assert (binary_kl_norm(_logits(24, scale=scale), z, temperature=t) > 0).all()


@pytest.mark.parametrize("t", [0.5, 1.0, 4.0])
@pytest.mark.parametrize("scale", SCALES)
def test_symmetric_kl_is_symmetric_and_zero_at_equality(scale, t):
    """symmetric_kl(a, b) == symmetric_kl(b, a) > 0, and symmetric_kl(a, a) == 0."""
    a, b = _logits(25, scale=scale), _logits(26, scale=scale)
    ab = symmetric_kl(a, b, temperature=t)
    ba = symmetric_kl(b, a, temperature=t)
    torch.testing.assert_close(ab, ba, rtol=RTOL, atol=ATOL)
    assert (ab > 0).all()
    assert symmetric_kl(a, a.clone(), temperature=t).abs().max().item() <= 1e-12
    # control: plain KD is not symmetric for the same inputs
    assert (kd(a, b, temperature=t) - kd(b, a, temperature=t)).abs().max().item() > 1e-6


def _nkd_via_kl(zs, zt, labels, t, gamma):
    """target term + gamma*T^2*KL(q_t || q_s) over the non-target classes (torch, float64)."""
    n, c = zs.shape
    log_ps = torch.log_softmax(zs, -1)
    p_t = torch.softmax(zt, -1)
    target = -(p_t.gather(-1, labels[:, None]) * log_ps.gather(-1, labels[:, None])).squeeze(-1)
    others = torch.tensor([[j for j in range(c) if j != yy] for yy in labels.tolist()])
    lq_s = torch.log_softmax(zs.gather(-1, others) / t, -1)
    lq_t = torch.log_softmax(zt.gather(-1, others) / t, -1)
    kl = (lq_t.exp() * (lq_t - lq_s)).sum(-1)
    return target + gamma * t * t * kl


@pytest.mark.parametrize("gamma", [0.5, 1.5])
@pytest.mark.parametrize("t", [1.0, 4.0])
@pytest.mark.parametrize("scale", SCALES)
def test_nkd_gradient_equals_that_of_the_kl_form(scale, t, gamma):
    """The teacher-entropy constant changes nkd's value, not its gradient w.r.t. the student."""
    zs, zt, y = _logits(27, scale=scale), _logits(28, scale=scale), _labels(27)
    s1 = zs.clone().requires_grad_(True)
    s2 = zs.clone().requires_grad_(True)
    value = nkd(s1, zt, y, temperature=t, gamma=gamma)
    via_kl = _nkd_via_kl(s2, zt, y, t, gamma)
    (g1,) = torch.autograd.grad(value.sum(), s1)
    (g2,) = torch.autograd.grad(via_kl.sum(), s2)
    torch.testing.assert_close(g1, g2, rtol=1e-9, atol=1e-12)
    assert g1.abs().max().item() > 1e-6
    # the values differ by gamma*T^2*H(q_t) >= 0 (the test would be vacuous otherwise); at
    # scale 30 some teacher rows are nearly one-hot on the non-target classes (H ~ 0)
    gap = (value - via_kl).detach()
    assert gap.min().item() >= -1e-9 and gap.max().item() > 1e-3


# ---------------------------------------------------------------------------------------------
# 3. invariances to constant shifts
# ---------------------------------------------------------------------------------------------

def test_pld_invariant_to_student_shift():
    """pld depends on z_s only through softmax-like ratios: a per-row constant is ignored."""
    zs, zt, y = _logits(29), _logits(30), _labels(29)
    for top_k in (0, 2):
        base = pld(zs, zt, y, top_k=top_k)
        torch.testing.assert_close(pld(zs + _shift(), zt, y, top_k=top_k), base,
                                   rtol=1e-9, atol=1e-11)


SHIFT_LOSSES = {
    "topk_kd": (topk_kd, {"k": 3, "temperature": 2.0}),
    "symmetric_kl": (symmetric_kl, {"temperature": 2.0}),
    "nkd": (nkd, {"temperature": 2.0, "gamma": 1.5}),
}


@pytest.mark.parametrize("which", ["student", "teacher"])
@pytest.mark.parametrize("name", sorted(SHIFT_LOSSES))
def test_softmax_losses_invariant_to_per_row_shift(name, which):
    """topk_kd, symmetric_kl, nkd are unchanged by adding a per-row constant to either input."""
    fn, params = SHIFT_LOSSES[name]
    zs, zt, y = _logits(31), _logits(32), _labels(31)
    base = fn(zs, zt, y, **params)
    assert base.abs().min().item() > 1e-3
    if which == "student":
        moved = fn(zs + _shift(), zt, y, **params)
    else:
        moved = fn(zs, zt + _shift(), y, **params)
    torch.testing.assert_close(moved, base, rtol=1e-9, atol=1e-11)


def test_binary_kl_norm_invariant_to_shifting_both_but_not_one():
    """Only z_s - z_t matters: the same shift on both is invisible, a shift on one is not."""
    zs, zt = _logits(33), _logits(34)
    base = binary_kl_norm(zs, zt, temperature=2.0)
    both = binary_kl_norm(zs + _shift(), zt + _shift(), temperature=2.0)
    torch.testing.assert_close(both, base, rtol=1e-9, atol=1e-11)
    assert (binary_kl_norm(zs + 1.0, zt, temperature=2.0) - base).abs().min().item() > 1e-3
    assert (binary_kl_norm(zs, zt + 1.0, temperature=2.0) - base).abs().min().item() > 1e-3


def test_binary_kl_not_shift_invariant():
    """Independent sigmoids are not softmaxes: a constant shift of one input changes the loss."""
    zs, zt = _logits(35), _logits(36)
    base = binary_kl(zs, zt, temperature=2.0)
    assert (binary_kl(zs + 1.0, zt, temperature=2.0) - base).abs().min().item() > 1e-3
    assert (binary_kl(zs, zt + 1.0, temperature=2.0) - base).abs().min().item() > 1e-3


# ---------------------------------------------------------------------------------------------
# 4. gradients reach only the student
# ---------------------------------------------------------------------------------------------

def _teacher_grad_after_backward(fn, **params):
    student = _logits(37).requires_grad_(True)
    teacher = _logits(38).requires_grad_(True)
    y = _labels(37)
    fn(student, teacher, y, **params).sum().backward()
    assert student.grad is not None and student.grad.abs().max().item() > 0.0
    return teacher.grad


def test_symmetric_kl_teacher_gets_no_gradient():
    """The teacher side of symmetric_kl is detached (SSLD freezes the teacher)."""
    grad = _teacher_grad_after_backward(symmetric_kl, temperature=2.0)
    assert grad is None or grad.abs().max().item() == 0.0


def test_nkd_teacher_gets_no_gradient():
    """Neither nkd term sends gradient into the teacher logits."""
    grad = _teacher_grad_after_backward(nkd, temperature=2.0, gamma=1.5)
    assert grad is None or grad.abs().max().item() == 0.0


def test_nkd_target_term_sends_no_gradient_to_teacher():
    """With gamma = 0 only the target term remains, whose teacher weight p_t[y] is detached."""
    grad = _teacher_grad_after_backward(nkd, temperature=2.0, gamma=0.0)
    assert grad is None or grad.abs().max().item() == 0.0


def test_pld_teacher_gets_no_gradient():
    """pld's weights alpha come from a detached teacher softmax; the order is discrete."""
    grad = _teacher_grad_after_backward(pld, temperature=2.0, top_k=0)
    assert grad is None or grad.abs().max().item() == 0.0


# ---------------------------------------------------------------------------------------------
# 5. bad input
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("k", [C + 1, 100])
def test_topk_kd_rejects_k_above_class_count(k):
    """k > C raises ParameterError naming topk_kd.k, the value and the class count."""
    zs, zt = _logits(39), _logits(40)
    with pytest.raises(ParameterError) as err:
        topk_kd(zs, zt, k=k)
    msg = str(err.value)
    assert "topk_kd.k" in msg and repr(k) in msg and str(C) in msg


@pytest.mark.parametrize("top_k", [C + 1, 100])
def test_pld_rejects_top_k_above_class_count(top_k):
    """top_k > C raises ParameterError naming pld.top_k, the value and the class count."""
    zs, zt, y = _logits(41), _logits(42), _labels(41)
    with pytest.raises(ParameterError) as err:
        pld(zs, zt, y, top_k=top_k)
    msg = str(err.value)
    assert "pld.top_k" in msg and repr(top_k) in msg and str(C) in msg


@pytest.mark.parametrize("fn", [nkd, pld], ids=["nkd", "pld"])
def test_label_losses_reject_missing_labels(fn):
    """nkd and pld need the target class of each row: labels=None raises ParameterError."""
    with pytest.raises(ParameterError, match="labels"):
        fn(_logits(43), _logits(44), None)


# ---------------------------------------------------------------------------------------------
# 6. teacher_optimal_order
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("scale", SCALES)
def test_teacher_optimal_order_structure(scale):
    """Column 0 is y, the rest follow descending teacher logits, each row a permutation."""
    b, c = 8, 9
    zt, y = _logits(45, b=b, c=c, scale=scale), _labels(45, b=b, c=c)
    y[0] = int(zt[0].argmax())  # y already the teacher's top class
    y[1] = int(zt[1].argmin())  # y the teacher's last class
    order = teacher_optimal_order(zt, y)
    assert order.shape == (b, c)
    assert torch.equal(order[:, 0], y)
    for row, yy, rt in zip(order.tolist(), y.tolist(), zt.tolist()):
        assert sorted(row) == list(range(c))
        rest = [rt[j] for j in row[1:]]
        assert all(a >= b_ for a, b_ in zip(rest, rest[1:]))
        assert row == ref_order(rt, yy)


def test_teacher_optimal_order_with_ties_is_a_permutation():
    """Tied teacher logits (including a tie with the true class) still give a permutation."""
    zt = torch.tensor([[1.0, 1.0, 1.0, 0.0], [2.0, 2.0, 5.0, 5.0]], dtype=torch.float64)
    y = torch.tensor([1, 3])
    order = teacher_optimal_order(zt, y)
    assert order[:, 0].tolist() == [1, 3]
    for row, rt in zip(order.tolist(), zt.tolist()):
        assert sorted(row) == list(range(4))
        rest = [rt[j] for j in row[1:]]
        assert all(a >= b for a, b in zip(rest, rest[1:]))
