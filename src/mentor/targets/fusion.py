"""Several teachers' pseudo-labels: consensus filtering and uncertainty-weighted fusion
(METHODS.md §59.4: DMT's consensus (8), BUS-SSL's entropy fusion (9), LLM-guided
inverse-variance fusion (19)).

These refiners read every member's logits, ``targets.extra["members"]`` ``(B, M, C)``, which
a :class:`mentor.teachers.CommitteeTeacher` provides to the engine.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..contracts import Batch, Targets
from ..errors import MentorError, ParameterError, check_param
from ..registry import REFINERS
from .thresholds import _admit, unlabeled_rows


def _members(targets: Targets, who: str) -> Tensor:
    members = (targets.extra or {}).get("members")
    if members is None:
        raise MentorError(f"{who} compares several teachers' outputs, but the teacher gives "
                          "one; expected a committee teacher (teacher.ensemble in a recipe, "
                          "mentor.teachers.CommitteeTeacher in Python)")
    return members


@REFINERS.register("consensus", paper="Guo et al. 2024, Dual Mean-Teacher (DMT): "
                   "keep pseudo-labels the teachers agree on",
                   description="admit an unlabeled row only when at least 'min_agree' "
                   "teachers predict the same class; that class is its pseudo-label")
class Consensus:
    """Per unlabeled row, the class predicted by the most members; the row is admitted when
    at least ``min_agree`` members (default: all) predict it. Labeled rows are untouched."""

    def __init__(self, min_agree: int | None = None):
        if min_agree is not None:
            check_param("consensus", "min_agree", min_agree, low=1)
        self.min_agree = min_agree

    def __call__(self, targets: Targets, batch: Batch) -> Targets:
        members = _members(targets, "consensus")
        m, c = members.shape[1], members.shape[2]
        need = m if self.min_agree is None else self.min_agree
        if need > m:
            raise ParameterError(f"consensus.min_agree is {need} but the committee has {m} "
                                 "teachers; expected at most that many")
        votes = F.one_hot(members.argmax(-1), c).sum(1)  # (B, C)
        count, label = votes.max(-1)
        unl = unlabeled_rows(batch, len(label), label.device)
        labels = torch.where(unl, label, targets.labels)
        return _admit(targets.with_(labels=labels), unl, count >= need)


@REFINERS.register("uncertainty_fusion", paper="BUS-SSL (entropy weights); "
                   "LLM-guided fusion (inverse variance) [recon for classification]",
                   description="fuse the teachers' distributions per row, weighting each by "
                   "its certainty: inverse entropy, or inverse Bernoulli variance per class")
class UncertaintyFusion:
    """``mode='entropy'``: ``p = Σ_m w_m p_m`` with ``w_m ∝ 1 / (H(p_m) + eps)`` per row.
    ``mode='inverse_variance'``: per class, ``p_c ∝ Σ_m p_m,c / v_m,c / Σ_m 1 / v_m,c`` with
    ``v = p(1 − p) + eps`` (each member's probability read as a Bernoulli estimate), then
    renormalised. The fused distribution replaces the logits of every row (as log
    probabilities) and the pseudo-labels of unlabeled rows become its arg-max."""

    def __init__(self, mode: str = "entropy", eps: float = 1e-3):
        if mode not in ("entropy", "inverse_variance"):
            raise ParameterError(f"uncertainty_fusion.mode must be 'entropy' or "
                                 f"'inverse_variance', got {mode!r}")
        check_param("uncertainty_fusion", "eps", eps, low=0, low_open=True)
        self.mode, self.eps = mode, float(eps)

    def fuse(self, members: Tensor) -> Tensor:
        """Fused probabilities ``(B, C)`` from member logits ``(B, M, C)``."""
        p = F.softmax(members.double(), -1)
        if self.mode == "entropy":
            h = -(p * p.clamp_min(1e-12).log()).sum(-1)  # (B, M)
            w = 1.0 / (h + self.eps)
            return (w[..., None] * p).sum(1) / w.sum(1, keepdim=True)
        inv = 1.0 / (p * (1 - p) + self.eps)
        fused = (p * inv).sum(1) / inv.sum(1)
        return fused / fused.sum(-1, keepdim=True)

    def __call__(self, targets: Targets, batch: Batch) -> Targets:
        fused = self.fuse(_members(targets, "uncertainty_fusion"))
        unl = unlabeled_rows(batch, len(fused), fused.device)
        logits = fused.clamp_min(1e-12).log().to(targets.logits.dtype)
        labels = torch.where(unl, fused.argmax(-1), targets.labels)
        return targets.with_(logits=logits, labels=labels)
