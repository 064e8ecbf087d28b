"""MemReranker's pairwise → pointwise calibration (METHODS.md §25, aggregation a
reconstruction): averaging both presentation orders cancels a constant position bias (and
one order alone does not), Bradley–Terry recovers known scores from noiseless preferences and
is the maximizer of its float64 objective, padded queries equal queries fitted alone, and the
calibration is fitted on the training queries only."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mentor.errors import DataError, MentorError
from mentor.ranking import (SimulatedTeachers, average_orders, bradley_terry, compare_all,
                            fit_calibration, soft_labels, tb_rank)

SMALL = dict(num_queries=12, num_candidates=6, split=(0.5, 0.25, 0.25))


class ScoreJudges:
    """Judges that know true scores ``beta`` per row: ``P(i ≻ j) = σ(β_i − β_j)`` plus a
    constant probability ``bias[k]`` for the first-shown candidate."""

    def __init__(self, beta, bias):
        self.beta, self.bias = beta, torch.tensor(bias, dtype=torch.float64)[:, None]

    def preferences(self, first, second):
        p = torch.sigmoid(self.beta[first] - self.beta[second])[None, :]
        return p + self.bias


def _known(data, seed=0):
    g = torch.Generator().manual_seed(seed)
    return 1.5 * torch.randn(data.num_rows, generator=g, dtype=torch.float64)


def test_averaging_both_orders_cancels_a_constant_position_bias():
    p = torch.tensor([[0.2, 0.7, 0.5]], dtype=torch.float64)
    for c in (0.0, 0.1, 0.25):
        forward = (p + c).expand(3, 3)  # P(i ≻ j | i first), three judges
        backward = (1.0 - p + c).expand(3, 3)  # P(j ≻ i | j first)
        torch.testing.assert_close(average_orders(forward, backward), p[0], rtol=0, atol=1e-15)
    # judges differ: the average over teachers of the debiased answers
    fw = torch.stack([p[0] + 0.1, p[0] ** 2 + 0.2])
    bw = torch.stack([1 - p[0] + 0.1, 1 - p[0] ** 2 + 0.2])
    torch.testing.assert_close(average_orders(fw, bw), (p[0] + p[0] ** 2) / 2)


def test_all_pairs_of_biased_judges_give_the_unbiased_comparisons():
    data = tb_rank(**SMALL)
    beta = _known(data)
    biased = compare_all(data, ScoreJudges(beta, [0.1, 0.2, 0.05]))
    clean = compare_all(data, ScoreJudges(beta, [0.0]))
    torch.testing.assert_close(biased.prefs, clean.prefs, rtol=0, atol=1e-14)
    # by hand: query 0's candidates 0 and 1
    r0, r1 = biased.rows[0, 0], biased.rows[0, 1]
    assert float(biased.prefs[0, 0, 1]) == pytest.approx(float(torch.sigmoid(beta[r0] - beta[r1])))
    assert float(biased.prefs[0, 1, 0]) == pytest.approx(1 - float(biased.prefs[0, 0, 1]))
    assert (biased.prefs.diagonal(dim1=1, dim2=2) == 0).all()


def test_bradley_terry_recovers_known_scores_from_noiseless_preferences():
    data = tb_rank(**SMALL)
    beta = _known(data)
    comp = compare_all(data, ScoreJudges(beta, [0.15, 0.3]))  # biased, both orders
    got = bradley_terry(comp.prefs, comp.mask, prior=1e-9)
    want = beta[comp.rows]
    want = want - want.mean(1, keepdim=True)  # BT fixes scores up to a constant
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5)


def test_one_presentation_order_alone_keeps_the_position_bias():
    """The ablation of the averaging: each pair asked once, the lower row id shown first, of a
    judge that prefers the first-shown candidate; the fitted scores drift with row order."""
    data = tb_rank(**SMALL)
    beta = _known(data)
    judges = ScoreJudges(beta, [0.2])
    comp = compare_all(data, judges)
    n = comp.rows.shape[1]
    i, j = torch.triu_indices(n, n, offset=1)
    one = torch.zeros_like(comp.prefs)
    for q in range(data.num_queries):
        a, b = comp.rows[q, i], comp.rows[q, j]
        p = judges.preferences(a, b).mean(0).clamp(0, 1)
        one[q, i, j], one[q, j, i] = p, 1 - p
    want = beta[comp.rows] - beta[comp.rows].mean(1, keepdim=True)
    both = bradley_terry(comp.prefs, comp.mask, prior=1e-9)
    single = bradley_terry(one, comp.mask, prior=1e-9)
    assert float((both - want).abs().max()) < 1e-5
    assert float((single - want).abs().max()) > 0.3
    # the drift favours candidates shown first more often (lower ids)
    assert float((single - want)[:, 0].mean()) > 0.3


def _objective(beta, prefs, prior):
    """The BT log-likelihood written as loops, float64."""
    total = 0.0
    n = len(beta)
    for i in range(n):
        for j in range(n):
            if i != j:
                total += prefs[i][j] * float(F.logsigmoid(torch.tensor(beta[i] - beta[j],
                                                                        dtype=torch.float64)))
    return total - 0.5 * prior * sum(b * b for b in beta)


def test_bradley_terry_maximizes_its_float64_objective_and_pads_alone():
    rng = np.random.default_rng(0)
    sizes, prior = (4, 2, 5), 0.05
    prefs = torch.zeros(3, 5, 5, dtype=torch.float64)
    mask = torch.zeros(3, 5, dtype=torch.bool)
    for q, n in enumerate(sizes):
        p = rng.random((n, n))
        p = np.triu(p, 1) + np.tril(1 - p.T, -1)  # P(j ≻ i) = 1 − P(i ≻ j)
        prefs[q, :n, :n] = torch.from_numpy(p)
        mask[q, :n] = True
    beta = bradley_terry(prefs, mask, prior=prior)
    for q, n in enumerate(sizes):
        b, p = beta[q, :n].tolist(), prefs[q, :n, :n].tolist()
        best = _objective(b, p, prior)
        for i in range(n):  # every coordinate move lowers the objective
            for h in (1e-4, -1e-4):
                moved = list(b)
                moved[i] += h
                assert _objective(moved, p, prior) < best
        alone = bradley_terry(prefs[q:q + 1, :n, :n], prior=prior)
        torch.testing.assert_close(beta[q, :n], alone[0], rtol=0, atol=1e-10)
        assert bool((beta[q, n:] == 0).all())
    assert float(beta.sum(1).abs().max()) < 1e-9  # the prior centres the scores


def test_calibration_recovers_offset_and_temperature():
    beta = torch.linspace(-4, 4, 101, dtype=torch.float64)
    b, t = fit_calibration(beta, torch.sigmoid((beta - 0.7) / 1.3))
    assert (b, t) == (pytest.approx(0.7, abs=1e-5), pytest.approx(1.3, abs=1e-5))
    with pytest.raises(MentorError, match=r"slope 1/T = -.*expected the targets to rise"):
        fit_calibration(beta, torch.sigmoid(-beta))


def test_soft_labels_are_calibrated_on_the_training_queries_only():
    data = tb_rank(**SMALL)
    judges = SimulatedTeachers(data, seed=1)
    targets = torch.stack([judges.hard_labels(k) for k in range(3)]).double().mean(0)
    base = soft_labels(data, judges)
    same = soft_labels(data, judges, targets)  # the default targets, given
    assert (base.b, base.T) == (same.b, same.T)
    other = targets.clone()
    other[data.rows("val")] = 1.0 - other[data.rows("val")]
    other[data.rows("test")] = 1.0
    moved = soft_labels(data, judges, other)
    assert (moved.b, moved.T) == (base.b, base.T)
    torch.testing.assert_close(base.labels, torch.sigmoid((base.beta - base.b) / base.T).float())
    changed = targets.clone()
    changed[data.rows("train")[:5]] = 1.0 - changed[data.rows("train")[:5]]
    assert soft_labels(data, judges, changed).b != base.b


class OneJudge:
    """One judge of a panel, alone."""

    def __init__(self, judges, k):
        self.judges, self.k = judges, k

    def preferences(self, first, second):
        return self.judges.preferences(first, second)[self.k:self.k + 1]


def _bt_scores(data, judges):
    comp = compare_all(data, judges)
    scores = bradley_terry(comp.prefs, comp.mask)
    beta = torch.zeros(data.num_rows, dtype=torch.float64)
    beta[comp.rows[comp.mask]] = scores[comp.mask]
    return beta


@pytest.mark.parametrize("seed", [0, 1])
def test_aggregated_judges_rank_better_than_any_single_judge(seed):
    """The reason for the pipeline: on TB-RANK's training candidates, the Bradley-Terry
    scores of the three judges order each query closer to the truth than the scores of any
    one judge alone, and far closer than any judge's yes/no labels."""
    from mentor.ranking import ndcg
    data = tb_rank(seed=seed)
    judges = SimulatedTeachers(data, seed=seed)
    rows = data.rows("train")
    g, q = data.grade[rows], data.query[rows]
    beta = soft_labels(data, judges).beta
    torch.testing.assert_close(beta, _bt_scores(data, judges))
    panel = ndcg(beta[rows], g, q)
    for k in range(3):
        assert panel > ndcg(_bt_scores(data, OneJudge(judges, k))[rows], g, q) + 0.01
        assert panel > ndcg(judges.hard_labels(k)[rows], g, q) + 0.1


def test_bad_input_is_one_sentence():
    with pytest.raises(DataError, match=r"forward has shape \(2, 3\) and backward \(2, 2\)"):
        average_orders(torch.zeros(2, 3), torch.zeros(2, 2))
    with pytest.raises(MentorError, match=r"prior must be > 0 .*got 0"):
        bradley_terry(torch.zeros(1, 2, 2), prior=0)
    with pytest.raises(DataError, match=r"prefs has shape \(2, 3\); expected \(queries, L, L\)"):
        bradley_terry(torch.zeros(2, 3))
    data = tb_rank(**SMALL)
    with pytest.raises(DataError, match=r"targets has shape \(3,\); expected \(72,\)"):
        soft_labels(data, SimulatedTeachers(data), torch.zeros(3))
    with pytest.raises(DataError, match=r"targets holds values outside \[0, 1\]"):
        fit_calibration(torch.zeros(2), torch.tensor([0.5, 2.0]))
