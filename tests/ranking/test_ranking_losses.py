"""MemReranker's student losses (METHODS.md §25): soft BCE against a float64 reference and
equal to the ordinary BCE at 0/1 targets; InfoNCE against a float64 loop reference, with the
hardest negatives chosen per query on detached scores."""

import math

import pytest
import torch
import torch.nn.functional as F

from mentor.errors import DataError, MentorError
from mentor.ranking import info_nce, soft_bce


def test_soft_bce_matches_a_naive_float64_reference():
    g = torch.Generator().manual_seed(0)
    s = 3 * torch.randn(50, generator=g, dtype=torch.float64)
    y = torch.rand(50, generator=g, dtype=torch.float64)
    want = [-(t * math.log(1 / (1 + math.exp(-z))) + (1 - t) * math.log(1 - 1 / (1 + math.exp(-z))))
            for z, t in zip(s.tolist(), y.tolist())]
    torch.testing.assert_close(soft_bce(s, y), torch.tensor(want, dtype=torch.float64),
                               rtol=1e-12, atol=1e-12)


def test_soft_bce_is_hard_bce_at_zero_one_targets_and_finite_for_large_logits():
    s = torch.tensor([-300.0, -2.0, 0.0, 1.5, 300.0])
    y = torch.tensor([0.0, 1.0, 1.0, 0.0, 1.0])
    torch.testing.assert_close(soft_bce(s, y), F.binary_cross_entropy_with_logits(
        s, y, reduction="none"))
    assert torch.isfinite(soft_bce(s, 1 - y)).all()
    assert float(soft_bce(s, 1 - y)[0]) == pytest.approx(300.0)


def test_soft_bce_is_smallest_at_the_logit_of_the_target():
    y = torch.tensor([0.2, 0.5, 0.9])
    best = torch.logit(y).requires_grad_(True)
    soft_bce(best, y).sum().backward()
    torch.testing.assert_close(best.grad, torch.zeros(3), atol=1e-6, rtol=0)


def _naive_info_nce(scores, positive, query, k, tau):
    """Loops: per positive row, the k negatives of its query with the highest score (ties:
    lower row first), −log e^{s+/τ} / (e^{s+/τ} + Σ e^{s−/τ})."""
    out, rows = [], []
    for p in range(len(scores)):
        if not positive[p]:
            continue
        negs = [i for i in range(len(scores)) if query[i] == query[p] and not positive[i]]
        negs = sorted(negs, key=lambda i: (-scores[i], i))[:k]
        if not negs:
            continue
        den = math.exp(scores[p] / tau) + sum(math.exp(scores[i] / tau) for i in negs)
        out.append(-math.log(math.exp(scores[p] / tau) / den))
        rows.append(p)
    return out, rows


@pytest.mark.parametrize("k,tau", [(1, 1.0), (3, 0.5), (50, 2.0)])
def test_info_nce_matches_a_naive_float64_reference(k, tau):
    g = torch.Generator().manual_seed(k)
    m = 40
    s = torch.randn(m, generator=g, dtype=torch.float64)
    s[5] = s[6]  # a tie among negatives
    query = torch.randint(0, 5, (m,), generator=g)
    positive = torch.rand(m, generator=g) < 0.3
    got, rows = info_nce(s, positive, query, num_negatives=k, temperature=tau)
    want, want_rows = _naive_info_nce(s.tolist(), positive.tolist(), query.tolist(), k, tau)
    assert rows.tolist() == want_rows
    torch.testing.assert_close(got, torch.tensor(want, dtype=torch.float64), rtol=1e-12,
                               atol=1e-12)


def test_info_nce_uses_the_hardest_negatives_only():
    # one query: positive row 0; negatives 1..5 with scores 2, -1, 3, 0.5, -4; k = 2 -> 3 and 1
    s = torch.tensor([1.0, 2.0, -1.0, 3.0, 0.5, -4.0], dtype=torch.float64, requires_grad=True)
    pos = torch.tensor([True, False, False, False, False, False])
    q = torch.zeros(6, dtype=torch.long)
    loss, rows = info_nce(s, pos, q, num_negatives=2)
    want = -math.log(math.exp(1) / (math.exp(1) + math.exp(2) + math.exp(3)))
    assert rows.tolist() == [0] and float(loss[0]) == pytest.approx(want, rel=1e-12)
    loss.sum().backward()
    assert s.grad[[2, 4, 5]].tolist() == [0.0, 0.0, 0.0]  # easy negatives: no gradient
    assert float(s.grad[0]) < 0 and float(s.grad[1]) > 0 and float(s.grad[3]) > 0
    # lowering an easy negative changes nothing; raising it above the hard ones does
    easier = s.detach().clone()
    easier[4] = -10.0
    assert float(info_nce(easier, pos, q, num_negatives=2)[0][0]) == pytest.approx(want)
    harder = s.detach().clone()
    harder[5] = 5.0
    assert float(info_nce(harder, pos, q, num_negatives=2)[0][0]) > want + 1.0


def test_info_nce_keeps_queries_apart_and_skips_positives_without_negatives():
    s = torch.tensor([0.0, 9.0, 1.0, 2.0, 5.0])
    q = torch.tensor([0, 1, 0, 1, 2])
    pos = torch.tensor([True, False, False, True, True])  # query 2: no negative
    loss, rows = info_nce(s, pos, q, num_negatives=3)
    assert rows.tolist() == [0, 3]
    torch.testing.assert_close(loss, torch.tensor([math.log(1 + math.exp(1.0)),
                                                   math.log(1 + math.exp(7.0))]))


def test_bad_input_is_one_sentence():
    s = torch.zeros(3)
    with pytest.raises(DataError, match=r"targets has shape \(2,\) but logits has \(3,\)"):
        soft_bce(s, torch.zeros(2))
    with pytest.raises(DataError, match=r"targets holds 1\.5; expected soft labels in \[0, 1\]"):
        soft_bce(s, torch.tensor([0.0, 1.5, 0.2]))
    q, pos = torch.zeros(3, dtype=torch.long), torch.tensor([True, False, False])
    with pytest.raises(MentorError, match=r"num_negatives must be a positive integer, got 0"):
        info_nce(s, pos, q, num_negatives=0)
    with pytest.raises(MentorError, match=r"temperature must be > 0, got -1"):
        info_nce(s, pos, q, temperature=-1)
    with pytest.raises(DataError, match=r"positive has dtype torch.float32; expected booleans"):
        info_nce(s, pos.float(), q)
    with pytest.raises(DataError, match=r"query has shape \(2,\) but scores has \(3,\)"):
        info_nce(s, pos, q[:2])
