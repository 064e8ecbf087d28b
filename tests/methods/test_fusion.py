"""Several teachers' pseudo-labels: consensus (DMT, METHODS.md §8) gives higher precision than
either teacher; entropy / inverse-variance fusion (§9, §19) against float64 formulas."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mentor.contracts import Batch, Targets
from mentor.engine import fit
from mentor.errors import MentorError
from mentor.methods import get_method
from mentor.models import mlp
from mentor.recipe import TrainSpec
from mentor.targets import Consensus, UncertaintyFusion

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks.measures import fusion as measured  # noqa: E402


@pytest.fixture(scope="module")
def two_teachers():
    """An MLP and a logistic regression, each trained on the 10 % labeled digits rows (seed 0
    of the ``fusion`` measurement, benchmarks/measures/)."""
    return measured.two_teachers(0)


def _unlabeled_batch(sp):
    return measured.unlabeled_batch(sp)


def test_consensus_of_two_teachers_is_more_precise_than_either(two_teachers):
    """Measured (``fusion``, MLP seeds 0-2): precision 0.877 (MLP) / 0.889 (logistic
    regression) alone, 0.913 where both agree, at 94.4 % coverage; higher on 3 of 3."""
    sp, committee = two_teachers
    r = measured.precisions(sp, committee)
    targets, batch = r["targets"], r["batch"]
    assert 0.5 < r["coverage"] < 1.0  # the teachers disagree on some rows
    assert r["consensus"] > max(r["members"]) + 0.02, (r["consensus"], r["members"])
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
              num_outputs=10)
    assert 0.5 < res.history["pl_coverage"][-1] < 1.0
    assert res.history["pl_precision"][-1] > 0.85
