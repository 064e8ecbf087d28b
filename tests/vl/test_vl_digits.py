"""The testbed: the teacher's rows and the student's rows partition the 1,797 digits; the
labeled rows are the requested number per class."""

import pytest
import torch

from mentor.errors import MentorError
from mentor.vl import vl_digits


def test_teacher_and_student_rows_partition_the_digits():
    d = vl_digits(1)
    sp = d.splits
    assert len(d.clip_x) + len(sp.train) + len(sp.val) + len(sp.test) == 1797
    assert (len(d.clip_x), len(sp.val), len(sp.test)) == (400, 100, 400)
    everything = torch.cat([d.clip_x, sp.train.x, sp.val.x, sp.test.x])
    assert float(everything.min()) >= 0 and float(everything.max()) <= 1


@pytest.mark.parametrize("per_class", [1, 3])
def test_labels_per_class_are_labeled(per_class):
    train = vl_digits(0, labels_per_class=per_class).splits.train
    counts = torch.bincount(train.y[train.labeled], minlength=10)
    assert counts.tolist() == [per_class] * 10
    assert (train.y[~train.labeled] == -1).all()


def test_every_row_labeled_and_seeds_differ():
    train = vl_digits(0, labels_per_class=None).splits.train
    assert bool(train.labeled.all())
    assert not torch.equal(vl_digits(0).clip_x, vl_digits(1).clip_x)


def test_too_many_held_out_rows_is_one_sentence():
    with pytest.raises(MentorError, match="expected fewer than 1797"):
        vl_digits(0, clip_rows=1000, test_rows=800)
