"""Losses: pure functions returning one value per example (the caller reduces).

Every loss has the signature ``loss(student_logits, teacher_logits, labels, **params)`` and is
registered by name in :data:`mentor.registry.LOSSES` with its declared parameter constraints
(:class:`LossSpec`). ``standardized(loss)`` applies logit standardization (Sun et al., 2024)
to both logit inputs of any logit loss.
"""

from .base import LossSpec, loss_spec, standardized
from .logits import (binary_kl, binary_kl_norm, cross_entropy, dkd, kd, logit_standardize, nkd,
                     symmetric_kl, topk_kd)
from .ranking import pld, teacher_optimal_order

__all__ = ["LossSpec", "loss_spec", "standardized", "binary_kl", "binary_kl_norm",
           "cross_entropy", "dkd", "kd", "logit_standardize", "nkd", "pld", "symmetric_kl",
           "teacher_optimal_order", "topk_kd"]
