"""The conversions of docs/conventions.md ("Moving from another library"), checked numerically.

Each peer's loss is re-implemented here as a float64 loop over Python floats, following the
peer's source at the commit named in the page:

* torchdistill ``torchdistill/losses/mid_level.py`` ``KDLoss.forward``;
* TRL ``trl/experimental/gkd/gkd_trainer.py`` ``GKDTrainer.generalized_jsd_loss`` (TRL >= 0.16);
* torchtune ``torchtune/modules/loss/kd_losses.py`` ``ForwardKLLoss``, ``ReverseKLLoss``;
* DistiLLM ``distillm/losses.py`` ``forward_kl``, ``reverse_kl``, ``js_distance``,
  ``tv_distance``, ``skewed_forward_kl``, ``skewed_reverse_kl``.

and compared with mentor through the formula the page states. The worked values of the page
are asserted as literals.
"""

from __future__ import annotations

import math

import pytest
import torch

from mentor.losses import cross_entropy, kd
from mentor.losses.tokens import token_divergence
from mentor.methods import hinton

NEG = float("-inf")
B, L, V = 2, 3, 5


def _softmax(row: list[float], t: float = 1.0) -> list[float]:
    m = max(x / t for x in row)
    e = [math.exp(x / t - m) for x in row]
    s = sum(e)
    return [x / s for x in e]


def _xlogy_ratio(p: float, q: float) -> float:
    return 0.0 if p == 0 else p * math.log(p / q)


def _kl(p: list[float], q: list[float]) -> float:
    return sum(_xlogy_ratio(a, b) for a, b in zip(p, q))


def _entropy(p: list[float]) -> float:
    return -sum(a * math.log(a) for a in p if a > 0)


def _logits(seed: int, b: int = B, n: int = L, v: int = V) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, n, v, generator=g, dtype=torch.float64) * 2


def _labels() -> torch.Tensor:
    return torch.tensor([[3, -100, 1], [-100, 0, 4]])


def _tokens(zs, zt, labels=None):
    """(student row, teacher row, kept) per position, in order."""
    out = []
    for b in range(zs.shape[0]):
        for i in range(zs.shape[1]):
            kept = labels is None or int(labels[b, i]) != -100
            out.append((zs[b, i].tolist(), zt[b, i].tolist(), kept))
    return out


# --------------------------------------------------------------------------- peer references

def torchdistill_kd_loss(zs, zt, targets, temperature, alpha, beta=None):
    """KDLoss.forward with reduction='batchmean': soft = batch mean of KL(p_t || p_s) at T,
    returned alone if alpha is None or 0 or no targets, else
    alpha * mean CE + beta * T^2 * soft with beta = 1 - alpha by default."""
    beta = 1 - alpha if beta is None else beta
    rows_s, rows_t = zs.tolist(), zt.tolist()
    soft = sum(_kl(_softmax(t, temperature), _softmax(s, temperature))
               for s, t in zip(rows_s, rows_t)) / len(rows_s)
    if alpha is None or alpha == 0 or targets is None:
        return soft
    ce = sum(-math.log(_softmax(s)[y]) for s, y in zip(rows_s, targets.tolist())) / len(rows_s)
    return alpha * ce + beta * temperature ** 2 * soft


def trl_generalized_jsd(zs, zt, labels=None, beta=0.5, temperature=1.0, reduction="batchmean"):
    """Per entry beta KL(p_t||M) + (1-beta) KL(p_s||M), M = beta p_t + (1-beta) p_s; the plain
    KLs at beta 0 / 1; entries of label -100 dropped; batchmean = sum / kept tokens (with
    labels) or / batch size (without); mean = mean over every kept entry."""
    total, tokens = 0.0, 0
    for s, t, kept in _tokens(zs, zt, labels):
        if not kept:
            continue
        ps, pt = _softmax(s, temperature), _softmax(t, temperature)
        if beta == 0:
            value = _kl(pt, ps)
        elif beta == 1:
            value = _kl(ps, pt)
        else:
            m = [beta * a + (1 - beta) * b for a, b in zip(pt, ps)]
            value = beta * _kl(pt, m) + (1 - beta) * _kl(ps, m)
        total += value
        tokens += 1
    if reduction == "batchmean":
        return total / (tokens if labels is not None else zs.shape[0])
    if reduction == "mean":
        return total / (tokens * zs.shape[-1])
    assert reduction == "sum"
    return total


