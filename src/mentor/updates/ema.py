"""The mean teacher's update rule and the live-student teacher."""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

from ..errors import check_param
from ..registry import UPDATERS

BUFFER_POLICIES = ("copy", "ema", "keep")


@UPDATERS.register("ema", description="teacher = exponential moving average of the student",
                   paper="Tarvainen & Valpola 2017, Mean teachers are better role models")
class EMA:
    """``θ_t ← m_t·θ_t + (1 − m_t)·θ_s`` every ``every`` optimizer steps (mean teacher).

    ``m_t`` (:meth:`decay_at`): ``decay`` (``schedule='constant'``); with ``warmup`` the Mean
    Teacher reference code's ``min(1 − 1/(t + 1), decay)``, so early teachers follow the
    student closely; ``schedule='cosine'`` ramps from ``start`` to ``decay`` over
    ``ramp_steps`` steps (BYOL's momentum schedule). ``decay=0`` copies the student (its
    buffers too with ``buffers='copy'``), ``decay=1`` freezes the parameters. Built from a copy
    of the student when the method has no teacher.

    ``buffers`` (BatchNorm running statistics, counters) at each update:

    * ``'copy'`` (default): copied from the student. This is USB/semilearn's EMA
      (``semilearn/core/utils/misc.py`` ``EMA.update`` stores ``buffer.clone()`` of every
      student buffer; ``semilearn/core/hooks/ema.py`` ``EMAHook`` loads them into the EMA
      model).
    * ``'ema'``: float buffers averaged like the parameters (integer buffers copied).
    * ``'keep'``: left as they are; only the parameters move. This is the update rule of the
      Mean Teacher code (``CuriousAI/mean-teacher`` ``pytorch/main.py``
      ``update_ema_variables`` blends ``parameters()`` only). There the teacher also runs in
      train mode (``ema_model.train()``): its BatchNorm layers normalise with batch
      statistics and their running statistics follow the teacher's own inputs. mentor
      evaluates a teacher in eval mode, so with ``'keep'`` the teacher's running statistics
      stay those of the model it was copied from: the update rule matches, the BatchNorm
      behaviour does not (``'copy'`` is the closer stand-in for a BatchNorm model).
    """

    frozen = False
    from_student = True

    def __init__(self, decay: float = 0.999, *, warmup: bool = False,
                 schedule: Literal["constant", "cosine"] = "constant", start: float = 0.9,
                 ramp_steps: int = 1000, every: int = 1,
                 buffers: Literal["copy", "ema", "keep"] = "copy"):
        check_param("ema", "decay", decay, low=0, high=1)
        check_param("ema", "start", start, low=0, high=1)
        check_param("ema", "ramp_steps", ramp_steps, low=1)
        check_param("ema", "every", every, low=1)
        from ..errors import ParameterError
        if schedule not in ("constant", "cosine"):
            raise ParameterError(f"ema.schedule must be 'constant' or 'cosine', got {schedule!r}")
        if buffers not in BUFFER_POLICIES:
            raise ParameterError(f"ema.buffers must be 'copy', 'ema' or 'keep', got "
                                 f"{buffers!r}")
        self.decay, self.warmup, self.schedule = float(decay), bool(warmup), schedule
        self.start, self.ramp_steps, self.every = float(start), int(ramp_steps), int(every)
        self.buffers = buffers

    def decay_at(self, step: int) -> float:
        """The momentum used by the update after optimizer step ``step`` (1-based)."""
        m = self.decay
        if self.schedule == "cosine":
            t = min(step, self.ramp_steps) / self.ramp_steps
            m = self.decay - (self.decay - self.start) * (math.cos(math.pi * t) + 1) / 2
        if self.warmup:
            m = min(1.0 - 1.0 / (step + 1), m)
        return m

    @torch.no_grad()
    def update(self, teacher: nn.Module, student: nn.Module, step: int) -> None:
        if step % self.every:
            return
        blend(teacher, student, self.decay_at(step), self.buffers)


@torch.no_grad()
def blend(teacher: nn.Module, student: nn.Module, m: float, buffers: str = "copy",
          keep: dict[str, torch.Tensor] | None = None) -> None:
    """``θ_t ← m·θ_t + (1 − m)·θ_s`` for every parameter; buffers copied from the student
    (``'copy'``), float buffers averaged (``'ema'``) or left alone (``'keep'``), see
    :class:`EMA`. ``keep`` (optional, by parameter name): a boolean mask per parameter of
    entries that stay unchanged (Fisher-masked EMA)."""
    for (name, pt), ps in zip(teacher.named_parameters(), student.parameters()):
        new = pt * m + ps.detach() * (1.0 - m)
        if keep is not None and name in keep:
            new = torch.where(keep[name], pt, new)
        pt.copy_(new)
    if buffers == "keep":
        return
    for bt, bs in zip(teacher.buffers(), student.buffers()):
        if buffers == "ema" and bt.is_floating_point():
            bt.mul_(m).add_(bs.detach(), alpha=1.0 - m)
        else:
            bt.copy_(bs)


