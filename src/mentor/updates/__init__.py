"""Teacher updaters: how the teacher's weights change while the student learns."""

from __future__ import annotations

import torch
from torch import nn

from ..errors import check_param
from ..registry import UPDATERS


@UPDATERS.register("frozen", description="the teacher never changes (offline distillation)")
class Frozen:
    """The teacher is fixed; lets the engine reuse teacher outputs for un-augmented inputs."""

    frozen = True

    def update(self, teacher, student, step: int) -> None:
        return None


@UPDATERS.register("ema", description="teacher = exponential moving average of the student",
                   paper="Tarvainen & Valpola 2017, Mean teachers are better role models")
class EMA:
    """``θ_t ← m·θ_t + (1 − m)·θ_s`` after every optimizer step (mean teacher).

    Buffers (e.g. BatchNorm running statistics) are copied from the student: the explicit
    policy of the Mean Teacher reference code. ``decay=0`` copies the student, ``decay=1``
    freezes the teacher.
    """

    frozen = False

    def __init__(self, decay: float = 0.999):
        check_param("ema", "decay", decay, low=0, high=1)
        self.decay = float(decay)

    @torch.no_grad()
    def update(self, teacher: nn.Module, student: nn.Module, step: int) -> None:
        m = self.decay
        for pt, ps in zip(teacher.parameters(), student.parameters()):
            pt.mul_(m).add_(ps.detach(), alpha=1.0 - m)
        for bt, bs in zip(teacher.buffers(), student.buffers()):
            bt.copy_(bs)