def _finite_entries(s, t, either: bool):
    """Indices kept by torchtune/DistiLLM's inf mask: student finite (forward KL) or both
    finite (the others)."""
    return [v for v in range(len(s)) if math.isfinite(s[v]) and (not either or math.isfinite(t[v]))]


def torchtune_forward_kl(zs, zt, labels):
    """ForwardKLLoss / DistiLLM forward_kl: token mean of -sum_v p_t log p_s over entries
    where the student logit is finite."""
    total, n = 0.0, 0
    for s, t, kept in _tokens(zs, zt, labels):
        if kept:
            ps, pt = _softmax(s), _softmax(t)
            total += -sum(pt[v] * math.log(ps[v]) for v in _finite_entries(s, t, False))
            n += 1
    return total / n


def torchtune_reverse_kl(zs, zt, labels):
    """ReverseKLLoss / DistiLLM reverse_kl: token mean of sum_v p_s (log p_s - log p_t)."""
    total, n = 0.0, 0
    for s, t, kept in _tokens(zs, zt, labels):
        if kept:
            ps, pt = _softmax(s), _softmax(t)
            total += sum(ps[v] * (math.log(ps[v]) - math.log(pt[v]))
                         for v in _finite_entries(s, t, True))
            n += 1
    return total / n


def distillm(kind, zs, zt, labels, lam):
    """js_distance, tv_distance, skewed_forward_kl, skewed_reverse_kl: token means."""
    total, n = 0.0, 0
    for s, t, kept in _tokens(zs, zt, labels):
        if not kept:
            continue
        ps, pt = _softmax(s), _softmax(t)
        idx = _finite_entries(s, t, True)
        if kind == "js_distance":
            m = [(1 - lam) * a + lam * b for a, b in zip(pt, ps)]
            value = (lam * sum(ps[v] * (math.log(ps[v]) - math.log(m[v])) for v in idx)
                     + (1 - lam) * sum(pt[v] * (math.log(pt[v]) - math.log(m[v])) for v in idx))
        elif kind == "tv_distance":
            value = 0.5 * sum(abs(pt[v] - ps[v]) for v in idx)
        elif kind == "skewed_forward_kl":
            m = [lam * a + (1 - lam) * b for a, b in zip(pt, ps)]
            value = -sum(pt[v] * math.log(m[v]) for v in idx)
        else:
            assert kind == "skewed_reverse_kl"
            m = [(1 - lam) * a + lam * b for a, b in zip(pt, ps)]
            value = sum(ps[v] * (math.log(ps[v]) - math.log(m[v])) for v in idx)
        total += value
        n += 1
    return total / n


def teacher_entropy(zt, labels):
    ents = [_entropy(_softmax(t)) for _, t, kept in _tokens(zt, zt, labels) if kept]
    return sum(ents) / len(ents)


def _mentor(zs, zt, labels=None, **kw):
    mask = None if labels is None else labels != -100
    return token_divergence(zs, zt, mask, **kw).item()


# --------------------------------------------------------------------------- torchdistill

def test_torchdistill_kd_loss_alone_is_mentor_kd_over_t_squared():
    g = torch.Generator().manual_seed(0)
    zs = torch.randn(4, 6, generator=g, dtype=torch.float64)
    zt = torch.randn(4, 6, generator=g, dtype=torch.float64)
    y = torch.randint(0, 6, (4,), generator=g)
    for t in (1.0, 2.0, 4.0):
        mentor_kd = kd(zs, zt, temperature=t).mean().item()
        for alpha, targets in ((0, y), (0.5, None)):
            peer = torchdistill_kd_loss(zs, zt, targets, t, alpha)
            assert peer == pytest.approx(mentor_kd / t ** 2, rel=1e-12)


