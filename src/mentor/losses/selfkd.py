"""Teacher-free (self) distillation losses."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import ParameterError
from .base import register_loss
from .logits import _check_pair


def zipf_non_target(scores: Tensor, labels: Tensor) -> Tensor:
    """Zipf soft labels over the non-target classes: the class ranked k-th by ``scores``
    (highest first, target excluded) gets weight ∝ 1/k; the target class gets 0."""
    c = scores.shape[-1]
    target = F.one_hot(labels, c).bool()
    order = scores.masked_fill(target, float("-inf")).argsort(dim=-1, descending=True,
                                                              stable=True)
    rank = torch.empty_like(order)
    rank.scatter_(-1, order, torch.arange(1, c + 1, device=scores.device).expand_as(order))
    z = (1.0 / rank.to(scores.dtype)).masked_fill(target, 0.0)
    return z / z.sum(-1, keepdim=True)


@register_loss("uskd", paper="Yang et al. 2023, From KD to Self-KD (USKD), ICCV; METHODS.md §18",
               needs_teacher=True, needs_labels=True, batch_coupled=True,
               description="teacher-free: customised target term + Zipf non-target labels "
               "ranked by the student and a weak auxiliary head",
               defaults={"alpha": 1.0, "beta": 0.1},
               constraints={"alpha": {"low": 0}, "beta": {"low": 0}})
def uskd(student_logits: Tensor, teacher_logits: Tensor, labels: Tensor, *, alpha: float = 1.0,
         beta: float = 0.1) -> Tensor:
    """USKD per example (METHODS.md §18; official ``yzd-v/cls_KD`` ``uskd.py``).

    ``teacher_logits`` are the weak auxiliary head's logits (the self-teacher; detached).
    Target term: ``s_y = softmax(z)_y``, ``p̃ = s_y² + 1 − mean_batch(s_y²)`` (detached),
    ``−p̃·log softmax(z)_y``. Non-target term: rank the non-target classes by
    ``softmax(w)/(1 − softmax(w)_y) + softmax(z)/(1 − s_y)``, give the k-th ``1/k`` (Zipf),
    renormalise, and take the cross-entropy with ``softmax`` over the student's non-target
    logits. Returns ``α·target + β·non_target``. The batch mean in ``p̃`` couples rows.
    """
    _check_pair(student_logits, teacher_logits)
    if labels is None:
        raise ParameterError("uskd needs labels (the target class of each row), got None")
    c = student_logits.shape[-1]
    target = F.one_hot(labels, c).bool()
    log_p = F.log_softmax(student_logits, -1)
    idx = labels[:, None]
    with torch.no_grad():
        p = log_p.exp()
        s_y = p.gather(-1, idx).squeeze(-1)
        sq = s_y * s_y
        soft_target = sq + 1.0 - sq.mean()
        q = F.softmax(teacher_logits.detach(), -1)
        q_y = q.gather(-1, idx)
        score = q / (1.0 - q_y).clamp_min(1e-12) + p / (1.0 - s_y[:, None]).clamp_min(1e-12)
        zipf = zipf_non_target(score, labels)
    target_term = -soft_target * log_p.gather(-1, idx).squeeze(-1)
    neg_inf = torch.finfo(student_logits.dtype).min
    log_q_nt = F.log_softmax(student_logits.masked_fill(target, neg_inf), -1)
    non_target = -(zipf * log_q_nt).masked_fill(target, 0.0).sum(-1)
    return alpha * target_term + beta * non_target
