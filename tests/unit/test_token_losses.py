"""Unit tests for the language-model token losses (``mentor.losses.tokens``).

1. Every divergence against a naive float64 reference (Python loops over positions and
   vocabulary, ``math.exp``/``math.log`` on floats), masked, at temperature 2, all reductions.
2. Identities: JSD continuity at β -> 0 / 1, skew α = 0, zero at equality, nonnegativity.
3. Top-k teachers: k = V, (k+1)-bin tail reference, renormalized reference at temperature 2.
4. Chunking: values and gradients equal the one-pass ones; the head variant never needs the
   full logits and equals the logits path; gradient accumulation with token_count.
5. Input validation: one error per bad input, naming the field.
6. Masked vocabulary entries (-inf logits): shared -inf entries contribute 0 with finite
   gradients on every path (hand-worked values, float64 loop reference); one-sided -inf
   entries keep their true value (+inf for the KLs, finite for the mixtures and TVD).
"""

from __future__ import annotations

import math

import pytest
import torch
from naive import log_softmax as _log_softmax

from mentor.errors import MentorError, ParameterError
from mentor.losses import tokens
from mentor.losses.tokens import (
    DIVERGENCES,
    TAIL_EPS,
    TopKSignal,
    chunked_head_divergence,
    token_count,
    token_divergence,
)

B, L, V = 2, 5, 7
TOL = 1e-6


def _logits(seed: int, b: int = B, n: int = L, v: int = V, scale: float = 2.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, n, v, generator=g, dtype=torch.float64) * scale


def _mask(seed: int, b: int = B, n: int = L) -> torch.Tensor:
    g = torch.Generator().manual_seed(500 + seed)
    m = torch.rand(b, n, generator=g) < 0.6
    m[0, 0] = True
    m[1, -1] = False  # at least one masked-out position
    return m


# --- naive references (Python floats, explicit loops) -----------------------------------------

def _kl(p: list[float], q: list[float]) -> float:
    return sum(pi * (math.log(pi) - math.log(qi)) for pi, qi in zip(p, q) if pi > 0)


def _div(kind: str, pt: list[float], ps: list[float], beta: float, alpha: float) -> float:
    if kind == "forward_kl":
        return _kl(pt, ps)
    if kind == "reverse_kl":
        return _kl(ps, pt)
    if kind == "tvd":
        return 0.5 * sum(abs(a - b) for a, b in zip(pt, ps))
    if kind == "skew_forward_kl":
        return _kl(pt, [alpha * a + (1 - alpha) * b for a, b in zip(pt, ps)])
    if kind == "skew_reverse_kl":
        return _kl(ps, [alpha * b + (1 - alpha) * a for a, b in zip(pt, ps)])
    assert kind == "jsd"
    if beta == 0:
        return _kl(pt, ps)
    if beta == 1:
        return _kl(ps, pt)
    m = [beta * a + (1 - beta) * b for a, b in zip(pt, ps)]
    return (beta * _kl(pt, m) + (1 - beta) * _kl(ps, m)) / (beta * (1 - beta))


def _probs(row: list[float], t: float) -> list[float]:
    return [math.exp(x) for x in _log_softmax(row, t)]


def ref_positions(zs, zt, kind, *, t=1.0, beta=0.5, alpha=0.1, t2=False) -> list[list[float]]:
    out = []
    for rows_s, rows_t in zip(zs.tolist(), zt.tolist()):
        line = []
        for rs, rt in zip(rows_s, rows_t):
            d = _div(kind, _probs(rt, t), _probs(rs, t), beta, alpha)
            line.append(d * t * t if t2 else d)
        out.append(line)
    return out


def ref_topk_positions(zs, idx, lp, kind, *, renormalize, t=1.0, beta=0.5, alpha=0.1):
    """(k+1)-bin (tail) or k-bin (renormalized) reference per position."""
    out = []
    for b in range(zs.shape[0]):
        line = []
        for i in range(zs.shape[1]):
            ids = idx[b, i].tolist()
            t_lp = lp[b, i].tolist()
            if renormalize:
                pt = _probs(t_lp, t)
                ps = _probs([zs[b, i, j].item() for j in ids], t)
            else:
                full = _probs(zs[b, i].tolist(), 1.0)
                ps = [full[j] for j in ids]
                ps.append(max(1.0 - sum(ps), TAIL_EPS))
                pt = [math.exp(x) for x in t_lp]
                pt.append(max(1.0 - sum(pt), TAIL_EPS))
            line.append(_div(kind, pt, ps, beta, alpha))
        out.append(line)
    return out


