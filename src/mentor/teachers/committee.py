"""A committee of teachers: per-member outputs plus one fused teacher signal.

METHODS.md §58.7 (``teacher-source:MultiTeacher``, T5) and §59.4 (multi-source pseudo-label
fusion): several teachers -- trained networks, statistical pipelines, judges -- label the same
samples; a method may read every member's output (:meth:`CommitteeTeacher.member_logits`) or
the fused signal (:meth:`CommitteeTeacher.logits`), which is what the engine uses.

Fusion is done on probabilities and returned as log-probabilities (so ``softmax`` of the
output is the fused distribution), for three modes:

``mean``
    ``p = 1/M * sum_m p_m`` -- the plain committee average.
``logits``
    the mean of the members' logits (not of probabilities); returned as logits.
``weighted``
    ``p = sum_m w_m p_m`` with fixed user weights ``w`` (non-negative, at least one positive,
    normalised to sum 1), e.g. trust in each source.
``confidence``
    confidence-weighted fusion: per sample, ``w_m(x) = c_m(x) / sum_k c_k(x)`` with
    ``c_m(x) = max_c softmax(z_m(x) / temperature)_c``, then ``p = sum_m w_m(x) p_m``. A member
    that is sure of a sample counts more for that sample. This is the classification form of
    the agreement/confidence weighting used when merging teachers' labels (DINOSTAR, paper 37:
    keep the most confident of overlapping teacher labels; MemReranker, paper 25: aggregate
    several judges). ``temperature`` only shapes the confidences ``c_m``; the averaged
    ``p_m`` are ``softmax(z_m)`` at temperature 1 (KD losses apply their own temperature to
    the fused output).
``entropy``
    per sample, ``w_m(x) ∝ exp(−H(p_m(x)))``: the member that is less uncertain counts more
    (BUS-SSL's fusion of a static and an EMA teacher, METHODS.md §9 [recon of the form]).
"""

from __future__ import annotations

import math
from typing import Any, Literal, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ..contracts import teacher_logits
from ..errors import MentorError, check_param

FUSE_MODES = ("mean", "logits", "weighted", "confidence", "entropy")


