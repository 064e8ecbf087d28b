"""Tagging metrics (METHODS.md §12 QUEACO's evaluation, Zhang et al., CIKM 2021): span-level
F1 and token accuracy over the real tokens of padded BIO-tagged sequences.

Spans are decoded from BIO tags (:func:`spans`) as in CoNLL's ``conlleval``: ``B-k`` opens a
span of type ``k``; ``I-k`` continues the open span when it has type ``k``, and otherwise --
after ``O``, at the start, or after a span of another type -- *opens* a new span of type
``k`` (an ``I-`` without a preceding ``B-`` is read as a ``B-``); ``O`` and the end of the
real tokens close the open span. A span is ``(start, end, type)`` with ``end`` exclusive.

:func:`span_f1` is micro-averaged over all sequences: a predicted span counts as correct when
a gold span has the same start, end and type; precision = correct / predicted, recall =
correct / gold, F1 their harmonic mean; F1 is 1 when there are neither predicted nor gold
spans, and 0 when only one side has spans.
"""

from __future__ import annotations


import torch
from torch import Tensor

from ..errors import DataError
from ..tasks.tagging import f1_of, spans
from .testbed import check_tags


def _check(pred: Tensor, gold: Tensor, mask: Tensor, num_types: int) -> None:
    if not torch.is_tensor(mask) or mask.dtype != torch.bool:
        raise DataError(f"mask has dtype {getattr(mask, 'dtype', type(mask).__name__)}; "
                        "expected a boolean tensor, True on real tokens")
    check_tags(gold, mask, num_types, "gold")
    check_tags(pred, mask, num_types, "pred")


def span_counts(pred: Tensor, gold: Tensor, mask: Tensor,
                num_types: int = 3) -> tuple[int, int, int]:
    """``(correct, predicted, gold)`` span counts over all sequences."""
    _check(pred, gold, mask, num_types)
    correct = n_pred = n_gold = 0
    lengths = mask.sum(-1).tolist()
    for p, g, n in zip(pred.tolist(), gold.tolist(), lengths):
        ps, gs = spans(p[:n]), spans(g[:n])
        correct += len(ps & gs)
        n_pred += len(ps)
        n_gold += len(gs)
    return correct, n_pred, n_gold


def span_f1(pred: Tensor, gold: Tensor, mask: Tensor, num_types: int = 3) -> float:
    """Micro span F1 (exact start, end and type) over the real tokens of all sequences."""
    return f1_of(*span_counts(pred, gold, mask, num_types))


def token_accuracy(pred: Tensor, gold: Tensor, mask: Tensor, num_types: int = 3) -> float:
    """The fraction of real tokens whose predicted tag equals the gold tag."""
    _check(pred, gold, mask, num_types)
    n = int(mask.sum())
    if n == 0:
        raise DataError("mask marks no real token; expected at least one to score")
    return float(((pred == gold) & mask).sum()) / n
