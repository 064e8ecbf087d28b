"""Pseudo-label refiners on simulated teachers (no training): the figures of the methods.md
rows 22 (Consistent-Teacher's GMM threshold), 20 (S²Teacher's curriculum) and 10/17 (a
learned corrector). Reruns the simulations of ``tests/unit/test_ssl_refiners.py::
test_gmm_threshold_beats_global_thresholds_on_miscalibrated_classes`` and ``tests/methods/
test_curriculum.py::test_curriculum_admits_easy_rows_first_and_more_rows_later``,
``::test_learned_corrector_repairs_a_systematic_confusion`` (the tests import
:func:`gmm_simulation`, :func:`curriculum_simulation`, :func:`corrector_simulation`).

- GMM: four classes calibrated differently (correct pseudo-labels' confidence ~ Beta(a_c, 2),
  wrong ones' ~ Beta(2, b_c); classes 0-1 overconfident, 2-3 underconfident), 24 batches of
  64 rows, 60 % right; class-wise GMM thresholds (buffer 100, refit every 4 batches) against a
  fixed 0.5 and one global threshold admitting as many rows, scored on the last 12 batches;
  generator seeds 0-9.
- Curriculum: 400 rows of a simulated teacher (70 % right, right rows sharper), entropy
  admission with k falling from 1 to -1 over 10 epochs, scored at epochs 0 and 10 (seed 0).
- Corrector: a teacher that calls class 0 "class 1" (p 0.6 vs 0.3), right on the other 3
  classes; 40 of 200 rows labeled; the logistic corrector fitted on the labeled pairs (seed 0).
"""

from __future__ import annotations

import numpy as np

from . import measurement
from ._fmt import num

GMM_SEEDS = tuple(range(10))


def _batch(n: int, labeled=None, y=None, epoch: int = 0, index=None):
    import torch

    from mentor.contracts import Batch
    labeled = torch.zeros(n, dtype=torch.bool) if labeled is None else labeled
    y = torch.full((n,), -1) if y is None else y
    index = torch.arange(n) if index is None else index
    return Batch(torch.zeros(n, 1), y, index, labeled, epoch=epoch)


def _confidence_logits(conf: np.ndarray, pred: np.ndarray, c: int):
    """Logits whose softmax has maximum ``conf`` at ``pred``, the rest spread evenly."""
    import torch
    z = np.tile(np.log((1.0 - conf) / (c - 1))[:, None], (1, c))
    z[np.arange(len(conf)), pred] = np.log(conf)
    return torch.tensor(z, dtype=torch.float32)


def gmm_simulation(seed: int = 0) -> dict:
    """Precision (share of admitted rows that are right) and admitted rows of the GMM
    thresholds, a fixed 0.5 and one global threshold at the GMM's coverage; the final
    per-class thresholds; whether every class buffer was full when scored."""
    import torch

    from mentor.contracts import Targets
    from mentor.targets import GMMThreshold
    rng = np.random.default_rng(seed)
    c, bsz, steps, buf = 4, 64, 24, 100
    a = np.array([30.0, 12.0, 5.0, 3.0])
    b = np.array([0.7, 1.5, 4.0, 8.0])
    gmm = GMMThreshold(buffer=buf, refit_every=4, policy="high")
    gmm.bind(torch.zeros(bsz, dtype=torch.bool), torch.zeros(bsz, dtype=torch.long), c)
    conf_ev, ok_ev, keep_ev, full = [], [], [], True
    for step in range(steps):
        pred = rng.integers(0, c, bsz)
        ok = rng.random(bsz) < 0.6
        conf = np.clip(np.where(ok, rng.beta(a[pred], 2.0), rng.beta(2.0, b[pred])),
                       0.26, 0.999)
        logits = _confidence_logits(conf, pred, c)
        batch = _batch(bsz)
        out = gmm(Targets(logits, logits.argmax(-1)), batch)
        if step >= steps // 2:
            full = full and int(gmm.count.min()) >= buf
            conf_ev.append(logits.double().softmax(-1).max(-1).values.numpy())
            ok_ev.append(ok)
            keep_ev.append(out.mask.numpy())
    conf, ok, keep = map(np.concatenate, (conf_ev, ok_ev, keep_ev))
    n = int(keep.sum())
    fixed = conf >= 0.5
    top_n = np.argsort(-conf, kind="stable")[:n]  # one global threshold, same coverage
    return {"gmm": float(ok[keep].mean()), "n": n, "fixed": float(ok[fixed].mean()),
            "n_fixed": int(fixed.sum()), "global": float(ok[top_n].mean()),
            "rows": len(conf), "thresholds": gmm.thresholds_now.numpy().copy(),
            "buffers_full": full}


