"""Sub-pseudo labels (SPL, METHODS.md §13): an enlarged label space from (weak label,
teacher prediction) pairs, for pre-training a student on weakly-labeled data.

A teacher trained on weak labels predicts ``t = argmax p_t(x)`` for each weakly-labeled row
with weak label ``w``. Where they agree the row keeps class ``w``; where they disagree the pair
``(w, t)`` becomes a class of its own -- a "sub-concept" of ``w`` that looks like ``t`` --
provided at least ``min_count`` rows share it (rarer pairs fall back to ``w``). The student is
pre-trained with cross-entropy over the ``num_weak + len(pairs)`` classes and then fine-tuned
or linearly probed on clean labels. [paper; the minimum-count selection rule is a
reconstruction]
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import torch
from torch import Tensor

from ..errors import MentorError, check_param


@dataclass
class SubPseudoLabels:
    """The SPL label map: ``(weak, teacher) -> class id``. :meth:`fit` builds it from the
    training rows; calling it maps any rows (pairs it did not keep map to the weak label).

    >>> import torch
    >>> weak = torch.tensor([0, 0, 0, 1, 1, 1, 1])
    >>> pred = torch.tensor([0, 1, 1, 1, 0, 2, 1])
    >>> spl = SubPseudoLabels.fit(weak, pred, num_weak=3, min_count=2)
    >>> spl.pairs, spl.num_classes
    ({(0, 1): 3}, 4)
    >>> spl(weak, pred).tolist()
    [0, 3, 3, 1, 1, 1, 1]
    """

    num_weak: int
    pairs: dict[tuple[int, int], int] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return self.num_weak + len(self.pairs)

    @classmethod
    def fit(cls, weak: Tensor, pred: Tensor, num_weak: int, min_count: int = 1
            ) -> "SubPseudoLabels":
        """Keep every disagreeing pair seen at least ``min_count`` times, numbered after the
        weak classes in the order (weak, teacher)."""
        check_param("sub_pseudo_labels", "min_count", min_count, low=1)
        weak, pred = _check(weak, pred, num_weak)
        counts = Counter((int(w), int(t)) for w, t in zip(weak.tolist(), pred.tolist())
                         if w != t)
        kept = sorted(p for p, c in counts.items() if c >= int(min_count))
        return cls(int(num_weak), {p: num_weak + i for i, p in enumerate(kept)})

    def __call__(self, weak: Tensor, pred: Tensor) -> Tensor:
        weak, pred = _check(weak, pred, self.num_weak)
        out = weak.clone()
        for (w, t), i in self.pairs.items():
            out[(weak == w) & (pred == t)] = i
        return out

    def to_weak(self, ids: Tensor) -> Tensor:
        """The weak class each SPL id refines (``id`` itself for the weak classes)."""
        back = torch.arange(self.num_classes, device=ids.device)
        for (w, _), i in self.pairs.items():
            back[i] = w
        return back[ids]


def _check(weak: Tensor, pred: Tensor, num_weak: int) -> tuple[Tensor, Tensor]:
    weak, pred = torch.as_tensor(weak).long(), torch.as_tensor(pred).long()
    if weak.shape != pred.shape or weak.dim() != 1:
        raise MentorError(f"sub_pseudo_labels: weak labels {tuple(weak.shape)} and teacher "
                          f"predictions {tuple(pred.shape)} must be one class per row each")
    for name, v in (("weak labels", weak), ("teacher predictions", pred)):
        if len(v) and (int(v.min()) < 0 or int(v.max()) >= num_weak):
            raise MentorError(f"sub_pseudo_labels: {name} must be in [0, {num_weak}), got "
                              f"values from {int(v.min())} to {int(v.max())}")
    return weak, pred
