"""Easy-to-hard admission (S²Teacher, METHODS.md §20) and a learned pseudo-label corrector
(Mind the Gap §10, Stable Mean Teacher §17): their mechanisms on simulated teachers."""

import torch

from mentor.contracts import Batch, Targets
from mentor.targets import CurriculumAdmission, LearnedCorrector


def _batch(n, epoch=0, labeled=None, y=None, index=None):
    labeled = torch.zeros(n, dtype=torch.bool) if labeled is None else labeled
    y = torch.full((n,), -1) if y is None else y
    index = torch.arange(n) if index is None else index
    return Batch(torch.zeros(n, 2), y, index, labeled, epoch=epoch)


def _simulated_teacher(n, g, c=5):
    """Correct rows are confident (low entropy), wrong rows diffuse, with overlap."""
    truth = torch.randint(c, (n,), generator=g)
    right = torch.rand(n, generator=g) < 0.7
    pred = torch.where(right, truth, (truth + 1) % c)
    sharp = torch.where(right, 2.0 + 3 * torch.rand(n, generator=g),
                        0.5 + 2 * torch.rand(n, generator=g))
    logits = torch.randn(n, c, generator=g) * 0.3
    logits[torch.arange(n), pred] += sharp
    return logits, truth


def test_curriculum_admits_easy_rows_first_and_more_rows_later():
    g = torch.Generator().manual_seed(0)
    cur = CurriculumAdmission(k_start=1.0, k_end=-1.0, ramp_epochs=10, freeze_after=0)
    cur.bind(torch.zeros(400, dtype=torch.bool), torch.zeros(400, dtype=torch.long), 5)
    stats = {}
    for epoch in (0, 10):
        logits, truth = _simulated_teacher(400, g)
        out = cur(Targets(logits, logits.argmax(-1)), _batch(400, epoch))
        kept = out.mask
        stats[epoch] = (float(kept.double().mean()),
                        float((out.labels[kept] == truth[kept]).double().mean()))
    (cov0, prec0), (cov1, prec1) = stats[0], stats[10]
    assert cov0 < 0.3 < cov1  # easy rows first, most rows at the end of the ramp
    assert prec0 > prec1 and prec0 > 0.95


def test_curriculum_freezes_labels_that_stay_stable():
    cur = CurriculumAdmission(k_start=0.0, k_end=0.0, ramp_epochs=1, freeze_after=2, ema=0.5)
    cur.bind(torch.zeros(4, dtype=torch.bool), torch.zeros(4, dtype=torch.long), 3)
    sure = torch.tensor([[6.0, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0]])
    for _ in range(2):  # row 0 admitted twice with class 0 -> frozen
        out = cur(Targets(sure, sure.argmax(-1)), _batch(4))
        assert bool(out.mask[0]) and not bool(out.mask[1])
    assert int(cur.frozen[0]) == 0
    flipped = torch.tensor([[0, 0.2, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0]])  # now unsure
    out = cur(Targets(flipped, torch.tensor([1, 0, 0, 0])), _batch(4))
    assert bool(out.mask[0]) and int(out.labels[0]) == 0


def _confused(n, g, c=4):
    """A teacher that calls class 0 'class 1' (p 0.6 vs 0.3) but is right on the others."""
    truth = torch.randint(c, (n,), generator=g)
    p = torch.full((n, c), 0.05)
    p[torch.arange(n), truth] = 0.85
    zero = truth == 0
    p[zero] = torch.tensor([0.3, 0.6, 0.05, 0.05])
    p = p + 0.02 * torch.rand(n, c, generator=g)
    return (p / p.sum(-1, keepdim=True)).log(), truth


def test_learned_corrector_repairs_a_systematic_confusion():
    g = torch.Generator().manual_seed(0)
    cor = LearnedCorrector(buffer=500, refit_every=5, min_pairs=50, iters=300)
    n = 200
    labeled = torch.arange(n) < 40
    cor.bind(labeled, torch.zeros(n, dtype=torch.long), 4)
    logits, truth = _confused(n, g)
    raw = float((logits.argmax(-1)[~labeled] == truth[~labeled]).double().mean())
    out = cor(Targets(logits, logits.argmax(-1)), _batch(n, labeled=labeled,
                                                          y=torch.where(labeled, truth, -1)))
    torch.testing.assert_close(out.logits[~labeled].softmax(-1),  # identity before a fit
                               logits[~labeled].softmax(-1), rtol=0, atol=1e-6)
    for _ in range(5):  # labeled pairs accumulate; the fit runs on the 5th call
        logits, truth = _confused(n, g)
        out = cor(Targets(logits, torch.where(labeled, truth, logits.argmax(-1))),
                  _batch(n, labeled=labeled, y=torch.where(labeled, truth, -1)))
    fixed = float((out.labels[~labeled] == truth[~labeled]).double().mean())
    assert raw < 0.85 and fixed > 0.97, (raw, fixed)
    assert torch.equal(out.labels[labeled], truth[labeled])  # labeled rows untouched


def test_state_round_trips_for_a_resumed_run():
    g = torch.Generator().manual_seed(1)
    n = 120
    labeled = torch.arange(n) < 30
    for make in (lambda: CurriculumAdmission(ramp_epochs=3, freeze_after=2),
                 lambda: LearnedCorrector(refit_every=2, min_pairs=10, iters=20)):
        a = make()
        a.bind(labeled, torch.zeros(n, dtype=torch.long), 4)
        batches = []
        for step in range(4):
            logits, truth = _confused(n, g)
            batches.append((Targets(logits, torch.where(labeled, truth, logits.argmax(-1))),
                            _batch(n, epoch=step, labeled=labeled,
                                   y=torch.where(labeled, truth, -1))))
        for t, b in batches[:3]:
            a(t, b)
        b_ = make()
        b_.bind(labeled, torch.zeros(n, dtype=torch.long), 4)
        b_.load_state_dict(a.state_dict())
        t, b = batches[3]
        out_a, out_b = a(t, b), b_(t, b)
        assert torch.equal(out_a.labels, out_b.labels)
        assert torch.equal(out_a.logits, out_b.logits)
        assert (out_a.mask is None and out_b.mask is None) or torch.equal(out_a.mask, out_b.mask)
