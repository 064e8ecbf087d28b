"""The cluster-contrast memory (METHODS.md §33 ``loss:ContrastiveMetric``; Dai et al., ACCV
2022): the InfoNCE over centroids against a naive float64 formula, the momentum update's
degenerate cases (momentum 0 replaces a centroid by the normalised batch-mean embedding,
momentum 1 keeps it; the official per-sample rule), the initial centroids, bad input."""

import math

import pytest
import torch
import torch.nn.functional as F

from mentor.errors import DataError, MentorError
from mentor.embedding import ClusterMemory, centroid_nce, cluster_centroids


def naive_nce(f, c, y, tau):
    out = []
    for row, k in zip(f.tolist(), y.tolist()):
        n = math.sqrt(sum(v * v for v in row))
        sims = [sum(a * b for a, b in zip(row, cen)) / n / tau for cen in c.tolist()]
        top = max(sims)
        log_z = top + math.log(sum(math.exp(s - top) for s in sims))
        out.append(log_z - sims[k])
    return out


def _unit(x):
    return x / x.norm(dim=1, keepdim=True)


def test_centroid_nce_matches_the_naive_formula():
    g = torch.Generator().manual_seed(0)
    for tau in (0.05, 0.5, 1.0):
        f = torch.randn(9, 6, generator=g, dtype=torch.float64) * 3
        c = _unit(torch.randn(5, 6, generator=g, dtype=torch.float64))
        y = torch.randint(0, 5, (9,), generator=g)
        got = centroid_nce(f, c, y, tau)
        assert got.shape == (9,)
        assert got.tolist() == pytest.approx(naive_nce(f, c, y, tau), abs=1e-9)
    # gradients reach the features, not the (memory) centroids
    f = torch.randn(4, 6, generator=g, requires_grad=True)
    centroid_nce(f, c.float(), torch.tensor([0, 1, 2, 3])).sum().backward()
    assert f.grad is not None and torch.isfinite(f.grad).all()


def test_momentum_zero_replaces_the_centroid_by_the_normalised_batch_mean():
    g = torch.Generator().manual_seed(1)
    c0 = _unit(torch.randn(4, 3, generator=g))
    f = torch.randn(6, 3, generator=g) * 5
    y = torch.tensor([2, 0, 2, 2, 0, 0])
    mem = ClusterMemory(c0, momentum=0.0)
    mem.update(f, y)
    for k in (0, 2):
        want = F.normalize(_unit(f[y == k]).mean(0), dim=0)
        assert torch.allclose(mem.centroids[k], want, atol=1e-6)
    for k in (1, 3):  # not in the batch: unchanged
        assert torch.allclose(mem.centroids[k], c0[k], atol=1e-7)


def test_momentum_one_keeps_the_centroids_and_between_mixes():
    g = torch.Generator().manual_seed(2)
    c0 = _unit(torch.randn(3, 4, generator=g))
    f = torch.randn(5, 4, generator=g)
    y = torch.tensor([0, 1, 2, 1, 0])
    for rule in ("mean", "sample"):
        mem = ClusterMemory(c0, momentum=1.0, update=rule)
        mem.update(f, y)
        assert torch.allclose(mem.centroids, c0, atol=1e-7)
    mem = ClusterMemory(c0, momentum=0.2)
    mem.update(f, y)
    want = F.normalize(0.2 * c0[1] + 0.8 * _unit(f[[1, 3]]).mean(0), dim=0)
    assert torch.allclose(mem.centroids[1], want, atol=1e-6)


def test_the_official_per_sample_rule():
    g = torch.Generator().manual_seed(3)
    c0 = _unit(torch.randn(2, 4, generator=g))
    f = torch.randn(3, 4, generator=g)
    mem = ClusterMemory(c0, momentum=0.0, update="sample")
    mem.update(f, torch.tensor([1, 1, 1]))
    assert torch.allclose(mem.centroids[1], _unit(f[2:]).squeeze(0), atol=1e-6)  # the last
    mem = ClusterMemory(c0, momentum=0.5, update="sample")
    mem.update(f[:2], torch.tensor([0, 0]))
    step = F.normalize(0.5 * c0[0] + 0.5 * _unit(f[:1])[0], dim=0)
    want = F.normalize(0.5 * step + 0.5 * _unit(f[1:2])[0], dim=0)
    assert torch.allclose(mem.centroids[0], want, atol=1e-6)


def test_initial_centroids_leave_outliers_out():
    f = torch.tensor([[2.0, 0.0], [0.0, 1.0], [5.0, 5.0], [0.0, 3.0], [1.0, 0.0]])
    c = cluster_centroids(f, torch.tensor([1, 0, -1, 0, 1]))
    assert torch.allclose(c, torch.tensor([[0.0, 1.0], [1.0, 0.0]]))
    mem = ClusterMemory.from_features(f, torch.tensor([0, 0, -1, 1, 1]))
    assert len(mem) == 2
    want = F.normalize(_unit(f[[0, 1]]).mean(0), dim=0)
    assert torch.allclose(mem.centroids[0], want, atol=1e-6)


def test_bad_input_is_one_sentence():
    c = torch.eye(3)
    with pytest.raises(MentorError, match=r"^ClusterMemory.momentum must be in \[0, 1\], got "
                                          r"1.5$"):
        ClusterMemory(c, momentum=1.5)
    with pytest.raises(MentorError, match=r"^centroid_nce.temperature must be > 0, got 0$"):
        centroid_nce(torch.ones(2, 3), c, torch.tensor([0, 1]), 0)
    with pytest.raises(DataError, match=r"^labels hold cluster 3; expected ids in 0\.\.2 "
                                        r"\(outliers removed\)$"):
        ClusterMemory(c).update(torch.ones(2, 3), torch.tensor([0, 3]))
    with pytest.raises(DataError, match=r"^labels have 1 entries but there are 2 embeddings"):
        ClusterMemory(c).loss(torch.ones(2, 3), torch.tensor([0]))
    with pytest.raises(DataError, match=r"^labels mark every embedding as an outlier"):
        cluster_centroids(torch.ones(2, 3), torch.tensor([-1, -1]))
