"""Semi-supervised consistency losses: the student's prediction on one view against the
teacher's on another (pseudo-labels, mean-teacher consistency)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from ..errors import ParameterError
from .base import register_loss
from .logits import _check_pair


@register_loss("pseudo_ce", needs_teacher=True, needs_labels=True, defaults={},
               logit_loss=False,
               paper="Lee 2013, Pseudo-Label; Sohn et al. 2020, FixMatch (unlabeled loss)",
               description="cross-entropy with the target's hard (pseudo-)labels; the refiners' "
               "mask and weights apply")
def pseudo_ce(student_logits: Tensor, teacher_logits: Tensor | None = None,
              labels: Tensor | None = None) -> Tensor:
    """Per-example ``-log softmax(z_s)[ŷ]`` with ``ŷ`` the target's label: the teacher's arg-max
    (after the refiners) on unlabeled rows, the true label on labeled rows. Registered as a
    teacher loss so that confidence masks and weights reach it."""
    if labels is None:
        raise ParameterError("pseudo_ce needs (pseudo-)labels, got None")
    if teacher_logits is not None:  # the labels came from these: they must fit the student
        _check_pair(student_logits, teacher_logits)
    return F.cross_entropy(student_logits, labels, reduction="none")


@register_loss("prob_mse", needs_teacher=True, needs_labels=False, defaults={},
               paper="Tarvainen & Valpola 2017, Mean teachers are better role models "
               "(softmax_mse_loss)",
               description="mean over classes of (softmax(z_s) - softmax(z_t))^2, the mean "
               "teacher's consistency cost")
def prob_mse(student_logits: Tensor, teacher_logits: Tensor,
             labels: Tensor | None = None) -> Tensor:
    """Per-example ``(1/C) Σ_c (p_s,c − p_t,c)²`` with ``p = softmax(z)``; the teacher side is
    a constant (no gradient), as in the Mean Teacher reference code."""
    _check_pair(student_logits, teacher_logits)
    p_s = F.softmax(student_logits, -1)
    p_t = F.softmax(teacher_logits.detach(), -1)
    return (p_s - p_t).pow(2).mean(-1)
