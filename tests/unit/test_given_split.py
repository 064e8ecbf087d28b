"""``mentor.data.from_arrays(x, y, split=...)``: the user's own train / val / test rows (a
teacher that saw 80 % of the rows used to be scored on a drawn "test" split it had seen).
Rows keep their split and order, statistics come from the training rows only, and bad
splits are refused in one sentence naming the data set."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mentor.data import from_arrays
from mentor.errors import DataError


def _data(n=30):
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, size=(n, 4))
    y = np.arange(n) % 3
    split = np.array(["train", "train", "train", "val", "test"] * (n // 5), dtype=object)
    return x, y, split


def test_rows_keep_their_split_and_the_statistics_are_the_training_rows():
    x, y, split = _data()
    x[split == "test"] += 100.0  # far-off test rows must not move the statistics
    s = from_arrays(x, y, split=split, name="mine")
    tr, te = split == "train", split == "test"
    np.testing.assert_allclose(s.mean, x[tr].mean(0), rtol=1e-5)
    np.testing.assert_allclose(s.std, x[tr].std(0), rtol=1e-5)
    for part, rows in (("train", tr), ("val", split == "val"), ("test", te)):
        got = getattr(s, part)
        want = (x[rows] - x[tr].mean(0)) / x[tr].std(0)
        np.testing.assert_allclose(got.x.numpy(), want, rtol=1e-5, atol=1e-5)
        assert got.y.tolist() == y[rows].tolist()
    assert s.describe() == "mine: train 18 (18 labeled), val 6, test 6, 3 classes"
    assert s.teacher_inputs == "raw"


def test_a_given_split_takes_unlabeled_rows_and_tensors():
    x, y, split = _data()
    u = np.zeros((5, 4))
    s = from_arrays(torch.from_numpy(x), torch.from_numpy(y), split=list(split), unlabeled=u)
    assert len(s.train) == 23 and s.train.y[-5:].tolist() == [-1] * 5
    raw = from_arrays(x, y, split=split, standardize=False)
    assert raw.mean is None and torch.equal(raw.test.x, torch.from_numpy(
        x[split == "test"].astype(np.float32)))


@pytest.mark.parametrize("edit, needle", [
    (lambda x, y, s: (x, y, s[:-1]),
     "mine: split has shape (29,); expected (30,), one of 'train', 'val', 'test' per row of x"),
    (lambda x, y, s: (x, y, np.where(np.arange(30) == 7, "valid", s)),
     "mine: split has 'valid' at row 7; expected 'train', 'val' or 'test'"),
    (lambda x, y, s: (x, y, np.where(s == "val", "train", s)),
     "mine: split has no 'val' row; expected at least one row in each of train, val and test"),
    (lambda x, y, s: (x, np.where(s == "train", y % 2, y), s),
     "mine: split gives class 2 (4 rows) no 'train' row; expected at least one training row "
     "per class"),
])
def test_bad_splits_are_one_sentence(edit, needle):
    x, y, split = edit(*_data())
    with pytest.raises(DataError) as e:
        from_arrays(x, y, split=split, name="mine")
    assert str(e.value) == needle
