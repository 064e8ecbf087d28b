"""Ranking metrics (METHODS.md §25, TB-RANK's MAP / nDCG@5 and the ECE of relevance
probabilities) against naive float64 references written here (loops over queries and ranks),
scikit-learn on tie-free data, and the edge cases: no relevant item, ties, k above the
number of candidates, bad input."""

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score, ndcg_score

from mentor.errors import DataError, MentorError
from mentor.ranking import (average_precision_per_query, binary_ece, mean_average_precision,
                            ndcg, ndcg_per_query)


def _ranking(scores, grades):
    """Naive ranking of one query: by score descending; ties lower grade first, then row."""
    return [grades[i] for i in sorted(range(len(scores)),
                                      key=lambda i: (-scores[i], grades[i], i))]


def _naive_ndcg(scores, grades, query, k):
    out = []
    for q in sorted(set(query)):
        idx = [i for i in range(len(query)) if query[i] == q]
        ranked = _ranking([scores[i] for i in idx], [grades[i] for i in idx])
        ideal = sorted((grades[i] for i in idx), reverse=True)
        dcg = sum((2.0 ** g - 1.0) / math.log2(r + 2.0) for r, g in enumerate(ranked[:k]))
        idcg = sum((2.0 ** g - 1.0) / math.log2(r + 2.0) for r, g in enumerate(ideal[:k]))
        out.append(dcg / idcg if idcg > 0 else 0.0)
    return out


def _naive_ap(scores, grades, query, threshold):
    out = []
    for q in sorted(set(query)):
        idx = [i for i in range(len(query)) if query[i] == q]
        ranked = _ranking([scores[i] for i in idx], [grades[i] for i in idx])
        hits, total = 0, 0.0
        for r, g in enumerate(ranked):
            if g >= threshold:
                hits += 1
                total += hits / (r + 1.0)
        out.append(total / hits if hits else 0.0)
    return out


def _random_rows(seed, queries=7, ties=False):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 9, size=queries)
    query = np.repeat(np.arange(queries), sizes)
    rng.shuffle(query)  # rows need not be grouped
    m = len(query)
    scores = rng.integers(0, 3, size=m).astype(float) if ties else rng.normal(size=m)
    return scores, rng.integers(0, 4, size=m), query


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("k", [1, 3, 5, 20])
def test_ndcg_matches_a_naive_float64_reference(seed, ties, k):
    s, g, q = _random_rows(seed, ties=ties)
    want = _naive_ndcg(s.tolist(), g.tolist(), q.tolist(), k)
    np.testing.assert_allclose(ndcg_per_query(s, g, q, k), want, rtol=1e-12, atol=0)
    assert ndcg(torch.tensor(s), torch.tensor(g), torch.tensor(q), k) == \
        pytest.approx(np.mean(want), rel=1e-12)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("threshold", [1, 2, 3])
def test_average_precision_matches_a_naive_float64_reference(seed, ties, threshold):
    s, g, q = _random_rows(seed, ties=ties)
    want = _naive_ap(s.tolist(), g.tolist(), q.tolist(), threshold)
    np.testing.assert_allclose(average_precision_per_query(s, g, q, threshold), want,
                               rtol=1e-12, atol=0)
    assert mean_average_precision(s, g, q, threshold) == pytest.approx(np.mean(want),
                                                                       rel=1e-12)


def test_without_ties_the_metrics_agree_with_scikit_learn():
    rng = np.random.default_rng(0)
    for _ in range(10):
        s, g = rng.normal(size=12), rng.integers(0, 4, size=12)
        g[0] = 3  # at least one relevant item
        q = np.zeros(12, dtype=int)
        # scikit-learn's DCG uses the given relevance as the gain: pass 2^grade - 1
        assert ndcg(s, g, q, 5) == pytest.approx(
            ndcg_score([2.0 ** g - 1.0], [s], k=5), rel=1e-12)
        assert mean_average_precision(s, g, q, 2) == pytest.approx(
            average_precision_score(g >= 2, s), rel=1e-12)


def test_by_hand_graded_gains_and_log2_discount():
    # ranked grades 1, 3, 0: DCG = 1/log2(2) + 7/log2(3); ideal 3, 1, 0: 7 + 1/log2(3)
    s, g, q = [0.9, 0.5, 0.1], [1, 3, 0], [0, 0, 0]
    want = (1.0 + 7.0 / math.log2(3)) / (7.0 + 1.0 / math.log2(3))
    assert ndcg(s, g, q, 3) == pytest.approx(want, rel=1e-12)
    # k = 1: only the top item, gain 1 against the ideal 7
    assert ndcg(s, g, q, 1) == pytest.approx(1.0 / 7.0, rel=1e-12)
    # AP at threshold 2: the one relevant item at rank 2 -> 1/2
    assert mean_average_precision(s, g, q, 2) == pytest.approx(0.5)


