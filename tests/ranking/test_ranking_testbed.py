"""TB-RANK and its simulated judges (METHODS.md §0, §25): the generator is deterministic
and has the structure it promises; the judges' pairwise answers carry the documented
position bias and their hard labels are their readings cut at the relevance threshold; the
majority vote of their hard labels matches a naive loop, ties counting as not relevant; bad
input is refused in one sentence naming the field, the value and what is expected."""

import numpy as np
import pytest
import torch

from mentor.errors import DataError, MentorError
from mentor.ranking import RankingData, SimulatedTeachers, majority_vote, tb_rank

SMALL = dict(num_queries=40, num_candidates=10, split=(0.5, 0.25, 0.25))


def _same(a: RankingData, b: RankingData) -> bool:
    return all(torch.equal(getattr(a, k), getattr(b, k))
               for k in ("x", "grade", "query", "train", "val", "test", "relevance"))


def test_generation_is_deterministic_for_a_seed_and_differs_across_seeds():
    assert _same(tb_rank(**SMALL, seed=3), tb_rank(**SMALL, seed=3))
    assert not _same(tb_rank(**SMALL, seed=3), tb_rank(**SMALL, seed=4))
    a, b = SimulatedTeachers(tb_rank(**SMALL), seed=1), SimulatedTeachers(tb_rank(**SMALL), seed=1)
    assert torch.equal(a.views, b.views)


def test_testbed_has_the_promised_structure():
    d = tb_rank()
    assert d.x.shape == (6000, 16) and d.x.dtype == torch.float32
    assert torch.bincount(d.query).tolist() == [20] * 300
    assert (len(d.train), len(d.val), len(d.test)) == (180, 60, 60)
    assert sorted(torch.cat([d.train, d.val, d.test]).tolist()) == list(range(300))
    assert torch.bincount(d.grade).tolist() == [3000, 1500, 900, 600]  # the quantile cuts
    # grades follow the hidden relevance through the cuts
    for c, cut in enumerate(d.cuts, start=1):
        assert torch.equal(d.grade >= c, d.relevance >= cut)
    # the relevance is a nonlinear function of x plus noise (σ 0.3): the best linear fit
    # leaves clearly more than the label noise unexplained
    x = torch.cat([d.x.double(), torch.ones(6000, 1, dtype=torch.float64)], 1)
    coef = torch.linalg.lstsq(x, d.relevance[:, None]).solution
    resid = d.relevance - (x @ coef)[:, 0]
    assert float(resid.var()) > 1.5 * 0.3 ** 2
    rows = d.rows("test")
    assert torch.isin(d.query[rows], d.test).all() and len(rows) == 60 * 20


def test_judges_prefer_the_first_shown_candidate_by_their_position_bias():
    d = tb_rank(**SMALL)
    judges = SimulatedTeachers(d, noise=(0.0, 0.5), position_bias=(0.0, 1.2),
                               temperature=(1.0, 0.5), seed=0)
    q0 = (d.query == 0).nonzero().flatten()
    a, b = q0[:-1], q0[1:]
    fw, bw = judges.preferences(a, b), judges.preferences(b, a)
    # judge 0: no bias, no reading error -> P(i ≻ j) = σ(r_i − r_j), orders agree
    torch.testing.assert_close(fw[0], torch.sigmoid(d.relevance[a] - d.relevance[b]))
    torch.testing.assert_close(fw[0] + bw[0], torch.ones(len(a), dtype=torch.float64))
    # judge 1: logits (v_i − v_j)/0.5 + 1.2 when i is shown first
    v = judges.views[1]
    torch.testing.assert_close(torch.logit(fw[1]), (v[a] - v[b]) / 0.5 + 1.2)
    assert bool((fw[1] + bw[1] > 1.0).all())  # both orders favour the first-shown one


def test_hard_labels_are_a_judges_reading_cut_at_the_threshold():
    d = tb_rank(**SMALL)
    exact = SimulatedTeachers(d, noise=(0.0,), position_bias=(0.0,), temperature=(1.0,))
    for t in (1, 2, 3):
        assert torch.equal(exact.hard_labels(0, t).bool(), d.binary(t))
    noisy = SimulatedTeachers(d, seed=0)
    agree = [float((noisy.hard_labels(k) == d.binary().float()).float().mean())
             for k in range(3)]
    assert agree[0] > agree[1] > agree[2] > 0.6  # more reading noise, more wrong labels


