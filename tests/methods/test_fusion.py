"""Several teachers' pseudo-labels: consensus (DMT, METHODS.md §8) gives higher precision than
either teacher; entropy / inverse-variance fusion (§9, §19) against float64 formulas."""

import numpy as np
import pytest
import torch

import mentor
from mentor.contracts import Batch, Targets
from mentor.engine import fit
from mentor.errors import MentorError
from mentor.methods import get_method
from mentor.models import mlp
from mentor.recipe import TrainSpec
from mentor.targets import Consensus, UncertaintyFusion
from mentor.teachers import CommitteeTeacher, ModuleTeacher, ProbaTeacher


@pytest.fixture(scope="module")
def two_teachers():
    """An MLP and a logistic regression, each trained on the 10 % labeled digits rows."""
    from sklearn.linear_model import LogisticRegression
    sp = mentor.load_data("digits", labeled_fraction=0.1)
    lab = sp.train.labeled
    torch.manual_seed(0)
    net = fit(mlp(sp.input_shape, 10, hidden=[32]), sp.train, sp.val,
              objectives=get_method("scratch").plan().objectives,
              spec=TrainSpec(epochs=40, batch_size=16, lr=3e-3), seed=0, num_classes=10).model
    lr = LogisticRegression(C=0.1, max_iter=2000).fit(sp.train.x[lab].numpy(),
                                                      sp.train.y[lab].numpy())
    return sp, CommitteeTeacher([ModuleTeacher(net, 10), ProbaTeacher(lr, 10)])


def _unlabeled_batch(sp):
    unl = ~sp.train.labeled
    x, y = sp.train.x[unl], sp.train.y[unl]
    return x, y, Batch(x, torch.full_like(y, -1), torch.arange(len(y)),
                       torch.zeros(len(y), dtype=torch.bool))


def test_consensus_of_two_teachers_is_more_precise_than_either(two_teachers):
    sp, committee = two_teachers
    x, y, batch = _unlabeled_batch(sp)
    out = committee.outputs(x)
    members = out["members"]
    single = [float((members[:, m].argmax(-1) == y).double().mean()) for m in range(2)]
    targets = Targets(out["logits"], out["logits"].argmax(-1), extra=out)
    refined = Consensus()(targets, batch)
    kept = refined.mask
    precision = float((refined.labels[kept] == y[kept]).double().mean())
    assert 0.5 < float(kept.double().mean()) < 1.0  # the teachers disagree on some rows
    assert precision > max(single) + 0.02, (precision, single)
    # min_agree 1 admits every row; the label is then a majority (here: either) vote
    assert bool(Consensus(min_agree=1)(targets, batch).mask.all())


def test_consensus_needs_a_committee_and_enough_members(two_teachers):
    sp, committee = two_teachers
    x, y, batch = _unlabeled_batch(sp)
    z = committee.logits(x[:4])
    with pytest.raises(MentorError, match="expected a committee teacher"):
        Consensus()(Targets(z, z.argmax(-1)), Batch(x[:4], y[:4], torch.arange(4), None))
    out = committee.outputs(x[:4])
    with pytest.raises(MentorError, match="min_agree is 3 but the committee has 2"):
        Consensus(3)(Targets(out["logits"], y[:4], extra=out),
                     Batch(x[:4], y[:4], torch.arange(4), None))


def test_uncertainty_fusion_matches_float64_formulas():
    g = torch.Generator().manual_seed(0)
    members = torch.randn(5, 3, 4, generator=g, dtype=torch.float64) * 2
    p = members.softmax(-1).numpy()
    for mode in ("entropy", "inverse_variance"):
        got = UncertaintyFusion(mode, eps=1e-3).fuse(members).numpy()
        for b in range(5):
            if mode == "entropy":
                w = np.array([1 / (-(p[b, m] * np.log(p[b, m])).sum() + 1e-3) for m in range(3)])
                want = (w[:, None] * p[b]).sum(0) / w.sum()
            else:
                inv = 1 / (p[b] * (1 - p[b]) + 1e-3)
                want = (p[b] * inv).sum(0) / inv.sum(0)
                want = want / want.sum()
            np.testing.assert_allclose(got[b], want, rtol=1e-10)


def test_entropy_fusion_follows_the_confident_teacher():
    sure = torch.tensor([[[8.0, 0, 0], [0.1, 0, 0.2]]])  # member 0 sure of class 0
    fused = UncertaintyFusion("entropy").fuse(sure)
    plain = sure.softmax(-1).mean(1)
    assert float(fused[0, 0]) > float(plain[0, 0])


def test_consensus_in_the_engine_records_partial_coverage(two_teachers):
    sp, committee = two_teachers
    plan = get_method("kd").plan(alpha=0.5, temperature=1.0)
    torch.manual_seed(0)
    res = fit(mlp(sp.input_shape, 10, hidden=[16]), sp.train, sp.val,
              objectives=plan.objectives, refiners=[Consensus()], teacher=committee,
              spec=TrainSpec(epochs=2, batch_size=64, collapse_steps=0), seed=0,
              num_classes=10)
    assert 0.5 < res.history["pl_coverage"][-1] < 1.0
    assert res.history["pl_precision"][-1] > 0.85
