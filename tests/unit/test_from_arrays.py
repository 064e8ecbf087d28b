"""mentor.data.from_arrays: the user's labeled arrays split stratified, unlabeled rows appended
to train with label -1, standardized with the training rows' statistics; bad arrays refused
in one sentence naming the data set."""

import numpy as np
import pytest
import torch

from mentor.data import from_arrays, load_source, make_splits
from mentor.errors import DataError


def test_labeled_rows_split_like_make_splits_and_unlabeled_rows_appended():
    data = load_source("iris")
    rng = np.random.default_rng(0)
    extra = rng.normal(5.0, 1.0, size=(40, 4))
    s = from_arrays(torch.from_numpy(data.x), data.y, unlabeled=extra, name="mine")
    ref = make_splits(data)
    n = len(ref.train)
    assert torch.equal(s.train.x[:n], ref.train.x) and torch.equal(s.val.x, ref.val.x)
    assert s.train.y[n:].tolist() == [-1] * 40 and not s.train.labeled[n:].any()
    want = (extra - ref.mean) / ref.std  # the training rows' mean and std
    np.testing.assert_allclose(s.train.x[n:].numpy(), want, rtol=1e-6, atol=1e-6)
    assert s.describe().startswith("mine: train 130 (90 labeled, 40 unlabeled)")


@pytest.mark.parametrize("unlabeled, needle", [
    (np.zeros((3, 5)), "mine: unlabeled has rows with 5 features; expected 4 like the data"),
    (np.full((3, 4), np.inf), "mine: unlabeled has rows with NaN or infinite values"),
    (np.zeros((0, 4)), "mine: unlabeled must have shape (rows, features...) with at least one"),
    (np.zeros(4), "mine: unlabeled must have shape (rows, features...)"),
])
def test_bad_unlabeled_rows_are_refused(unlabeled, needle):
    data = load_source("iris")
    with pytest.raises(DataError) as e:
        from_arrays(data.x, data.y, unlabeled=unlabeled, name="mine")
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_bad_labels_are_refused_like_a_data_file():
    with pytest.raises(DataError, match="mine: label -1 at row 0 is negative"):
        from_arrays(np.zeros((6, 2)), np.array([-1, 0, 1, 0, 1, 1]), name="mine")