def _reduce(per_pos: list[list[float]], mask: torch.Tensor, reduction: str):
    m = mask.tolist()
    if reduction == "none":
        return torch.tensor([[v if keep else 0.0 for v, keep in zip(rv, rm)]
                             for rv, rm in zip(per_pos, m)], dtype=torch.float64)
    total = sum(v for rv, rm in zip(per_pos, m) for v, keep in zip(rv, rm) if keep)
    if reduction == "sum":
        return torch.tensor(total, dtype=torch.float64)
    return torch.tensor(total / sum(sum(r) for r in m), dtype=torch.float64)


def _close(a: torch.Tensor, b: torch.Tensor, tol: float = TOL) -> None:
    assert a.shape == b.shape
    assert torch.allclose(a, b, rtol=0, atol=tol), (a, b)


# ---------------------------------------------------------------------------------------------
# 1. naive references
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("kind", DIVERGENCES)
def test_matches_naive_reference(kind, reduction):
    zs, zt, mask = _logits(1), _logits(2), _mask(3)
    kw = {"beta": 0.3, "alpha": 0.2, "temperature": 2.0}
    got = token_divergence(zs, zt, mask, kind=kind, reduction=reduction, **kw)
    want = _reduce(ref_positions(zs, zt, kind, t=2.0, beta=0.3, alpha=0.2), mask, reduction)
    _close(got, want)
    assert got.dtype == torch.float64


@pytest.mark.parametrize("kind", DIVERGENCES)
def test_t2_scales_by_temperature_squared(kind):
    zs, zt, mask = _logits(4), _logits(5), _mask(6)
    got = token_divergence(zs, zt, mask, kind=kind, temperature=2.0, t2=True, reduction="none")
    want = _reduce(ref_positions(zs, zt, kind, t=2.0, t2=True), mask, "none")
    _close(got, want)


def test_mask_none_counts_every_position_and_accepts_0_1():
    zs, zt = _logits(7), _logits(8)
    per = token_divergence(zs, zt, reduction="none")
    _close(token_divergence(zs, zt), per.mean())
    m = _mask(9)
    _close(token_divergence(zs, zt, m.long()), token_divergence(zs, zt, m))
    _close(token_divergence(zs, zt, m, normalizer=4.0), per[m].sum() / 4.0)


def test_low_precision_inputs_computed_in_float32():
    zs, zt, mask = _logits(10), _logits(11), _mask(12)
    ref = token_divergence(zs, zt, mask, kind="jsd")
    for dtype in (torch.bfloat16, torch.float16, torch.float32):
        got = token_divergence(zs.to(dtype), zt.to(dtype), mask, kind="jsd")
        assert got.dtype == torch.float32
        exact = token_divergence(zs.to(dtype).double(), zt.to(dtype).double(), mask, kind="jsd")
        assert abs(got.item() - exact.item()) < 1e-5
    assert abs(token_divergence(zs.float(), zt.float(), mask, kind="jsd").item()
               - ref.item()) < 1e-5


def test_teacher_is_detached():
    zs = _logits(13).requires_grad_()
    zt = _logits(14).requires_grad_()
    token_divergence(zs, zt, kind="jsd").backward()
    assert zt.grad is None and zs.grad is not None


# ---------------------------------------------------------------------------------------------
# 2. identities
# ---------------------------------------------------------------------------------------------

