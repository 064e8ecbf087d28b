"""Heads: a second classifier head on a student, combined at inference (DHKD, DHO).

:class:`DualHead` wraps any student whose last classifier is a named ``nn.Linear``: the
original head stays the ``logits`` (cross-entropy) head; a second head of the same shape,
``head:kd``, reads the same features. In training mode ``forward`` returns both; in eval
mode it returns the inference logits ``log((1-a)·softmax(z_ce) + a·softmax(z_kd / b))``
(the DHO combination; ``a = 0`` is the CE head alone, as DHKD uses at inference).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import MentorError
from .taps import resolve_module


def last_linear(model: nn.Module) -> str:
    """Dotted name of the model's last ``nn.Linear`` (the classifier head)."""
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not names:
        raise MentorError(f"{type(model).__name__} has no nn.Linear classifier head; name the "
                          "head module explicitly")
    return names[-1]


def dual_head_combine(z_ce: Tensor, z_kd: Tensor, a: float, b: float = 1.0) -> Tensor:
    """Log of ``(1-a)·softmax(z_ce) + a·softmax(z_kd / b)``: usable as logits."""
    if not 0.0 <= a <= 1.0:
        raise MentorError(f"dual_head.a must be in [0, 1], got {a}")
    if b <= 0:
        raise MentorError(f"dual_head.b must be > 0, got {b}")
    if a == 0.0:
        return F.log_softmax(z_ce, -1)
    if a == 1.0:
        return F.log_softmax(z_kd / b, -1)
    stacked = torch.stack([F.log_softmax(z_ce, -1) + torch.log(torch.tensor(1.0 - a)),
                           F.log_softmax(z_kd / b, -1) + torch.log(torch.tensor(a))])
    return torch.logsumexp(stacked, dim=0)


class DualHead(nn.Module):
    """The student with a second head on the features that feed its classifier."""

    def __init__(self, student: nn.Module, head: str | None = None, a: float = 0.0,
                 b: float = 1.0):
        super().__init__()
        self.student = student
        self.head_name = head or last_linear(student)
        first = resolve_module(student, self.head_name, "dual_head.head")
        if not isinstance(first, nn.Linear):
            raise MentorError(f"dual_head.head {self.head_name!r} is a "
                              f"{type(first).__name__}; expected an nn.Linear classifier")
        self.kd_head = nn.Linear(first.in_features, first.out_features,
                                 bias=first.bias is not None)
        dual_head_combine(torch.zeros(1, 2), torch.zeros(1, 2), a, b)  # checks a, b
        self.a, self.b = float(a), float(b)
        self._features: Tensor | None = None
        first.register_forward_pre_hook(self._keep_input)

    def _keep_input(self, module, inputs):
        self._features = inputs[0]

    def heads(self, x: Tensor) -> tuple[Tensor, Tensor]:
        z_ce = self.student(x)
        z_kd = self.kd_head(self._features)
        self._features = None
        return z_ce, z_kd

    def forward(self, x: Tensor):
        z_ce, z_kd = self.heads(x)
        if self.training:
            return {"logits": z_ce, "head:kd": z_kd}
        return dual_head_combine(z_ce, z_kd, self.a, self.b)


class AuxHead(nn.Module):
    """The student plus a weak auxiliary classifier on an intermediate feature (USKD).

    ``layer``: dotted path of the module whose (flattened) output feeds the auxiliary head;
    ``None`` taps the input of the classifier (the student's last ``nn.Linear``).
    ``example``: a few input rows, used once to size the head. In training
    mode ``forward`` returns ``{"logits": ..., "head:aux": ...}``, in eval mode the student's
    logits: the auxiliary head only teaches during training.
    """

    def __init__(self, student: nn.Module, example: Tensor, layer: str | None = None):
        super().__init__()
        self.student = student
        if layer is None:
            resolve_module(student, last_linear(student), "aux_head.layer") \
                .register_forward_pre_hook(lambda m, inputs: self._keep(inputs[0]))
        else:
            resolve_module(student, layer, "aux_head.layer") \
                .register_forward_hook(lambda m, inputs, out: self._keep(out))
        self._feature: Tensor | None = None
        with torch.no_grad():  # size the head from the tapped feature and the logits
            was = student.training
            student.eval()
            logits = student(example[:2])
            student.train(was)
        self.aux = nn.Linear(self._feature.flatten(1).shape[1], logits.shape[-1])
        self._feature = None

    def _keep(self, feature: Tensor) -> None:
        self._feature = feature

    def forward(self, x: Tensor):
        logits = self.student(x)
        feature, self._feature = self._feature, None
        if self.training:
            return {"logits": logits, "head:aux": self.aux(feature.flatten(1))}
        return logits


