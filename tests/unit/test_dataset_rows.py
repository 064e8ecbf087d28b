"""Map-style datasets read through a DataLoader (:mod:`mentor.data.rows`): the engine draws
each step's row ids itself and only asks the source for their inputs, so a DataLoader-fed
run -- with or without worker processes -- trains on exactly the batches an in-memory run
of the same rows does: the same student, bit for bit, for online and cached KD and for a
semi-supervised preset with weak/strong views; a resume mid-epoch is exact too."""

from __future__ import annotations

import os

import pytest
import torch
from torch.utils.data import Dataset

from mentor.data import DatasetRows, Split, from_datasets
from mentor.errors import DataError, MentorError
from mentor.methods import get_method
from mentor.models import mlp
from mentor.recipe import TrainSpec


class Rows(Dataset):
    """(input, label) items, and which processes read them (worker processes write their pid
    into a shared tensor)."""

    def __init__(self, x, y):
        self.x, self.y = x, y
        self.readers = torch.zeros(len(x), dtype=torch.long).share_memory_()

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        self.readers[i] = os.getpid()
        return self.x[i], int(self.y[i])


def _as_dataset(split: Split, workers: int) -> Split:
    """The same rows, labels and labeled mask, with the inputs read from a dataset."""
    return Split(DatasetRows(Rows(split.x, split.y), num_workers=workers), split.y,
                 split.labeled, split.source_index, split.weak_y)


def _train(method, splits, teacher, train, val, spec, **kw):
    plan = get_method(method).plan(**kw)
    torch.manual_seed(1)
    student = mlp(splits.input_shape, 10, hidden=[16])
    return plan.fit(student, train, val, spec=spec, seed=3, num_outputs=10, teacher=teacher,
                    input_shape=splits.input_shape)


