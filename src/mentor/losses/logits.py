"""Logit-distillation losses for classification (METHODS.md §27, §59.2).

All functions return per-example values of shape ``(B,)``.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import ParameterError
from .base import register_loss

_POSITIVE = {"low": 0, "low_open": True}
_NONNEG = {"low": 0}


def logit_standardize(z: Tensor, eps: float = 1e-7) -> Tensor:
    """Z-score each row of ``z``: ``(z - mean) / (eps + std)`` with the unbiased std.

    Sun et al., "Logit Standardization in Knowledge Distillation", CVPR 2024 (mentor reads
    the official ``sunshangquan/logit-standardization-KD`` code: same eps and unbiased std).
    The result is unchanged by ``z -> a*z + b`` for ``a > 0``, which makes any logit loss
    built on it insensitive to the teacher's logit scale. Equivalent to giving each sample its
    own temperature ``T * std(z)``.
    """
    if z.shape[-1] < 2:
        raise ParameterError(f"logit_standardize needs at least 2 classes, got {z.shape[-1]}")
    mean = z.mean(dim=-1, keepdim=True)
    std = z.std(dim=-1, keepdim=True)
    return (z - mean) / (eps + std)


def standardized(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a logit loss so both logit inputs are z-scored first (logit standardization)."""
    def wrapped(student_logits, teacher_logits, labels=None, **params):
        return fn(logit_standardize(student_logits), logit_standardize(teacher_logits),
                  labels, **params)

    wrapped.__name__ = f"standardized_{getattr(fn, '__name__', 'loss')}"
    wrapped.__doc__ = f"Logit-standardized {getattr(fn, '__name__', 'loss')}."
    return wrapped


def _check_pair(student_logits: Tensor, teacher_logits: Tensor) -> None:
    if student_logits.shape != teacher_logits.shape:
        raise ParameterError(
            f"student logits have shape {tuple(student_logits.shape)} but teacher logits have "
            f"shape {tuple(teacher_logits.shape)}; expected the same (batch, classes)")


def _ce_mean(student_logits, teacher_logits=None, labels=None, *, scale=1.0,
             label_smoothing=0.0):
    ce = F.cross_entropy(student_logits, labels, label_smoothing=label_smoothing)
    return ce if scale == 1.0 else scale * ce


@register_loss("ce", description="cross-entropy with the hard labels", mean=_ce_mean,
               needs_teacher=False, needs_labels=True, defaults={"label_smoothing": 0.0},
               constraints={"label_smoothing": {"low": 0, "high": 1, "high_open": True}},
               logit_loss=False)
def cross_entropy(student_logits: Tensor, teacher_logits: Tensor | None = None,
                  labels: Tensor | None = None, *, label_smoothing: float = 0.0) -> Tensor:
    """Per-example cross-entropy ``-log softmax(z)[y]`` (optionally label-smoothed)."""
    if labels is None:
        raise ParameterError("ce needs labels, got None")
    return F.cross_entropy(student_logits, labels, reduction="none",
                           label_smoothing=label_smoothing)


def _kd_mean(student_logits, teacher_logits, labels=None, *, scale=1.0, temperature=4.0):
    if student_logits.shape != teacher_logits.shape:  # checked inline: this runs every step
        _check_pair(student_logits, teacher_logits)
    log_ps = F.log_softmax(student_logits / temperature, dim=-1)
    log_pt = F.log_softmax(teacher_logits / temperature, dim=-1)
    # T^2 and the objective's weight in one factor: one multiplication less to run forward
    # and backward on every step (the same bits whenever T^2 or the weight is a power of 2)
    return (F.kl_div(log_ps, log_pt, reduction="batchmean", log_target=True)
            * (temperature**2 * scale))


@register_loss("kd", mean=_kd_mean,
               description="Hinton KD: T^2 * KL(softmax(z_t/T) || softmax(z_s/T))",
               paper="Hinton et al. 2015, arXiv:1503.02531",
               needs_teacher=True, needs_labels=False, defaults={"temperature": 4.0},
               constraints={"temperature": _POSITIVE})
def kd(student_logits: Tensor, teacher_logits: Tensor, labels: Tensor | None = None, *,
       temperature: float = 4.0) -> Tensor:
    """Knowledge distillation loss ``T² · KL(p_t^T ‖ p_s^T)`` per example.

    Hinton, Vinyals & Dean, "Distilling the Knowledge in a Neural Network", 2015. The ``T²``
    factor keeps gradient magnitudes comparable across temperatures. ``labels`` is ignored.
    """
    _check_pair(student_logits, teacher_logits)
    log_ps = F.log_softmax(student_logits / temperature, dim=-1)
    log_pt = F.log_softmax(teacher_logits / temperature, dim=-1)
    return (log_pt.exp() * (log_pt - log_ps)).sum(-1) * temperature**2


@register_loss("dkd", description="decoupled KD: alpha*TCKD + beta*NCKD",
               paper="Zhao et al. 2022, Decoupled Knowledge Distillation, CVPR",
               needs_teacher=True, needs_labels=True,
               defaults={"alpha": 1.0, "beta": 8.0, "temperature": 4.0},
               constraints={"alpha": _NONNEG, "beta": _NONNEG, "temperature": _POSITIVE})
