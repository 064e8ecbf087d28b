"""Training on TB-STEREO (METHODS.md §53 S³'s CPU experiment): with no pseudo-label weight
every teacher arm is the photometric arm exactly; runs are deterministic; selection reads
the validation scenes only; and, on a quick setting (120 scenes, 60 steps), the S³ student
beats the same student without baseline rescaling on 3 of 3 seeds while the S³ teacher,
reading the wide pair, is far more accurate than its student on the pixels the student's
pair hides but the wide pair sees (the mechanism). The accuracy race against the
photometric and symmetric arms is measured, not asserted (benchmarks/measures/s3_stereo.py)."""

import dataclasses

import pytest
import torch

from mentor.errors import MentorError
from mentor.stereo import (ARMS, compare_arms, epe, occlusion_weights, predict,
                           pseudo_labels, rescale, right_disparity, tb_stereo, tiny_stereo,
                           train_stereo)

QUICK = dict(steps=60, warmup=20, eval_every=20, batch_size=8)
TINY = dict(steps=6, warmup=2, eval_every=3, batch_size=4)


@pytest.fixture(scope="module")
def small():
    return tb_stereo(30, seed=7)


def test_s3_beats_no_rescaling_and_its_teacher_sees_what_the_student_cannot():
    for seed in (0, 1, 2):
        data = tb_stereo(120, seed=seed)
        arms = compare_arms(data, seed, arms=("no_rescale", "s3"), **QUICK)
        s3, plain = arms["s3"].test["epe"], arms["no_rescale"].test["epe"]
        assert s3 < plain - 0.1, (seed, s3, plain)
        ids = data.val
        hidden = data.occluded_b[ids] & ~data.occluded_2b[ids]
        gt = data.disparity[ids]
        teacher = epe(rescale(predict(arms["s3"].teacher, data, ids, "view_2b"), 1, 2), gt,
                      hidden)
        student = epe(predict(arms["s3"].model, data, ids, "view_b"), gt, hidden)
        assert teacher < 0.5 * student, (seed, teacher, student)


def test_each_arm_s_teacher_reads_its_pair_and_only_s3_rescales(small):
    torch.manual_seed(0)
    teacher = tiny_stereo()
    batch = small.train[:3]
    ref = small.ref[batch]
    with torch.no_grad():
        wide = teacher(ref, small.view_2b[batch], 16)
        narrow = teacher(ref, small.view_b[batch], 8)
        w_wide = occlusion_weights(wide, right_disparity(teacher, ref, small.view_2b[batch],
                                                         16), 1.0, 0.1)
    for arm, want in (("s3", wide / 2), ("no_rescale", wide), ("symmetric", narrow)):
        d, w = pseudo_labels(teacher, small, batch, arm)
        assert torch.allclose(d, want, atol=1e-6), arm
        assert not d.requires_grad
    assert torch.equal(pseudo_labels(teacher, small, batch, "s3")[1], w_wide)
    with pytest.raises(MentorError, match="arm must be one with a teacher"):
        pseudo_labels(teacher, small, batch, "photometric")


def test_pseudo_weight_zero_is_the_photometric_arm_exactly(small):
    base = train_stereo(small, "photometric", seed=1, **TINY)
    for arm in ("symmetric", "no_rescale", "s3"):
        other = train_stereo(small, arm, seed=1, pseudo_weight=0.0, **TINY)
        for p, q in zip(base.model.parameters(), other.model.parameters()):
            assert torch.equal(p, q), arm
        assert other.test == base.test
    assert base.teacher is None and ARMS["s3"].rescaled and not ARMS["no_rescale"].rescaled


def test_training_is_deterministic_and_selection_reads_val_only(small):
    a = train_stereo(small, "s3", seed=2, **TINY)
    b = train_stereo(small, "s3", seed=2, **TINY)
    assert a.best_step == b.best_step and a.test == b.test and a.history == b.history
    for p, q in zip(a.model.parameters(), b.model.parameters()):
        assert torch.equal(p, q)
    assert [s for s, _ in a.history] == [3, 6]
    assert a.val_epe == min(v for _, v in a.history)
    disparity = small.disparity.clone()
    disparity[small.test] = 0.0  # other test labels: the selected step must not move
    other = dataclasses.replace(small, disparity=disparity)
    c = train_stereo(other, "s3", seed=2, **TINY)
    assert c.best_step == a.best_step and c.history == a.history and c.test != a.test


def test_bad_arguments_are_one_sentence(small):
    with pytest.raises(MentorError, match="arm must be one of photometric, symmetric, "
                                          "no_rescale, s3, got 'mean'"):
        train_stereo(small, "mean")
    with pytest.raises(MentorError, match="steps must be a positive integer, got 0"):
        train_stereo(small, steps=0)
    with pytest.raises(MentorError, match=r"momentum must be in \[0, 1\], got 2"):
        train_stereo(small, momentum=2)
    with pytest.raises(MentorError, match="pseudo_weight must be >= 0, got -1"):
        train_stereo(small, pseudo_weight=-1)
    with pytest.raises(MentorError, match="arms names 'x'"):
        compare_arms(small, 0, arms=("s3", "x"))
