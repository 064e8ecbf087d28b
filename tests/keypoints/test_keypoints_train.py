"""Training on TB-KPT: deterministic; degenerate weights reduce to the simpler arm
exactly (unlabeled weight 0 = supervised, reviewer weight 0 = mean teacher); selection
reads the validation keypoints only; bad arguments in one sentence. The accuracy race is
measured, not asserted (benchmarks/measures/trs_keypoints.py)."""

import dataclasses

import pytest
import torch

from mentor.errors import MentorError
from mentor.keypoints import compare_arms, tb_kpt, train_keypoints

TINY = dict(steps=6, eval_every=3, rampup=2, review_every=2, batch_size=4,
            unlabeled_batch=4, width=4)


@pytest.fixture(scope="module")
def small():
    return tb_kpt(80, seed=5, val=10, test=10, labeled_fraction=0.2)


def _same(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.model.state_dict().values(),
                                                 b.model.state_dict().values()))


def test_runs_are_deterministic(small):
    a = train_keypoints(small, "trs", seed=1, **TINY)
    b = train_keypoints(small, "trs", seed=1, **TINY)
    assert _same(a, b) and a.history == b.history and a.test == b.test
    assert a.reviewer_replaced >= 1


def test_degenerate_weights_reduce_to_the_simpler_arm(small):
    arms = compare_arms(small, 2, **TINY)
    off = train_keypoints(small, "mean_teacher", seed=2, unsup_weight=0.0, **TINY)
    assert _same(off, arms["supervised"])
    no_rev = train_keypoints(small, "trs", seed=2, reviewer_weight=0.0, **TINY)
    assert _same(no_rev, arms["mean_teacher"])
    assert not _same(arms["trs"], arms["mean_teacher"])


def test_selection_reads_validation_only(small):
    kp = small.keypoints.clone()
    kp[small.test] = 11.0
    kp[small.unlabeled] = 3.0
    moved = dataclasses.replace(small, keypoints=kp)
    a = train_keypoints(small, "trs", seed=0, **TINY)
    b = train_keypoints(moved, "trs", seed=0, **TINY)
    assert _same(a, b) and a.history == b.history


def test_bad_arguments_raise_one_sentence(small):
    with pytest.raises(MentorError, match="arm must be one of supervised, mean_teacher, trs"):
        train_keypoints(small, "fixmatch")
    with pytest.raises(MentorError, match="momentum must be in \\[0, 1\\], got 1.5"):
        train_keypoints(small, "trs", momentum=1.5)
    with pytest.raises(MentorError, match="review_every must be a positive integer"):
        train_keypoints(small, "trs", review_every=0, steps=1)
