"""FST-D's virtual future steps (METHODS.md §5): the teacher looks ahead at where the
student is going before the real step is taken."""

from __future__ import annotations

import copy

import torch

from ..contracts import Batch
from .objectives import weighted_sum
from .signal import teacher_targets


def peek_ahead(k: int, updater, teacher_module, raw_model, model, optimizer, opt_step,
               plain: bool, acc, refiners, objectives, signal, x_teacher, idx, view, xb,
               batch: Batch, need_pseudo: bool, epoch: int, step: int,
               with_labels: bool, task) -> None:
    """``k`` times, move the teacher towards the student and take an optimizer step on this
    batch with the teacher's targets; move the teacher once more, then restore the student,
    the optimizer state and the refiners' state, so only the teacher keeps what the virtual
    steps taught it."""
    saved_model = {n: v.detach().clone() for n, v in raw_model.state_dict().items()}
    saved_opt = copy.deepcopy(optimizer.state_dict())
    saved_ref = [copy.deepcopy(r.state_dict()) for r in refiners]
    inputs = (xb, batch.y) if with_labels else (xb,)
    for _ in range(k):
        updater.peek(teacher_module, raw_model, step + 1)
        targets, _ = teacher_targets(signal, x_teacher, idx, view, batch, need_pseudo,
                                     refiners, task)
        loss = weighted_sum(objectives, model(*inputs), targets, batch, epoch)
        optimizer.zero_grad(set_to_none=True)
        if plain:
            loss.backward()
        else:
            acc.backward(loss)
        opt_step.step()
    updater.peek(teacher_module, raw_model, step + 1)
    with torch.no_grad():
        raw_model.load_state_dict(saved_model)
    optimizer.load_state_dict(saved_opt)
    for r, state in zip(refiners, saved_ref):
        if state is not None:
            r.load_state_dict(state)
