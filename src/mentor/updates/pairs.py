"""Teachers made of more than one model: a static teacher beside an EMA teacher (BUS-SSL,
METHODS.md §9) and an EMA teacher with a reviewer of its best past weights (TRS, §11).

Such an updater defines ``build_teacher(given, student_copy, num_classes)``: the engine calls
it once with the recipe's teacher (or ``None``) and a copy of the student, and uses what it
returns; the returned teacher's ``module`` is the one the updater moves.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from ..errors import check_param
from ..registry import UPDATERS
from .ema import EMA, blend


class _EMAMember:
    """A teacher view of a module the updater moves (no gradient, eval mode)."""

    cacheable = False

    def __init__(self, module: nn.Module, num_classes: int):
        self.module = module.eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.num_classes = int(num_classes)

    def logits(self, x: Tensor) -> Tensor:
        with torch.no_grad():
            return self.module(x)


@UPDATERS.register("static_ema", description="a frozen teacher (the recipe's) beside an EMA "
                   "teacher of the student, fused per sample by inverse entropy",
                   paper="BUS-SSL: static + EMA teachers with uncertainty "
                   "fusion [recon of the weighting]")
class StaticPlusEMA(EMA):
    """The teacher is a committee of the given (static, never updated) teacher and an EMA
    of the student, fused with ``w_m ∝ exp(−H(p_m))`` per sample
    (:class:`mentor.teachers.CommitteeTeacher` ``fuse='entropy'``). Refiners that read every
    member (``consensus``, ``uncertainty_fusion``) see both."""

    from_student = False  # the static teacher comes from the recipe or the caller
    needs_external = True

    def build_teacher(self, given, student_copy: nn.Module, num_classes: int):
        from ..teachers import CommitteeTeacher

        class StaticAndEMA(CommitteeTeacher):
            module = student_copy  # what the updater moves
            cacheable = False

        teacher = StaticAndEMA([given, _EMAMember(student_copy, num_classes)], fuse="entropy")
        teacher.description = "static teacher + EMA of the student (entropy fusion)"
        return teacher


class ReviewedTeacher:
    """An EMA teacher whose outputs carry a reviewer's: ``{"logits", "reviewer"}``; it keeps
    the running mean of its own confidence for the reviewer's replacement rule."""

    cacheable = False

    def __init__(self, module: nn.Module, reviewer: nn.Module, num_classes: int):
        self.teacher = _EMAMember(module, num_classes)
        self.reviewer = _EMAMember(reviewer, num_classes)
        self.module = module
        self.num_classes = int(num_classes)
        self.description = "EMA of the student with a reviewer of its best past weights"
        self.conf_sum, self.conf_n = 0.0, 0

    def logits(self, x: Tensor) -> Tensor:
        return self.teacher.logits(x)

    def outputs(self, x: Tensor, index: Tensor | None = None) -> dict[str, Tensor]:
        z = self.teacher.logits(x)
        self.conf_sum += float(z.softmax(-1).amax(-1).sum())
        self.conf_n += len(z)
        return {"logits": z, "reviewer": self.reviewer.logits(x)}


@UPDATERS.register("reviewer", description="EMA teacher plus a reviewer: a copy of the "
                   "teacher taken at the end of a period when its mean confidence improved",
                   paper="TRS, Teacher-Reviewer-Student [recon of the "
                   "replacement rule]")
class ReviewerBank(EMA):
    """``θ_t`` follows the student by EMA; every ``every_epochs`` epochs the reviewer
    ``θ_r`` becomes a copy of ``θ_t`` if the teacher's mean maximum probability on the
    batches of that period beat the best period so far. Objectives read the reviewer's
    output as ``against="reviewer"``. The reviewer's weights and score are updater state
    (saved in checkpoints)."""

    from_student = True

    def __init__(self, decay: float = 0.99, *, every_epochs: int = 5, warmup: bool = True):
        super().__init__(decay, warmup=warmup)
        check_param("reviewer", "every_epochs", every_epochs, low=1)
        self.every_epochs = int(every_epochs)
        self.period = 0
        self.teacher: ReviewedTeacher | None = None
        self.best = float("-inf")
        self.replaced = 0

    def bind_steps(self, steps_per_epoch: int) -> None:
        self.period = self.every_epochs * int(steps_per_epoch)

    def build_teacher(self, given, student_copy: nn.Module, num_classes: int):
        self.teacher = ReviewedTeacher(student_copy, copy.deepcopy(student_copy), num_classes)
        self.best, self.replaced = float("-inf"), 0
        return self.teacher

    @torch.no_grad()
    def update(self, teacher: nn.Module, student: nn.Module, step: int) -> None:
        super().update(teacher, student, step)
        t = self.teacher
        if t is None or not self.period or step % self.period:
            return
        score = t.conf_sum / max(t.conf_n, 1)
        t.conf_sum, t.conf_n = 0.0, 0
        if score > self.best:
            self.best = score
            blend(t.reviewer.module, teacher, 0.0)
            self.replaced += 1

    def state_dict(self) -> dict[str, Tensor]:
        t = self.teacher
        out = {"score": torch.tensor([self.best, float(self.replaced),
                                      t.conf_sum if t else 0.0, t.conf_n if t else 0],
                                     dtype=torch.float64)}
        if t is not None:
            out.update({f"reviewer.{k}": v.detach().clone()
                        for k, v in t.reviewer.module.state_dict().items()})
        return out

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        best, replaced, conf_sum, conf_n = (float(v) for v in state["score"])
        self.best, self.replaced = best, int(replaced)
        t = self.teacher
        if t is not None:
            t.conf_sum, t.conf_n = conf_sum, int(conf_n)
            t.reviewer.module.load_state_dict({k[9:]: v for k, v in state.items()
                                               if k.startswith("reviewer.")})
