"""EMA buffer policies (``mentor.updates.EMA(buffers=...)``): parameters always blend as
``m·θ_t + (1 − m)·θ_s``; buffers are copied from the student (``'copy'``, USB/semilearn's EMA),
averaged when float (``'ema'``) or left alone (``'keep'``, the Mean Teacher code's
``update_ema_variables``, which blends ``parameters()`` only)."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from mentor.errors import ParameterError
from mentor.updates import EMA

M = 0.75


def _pair():
    """A student with BatchNorm whose running statistics have moved, and a teacher copied from
    it earlier (different parameters and buffers)."""
    torch.manual_seed(0)
    student = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)).double()
    teacher = copy.deepcopy(student)
    with torch.no_grad():
        for p in teacher.parameters():
            p.add_(torch.randn_like(p))
    student.train()
    for _ in range(3):
        student(torch.randn(8, 3, dtype=torch.float64) * 2 + 1)
    return teacher, student


def _snapshot(module):
    return ([p.detach().clone() for p in module.parameters()],
            [b.detach().clone() for b in module.buffers()])


@pytest.mark.parametrize("policy", ["copy", "ema", "keep"])
def test_buffer_policies(policy):
    teacher, student = _pair()
    (tp, tb), (sp, sb) = _snapshot(teacher), _snapshot(student)
    assert any(not torch.equal(a, b) for a, b in zip(tb, sb))  # buffers differ to begin with
    EMA(M, buffers=policy).update(teacher, student, step=1)
    for got, a, b in zip(teacher.parameters(), tp, sp):  # parameters blend in every policy
        torch.testing.assert_close(got, M * a + (1 - M) * b, rtol=0, atol=1e-15)
    names = [n for n, _ in teacher.named_buffers()]
    for name, got, a, b in zip(names, teacher.buffers(), tb, sb):
        if policy == "keep":
            want = a
        elif policy == "ema" and a.is_floating_point():
            want = M * a + (1 - M) * b
        else:  # 'copy', and the integer counter (num_batches_tracked) under 'ema'
            want = b
        torch.testing.assert_close(got, want, rtol=0, atol=1e-15, msg=f"{policy}: {name}")
    if policy == "keep":
        assert all(torch.equal(a, b) for a, b in zip(teacher.buffers(), tb))


def test_keep_leaves_buffers_alone_over_many_updates_and_decay_zero():
    teacher, student = _pair()
    _, tb = _snapshot(teacher)
    ema = EMA(0.0, buffers="keep")
    for step in range(1, 4):
        ema.update(teacher, student, step)
    for got, want in zip(teacher.parameters(), student.parameters()):  # decay 0: a copy
        torch.testing.assert_close(got, want, rtol=0, atol=0)
    for got, want in zip(teacher.buffers(), tb):
        assert torch.equal(got, want)


def test_unknown_buffer_policy():
    with pytest.raises(ParameterError, match=r"ema\.buffers must be 'copy', 'ema' or 'keep', "
                                             r"got 'freeze'"):
        EMA(0.9, buffers="freeze")
