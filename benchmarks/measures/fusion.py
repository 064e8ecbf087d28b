"""Consensus of two teachers' pseudo-labels (METHODS.md §8 DMT): reruns the setup of
``tests/methods/test_fusion.py::test_consensus_of_two_teachers_is_more_precise_than_either``
(the test imports :func:`two_teachers` and :func:`precisions`).

Digits with 10 % labels (standardized); two teachers trained on the labeled rows: an MLP
(32 hidden, 40 epochs, seeds 0-2) and a logistic regression (C 0.1). On the unlabeled rows:
each teacher's precision alone (every row labeled), and the precision and coverage of the
rows where both agree (``Consensus()``).
"""

from __future__ import annotations

import statistics

from . import measurement
from ._fmt import num, pct, verdict, wins

SEEDS = (0, 1, 2)


def two_teachers(seed: int = 0, epochs: int = 40):
    """(splits, CommitteeTeacher([MLP, logistic regression]))."""
    import torch
    from sklearn.linear_model import LogisticRegression

    import mentor
    from mentor.engine import fit
    from mentor.methods import get_method
    from mentor.models import mlp
    from mentor.recipe import TrainSpec
    from mentor.teachers import CommitteeTeacher, ModuleTeacher, ProbaTeacher
    sp = mentor.load_data("digits", labeled_fraction=0.1)
    lab = sp.train.labeled
    torch.manual_seed(seed)
    net = fit(mlp(sp.input_shape, 10, hidden=[32]), sp.train, sp.val,
              objectives=get_method("scratch").plan().objectives,
              spec=TrainSpec(epochs=epochs, batch_size=16, lr=3e-3), seed=seed,
              num_outputs=10).model
    lr = LogisticRegression(C=0.1, max_iter=2000).fit(sp.train.x[lab].numpy(),
                                                      sp.train.y[lab].numpy())
    return sp, CommitteeTeacher([ModuleTeacher(net, 10), ProbaTeacher(lr, 10)])


def unlabeled_batch(sp):
    import torch

    from mentor.contracts import Batch
    unl = ~sp.train.labeled
    x, y = sp.train.x[unl], sp.train.y[unl]
    return x, y, Batch(x, torch.full_like(y, -1), torch.arange(len(y)),
                       torch.zeros(len(y), dtype=torch.bool))


def precisions(sp, committee) -> dict:
    """``{"members": [precision of each alone], "consensus": precision, "coverage": share
    of rows admitted, "targets": ..., "batch": ...}`` on the unlabeled rows."""
    from mentor.contracts import Targets
    from mentor.targets import Consensus
    x, y, batch = unlabeled_batch(sp)
    out = committee.outputs(x)
    members = out["members"]
    single = [float((members[:, m].argmax(-1) == y).double().mean())
              for m in range(members.shape[1])]
    targets = Targets(out["logits"], out["logits"].argmax(-1), extra=out)
    refined = Consensus()(targets, batch)
    kept = refined.mask
    return {"members": single,
            "consensus": float((refined.labels[kept] == y[kept]).double().mean()),
            "coverage": float(kept.double().mean()), "targets": targets, "batch": batch}


@measurement("fusion", about="consensus of an MLP and a logistic regression trained on 10 % "
             "of the digits labels: pseudo-label precision alone and in agreement, MLP seeds "
             "0-2", ci="full", minutes=0.3)
def measure(quick: bool) -> dict[str, str]:
    runs = [precisions(*two_teachers(s)) for s in SEEDS]
    mlp_p = [r["members"][0] for r in runs]
    lr_p = [r["members"][1] for r in runs]
    cons = [r["consensus"] for r in runs]
    best = [max(r["members"]) for r in runs]
    return {"mlp": num(statistics.fmean(mlp_p), 3), "logreg": num(statistics.fmean(lr_p), 3),
            "consensus": num(statistics.fmean(cons), 3),
            "coverage": pct(statistics.fmean(r["coverage"] for r in runs), 1),
            "verdict": verdict(cons, best), "wins": wins(cons, best)}