class CommitteeTeacher:
    """A teacher made of several member teachers, fused into one signal.

    ``members``: teachers (anything with ``num_classes`` and ``logits(x)`` and/or
    ``logits_at(x, index)``; wrap plain modules with :func:`mentor.teachers.as_teacher`).
    ``fuse``: ``"mean"``, ``"weighted"`` (needs ``weights``, one per member) or
    ``"confidence"`` (per-sample weights from each member's max probability at
    ``temperature``); see the module docstring for the formulas.

    Members must agree on ``num_classes`` (checked here) and return the same ``(B, C)`` shape
    (checked at each call). During training the engine calls :meth:`logits_at`, which hands
    ``index`` to the members that define ``logits_at`` (e.g. privileged-input teachers).
    ``cacheable`` is False when any member is not cacheable.
    """

    def __init__(self, members: Sequence[Any], fuse: Literal["mean", "logits", "weighted",
                                                             "confidence", "entropy"] = "mean",
                 weights: Sequence[float] | Tensor | None = None, temperature: float = 1.0):
        members = list(members) if members is not None else []
        if not members:
            raise MentorError("teacher.committee must have at least one member, got none")
        if fuse not in FUSE_MODES:
            raise MentorError(f"teacher.committee fuse must be one of {list(FUSE_MODES)}, "
                              f"got {fuse!r}")
        check_param("teacher.committee", "temperature", temperature, low=0, low_open=True)
        for i, m in enumerate(members):
            if not hasattr(m, "num_classes") or not (callable(getattr(m, "logits", None))
                                                     or callable(getattr(m, "logits_at", None))):
                raise MentorError(f"teacher.committee member {i} of type {type(m).__name__} is "
                                  "not a teacher; expected num_classes and logits(x) or "
                                  "logits_at(x, index) (wrap modules with as_teacher)")
        first = int(members[0].num_classes)
        for i, m in enumerate(members[1:], start=1):
            if int(m.num_classes) != first:
                raise MentorError(f"teacher.committee member {i} outputs {int(m.num_classes)} "
                                  f"classes but member 0 outputs {first}; expected every member "
                                  "to output the same number of classes")
        self.members = members
        self.fuse = fuse
        self.temperature = float(temperature)
        self.num_classes = first
        self.weights = self._check_weights(weights, len(members), fuse)
        self.description = (f"committee of {len(members)} ({fuse} fusion"
                            + (f", T={self.temperature:g}" if fuse == "confidence" else "")
                            + ")")

    @staticmethod
    def _check_weights(weights, m: int, fuse: str) -> Tensor | None:
        if fuse != "weighted":
            if weights is not None:
                raise MentorError(f"teacher.committee weights are only used with fuse "
                                  f"'weighted', got weights with fuse {fuse!r}")
            return None
        if weights is None:
            raise MentorError(f"teacher.committee fuse 'weighted' needs weights, got None; "
                              f"expected {m} non-negative numbers, one per member")
        w = torch.as_tensor(weights, dtype=torch.float64).detach().cpu().reshape(-1)
        if len(w) != m:
            raise MentorError(f"teacher.committee weights has {len(w)} entries "
                              f"{w.tolist()}; expected {m}, one per member")
        if not bool(torch.isfinite(w).all()) or bool((w < 0).any()):
            raise MentorError(f"teacher.committee weights {w.tolist()} must be finite and "
                              "non-negative")
        if float(w.sum()) <= 0:
            raise MentorError(f"teacher.committee weights {w.tolist()} are all zero; expected "
                              "at least one positive weight")
        return w / w.sum()

    # ------------------------------------------------------------------ per-member outputs

    def member_logits(self, x: Tensor, index: Tensor | None = None) -> Tensor:
        """Every member's logits, shape ``(M, B, C)``, without gradients.

        With ``index`` (positions of ``x``'s rows in the training split), members that define
        ``logits_at`` are called as ``logits_at(x, index)``; the others as ``logits(x)``.
        """
        outs = []
        with torch.no_grad():
            for i, m in enumerate(self.members):
                if index is None and not callable(getattr(m, "logits", None)):
                    raise MentorError(f"teacher.committee member {i} ({type(m).__name__}) only "
                                      "has logits_at(x, index) but was called without index; "
                                      "expected training-row positions")
                outs.append(teacher_logits(m, x, index))
        self._check_shapes(outs, len(x))
        dtype = outs[0].dtype
        for z in outs[1:]:
            dtype = torch.promote_types(dtype, z.dtype)
        return torch.stack([z.to(dtype) for z in outs])

    def _check_shapes(self, outs: list[Tensor], b: int) -> None:
        ref = tuple(outs[0].shape)
        want = (b, self.num_classes)
        if ref != want:
            raise MentorError(f"teacher.committee member 0 returned shape {ref} for {b} samples; "
                              f"expected {want}")
        for i, z in enumerate(outs[1:], start=1):
            if tuple(z.shape) != ref:
                raise MentorError(f"teacher.committee member {i} returned shape "
                                  f"{tuple(z.shape)} but member 0 returned {ref}; expected every "
                                  "member to return the same shape")

    def member_weights(self, member_logits: Tensor) -> Tensor:
        """The fusion weights ``(M, B)`` (each column sums to 1) for stacked member logits."""
        m, b = member_logits.shape[:2]
        if self.fuse in ("mean", "logits"):
            return member_logits.new_full((m, b), 1.0 / m)
        if self.fuse == "weighted":
            w = self.weights.to(device=member_logits.device, dtype=member_logits.dtype)
            return w[:, None].expand(m, b)
        if self.fuse == "entropy":
            p = F.softmax(member_logits, dim=-1)
            h = -(p * F.log_softmax(member_logits, dim=-1)).sum(-1)
            return F.softmax(-h, dim=0)
        conf = F.softmax(member_logits / self.temperature, dim=-1).amax(-1)
        return conf / conf.sum(0, keepdim=True)

    # ------------------------------------------------------------------------- fused signal

    def fused(self, member_logits: Tensor) -> Tensor:
        """Log of the fused probability ``sum_m w_m p_m`` for stacked member logits (the mean
        logit for ``fuse='logits'``)."""
        if self.fuse == "logits":
            return member_logits.mean(0)
        log_p = F.log_softmax(member_logits, dim=-1)
        if self.fuse == "mean":
            return torch.logsumexp(log_p, dim=0) - math.log(len(member_logits))
        log_w = torch.log(self.member_weights(member_logits))  # log 0 = -inf drops a member
        return torch.logsumexp(log_p + log_w[..., None], dim=0)

    def logits(self, x: Tensor) -> Tensor:
        return self.fused(self.member_logits(x))

    def outputs(self, x: Tensor, index: Tensor | None = None) -> dict[str, Tensor]:
        """The fused logits and every member's, ``{"logits": (B, C), "members": (B, M, C)}``:
        what the engine hands to refiners that fuse or compare members (consensus)."""
        members = self.member_logits(x, index)
        return {"logits": self.fused(members), "members": members.transpose(0, 1)}

    def logits_at(self, x: Tensor, index: Tensor) -> Tensor:
        return self.fused(self.member_logits(x, index))

    @property
    def cacheable(self) -> bool:
        """False when any member's outputs change during training (see the engine cache)."""
        return all(getattr(m, "cacheable", True) for m in self.members)

    def to(self, device) -> "CommitteeTeacher":
        for m in self.members:
            if hasattr(m, "to"):
                m.to(device)
        return self

    def train(self, mode: bool = True):  # members keep their own modes
        return self
