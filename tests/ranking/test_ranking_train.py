"""The student scorer on TB-RANK (METHODS.md §25's CPU experiment): model selection reads
the validation queries only, runs are deterministic, InfoNCE weight 0 is plain soft BCE, and
the effect: soft labels from the aggregated judges give a higher test nDCG@5 than the least
noisy judge's hard labels."""

import dataclasses

import pytest
import torch

from mentor.errors import DataError, MentorError
from mentor.ranking import (SimulatedTeachers, compare_labels, soft_labels, tb_rank,
                            train_scorer)

QUICK = dict(num_queries=120, split=(0.25, 0.25, 0.5))  # 30 training queries
MLP = dict(hidden=32, lr=0.01, epochs=60)


def _weights(result):
    return [p.detach().clone() for p in result.model.parameters()]


def test_soft_labels_of_the_aggregated_judges_beat_one_judges_hard_labels():
    gaps = []
    for seed in (0, 1, 2):
        data = tb_rank(**QUICK, seed=seed)
        judges = SimulatedTeachers(data, seed=seed)
        hard = train_scorer(data, judges.hard_labels(0), seed=seed, **MLP)
        soft = train_scorer(data, soft_labels(data, judges).labels, seed=seed, **MLP)
        gaps.append(soft.test_ndcg - hard.test_ndcg)
    assert min(gaps) > 0 and sum(gaps) / 3 > 0.005, gaps


def test_model_selection_reads_the_validation_queries_only():
    data = tb_rank(num_queries=60, seed=1)
    y = SimulatedTeachers(data, seed=1).hard_labels(0)
    base = train_scorer(data, y, epochs=25, seed=0)
    test_rows = data.rows("test")
    grade = data.grade.clone()
    grade[test_rows] = grade[test_rows].flip(0)  # other test grades
    other_test = train_scorer(dataclasses.replace(data, grade=grade), y, epochs=25, seed=0)
    assert (other_test.best_epoch, other_test.val_ndcg) == (base.best_epoch, base.val_ndcg)
    assert all(torch.equal(a, b) for a, b in zip(_weights(base), _weights(other_test)))
    assert other_test.test_ndcg != base.test_ndcg
    grade = data.grade.clone()
    val_rows = data.rows("val")
    grade[val_rows] = grade[val_rows].flip(0)
    other_val = train_scorer(dataclasses.replace(data, grade=grade), y, epochs=25, seed=0)
    assert (other_val.best_epoch, other_val.val_ndcg) != (base.best_epoch, base.val_ndcg)


def test_runs_are_deterministic_and_nce_weight_zero_is_plain_soft_bce():
    data = tb_rank(num_queries=40, seed=0)
    judges = SimulatedTeachers(data, seed=0)
    a = compare_labels(data, judges, seed=3, epochs=8, hidden=8)
    b = compare_labels(data, judges, seed=3, epochs=8, hidden=8, nce_weight=0.0)
    assert set(a) == {"hard", "majority", "soft", "soft_nce"}
    for arm in ("hard", "majority", "soft"):
        assert all(torch.equal(x, y) for x, y in zip(_weights(a[arm]), _weights(b[arm])))
    # the majority arm is the student trained on the judges' majority vote
    vote = train_scorer(data, judges.majority_labels(), seed=3, epochs=8, hidden=8)
    assert all(torch.equal(x, y) for x, y in zip(_weights(vote), _weights(a["majority"])))
    assert all(torch.equal(x, y) for x, y in zip(_weights(b["soft_nce"]), _weights(b["soft"])))
    assert not all(torch.equal(x, y) for x, y in zip(_weights(a["soft_nce"]),
                                                     _weights(a["soft"])))
    for r in a.values():
        assert 0 <= r.test_map <= 1 and 0 <= r.test_ndcg <= 1 and 0 <= r.test_ece <= 1


def test_mini_batches_of_queries_train_too():
    data = tb_rank(num_queries=40, seed=0)
    y = SimulatedTeachers(data, seed=0).hard_labels(0)
    full = train_scorer(data, y, epochs=5, seed=0)
    mini = train_scorer(data, y, epochs=5, seed=0, batch_queries=4)
    assert not all(torch.equal(x, z) for x, z in zip(_weights(full), _weights(mini)))
    again = train_scorer(data, y, epochs=5, seed=0, batch_queries=4)
    assert all(torch.equal(x, z) for x, z in zip(_weights(mini), _weights(again)))


def test_bad_input_is_one_sentence():
    data = tb_rank(num_queries=20)
    with pytest.raises(DataError, match=r"targets has shape \(3,\); expected \(400,\)"):
        train_scorer(data, torch.zeros(3))
    with pytest.raises(MentorError, match=r"hidden must be an integer >= 0, got -1"):
        train_scorer(data, torch.zeros(400), hidden=-1)
    with pytest.raises(MentorError, match=r"epochs must be a positive integer, got 0"):
        train_scorer(data, torch.zeros(400), epochs=0)
    with pytest.raises(DataError, match=r"targets holds 2\.0; expected soft labels in \[0, 1\]"):
        train_scorer(data, torch.full((400,), 2.0), epochs=1)
    with pytest.raises(MentorError, match=r"nce_weight must be >= 0, got -0\.5"):
        train_scorer(data, torch.zeros(400), nce_weight=-0.5)
    with pytest.raises(MentorError, match=r"batch_queries must be a positive integer, got 0"):
        train_scorer(data, torch.zeros(400), batch_queries=0)
