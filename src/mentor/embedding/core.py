"""CORE-ReID's training: source pre-training, then multi-view clustering with an EMA teacher
on the unlabeled target domain (METHODS.md §43; Nguyen et al., "CORE-ReID: Comprehensive
Optimization and Refinement through Ensemble Fusion in Domain Adaptation for Person
Re-identification", Software 2024; official code TrinhQuocNguyen/CORE-ReID
``source_pretrain.py``, ``target_train.py``, ``reid/trainers.py`` (``PreTrainer``,
``SingelmeanTrainer``); the soft triplet and label-smoothed CE of ``reid/loss``, from MMT).

:func:`soft_triplet` (``SoftTripletLoss``, margin 0 as the target trainer): per anchor, the
hardest positive ``d_ap = max`` and hardest negative ``d_an = min`` Euclidean distance
(``sqrt(clamp(d², 1e-12))``; the anchor is its own positive) within the batch;
``ℓ = −m·log_softmax([d_ap, d_an])_0 − (1 − m)·log_softmax([d_ap, d_an])_1``, i.e.
``softplus(d_ap − d_an)`` for ``m = 0``. Every anchor needs a negative in the batch.

:func:`pretrain_source` (UDA step 1): a :class:`~mentor.embedding.multiview.PartEmbedder`
with one classifier row per source identity, trained on the labeled *source* samples only
(their identities; no target sample is read) with ``CE(logits, y)`` (label smoothing 0.1)
``+ soft_triplet(g, y)`` on the global view, P×K batches of source identities; selection:
the epoch with the best target-validation mAP of the global view.

:func:`train_core_reid` (UDA step 2) adapts on the unlabeled target training samples with a
student and an EMA teacher, both starting from ``init`` (the pre-trained model; its
classifier is replaced by ``clusters`` rows). Every epoch, as ``target_train.py``:

1. extract the teacher's clustering features of every training sample -- its global and
   part views, or with ``fusion=True`` the :class:`~mentor.embedding.multiview.FusionHead`'s
   fused views of the teacher's map and the student's part embeddings -- and cluster each view
   separately with k-means (``clusters`` centres; the official ``MiniBatchKMeans`` with 700
   centres on Market-1501): three pseudo-label sets (``views="multi"``), or the global one
   only (``views="global"``, the single-view ablation);
2. set the student's and teacher's classifier rows to the L2-normalised global centroids;
3. a fresh Adam (lr, weight decay 5e-4), ``steps`` steps; each step draws one P×K batch per
   view from that view's pseudo-labels (the official three loaders) and takes
   ``CE(logits(b_g), y_g) + soft_triplet(g(b_g), y_g) + part_weight·Σ_p soft_triplet(u_p(b_p),
   y_p)`` (``part_weight`` 0.5), then moves the teacher: mentor's ``ema`` updater,
   ``θ_t ← m·θ_t + (1 − m)·θ_s`` with ``m = min(1 − 1/(t + 1), alpha)`` at global step ``t``
   (0-based, as the official ``_update_ema_variables``; ``warmup=False``: ``m = alpha``),
   BatchNorm statistics copied;
4. score the *teacher* on the target validation split (retrieval feature ``n(cat(views))``
   of the views the arm trains: global and parts, or global only for the single-view arm).

Selection reads the validation mAP only (the official code picks the best epoch on the test
split; here the test split is scored once, at the end). The pseudo-labels' quality against
the hidden training identities (purity, NMI with scikit-learn's
``normalized_mutual_info_score``) is recorded per view and epoch (telemetry, never read).

Deviations, all [reconstruction]: an MLP on vectors (:mod:`~mentor.embedding.parts`) for the
ResNet-50 on images, no image augmentation, no CycleGAN camera-style transfer, no horizontal
flip (BMFN reduces to L2 normalisation), ``alpha`` 0.99 instead of 0.999 for a run of a few
hundred steps instead of 32,000, lr 1e-3 instead of 3.5e-4, k-means (scikit-learn
``KMeans``, 3 inits, seeded) instead of ``MiniBatchKMeans``.

:func:`compare_core_arms`: the arms of the measurement from one pre-trained model:
``source_only`` (the pre-trained model, global view), ``single_view`` (global clustering
only), ``multi_view`` and ``multi_view_fusion``, every adaptation arm with the same epochs,
steps and batches per view drawn from the same seed.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import DataError, MentorError, check_param
from ..losses.logits import cross_entropy
from ..updates.ema import EMA
from .cluster import cluster_labels, label_quality, relabel
from .memory import cluster_centroids
from .metrics import retrieval
from .multiview import FusionHead, PartEmbedder, retrieval_features, view_features
from .testbed import ReIDData
from .train import _batches, _int

VIEWS = ("global", "multi")


def soft_triplet(features: Tensor, labels: Tensor, margin: float = 0.0) -> Tensor:
    """Per-anchor soft triplet loss of ``features`` ``(B, d)`` with ids ``labels`` ``(B,)``
    (module docstring); ``(B,)``."""
    check_param("soft_triplet", "margin", margin, low=0, high=1)
    if features.dim() != 2 or labels.shape != (len(features),):
        raise DataError(f"features have shape {tuple(features.shape)} and labels "
                        f"{tuple(labels.shape)}; expected (B, d) and (B,)")
    same = labels[:, None] == labels[None, :]
    if bool(same.all(1).any()):
        raise DataError("labels give an anchor no negative in the batch; expected at least "
                        "two ids")
    sq = (features * features).sum(1)
    d = (sq[:, None] + sq[None, :] - 2 * features @ features.t()).clamp_min(1e-12).sqrt()
    d_ap = d.masked_fill(~same, float("-inf")).amax(1)
    d_an = d.masked_fill(same, float("inf")).amin(1)
    ls = F.log_softmax(torch.stack([d_ap, d_an], 1), 1)
    return -margin * ls[:, 0] - (1 - margin) * ls[:, 1]


def multiview_labels(features: list[Tensor], clusters: int, seed: int = 0) -> list[Tensor]:
    """One k-means pseudo-label set per view: ``cluster_labels(f, method="kmeans")`` of every
    view's features separately (the official ``km_global`` / ``km_upper`` / ``km_low``)."""
    return [torch.from_numpy(cluster_labels(f, method="kmeans", clusters=clusters, seed=seed))
            for f in features]


