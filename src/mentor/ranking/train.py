"""Train a pointwise student scorer on teacher labels (MemReranker's distillation stages,
METHODS.md §25, on TB-RANK).

The student scores each (query, candidate) row alone from its features -- a linear scorer or
a small MLP (:func:`student_scorer`) -- and is trained with Adam (full batch, or mini-batches
of whole queries) on the training queries' rows:

- ``targets`` hard 0/1 labels (one teacher's pointwise answers, or the judges' majority
  vote): binary cross-entropy;
- ``targets`` soft labels (:func:`~mentor.ranking.soft_labels`): soft BCE
  (:func:`~mentor.ranking.soft_bce`, the paper's stage 1);
- plus ``nce_weight`` × InfoNCE over each query's candidates with the hardest negatives
  (:func:`~mentor.ranking.info_nce`, stage 2, here combined with stage 1 in one objective;
  positives are the rows whose target is at least ``positive_at``).

Model selection uses the validation queries' nDCG@k only (the first epoch with the best
value is kept; the test queries are scored once, at the end). :class:`TrainedScorer` carries
test MAP, nDCG@k and the ECE of ``σ(score)`` against binary relevance ``grade ≥ threshold``
(:mod:`mentor.ranking.metrics`). :func:`compare_labels` runs the four arms of METHODS.md's
CPU experiment on one data set and one seed.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .._util.args import non_negative, non_negative_int, positive_int
from ..errors import DataError
from .calibration import soft_labels
from .losses import info_nce, soft_bce
from .metrics import binary_ece, mean_average_precision, ndcg
from .testbed import RankingData, SimulatedTeachers


class _Squeeze(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return x.squeeze(-1)


def student_scorer(in_features: int, hidden: int = 0) -> nn.Module:
    """``features (M, d) → logits (M,)``: linear when ``hidden`` is 0, else
    ``d-hidden-1`` with a ReLU."""
    non_negative_int("hidden", hidden)
    if hidden == 0:
        return nn.Sequential(nn.Linear(in_features, 1), _Squeeze())
    return nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, 1),
                         _Squeeze())


@dataclass
class TrainedScorer:
    """A trained student (eval mode): the selected epoch, its validation nDCG@k, and on
    the test queries MAP, nDCG@k and the ECE of its sigmoid scores."""

    model: nn.Module
    best_epoch: int
    val_ndcg: float
    test_map: float
    test_ndcg: float
    test_ece: float


def evaluate(model: nn.Module, data: RankingData, split: str, *, k: int = 5,
             threshold: int = 2) -> dict[str, float]:
    """``map``, ``ndcg`` (at ``k``) and ``ece`` of ``model``'s scores on ``split``."""
    rows = data.rows(split)
    if not len(rows):
        raise DataError(f"split {split!r} names no query; expected at least one to evaluate")
    with torch.no_grad():
        s = model(data.x[rows]).double()
    g, q = data.grade[rows], data.query[rows]
    return {"map": mean_average_precision(s, g, q, threshold), "ndcg": ndcg(s, g, q, k),
            "ece": binary_ece(torch.sigmoid(s), g >= threshold)}


