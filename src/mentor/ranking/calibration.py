"""Pairwise teacher judgements → calibrated pointwise soft labels (MemReranker, METHODS.md
§25 ``label-refiner:PairwiseToPointwiseCalibration``).

MemReranker's teachers (several LLM judges) answer "is candidate ``i`` more useful than
``j`` for this query?"; the paper turns these comparisons into one soft relevance label per
(query, candidate). The paper's abstract gives the stages; the aggregation below is a
**reconstruction** (METHODS.md tags it ``[paper; aggregation recon]``), a sensible default
rather than the paper's exact procedure:

1. **Both presentation orders, all teachers** (:func:`average_orders`): for every ordered
   pair, ``P̄(i ≻ j) = mean_k ½·[P_k(i ≻ j | i shown first) + 1 − P_k(j ≻ i | j shown
   first)]``. A judge that adds a constant ``c`` to the probability of preferring the
   first-shown candidate has it cancel exactly (``½[(p + c) + 1 − (1 − p + c)] = p``); a bias
   in logits is made antisymmetric (``P̄(i≻j) + P̄(j≻i) = 1``, ``½`` for equal candidates).
2. **Bradley–Terry per query** (:func:`bradley_terry`): scores ``β`` maximizing
   ``Σ_{i≠j} P̄(i≻j)·log σ(β_i − β_j) − (λ/2)·‖β‖²`` (the log-likelihood of the soft
   comparisons; the L2 prior ``λ``, default 0.01, makes the scores identifiable -- BT alone
   fixes them only up to a constant -- and finite when one candidate wins every
   comparison; at the optimum ``Σ_i β_i = 0``). Solved by Newton's method in float64,
   batched over queries, with step halving whenever a step would lower the objective.
3. **Calibration** (:func:`fit_calibration`): ``ỹ_i = σ((β_i − b)/T)``, one offset ``b``
   and temperature ``T`` for all queries, fitted by maximum likelihood (logistic regression
   of the targets on ``β``, Newton in float64) on the **training queries only**. The
   targets (:func:`soft_labels`) are, by default, the teachers' mean pointwise answer
   ("relevant?", :meth:`~mentor.ranking.SimulatedTeachers.hard_labels`) on the training
   rows: the comparisons fix the order within a query, the pointwise answers fix where on
   that scale "relevant" begins. No gold label is used.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import DataError, MentorError
from .testbed import RankingData


def average_orders(forward: Tensor, backward: Tensor) -> Tensor:
    """``P̄(i ≻ j) = mean_k ½·[forward_k + 1 − backward_k]`` with ``forward`` ``(K, ...)``
    the teachers' ``P_k(i ≻ j | i shown first)`` and ``backward`` ``(K, ...)`` their
    ``P_k(j ≻ i | j shown first)`` for the same pairs (float64)."""
    if forward.shape != backward.shape or forward.dim() < 1:
        raise DataError(f"forward has shape {tuple(forward.shape)} and backward "
                        f"{tuple(backward.shape)}; expected the same (teachers, pairs...) shape")
    return (0.5 * (forward.double() + 1.0 - backward.double())).mean(0)


@dataclass(frozen=True)
class Comparisons:
    """Aggregated comparisons of every query: ``prefs[q, i, j] = P̄(i ≻ j)`` ``(Q, L, L)``
    float64 among query ``q``'s candidates (padded to the longest query, zero diagonal),
    ``rows[q, i]`` the row id of its ``i``-th candidate (−1 on padding), ``mask`` the real
    entries ``(Q, L)``."""

    prefs: Tensor
    rows: Tensor
    mask: Tensor


def query_table(data: RankingData) -> tuple[Tensor, Tensor]:
    """``rows (Q, L)``: each query's row ids in ascending order, padded with −1, and the
    ``mask`` of real entries."""
    q = data.query
    order = torch.argsort(q, stable=True)
    counts = torch.bincount(q, minlength=data.num_queries)
    starts = torch.cumsum(counts, 0) - counts
    pos = torch.arange(len(q)) - torch.repeat_interleave(starts, counts)
    rows = torch.full((data.num_queries, int(counts.max())), -1, dtype=torch.int64)
    rows[q[order], pos] = order
    return rows, rows >= 0


def compare_all(data: RankingData, teachers) -> Comparisons:
    """Ask ``teachers`` (an object with ``preferences(first, second) -> (K, P)``, e.g.
    :class:`~mentor.ranking.SimulatedTeachers`) about every ordered pair of candidates of
    every query, in both presentation orders, and aggregate (:func:`average_orders`)."""
    rows, mask = query_table(data)
    nq, n = rows.shape
    qi, i, j = torch.meshgrid(torch.arange(nq), torch.arange(n), torch.arange(n), indexing="ij")
    keep = mask[qi, i] & mask[qi, j] & (i != j)
    a, b = rows[qi, i][keep], rows[qi, j][keep]
    p = average_orders(teachers.preferences(a, b), teachers.preferences(b, a))
    prefs = torch.zeros(nq, n, n, dtype=torch.float64)
    prefs[keep] = p
    return Comparisons(prefs, rows, mask)


def _objective(beta: Tensor, prefs: Tensor, prior: float) -> Tensor:
    d = beta[:, :, None] - beta[:, None, :]
    return (prefs * F.logsigmoid(d)).sum((1, 2)) - 0.5 * prior * \
        (beta * beta).sum(1)


def bradley_terry(prefs: Tensor, mask: Tensor | None = None, *, prior: float = 0.01,
                  iterations: int = 50, tol: float = 1e-10) -> Tensor:
    """Bradley–Terry scores ``β`` ``(Q, L)`` float64 of soft comparisons ``prefs``
    ``(Q, L, L)`` (``prefs[q, i, j]`` the weight of "``i`` beats ``j``"; the diagonal and
    padded entries are ignored) maximizing ``Σ_{i≠j} prefs_ij·log σ(β_i − β_j) −
    (prior/2)·‖β‖²`` per query: Newton steps, halved while they lower the objective, until
    the largest step is below ``tol`` or after ``iterations``. Padded entries get 0."""
    if not float(prior) > 0:
        raise MentorError(f"prior must be > 0 (it makes the scores identifiable), got {prior}")
    if prefs.dim() != 3 or prefs.shape[1] != prefs.shape[2]:
        raise DataError(f"prefs has shape {tuple(prefs.shape)}; expected (queries, L, L)")
    nq, n, _ = prefs.shape
    if mask is None:
        mask = torch.ones(nq, n, dtype=torch.bool)
    if tuple(mask.shape) != (nq, n):
        raise DataError(f"mask has shape {tuple(mask.shape)}; expected ({nq}, {n})")
    pair = (mask[:, :, None] & mask[:, None, :] & ~torch.eye(n, dtype=torch.bool)).double()
    p = prefs.double() * pair
    if not torch.isfinite(p).all() or bool((p < 0).any()):
        raise DataError("prefs holds negative or non-finite values; expected probabilities")
    total = p + p.transpose(1, 2)  # n_ij: comparisons of i and j in either direction
    eye = torch.eye(n, dtype=torch.float64)
    beta = torch.zeros(nq, n, dtype=torch.float64)
    value = _objective(beta, p, prior)
    for _ in range(int(iterations)):
        s = torch.sigmoid(beta[:, :, None] - beta[:, None, :])
        grad = (p - s * total).sum(-1) - prior * beta
        w = s * (1.0 - s) * total
        neg_hess = torch.diag_embed(w.sum(-1)) - w + prior * eye
        step = torch.linalg.solve(neg_hess, grad[..., None])[..., 0]
        t = torch.ones(nq, 1, dtype=torch.float64)
        for _ in range(40):
            new = _objective(beta + t * step, p, prior)
            worse = new < value - 1e-12 * value.abs().clamp_min(1.0)
            if not bool(worse.any()):
                break
            t = torch.where(worse[:, None], 0.5 * t, t)
        beta = beta + t * step
        value = _objective(beta, p, prior)
        if float((t * step).abs().max()) < tol:
            break
    return beta * mask


def fit_calibration(beta: Tensor, targets: Tensor, iterations: int = 100,
                    ridge: float = 1e-8) -> tuple[float, float]:
    """Offset ``b`` and temperature ``T`` of ``σ((β − b)/T)`` fitted to ``targets`` in
    [0, 1] by maximum likelihood (mean binary cross-entropy; Newton on ``a = 1/T``,
    ``c = −b/T`` in float64 from 0, steps halved while they raise the loss, a ``ridge`` on
    both for finite answers on separable targets).
    Returns ``(b, T)``; refuses targets that fall as ``β`` rises (``T`` would be negative)."""
    x = beta.double().reshape(-1)
    y = torch.as_tensor(targets).double().reshape(-1)
    if x.shape != y.shape or not len(x):
        raise DataError(f"beta has {len(x)} values and targets {len(y)}; expected one target "
                        "per score, at least one")
    if not (torch.isfinite(y).all() and (y >= 0).all() and (y <= 1).all()):
        raise DataError("targets holds values outside [0, 1]; expected probabilities")
    feats = torch.stack([x, torch.ones_like(x)], 1)
    n = float(len(x))

    def loss(th: Tensor) -> float:
        z = feats @ th
        return float((F.softplus(z) - y * z).sum() / n + 0.5 * ridge * th.dot(th))
    theta = torch.zeros(2, dtype=torch.float64)
    value = loss(theta)
    for _ in range(int(iterations)):
        pr = torch.sigmoid(feats @ theta)
        grad = feats.T @ (pr - y) / n + ridge * theta
        hess = (feats.T * (pr * (1 - pr))) @ feats / n + ridge * torch.eye(2, dtype=torch.float64)
        step = torch.linalg.solve(hess, grad)
        for _ in range(40):  # halve a step that would raise the loss
            if loss(theta - step) <= value:
                break
            step = 0.5 * step
        theta = theta - step
        value = loss(theta)
        if float(step.abs().max()) < 1e-12:
            break
    a, c = float(theta[0]), float(theta[1])
    if not a > 0 or not np.isfinite(a):
        raise MentorError(f"calibration fitted slope 1/T = {a:.4g}; expected the targets to "
                          "rise with the Bradley-Terry score")
    return -c / a, 1.0 / a


@dataclass(frozen=True)
class SoftLabels:
    """Per row: the Bradley–Terry score ``beta`` and the soft label ``labels = σ((β − b)/T)``
    (``(M,)``, float64 and float32), with the calibration ``b``, ``T`` fitted on the training
    queries."""

    beta: Tensor
    labels: Tensor
    b: float
    T: float


def soft_labels(data: RankingData, teachers, targets: Tensor | None = None, *,
                threshold: int = 2, prior: float = 0.01) -> SoftLabels:
    """MemReranker's pairwise → pointwise labels for every row of ``data``: all ordered
    pairs of each query judged by ``teachers`` in both orders (:func:`compare_all`), BT
    scores per query (:func:`bradley_terry`, L2 ``prior``), calibration ``b, T``
    (:func:`fit_calibration`) on the training rows against ``targets`` (one value in
    [0, 1] per row of ``data``; default the teachers' mean pointwise answer
    ``hard_labels(k, threshold)``)."""
    comp = compare_all(data, teachers)
    scores = bradley_terry(comp.prefs, comp.mask, prior=prior)
    beta = torch.zeros(data.num_rows, dtype=torch.float64)
    beta[comp.rows[comp.mask]] = scores[comp.mask]
    if targets is None:
        targets = torch.stack([teachers.hard_labels(k, threshold)
                               for k in range(teachers.num_teachers)]).double().mean(0)
    targets = torch.as_tensor(targets)
    if tuple(targets.shape) != (data.num_rows,):
        raise DataError(f"targets has shape {tuple(targets.shape)}; expected "
                        f"({data.num_rows},): one per row")
    train = data.rows("train")
    b, t = fit_calibration(beta[train], targets[train])
    return SoftLabels(beta, torch.sigmoid((beta - b) / t).float(), b, t)
