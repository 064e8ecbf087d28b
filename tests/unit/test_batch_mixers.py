"""Batch mixers (``mentor.mix.batch``): the engine's ``mix(x, batch, targets, g, input_shape)``
hook for every registered mixer.

1. MixUp / CutMix (:class:`MixBatch`) against a naive float64 loop: which rows are mixed,
   the mixed inputs, and the mixed targets (probabilities at the objectives' temperature,
   weighted by the refiners' mask and weights).
2. The loss math on the mixed target, with ``lam`` fixed: cross-entropy with the soft target
   is ``lam·CE(ŷ_i) + (1 − lam)·CE(ŷ_j)``; the engine's KD and prob_mse objectives on the
   mixed batch have the gradient of the mixture of the two losses.
3. The frequency amplitude switch (:class:`AmplitudeSwitchBatch`) against a loop over its
   pairing and the numpy switch reference; targets untouched.
4. Copy-paste carries its soft target at the objectives' temperature; mixers in order.
5. Determinism: every registered mixer's batch form is a pure function of its generator.
"""

from __future__ import annotations

import math

import pytest
import torch

from mentor.contracts import Batch, Targets
from mentor.losses.objective import Objective
from mentor.errors import MentorError
from mentor.mix import CutMix, FrequencyAmplitudeSwitch, MixUp, beta_draw, box_mask
from mentor.mix import mixers as mixers_module
from mentor.mix.batch import (AmplitudeSwitchBatch, BatchMixers, CopyPasteBatch, MixBatch,
                              batch_mixer)
from mentor.registry import MIXERS
from naive import log_softmax as _log_softmax
from test_mixers import _naive_switch

SHAPE = (4, 4)
D, C, B = 16, 5, 10


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _batch(kind: str, seed: int = 0, dtype=torch.float64) -> Batch:
    """10 rows: 3 labeled + 7 unlabeled (``ssl``), or every label visible (``distill``)."""
    g = _gen(seed)
    x = torch.randn(B, D, generator=g, dtype=dtype)
    y = torch.randint(C, (B,), generator=g)
    if kind == "distill":
        return Batch(x, y, torch.arange(B) + 100, None, 1, 7, None)
    labeled = torch.tensor([True, False, True, False, False, True, False, False, False, False])
    y = torch.where(labeled, y, torch.full_like(y, -1))
    weak = torch.where(labeled, torch.full_like(y, -1), torch.arange(B) % C)
    return Batch(x, y, torch.arange(B) + 100, labeled, 1, 7, weak)


def _targets(kind: str, seed: int = 1, dtype=torch.float64) -> Targets:
    g = _gen(seed)
    z = 3 * torch.randn(B, C, generator=g, dtype=dtype)
    labels = z.argmax(-1)
    extra = {"feat:f": torch.zeros(B, 2)}
    if kind == "plain":
        return Targets(z, labels, extra=extra)
    mask = torch.tensor([True, True, False, True, False, True, True, False, True, True])
    weight = torch.rand(B, generator=g, dtype=dtype) + 0.1
    if kind == "masked":
        return Targets(z, labels, mask, None, extra)
    return Targets(z, labels, mask, weight, extra)


def _draws(name: str, n: int, seed: int):
    """The permutation and per-row ``lam`` the mixer draws from generator ``seed`` (its
    order: the permutation, then MixUp's Beta draws or CutMix's box uniforms), and CutMix's
    box (True: from the partner)."""
    g = _gen(seed)
    perm = torch.randperm(n, generator=g)
    if name == "mixup":
        return perm, beta_draw(0.75, n, g), None
    box, area = box_mask(torch.rand(n, 3, generator=g), SHAPE, 0.0, 1.0)
    return perm, 1 - area.double(), box


def _softmax(row: list[float], t: float) -> list[float]:
    return [math.exp(v) for v in _log_softmax(row, t)]


