"""Checkpoint merging of adapters (METHODS.md §3 LDA: ``teacher-updater:CheckpointMerge``).

LDA (paper 3) keeps adapter checkpoints while training and takes the final adapter of a
language as the average of the weights of selected checkpoints, to cope with languages
peaking at different steps ("asynchronous peak performance"). :func:`merge_checkpoints`
is the element-wise mean of state dicts with the same keys and shapes;
:func:`select_checkpoints` picks which: the ``k`` with the lowest validation error (ties:
the earlier first) or the last ``k`` ``[reconstruction]``: the paper's exact rule is not
in the material read.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from .._util.args import positive_int
from ..errors import MentorError

RULES = ("best", "last")


def merge_checkpoints(states: Sequence[dict[str, Tensor]]) -> dict[str, Tensor]:
    """Element-wise mean of ``states`` (float64 sum, cast back to each tensor's dtype)."""
    if not states:
        raise MentorError("states holds no checkpoint; expected at least one to merge")
    keys = list(states[0])
    for i, s in enumerate(states):
        if list(s) != keys or any(s[k].shape != states[0][k].shape for k in keys):
            raise MentorError(f"checkpoint {i} has keys or shapes unlike checkpoint 0; "
                              "expected checkpoints of the same adapter")
    return {k: (torch.stack([s[k].double() for s in states]).sum(0) / len(states))
            .to(states[0][k].dtype) for k in keys}


def select_checkpoints(val_errors: Sequence[float], k: int, rule: str = "best") -> list[int]:
    """Indices (in training order) of the ``k`` checkpoints to merge: the lowest validation
    errors (``best``) or the last ``k`` (``last``)."""
    positive_int("k", k)
    if rule not in RULES:
        raise MentorError(f"rule must be one of {', '.join(RULES)}, got {rule!r}")
    n = len(val_errors)
    if n == 0:
        raise MentorError("val_errors holds no checkpoint; expected at least one")
    if rule == "last":
        return list(range(max(0, n - k), n))
    order = sorted(range(n), key=lambda i: (val_errors[i], i))
    return sorted(order[:k])