def dkd(student_logits: Tensor, teacher_logits: Tensor, labels: Tensor, *, alpha: float = 1.0,
        beta: float = 8.0, temperature: float = 4.0) -> Tensor:
    """Decoupled KD per example: ``α·TCKD + β·NCKD`` (Zhao et al., CVPR 2022).

    TCKD is ``T²·KL`` between the binary (target, non-target) probabilities of teacher and
    student; NCKD is ``T²·KL`` between their distributions over the non-target classes only.
    Computed in log space (the official mdistiller code masks with ``-1000`` and takes
    ``log`` of probabilities; the values agree where that code is finite). The warm-up
    ``min(epoch / warmup, 1)`` of the paper is an objective schedule
    (:class:`mentor.objectives.Objective`), not part of this function.
    """
    _check_pair(student_logits, teacher_logits)
    if labels is None:
        raise ParameterError("dkd needs labels (the target class of each row), got None")
    t = temperature
    zs, zt = student_logits / t, teacher_logits / t
    target = F.one_hot(labels, zs.shape[-1]).bool()
    log_ps, log_pt = F.log_softmax(zs, -1), F.log_softmax(zt, -1)
    # binary (target, non-target) log-probabilities
    neg_inf = torch.finfo(zs.dtype).min
    ls_t = log_ps.gather(-1, labels[:, None]).squeeze(-1)
    lt_t = log_pt.gather(-1, labels[:, None]).squeeze(-1)
    ls_o = torch.logsumexp(log_ps.masked_fill(target, neg_inf), -1)
    lt_o = torch.logsumexp(log_pt.masked_fill(target, neg_inf), -1)
    tckd = lt_t.exp() * (lt_t - ls_t) + lt_o.exp() * (lt_o - ls_o)
    # distributions over the non-target classes
    lq_s = F.log_softmax(zs.masked_fill(target, neg_inf), -1)
    lq_t = F.log_softmax(zt.masked_fill(target, neg_inf), -1)
    nckd = (lq_t.exp() * (lq_t - lq_s)).masked_fill(target, 0.0).sum(-1)
    return (alpha * tckd + beta * nckd) * t * t


@register_loss("nkd", paper="Yang et al. 2023, From Knowledge Distillation to Self-Knowledge "
               "Distillation (NKD), ICCV", needs_teacher=True, needs_labels=True,
               description="normalized KD: -p_t[y]*log p_s[y] - gamma*T^2*sum q_t log q_s over "
               "the renormalised non-target classes",
               defaults={"temperature": 1.0, "gamma": 1.5},
               constraints={"temperature": _POSITIVE, "gamma": _NONNEG})
def nkd(student_logits: Tensor, teacher_logits: Tensor, labels: Tensor, *,
        temperature: float = 1.0, gamma: float = 1.5) -> Tensor:
    """Normalized KD per example (METHODS.md §18; official ``yzd-v/cls_KD`` ``nkd.py``).

    Target term at T = 1: ``-p_t[y] · log p_s[y]`` (teacher probability detached as a weight).
    Non-target term: both logit vectors without column ``y``, softmax at ``T``, and
    ``-γ·T²·Σ q_t log q_s`` (a cross-entropy, so it includes the teacher's entropy; its
    gradient equals the KL's). The method adds the usual CE on labels separately. With
    ``γ = 0`` and a one-hot teacher this is the cross-entropy.
    """
    _check_pair(student_logits, teacher_logits)
    if labels is None:
        raise ParameterError("nkd needs labels (the target class of each row), got None")
    teacher_logits = teacher_logits.detach()  # the teacher only provides targets
    log_ps = F.log_softmax(student_logits, -1)
    p_t = F.softmax(teacher_logits, -1)
    idx = labels[:, None]
    target = -(p_t.gather(-1, idx) * log_ps.gather(-1, idx)).squeeze(-1)
    mask = F.one_hot(labels, student_logits.shape[-1]).bool()
    neg_inf = torch.finfo(student_logits.dtype).min
    lq_s = F.log_softmax((student_logits / temperature).masked_fill(mask, neg_inf), -1)
    q_t = F.softmax((teacher_logits / temperature).masked_fill(mask, neg_inf), -1)
    non_target = -(q_t * lq_s).masked_fill(mask, 0.0).sum(-1)
    return target + gamma * temperature**2 * non_target


def _bernoulli_kl_logits(v: Tensor, u: Tensor) -> Tensor:
    """Element-wise ``KL(Bernoulli(σ(v)) ‖ Bernoulli(σ(u)))`` computed from the logits.

    ``log σ(a) = −softplus(−a)`` and ``log(1 − σ(a)) = −softplus(a)`` keep every term finite in
    float32 (the official code clamps probabilities at 1e-8, which float32 cannot hold next
    to 1 and so overflows to inf for confident logits).
    """
    p = torch.sigmoid(v)
    return p * (F.softplus(-u) - F.softplus(-v)) + (1 - p) * (F.softplus(u) - F.softplus(v))