@pytest.mark.parametrize("name", ["mixup", "cutmix"])
@pytest.mark.parametrize("kind", ["ssl", "distill"])
@pytest.mark.parametrize("tkind", ["plain", "masked", "weighted"])
@pytest.mark.parametrize("temperature", [1.0, 3.0])
def test_mix_batch_matches_naive_float64_reference(name, kind, tkind, temperature):
    batch, targets = _batch(kind), _targets(tkind)
    mixer = MixUp(0.75) if name == "mixup" else CutMix()
    x, nb, t = MixBatch(mixer, temperature).mix(batch.x, batch, targets, _gen(5), SHAPE)

    rows = list(range(B)) if kind == "distill" else [i for i in range(B)
                                                      if not bool(batch.labeled[i])]
    perm, lam, box = _draws(name, len(rows), 5)
    keep = [1.0] * B
    if targets.mask is not None:
        keep = [k * float(m) for k, m in zip(keep, targets.mask)]
    if targets.weight is not None:
        keep = [k * float(w) for k, w in zip(keep, targets.weight)]
    for r, i in enumerate(rows):
        j, li = rows[int(perm[r])], float(lam[r])
        for d in range(D):  # inputs
            if box is None:
                want = li * float(batch.x[i, d]) + (1 - li) * float(batch.x[j, d])
            else:
                want = float(batch.x[j, d] if box[r, d] else batch.x[i, d])
            assert float(x[i, d]) == pytest.approx(want, abs=1e-12)
        p_i = _softmax(targets.logits[i].tolist(), temperature)
        p_j = _softmax(targets.logits[j].tolist(), temperature)
        a, b = li * keep[i], (1 - li) * keep[j]
        q = [(a * u + b * v) / (a + b) for u, v in zip(p_i, p_j)] if a + b > 0 else None
        if q is not None:  # the target the objectives read: softmax(logits / T)
            got = _softmax(t.logits[i].tolist(), temperature)
            assert got == pytest.approx(q, abs=1e-12)
            assert int(t.labels[i]) == max(range(C), key=q.__getitem__)
        if tkind == "plain":
            assert t.weight is None and t.mask is None
        else:
            assert float(t.weight[i]) == pytest.approx(a + b, abs=1e-12)
            assert bool(t.mask[i]) == (a + b > 0)
        assert int(nb.y[i]) == -1 and not bool(nb.labeled[i])
    unmixed = [i for i in range(B) if i not in rows]
    for i in unmixed:  # labeled rows of a semi-supervised batch stay as they are
        assert torch.equal(x[i], batch.x[i]) and torch.equal(t.logits[i], targets.logits[i])
        assert int(nb.y[i]) == int(batch.y[i]) and bool(nb.labeled[i])
        if tkind != "plain":
            assert bool(t.mask[i]) == bool(targets.mask[i])
            want_w = 1.0 if targets.weight is None else float(targets.weight[i])
            assert float(t.weight[i]) == want_w
    assert torch.equal(nb.x, x) and torch.equal(nb.index, batch.index)
    assert t.extra is None  # teacher features described the unmixed rows
    if batch.weak_y is not None:
        assert all(int(nb.weak_y[i]) == -1 for i in rows)


def test_mixed_targets_are_probability_mixtures_not_logit_mixtures():
    """The carried target is lam·p_i + (1 − lam)·p_j, which a logit mixture is not."""
    batch, targets = _batch("distill"), _targets("plain")
    _, _, t = MixBatch(MixUp(0.75), 2.0).mix(batch.x, batch, targets, _gen(5), SHAPE)
    perm, lam, _ = _draws("mixup", B, 5)
    z = targets.logits
    geometric = torch.softmax((lam[:, None] * z + (1 - lam[:, None]) * z[perm]) / 2, -1)
    arithmetic = (lam[:, None] * torch.softmax(z / 2, -1)
                  + (1 - lam[:, None]) * torch.softmax(z[perm] / 2, -1))
    torch.testing.assert_close(torch.softmax(t.logits / 2, -1), arithmetic, rtol=0, atol=1e-12)
    assert (torch.softmax(t.logits / 2, -1) - geometric).abs().max() > 1e-3


# ---------------------------------------------------------------------------------------------
# 2. the loss math with lam fixed
# ---------------------------------------------------------------------------------------------

LAM = 0.3


@pytest.fixture
def fixed_lam(monkeypatch):
    monkeypatch.setattr(mixers_module, "beta_draw",
                        lambda alpha, n, g: torch.full((n,), LAM, dtype=torch.float64))


def _partners(kind: str, seed: int) -> dict[int, int]:
    batch = _batch(kind)
    rows = list(range(B)) if batch.labeled is None else [i for i in range(B)
                                                         if not bool(batch.labeled[i])]
    perm = torch.randperm(len(rows), generator=_gen(seed))
    return {i: rows[int(perm[r])] for r, i in enumerate(rows)}


