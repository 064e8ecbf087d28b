"""FST-D's virtual future steps (METHODS.md §5): the teacher looks ahead at where the
student is going before the real step is taken."""

from __future__ import annotations

import copy

import torch

from ..contracts import Batch
from ..losses.objective import weighted_sum
from .signal import teacher_targets


def peek_ahead(tr, rows, batch: Batch, x_teacher, epoch: int, step: int) -> None:
    """``tr.ahead`` times, move the teacher towards the student and take an optimizer step on
    this batch (``rows``: its ids and stored views) with the teacher's targets; move the
    teacher once more, then restore the student, the optimizer state and the refiners' state,
    so only the teacher keeps what the virtual steps taught it. ``tr``: the training
    (:class:`mentor.engine.loop._Training`: its model, optimizer, parts and teacher side)."""
    raw_model, optimizer, refiners = tr.raw_model, tr.optimizer, tr.refiners
    saved_model = {n: v.detach().clone() for n, v in raw_model.state_dict().items()}
    saved_opt = copy.deepcopy(optimizer.state_dict())
    saved_ref = [copy.deepcopy(r.state_dict()) for r in refiners]
    y_in = batch.y if tr.with_labels else None  # a model that reads the labels as input
    teacher = tr.teacher.module
    for _ in range(tr.ahead):
        tr.updater.peek(teacher, raw_model, step + 1)
        targets, _ = teacher_targets(tr.teacher.signal, x_teacher, rows.idx, rows.view, batch,
                                     tr.need_pseudo, refiners, tr.task)
        outputs, _, elems = tr.task.elements(tr.task.forward(tr.model, batch.x, y_in), None,
                                             batch)
        loss = weighted_sum(tr.objectives, outputs, targets, elems, epoch)
        optimizer.zero_grad(set_to_none=True)
        if tr.plain:
            loss.backward()
        else:
            tr.acc.backward(loss)
        tr.opt_step.step()
    tr.updater.peek(teacher, raw_model, step + 1)
    with torch.no_grad():
        raw_model.load_state_dict(saved_model)
    optimizer.load_state_dict(saved_opt)
    for r, state in zip(refiners, saved_ref):
        if state is not None:
            r.load_state_dict(state)
