"""CORE-ReID's losses and fusion (METHODS.md §43): the soft triplet loss against a naive
float64 loop, BMFN against the naive formula (and its no-flip case), ECAB against a naive
transcription, the fusion head's shapes and its degenerate case (no attention, part
embeddings of ones: every fused view is the teacher's pooled global feature), and the
per-view k-means labels against clustering each view by hand."""

import math

import pytest
import torch

from mentor.embedding import (ECAB, FusionHead, bmfn, cluster_labels, multiview_labels,
                              soft_triplet)
from mentor.errors import DataError


def _naive_soft_triplet(f, y, margin):
    rows = f.tolist()
    out = []
    for i, a in enumerate(rows):
        dist = [math.sqrt(max(sum((p - q) ** 2 for p, q in zip(a, b)), 1e-12)) for b in rows]
        d_ap = max(d for d, yy in zip(dist, y) if yy == y[i])
        d_an = min(d for d, yy in zip(dist, y) if yy != y[i])
        top = max(d_ap, d_an)
        lse = top + math.log(math.exp(d_ap - top) + math.exp(d_an - top))
        out.append(-margin * (d_ap - lse) - (1 - margin) * (d_an - lse))
    return out


def test_soft_triplet_matches_a_naive_float64_loop():
    g = torch.Generator().manual_seed(0)
    f = torch.randn(8, 5, generator=g, dtype=torch.float64)
    y = [0, 0, 1, 1, 2, 2, 2, 3]
    for margin in (0.0, 0.3):
        got = soft_triplet(f, torch.tensor(y), margin)
        assert got.tolist() == pytest.approx(_naive_soft_triplet(f, y, margin), abs=1e-9)
    # margin 0: softplus(d_ap - d_an)
    with pytest.raises(DataError, match="no negative"):
        soft_triplet(f[:2], torch.tensor([0, 0]))


def test_bmfn_matches_the_naive_formula_and_reduces_to_normalisation_without_a_flip():
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(4, 3, generator=g, dtype=torch.float64), \
        torch.randn(4, 3, generator=g, dtype=torch.float64)
    want = []
    for u, v in zip(a.tolist(), b.tolist()):
        m = [(p + q) / 2 for p, q in zip(u, v)]
        n = math.sqrt(sum(t * t for t in m))
        want.append([t / n for t in m])
    assert torch.allclose(bmfn(a, b), torch.tensor(want, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(bmfn(a, a), a / a.norm(dim=1, keepdim=True))


def test_ecab_matches_a_naive_transcription():
    torch.manual_seed(2)
    m = ECAB(16, reduction=2).double()
    f = torch.rand(3, 16, 2, dtype=torch.float64)
    layers = [l.weight for l in m.se if isinstance(l, torch.nn.Linear)]
    assert [w.shape[0] for w in layers] == [8, 4, 2, 4, 8, 16]

    def se(v):
        for i, w in enumerate(layers):
            v = w @ v
            if i < len(layers) - 1:
                v = v.clamp_min(0)
        return v

    for i in range(3):
        mx, av = f[i].amax(1), f[i].mean(1)
        att = torch.sigmoid(se(mx) + se(av))
        assert torch.allclose(m(f[i:i + 1])[0], att, atol=1e-12)
        m.gate = True
        assert torch.allclose(m(f[i:i + 1])[0], att * (mx + av), atol=1e-12)
        m.gate = False


def test_fusion_head_shapes_and_degenerate_case():
    torch.manual_seed(3)
    fmap = torch.rand(6, 8, 2)
    embeds = [torch.rand(6, 8), torch.rand(6, 8)]
    head = FusionHead(8, parts=2)
    out = head.train()(fmap, embeds)
    assert [o.shape for o in out] == [(6, 8)] * 3
    assert not any(p.requires_grad for p in head.parameters())
    plain = FusionHead(8, parts=2, attention=False).eval()  # fresh BN: the identity
    ones = [torch.ones(6, 8), torch.ones(6, 8)]
    pooled = fmap.amax(2) + fmap.mean(2)
    for o in plain(fmap, ones):
        assert torch.allclose(o, pooled, atol=1e-5)
    fused = plain(fmap, embeds)
    for p, e in enumerate(embeds):  # a naive transcription without attention
        want = [[max(fmap[i, c, j].item() * e[i, c].item() for j in range(2))
                 + sum(fmap[i, c, j].item() * e[i, c].item() for j in range(2)) / 2
                 for c in range(8)] for i in range(6)]
        assert torch.allclose(fused[p + 1], torch.tensor(want), atol=1e-5)
    with pytest.raises(DataError, match="part embeddings"):
        head(fmap, embeds[:1])


def test_multiview_labels_cluster_every_view_on_its_own():
    g = torch.Generator().manual_seed(4)
    views = [torch.randn(30, 4, generator=g) for _ in range(3)]
    labs = multiview_labels(views, clusters=5, seed=7)
    for v, lab in zip(views, labs):
        assert lab.tolist() == cluster_labels(v, method="kmeans", clusters=5,
                                              seed=7).tolist()
    assert labs[0].tolist() != labs[1].tolist()
