"""QUEACO's weak-label refiner (METHODS.md §12 ``label-refiner:WeakLabelRefiner``; Zhang et
al., "QUEACO: Borrowing Treasures from Weakly-labeled Behavior Data for Query Attribute
Value Extraction", CIKM 2021).

The paper's teacher, trained on the strong (clean) tags, re-labels the weak (behaviour) tags
for the student. The exact combination rule is not given in the catalogue; this is its
reconstruction (METHODS.md marks it ``[recon of the exact rule]``): on every real token the
teacher's tag ``argmax_c p_t(c | x)`` replaces the weak tag where the teacher's probability
of that tag is *strictly above* ``threshold``; elsewhere the weak tag stays. Threshold ``1.0``
therefore never overrides (the degenerate case: the weak tags unchanged) and threshold ``0``
gives the teacher's tags wherever its top probability is positive (pure pseudo-labels).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..errors import DataError, MentorError
from .testbed import check_tags


def refine(weak: Tensor, teacher_probs: Tensor, mask: Tensor, threshold: float = 0.9,
           num_types: int = 3) -> tuple[Tensor, Tensor]:
    """``(refined tags, overridden)``: ``weak`` ``(N, L)`` with the teacher's top tag where
    its probability in ``teacher_probs`` ``(N, L, tags)`` exceeds ``threshold``;
    ``overridden`` marks the real tokens whose tag the teacher replaced (same or not)."""
    check_tags(weak, mask, num_types, "weak")
    tags = 1 + 2 * num_types
    if not torch.is_tensor(teacher_probs) or \
            tuple(teacher_probs.shape) != (*weak.shape, tags):
        raise DataError(f"teacher_probs has shape "
                        f"{tuple(getattr(teacher_probs, 'shape', ()))}; expected "
                        f"{(*weak.shape, tags)}: one probability per token and tag")
    if not float(threshold) == float(threshold) or not 0.0 <= float(threshold) <= 1.0:
        raise MentorError(f"threshold must be in [0, 1], got {threshold!r}")
    real = teacher_probs[mask]
    if len(real) and (not torch.isfinite(real).all() or float(real.min()) < 0
                      or float(real.max()) > 1 + 1e-6):
        raise DataError("teacher_probs holds a value outside [0, 1]; expected probabilities")
    conf, top = teacher_probs.max(-1)
    overridden = (conf > float(threshold)) & mask
    return torch.where(overridden, top, weak), overridden