def _same(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


CASES = {
    "kd-online": ("kd", dict(epochs=2, batch_size=32, cache_teacher="never", select="best_val")),
    "kd-cached": ("kd", dict(epochs=2, batch_size=32, cache_teacher="always", select="last")),
    "fixmatch": ("fixmatch", dict(epochs=1, batch_size=8, unlabeled_ratio=3, lr=3e-3,
                                  collapse_steps=0, select="last")),
}


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("case", sorted(CASES))
def test_a_dataset_fed_run_equals_the_in_memory_run(splits, teacher, case, workers):
    method, spec = CASES[case]
    spec = TrainSpec(**spec)
    memory = _train(method, splits, teacher, splits.train, splits.val, spec)
    train, val = _as_dataset(splits.train, workers), _as_dataset(splits.val, workers)
    loaded = _train(method, splits, teacher, train, val, spec)
    assert _same(loaded.model, memory.model)
    assert repr(loaded.history) == repr(memory.history)  # NaN-aware (no admitted rows)
    assert loaded.teacher_cached == (case == "kd-cached")
    readers = set(train.x.dataset.readers.tolist())
    if workers:  # the rows were read by worker processes, not by the training process
        assert os.getpid() not in readers and len(readers - {0}) >= 1
    else:
        assert readers - {0} == {os.getpid()}


def test_a_dataset_fed_run_resumes_mid_epoch_bit_for_bit(splits, teacher, tmp_path):
    spec = TrainSpec(epochs=2, batch_size=32, schedule="cosine", select="best_val")
    train, val = _as_dataset(splits.train, 2), _as_dataset(splits.val, 0)
    full = _train("kd", splits, teacher, train, val, spec)
    plan = get_method("kd").plan()
    torch.manual_seed(1)
    part = plan.fit(mlp(splits.input_shape, 10, hidden=[16]), train, val, spec=spec, seed=3,
                    num_outputs=10, teacher=teacher, checkpoint_dir=tmp_path, max_steps=13)
    assert not part.finished
    torch.manual_seed(7)  # a fresh process builds the model anew
    resumed = plan.fit(mlp(splits.input_shape, 10, hidden=[16]), train, val, spec=spec,
                       seed=3, num_outputs=10, teacher=teacher, checkpoint_dir=tmp_path,
                       resume=True)
    assert resumed.finished and _same(resumed.model, full.model)
    assert resumed.history == full.history


def test_from_datasets_reads_the_labels_and_keeps_no_inputs(splits):
    train_ds, val_ds = Rows(splits.train.x, splits.train.y), Rows(splits.val.x, splits.val.y)
    labeled = splits.train.labeled
    made = from_datasets(train_ds, val_ds, num_classes=10, labeled=labeled)
    assert torch.equal(made.train.y, splits.train.y) and torch.equal(made.val.y, splits.val.y)
    assert torch.equal(made.train.labeled, labeled)
    assert made.train.x.in_memory is None and made.input_shape == (64,)
    assert made.test.x.dataset is val_ds  # no test set given: validation stands in
    assert made.describe() == "datasets: train 1079 (324 labeled), val 359, test 359, 10 classes"


def test_a_dataset_without_labels_in_its_items_needs_labels(splits):
    class Inputs(Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            return torch.zeros(3)

    with pytest.raises(MentorError, match=r"must be \(input, label, ...\)"):
        from_datasets(Inputs(), Inputs(), num_classes=2)
    made = from_datasets(Inputs(), Inputs(), num_classes=2,
                         labels={"train": [0, 1, 0, 1], "val": [1, 0, 1, 0],
                                 "test": [0, 0, 1, 1]})
    assert made.train.y.tolist() == [0, 1, 0, 1]


@pytest.mark.parametrize("labels, labeled, match", [
    ({"train": [0, 1, 5]}, None, r"train dataset row 2 has label 5; expected a class index"),
    ({"train": [0, 1]}, None, r"labels\['train'\] has shape \(2,\); expected \(3,\)"),
    (None, [True, False], r"labeled has shape \(2,\); expected \(3,\)"),
])
def test_from_datasets_refuses_bad_labels_in_one_sentence(labels, labeled, match):
    ds = Rows(torch.zeros(3, 2), torch.tensor([0, 1, 0]))
    with pytest.raises(DataError, match=match):
        from_datasets(ds, ds, num_classes=2, labels=labels, labeled=labeled)


@pytest.mark.parametrize("bad, match", [
    (iter([1, 2]), "has no len\\(\\); expected a map-style dataset"),
    ([], "the dataset is empty"),
])
def test_a_source_that_is_not_a_map_style_dataset_is_refused(bad, match):
    with pytest.raises(MentorError, match=match):
        DatasetRows(bad)


@pytest.mark.parametrize("field, value, match", [
    ("num_workers", -1, "num_workers -1 is not a count; expected an integer >= 0"),
    ("num_workers", True, "num_workers True is not a count"),
    ("prefetch_factor", 0, "prefetch_factor 0 is not a count; expected an integer >= 1"),
    ("prefetch_factor", 2.5, "prefetch_factor 2.5 is not a count"),
])
def test_bad_loader_settings_are_refused_in_one_sentence(field, value, match):
    with pytest.raises(MentorError, match=match):
        DatasetRows([torch.zeros(2)], **{field: value})


def test_parts_that_read_every_input_refuse_a_dataset(splits, teacher):
    """A refiner that clusters the inputs (bind_inputs) cannot run on rows it never holds."""
    from mentor.registry import REFINERS
    train, val = _as_dataset(splits.train, 0), _as_dataset(splits.val, 0)
    refiner = REFINERS.get("cluster_labels")()
    plan = get_method("kd").plan()
    with pytest.raises(MentorError, match="reads every training input up front"):
        plan.fit(mlp(splits.input_shape, 10, hidden=[16]), train, val,
                 spec=TrainSpec(epochs=1), seed=0, num_outputs=10, teacher=teacher,
                 refiners=[refiner])
