"""Feature distillation without rewriting models: forward hooks on named modules.

A :class:`Tap` names a module of the student and one of the teacher by their dotted paths
(``dict(model.named_modules())``). During training :class:`TappedStudent` returns the
student's logits plus each tapped feature (through a learned projector when the widths
differ); :class:`TappedTeacher` returns the teacher's logits plus its tapped features. The
projectors exist only for training: the exported student is ``TappedStudent.student``.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from ..contracts import teacher_logits
from ..errors import MentorError


@dataclass(frozen=True)
class Tap:
    """Distill feature ``name``: student module ``student`` against teacher module ``teacher``.

    ``projector``: ``"auto"`` (a linear map / 1x1 convolution from the student's width to the
    teacher's when they differ, identity otherwise) or ``"none"``. ``student=None`` taps the
    teacher only (its feature reaches refiners as ``Targets.extra``).
    """

    name: str
    student: str | None
    teacher: str
    projector: str = "auto"

    @property
    def key(self) -> str:
        return f"feat:{self.name}"


def resolve_module(model: nn.Module, path: str, field: str) -> nn.Module:
    """The sub-module at dotted ``path``; a missing path names the nearest existing ones."""
    modules = dict(model.named_modules())
    if path in modules and path != "":
        return modules[path]
    names = [n for n in modules if n]
    near = difflib.get_close_matches(path, names, n=3, cutoff=0.3) or names[:5]
    raise MentorError(f"{field} {path!r} is not a module of {type(model).__name__}; nearest "
                      f"names: {', '.join(repr(n) for n in near) or 'none'}")


class _Recorder:
    """Forward hooks that keep the latest output of each named module."""

    def __init__(self, model: nn.Module, paths: dict[str, str], field: str):
        self.values: dict[str, Tensor] = {}
        self.handles = []
        for key, path in paths.items():
            module = resolve_module(model, path, field)
            self.handles.append(module.register_forward_hook(self._hook(key)))

    def _hook(self, key: str):
        def store(module, inputs, output):
            if not torch.is_tensor(output):
                raise MentorError(f"tapped module for {key!r} returns {type(output).__name__}; "
                                  "expected a tensor")
            self.values[key] = output
        return store

    def remove(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles = []


def _projector(student_shape: torch.Size, teacher_shape: torch.Size, name: str) -> nn.Module:
    if student_shape[1:] == teacher_shape[1:]:
        return nn.Identity()
    if len(student_shape) == 2 and len(teacher_shape) == 2:
        return nn.Linear(student_shape[1], teacher_shape[1])
    if len(student_shape) == len(teacher_shape) and student_shape[2:] == teacher_shape[2:]:
        conv = nn.Conv2d if len(student_shape) == 4 else nn.Conv1d
        return conv(student_shape[1], teacher_shape[1], kernel_size=1)
    raise MentorError(f"tap {name!r}: student feature shape {list(student_shape[1:])} cannot be "
                      f"projected to the teacher's {list(teacher_shape[1:])}; expected equal "
                      "spatial sizes")


class TappedStudent(nn.Module):
    """The student plus its training-only projectors.

    In training mode ``forward`` returns ``{"logits": ..., "feat:<name>": ...}``; in eval mode
    only the logits, so evaluation and export see the plain student.
    """

    def __init__(self, student: nn.Module, taps: list[Tap], teacher_shapes: dict[str, Any],
                 example: Tensor):
        super().__init__()
        self.student = student
        self.taps = [t for t in taps if t.student is not None]
        taps = self.taps
        self._rec = _Recorder(student, {t.key: t.student for t in taps}, "student tap")
        with torch.no_grad():
            was = student.training
            student.eval()
            student(example)
            student.train(was)
        projectors = {}
        for t in taps:
            s_shape = self._rec.values[t.key].shape
            if t.projector == "none":
                if s_shape[1:] != teacher_shapes[t.key][1:]:
                    raise MentorError(f"tap {t.name!r}: student feature {list(s_shape[1:])} and "
                                      f"teacher feature {list(teacher_shapes[t.key][1:])} differ "
                                      "and projector is 'none'; expected equal shapes")
                projectors[t.name] = nn.Identity()
            else:
                projectors[t.name] = _projector(s_shape, teacher_shapes[t.key], t.name)
        self.projectors = nn.ModuleDict(projectors)
        self._rec.values.clear()

    def remove(self) -> None:
        """Remove the hooks from the student's modules."""
        self._rec.remove()

    def forward(self, x: Tensor):
        logits = self.student(x)
        if not self.training:
            self._rec.values.clear()
            return logits
        out = {"logits": logits}
        for t in self.taps:
            out[t.key] = self.projectors[t.name](self._rec.values[t.key])
        self._rec.values.clear()
        return out


class TappedTeacher:
    """A module teacher whose ``outputs`` also return the tapped features."""

    def __init__(self, teacher, taps: list[Tap]):
        module = getattr(teacher, "module", None)
        if module is None:
            raise MentorError(f"feature taps need a torch module teacher; got "
                              f"{type(teacher).__name__}")
        self.teacher = teacher
        self.num_classes = teacher.num_classes
        self.cacheable = getattr(teacher, "cacheable", True)
        self._rec = _Recorder(module, {t.key: t.teacher for t in taps}, "teacher tap")

    def outputs(self, x: Tensor, index: Tensor | None = None) -> dict[str, Tensor]:
        with torch.no_grad():
            out = {"logits": teacher_logits(self.teacher, x, index), **self._rec.values}
            self._rec.values = {}
            return out

    def logits(self, x: Tensor) -> Tensor:
        return self.outputs(x)["logits"]

    @property
    def module(self) -> nn.Module:
        return self.teacher.module

    def to(self, device):
        if hasattr(self.teacher, "to"):
            self.teacher.to(device)
        return self

    def remove(self) -> None:
        self._rec.remove()


def tapped_shapes(teacher: TappedTeacher, example: Tensor,
                  index: Tensor | None = None) -> dict[str, torch.Size]:
    """Shapes of the teacher's logits and tapped features on ``example`` rows (at training
    positions ``index``, for teachers that know rows by position)."""
    return {k: v.shape for k, v in teacher.outputs(example, index).items()}