def test_jsd_continuous_at_both_ends():
    zs, zt, mask = _logits(15), _logits(16), _mask(17)
    fkl = token_divergence(zs, zt, mask, kind="forward_kl")
    rkl = token_divergence(zs, zt, mask, kind="reverse_kl")
    assert abs(fkl - rkl) > 1e-2  # the two ends differ, so the checks below can fail
    near0 = token_divergence(zs, zt, mask, kind="jsd", beta=1e-6)
    near1 = token_divergence(zs, zt, mask, kind="jsd", beta=1 - 1e-6)
    assert abs(near0 - fkl) <= 1e-4 * fkl
    assert abs(near1 - rkl) <= 1e-4 * rkl
    assert torch.equal(token_divergence(zs, zt, mask, kind="jsd", beta=0.0), fkl)
    assert torch.equal(token_divergence(zs, zt, mask, kind="jsd", beta=1.0), rkl)
    mid = token_divergence(zs, zt, mask, kind="jsd", beta=0.5)
    _close(mid, _reduce(ref_positions(zs, zt, "jsd", beta=0.5), mask, "mean"))


def test_jsd_near_ends_stable_in_float32():
    zs, zt = _logits(18).float(), _logits(19).float()
    fkl = token_divergence(zs, zt, kind="forward_kl")
    rkl = token_divergence(zs, zt, kind="reverse_kl")
    assert abs(token_divergence(zs, zt, kind="jsd", beta=1e-6) - fkl) <= 1e-4 * fkl
    assert abs(token_divergence(zs, zt, kind="jsd", beta=1 - 1e-6) - rkl) <= 1e-4 * rkl


def test_skew_alpha_zero_is_plain_kl():
    zs, zt, mask = _logits(20), _logits(21), _mask(22)
    for skew, plain in (("skew_forward_kl", "forward_kl"), ("skew_reverse_kl", "reverse_kl")):
        a = token_divergence(zs, zt, mask, kind=skew, alpha=0.0, reduction="none")
        b = token_divergence(zs, zt, mask, kind=plain, reduction="none")
        _close(a, b, 1e-12)
        # and alpha > 0 really changes the value
        c = token_divergence(zs, zt, mask, kind=skew, alpha=0.5, reduction="none")
        assert (c - b).abs().max() > 1e-3


@pytest.mark.parametrize("kind", DIVERGENCES)
def test_zero_at_equality_and_nonnegative(kind):
    z = _logits(23)
    same = token_divergence(z, z.clone(), kind=kind, temperature=1.5, reduction="none")
    assert same.abs().max() < 1e-12
    for seed in range(3):
        vals = token_divergence(_logits(30 + seed, scale=5.0), _logits(40 + seed, scale=5.0),
                                kind=kind, reduction="none")
        assert vals.min() >= -1e-12 and vals.max() > 1e-3


# ---------------------------------------------------------------------------------------------
# 3. top-k teachers
# ---------------------------------------------------------------------------------------------

def _topk(zt: torch.Tensor, k: int, renormalize: bool = False) -> TopKSignal:
    lp, idx = torch.log_softmax(zt, -1).topk(k, dim=-1)
    return TopKSignal(idx, lp, renormalize)


def test_topk_with_full_vocabulary_equals_forward_kl():
    zs, zt, mask = _logits(50), _logits(51), _mask(52)
    full = token_divergence(zs, zt, mask, reduction="none")
    got = token_divergence(zs, _topk(zt, V), mask, reduction="none")
    _close(got, full, 1e-8)


@pytest.mark.parametrize("kind", DIVERGENCES)
def test_topk_tail_bins_match_reference(kind):
    zs, zt, mask = _logits(53), _logits(54), _mask(55)
    sig = _topk(zt, 3)
    got = token_divergence(zs, sig, mask, kind=kind, reduction="none")
    want = _reduce(ref_topk_positions(zs, sig.indices, sig.logprobs, kind, renormalize=False),
                   mask, "none")
    _close(got, want)
    # the tail bin matters: dropping it (renormalizing) gives another value
    other = token_divergence(zs, sig._replace(renormalize=True), mask, kind=kind,
                             reduction="none")
    assert (other - got).abs().max() > 1e-3


