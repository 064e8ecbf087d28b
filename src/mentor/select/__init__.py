"""Selectors: which samples to keep, label or query (DESIGN.md §1, METHODS.md §58.4).

A selector scores a pool (``score(pool, teacher, student) -> scores``) and picks a budget
(``pick(scores, budget) -> indices``). Active-learning selectors come with the active loop;
this module holds the random pruner of "KD for data pruning" (METHODS.md §57).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..data.rows import subset_rows
from ..data.splits import Split
from ..errors import check_param
from ..registry import SELECTORS


@SELECTORS.register("random", description="keep a uniformly random subset (the pruning "
                    "baseline that, with KD, beats score-based pruners: KD for data pruning)")
class RandomSelector:
    """Random scores from a seeded generator; ``pick`` keeps the ``budget`` highest."""

    def __init__(self, seed: int = 0):
        self.seed = int(seed)

    def score(self, pool: Tensor, teacher=None, student=None) -> Tensor:
        g = torch.Generator().manual_seed(self.seed)
        return torch.rand(len(pool), generator=g)

    def pick(self, scores: Tensor, budget: int) -> Tensor:
        check_param("random", "budget", budget, low=1, high=len(scores))
        return scores.topk(int(budget)).indices.sort().values

    def reseed(self, seed: int) -> "RandomSelector":
        self.seed = int(seed)
        return self


def subset(split: Split, indices: Tensor) -> Split:
    """The rows ``indices`` of a split; ``source_index`` keeps their original positions."""
    indices = torch.as_tensor(indices).long()
    base = split.source_index if split.source_index is not None else torch.arange(len(split))
    weak = split.weak_y[indices] if split.weak_y is not None else None
    return Split(subset_rows(split.x, indices), split.y[indices], split.labeled[indices],
                 base[indices], weak)


def keep_fraction(split: Split, fraction: float, seed: int) -> Split:
    """A random ``fraction`` of the training rows (at least one), chosen by ``seed``."""
    check_param("pruning", "keep_fraction", fraction, low=0, high=1, low_open=True)
    budget = max(1, int(round(fraction * len(split))))
    sel = RandomSelector(seed)
    return subset(split, sel.pick(sel.score(split.x), budget))


from .selectors import (LLKD, KCenter, Pool, ProbabilisticCoreSet,  # noqa: E402
                        RobustActiveDistillation, SkillProfile, StudentEntropy, StudentMargin,
                        TeacherConfidence, VarianceSplit, coverage_radius, greedy_k_center,
                        select, top)

__all__ = ["KCenter", "LLKD", "Pool", "ProbabilisticCoreSet", "RandomSelector",
           "RobustActiveDistillation", "SkillProfile", "StudentEntropy", "StudentMargin",
           "TeacherConfidence", "VarianceSplit", "coverage_radius", "greedy_k_center",
           "keep_fraction", "select", "subset", "top"]