@dataclass
class CoreResult:
    """The selected teacher (eval mode), its epoch and validation mAP, the test figures, the
    number of views its retrieval feature concatenates, and per-epoch ``history``
    (``epoch``, per-view ``nmi`` / ``purity`` lists, ``loss``, ``val_mAP``); for an adapted
    model also the final ``student`` and ``test_global``, the test figures of the global view
    alone."""

    model: PartEmbedder
    best_epoch: int
    val_mAP: float
    test: dict[str, float]
    views: int
    history: list[dict] = field(default_factory=list)
    student: PartEmbedder | None = None
    test_global: dict[str, float] = field(default_factory=dict)

    def nmi(self, view: int = 0) -> float:
        """The mean over the epochs of view ``view``'s pseudo-label NMI (nan untrained)."""
        vals = [h["nmi"][view] for h in self.history if len(h["nmi"]) > view]
        return float(np.mean(vals)) if vals else float("nan")


def evaluate_views(model: PartEmbedder, data: ReIDData, split: str = "val",
                   views: int | None = None) -> dict[str, float]:
    """mAP / Rank-1 / Rank-5 of ``model``'s retrieval feature (the first ``views`` views) on
    ``split`` (``"val"`` or ``"test"``), cosine distance."""
    if split not in ("val", "test"):
        raise MentorError(f"split must be 'val' or 'test', got {split!r}")
    q, g = (data.val_query, data.val_gallery) if split == "val" else (data.query, data.gallery)
    e = retrieval_features(model, data.x, views)
    return retrieval(e[q], e[g], data.identity[q], data.identity[g], data.camera[q],
                     data.camera[g])