def train_scorer(data: RankingData, targets: Tensor, *, nce_weight: float = 0.0,
                 positive_at: float = 0.5, num_negatives: int = 5,
                 nce_temperature: float = 1.0, hidden: int = 0, seed: int = 0,
                 epochs: int = 100, lr: float = 0.01, weight_decay: float = 0.0,
                 batch_queries: int | None = None, k: int = 5,
                 threshold: int = 2) -> TrainedScorer:
    """Train :func:`student_scorer` on ``targets`` (one value in [0, 1] per row of ``data``;
    only the training queries' rows are used) with soft BCE (hard BCE at 0/1 targets), plus
    ``nce_weight`` × the mean InfoNCE of the positives (``targets ≥ positive_at``) against
    their query's ``num_negatives`` hardest negatives at ``nce_temperature``. Adam
    (``lr``, ``weight_decay``), ``epochs`` passes over the training queries, full batch or
    ``batch_queries`` queries per step in a seeded order. ``seed`` sets the initial weights
    and the order. Keeps the weights of the first epoch with the best validation nDCG@k."""
    targets = torch.as_tensor(targets)
    if tuple(targets.shape) != (data.num_rows,):
        raise DataError(f"targets has shape {tuple(targets.shape)}; expected "
                        f"({data.num_rows},): one per row")
    non_negative("nce_weight", nce_weight)
    positive_int("epochs", epochs)
    if not len(data.val):
        raise DataError("val names no query; expected validation queries for model selection")
    if batch_queries is not None:
        positive_int("batch_queries", batch_queries)
    torch.manual_seed(seed)
    net = student_scorer(data.x.shape[1], hidden)
    order_gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
    train_q = data.train
    y = targets.float()
    positive = y >= positive_at
    by_query = [None] * data.num_queries  # row ids of each query, built on demand

    def rows_of(queries: Tensor) -> Tensor:
        if batch_queries is None:
            return data.rows("train")
        parts = []
        for q in queries.tolist():
            if by_query[q] is None:
                by_query[q] = (data.query == q).nonzero().flatten()
            parts.append(by_query[q])
        return torch.cat(parts)

    best_state, best_epoch, best_val = copy.deepcopy(net.state_dict()), -1, -1.0
    for epoch in range(epochs):
        net.train()
        if batch_queries is None:
            batches = [train_q]
        else:
            perm = train_q[torch.randperm(len(train_q), generator=order_gen)]
            batches = list(perm.split(batch_queries))
        for qs in batches:
            rows = rows_of(qs)
            s = net(data.x[rows])
            loss = soft_bce(s, y[rows]).mean()
            if nce_weight > 0:
                terms, _ = info_nce(s, positive[rows], data.query[rows],
                                    num_negatives=num_negatives, temperature=nce_temperature)
                if len(terms):
                    loss = loss + nce_weight * terms.mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        net.eval()
        score = evaluate(net, data, "val", k=k, threshold=threshold)["ndcg"]
        if score > best_val:
            best_state, best_epoch, best_val = copy.deepcopy(net.state_dict()), epoch, score
    net.load_state_dict(best_state)
    net.eval()
    test = evaluate(net, data, "test", k=k, threshold=threshold)
    return TrainedScorer(net, best_epoch, best_val, test["map"], test["ndcg"], test["ece"])


ARMS = ("hard", "majority", "soft", "soft_nce")


def compare_labels(data: RankingData, teachers: SimulatedTeachers, *, teacher: int = 0,
                   threshold: int = 2, seed: int = 0, **train) -> dict[str, TrainedScorer]:
    """METHODS.md §25's CPU experiment on one data set: the same student trained on
    ``hard`` -- judge ``teacher``'s hard pointwise labels (BCE; with ``teacher`` the least
    noisy judge this is an oracle choice a user would not have) --, ``majority`` -- the
    majority vote of all judges' hard labels
    (:meth:`~mentor.ranking.SimulatedTeachers.majority_labels`, BCE; the paper's ablation:
    hard labels from the same judges as the soft labels) --, ``soft`` -- the Bradley–Terry
    soft labels of all judges (:func:`~mentor.ranking.soft_labels`, soft BCE) -- and
    ``soft_nce`` -- the soft labels plus InfoNCE (``nce_weight`` 1 unless given in
    ``train``). ``train``: further arguments of :func:`train_scorer`."""
    hard = teachers.hard_labels(teacher, threshold)
    majority = teachers.majority_labels(threshold)
    soft = soft_labels(data, teachers, threshold=threshold).labels
    nce = {"nce_weight": 1.0, **train}
    plain = {k: v for k, v in train.items() if k not in ("nce_weight",)}
    return {"hard": train_scorer(data, hard, seed=seed, threshold=threshold, **plain),
            "majority": train_scorer(data, majority, seed=seed, threshold=threshold, **plain),
            "soft": train_scorer(data, soft, seed=seed, threshold=threshold, **plain),
            "soft_nce": train_scorer(data, soft, seed=seed, threshold=threshold, **nce)}
