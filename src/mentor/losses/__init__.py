"""Losses: pure functions returning one value per example (the caller reduces).

Every loss has the signature ``loss(student_logits, teacher_logits, labels, **params)`` and is
registered by name in :data:`mentor.registry.LOSSES` with its declared parameter constraints
(:class:`LossSpec`). ``standardized(loss)`` applies logit standardization (Sun et al., 2024)
to both logit inputs of any logit loss.
"""

from .base import LossSpec, loss_spec
from .logits import (binary_kl, binary_kl_norm, cross_entropy, dkd, kd, logit_standardize, nkd,
                     standardized, symmetric_kl, topk_kd)
from .consistency import prob_mse, pseudo_ce
from .features import channel_kd, feature_cosine, feature_mse
from .ranking import pld, teacher_optimal_order
from .selfkd import uskd, zipf_non_target

__all__ = ["LossSpec", "loss_spec", "standardized", "binary_kl", "binary_kl_norm",
           "channel_kd", "cross_entropy", "dkd", "feature_cosine", "feature_mse", "kd",
           "logit_standardize", "nkd", "pld", "prob_mse", "pseudo_ce", "symmetric_kl", "teacher_optimal_order", "topk_kd",
           "uskd", "zipf_non_target"]
