"""Cluster pseudo-labels (Learning to Purification §33, CORE-ReID §43; METHODS.md R15).

:func:`cluster_pseudo_labels` runs k-means on features and returns cluster ids: the
pseudo-labels of the unlabeled-only setting, scored against hidden labels with
:func:`matched_accuracy` (best one-to-one map of clusters to classes). With a few labels,
:class:`ClusterLabels` turns clusters into class pseudo-labels: each cluster takes the majority
class of its labeled members (cluster-then-label); clusters without labeled members give none.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..contracts import Batch, Targets
from ..errors import MentorError, check_param
from ..registry import REFINERS
from .thresholds import _admit, _Stateful, hard_logits, unlabeled_rows


def cluster_pseudo_labels(features: Tensor, k: int, seed: int = 0) -> Tensor:
    """k-means cluster ids ``(N,)`` of ``features`` ``(N, D)`` (scikit-learn, 10 restarts)."""
    check_param("cluster_pseudo_labels", "k", k, low=2)
    if len(features) < k:
        raise MentorError(f"cluster_pseudo_labels: {len(features)} rows cannot form {k} "
                          "clusters; expected at least k rows")
    from sklearn.cluster import KMeans
    x = features.detach().reshape(len(features), -1).double().cpu().numpy()
    ids = KMeans(n_clusters=int(k), n_init=10, random_state=seed).fit_predict(x)
    return torch.from_numpy(ids.astype(np.int64))


def matched_accuracy(pred: Tensor, truth: Tensor) -> float:
    """Accuracy of cluster ids after the best one-to-one map to classes (Hungarian)."""
    from scipy.optimize import linear_sum_assignment
    p, t = pred.cpu().numpy(), truth.cpu().numpy()
    counts = np.zeros((p.max() + 1, t.max() + 1))
    np.add.at(counts, (p, t), 1)
    rows, cols = linear_sum_assignment(-counts)
    return float(counts[rows, cols].sum() / len(p))


@REFINERS.register("cluster_labels", paper="Learning to Purification, "
                   "CORE-ReID: k-means pseudo-labels; classes by majority vote of the "
                   "labeled members (cluster-then-label)",
                   description="k-means on the training inputs once; an unlabeled row's "
                   "pseudo-label is its cluster's majority labeled class")
class ClusterLabels(_Stateful):
    """k-means with ``k`` clusters (default ``3 × classes``) on the training inputs (the
    engine hands them over with :meth:`bind_inputs`); unlabeled rows get their cluster's
    majority labeled class as a hard target, rows of clusters without labeled members none.
    The teacher's outputs are not used: combine it with a teacher objective's mask only."""

    _state = ("cluster", "cluster_class")

    def __init__(self, k: int | None = None, seed: int = 0):
        if k is not None:
            check_param("cluster_labels", "k", k, low=2)
        self.k, self.seed = k, int(seed)
        self.cluster = self.cluster_class = torch.empty(0, dtype=torch.long)
        self._labeled: Tensor | None = None
        self._labels: Tensor | None = None
        self.num_classes = 0

    def bind(self, labeled: Tensor, labels: Tensor, num_classes: int) -> None:
        self._labeled, self._labels = labeled.cpu(), labels.cpu()
        self.num_classes = num_classes

    def bind_inputs(self, x: Tensor) -> None:
        k = self.k or 3 * self.num_classes
        self.cluster = cluster_pseudo_labels(x, k, self.seed)
        self.cluster_class = torch.full((k,), -1, dtype=torch.long)
        lab = self._labeled
        for c in range(k):
            members = self._labels[(self.cluster == c) & lab]
            if len(members):
                self.cluster_class[c] = int(torch.bincount(members).argmax())

    def __call__(self, targets: Targets, batch: Batch) -> Targets:
        unl = unlabeled_rows(batch, len(targets.logits), targets.logits.device)
        if self.cluster.numel() == 0:
            raise MentorError("cluster_labels needs the training inputs; expected the engine "
                              "to call bind_inputs (fit does)")
        cls = self.cluster_class[self.cluster[batch.index.cpu()]].to(targets.labels.device)
        has = unl & (cls >= 0)
        labels = torch.where(has, cls, targets.labels)
        c = targets.logits.shape[-1]
        logits = torch.where(has[:, None], hard_logits(labels.clamp_min(0), c,
                                                       targets.logits.dtype), targets.logits)
        return _admit(targets.with_(logits=logits, labels=labels), unl, has)
