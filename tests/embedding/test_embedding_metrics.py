"""Re-ID mAP and CMC Rank-k (METHODS.md §60 ``MetricEmbedding``; the evaluation of §33
Learning to Purification and §43 CORE-ReID) against a naive float64 loop reference written
here, with the protocol's edge cases: same-identity-same-camera gallery entries excluded,
queries without a valid match skipped and counted, ties broken against the embedder."""

import math
import random

import numpy as np
import pytest
import torch

from mentor.errors import DataError, MentorError
from mentor.embedding import distances, retrieval


def naive(query, gallery, qid, gid, qcam, gcam, metric, ks):
    """One query at a time, plain Python floats: the distance by loops, the ranking by
    sorting (distance, is-a-match, gallery position) -- at equal distance non-matches
    first -- after dropping the query's identity seen by its own camera."""
    aps, firsts, skipped = [], [], 0
    for j, q in enumerate(query):
        rows = []
        for i, g in enumerate(gallery):
            if gid[i] == qid[j] and gcam[i] == qcam[j]:
                continue
            if metric == "cosine":
                dot = sum(float(a) * float(b) for a, b in zip(q, g))
                nq = math.sqrt(sum(float(a) ** 2 for a in q))
                ng = math.sqrt(sum(float(b) ** 2 for b in g))
                d = 1.0 - dot / (max(nq, 1e-12) * max(ng, 1e-12))
            else:
                d = math.sqrt(sum((float(a) - float(b)) ** 2 for a, b in zip(q, g)))
            rows.append((round(d, 12), gid[i] == qid[j], i))
        rows.sort()
        hits = [m for _, m, _ in rows]
        if not any(hits):
            skipped += 1
            continue
        found, precisions = 0, []
        for r, m in enumerate(hits, start=1):
            if m:
                found += 1
                precisions.append(found / r)
        aps.append(sum(precisions) / len(precisions))
        firsts.append(hits.index(True) + 1)
    out = {"mAP": sum(aps) / len(aps)}
    for k in ks:
        out[f"rank{k}"] = sum(1 for f in firsts if f <= k) / len(firsts)
    out["evaluated"], out["skipped"] = float(len(aps)), float(skipped)
    return out


def _case(rng, q=12, g=30, dim=3, ids=5, cams=3, levels=None):
    def vec():
        if levels:  # few distinct values: many exact ties
            return [rng.choice(levels) for _ in range(dim)]
        return [rng.gauss(0, 1) for _ in range(dim)]
    return ([vec() for _ in range(q)], [vec() for _ in range(g)],
            [rng.randrange(ids) for _ in range(q)], [rng.randrange(ids) for _ in range(g)],
            [rng.randrange(cams) for _ in range(q)], [rng.randrange(cams) for _ in range(g)])


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_map_and_rank_k_match_the_naive_reference(metric):
    rng = random.Random(0)
    for trial in range(25):
        levels = [0.0, 1.0, 2.0] if trial % 2 else None
        qe, ge, qi, gi, qc, gc = _case(rng, levels=levels)
        try:
            want = naive(qe, ge, qi, gi, qc, gc, metric, (1, 3, 5))
        except ZeroDivisionError:  # no query with a valid match: checked elsewhere
            continue
        got = retrieval(torch.tensor(qe), torch.tensor(ge), torch.tensor(qi), torch.tensor(gi),
                        torch.tensor(qc), torch.tensor(gc), metric=metric, ranks=(1, 3, 5))
        assert got.keys() == want.keys()
        for k in want:
            assert got[k] == pytest.approx(want[k], abs=1e-12), (trial, k)


def test_same_identity_same_camera_entries_are_excluded():
    # query id 0 camera 0; gallery: the same person by the same camera at distance 0, a
    # stranger by the same camera, then the same person by camera 1
    q = np.array([[1.0, 0.0]])
    g = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    r = retrieval(q, g, [0], [0, 1, 0], [0], [0, 0, 1], ranks=(1, 2))
    assert r["rank1"] == 0.0 and r["rank2"] == 1.0  # the stranger stays, ranked first
    assert r["mAP"] == pytest.approx(0.5)
    # the same person by the same camera only: no valid match, skipped and counted
    r = retrieval(np.array([[1.0, 0.0], [1.0, 0.0]]), g, [0, 1], [0, 1, 0], [1, 0], [0, 0, 1])
    assert r["evaluated"] == 1.0 and r["skipped"] == 1.0
    assert r["mAP"] == 1.0  # query id 0 camera 1 finds gallery 0 (camera 0) first


def test_ties_are_broken_against_the_embedder():
    # a constant embedding: every gallery entry at the same distance, matches ranked last
    q = np.ones((1, 4))
    g = np.ones((5, 4))
    r = retrieval(q, g, [7], [7, 1, 7, 2, 3], [0], [1, 1, 2, 1, 1], ranks=(1, 3, 4))
    assert r["rank1"] == 0.0 and r["rank3"] == 0.0 and r["rank4"] == 1.0
    assert r["mAP"] == pytest.approx((1 / 4 + 2 / 5) / 2)


def test_distances_in_float64():
    a = np.array([[3.0, 4.0]], dtype=np.float32)
    b = np.array([[0.0, 0.0], [3.0, 4.0], [-3.0, -4.0]], dtype=np.float32)
    e = distances(a, b, "euclidean")
    assert e.dtype == np.float64 and e.tolist() == [[5.0, 0.0, 10.0]]
    c = distances(a, b[1:], "cosine")
    assert c[0, 0] == pytest.approx(0.0, abs=1e-15) and c[0, 1] == pytest.approx(2.0)


def test_bad_input_is_one_sentence():
    q, g = np.zeros((2, 3)), np.ones((4, 3))
    with pytest.raises(DataError, match=r"^query_ids has shape \(3,\) but there are 2 query "
                                        r"embeddings; expected one id per query embedding$"):
        retrieval(q, g, [0, 1, 2], [0, 1, 0, 1], [0, 0], [1, 1, 1, 1])
    with pytest.raises(DataError, match=r"^gallery_cams has shape \(3,\) but there are 4 "):
        retrieval(q, g, [0, 1], [0, 1, 0, 1], [0, 0], [1, 1, 1])
    with pytest.raises(DataError, match=r"^none of the 2 queries has a gallery entry of its "
                                        r"identity from another camera; expected at least one "
                                        r"valid match to score$"):
        retrieval(q, g, [0, 1], [0, 1, 0, 2], [1, 1], [1, 1, 1, 2])
    with pytest.raises(DataError, match=r"dimension 3 but gallery embeddings 2"):
        retrieval(q, np.ones((4, 2)), [0, 1], [0, 1, 0, 1], [0, 0], [1, 1, 1, 1])
    with pytest.raises(MentorError, match=r"^metric must be one of cosine, euclidean, got "
                                          r"'l1'$"):
        retrieval(q, g, [0, 1], [0, 1, 0, 1], [0, 0], [1, 1, 1, 1], metric="l1")
