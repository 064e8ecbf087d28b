"""Cluster pseudo-labels (METHODS.md §33 / §43 ``label-refiner:ClusterPseudoLabels``): the
k-reciprocal Jaccard distance against a naive loop transcription of the re-ranking recipe,
DBSCAN outliers excluded and labels re-indexed 0..K-1, the purity / coverage telemetry
against loops, bad input one sentence."""

import math
import random

import numpy as np
import pytest
import torch

from mentor.errors import DataError, MentorError
from mentor.embedding import cluster_labels, jaccard_distance, label_quality, relabel


def naive_jaccard(feats, k1, k2):
    """Zhong et al.'s k-reciprocal encoding written with Python lists and sets."""
    n = len(feats)
    f = [[float(v) / math.sqrt(sum(float(u) ** 2 for u in row)) for v in row] for row in feats]
    d = [[max(2.0 - 2.0 * sum(a * b for a, b in zip(f[i], f[j])), 0.0) for j in range(n)]
         for i in range(n)]
    rank = [sorted(range(n), key=lambda j: (d[i][j], j))[:k1] for i in range(n)]

    def recip(i, k):
        return [c for c in rank[i][:k + 1] if i in rank[c][:k + 1]]
    half = int(np.around(k1 / 2))
    v = [[0.0] * n for _ in range(n)]
    for i in range(n):
        own = recip(i, k1)
        expanded = set(own)
        for c in own:
            cand = recip(c, half)
            if len(set(cand) & set(own)) > 2.0 / 3.0 * len(cand):
                expanded |= set(cand)
        z = sum(math.exp(-d[i][j]) for j in expanded)
        for j in expanded:
            v[i][j] = math.exp(-d[i][j]) / z
    if k2 != 1:
        v = [[sum(v[r][j] for r in rank[i][:k2]) / k2 for j in range(n)] for i in range(n)]
    out = [[0.0] * n for _ in range(n)]
    for i in range(n):
        for j in range(n):
            common = sum(min(v[i][k], v[j][k]) for k in range(n))
            out[i][j] = max(1.0 - common / (2.0 - common), 0.0)
    return np.array(out)


def _blobs(seed, centres=4, per=6, dim=5, spread=0.05):
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centres, dim)) * 3
    x = np.repeat(c, per, 0) + spread * rng.normal(size=(centres * per, dim))
    return x, np.repeat(np.arange(centres), per)


@pytest.mark.parametrize("k1,k2", [(6, 3), (8, 1), (5, 2)])
def test_jaccard_distance_matches_the_naive_transcription(k1, k2):
    for seed in range(3):
        x = np.random.default_rng(seed).normal(size=(22, 4))
        got = jaccard_distance(torch.tensor(x), k1, k2)
        want = naive_jaccard(x.tolist(), k1, k2)
        assert got.shape == (22, 22)
        np.testing.assert_allclose(got, want, atol=1e-12)
        np.testing.assert_allclose(got, got.T, atol=1e-12)


def test_dbscan_drops_outliers_and_labels_are_zero_to_k_minus_one():
    x, truth = _blobs(0)
    far = np.random.default_rng(1).normal(size=(1, 5)) * 0.01 + np.array([[40.0, -40, 0, 0, 0]])
    x = np.concatenate([x[:12], far, x[12:]])  # an isolated point in the middle
    lab = cluster_labels(x, eps=0.6, min_samples=3, k1=6, k2=2)
    assert lab[12] == -1
    kept = np.delete(lab, 12)
    assert sorted(set(kept.tolist())) == [0, 1, 2, 3]
    # order of first appearance
    firsts = [kept.tolist().index(k) for k in range(4)]
    assert firsts == sorted(firsts)
    q = label_quality(lab, np.concatenate([truth[:12], [99], truth[12:]]))
    assert q["purity"] == 1.0 and q["nmi"] == pytest.approx(1.0)
    assert q["coverage"] == pytest.approx(24 / 25) and q["clusters"] == 4.0


def test_kmeans_labels_have_no_outliers():
    x, _ = _blobs(2)
    lab = cluster_labels(x, method="kmeans", clusters=4, seed=0)
    assert (lab >= 0).all() and sorted(set(lab.tolist())) == [0, 1, 2, 3]
    assert lab[0] == 0


def test_relabel_keeps_outliers_and_reindexes_by_first_appearance():
    assert relabel([7, -1, 3, 7, 12, -1, 3]).tolist() == [0, -1, 1, 0, 2, -1, 1]
    assert relabel([-1, -1]).tolist() == [-1, -1]


def test_label_quality_matches_loops():
    rng = random.Random(0)
    for _ in range(10):
        lab = [rng.choice([-1, 0, 1, 2, 3]) for _ in range(40)]
        tru = [rng.randrange(5) for _ in range(40)]
        kept = [(a, b) for a, b in zip(lab, tru) if a >= 0]
        best = 0
        for k in set(a for a, _ in kept):
            members = [b for a, b in kept if a == k]
            best += max(members.count(b) for b in set(members))
        got = label_quality(relabel(lab), np.array(tru))
        assert got["purity"] == pytest.approx(best / len(kept), abs=1e-12)
        assert got["coverage"] == pytest.approx(len(kept) / 40, abs=1e-12)
        assert got["clusters"] == len(set(a for a, _ in kept))


def test_bad_input_is_one_sentence():
    x, _ = _blobs(0)
    with pytest.raises(MentorError, match=r"^method must be one of dbscan, kmeans, got 'hdb'$"):
        cluster_labels(x, method="hdb")
    with pytest.raises(MentorError, match=r"^eps must be in \(0, 1\] for Jaccard distances, "
                                          r"got 1.5$"):
        cluster_labels(x, eps=1.5)
    with pytest.raises(MentorError, match=r"^clusters must be an integer >= 1 for method "):
        cluster_labels(x, method="kmeans")
    with pytest.raises(DataError, match=r"^features hold a non-finite value"):
        jaccard_distance(np.array([[1.0, np.nan], [0.0, 1.0]]))
    with pytest.raises(DataError, match=r"^labels have shape \(3,\) but truth has \(2,\)"):
        label_quality([0, 1, 1], [0, 1])