def _naive_majority(votes):
    """A strict majority of yes per item, by a plain loop; a tie is 0 (not relevant)."""
    out = []
    for item in range(len(votes[0])):
        yes = no = 0
        for judge in votes:
            if judge[item] == 1:
                yes += 1
            else:
                no += 1
        out.append(1.0 if yes > no else 0.0)
    return out


def test_majority_labels_match_a_naive_loop_over_all_judges():
    d = tb_rank(**SMALL)
    judges = SimulatedTeachers(d, seed=0)
    for t in (1, 2, 3):
        votes = [judges.hard_labels(k, t).tolist() for k in range(3)]
        got = judges.majority_labels(t)
        assert got.dtype == torch.float32 and got.shape == (d.num_rows,)
        assert got.tolist() == _naive_majority(votes)
    # every judge counts: the three judges disagree on some rows, and on those rows the
    # vote differs from each single judge somewhere
    votes = torch.stack([judges.hard_labels(k) for k in range(3)])
    split = (votes.sum(0) == 1) | (votes.sum(0) == 2)
    assert int(split.sum()) > 10
    for k in range(3):
        assert not torch.equal(judges.majority_labels(), judges.hard_labels(k))
    # five judges and random votes, including two and four judges (ties possible)
    gen = torch.Generator().manual_seed(0)
    for k in (1, 2, 3, 4, 5):
        v = (torch.rand(k, 200, generator=gen) < 0.5).float()
        assert majority_vote(v).tolist() == _naive_majority(v.tolist())
        assert majority_vote(v.bool()).tolist() == _naive_majority(v.long().tolist())


def test_majority_vote_tie_is_not_relevant():
    # two judges: one yes, one no -> tie -> 0; four judges: two yes -> 0, three yes -> 1
    assert majority_vote(torch.tensor([[1.0, 1.0, 0.0], [0.0, 1.0, 0.0]])).tolist() == \
        [0.0, 1.0, 0.0]
    four = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]])
    assert majority_vote(four).tolist() == [0.0, 1.0, 0.0, 0.0]
    # three judges never tie: two of three is a majority, one of three is not
    three = torch.tensor([[1, 1, 0], [1, 0, 0], [0, 0, 1]])
    assert majority_vote(three).tolist() == [1.0, 0.0, 0.0]
    # an even number of simulated judges: a 2-2 split is 0
    d = tb_rank(**SMALL)
    judges = SimulatedTeachers(d, noise=(0.3, 0.6, 0.9, 1.2), position_bias=(0.5,) * 4,
                               temperature=(0.5,) * 4, seed=2)
    votes = torch.stack([judges.hard_labels(k) for k in range(4)])
    tie = votes.sum(0) == 2
    assert int(tie.sum()) > 0
    got = judges.majority_labels()
    assert (got[tie] == 0).all() and torch.equal(got[votes.sum(0) >= 3],
                                                 torch.ones(int((votes.sum(0) >= 3).sum())))
    assert got.tolist() == _naive_majority(votes.tolist())
    with pytest.raises(DataError, match=r"votes has shape \(3,\); expected \(judges, items\)"):
        majority_vote(torch.ones(3))
    with pytest.raises(DataError, match=r"votes holds 0\.5; expected 0/1 answers"):
        majority_vote(torch.tensor([[0.5, 1.0]]))
    with pytest.raises(DataError, match=r"threshold must be a grade in 1\.\.3, got 4"):
        judges.majority_labels(4)


def _rows(**change):
    base = dict(x=torch.zeros(4, 2), grade=torch.tensor([0, 1, 2, 3]),
                query=torch.tensor([0, 0, 1, 1]), num_queries=2, train=torch.tensor([0]),
                val=torch.tensor([1]), test=torch.tensor([], dtype=torch.long))
    return RankingData(**{**base, **change})