@pytest.mark.parametrize("kind", ["forward_kl", "reverse_kl"])
def test_topk_tiny_tail_is_kept(kind):
    """A tail of ~1e-8 (top V-1 tokens) is a real bin, not floored away."""
    zs, zt = _logits(64), _logits(65)
    zt[..., 0] = zt.amax(-1) - 20.0  # token 0 holds ~2e-9..1e-8 of the teacher's mass
    zs[..., 0] = zs.amax(-1) - 20.0
    sig = _topk(zt, V - 1)
    assert (sig.indices != 0).all()
    got = token_divergence(zs, sig, kind=kind, reduction="none")
    want = _reduce(ref_topk_positions(zs, sig.indices, sig.logprobs, kind, renormalize=False),
                   torch.ones(B, L, dtype=torch.bool), "none")
    _close(got, want, 1e-9)
    _close(got, token_divergence(zs, zt, kind=kind, reduction="none"), 1e-6)


@pytest.mark.parametrize("kind", DIVERGENCES)
def test_topk_renormalized_with_temperature_matches_reference(kind):
    zs, zt, mask = _logits(56), _logits(57), _mask(58)
    sig = _topk(zt, 4, renormalize=True)
    got = token_divergence(zs, sig, mask, kind=kind, temperature=2.0, reduction="none")
    want = _reduce(ref_topk_positions(zs, sig.indices, sig.logprobs, kind, renormalize=True,
                                      t=2.0), mask, "none")
    _close(got, want)


def test_topk_tail_needs_temperature_one():
    zs, zt = _logits(59), _logits(60)
    with pytest.raises(ParameterError, match=r"tokens\.temperature must be 1 .*renormalize=True"):
        token_divergence(zs, _topk(zt, 3), temperature=2.0)


# ---------------------------------------------------------------------------------------------
# 4. chunking, head variant, gradient accumulation
# ---------------------------------------------------------------------------------------------

def _grads(fn, *leaves):
    leaves = [x.detach().clone().requires_grad_() for x in leaves]
    out = fn(*leaves)
    out.backward()
    return out.detach(), [x.grad for x in leaves]


def _teacher_case(zt: torch.Tensor, case: str):
    if case == "logits":
        return zt, 2.0
    if case == "topk_tail":  # the tail bin needs temperature 1
        return _topk(zt, 3), 1.0
    return _topk(zt, 4, renormalize=True), 2.0


@pytest.mark.parametrize("case", ["logits", "topk_tail", "topk_renormalized"])
@pytest.mark.parametrize("kind", DIVERGENCES)
def test_chunked_equals_unchunked(kind, case, monkeypatch):
    zs, mask = _logits(61), _mask(63)
    teacher, t = _teacher_case(_logits(62), case)
    kw = {"kind": kind, "temperature": t, "beta": 0.3, "alpha": 0.2}
    v1, (g1,) = _grads(lambda s: token_divergence(s, teacher, mask, **kw), zs)
    calls = []
    real = tokens.checkpoint

    def counting(*a, **k):
        calls.append(k.get("use_reentrant"))
        return real(*a, **k)

    monkeypatch.setattr(tokens, "checkpoint", counting)
    v2, (g2,) = _grads(lambda s: token_divergence(s, teacher, mask, chunk_size=2, **kw), zs)
    assert calls == [False, False, False]  # ceil(5 / 2) checkpointed chunks, uneven last one
    _close(v2, v1, 1e-12)
    _close(g2, g1, 1e-12)
    per1 = token_divergence(zs, teacher, mask, reduction="none", **kw)
    per2 = token_divergence(zs, teacher, mask, reduction="none", chunk_size=2, **kw)
    _close(per2, per1, 1e-12)


def _head(seed: int, d: int, v: int = V) -> torch.nn.Linear:
    torch.manual_seed(seed)
    return torch.nn.Linear(d, v).double()


