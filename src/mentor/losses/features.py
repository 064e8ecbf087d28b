"""Feature-alignment losses (METHODS.md L23 FeatureAlignment, L11 ChannelWiseDistillation).

Student and teacher features arrive already projected to the same shape (see
:mod:`mentor.models.taps`); every function returns one value per example.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from ..errors import ParameterError
from .base import register_loss


def _same(student: Tensor, teacher: Tensor, name: str) -> None:
    if student.shape != teacher.shape:
        raise ParameterError(f"{name}: student feature shape {tuple(student.shape)} differs from "
                             f"the teacher's {tuple(teacher.shape)}; expected the same (use a "
                             "projector)")


@register_loss("feature_mse", paper="FitNets (Romero et al. 2015, ICLR)",
               needs_teacher=True, needs_labels=False, logit_loss=False, defaults={},
               description="mean squared difference of student and teacher features")
def feature_mse(student_feat: Tensor, teacher_feat: Tensor, labels: Tensor | None = None
                ) -> Tensor:
    """Per example: the mean over feature elements of ``(f_s − f_t)²`` (teacher detached)."""
    _same(student_feat, teacher_feat, "feature_mse")
    diff = student_feat - teacher_feat.detach()
    return diff.pow(2).flatten(1).mean(-1)


@register_loss("feature_cosine", paper="cosine feature alignment, after FitNets",
               needs_teacher=True, needs_labels=False, logit_loss=False, defaults={},
               description="1 - cosine similarity of flattened student and teacher features")
def feature_cosine(student_feat: Tensor, teacher_feat: Tensor, labels: Tensor | None = None
                   ) -> Tensor:
    """Per example: ``1 − cos(f_s, f_t)`` over the flattened features (teacher detached)."""
    _same(student_feat, teacher_feat, "feature_cosine")
    return 1.0 - F.cosine_similarity(student_feat.flatten(1), teacher_feat.detach().flatten(1),
                                     dim=-1, eps=1e-8)


@register_loss("channel_kd", paper="Shu et al. 2021, Channel-wise KD for dense prediction; "
               "used by LAD (label-assisted distillation)", needs_teacher=True, needs_labels=False,
               logit_loss=False, defaults={"temperature": 4.0},
               description="channel-wise KD: per-channel spatial softmax at T, KL, T^2",
               trailing_dims=(4,),
               constraints={"temperature": {"low": 0, "low_open": True}})
def channel_kd(student_feat: Tensor, teacher_feat: Tensor, labels: Tensor | None = None, *,
               temperature: float = 4.0) -> Tensor:
    """Channel-wise distillation per example: each channel's map becomes a distribution over
    positions (softmax of ``map / T``); ``T²/C · Σ_c KL(φ_t,c ‖ φ_s,c)``. Inputs ``(B, C, ...)``
    with at least one spatial dimension."""
    _same(student_feat, teacher_feat, "channel_kd")
    if student_feat.ndim < 3:
        raise ParameterError(f"channel_kd needs (batch, channels, positions...) maps, got shape "
                             f"{tuple(student_feat.shape)}")
    b, c = student_feat.shape[:2]
    t = temperature
    log_s = F.log_softmax(student_feat.reshape(b, c, -1) / t, -1)
    log_t = F.log_softmax(teacher_feat.detach().reshape(b, c, -1) / t, -1)
    return (log_t.exp() * (log_t - log_s)).sum(-1).mean(-1) * t * t
