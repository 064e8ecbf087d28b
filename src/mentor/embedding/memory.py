"""The cluster-contrast memory (METHODS.md §33 ``loss:ContrastiveMetric``; Dai et al., "Cluster
Contrast for Unsupervised Person Re-Identification", ACCV 2022, official code
alibaba/cluster-contrast-reid ``clustercontrast/models/cm.py``, used unchanged by Learning to
Purification, Lan et al., IEEE TIP 2023).

The memory holds one L2-normalised centroid per pseudo-identity (cluster), initialised each
epoch with the normalised mean of the cluster's normalised embeddings. A batch of embeddings
``f`` with cluster labels ``y`` is scored against every centroid:

- :func:`centroid_nce`, per example: ``−log softmax_k(n(f)·c_k / τ)[y]`` with ``n`` the
  L2 normalisation, i.e. InfoNCE (cross-entropy) over the centroids with temperature ``τ``
  (0.05 as the official code); the caller reduces (the trainer takes the mean).
- :meth:`ClusterMemory.update` (no gradient), after the loss: the centroid of every cluster
  ``y`` in the batch moves towards the batch's embeddings with momentum ``m`` (0.2 as the
  official code) and is re-normalised. ``update="mean"`` (default) uses the mean of the
  batch's normalised embeddings of the cluster, ``c_y ← n(m·c_y + (1 − m)·mean_b n(f_b))``,
  one step per cluster and batch [reconstruction: the catalogue's "momentum update of the
  cluster centroids by the batch's features"]; ``update="sample"`` is the official ``CM``
  update, one step per sample in batch order, ``c_y ← n(m·c_y + (1 − m)·n(f_b))``.
  Momentum 1 keeps the centroids (Purification's first student epoch on the teacher's
  centroids); momentum 0 replaces a centroid by the (mean) batch embedding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import DataError, MentorError, check_param

UPDATES = ("mean", "sample")


def _labels(labels: Tensor, n: int, k: int) -> Tensor:
    if not torch.is_tensor(labels) or labels.dim() != 1 or labels.is_floating_point() or \
            labels.dtype == torch.bool:
        raise DataError(f"labels have shape {tuple(getattr(labels, 'shape', ()))}; expected "
                        "one integer cluster id per embedding")
    if len(labels) != n:
        raise DataError(f"labels have {len(labels)} entries but there are {n} embeddings; "
                        "expected one per embedding")
    if n and (int(labels.min()) < 0 or int(labels.max()) >= k):
        bad = int(labels[(labels < 0) | (labels >= k)][0])
        raise DataError(f"labels hold cluster {bad}; expected ids in 0..{k - 1} (outliers "
                        "removed)")
    return labels.long()


def centroid_nce(features: Tensor, centroids: Tensor, labels: Tensor,
                 temperature: float = 0.05) -> Tensor:
    """Per-example InfoNCE over the centroids ``(K, d)`` of the embeddings ``features``
    ``(B, d)`` with cluster ids ``labels`` ``(B,)`` (module docstring); ``(B,)``."""
    check_param("centroid_nce", "temperature", temperature, low=0, low_open=True)
    if features.dim() != 2 or centroids.dim() != 2 or features.shape[1] != centroids.shape[1]:
        raise DataError(f"features have shape {tuple(features.shape)} and centroids "
                        f"{tuple(centroids.shape)}; expected (B, d) and (K, d)")
    y = _labels(labels, len(features), len(centroids))
    logits = F.normalize(features, dim=1) @ centroids.t() / float(temperature)
    return F.cross_entropy(logits, y, reduction="none")


def cluster_centroids(features: Tensor, labels: Tensor) -> Tensor:
    """``(K, d)``: the normalised mean of every cluster's normalised embeddings; ``labels``
    ``-1`` (outliers) are left out, clusters are ``0..K-1`` and each must have a member."""
    if features.dim() != 2:
        raise DataError(f"features have shape {tuple(features.shape)}; expected (N, d)")
    kept = labels >= 0
    k = int(labels.max()) + 1 if bool(kept.any()) else 0
    if k == 0:
        raise DataError("labels mark every embedding as an outlier; expected at least one "
                        "cluster")
    y = _labels(labels[kept], int(kept.sum()), k)
    f = F.normalize(features[kept].detach().float(), dim=1)
    sums = torch.zeros(k, f.shape[1]).index_add_(0, y, f)
    counts = torch.bincount(y, minlength=k)
    if bool((counts == 0).any()):
        raise DataError(f"cluster {int((counts == 0).nonzero()[0])} has no member; expected "
                        "labels 0..K-1 with every cluster used")
    return F.normalize(sums / counts[:, None], dim=1)


class ClusterMemory:
    """Centroids ``(K, d)`` (normalised on entry), a temperature, a momentum and the update
    rule (module docstring)."""

    def __init__(self, centroids: Tensor, *, temperature: float = 0.05,
                 momentum: float = 0.2, update: str = "mean"):
        check_param("ClusterMemory", "temperature", temperature, low=0, low_open=True)
        check_param("ClusterMemory", "momentum", momentum, low=0, high=1)
        if update not in UPDATES:
            raise MentorError(f"ClusterMemory.update must be one of {', '.join(UPDATES)}, got "
                              f"{update!r}")
        if not torch.is_tensor(centroids) or centroids.dim() != 2 or len(centroids) == 0:
            raise DataError(f"centroids have shape {tuple(getattr(centroids, 'shape', ()))}; "
                            "expected (K, d) with K >= 1")
        self.centroids = F.normalize(centroids.detach().float().clone(), dim=1)
        self.temperature = float(temperature)
        self.momentum = float(momentum)
        self.rule = update

    @classmethod
    def from_features(cls, features: Tensor, labels: Tensor, **kw) -> "ClusterMemory":
        """A memory whose centroids are :func:`cluster_centroids` of ``features``."""
        return cls(cluster_centroids(features, labels), **kw)

    def __len__(self) -> int:
        return len(self.centroids)

    def loss(self, features: Tensor, labels: Tensor) -> Tensor:
        """Per-example :func:`centroid_nce` against the current centroids."""
        return centroid_nce(features, self.centroids, labels, self.temperature)

    @torch.no_grad()
    def update(self, features: Tensor, labels: Tensor) -> None:
        """Move the centroids of the batch's clusters (module docstring)."""
        y = _labels(labels, len(features), len(self.centroids))
        f = F.normalize(features.detach().float(), dim=1)
        m = self.momentum
        if self.rule == "sample":
            for x, k in zip(f, y.tolist()):
                self.centroids[k] = F.normalize(m * self.centroids[k] + (1 - m) * x, dim=0)
            return
        ks = torch.unique(y)
        for k in ks.tolist():
            mean = f[y == k].mean(0)
            self.centroids[k] = F.normalize(m * self.centroids[k] + (1 - m) * mean, dim=0)
