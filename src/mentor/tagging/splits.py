"""TB-SEQ tagging as the engine's :class:`~mentor.data.splits.Splits` for ``task: tagging``
(:mod:`mentor.tasks.tagging`): token ids ``(N, L)`` (``0`` pads), tags ``(N, L)`` with
:data:`~mentor.tasks.tagging.PAD` on padding."""

from __future__ import annotations

import torch
from torch import Tensor

from ..data.splits import Split, Splits
from ..tasks.tagging import PAD
from .testbed import TaggingData


def _tags(tags: Tensor, mask: Tensor) -> Tensor:
    return torch.where(mask, tags, torch.full_like(tags, PAD))


def as_splits(data: TaggingData) -> Splits:
    """``data`` as splits: train = the strong sequences (labeled: their clean tags) and the
    weak sequences (unlabeled; their gold tags kept for telemetry, hidden from the student;
    their weak tags as ``weak_y``), validation and test with gold tags. Inputs are token ids
    (``vocab_size`` the testbed's vocabulary); ``num_classes`` is the number of tags."""
    gold = _tags(data.gold, data.mask)
    train_ids = torch.cat([data.strong, data.weak_ids])
    labeled = torch.zeros(len(train_ids), dtype=torch.bool)
    labeled[:len(data.strong)] = True
    weak = _tags(data.weak, data.mask)[train_ids]
    weak[labeled] = torch.where(weak[labeled] == PAD, PAD, -1)  # strong rows: no weak tags

    def split(ids: Tensor, flags: Tensor | None = None, weak_y: Tensor | None = None) -> Split:
        flags = torch.ones(len(ids), dtype=torch.bool) if flags is None else flags
        return Split(data.tokens[ids], gold[ids], flags, weak_y=weak_y)

    return Splits(data.name, split(train_ids, labeled, weak), split(data.val),
                  split(data.test), data.num_tags, (int(data.tokens.shape[1]),), seed=0,
                  teacher_inputs="standardized", vocab_size=data.vocab)