def _check(data: ReIDData, rows: Tensor, what: str, batch_size: int, instances: int):
    if not len(rows):
        raise DataError(f"{what} names no sample; expected training samples")
    if not len(data.val_query) or not len(data.val_gallery):
        raise DataError("val_query or val_gallery names no sample; expected a validation "
                        "split for selection")
    if batch_size % instances:
        raise MentorError(f"batch_size must be a multiple of instances ({instances}), got "
                          f"{batch_size}")


def pretrain_source(data: ReIDData, *, epochs: int = 8, steps: int = 40, batch_size: int = 64,
                    instances: int = 4, lr: float = 1e-3, weight_decay: float = 5e-4,
                    parts: int = 2, hidden: int = 128, channels: int = 64,
                    seed: int = 0) -> CoreResult:
    """Source pre-training on the labeled source samples only (module docstring)."""
    epochs, steps = _int("epochs", epochs), _int("steps", steps)
    batch_size, instances = _int("batch_size", batch_size), _int("instances", instances)
    _check(data, data.source, "source", batch_size, instances)
    y = torch.from_numpy(relabel(data.identity[data.source].numpy()))
    x = data.x[data.source]
    torch.manual_seed(seed)
    net = PartEmbedder(data.dim, parts, hidden, channels, int(y.max()) + 1)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
    best_state, best_epoch, best_val, history = None, -1, -1.0, []
    per = max(1, min(batch_size // instances, int(y.max()) + 1))
    for epoch in range(epochs):
        net.train()
        losses = []
        for rows in _batches(y, steps, per, instances, gen):
            out = net(x[rows])
            loss = cross_entropy(out["logits"], labels=y[rows], label_smoothing=0.1).mean() \
                + soft_triplet(out["views"][0], y[rows]).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        score = evaluate_views(net, data, "val", 1)["mAP"]
        history.append({"epoch": epoch, "nmi": [], "purity": [], "loss": float(np.mean(losses)),
                        "val_mAP": score})
        if score > best_val:
            best_state, best_epoch, best_val = copy.deepcopy(net.state_dict()), epoch, score
    net.load_state_dict(best_state)
    net.eval()
    return CoreResult(net, best_epoch, best_val, evaluate_views(net, data, "test", 1), 1,
                      history)


def _from(init: PartEmbedder, classes: int) -> PartEmbedder:
    net = copy.deepcopy(init)
    net.classifier = torch.nn.Linear(net.classifier.in_features, classes, bias=False)
    return net


def train_core_reid(data: ReIDData, init: PartEmbedder, *, views: str = "multi",
                    fusion: bool = False, clusters: int = 150, epochs: int = 10,
                    steps: int = 30, batch_size: int = 64, instances: int = 4,
                    lr: float = 1e-3, weight_decay: float = 5e-4, alpha: float = 0.99,
                    part_weight: float = 0.5, warmup: bool = True,
                    seed: int = 0) -> CoreResult:
    """Target adaptation with multi-view clustering and an EMA teacher (module docstring);
    the target training samples' identities are read for telemetry only."""
    if views not in VIEWS:
        raise MentorError(f"views must be one of {', '.join(VIEWS)}, got {views!r}")
    if fusion and views != "multi":
        raise MentorError("fusion must be False with views 'global'; the fusion head fuses "
                          "the part views")
    if not isinstance(init, PartEmbedder):
        raise MentorError(f"init must be a PartEmbedder (the source pre-trained model), got "
                          f"{type(init).__name__}")
    epochs, steps = _int("epochs", epochs), _int("steps", steps)
    batch_size, instances = _int("batch_size", batch_size), _int("instances", instances)
    k = _int("clusters", clusters, 2)
    check_param("train_core_reid", "alpha", alpha, low=0, high=1)
    check_param("train_core_reid", "part_weight", part_weight, low=0)
    _check(data, data.train, "train", batch_size, instances)
    x, truth = data.x[data.train], data.identity[data.train]
    torch.manual_seed(seed)
    student, teacher = _from(init, k), None
    teacher = copy.deepcopy(student)
    for p in teacher.parameters():
        p.requires_grad_(False)
    head = FusionHead(student.bn_g.num_features, student.parts) if fusion else None
    ema = EMA(alpha, warmup=bool(warmup))
    gen = torch.Generator().manual_seed(seed)
    n_views = 1 + student.parts if views == "multi" else 1
    best_state, best_epoch, best_val, history = None, -1, -1.0, []
    per = max(1, min(batch_size // instances, k))
    step = 0
    for epoch in range(epochs):
        feats = view_features(teacher, x, fusion=head, student=student)[:n_views]
        labs = multiview_labels(feats, k, seed * 1000 + epoch)
        quality = [label_quality(lab.numpy(), truth) for lab in labs]
        cents = cluster_centroids(feats[0], labs[0])
        for net in (student, teacher):
            net.classifier.weight.data.copy_(cents)
        opt = torch.optim.Adam([p for p in student.parameters() if p.requires_grad], lr=lr,
                               weight_decay=weight_decay)
        batches = [_batches(lab, steps, per, instances, gen) for lab in labs]
        losses = []
        student.train()
        for i in range(steps):
            rows = batches[0][i]
            out = student(x[rows])
            loss = cross_entropy(out["logits"], labels=labs[0][rows],
                                 label_smoothing=0.1).mean() \
                + soft_triplet(out["views"][0], labs[0][rows]).mean()
            for v in range(1, n_views):
                rv = batches[v][i]
                fv = student(x[rv])["views"][v]
                loss = loss + part_weight * soft_triplet(fv, labs[v][rv]).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            ema.update(teacher, student, step)
            step += 1
            losses.append(loss.item())
        score = evaluate_views(teacher, data, "val", n_views)["mAP"]
        history.append({"epoch": epoch, "nmi": [q["nmi"] for q in quality],
                        "purity": [q["purity"] for q in quality],
                        "loss": float(np.mean(losses)), "val_mAP": score})
        if score > best_val:
            best_state, best_epoch, best_val = copy.deepcopy(teacher.state_dict()), epoch, score
    teacher.load_state_dict(best_state)
    teacher.eval()
    return CoreResult(teacher, best_epoch, best_val,
                      evaluate_views(teacher, data, "test", n_views), n_views, history,
                      student.eval(), evaluate_views(teacher, data, "test", 1))


CORE_ARMS = ("source_only", "single_view", "multi_view", "multi_view_fusion")


def compare_core_arms(data: ReIDData, *, seed: int = 0, pretrain: dict | None = None,
                      arms: tuple[str, ...] = CORE_ARMS, **train) -> dict[str, CoreResult]:
    """The ``arms`` (module docstring) from one :func:`pretrain_source` model (``pretrain``:
    its arguments); ``train``: further arguments of :func:`train_core_reid`, the same for
    every adaptation arm."""
    bad = [a for a in arms if a not in CORE_ARMS]
    if bad:
        raise MentorError(f"arms must be among {', '.join(CORE_ARMS)}, got {bad[0]!r}")
    source = pretrain_source(data, seed=seed, **(pretrain or {}))
    settings = {"single_view": dict(views="global"), "multi_view": dict(views="multi"),
                "multi_view_fusion": dict(views="multi", fusion=True)}
    out = {"source_only": source} if "source_only" in arms else {}
    for arm, kw in settings.items():
        if arm in arms:
            out[arm] = train_core_reid(data, source.model, seed=seed, **kw, **train)
    return out
