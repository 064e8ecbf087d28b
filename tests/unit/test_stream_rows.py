"""Streams (:class:`mentor.data.StreamRows`): rows read front to back, no random access. An
epoch's order shuffles within windows of consecutive rows, so one pass of the stream serves
it; a stream-fed run equals the in-memory run given the same order, bit for bit."""

from __future__ import annotations

import pytest
import torch

from mentor.data import Split, StreamRows, TensorRows
from mentor.errors import MentorError
from mentor.methods import get_method
from mentor.models import mlp
from mentor.recipe import TrainSpec


class Recorded:
    """A stream over the rows of ``x``, counting its passes and the rows it yielded."""

    def __init__(self, x, y=None, stop=None):
        self.x, self.y, self.stop = x, y, stop
        self.passes, self.yielded = 0, 0

    def __call__(self):
        self.passes += 1
        for i in range(len(self.x) if self.stop is None else self.stop):
            self.yielded += 1
            yield self.x[i] if self.y is None else (self.x[i], int(self.y[i]))


@pytest.mark.parametrize("n, window", [(10, 3), (10, 10), (10, 50), (1, 1)])
def test_an_epoch_order_shuffles_only_within_windows(n, window):
    rows = StreamRows(Recorded(torch.zeros(n, 2)), n, window=window)
    order = rows.order(torch.Generator().manual_seed(0))
    assert sorted(order.tolist()) == list(range(n))
    for start in range(0, n, window):  # each window holds its own rows
        assert sorted(order[start:start + window].tolist()) == list(range(start,
                                                                         min(start + window, n)))
    if window >= n:  # one window: the permutation an in-memory source draws
        assert torch.equal(order, TensorRows(torch.zeros(n, 2)).order(
            torch.Generator().manual_seed(0)))


def test_batches_read_the_stream_once_in_window_order():
    x = torch.arange(40, dtype=torch.float32).unsqueeze(1)
    stream = Recorded(x)
    rows = StreamRows(stream, 40, window=8)
    order = rows.order(torch.Generator().manual_seed(1))
    got = list(rows.batches(order.split(6)))
    assert torch.equal(torch.cat(got).squeeze(1), order.float())
    assert stream.passes == 2  # one for the input shape, one for the epoch
    assert stream.yielded == 1 + 40


def test_a_row_whose_window_has_passed_is_refused():
    rows = StreamRows(Recorded(torch.zeros(20, 1)), 20, window=4)
    with pytest.raises(MentorError, match="row 1 of a stream was asked for after its window"):
        list(rows.batches([torch.tensor([9, 10]), torch.tensor([1])]))


def test_a_stream_shorter_than_its_n_is_named():
    rows = StreamRows(Recorded(torch.zeros(20, 1), stop=12), 20, window=4)
    with pytest.raises(MentorError, match="the stream ended after 12 rows; expected 20"):
        list(rows.batches(torch.arange(20).split(5)))


@pytest.mark.parametrize("kwargs, match", [
    (dict(open=[1, 2], n=2), "is not callable"),
    (dict(open=lambda: iter(()), n=2), "the stream is empty"),
    (dict(open=lambda: iter([torch.zeros(1)]), n=0), "n 0 is not a count"),
    (dict(open=lambda: iter([torch.zeros(1)]), n=1, window=0), "window 0 is not a count"),
])
def test_a_bad_stream_is_refused_in_one_sentence(kwargs, match):
    with pytest.raises(MentorError, match=match):
        StreamRows(**kwargs)


def _kd(splits, teacher, train, **spec):
    torch.manual_seed(1)
    return get_method("kd").plan().fit(
        mlp(splits.input_shape, 10, hidden=[16]), train, splits.val, seed=3, num_outputs=10,
        teacher=teacher, spec=TrainSpec(epochs=2, batch_size=32, select="last", **spec))


@pytest.mark.parametrize("cache", ["never", "always"])
def test_a_stream_fed_run_equals_the_in_memory_run_in_the_same_order(splits, teacher,
                                                                      monkeypatch, cache):
    train = splits.train
    stream = Recorded(train.x, train.y)
    rows = StreamRows(stream, len(train), window=100)
    loaded = _kd(splits, teacher, Split(rows, train.y, train.labeled), cache_teacher=cache)
    # passes: the input shape, two 2-row examples (the plan's and the task's checks), 2 epochs
    # and the teacher cache
    assert stream.passes == 3 + 2 + int(cache == "always")
    assert stream.yielded == 1 + 2 * 2 + (2 + int(cache == "always")) * len(train)
    # the same rows in memory, drawn in the stream's windowed order
    monkeypatch.setattr(TensorRows, "order", lambda self, g: rows.order(g))
    memory = _kd(splits, teacher, train, cache_teacher=cache)
    for k, v in memory.model.state_dict().items():
        assert torch.equal(v, loaded.model.state_dict()[k]), k
    assert loaded.history == memory.history


def test_labels_are_read_from_the_stream():
    y = torch.tensor([2, 0, 1, 1])
    assert StreamRows(Recorded(torch.zeros(4, 1), y), 4).labels().tolist() == y.tolist()


def test_semi_supervised_streams_of_labeled_and_unlabeled_rows_need_random_access(splits):
    train = splits.train  # 30 % labeled
    rows = StreamRows(Recorded(train.x), len(train))
    plan = get_method("fixmatch").plan()
    with pytest.raises(MentorError, match="its rows are a stream read front to back"):
        plan.fit(mlp(splits.input_shape, 10, hidden=[16]), Split(rows, train.y, train.labeled),
                 splits.val, seed=0, num_outputs=10,
                 spec=TrainSpec(epochs=1, batch_size=8, unlabeled_ratio=3))