def test_cross_entropy_with_the_mixed_target_is_the_mixture_of_the_two_ces(fixed_lam):
    """Hard teacher targets (one-hot): -Σ q·log p_s = lam·CE(ŷ_i) + (1 − lam)·CE(ŷ_j)."""
    batch = _batch("distill")
    hard = torch.randint(C, (B,), generator=_gen(3))
    targets = Targets(60.0 * torch.nn.functional.one_hot(hard, C).double(), hard)
    _, _, t = MixBatch(MixUp(), 1.0).mix(batch.x, batch, targets, _gen(5), SHAPE)
    s = torch.randn(B, C, generator=_gen(4), dtype=torch.float64)
    q = torch.softmax(t.logits, -1)
    ce_q = -(q * torch.log_softmax(s, -1)).sum(-1)
    ce = torch.nn.functional.cross_entropy
    for i, j in _partners("distill", 5).items():
        want = LAM * float(ce(s[i], hard[i])) + (1 - LAM) * float(ce(s[i], hard[j]))
        assert float(ce_q[i]) == pytest.approx(want, abs=1e-12)


@pytest.mark.parametrize("loss,params", [("kd", {"temperature": 3.0}), ("prob_mse", {})])
@pytest.mark.parametrize("tkind", ["plain", "weighted"])
def test_objective_on_the_mixed_batch_has_the_gradient_of_the_mixed_loss(fixed_lam, loss,
                                                                         params, tkind):
    """The engine's objective on the mixed batch against the mixture of the per-row losses
    (each part weighted by lam or 1 − lam times the refiners' mask and weight): same
    gradient; the values differ by a constant: the entropy gap for KD, the squares' gap for
    prob_mse (both >= 0 by convexity)."""
    temperature = params.get("temperature", 1.0)
    batch, targets = _batch("ssl"), _targets(tkind)
    _, nb, t = MixBatch(MixUp(), temperature).mix(batch.x, batch, targets, _gen(5), SHAPE)
    objective = Objective(loss, 1.0, params, rows="unlabeled", normalize="rows")
    s = torch.randn(B, C, generator=_gen(4), dtype=torch.float64, requires_grad=True)
    got = objective(s, t, nb)
    (g_got,) = torch.autograd.grad(got, s)

    keep = torch.ones(B, dtype=torch.float64)
    if targets.mask is not None:
        keep = keep * targets.mask.double() * targets.weight
    fn = objective.spec.fn
    want = s.sum() * 0
    gap = 0.0
    partners = _partners("ssl", 5)
    for i, j in partners.items():
        a, b = LAM * keep[i], (1 - LAM) * keep[j]
        li = fn(s[i:i + 1], targets.logits[i:i + 1], None, **params)
        lj = fn(s[i:i + 1], targets.logits[j:j + 1], None, **params)
        want = want + a * li.sum() + b * lj.sum()
        if a + b == 0:  # both parts rejected: the row contributes nothing
            continue
        p_i, p_j = (torch.softmax(targets.logits[k] / temperature, -1) for k in (i, j))
        q = (a * p_i + b * p_j) / (a + b)
        if loss == "kd":  # the entropy gap T²·((a + b)·H(q) − a·H(p_i) − b·H(p_j))
            def h(p):
                return float(-(p * p.log()).sum())
            gap += temperature**2 * float((a + b) * h(q) - a * h(p_i) - b * h(p_j))
        else:  # the squares' gap (1/C)·Σ (a·p_i² + b·p_j² − (a + b)·q²)
            gap += float((a * p_i**2 + b * p_j**2 - (a + b) * q**2).mean())
    want = want / len(partners)  # normalize: rows -- the mean over the unlabeled rows
    (g_want,) = torch.autograd.grad(want, s)
    torch.testing.assert_close(g_got, g_want, rtol=0, atol=1e-12)
    assert float(g_got.abs().sum()) > 0
    assert gap > 1e-6  # the values are a constant apart, not equal
    assert got.item() + gap / len(partners) == pytest.approx(want.item(), abs=1e-12)


def test_a_distillation_batch_refuses_objectives_on_labeled_rows():
    batch, targets = _batch("distill"), _targets("plain")
    with pytest.raises(MentorError, match="rows: labeled would read none"):
        MixBatch(CutMix(), 1.0, ["ce"]).mix(batch.x, batch, targets, _gen(0), SHAPE)
    ssl = _batch("ssl")  # labeled rows stay: fine
    MixBatch(CutMix(), 1.0, ["ce"]).mix(ssl.x, ssl, targets, _gen(0), SHAPE)


# ---------------------------------------------------------------------------------------------
# 3. frequency amplitude switch
# ---------------------------------------------------------------------------------------------

def _naive_partners(batch: Batch, seed: int) -> list[int]:
    g = _gen(seed)
    if batch.labeled is None:
        return [int(v) for v in torch.randperm(B, generator=g)]
    lab = [i for i in range(B) if bool(batch.labeled[i])]
    unl = [i for i in range(B) if not bool(batch.labeled[i])]
    small, large = (lab, unl) if len(lab) <= len(unl) else (unl, lab)
    order = [large[int(k)] for k in torch.randperm(len(large), generator=g)]
    partner = [-1] * B
    for n, row in enumerate(order):
        partner[row] = small[n % len(small)]
    for n, row in enumerate(small):
        partner[row] = order[n]
    return partner