@pytest.mark.parametrize("case", ["logits", "hidden_linear", "hidden_weight", "topk"])
@pytest.mark.parametrize("kind", ["forward_kl", "jsd", "skew_reverse_kl"])
def test_chunked_head_equals_logits_path(kind, case):
    d, dt = 6, 5
    g = torch.Generator().manual_seed(70)
    h = torch.randn(B, L, d, generator=g, dtype=torch.float64)
    th = torch.randn(B, L, dt, generator=g, dtype=torch.float64)
    head, thead = _head(71, d), _head(72, dt)
    mask = _mask(73)
    zt = thead(th).detach()
    teacher, t_ref = {
        "logits": (zt, zt),
        "hidden_linear": ((th, thead), zt),
        "hidden_weight": ((th, thead.weight), th @ thead.weight.detach().T),  # no bias
        "topk": (_topk(zt, 3, renormalize=True), _topk(zt, 3, renormalize=True)),
    }[case]
    kw = {"kind": kind, "temperature": 2.0}
    v1, g1 = _grads(lambda hh, w, b: token_divergence(hh @ w.T + b, t_ref, mask, **kw),
                    h, head.weight, head.bias)
    hh = h.clone().requires_grad_()
    v2 = chunked_head_divergence(hh, head, teacher, mask, chunk_size=2, **kw)
    v2.backward()
    _close(v2.detach(), v1, 1e-12)
    _close(hh.grad, g1[0], 1e-12)
    _close(head.weight.grad, g1[1], 1e-12)
    _close(head.bias.grad, g1[2], 1e-12)
    assert thead.weight.grad is None  # the teacher head gets no gradient


def test_chunked_head_with_weight_tensor():
    d = 6
    g = torch.Generator().manual_seed(74)
    h = torch.randn(B, L, d, generator=g, dtype=torch.float64)
    w = torch.randn(V, d, generator=g, dtype=torch.float64)
    zt = _logits(75)
    v1, g1 = _grads(lambda hh, ww: token_divergence(hh @ ww.T, zt, kind="tvd"), h, w)
    v2, g2 = _grads(lambda hh, ww: chunked_head_divergence(hh, ww, zt, kind="tvd",
                                                           chunk_size=3), h, w)
    _close(v2, v1, 1e-12)
    for a, b in zip(g2, g1):
        _close(a, b, 1e-12)


def test_gradient_accumulation_with_token_count():
    micro = [(_logits(80 + i), _logits(90 + i), _mask(100 + i)) for i in range(3)]
    micro[1][2][:] = False  # one micro-batch without target tokens still works
    micro[1][2][0, 1] = True
    masks = [m for _, _, m in micro]
    n = token_count(masks)
    assert n == sum(int(m.sum()) for m in masks)
    w = torch.zeros(V, dtype=torch.float64, requires_grad=True)  # a shared 'parameter'
    for zs, zt, m in micro:
        token_divergence(zs + w, zt, m, kind="jsd", normalizer=n).backward()
    acc = w.grad.clone()
    w.grad = None
    zs = torch.cat([a for a, _, _ in micro])
    zt = torch.cat([b for _, b, _ in micro])
    token_divergence(zs + w, zt, torch.cat(masks), kind="jsd").backward()
    _close(acc, w.grad)
    # plain per-micro-batch means weight the tokens differently: the check above can fail
    w.grad = None
    for a, b, m in micro:
        (token_divergence(a + w, b, m, kind="jsd") / 3).backward()
    assert (w.grad - acc).abs().max() > 1e-4


def test_empty_micro_batch_with_normalizer_contributes_zero():
    zs = _logits(110).requires_grad_()
    out = token_divergence(zs, _logits(111), torch.zeros(B, L, dtype=torch.bool), normalizer=5.0)
    out.backward()
    assert out.item() == 0.0 and zs.grad.abs().max() == 0.0


def test_token_count_reduces_across_ranks():
    class TwoRanks:
        device = torch.device("cpu")

        def __init__(self):
            self.calls = []

        def reduce(self, tensor, reduction="mean"):
            self.calls.append(reduction)
            return tensor * 2  # two ranks with the same count

    acc = TwoRanks()
    masks = [torch.tensor([[1, 0, 1]]), torch.tensor([[True, True, False]])]
    assert token_count(masks) == 4.0
    assert token_count(masks, accelerator=acc) == 8.0
    assert acc.calls == ["sum"]
    assert token_count([]) == 0.0