@UPDATERS.register("live", description="the teacher is the student itself, evaluated without "
                   "gradient on its own view (FixMatch-style self-training)",
                   paper="Sohn et al. 2020, FixMatch")
class Live:
    """No separate teacher: pseudo-labels come from the current student (no gradient).
    Equivalent to an EMA with decay 0, without the copy."""

    frozen = False
    from_student = True
    live = True

    def update(self, teacher, student, step: int) -> None:
        return None


@UPDATERS.register("relabel", description="iterative relabeling: every 'every_epochs' epochs "
                   "the teacher becomes a copy of the student (the student of round r teaches "
                   "round r+1)", paper="Xie et al. 2020, Self-training with Noisy Student "
                   "(CVPR)")
class Relabel:
    """The teacher is frozen within a round of ``every_epochs`` epochs and replaced by a copy
    of the student at the end of each round. The student keeps training (it is not
    re-initialised each round, unlike Noisy Student's fresh students). Needs the engine to
    tell it the steps per epoch (:meth:`bind_steps`)."""

    frozen = False
    from_student = True

    def __init__(self, every_epochs: int = 10):
        check_param("relabel", "every_epochs", every_epochs, low=1)
        self.every_epochs = int(every_epochs)
        self.period = 0

    def bind_steps(self, steps_per_epoch: int) -> None:
        self.period = self.every_epochs * int(steps_per_epoch)

    @torch.no_grad()
    def update(self, teacher: nn.Module, student: nn.Module, step: int) -> None:
        if self.period and step % self.period == 0:
            blend(teacher, student, 0.0)


@UPDATERS.register("fisher_ema", description="EMA teacher whose most gradient-sensitive "
                   "parameters (top fraction of the squared gradient, a one-batch Fisher "
                   "estimate) stay unchanged",
                   paper="Tian et al. 2024, Parameter-Selective Mean Teacher (PSMT) "
                   "[recon of the mask side]")
class FisherMaskedEMA(EMA):
    """``θ_t ← θ_t`` where the student's current squared gradient ``g²`` is among the top
    ``fraction`` of all entries (``protect='high'``, the paper's "crucial parameters are
    kept") or the bottom ``fraction`` (``protect='low'``), ``θ_t ← m·θ_t + (1 − m)·θ_s``
    elsewhere. The engine hands it the gradients after each backward pass
    (:meth:`observe_gradients`); without gradients it is a plain EMA. The paper and its code
    differ on which side the mask protects; both are offered."""

    def __init__(self, decay: float = 0.999, *, fraction: float = 0.03,
                 protect: Literal["high", "low"] = "high", warmup: bool = False):
        super().__init__(decay, warmup=warmup)
        check_param("fisher_ema", "fraction", fraction, low=0, high=1)
        from ..errors import ParameterError
        if protect not in ("high", "low"):
            raise ParameterError(f"fisher_ema.protect must be 'high' or 'low', got {protect!r}")
        self.fraction, self.protect = float(fraction), protect
        self.keep: dict[str, torch.Tensor] | None = None

    @torch.no_grad()
    def observe_gradients(self, student: nn.Module) -> None:
        named = [(n, p.grad) for n, p in student.named_parameters() if p.grad is not None]
        if not named or self.fraction == 0:
            self.keep = None
            return
        flat = torch.cat([g.detach().pow(2).flatten() for _, g in named])
        k = max(1, int(round(self.fraction * flat.numel())))
        if self.protect == "high":
            cut = flat.topk(k).values.min()
            self.keep = {n: g.detach().pow(2) >= cut for n, g in named}
        else:
            cut = (-flat).topk(k).values.neg().max()
            self.keep = {n: g.detach().pow(2) <= cut for n, g in named}

    @torch.no_grad()
    def update(self, teacher: nn.Module, student: nn.Module, step: int) -> None:
        if step % self.every:
            return
        blend(teacher, student, self.decay_at(step), self.buffers, keep=self.keep)


@UPDATERS.register("future_ema", description="EMA teacher advanced by K virtual student steps "
                   "on the current batch before it labels it (deep future peek)",
                   paper="Du et al. 2022, Learning from Future (FST), NeurIPS")
class FuturePeekEMA(EMA):
    """FST-D: before each real step the engine takes ``ahead`` virtual optimizer steps on the
    batch, moving the teacher towards the student before each and once after (``peek``), then
    restores the student and the optimizer; the teacher labels the batch from that future.
    The real step itself does not move the teacher (:meth:`update` is a no-op). The optimizer
    state is restored too (the official code leaves the momentum buffers advanced). FST-W
    (virtual students on other batches) is not implemented. Cost: ``ahead + 1`` forward and
    backward passes per step."""

    def __init__(self, decay: float = 0.999, *, ahead: int = 3, warmup: bool = True):
        super().__init__(decay, warmup=warmup)
        check_param("future_ema", "ahead", ahead, low=1)
        self.ahead = int(ahead)

    @torch.no_grad()
    def peek(self, teacher: nn.Module, student: nn.Module, step: int) -> None:
        blend(teacher, student, self.decay_at(step), self.buffers)

    def update(self, teacher: nn.Module, student: nn.Module, step: int) -> None:
        return None