def test_torchdistill_weighted_sum_is_mentor_ce_and_kd_weights():
    g = torch.Generator().manual_seed(1)
    zs = torch.randn(4, 6, generator=g, dtype=torch.float64)
    zt = torch.randn(4, 6, generator=g, dtype=torch.float64)
    y = torch.randint(0, 6, (4,), generator=g)
    ce = cross_entropy(zs, None, y).mean().item()
    for t, a, b in ((4.0, 0.1, None), (2.0, 0.5, 0.25)):
        peer = torchdistill_kd_loss(zs, zt, y, t, a, b)
        mentor_kd = kd(zs, zt, temperature=t).mean().item()
        assert peer == pytest.approx(a * ce + (1 - a if b is None else b) * mentor_kd, rel=1e-12)
    # default beta = 1 - alpha: method kd with alpha_mentor = 1 - alpha_torchdistill
    a, t = 0.1, 4.0
    objectives = hinton(1 - a, t)
    values = {"ce": ce, "kd": kd(zs, zt, temperature=t).mean().item()}
    ours = sum(o.weight * values[o.loss] for o in objectives)
    assert [o.loss for o in objectives] == ["ce", "kd"]
    assert ours == pytest.approx(torchdistill_kd_loss(zs, zt, y, t, a), rel=1e-12)


def test_torchdistill_worked_values():
    """z_s = (0, 1), z_t = (1, 0), T = 2, y = 1: KL = tanh(1/4)/2 = 0.1224593; mentor kd =
    4 KL = 0.4898373; CE = log(1 + 1/e) = 0.3132617; alpha 0.1: 0.4721798."""
    zs = torch.tensor([[0.0, 1.0]], dtype=torch.float64)
    zt = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    y = torch.tensor([1])
    kl = math.tanh(0.25) / 2
    assert kl == pytest.approx(0.1224593, abs=1e-7)
    assert torchdistill_kd_loss(zs, zt, None, 2.0, 0) == pytest.approx(kl, abs=1e-12)
    assert kd(zs, zt, temperature=2.0).item() == pytest.approx(0.4898373, abs=1e-7)
    assert cross_entropy(zs, None, y).item() == pytest.approx(0.3132617, abs=1e-7)
    assert torchdistill_kd_loss(zs, zt, y, 2.0, 0.1) == pytest.approx(0.4721798, abs=1e-7)


# --------------------------------------------------------------------------- TRL

@pytest.mark.parametrize("temperature", [1.0, 2.0])
@pytest.mark.parametrize("beta", [0.0, 0.1, 0.5, 0.9, 1.0])
def test_trl_jsd_is_mentor_jsd_times_beta_one_minus_beta(beta, temperature):
    zs, zt, y = _logits(10), _logits(11), _labels()
    scale = beta * (1 - beta) if 0 < beta < 1 else 1.0
    kw = {"kind": "jsd", "beta": beta, "temperature": temperature}
    # with labels (what GKDTrainer passes): batchmean is a per-token mean
    peer = trl_generalized_jsd(zs, zt, y, beta, temperature, "batchmean")
    assert peer == pytest.approx(scale * _mentor(zs, zt, y, **kw), rel=1e-10)
    # mean divides by the vocabulary too; sum is the sum
    peer = trl_generalized_jsd(zs, zt, y, beta, temperature, "mean")
    assert peer == pytest.approx(scale * _mentor(zs, zt, y, **kw) / V, rel=1e-10)
    peer = trl_generalized_jsd(zs, zt, y, beta, temperature, "sum")
    assert peer == pytest.approx(scale * _mentor(zs, zt, y, reduction="sum", **kw), rel=1e-10)
    # without labels: batchmean divides by the batch size B = L * (per-token mean)
    peer = trl_generalized_jsd(zs, zt, None, beta, temperature, "batchmean")
    assert peer == pytest.approx(scale * _mentor(zs, zt, reduction="sum", **kw) / B, rel=1e-10)
    assert peer == pytest.approx(scale * L * _mentor(zs, zt, **kw), rel=1e-10)