@pytest.mark.parametrize("kind", ["ssl", "distill"])
def test_amplitude_switch_batch_matches_loop_and_numpy_reference(kind):
    batch, targets = _batch(kind), _targets("weighted")
    size = 0.5
    x, nb, t = AmplitudeSwitchBatch(FrequencyAmplitudeSwitch(size)).mix(
        batch.x, batch, targets, _gen(9), SHAPE)
    partner = _naive_partners(batch, 9)
    assert all(p >= 0 for p in partner)
    if kind == "ssl":  # Switch: labeled rows take unlabeled amplitude and the reverse
        for i, p in enumerate(partner):
            assert bool(batch.labeled[i]) != bool(batch.labeled[p])
        lab = [i for i in range(B) if bool(batch.labeled[i])]
        assert all(partner[partner[i]] == i for i in lab)  # swapped pairs
    for i, p in enumerate(partner):
        ref, _ = _naive_switch(batch.x[i:i + 1], batch.x[p:p + 1], SHAPE, size)
        torch.testing.assert_close(x[i:i + 1], ref, rtol=1e-9, atol=1e-9)
    assert t is targets  # a style perturbation: the targets are untouched
    assert torch.equal(nb.x, x) and nb.labeled is batch.labeled and nb.y is batch.y


# ---------------------------------------------------------------------------------------------
# 4. copy-paste at a temperature; mixers in order
# ---------------------------------------------------------------------------------------------

def test_copy_paste_carries_its_target_at_the_objectives_temperature():
    batch, targets = _batch("ssl"), _targets("masked")
    _, _, t1 = CopyPasteBatch(0.5, 0.5).mix(batch.x, batch, targets, _gen(2), SHAPE)
    _, _, t4 = CopyPasteBatch(0.5, 0.5, temperature=4.0).mix(batch.x, batch, targets,
                                                             _gen(2), SHAPE)
    n = int(batch.labeled.sum())
    torch.testing.assert_close(torch.softmax(t4.logits[n:] / 4, -1),
                               torch.softmax(t1.logits[n:], -1), rtol=0, atol=1e-12)
    assert torch.equal(t4.logits[:n], t1.logits[:n]) and torch.equal(t4.weight, t1.weight)


def test_mixers_in_order_are_each_applied_to_the_previous_batch():
    batch, targets = _batch("ssl"), _targets("weighted")
    first, second = MixBatch(MixUp(), 2.0), AmplitudeSwitchBatch(FrequencyAmplitudeSwitch(0.5))
    got = BatchMixers([first, second]).mix(batch.x, batch, targets, _gen(3), SHAPE)
    g = _gen(3)
    x, nb, t = first.mix(batch.x, batch, targets, g, SHAPE)
    want = second.mix(x, nb, t, g, SHAPE)
    assert torch.equal(got[0], want[0]) and torch.equal(got[2].logits, want[2].logits)
    assert torch.equal(got[2].weight, want[2].weight)


# ---------------------------------------------------------------------------------------------
# 5. determinism, every registered mixer
# ---------------------------------------------------------------------------------------------

def _flat(out) -> list[torch.Tensor]:
    x, nb, t = out
    return [v for v in (x, nb.y, nb.labeled, nb.index, t.logits, t.labels, t.mask, t.weight)
            if v is not None]


@pytest.mark.parametrize("name", MIXERS.names())
def test_every_batch_mixer_is_a_pure_function_of_its_generator(name):
    mixer = batch_mixer(MIXERS.get(name)(), temperature=2.0)
    batch, targets = _batch("ssl", dtype=torch.float32), _targets("masked", dtype=torch.float32)
    state = torch.get_rng_state()
    a = mixer.mix(batch.x, batch, targets, _gen(7), SHAPE)
    b = mixer.mix(batch.x, batch, targets, _gen(7), SHAPE)
    c = mixer.mix(batch.x, batch, targets, _gen(8), SHAPE)
    assert torch.equal(torch.get_rng_state(), state)  # the global RNG is not used
    assert all(torch.equal(u, v) for u, v in zip(_flat(a), _flat(b)))
    assert not torch.equal(a[0], c[0])
    assert a[0].dtype == batch.x.dtype and a[0].shape[1] == D
    assert all(bool(torch.isfinite(v.float()).all()) for v in _flat(a))