def test_a_query_without_relevant_items_scores_zero_for_every_ranker():
    g, q = [0, 0, 0, 2, 1], [0, 0, 0, 1, 1]
    for s in ([1.0, 2.0, 3.0, 5.0, 4.0], [3.0, 2.0, 1.0, 5.0, 4.0]):
        assert ndcg_per_query(s, g, q, 5).tolist() == [0.0, 1.0]
        assert average_precision_per_query(s, g, q, 2).tolist() == [0.0, 1.0]
    assert mean_average_precision([1.0, 2.0], [1, 1], [0, 0], 2) == 0.0


def test_ties_are_broken_against_the_ranker_whatever_the_row_order():
    g = np.array([3, 0, 2, 1])
    q = np.zeros(4, dtype=int)
    flat = np.zeros(4)
    worst = _naive_ndcg((-g).astype(float).tolist(), g.tolist(), q.tolist(), 4)[0]
    assert ndcg(flat, g, q, 4) == pytest.approx(worst, rel=1e-12)  # constant = worst order
    assert ndcg(flat, g, q, 4) < 1.0
    for perm in ([3, 2, 1, 0], [1, 3, 0, 2]):
        assert ndcg(flat[perm], g[perm], q, 4) == ndcg(flat, g, q, 4)
    # a tie only among the top two: the lower grade goes first
    s = np.array([1.0, 1.0, 0.0, 0.0])
    assert ndcg(s, g, q, 1) == pytest.approx(0.0)  # grades 3 and 0 tied: 0 ranks first
    assert mean_average_precision(s, g, q, 3) == pytest.approx(0.5)


def test_k_above_the_number_of_candidates_uses_them_all():
    s, g, q = _random_rows(3)
    longest = int(np.bincount(q).max())
    assert ndcg(s, g, q, longest + 7) == ndcg(s, g, q, longest)
    assert ndcg([0.3], [2], [0], 5) == 1.0  # one candidate: always ideal


def _naive_ece(p, y, bins):
    total = 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        members = [i for i in range(len(p)) if (lo < p[i] <= hi) or (b == 0 and p[i] == 0)]
        if members:
            conf = sum(p[i] for i in members) / len(members)
            acc = sum(y[i] for i in members) / len(members)
            total += len(members) / len(p) * abs(acc - conf)
    return total


@pytest.mark.parametrize("bins", [1, 5, 10])
def test_binary_ece_matches_a_naive_float64_reference(bins):
    rng = np.random.default_rng(bins)
    p = np.concatenate([rng.random(200), [0.0, 1.0, 0.5, 0.2]])
    y = rng.random(204) < p
    assert binary_ece(p, y, bins) == pytest.approx(_naive_ece(p.tolist(), y.tolist(), bins),
                                                   rel=1e-12, abs=1e-15)
    assert binary_ece(y.astype(float), y, bins) == 0.0  # perfect 0/1 probabilities


def test_bad_input_is_one_sentence_naming_the_field():
    with pytest.raises(DataError, match=r"grades has shape \(2,\) but scores has \(3,\)"):
        ndcg([1.0, 2.0, 3.0], [1, 2], [0, 0, 0])
    with pytest.raises(DataError, match=r"scores holds nan; expected finite"):
        ndcg([1.0, float("nan")], [1, 2], [0, 0])
    with pytest.raises(MentorError, match=r"k must be a positive integer, got 0"):
        ndcg([1.0], [1], [0], 0)
    with pytest.raises(MentorError, match=r"bins must be a positive integer, got 1\.5"):
        binary_ece([0.2], [1], 1.5)
    s, g, q = [0.3, 0.1, 0.2, 0.9], [1, 3, 0, 2], [0, 0, 0, 0]
    assert ndcg(s, g, q, np.int64(2)) == ndcg(s, g, q, 2)  # numpy integers are counts
    with pytest.raises(DataError, match=r"query has dtype float64; expected integers"):
        ndcg([1.0], [1], [0.5])
    with pytest.raises(DataError, match=r"grades holds -1; expected grades >= 0"):
        mean_average_precision([1.0, 2.0], [-1, 2], [0, 0])
    with pytest.raises(DataError, match=r"scores is empty"):
        ndcg([], [], [])
    with pytest.raises(DataError, match=r"probs holds 1\.5; expected probabilities in \[0, 1\]"):
        binary_ece([0.2, 1.5], [0, 1])
