"""Runtime faults of a training: a non-finite loss or weights, named with the step and the
part that caused them (docs/reliability.md, "runtime faults")."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..contracts import Batch, Targets
from ..errors import TrainingFault
from ..losses.objective import Objective


def check_weights(model: nn.Module, step: int) -> None:
    """Raise a :class:`TrainingFault` if a weight is NaN/inf, naming the update that made it
    so (``step`` updates done) and why: a non-finite gradient, or a finite gradient times a
    huge learning rate. Not run every step (nor every epoch): the weights an update poisons
    make the next loss non-finite, and :func:`raise_fault` calls this while that update's
    gradients are still in place; the loop calls it before writing a checkpoint and when the
    training ends (the last update has no next loss)."""
    params = list(model.parameters())
    if not params or bool(torch.stack([torch.isfinite(p).all() for p in params]).all()):
        return  # one host sync for all parameters: the common case
    bad = [n for n, p in model.named_parameters() if not bool(torch.isfinite(p).all())]
    if step == 0:
        raise TrainingFault(f"the student's initial weights are non-finite (parameter "
                            f"{bad[0]!r}) before training step 1; expected finite weights")
    grads = [n for n, p in model.named_parameters()
             if p.grad is not None and not bool(torch.isfinite(p.grad).all())]
    if grads:
        raise TrainingFault(f"parameter {grads[0]!r} got a non-finite gradient at training "
                            f"step {step} while the loss was finite, and the update made the "
                            "weights non-finite; check the learning rate, the inputs and the "
                            "model's operations")
    raise TrainingFault(f"the update of training step {step} made parameter {bad[0]!r} "
                        "non-finite although every gradient was finite; check the learning "
                        "rate (too large?)")


def raise_fault(objectives: Sequence[Objective], logits, targets: Targets | None, batch: Batch,
                epoch: int, step: int, model: nn.Module | None = None) -> None:
    """Raise the :class:`TrainingFault` of a non-finite loss at ``step``: poisoned weights
    (the previous update's fault), else the first objective whose value is non-finite."""
    if model is not None:
        check_weights(model, step)
    for obj in objectives:
        value = obj(logits, targets, batch)
        if not torch.isfinite(value):
            raise TrainingFault(f"objective {obj.describe()} gave a non-finite loss "
                                f"({float(value.detach())}) at training step {step + 1} (epoch "
                                f"{epoch + 1}); check the learning rate and the inputs")
    raise TrainingFault(f"the loss became non-finite at training step {step + 1} "
                        f"(epoch {epoch + 1})")
