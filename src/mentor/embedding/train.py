"""Train an embedder with cluster contrast, with and without Learning to Purification's
offline teacher (METHODS.md §33; Lan, Teng, Zhang, Zhang and Tao, "Learning to Purification
for Unsupervised Person Re-identification", IEEE TIP 2023, official code
tengxiao14/Purification_ReID; cluster contrast: Dai et al., "Cluster Contrast for
Unsupervised Person Re-Identification", ACCV 2022, official code
alibaba/cluster-contrast-reid).

:func:`train_embedder` trains :class:`Embedder` (an MLP, inputs → 128 → 128 → 64, ReLU)
for ``epochs`` epochs. Every epoch:

1. embed the training samples and give them pseudo-labels
   (:func:`~mentor.embedding.cluster.cluster_labels`: DBSCAN, ``eps`` 0.5, on k-reciprocal
   Jaccard distances; outliers dropped) -- or, for the supervised upper bound (``labels=
   "identity"``), their true identities. The very first epoch of a run without a teacher or
   an ``init`` model clusters the raw inputs: the randomly initialised MLP is no stand-in
   for the ImageNet-pretrained backbone whose features the official code clusters first
   [reconstruction]. The labels' purity / NMI / coverage against the hidden identities are
   recorded (telemetry, never read by training or selection);
2. initialise a :class:`~mentor.embedding.memory.ClusterMemory` with the clusters'
   centroids (momentum 0.2);
3. take ``steps`` Adam steps on P×K batches (``batch_size / instances`` clusters drawn
   without replacement, ``instances`` samples of each, without replacement where the
   cluster is large enough; seeded) on the mean of
   :func:`~mentor.embedding.memory.centroid_nce`, updating the memory after each step;
4. score mAP on the validation query / gallery split.

Selection reads the validation mAP only: the weights of the first epoch with the best value
are kept and the test split is scored once, at the end (:class:`TrainedEmbedder`).

Defaults that differ from the official ResNet-50 runs, chosen once for TB-REID on the
validation mAP of seed 0's cluster-contrast run among four settings (temperature 0.05 / 0.1,
embedding 32 / 64, ``eps`` 0.4 / 0.5 / 0.6): temperature 0.1 (official 0.05), ``eps`` 0.5
(official 0.6 with ``k1`` 30), embedding 64.

**Purification's offline teacher** (``teacher=``): a frozen embedder trained beforehand with
cluster contrast on its own noisy pseudo-labels (round 1). The student (round 2, a fresh
embedder with the same seed, so the same initial weights, as the official scripts) learns
from it as the official code does [code: examples/Purification_train_usl.py,
Purification/models/cm.py]:

- the first epoch's pseudo-labels and memory come from the *teacher's* embeddings, and the
  memory is frozen in that epoch (momentum 1); later epochs re-cluster the student's own
  embeddings;
- every step adds ``distill_weight`` (μ, 1.0 as the official runs) times
  :func:`feature_distillation`, ``Σ_d (n(f_s) − n(f_t))_d²`` of the normalised student and
  teacher embeddings, to the cluster-contrast loss.

``distill="assignment"`` is the catalogue's reading instead (§33, ``[recon]``):
:func:`assignment_distillation`, ``KL(softmax(n(f_t)·C_t/τ) ‖ softmax(n(f_s)·C_s/τ))``
between the teacher's soft assignment over the teacher-space centroids ``C_t`` of the
epoch's clusters and the student's over the memory centroids ``C_s`` [reconstruction].
Deviations from the official code, all [reconstruction]: the teacher-label epoch is the
first of the same ``epochs`` (officially an extra epoch with twice the iterations); an MLP
on vectors instead of a ResNet-50 on images, so no image augmentation; no global / upper /
lower part features here (the paper's multi-view features are left out of this trainer;
CORE-ReID's part views, multi-view clustering and fusion are
:mod:`mentor.embedding.core`).

Every epoch's record in ``history`` says where its labels came from (``labels_from``:
``raw``, ``teacher``, ``student``, ``identity``) and the memory momentum used.

``split="source"`` trains on the labeled source-domain samples instead (with ``labels=
"identity"``; selection still on the target validation split), and ``init=`` starts from a
given embedder's weights (its embeddings, not the raw inputs, are clustered in the first
epoch): the pieces of the UDA setting of §43 CORE-ReID (source pre-training, then target
adaptation); CORE-ReID's own UDA trainer, measured, is :mod:`mentor.embedding.core`.

:func:`compare_arms` runs the arms of the measurement on one data set and seed, every
trained arm with the same data, model, steps per epoch and seed:

- ``raw``: the input features, no training (cosine or Euclidean distance, whichever has the
  higher validation mAP);
- ``contrast``: cluster contrast, ``epochs`` epochs; it is also the teacher;
- ``contrast_long``: cluster contrast for twice the epochs: the compute of teacher and
  student together;
- ``purification``: the student of the ``contrast`` teacher (official feature distillation);
- ``purification_kl``: the same with ``distill="assignment"``;
- ``teacher_labels``: the student with ``distill_weight`` 0: only the first epoch's teacher
  labels and frozen centroids (an ablation);
- ``supervised``: the true training identities in the memory (an upper bound).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import DataError, MentorError, check_param
from .cluster import cluster_labels, label_quality, relabel
from .memory import ClusterMemory, cluster_centroids
from .metrics import METRICS, retrieval
from .testbed import ReIDData

LABELS = ("clusters", "identity")
DISTILL = ("feature", "assignment")
SPLITS = ("train", "source")


def feature_distillation(student: Tensor, teacher: Tensor) -> Tensor:
    """Per example ``Σ_d (n(f_s) − n(f_t))_d²``: the squared L2 distance of the normalised
    embeddings ``(B, d)`` (Purification's official feature distillation, ``MSELoss`` per
    element, mean over the batch, summed over the dimensions); ``(B,)``."""
    if student.shape != teacher.shape or student.dim() != 2:
        raise DataError(f"student embeddings have shape {tuple(student.shape)} and teacher "
                        f"embeddings {tuple(teacher.shape)}; expected the same (B, d)")
    return (F.normalize(student, dim=1) - F.normalize(teacher, dim=1)).pow(2).sum(1)


def assignment_distillation(student: Tensor, teacher: Tensor, student_centroids: Tensor,
                            teacher_centroids: Tensor, temperature: float = 0.1) -> Tensor:
    """Per example ``KL(p_t ‖ p_s)`` with ``p = softmax(n(f)·C/τ)`` over the ``K``
    centroids of each side (``(K, d_s)``, ``(K, d_t)``; the catalogue's §33 reading)
    [reconstruction]; ``(B,)``."""
    check_param("assignment_distillation", "temperature", temperature, low=0, low_open=True)
    if len(student_centroids) != len(teacher_centroids):
        raise DataError(f"student_centroids have {len(student_centroids)} rows and "
                        f"teacher_centroids {len(teacher_centroids)}; expected one per "
                        "cluster on both sides")
    log_s = F.log_softmax(F.normalize(student, dim=1) @ student_centroids.t() / temperature, 1)
    log_t = F.log_softmax(F.normalize(teacher, dim=1) @ teacher_centroids.t() / temperature,
                          1)
    return (log_t.exp() * (log_t - log_s)).sum(1)


class Embedder(nn.Module):
    """``x (N, D) → embedding (N, out)``: Linear-ReLU-Linear-ReLU-Linear."""

    def __init__(self, dim: int, hidden: int = 128, out: int = 64):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden),
                                 nn.ReLU(), nn.Linear(hidden, out))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def embed(model: nn.Module | None, x: Tensor) -> Tensor:
    """``model``'s embeddings of ``x`` (eval mode, no gradient); ``None``: ``x`` itself."""
    if model is None:
        return x
    model.eval()
    with torch.no_grad():
        return model(x)


def evaluate(model: nn.Module | None, data: ReIDData, split: str = "val",
             metric: str = "cosine") -> dict[str, float]:
    """mAP, Rank-1, Rank-5 (and the evaluated / skipped query counts) of ``model`` (``None``:
    the raw inputs) on ``split``: ``"val"`` (validation query / gallery) or ``"test"``."""
    if split not in ("val", "test"):
        raise MentorError(f"split must be 'val' or 'test', got {split!r}")
    q, g = (data.val_query, data.val_gallery) if split == "val" else (data.query, data.gallery)
    e = embed(model, data.x)
    return retrieval(e[q], e[g], data.identity[q], data.identity[g], data.camera[q],
                     data.camera[g], metric=metric)


@dataclass
class TrainedEmbedder:
    """A trained embedder (eval mode), the selected epoch, its validation mAP, the test
    figures (``mAP``, ``rank1``, ``rank5``, ``evaluated``, ``skipped``) and per-epoch
    ``history`` (``epoch``, ``labels_from``, ``momentum``, ``clusters``, ``purity``,
    ``nmi``, ``coverage`` of the pseudo-labels, ``loss``, ``val_mAP``)."""

    model: Embedder | None
    best_epoch: int
    val_mAP: float
    test: dict[str, float]
    history: list[dict] = field(default_factory=list)
    metric: str = "cosine"

    @property
    def purity(self) -> float:
        """The pseudo-labels' purity at the selected epoch (``nan`` without training)."""
        return self.history[self.best_epoch]["purity"] if self.history else float("nan")


def _int(name: str, value, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise MentorError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _batches(labels: Tensor, steps: int, clusters: int, instances: int,
             gen: torch.Generator) -> list[Tensor]:
    """P×K batches of row positions into ``labels`` (every row clustered)."""
    members = [torch.nonzero(labels == k).flatten() for k in range(int(labels.max()) + 1)]
    out = []
    for _ in range(steps):
        pick = torch.randperm(len(members), generator=gen)[:clusters]
        rows = []
        for k in pick.tolist():
            m = members[k]
            if len(m) >= instances:
                rows.append(m[torch.randperm(len(m), generator=gen)[:instances]])
            else:
                rows.append(m[torch.randint(len(m), (instances,), generator=gen)])
        out.append(torch.cat(rows))
    return out


def train_embedder(data: ReIDData, *, labels: str = "clusters",
                   teacher: nn.Module | None = None, distill: str = "feature",
                   distill_weight: float = 1.0, epochs: int = 12, steps: int = 40,
                   batch_size: int = 64, instances: int = 4, lr: float = 1e-3,
                   weight_decay: float = 5e-4, temperature: float = 0.1,
                   momentum: float = 0.2, update: str = "mean", eps: float = 0.5,
                   min_samples: int = 4, k1: int = 20, k2: int = 6, hidden: int = 128,
                   out: int = 64, init: nn.Module | None = None, split: str = "train",
                   seed: int = 0) -> TrainedEmbedder:
    """Train :class:`Embedder` on ``data``'s training samples (module docstring): pseudo-
    labels from clustering (``labels="clusters"``) or the true identities (``"identity"``,
    the supervised upper bound), optionally distilled from a frozen ``teacher``."""
    if labels not in LABELS:
        raise MentorError(f"labels must be one of {', '.join(LABELS)}, got {labels!r}")
    if distill not in DISTILL:
        raise MentorError(f"distill must be one of {', '.join(DISTILL)}, got {distill!r}")
    if split not in SPLITS:
        raise MentorError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    if teacher is not None and labels != "clusters":
        raise MentorError(f"teacher must be None with labels {labels!r}; the offline teacher "
                          "refines cluster pseudo-labels")
    if split == "source" and labels != "identity":
        raise MentorError(f"labels must be 'identity' with split 'source', got {labels!r}; "
                          "the source domain is the labeled one")
    epochs, steps = _int("epochs", epochs), _int("steps", steps)
    batch_size, instances = _int("batch_size", batch_size), _int("instances", instances)
    if batch_size % instances:
        raise MentorError(f"batch_size must be a multiple of instances ({instances}), got "
                          f"{batch_size}")
    check_param("train_embedder", "distill_weight", distill_weight, low=0)
    check_param("train_embedder", "lr", lr, low=0, low_open=True)
    rows_all = data.source if split == "source" else data.train
    if not len(rows_all):
        raise DataError(f"{split} names no sample; expected training samples")
    if not len(data.val_query) or not len(data.val_gallery):
        raise DataError("val_query or val_gallery names no sample; expected a validation "
                        "split for selection")
    if teacher is not None:
        teacher.eval()
        for p in teacher.parameters():
            p.requires_grad_(False)
    torch.manual_seed(seed)
    net = Embedder(data.dim, _int("hidden", hidden), _int("out", out))
    if init is not None:
        try:
            net.load_state_dict(init.state_dict())
        except RuntimeError:
            raise MentorError(f"init must be an Embedder of input {data.dim}, hidden {hidden} "
                              f"and output {out}, got {type(init).__name__} with other "
                              "weights") from None
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
    x = data.x[rows_all]
    truth = data.identity[rows_all]
    best_state, best_epoch, best_val = copy.deepcopy(net.state_dict()), -1, -1.0
    history: list[dict] = []
    t_feats = embed(teacher, x) if teacher is not None else None
    for epoch in range(epochs):
        from_teacher = teacher is not None and epoch == 0
        feats = t_feats if from_teacher else embed(net, x)
        if labels == "identity":
            lab, origin = relabel(truth.numpy()), "identity"
        else:  # the first epoch without a teacher or init model clusters the raw inputs
            origin = "teacher" if from_teacher else \
                "raw" if epoch == 0 and teacher is None and init is None else "student"
            lab = cluster_labels(x if origin == "raw" else feats, eps=eps,
                                 min_samples=min_samples, k1=k1, k2=k2)
        m_epoch = 1.0 if from_teacher else float(momentum)
        record = {"epoch": epoch, "labels_from": origin, "momentum": m_epoch,
                  **label_quality(lab, truth)}
        kept = torch.from_numpy(np.flatnonzero(lab >= 0))
        y_all = torch.from_numpy(lab)
        if len(kept) == 0:  # nothing clustered: no step this epoch
            record.update(loss=float("nan"))
        else:
            y = y_all[kept]
            memory = ClusterMemory.from_features(feats[kept], y, temperature=temperature,
                                                 momentum=m_epoch, update=update)
            t_centroids = cluster_centroids(t_feats[kept], y) \
                if teacher is not None and distill == "assignment" else None
            per = max(1, min(batch_size // instances, len(memory)))
            losses = []
            net.train()
            for rows in _batches(y, steps, per, instances, gen):
                xb, yb = x[kept[rows]], y[rows]
                f = net(xb)
                loss = memory.loss(f, yb).mean()
                if teacher is not None and distill_weight > 0:
                    ft = t_feats[kept[rows]]
                    kd = feature_distillation(f, ft) if distill == "feature" else \
                        assignment_distillation(f, ft, memory.centroids, t_centroids,
                                                temperature)
                    loss = loss + distill_weight * kd.mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                memory.update(f.detach(), yb)
                losses.append(loss.item())
            record.update(loss=float(np.mean(losses)))
        score = evaluate(net, data, "val")["mAP"]
        record.update(val_mAP=score)
        history.append(record)
        if score > best_val:
            best_state, best_epoch, best_val = copy.deepcopy(net.state_dict()), epoch, score
    net.load_state_dict(best_state)
    net.eval()
    return TrainedEmbedder(net, best_epoch, best_val, evaluate(net, data, "test"), history)


def raw_features(data: ReIDData) -> TrainedEmbedder:
    """The raw-input baseline: no training; the distance (cosine or Euclidean) with the
    higher validation mAP (the first on a tie), then the test split."""
    vals = {m: evaluate(None, data, "val", m)["mAP"] for m in METRICS}
    metric = max(METRICS, key=lambda m: vals[m])
    return TrainedEmbedder(None, -1, vals[metric], evaluate(None, data, "test", metric),
                           metric=metric)


ARMS = ("raw", "contrast", "contrast_long", "purification", "purification_kl",
        "teacher_labels", "supervised")


def compare_arms(data: ReIDData, *, seed: int = 0, epochs: int = 12,
                 arms: tuple[str, ...] = ARMS, **train) -> dict[str, TrainedEmbedder]:
    """The ``arms`` (module docstring; the ``contrast`` arm, the teacher, always runs) with
    the same seed and ``epochs``; ``train``: further arguments of :func:`train_embedder`,
    the same for every trained arm."""
    bad = [a for a in arms if a not in ARMS]
    if bad:
        raise MentorError(f"arms must be among {', '.join(ARMS)}, got {bad[0]!r}")
    out = {}
    if "raw" in arms:
        out["raw"] = raw_features(data)
    out["contrast"] = teacher = train_embedder(data, seed=seed, epochs=epochs, **train)
    if "contrast_long" in arms:
        out["contrast_long"] = train_embedder(data, seed=seed, epochs=2 * epochs, **train)
    student = dict(teacher=teacher.model, seed=seed, epochs=epochs)
    if "purification" in arms:
        out["purification"] = train_embedder(data, **student, **train)
    if "purification_kl" in arms:
        out["purification_kl"] = train_embedder(data, distill="assignment", **student,
                                                **train)
    if "teacher_labels" in arms:
        out["teacher_labels"] = train_embedder(data, **{**student, **train,
                                                        "distill_weight": 0.0})
    if "supervised" in arms:
        out["supervised"] = train_embedder(data, labels="identity", seed=seed, epochs=epochs,
                                           **train)
    return {a: out[a] for a in ARMS if a in out}