def test_trl_worked_values():
    """z_s = (0, 1), z_t = (1, 0), beta 1/2: M = (1/2, 1/2), TRL = ln 2 - H(sigma(1),
    sigma(-1)) = 0.1109441 with H = ln(1+e) - sigma(1) = 0.5822031; mentor 4x = 0.4437763."""
    zs = torch.tensor([[[0.0, 1.0]]], dtype=torch.float64)
    zt = torch.tensor([[[1.0, 0.0]]], dtype=torch.float64)
    h = math.log(1 + math.e) - math.e / (1 + math.e)
    assert h == pytest.approx(0.5822031, abs=1e-7)
    assert trl_generalized_jsd(zs, zt) == pytest.approx(math.log(2) - h, abs=1e-12)
    assert trl_generalized_jsd(zs, zt) == pytest.approx(0.1109441, abs=1e-7)
    assert _mentor(zs, zt, kind="jsd", beta=0.5) == pytest.approx(0.4437763, abs=1e-7)


# --------------------------------------------------------------------------- torchtune/DistiLLM

def test_torchtune_forward_kl_is_mentor_forward_kl_plus_teacher_entropy():
    zs, zt, y = _logits(20), _logits(21), _labels()
    peer = torchtune_forward_kl(zs, zt, y)
    ours = _mentor(zs, zt, y, kind="forward_kl") + teacher_entropy(zt, y)
    assert peer == pytest.approx(ours, rel=1e-10)
    assert torchtune_forward_kl(zt, zt, y) == pytest.approx(teacher_entropy(zt, y), rel=1e-12)
    assert torchtune_reverse_kl(zs, zt, y) == pytest.approx(
        _mentor(zs, zt, y, kind="reverse_kl"), rel=1e-10)


@pytest.mark.parametrize("lam", [0.1, 0.5, 0.9])
def test_distillm_losses_in_mentor_terms(lam):
    zs, zt, y = _logits(30), _logits(31), _labels()
    assert distillm("js_distance", zs, zt, y, lam) == pytest.approx(
        lam * (1 - lam) * _mentor(zs, zt, y, kind="jsd", beta=1 - lam), rel=1e-10)
    assert distillm("tv_distance", zs, zt, y, lam) == pytest.approx(
        _mentor(zs, zt, y, kind="tvd"), rel=1e-10)
    assert distillm("skewed_forward_kl", zs, zt, y, lam) == pytest.approx(
        _mentor(zs, zt, y, kind="skew_forward_kl", alpha=lam) + teacher_entropy(zt, y),
        rel=1e-10)
    assert distillm("skewed_reverse_kl", zs, zt, y, lam) == pytest.approx(
        _mentor(zs, zt, y, kind="skew_reverse_kl", alpha=lam), rel=1e-10)


def test_forward_kl_worked_values_with_shared_neg_inf():
    """Student (0, 1, -inf), teacher (1, 0, -inf): mentor forward KL = reverse KL = tanh(1/2) =
    0.4621172; torchtune/DistiLLM forward KL = ln(1+e) - sigma(-1) = 1.0443203 = 0.4621172 +
    H(p_t) 0.5822031; their reverse KL 0.4621172."""
    zs = torch.tensor([[[0.0, 1.0, NEG]]], dtype=torch.float64)
    zt = torch.tensor([[[1.0, 0.0, NEG]]], dtype=torch.float64)
    y = torch.tensor([[0]])
    assert _mentor(zs, zt, kind="forward_kl") == pytest.approx(0.4621172, abs=1e-7)
    assert _mentor(zs, zt, kind="reverse_kl") == pytest.approx(0.4621172, abs=1e-7)
    want = math.log(1 + math.e) - 1 / (1 + math.e)
    assert want == pytest.approx(1.0443203, abs=1e-7)
    assert torchtune_forward_kl(zs, zt, y) == pytest.approx(want, abs=1e-12)
    assert torchtune_forward_kl(zs, zt, y) == pytest.approx(
        _mentor(zs, zt, kind="forward_kl") + teacher_entropy(zt, y), abs=1e-12)
    assert torchtune_reverse_kl(zs, zt, y) == pytest.approx(0.4621172, abs=1e-7)
