"""List-wise distillation losses."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import ParameterError
from .base import register_loss
from .logits import _check_pair


def teacher_optimal_order(teacher_logits: Tensor, labels: Tensor) -> Tensor:
    """Class order per row: the true class first, then the rest by descending teacher logit."""
    c = teacher_logits.shape[-1]
    boosted = teacher_logits.masked_fill(F.one_hot(labels, c).bool(), float("inf"))
    return boosted.argsort(dim=-1, descending=True, stable=True)


@register_loss("pld", paper="Plackett-Luce Distillation (PLD) [recon of the "
               "normalisation]", needs_teacher=True, needs_labels=True,
               description="teacher-confidence-weighted Plackett-Luce likelihood of the "
               "teacher-optimal class order", defaults={"temperature": 1.0, "top_k": 0},
               constraints={"temperature": {"low": 0, "low_open": True}, "top_k": {"low": 0}})
def pld(student_logits: Tensor, teacher_logits: Tensor, labels: Tensor, *,
        temperature: float = 1.0, top_k: int = 0) -> Tensor:
    """Plackett–Luce distillation per example.

    Order π: the true class, then the others by descending teacher logit. Weights
    ``α_k = softmax(z_t/T)[π_k]``. Loss ``Σ_k α_k · (log Σ_{j≥k} exp z_s[π_j] − z_s[π_k])``,
    summed over the first ``top_k`` ranks (0 = all). The ``k = 1`` term is ``α_y · CE``, so a
    one-hot teacher gives the cross-entropy. Invariant to adding a constant to ``z_s``.
    No public code was found: the exact normalisation is a reconstruction (METHODS.md §26).
    """
    _check_pair(student_logits, teacher_logits)
    if labels is None:
        raise ParameterError("pld needs labels (the first class of the order), got None")
    c = student_logits.shape[-1]
    if int(top_k) != top_k or top_k > c:
        raise ParameterError(f"pld.top_k must be a whole number <= the number of classes ({c}),"
                             f" got {top_k!r}")
    order = teacher_optimal_order(teacher_logits, labels)
    zs = student_logits.gather(-1, order)
    alpha = F.softmax(teacher_logits.detach() / temperature, -1).gather(-1, order)
    # log Σ_{j>=k} exp(zs_j): reverse cumulative logsumexp
    tail = torch.logcumsumexp(zs.flip(-1), dim=-1).flip(-1)
    terms = alpha * (tail - zs)
    if top_k:
        terms = terms[:, :int(top_k)]
    return terms.sum(-1)
