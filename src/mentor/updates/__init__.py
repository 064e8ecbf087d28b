"""Teacher updaters: how the teacher's weights change while the student learns.

An updater has ``frozen`` (True: the teacher never changes, so its outputs may be cached)
and ``update(teacher_module, student, step)``, called after every optimizer step with the
1-based step count. ``from_student = True`` asks the engine to build the teacher from the
student when none is given: a copy (EMA teachers) or the live student itself (``live``).
Updaters with state define ``state_dict()`` / ``load_state_dict()``; the engine saves it in
checkpoints and restores it on resume.
"""

from __future__ import annotations

from ..registry import UPDATERS
from .ema import EMA, FisherMaskedEMA, FuturePeekEMA, Live, Relabel
from .pairs import ReviewerBank, StaticPlusEMA

__all__ = ["Frozen", "EMA", "FisherMaskedEMA", "FuturePeekEMA", "Live", "Relabel",
           "ReviewerBank", "StaticPlusEMA"]


@UPDATERS.register("frozen", description="the teacher never changes (offline distillation)")
class Frozen:
    """The teacher is fixed; lets the engine reuse teacher outputs for un-augmented inputs."""

    frozen = True
    from_student = False

    def update(self, teacher, student, step: int) -> None:
        return None