def _simulated_teacher(n: int, g, c: int = 5):
    """Correct rows are confident (low entropy), wrong rows diffuse, with overlap."""
    import torch
    truth = torch.randint(c, (n,), generator=g)
    right = torch.rand(n, generator=g) < 0.7
    pred = torch.where(right, truth, (truth + 1) % c)
    sharp = torch.where(right, 2.0 + 3 * torch.rand(n, generator=g),
                        0.5 + 2 * torch.rand(n, generator=g))
    logits = torch.randn(n, c, generator=g) * 0.3
    logits[torch.arange(n), pred] += sharp
    return logits, truth


def curriculum_simulation(seed: int = 0) -> dict[int, tuple[float, float]]:
    """``{epoch: (coverage, precision)}`` at epochs 0 and 10 of the entropy curriculum."""
    import torch

    from mentor.contracts import Targets
    from mentor.targets import CurriculumAdmission
    g = torch.Generator().manual_seed(seed)
    cur = CurriculumAdmission(k_start=1.0, k_end=-1.0, ramp_epochs=10, freeze_after=0)
    cur.bind(torch.zeros(400, dtype=torch.bool), torch.zeros(400, dtype=torch.long), 5)
    stats = {}
    for epoch in (0, 10):
        logits, truth = _simulated_teacher(400, g)
        out = cur(Targets(logits, logits.argmax(-1)), _batch(400, epoch=epoch))
        kept = out.mask
        stats[epoch] = (float(kept.double().mean()),
                        float((out.labels[kept] == truth[kept]).double().mean()))
    return stats


def confused_teacher(n: int, g, c: int = 4):
    """A teacher that calls class 0 'class 1' (p 0.6 vs 0.3) but is right on the others:
    (log-probabilities, truth)."""
    import torch
    truth = torch.randint(c, (n,), generator=g)
    p = torch.full((n, c), 0.05)
    p[torch.arange(n), truth] = 0.85
    zero = truth == 0
    p[zero] = torch.tensor([0.3, 0.6, 0.05, 0.05])
    p = p + 0.02 * torch.rand(n, c, generator=g)
    return (p / p.sum(-1, keepdim=True)).log(), truth


def corrector_simulation(seed: int = 0) -> dict:
    """The unlabeled rows' precision before the corrector and after its fit; the first
    call's output (the identity before a fit) and the last call's, for the test's checks."""
    import torch

    from mentor.contracts import Targets
    from mentor.targets import LearnedCorrector
    g = torch.Generator().manual_seed(seed)
    cor = LearnedCorrector(buffer=500, refit_every=5, min_pairs=50, iters=300)
    n = 200
    labeled = torch.arange(n) < 40
    cor.bind(labeled, torch.zeros(n, dtype=torch.long), 4)
    logits, truth = confused_teacher(n, g)
    raw = float((logits.argmax(-1)[~labeled] == truth[~labeled]).double().mean())
    first = cor(Targets(logits, logits.argmax(-1)),
                _batch(n, labeled=labeled, y=torch.where(labeled, truth, -1)))
    first_logits = logits
    for _ in range(5):  # labeled pairs accumulate; the fit runs on the 5th call
        logits, truth = confused_teacher(n, g)
        out = cor(Targets(logits, torch.where(labeled, truth, logits.argmax(-1))),
                  _batch(n, labeled=labeled, y=torch.where(labeled, truth, -1)))
    fixed = float((out.labels[~labeled] == truth[~labeled]).double().mean())
    return {"raw": raw, "fixed": fixed, "first": first, "first_logits": first_logits,
            "last": out, "truth": truth, "labeled": labeled}


@measurement("refiner-sims", about="pseudo-label refiners on simulated teachers: GMM "
             "class-wise thresholds (seeds 0-9), entropy curriculum, learned corrector",
             ci="full", minutes=0.2)
def measure(quick: bool) -> dict[str, str]:
    sims = [gmm_simulation(s) for s in GMM_SEEDS]
    s0 = sims[0]
    above = [s["gmm"] - s["global"] for s in sims]
    cur = curriculum_simulation(0)
    cor = corrector_simulation(0)
    return {"gmm.precision": num(s0["gmm"], 3), "gmm.rows": str(s0["n"]),
            "gmm.fixed": num(s0["fixed"], 3), "gmm.fixed_rows": str(s0["n_fixed"]),
            "gmm.global": num(s0["global"], 3),
            "gmm.above_global": f"{min(above):.3f}–{max(above):.3f}",
            "gmm.seeds_above": f"{sum(a > 0 for a in above)} of {len(above)}",
            "curriculum.start_coverage": num(cur[0][0], 2),
            "curriculum.start_precision": num(cur[0][1], 2),
            "curriculum.end_coverage": num(cur[10][0], 2),
            "curriculum.end_precision": num(cur[10][1], 2),
            "corrector.raw": num(cor["raw"], 2), "corrector.fixed": num(cor["fixed"], 2)}
