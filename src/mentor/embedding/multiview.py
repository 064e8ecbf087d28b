"""CORE-ReID's multi-view embedder and ensemble fusion head (METHODS.md §43
``head:MultiViewPartsFusion``; Nguyen et al., "CORE-ReID: Comprehensive Optimization and
Refinement through Ensemble Fusion in Domain Adaptation for Person Re-identification",
Software 2024; official code TrinhQuocNguyen/CORE-ReID ``reid/models/resnet.py``
(``ResNet.forward``, ``ECAB``, ``ECAB_REAL``, ``SpatialAttention``, ``Fuse``, ``Encoder``)
and ``reid/evaluators.py`` (``bidirectional_mean_feature_normalization``)).

:class:`PartEmbedder` stands in for the ResNet with ``num_split`` parts [reconstruction: an
MLP on vectors]. Its *feature map* ``F`` ``(B, C, P)`` has one position per input part
(:func:`~mentor.embedding.parts.split_parts`): position ``p`` is a per-part trunk
(Linear-ReLU-Linear-ReLU, so ``F ≥ 0`` as a ResNet's last map) of block ``p``. As the
official forward:

- global view ``g = BN_g(avgpool(F) + maxpool(F))``;
- part view ``p``: ``u_p = BN_p(FC_p([avgpool(F_p), maxpool(F_p)]))`` (concatenation, a
  ``2C → C`` "adaptive FC"); the pooling of one position is the position itself;
- ``logits = classifier(g)`` (no bias; its rows are set to the clusters' centroids every
  epoch by the trainer);
- the part channel embeddings ``e_p = (avgpool(F_p) + maxpool(F_p)) · ECAB_p(F_p)`` that the
  fusion uses (the official ``channel_embed_upper_1`` / ``channel_embed_low_1``).

:class:`ECAB` (enhanced channel attention block): ``σ(se(maxpool(F)) + se(avgpool(F)))`` with
``se`` the official bottleneck ``C → C/r → C/r² → C/r³ → C/r² → C/r → C`` (ReLU between, no
bias, ``r`` 4; widths at least 1). ``gate=True`` is ``ECAB_REAL``: the attention times
``maxpool(F) + avgpool(F)``.

:class:`FusionHead` (the official ``Fuse``) fuses the EMA teacher's map ``F_t`` with the
student's part embeddings ``e_p``: ``F' = F_t ⊙ ECAB_REAL(F_t)``, ``F'' = F' ⊙ SA(F')``
(spatial attention over the positions: ``σ(conv_7([mean_c F', max_c F']))``), then
``fused_0 = BN_0(pool(F''))`` and ``fused_p = BN_p(pool(F'' ⊙ e_p))`` with ``pool = maxpool +
avgpool``. In the official code no loss reaches the fusion: its outputs are only the features
that are clustered (``extract_features_new``), ``ECAB_REAL`` and ``SpatialAttention`` are
instantiated with fresh random weights inside every forward call, and the part ECABs get no
gradient. Here [reconstruction]: the head's attention weights are drawn once (from the
trainer's seed) and frozen; its BatchNorms normalise with the statistics of the batch they
are given (the trainer gives the whole clustered set; the official running statistics
follow the training batches). ``attention=False`` drops both attentions: with part
embeddings of ones the fused views are ``BN(pool(F_t))``, the teacher's global feature before
its BatchNorm (the degenerate case).

:func:`bmfn` (bidirectional mean feature normalisation): ``n((f(x) + f(flip(x))) / 2)``, the
official evaluation and clustering features of an image and its horizontal flip. Vectors
have no flip; without one (``flip=None``) the features are only L2-normalised, which is
``bmfn(f, f)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import DataError
from .parts import split_parts


def bmfn(a: Tensor, b: Tensor) -> Tensor:
    """``n((a + b) / 2)`` row-wise (module docstring)."""
    if a.shape != b.shape:
        raise DataError(f"features have shapes {tuple(a.shape)} and {tuple(b.shape)}; "
                        "expected the same")
    m = (a + b) / 2
    return m / m.norm(dim=1, keepdim=True).clamp_min(1e-12)


def _pool(f: Tensor) -> Tensor:
    """``maxpool + avgpool`` over the positions of ``(B, C, P)``: ``(B, C)``."""
    return f.amax(2) + f.mean(2)


def _bn(channels: int) -> nn.BatchNorm1d:
    bn = nn.BatchNorm1d(channels)
    bn.bias.requires_grad_(False)  # as the official BN_g / BN_u / BN_l
    return bn


class ECAB(nn.Module):
    """Enhanced channel attention of a map ``(B, C, P)`` (module docstring): ``(B, C)``."""

    def __init__(self, channels: int, reduction: int = 4, gate: bool = False):
        super().__init__()
        widths = [channels] + [max(1, channels // reduction ** k) for k in (1, 2, 3, 2, 1)] + \
            [channels]
        layers: list[nn.Module] = []
        for i in range(len(widths) - 1):
            layers.append(nn.Linear(widths[i], widths[i + 1], bias=False))
            if i < len(widths) - 2:
                layers.append(nn.ReLU())
        self.se = nn.Sequential(*layers)
        self.gate = gate

    def forward(self, f: Tensor) -> Tensor:
        mx, av = f.amax(2), f.mean(2)
        att = torch.sigmoid(self.se(mx) + self.se(av))
        return att * (mx + av) if self.gate else att


class PartEmbedder(nn.Module):
    """Per-part trunks, global and part views, classifier and part embeddings (module
    docstring)."""

    def __init__(self, dim: int, parts: int = 2, hidden: int = 128, channels: int = 64,
                 classes: int = 1, reduction: int = 4):
        super().__init__()
        if dim % parts:
            raise DataError(f"dim is {dim}; expected a multiple of parts ({parts})")
        self.parts = parts
        w = dim // parts
        self.trunks = nn.ModuleList(
            nn.Sequential(nn.Linear(w, hidden), nn.ReLU(), nn.Linear(hidden, channels),
                          nn.ReLU()) for _ in range(parts))
        self.bn_g = _bn(channels)
        self.fc = nn.ModuleList(nn.Linear(2 * channels, channels) for _ in range(parts))
        self.bn_p = nn.ModuleList(_bn(channels) for _ in range(parts))
        self.ecab = nn.ModuleList(ECAB(channels, reduction) for _ in range(parts))
        self.classifier = nn.Linear(channels, classes, bias=False)
        nn.init.normal_(self.classifier.weight, std=0.001)

    def feature_map(self, x: Tensor) -> Tensor:
        """``F`` ``(B, C, P)``."""
        return torch.stack([t(b) for t, b in zip(self.trunks, split_parts(x, self.parts))], 2)

    def forward(self, x: Tensor) -> dict[str, Tensor | list[Tensor]]:
        fmap = self.feature_map(x)
        g = self.bn_g(_pool(fmap))
        views, embeds = [g], []
        for p in range(self.parts):
            fp = fmap[:, :, p]
            views.append(self.bn_p[p](self.fc[p](torch.cat([fp, fp], 1))))
            embeds.append((2 * fp) * self.ecab[p](fmap[:, :, p:p + 1]))
        return {"map": fmap, "views": views, "logits": self.classifier(g),
                "embeds": embeds}


class SpatialAttention(nn.Module):
    """``σ(conv_k([mean_c f, max_c f]))`` over the positions of ``(B, C, P)``: ``(B, 1, P)``
    (CBAM's spatial attention, as the official ``SpatialAttention``)."""

    def __init__(self, kernel: int = 7):
        super().__init__()
        self.conv = nn.Conv1d(2, 1, kernel, padding=kernel // 2, bias=False)

    def forward(self, f: Tensor) -> Tensor:
        return torch.sigmoid(self.conv(torch.stack([f.mean(1), f.amax(1)], 1)))


class FusionHead(nn.Module):
    """The teacher's map fused with the student's part embeddings (module docstring)."""

    def __init__(self, channels: int, parts: int = 2, reduction: int = 4,
                 attention: bool = True):
        super().__init__()
        self.attention = attention
        self.ca = ECAB(channels, reduction, gate=True)
        self.sa = SpatialAttention()
        self.bns = nn.ModuleList(_bn(channels) for _ in range(parts + 1))
        for p in self.parameters():
            p.requires_grad_(False)  # no loss reaches the official fusion

    def forward(self, teacher_map: Tensor, embeds: list[Tensor]) -> list[Tensor]:
        if len(embeds) != len(self.bns) - 1:
            raise DataError(f"embeds hold {len(embeds)} part embeddings; expected "
                            f"{len(self.bns) - 1}")
        f = teacher_map
        if self.attention:
            f = f * self.ca(f)[:, :, None]
            f = f * self.sa(f)
        out = [self.bns[0](_pool(f))]
        for p, e in enumerate(embeds):
            out.append(self.bns[p + 1](_pool(f * e[:, :, None])))
        return out


def view_features(model: PartEmbedder, x: Tensor, *, fusion: FusionHead | None = None,
                  student: PartEmbedder | None = None, flip=None) -> list[Tensor]:
    """The clustering features of ``x``: ``model``'s views (eval mode) or, with ``fusion``,
    the fused views of ``model``'s map (the teacher) and ``student``'s part embeddings (the
    fusion's BatchNorms on the statistics of ``x``); each :func:`bmfn` of ``x`` and
    ``flip(x)`` (``flip=None``: L2-normalised)."""
    def run(inp: Tensor) -> list[Tensor]:
        model.eval()
        with torch.no_grad():
            out = model(inp)
            if fusion is None:
                return list(out["views"])
            (student or model).eval()
            embeds = (student or model)(inp)["embeds"]
            fusion.train()  # batch statistics of the clustered set [reconstruction]
            return fusion(out["map"], embeds)
    a = run(x)
    b = run(flip(x)) if flip is not None else a
    return [bmfn(u, v) for u, v in zip(a, b)]


def retrieval_features(model: PartEmbedder, x: Tensor, views: int | None = None,
                       flip=None) -> Tensor:
    """The evaluation feature: ``n(cat(views))`` of ``model`` (eval mode; the first ``views``
    views, all by default; the official ``normalize(cat(x1_ema))``), :func:`bmfn` with
    ``flip(x)`` when a flip is given."""
    def run(inp: Tensor) -> Tensor:
        model.eval()
        with torch.no_grad():
            v = model(inp)["views"]
        return F.normalize(torch.cat(v[:views] if views else v, 1), dim=1)
    a = run(x)
    return bmfn(a, run(flip(x)) if flip is not None else a)
