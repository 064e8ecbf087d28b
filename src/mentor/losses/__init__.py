"""Losses: pure functions returning one value per example (the caller reduces).

Every loss has the signature ``loss(student_logits, teacher_logits, labels, **params)`` and is
registered by name in :data:`mentor.registry.LOSSES` with its declared parameter constraints
(:class:`LossSpec`). ``standardized(loss)`` applies logit standardization (Sun et al., 2024)
to both logit inputs of any logit loss.
"""

from .base import LossSpec, loss_spec, standardized
from .logits import cross_entropy, dkd, kd, logit_standardize

__all__ = ["LossSpec", "loss_spec", "standardized", "cross_entropy", "dkd", "kd",
           "logit_standardize"]