class PairedStudents(nn.Module):
    """``n`` students trained side by side (DMT's teacher-student pairs, METHODS.md §8):
    member 0 is the given student, the others copies re-initialised with seeds ``seed + i``
    (without touching the global random state). In training (or with ``expose``, as for its
    EMA teacher) the output is ``{"logits", "head:<i>", "members"}`` with ``members``
    ``(B, n, C)``; at inference the log of the members' mean probability."""

    def __init__(self, student: nn.Module, n: int = 2, seed: int = 0):
        super().__init__()
        import copy
        if n < 2:
            raise MentorError(f"paired students need n >= 2, got {n}")
        members = [student]
        for i in range(1, n):
            twin = copy.deepcopy(student)
            with torch.random.fork_rng():
                torch.manual_seed(seed + i)
                for m in twin.modules():
                    if callable(getattr(m, "reset_parameters", None)):
                        m.reset_parameters()
            members.append(twin)
        self.members = nn.ModuleList(members)
        self.expose = False

    def forward(self, x: Tensor):
        outs = [m(x) for m in self.members]
        mean = torch.logsumexp(torch.stack([o.log_softmax(-1) for o in outs]), 0) \
            - torch.log(torch.tensor(float(len(outs))))
        if not (self.training or self.expose):
            return mean
        return {"logits": mean, "members": torch.stack(outs, 1),
                **{f"head:{i}": o for i, o in enumerate(outs)}}


def for_export(model: nn.Module) -> tuple[nn.Module, dict | None]:
    """What to save of a trained student, and how to rebuild it around the bare student.

    A :class:`DualHead` is saved whole (its second head is used at inference) with
    ``{"kind": "dual_head", "head", "a", "b"}``; an :class:`AuxHead` is saved as the bare
    student (its head only teaches during training); any other model as it is (``None``).
    """
    if isinstance(model, DualHead):
        return model, {"kind": "dual_head", "head": model.head_name, "a": model.a, "b": model.b}
    if isinstance(model, AuxHead):
        return model.student, None
    if isinstance(model, PairedStudents):
        return model, {"kind": "pairs", "n": len(model.members)}
    return model, None


def rebuild(student: nn.Module, wrapper: dict | None, field: str = "checkpoint") -> nn.Module:
    """The inverse of :func:`for_export`: wrap a freshly built bare student as saved."""
    if wrapper is None:
        return student
    if isinstance(wrapper, dict) and wrapper.get("kind") == "pairs":
        n = wrapper.get("n")
        if not isinstance(n, int) or n < 2:
            raise MentorError(f"{field}: pairs wrapper metadata {wrapper!r} needs n >= 2")
        return PairedStudents(student, n)
    if not isinstance(wrapper, dict) or wrapper.get("kind") != "dual_head":
        raise MentorError(f"{field}: unknown student wrapper {wrapper!r} in the metadata; "
                          "expected {'kind': 'dual_head', ...} or none")
    try:
        return DualHead(student, wrapper["head"], float(wrapper["a"]), float(wrapper["b"]))
    except (KeyError, TypeError, ValueError) as e:
        raise MentorError(f"{field}: dual_head wrapper metadata {wrapper!r} is incomplete "
                          f"({type(e).__name__}: {e}); expected head, a and b") from None