@register_loss("binary_kl", paper="Dual-Head Knowledge Distillation (DHKD)",
               needs_teacher=True, needs_labels=False,
               description="per-class sigmoid KL at T: T^2 * sum_c KL(sig(z_t/T) || sig(z_s/T))",
               defaults={"temperature": 2.0}, constraints={"temperature": _POSITIVE})
def binary_kl(student_logits: Tensor, teacher_logits: Tensor, labels: Tensor | None = None, *,
              temperature: float = 2.0) -> Tensor:
    """BinaryKL of DHKD (official ``penghui-yang/DHKD`` ``BinaryKL.py``): each class as an
    independent Bernoulli ``sigmoid(z/T)``; ``T² · Σ_c KL_bin(σ_t ‖ σ_s)`` per example.
    A logit-level loss: the paper shows it degrades a single shared head (use a dual head)."""
    _check_pair(student_logits, teacher_logits)
    t = temperature
    return _bernoulli_kl_logits(teacher_logits.detach() / t, student_logits / t).sum(-1) * t * t


@register_loss("binary_kl_norm", paper="Dual-Head Knowledge Distillation (DHKD)",
               needs_teacher=True, needs_labels=False,
               description="T^2 * sum_c KL(0.5 || sigmoid((z_s - z_t)/T)): bounded pull of each "
               "logit difference to 0", defaults={"temperature": 2.0},
               constraints={"temperature": _POSITIVE})
def binary_kl_norm(student_logits: Tensor, teacher_logits: Tensor,
                   labels: Tensor | None = None, *, temperature: float = 2.0) -> Tensor:
    """BinaryKL-Norm of DHKD (``BinaryKLNorm.py``, used by ``--distill dhkd``):
    ``d = sigmoid((z_s − z_t)/T)``, ``T² · Σ_c KL_bin(0.5 ‖ d)`` per example; zero exactly when
    ``z_s = z_t``. Not invariant to a constant shift of one input (it matches logits)."""
    _check_pair(student_logits, teacher_logits)
    t = temperature
    u = (student_logits - teacher_logits.detach()) / t
    # KL(0.5 ‖ σ(u)) = ½(softplus(u) + softplus(−u)) − log 2
    return (0.5 * (F.softplus(u) + F.softplus(-u)) - math.log(2.0)).sum(-1) * t * t


@register_loss("symmetric_kl", paper="Zhang et al. 2018, Deep Mutual Learning; used by "
               "PaddleClas SSLD (Cui et al. 2021)", needs_teacher=True, needs_labels=False,
               description="1/2 [KL(p_s || p_t) + KL(p_t || p_s)] at temperature T (label-free)",
               defaults={"temperature": 1.0}, constraints={"temperature": _POSITIVE})
def symmetric_kl(student_logits: Tensor, teacher_logits: Tensor, labels: Tensor | None = None,
                 *, temperature: float = 1.0) -> Tensor:
    """Symmetric KL per example, ``½[KL(p_s‖p_t) + KL(p_t‖p_s)] · T²`` (PaddleClas
    ``dmlloss.py`` uses T = 1; the ``T²`` factor is mentor's, and is 1 there). The teacher
    side is detached: only the student learns (SSLD freezes the teacher)."""
    _check_pair(student_logits, teacher_logits)
    t = temperature
    log_ps = F.log_softmax(student_logits / t, -1)
    log_pt = F.log_softmax(teacher_logits.detach() / t, -1)
    return 0.5 * ((log_pt.exp() - log_ps.exp()) * (log_pt - log_ps)).sum(-1) * t * t


@register_loss("topk_kd", paper="Guided DML with a GEMINI teacher [recon]",
               needs_teacher=True, needs_labels=False,
               description="KD over the teacher's top-k candidate classes, renormalised there",
               defaults={"k": 3, "temperature": 1.0},
               constraints={"k": {"low": 1}, "temperature": _POSITIVE})
def topk_kd(student_logits: Tensor, teacher_logits: Tensor, labels: Tensor | None = None, *,
            k: int = 3, temperature: float = 1.0) -> Tensor:
    """Hypothesis-restricted KD: ``T² · KL(p_t|_H ‖ p_s|_H)`` where ``H`` is the teacher's
    top-``k`` classes and both distributions are renormalised over ``H``.

    A reconstruction from the paper's abstract (METHODS.md §28, tagged [recon]): the student
    is only asked to order the teacher's candidate hypotheses, not to copy the whole tail.
    ``k = C`` is plain KD.
    """
    _check_pair(student_logits, teacher_logits)
    num_classes = student_logits.shape[-1]
    if int(k) != k or k > num_classes:
        raise ParameterError(f"topk_kd.k must be a whole number <= the number of classes "
                             f"({num_classes}), got {k!r}")
    idx = teacher_logits.topk(int(k), dim=-1).indices
    t = temperature
    log_ps = F.log_softmax(student_logits.gather(-1, idx) / t, -1)
    log_pt = F.log_softmax(teacher_logits.gather(-1, idx) / t, -1)
    return (log_pt.exp() * (log_pt - log_ps)).sum(-1) * t * t