def test_bad_input_is_one_sentence_naming_field_value_and_expectation():
    _rows()  # the base is fine
    cases = [
        (dict(num_queries=3), r"query 2 has no candidates; expected at least one row per query"),
        (dict(query=torch.tensor([0, 0, 1, 5])),
         r"query holds id 5, but there are 2 queries; expected ids in 0\.\.1"),
        (dict(grade=torch.tensor([0, 1, 4, 3])), r"grade holds 4; expected grades 0\.\.3"),
        (dict(grade=torch.tensor([0, 1, 2])),
         r"grade has 3 entries but features has 4 rows; expected one per row"),
        (dict(x=torch.zeros(4)), r"features has shape \(4,\); expected \(rows, features\)"),
        (dict(query=torch.tensor([0.0, 0.0, 1.0, 1.0])),
         r"query has shape \(4,\) and dtype torch.float32; expected one integer per row"),
        (dict(val=torch.tensor([0])), r"query 0 is named twice in train, val and test"),
        (dict(test=torch.tensor([7])), r"test names query 7, but there are 2 queries"),
        (dict(train=torch.tensor([], dtype=torch.long)), r"train names no query"),
    ]
    for change, msg in cases:
        with pytest.raises(DataError, match=msg):
            _rows(**change)
    d = tb_rank(**SMALL)
    judges = SimulatedTeachers(d)
    with pytest.raises(DataError, match=r"first holds row 400, but there are 400 rows"):
        judges.preferences([0, 400], [1, 2])
    with pytest.raises(DataError, match=r"pair 0 compares row 0 of query 0 with row 15 of "
                                        r"query 1; expected two candidates of the same query"):
        judges.preferences([0], [15])
    with pytest.raises(DataError, match=r"pair 1 compares row 3 with itself"):
        judges.preferences([0, 3], [1, 3])
    with pytest.raises(DataError, match=r"first has 2 row ids but second has 1"):
        judges.preferences([0, 1], [2])
    with pytest.raises(DataError, match=r"teacher must be an index in 0\.\.2, got 3"):
        judges.hard_labels(3)
    with pytest.raises(DataError, match=r"threshold must be a grade in 1\.\.3, got 0"):
        judges.hard_labels(0, 0)
    with pytest.raises(DataError, match=r"position_bias has 2 entries for 3 teachers"):
        SimulatedTeachers(d, position_bias=(0.1, 0.2))
    with pytest.raises(DataError, match=r"temperature\[1\] must be > 0, got 0"):
        SimulatedTeachers(d, temperature=(1.0, 0.0, 1.0))
    with pytest.raises(DataError, match=r"has no hidden relevance; expected generated data"):
        SimulatedTeachers(_rows())
    with pytest.raises(MentorError, match=r"num_queries must be a positive integer, got 0"):
        tb_rank(num_queries=0)
    with pytest.raises(DataError, match=r"grade_quantiles must be increasing numbers"):
        tb_rank(grade_quantiles=(0.5, 0.4))
    assert np.isfinite(d.relevance.numpy()).all()


def _naive_kept(train: list[int], n: int, seed: int) -> list[int]:
    """The documented rule, by hand: the first n of a seeded permutation of the training
    queries, in ascending order."""
    order = np.random.default_rng(seed).permutation(len(train)).tolist()
    return sorted(train[i] for i in order[:n])


def test_fewer_training_queries_keep_a_nested_seeded_subset_and_leave_val_and_test():
    d = tb_rank(**SMALL, seed=2)
    train = d.train.tolist()
    kept = {}
    for n in (1, 5, 10, len(train)):
        s = d.with_train_queries(n, seed=7)
        kept[n] = s.train.tolist()
        assert kept[n] == _naive_kept(train, n, 7)
        assert set(kept[n]) <= set(train) and len(set(kept[n])) == n
        assert torch.equal(s.val, d.val) and torch.equal(s.test, d.test)
        for k in ("x", "grade", "query", "relevance"):  # the rows are untouched
            assert torch.equal(getattr(s, k), getattr(d, k))
        assert s.cuts == d.cuts and s.meta["train_queries"] == n
    assert set(kept[1]) <= set(kept[5]) <= set(kept[10])  # nested for one seed
    assert kept[len(train)] == train  # all of them: the same data
    assert d.with_train_queries(5, seed=7).train.tolist() == kept[5]  # deterministic
    assert d.with_train_queries(5, seed=8).train.tolist() != kept[5]  # the seed draws them
    assert len(d.with_train_queries(np.int64(3)).train) == 3  # numpy integers are counts
    # only the kept queries' rows are training rows
    s = d.with_train_queries(4, seed=1)
    assert torch.equal(torch.unique(s.query[s.rows("train")]), s.train)


def test_fewer_training_queries_refuse_a_bad_count_in_one_sentence():
    d = tb_rank(**SMALL)
    with pytest.raises(DataError, match=r"train_queries must be at most 20 \(the training "
                                        r"queries\), got 21"):
        d.with_train_queries(21)
    for bad in (0, True, 2.0):
        with pytest.raises(MentorError, match=rf"train_queries must be a positive integer, "
                                              rf"got {bad!r}"):
            d.with_train_queries(bad)


def test_counts_accept_numpy_integers_and_refuse_a_negative_noise():
    assert _same(tb_rank(**{**SMALL, "num_queries": np.int64(40)}), tb_rank(**SMALL))
    with pytest.raises(MentorError, match=r"label_noise must be >= 0, got -0\.1"):
        tb_rank(label_noise=-0.1)
