"""The teacher side of a training: which teacher, whether its outputs are cached, and the
refined targets it gives each batch.

:func:`prepare_teacher` resolves the teacher a method trains against (a given one, or one
built from the student by the updater: a mean teacher, static + EMA pairs) and decides
whether its outputs can be computed once (a frozen teacher on un-augmented inputs);
:class:`TeacherSignal` serves its outputs per batch; :func:`teacher_targets` turns them into
the refined :class:`~mentor.contracts.Targets` the objectives read.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import torch
from torch import Tensor, nn

from ..contracts import Batch, RefinerHooks, TaskAdapter, Targets, TeacherHooks, UpdaterHooks
from ..data.rows import first_tensor, read_chunks
from ..errors import MentorError

if TYPE_CHECKING:  # the recipe schema composes methods, which train on this engine
    from ..recipe import TrainSpec


class TeacherSignal:
    """Teacher outputs for a batch: looked up from outputs computed once for the whole
    training split (frozen teacher, un-augmented inputs) or computed for the batch.

    A teacher that needs to know which samples it sees (e.g. a privileged-input teacher
    reading extra per-sample data) provides ``logits_at(x, index)``; ``index`` are positions
    in the training split.
    """

    def __init__(self, teacher, rows, cache: bool, chunk: int = 4096,
                 positions: Tensor | None = None):
        self.hooks = TeacherHooks(teacher)
        self.positions = positions  # row i of x is row positions[i] of the teacher's split
        self.cached: Tensor | dict[str, Tensor] | None = None
        if cache:  # rows: a row source (mentor.data.rows), read once in chunks
            with torch.no_grad():
                parts = [self._compute(x, i.to(first_tensor(x).device))
                         for i, x in read_chunks(rows, 0, len(rows), chunk)]
            self.cached = ({k: torch.cat([p[k] for p in parts]) for k in parts[0]}
                           if isinstance(parts[0], dict) else torch.cat(parts))

    def _compute(self, x: Tensor, index: Tensor) -> Tensor | dict[str, Tensor]:
        """Teacher outputs for rows ``index`` of the training split (``x`` are their inputs,
        or views of them); the teacher is asked for the rows' source positions."""
        pos = self.positions[index] if self.positions is not None else index
        if self.hooks.outputs is not None:  # logits + tapped features, when it has them
            return self.hooks.outputs(x, pos)
        return self.hooks.logits(x, pos)

    def __call__(self, x: Tensor, index: Tensor,
                 view: Tensor | None = None) -> Tensor | dict[str, Tensor]:
        cached = self.cached
        if cached is not None and view is None:
            if type(cached) is dict:
                return {k: v.index_select(0, index) for k, v in cached.items()}
            return cached.index_select(0, index)
        with torch.no_grad():
            at_view = self.hooks.logits_at_view
            if view is not None and at_view is not None:  # a store looks the view up
                pos = self.positions[index] if self.positions is not None else index
                return at_view(x, pos, view)
            return self._compute(x, index)  # x is the (augmented) input


@dataclass
class TeacherSide:
    """The resolved teacher of a training: its ``signal`` (outputs per batch), the
    ``module`` an updater moves (``None`` for a fixed teacher) and the stored ``views`` a
    label store teacher brings (``None`` if none)."""

    signal: TeacherSignal
    module: nn.Module | None
    views: Any


def resolve_teacher(teacher, updater: UpdaterHooks, student: nn.Module, num_outputs: int):
    """The teacher a training runs against: the given one, or one built from a copy of the
    ``student`` when the updater says so (a mean teacher, static + EMA, EMA + reviewer)."""
    own = teacher is None and updater.from_student
    if updater.build_teacher is not None and (own or updater.needs_external):
        return updater.build_teacher(teacher, copy.deepcopy(student), num_outputs)
    if own:  # mean teacher: a copy of the student, or the live student itself
        from ..teachers import LiveTeacher, ModuleTeacher
        return (LiveTeacher(student, num_outputs) if updater.live
                else ModuleTeacher(copy.deepcopy(student), num_outputs,
                                   "a moving average of the student"))
    return teacher


def prepare_teacher(teacher, *, updater: UpdaterHooks, spec: TrainSpec, device,
                    rows, positions: Tensor | None, n: int, subset: bool,
                    views, teacher_view: bool) -> TeacherSide:
    """Move ``teacher`` to ``device``, check it against the updater, the caching setting and
    the views, and compute its outputs for the training ``rows`` once when they cannot
    change (``spec.cache_teacher`` ``"auto"``: a frozen, cacheable teacher on un-augmented
    inputs). ``subset``: the split is a subset of the teacher's rows (``positions``);
    ``teacher_view``: the teacher sees a weak view of each batch."""
    hooks = TeacherHooks(teacher)
    hooks.to(device)
    module = hooks.module
    if not updater.frozen and module is None:
        raise MentorError(f"teacher updater {updater.name} needs a module teacher")
    cacheable = hooks.cacheable  # False: outputs change as we train
    cache = spec.cache_teacher == "always" or (spec.cache_teacher == "auto"
                                                and updater.frozen and cacheable)
    if spec.cache_teacher == "always" and not updater.frozen:
        raise MentorError("train.cache_teacher 'always' needs a frozen teacher; the teacher "
                          f"updater is {updater.name}")
    if spec.cache_teacher == "always" and not cacheable:
        raise MentorError("train.cache_teacher 'always' cannot cache teacher "
                          f"{hooks.description}: its "
                          "outputs change during training; expected 'auto' or 'never'")
    if views is None:  # a label store made with views: train on its stored views
        views = hooks.views
    samples = hooks.store_samples
    if samples is not None and samples != n and not subset:
        raise MentorError(f"the label store holds {samples} samples but the training split "
                          f"has {n} rows; expected the store made from this training split")
    if teacher_view and views is not None:
        raise MentorError("weak/strong views cannot be combined with a label store's "
                          "stored views; expected one of them")
    if views is not None or teacher_view:
        if spec.cache_teacher == "always":
            raise MentorError("train.cache_teacher 'always' cannot cache a teacher on "
                              "augmented views; expected 'auto' or 'never'")
        cache = False  # outputs depend on the view: looked up (store), or a fresh weak
        #                view computed per batch
    return TeacherSide(TeacherSignal(teacher, rows, cache, positions=positions), module, views)


def teacher_targets(signal, x_teacher: Tensor, idx: Tensor, view, batch: Batch,
                    need_pseudo: bool, refiners: Sequence[RefinerHooks],
                    task: TaskAdapter) -> tuple[Targets, Tensor]:
    """The refined teacher targets of a batch's elements (:meth:`~mentor.contracts.
    TaskAdapter.elements`: its rows, or one element per token for tagging, so refiners judge
    each token), and the labels before refinement: the true label where the student may see
    it, else (``need_pseudo``) the task's pseudo-label from the teacher's outputs
    (:meth:`~mentor.contracts.TaskAdapter.pseudo_labels`)."""
    zt = signal(x_teacher, idx, view)
    extra = None
    if type(zt) is dict:  # logits plus other outputs (features, members, a reviewer)
        extra, zt = zt, zt["logits"]
    labels = task.pseudo_labels(zt, batch) if need_pseudo else batch.y
    targets = Targets(zt, labels, extra=extra)
    _, targets, elements = task.elements(zt, targets, batch)
    for refine in refiners:
        targets = refine(targets, elements)
    return targets, labels
