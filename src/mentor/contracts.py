"""The contracts of mentor's five parts. Read this file first.

Every method is the same training step with different parts plugged in
(DESIGN.md §1-2)::

    teacher(x) --> signal --> refiners --> Targets
    student(x) --> logits --> sum_i weight_i * objective_i(logits, Targets, Batch)
    optimizer step --> teacher updater --> metrics

Each part below is a small protocol. Built-in implementations register themselves by name
in :mod:`mentor.registry`; a method (:mod:`mentor.methods`) is a named composition of parts,
never a branch in the loop.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Protocol, runtime_checkable

from torch import Tensor, nn


@dataclass
class Batch:
    """One training batch of the classification task.

    ``y`` holds ``-1`` for samples whose label the student may not see; ``labeled`` is the
    matching boolean mask; ``index`` are the samples' positions in the training split (the
    key under which cached teacher outputs are found). ``weak_y``: weak labels of the rows
    (``-1`` where none), when the data has a weakly-labeled pool.
    """

    x: Tensor
    y: Tensor
    index: Tensor
    labeled: Tensor
    epoch: int = 0
    step: int = 0
    weak_y: Tensor | None = None


@dataclass
class Targets:
    """Supervision derived from the teacher for one batch.

    ``logits``: teacher logits ``(B, C)`` (log-probabilities for probability teachers).
    ``labels``: a hard class per row: the true label where the student may see it, else the
    teacher's arg-max. ``mask``: rows that carry a teacher target (``None`` = all rows).
    ``weight``: per-row weights (``None`` = 1). ``extra``: the teacher's other outputs by key
    (``"feat:<name>"`` for tapped features), when a method asks for them.
    """

    logits: Tensor
    labels: Tensor
    mask: Tensor | None = None
    weight: Tensor | None = None
    extra: dict[str, Tensor] | None = None

    def with_(self, **changes: Any) -> "Targets":
        return replace(self, **changes)


@runtime_checkable
class Teacher(Protocol):
    """Where supervision comes from. ``logits`` is called under ``torch.no_grad``.

    A teacher may also define ``logits_at(x, index)`` (``index``: the samples' positions in
    the training split); the engine then calls it instead of ``logits`` during training, so
    the teacher can use per-sample information the student never sees (privileged inputs).
    """

    num_classes: int

    def logits(self, x: Tensor) -> Tensor: ...


def teacher_logits(teacher: Teacher, x: Tensor, index: Tensor | None = None) -> Tensor:
    """How a teacher is asked: ``logits_at(x, index)`` when it has one and ``index`` is given
    (training rows), else ``logits(x)``."""
    at = getattr(teacher, "logits_at", None)
    if index is not None and at is not None:
        return at(x, index)
    return teacher.logits(x)


@runtime_checkable
class Refiner(Protocol):
    """Turns teacher targets into the supervision the losses see: ``Targets -> Targets``.

    Refiners filter (``mask``), weight (``weight``) or transform (``logits``/``labels``)
    and compose in a chain, each seeing the previous one's output. A refiner with state
    (prototypes, class thresholds) may define ``reset()``; the engine calls it when a training
    run starts.
    """

    def __call__(self, targets: Targets, batch: Batch) -> Targets: ...


class Loss(Protocol):
    """A pure function returning one value per example, shape ``(B,)``; the caller reduces.

    ``loss(student_logits, teacher_logits, labels, **params)``. Losses that do not use the
    teacher or the labels accept and ignore them, so every loss has one signature.
    """

    def __call__(self, student_logits: Tensor, teacher_logits: Tensor | None,
                 labels: Tensor | None, **params: Any) -> Tensor: ...


@runtime_checkable
class TeacherUpdater(Protocol):
    """Says whether and how the teacher changes as the student learns (frozen, EMA, ...).

    ``frozen`` is True when the teacher never changes, which lets the engine compute teacher
    outputs for un-augmented inputs once and reuse them.
    """

    frozen: bool

    def update(self, teacher: nn.Module | None, student: nn.Module, step: int) -> None: ...


@runtime_checkable
class Selector(Protocol):
    """Chooses samples between epochs or rounds (active learning, pruning, coresets)."""

    def score(self, pool: Tensor, teacher: Teacher | None, student: nn.Module) -> Tensor: ...

    def pick(self, scores: Tensor, budget: int) -> Tensor: ...


@runtime_checkable
class TaskAdapter(Protocol):
    """Says what a model output *is* for one task and how it is scored."""

    name: str

    def num_outputs(self, model: nn.Module, example: Tensor) -> int: ...

    def check(self, model: nn.Module, teacher: Teacher | None, example: Tensor,
              num_outputs: int) -> None:
        """Raise a one-sentence error unless student (and teacher) outputs fit the data."""

    def predict(self, logits: Tensor) -> Tensor: ...

    def correct(self, logits: Tensor, y: Tensor) -> Tensor:
        """Per-row correctness against labels (or against another model's outputs)."""
