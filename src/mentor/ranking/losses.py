"""MemReranker's two student objectives (METHODS.md §25 ``loss:SoftBCEPointwise``,
``loss:ContrastiveMetric``), pure functions returning one value per term (the caller
reduces).

- :func:`soft_bce`: stage 1, pointwise binary cross-entropy of the student's logit ``s``
  against a soft label ``ỹ ∈ [0, 1]``: ``−[ỹ·log σ(s) + (1 − ỹ)·log(1 − σ(s))]``, computed as
  ``softplus(s) − ỹ·s`` (finite for any logit). At ``ỹ ∈ {0, 1}`` it is the ordinary (hard)
  binary cross-entropy.
- :func:`info_nce`: stage 2, InfoNCE over one query's candidates with hard negatives:
  for each positive candidate ``+`` of a query, ``−log e^{s_+/τ} / (e^{s_+/τ} + Σ_{n ∈
  hard} e^{s_n/τ})`` where ``hard`` are the ``k`` negatives (the query's candidates that
  are not positive) the student currently scores highest -- chosen on detached scores, so
  the selection carries no gradient; ties go to the lower row id.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .._util.args import positive_int
from ..errors import DataError, MentorError


def soft_bce(logits: Tensor, targets: Tensor) -> Tensor:
    """``softplus(s) − ỹ·s`` elementwise (= ``−[ỹ log σ(s) + (1−ỹ) log(1−σ(s))]``); the
    targets get no gradient."""
    if not torch.is_tensor(targets) or logits.shape != targets.shape:
        raise DataError(f"targets has shape {tuple(getattr(targets, 'shape', ()))} but logits "
                        f"has {tuple(logits.shape)}; expected the same shape")
    t = targets.detach().to(logits.dtype)
    if not bool(((t >= 0) & (t <= 1)).all()):
        raise DataError(f"targets holds {float(t[~((t >= 0) & (t <= 1))][0])!r}; expected "
                        "soft labels in [0, 1]")
    return F.softplus(logits) - t * logits


def info_nce(scores: Tensor, positive: Tensor, query: Tensor, *, num_negatives: int = 5,
             temperature: float = 1.0) -> tuple[Tensor, Tensor]:
    """InfoNCE with the ``num_negatives`` hardest negatives of each positive's query.

    ``scores`` ``(M,)`` the student's logits, ``positive`` ``(M,)`` bool, ``query`` ``(M,)``
    integer query ids (rows need not be grouped). Returns ``(losses, rows)``: one loss per
    positive row that has at least one negative in its query, and those rows (ascending).
    Fewer than ``num_negatives`` negatives: all of them are used."""
    positive_int("num_negatives", num_negatives)
    if not float(temperature) > 0:
        raise MentorError(f"temperature must be > 0, got {temperature}")
    if scores.dim() != 1:
        raise DataError(f"scores has shape {tuple(scores.shape)}; expected one score per row")
    for name, t in (("positive", positive), ("query", query)):
        if not torch.is_tensor(t) or t.shape != scores.shape:
            raise DataError(f"{name} has shape {tuple(getattr(t, 'shape', ()))} but scores has "
                            f"{tuple(scores.shape)}; expected one per row")
    if positive.dtype != torch.bool:
        raise DataError(f"positive has dtype {positive.dtype}; expected booleans")
    if query.is_floating_point() or query.dtype == torch.bool:
        raise DataError(f"query has dtype {query.dtype}; expected integer query ids")
    _, inv = torch.unique(query, return_inverse=True)
    order = torch.argsort(inv, stable=True)  # rows grouped by query, ascending row id
    counts = torch.bincount(inv)
    starts = torch.cumsum(counts, 0) - counts
    pos = torch.arange(len(inv)) - torch.repeat_interleave(starts, counts)
    table = torch.full((len(counts), int(counts.max()) if len(counts) else 0), -1,
                       dtype=torch.int64)
    table[inv[order], pos] = order
    valid = table >= 0
    row = table.clamp_min(0)
    neg = valid & ~positive[row]
    key = scores.detach()[row].masked_fill(~neg, -float("inf"))
    hard = torch.sort(key, dim=1, descending=True, stable=True).indices[:, :num_negatives]
    hard_ok = torch.gather(neg, 1, hard)
    hard_scores = scores[torch.gather(row, 1, hard)] / temperature
    hard_scores = hard_scores.masked_fill(~hard_ok, -float("inf"))
    rows = (positive & hard_ok.any(1)[inv]).nonzero().flatten()
    s_pos = scores[rows] / temperature
    logits = torch.cat([s_pos[:, None], hard_scores[inv[rows]]], 1)
    return torch.logsumexp(logits, 1) - s_pos, rows