# ---------------------------------------------------------------------------------------------
# 5. validation
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, match", [
    ({"temperature": -1.0}, r"tokens\.temperature must be > 0, got -1"),
    ({"temperature": 0}, r"tokens\.temperature must be > 0, got 0"),
    ({"beta": 1.5}, r"tokens\.beta must be in \[0, 1\], got 1\.5"),
    ({"beta": -0.1}, r"tokens\.beta must be in \[0, 1\]"),
    ({"alpha": 1.0}, r"tokens\.alpha must be in \[0, 1\), got 1\.0"),
    ({"alpha": -0.5}, r"tokens\.alpha must be in \[0, 1\)"),
    ({"kind": "kl"}, r"tokens\.kind must be one of forward_kl, reverse_kl, jsd, .*got 'kl'"),
    ({"chunk_size": 0}, r"tokens\.chunk_size must be >= 1, got 0"),
    ({"chunk_size": 2.5}, r"tokens\.chunk_size must be an integer"),
    ({"reduction": "avg"}, r"tokens\.reduction must be one of none, sum, mean, got 'avg'"),
    ({"normalizer": 0.0}, r"tokens\.normalizer must be > 0"),
])
def test_bad_parameters(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        token_divergence(_logits(120), _logits(121), **kwargs)


def test_bad_head_chunk_size():
    with pytest.raises(ParameterError, match=r"tokens\.chunk_size must be >= 1"):
        chunked_head_divergence(torch.zeros(B, L, 3), torch.zeros(V, 3), _logits(122).float(),
                                chunk_size=-2)


def test_mask_selecting_nothing():
    with pytest.raises(MentorError, match=r"mask selects no target token \(all 2×5 positions"):
        token_divergence(_logits(123), _logits(124), torch.zeros(B, L))


def test_shape_mismatches():
    zs = _logits(125)
    with pytest.raises(MentorError, match=r"teacher vocabulary has 9 entries but the student's "
                                          r"has 7; align them first with mentor\.lm\.vocab"):
        token_divergence(zs, _logits(126, v=9))
    with pytest.raises(MentorError, match=r"batch×length 2×4 but the student's is 2×5"):
        token_divergence(zs, _logits(127, n=4))
    with pytest.raises(MentorError, match=r"mask must be a \(B, L\) = \(2, 5\)"):
        token_divergence(zs, _logits(128), torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(MentorError, match=r"TopKSignal indices range over \[7, 7\] .* expected ids in \[0, 6\]"):
        token_divergence(zs, TopKSignal(torch.full((B, L, 2), 7), torch.zeros(B, L, 2)))
    with pytest.raises(MentorError, match=r"student logits must be a \(B, L, V\) tensor"):
        token_divergence(zs[0], _logits(129)[0])
    with pytest.raises(MentorError, match=r"teacher head.*expected the same D"):
        chunked_head_divergence(torch.zeros(B, L, 3), torch.zeros(V, 3), (torch.zeros(B, L, 4),
                                                                          torch.zeros(V, 3)))
    with pytest.raises(MentorError, match=r"teacher vocabulary has 8 entries"):
        chunked_head_divergence(torch.zeros(B, L, 3), torch.zeros(V, 3), (torch.zeros(B, L, 3),
                                                                          torch.zeros(8, 3)))


# ---------------------------------------------------------------------------------------------
# 6. masked vocabulary entries (-inf logits)
# ---------------------------------------------------------------------------------------------

NEG = float("-inf")


def test_shared_neg_inf_entries_by_hand():
    """Student (0, 1, -inf), teacher (1, 0, -inf): the third entry has no mass on either side,
    so every divergence is its value over the two finite entries. With a = e/(1+e) = sigma(1),
    b = 1/(1+e): p_t = (a, b), p_s = (b, a), log(a/b) = 1.
    forward KL = a*1 + b*(-1) = a - b = (e-1)/(e+1) = tanh(1/2) = 0.4621171573;
    reverse KL = the same by symmetry; TVD = (|a-b| + |b-a|)/2 = tanh(1/2).
    JSD(0.5): M = (1/2, 1/2), KL(p_t||M) = KL(p_s||M) = ln 2 - H, H = -a ln a - b ln b =
    ln(1+e) - a = 0.5822031089; TRL's value is ln 2 - H = 0.1109440717, mentor's (divided by
    beta(1-beta) = 1/4) 4 (ln 2 - H) = 0.4437762867."""
    zs = torch.tensor([[[0.0, 1.0, NEG]]], dtype=torch.float64)
    zt = torch.tensor([[[1.0, 0.0, NEG]]], dtype=torch.float64)
    e = math.e
    fkl = (e - 1) / (e + 1)
    jsd = 4 * (math.log(2) - (math.log(1 + e) - e / (1 + e)))
    assert math.isclose(fkl, 0.4621171573, abs_tol=1e-10)
    assert math.isclose(jsd, 0.4437762867, abs_tol=1e-10)
    for kind, want in (("forward_kl", fkl), ("reverse_kl", fkl), ("tvd", fkl)):
        assert token_divergence(zs, zt, kind=kind).item() == pytest.approx(want, abs=1e-12)
    assert token_divergence(zs, zt, kind="jsd", beta=0.5).item() == pytest.approx(jsd, abs=1e-12)
    # every kind, also the skews and the JSD limits, equals its value on the 2-entry vocabulary
    for kind, beta in [(k, 0.5) for k in DIVERGENCES] + [("jsd", 0.0), ("jsd", 1.0),
                                                          ("jsd", 0.1)]:
        got = token_divergence(zs, zt, kind=kind, beta=beta)
        assert got.item() == pytest.approx(
            token_divergence(zs[..., :2], zt[..., :2], kind=kind, beta=beta).item(), abs=1e-12)


def _shared_inf(seed: int, v: int = V):
    """Logits that are -inf on both sides at the same random entries (at least two finite
    entries per position; position (0, 0) keeps exactly two)."""
    zs, zt = _logits(seed, v=v), _logits(seed + 1, v=v)
    g = torch.Generator().manual_seed(seed + 2)
    dead = torch.rand(B, L, v, generator=g) < 0.4
    dead[..., :2] = False
    dead[0, 0, 2:] = True  # one position with only two live entries
    return zs.masked_fill(dead, NEG), zt.masked_fill(dead, NEG), dead


@pytest.mark.parametrize("kind", DIVERGENCES)
def test_shared_neg_inf_matches_naive_reference_with_finite_gradients(kind):
    zs, zt, dead = _shared_inf(200)
    mask = _mask(203)
    kw = {"beta": 0.3, "alpha": 0.2, "temperature": 2.0}
    for reduction in ("none", "mean"):
        got = token_divergence(zs, zt, mask, kind=kind, reduction=reduction, **kw)
        want = _reduce(ref_positions(zs, zt, kind, t=2.0, beta=0.3, alpha=0.2), mask,
                       reduction)
        _close(got, want)
    for extra in ({}, {"chunk_size": 2}, {"t2": True}):
        loss, (grad,) = _grads(lambda s: token_divergence(s, zt, mask, kind=kind, **kw,
                                                          **extra), zs)
        assert torch.isfinite(loss)
        assert torch.isfinite(grad).all()
        assert (grad[dead] == 0).all()
    # the JSD limits and beta near them
    if kind == "jsd":
        for beta in (0.0, 1e-6, 1.0 - 1e-6, 1.0):
            got = token_divergence(zs, zt, mask, kind=kind, beta=beta, reduction="none")
            want = _reduce(ref_positions(zs, zt, kind, beta=beta), mask, "none")
            _close(got, want, 1e-5)


@pytest.mark.parametrize("kind", DIVERGENCES)
def test_shared_neg_inf_in_float32_and_low_precision(kind):
    zs, zt, _ = _shared_inf(210)
    want = token_divergence(zs, zt, kind=kind)
    for dtype in (torch.float32, torch.bfloat16):
        s = zs.to(dtype).requires_grad_()
        got = token_divergence(s, zt.to(dtype), kind=kind)
        got.backward()
        assert torch.isfinite(got) and torch.isfinite(s.grad.float()).all()
        assert abs(got.item() - want.item()) < (1e-5 if dtype == torch.float32 else 0.1)


@pytest.mark.parametrize("kind", DIVERGENCES)
def test_shared_neg_inf_top_k_and_head_paths(kind):
    zs, zt, dead = _shared_inf(220)
    full = token_divergence(zs, zt, kind=kind, reduction="none")
    # top-k = V: the teacher's stored log-probabilities include the -inf entries
    sig = _topk(zt, V)
    assert torch.isneginf(sig.logprobs).any()
    got, (grad,) = _grads(lambda s: token_divergence(s, sig, kind=kind, chunk_size=2), zs)
    _close(got, full.mean(), 1e-8)
    assert torch.isfinite(grad).all()
    # renormalized top-k with temperature: the reference over the k stored tokens
    sig = _topk(zt, 4, renormalize=True)
    got = token_divergence(zs, sig, kind=kind, temperature=2.0, reduction="none")
    want = _reduce(ref_topk_positions(zs, sig.indices, sig.logprobs, kind, renormalize=True,
                                      t=2.0), torch.ones(B, L, dtype=torch.bool), "none")
    _close(got, want)
    _, (grad,) = _grads(lambda s: token_divergence(s, sig, kind=kind, temperature=2.0), zs)
    assert torch.isfinite(grad).all()
    # head path: a -inf bias masks vocabulary entries of both heads
    d = 6
    g = torch.Generator().manual_seed(221)
    h = torch.randn(B, L, d, generator=g, dtype=torch.float64)
    th = torch.randn(B, L, d, generator=g, dtype=torch.float64)
    head, thead = _head(222, d), _head(223, d)
    with torch.no_grad():
        head.bias[[2, 5]] = NEG
        thead.bias[[2, 5]] = NEG
    ref = token_divergence(head(h).detach(), thead(th).detach(), kind=kind)
    got = chunked_head_divergence(h.requires_grad_(), head, (th, thead), chunk_size=2,
                                  kind=kind)
    got.backward()
    _close(got.detach(), ref, 1e-12)
    assert torch.isfinite(h.grad).all() and torch.isfinite(head.weight.grad).all()
    assert torch.isfinite(head.bias.grad).all() and (head.bias.grad[[2, 5]] == 0).all()


def test_one_sided_neg_inf_keeps_the_true_divergence():
    """Student -inf where the teacher has mass: forward KL is +inf (the teacher's mass is not
    dropped, unlike torchtune/DistiLLM); reverse KL counts 0 there. Teacher -inf where the
    student has mass: the other way round. Mixtures (JSD, skews) and TVD stay finite and equal
    the float64 reference. Gradients stay finite, and a masked-out position with an infinite
    value does not poison the loss or its gradient."""
    zs, zt = _logits(230), _logits(231)
    zs[0, 1, 3] = NEG   # student only
    zt[1, 2, 4] = NEG   # teacher only
    per = {k: token_divergence(zs, zt, kind=k, reduction="none") for k in DIVERGENCES}
    assert math.isinf(per["forward_kl"][0, 1]) and per["forward_kl"][0, 1] > 0
    assert math.isinf(per["reverse_kl"][1, 2]) and per["reverse_kl"][1, 2] > 0
    finite = torch.ones(B, L, dtype=torch.bool)
    finite[0, 1] = finite[1, 2] = False
    for kind in DIVERGENCES:
        ref = ref_positions(zs, zt, kind, beta=0.5, alpha=0.1) if kind not in (
            "forward_kl", "reverse_kl") else None
        if ref is not None:
            _close(per[kind], torch.tensor(ref, dtype=torch.float64))
        else:
            ok = ref_positions(zs.masked_fill(torch.isinf(zs), -1.0),
                               zt.masked_fill(torch.isinf(zt), -1.0), kind)
            _close(per[kind][finite], torch.tensor(ok, dtype=torch.float64)[finite])
    # forward KL with teacher-only -inf is the naive sum over the teacher's support
    pt = _probs(zt[1, 2].tolist(), 1.0)
    ps = _probs(zs[1, 2].tolist(), 1.0)
    assert per["forward_kl"][1, 2].item() == pytest.approx(_kl(pt, ps), abs=1e-12)
    pt = _probs(zt[0, 1].tolist(), 1.0)
    ps = _probs(zs[0, 1].tolist(), 1.0)
    assert per["reverse_kl"][0, 1].item() == pytest.approx(_kl(ps, pt), abs=1e-12)
    for kind in DIVERGENCES:
        loss, (grad,) = _grads(lambda s: token_divergence(s, zt, finite, kind=kind), zs)
        assert torch.isfinite(loss) and torch.isfinite(grad).all()
        loss, (grad,) = _grads(lambda s: token_divergence(s, zt, kind=kind), zs)
        assert torch.isfinite(grad).all()
