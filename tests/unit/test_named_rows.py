"""Named-tensor inputs (``mentor.data.NamedRows``): a split's ``x`` may be a dict of tensors,
which the task passes to the student and a module teacher as keyword arguments (a Hugging
Face model's ``input_ids`` and ``attention_mask``), an output's ``.logits`` unwrapped."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from mentor.data import NamedRows
from mentor.data.rows import as_rows
from mentor.engine import fit
from mentor.engine.evaluate import evaluate
from mentor.errors import MentorError
from mentor.methods import get_method
from mentor.models import mlp
from mentor.recipe import TrainSpec
from mentor.teachers import ModuleTeacher


class _Keyword(nn.Module):
    """Called as ``net(features=..., mask=...)`` and returning an object with ``.logits``,
    as Hugging Face models are; ``net(x)`` fails."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, *, features, mask):
        return SimpleNamespace(logits=self.net(features * mask))  # mask is 1: exact


def _student(seed=1):
    torch.manual_seed(seed)
    return mlp((8, 8), 10, hidden=[16])


def _named(split):
    """The split with its inputs as named tensors (features and an all-ones mask)."""
    x = split.x
    return replace(split, x={"features": x, "mask": torch.ones_like(x)})


def _fit(student, train, val, teacher, cache="never"):
    plan = get_method("kd").plan()
    return fit(student, train, val, objectives=plan.objectives, teacher=teacher,
               spec=TrainSpec(epochs=2, batch_size=32, select="best_val", cache_teacher=cache),
               seed=3, num_outputs=10)


@pytest.mark.parametrize("cache", ["never", "always"])
def test_named_inputs_train_like_one_tensor(splits, teacher, cache):
    """Student, teacher (online and cached), pseudo-label monitor and validation all take
    the named tensors: the same network trains to the same weights and history, bit for bit,
    as on the one tensor."""
    plain = _fit(_student(), splits.train, splits.val, teacher, cache)
    named_teacher = ModuleTeacher(_Keyword(teacher.module), 10)
    named = _fit(_Keyword(_student()), _named(splits.train), _named(splits.val),
                 named_teacher, cache)
    a, b = plain.model.state_dict(), named.model.net.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert plain.history == named.history
    assert len(named.history["pl_precision"]) == 2  # the monitor judged the pseudo-labels


def test_evaluate_reads_named_rows(splits, teacher):
    named = _Keyword(teacher.module)
    val = splits.val
    want = evaluate(teacher.module, val.x, val.y)
    got = evaluate(named, _named(val).x, val.y)
    assert got == want and got["n"] == len(val)


def test_named_rows_batches_are_the_rows_of_every_tensor():
    x = {"a": torch.arange(10.0).view(5, 2), "b": torch.arange(5)}
    rows = as_rows(x)
    assert isinstance(rows, NamedRows) and len(rows) == 5 and rows.in_memory is None
    ids = torch.tensor([4, 0, 2])
    batch = rows.take(ids)
    assert set(batch) == {"a", "b"}
    assert torch.equal(batch["a"], x["a"][ids]) and torch.equal(batch["b"], x["b"][ids])
    assert [torch.equal(b["b"], x["b"][i]) for b, i in
            zip(rows.batches([ids[:2], ids[2:]]), [ids[:2], ids[2:]])] == [True, True]


@pytest.mark.parametrize("x, says", [
    ({}, "empty dict"),
    ({"a": torch.zeros(3, 2), "b": torch.zeros(4)}, "different row counts"),
    ({"a": [1, 2, 3]}, "named input 'a' is a list"),
    ({"a": torch.tensor(1.0)}, "0 dimensions"),
])
def test_bad_named_inputs_are_refused_in_one_sentence(x, says):
    with pytest.raises(MentorError, match=says):
        NamedRows(x)


def test_views_on_named_inputs_are_refused(splits, teacher):
    """Augmentations transform one input tensor: a method with views says so before
    training, naming the inputs."""
    plan = get_method("kd").plan()
    with pytest.raises(MentorError, match="named tensors \\(features, mask\\)"):
        fit(_Keyword(_student()), _named(splits.train), _named(splits.val),
            objectives=plan.objectives, teacher=ModuleTeacher(_Keyword(teacher.module), 10),
            spec=TrainSpec(epochs=1, batch_size=32), seed=0, num_outputs=10,
            augment={"student": "weak"})
