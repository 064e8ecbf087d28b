"""Cluster pseudo-labels of training embeddings (METHODS.md §33 / §43
``label-refiner:ClusterPseudoLabels``; the clustering step of cluster contrast, Dai et al.,
"Cluster Contrast for Unsupervised Person Re-Identification", ACCV 2022, official code
alibaba/cluster-contrast-reid, which Learning to Purification builds on).

:func:`cluster_labels` gives every training sample a pseudo-identity, re-clustered every
epoch by the trainer:

- ``"dbscan"`` (default, as the official code): DBSCAN (scikit-learn) with ``eps`` 0.6 and
  ``min_samples`` 4 on the precomputed k-reciprocal Jaccard distance of the L2-normalised
  embeddings (:func:`jaccard_distance`, ``k1`` 20, ``k2`` 6; the official code uses k1 30 on
  Market-1501's larger identities). Samples DBSCAN leaves as noise are *outliers*: label
  ``-1``, dropped from the epoch's training.
- ``"kmeans"``: k-means (scikit-learn, ``clusters`` centres, seeded) on the L2-normalised
  embeddings, as CORE-ReID's per-view clustering (§43); no outliers.

Labels are re-indexed ``0..K-1`` in order of first appearance (outliers stay ``-1``).
:func:`label_quality` scores pseudo-labels against the hidden identities (telemetry only):
``purity`` (the fraction of clustered samples that belong to their cluster's most common
identity), ``nmi`` (normalised mutual information, arithmetic mean, over the clustered
samples), ``coverage`` (the clustered fraction) and ``clusters``.

:func:`jaccard_distance` is a reconstruction [reconstruction] of the official
``compute_jaccard_distance`` (Zhong et al., "Re-ranking Person Re-identification with
k-reciprocal Encoding", CVPR 2017), exact search instead of faiss: with ``d = 2 − 2·cos`` and
``R(i, k)`` the k-reciprocal neighbours of ``i`` among its ``k`` nearest (itself included),
``R(i, k1)`` is expanded by every ``R(j, round(k1/2))`` (``j`` in it) that shares more than
2/3 of its members with it; ``V[i, j] = softmax(−d[i, ·])`` over the expanded set, 0
elsewhere; then ``V[i] ← mean of V over i's k2 nearest`` (query expansion, skipped for
``k2 = 1``); and ``J[i, j] = 1 − Σ_k min(V_ik, V_jk) / (2 − Σ_k min(V_ik, V_jk))``, clipped
at 0. Nearest-neighbour ties are broken by the lower sample id.
"""

from __future__ import annotations

import numpy as np

from ..errors import DataError, MentorError

METHODS = ("dbscan", "kmeans")


def _features(features) -> np.ndarray:
    if hasattr(features, "detach"):
        features = features.detach().cpu().numpy()
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or len(f) == 0:
        raise DataError(f"features have shape {f.shape}; expected (samples, dim) with at least "
                        "one sample")
    if not np.isfinite(f).all():
        raise DataError("features hold a non-finite value; expected finite embeddings")
    return f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)


def _int(name: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise MentorError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _reciprocal(rank: np.ndarray, i: int, k: int) -> np.ndarray:
    forward = rank[i, :k + 1]
    backward = rank[forward, :k + 1]
    return forward[(backward == i).any(1)]


def jaccard_distance(features, k1: int = 20, k2: int = 6) -> np.ndarray:
    """``(N, N)`` k-reciprocal Jaccard distances in ``[0, 1]`` (module docstring)."""
    f = _features(features)
    n = len(f)
    k1 = min(_int("k1", k1, 1), n)
    k2 = min(_int("k2", k2, 1), n)
    d = np.maximum(2.0 - 2.0 * (f @ f.T), 0.0)
    # nearest first, ties by the lower id; itself first (distance 0)
    rank = np.argsort(d, axis=1, kind="stable")[:, :k1]
    half = int(np.around(k1 / 2))
    near = [_reciprocal(rank, i, k1) for i in range(n)]
    near_half = [_reciprocal(rank, i, half) for i in range(n)]
    v = np.zeros((n, n))
    for i in range(n):
        own = near[i]
        expanded = [own]
        for c in own:
            cand = near_half[c]
            if len(np.intersect1d(cand, own)) > 2.0 / 3.0 * len(cand):
                expanded.append(cand)
        idx = np.unique(np.concatenate(expanded))
        w = np.exp(-(d[i, idx] - d[i, idx].min()))
        v[i, idx] = w / w.sum()
    if k2 != 1:
        v = v[rank[:, :k2]].mean(1)
    vt = np.ascontiguousarray(v.T)  # rows: the samples' weights on one neighbour
    out = np.empty((n, n))
    for i in range(n):
        nz = np.flatnonzero(v[i])
        common = np.minimum(v[i, nz][:, None], vt[nz]).sum(0)
        out[i] = 1.0 - common / (2.0 - common)
    return np.maximum(out, 0.0)


def relabel(labels) -> np.ndarray:
    """``labels`` re-indexed ``0..K-1`` in order of first appearance; ``-1`` (outlier) kept."""
    lab = np.asarray(labels)
    out = np.full(lab.shape, -1, dtype=np.int64)
    mapping: dict[int, int] = {}
    for j, v in enumerate(lab.tolist()):
        if v < 0:
            continue
        out[j] = mapping.setdefault(v, len(mapping))
    return out


def cluster_labels(features, *, method: str = "dbscan", eps: float = 0.6,
                   min_samples: int = 4, k1: int = 20, k2: int = 6, clusters: int | None = None,
                   seed: int = 0) -> np.ndarray:
    """Pseudo-labels ``(N,)`` of ``features`` ``(N, d)``: ``0..K-1``, ``-1`` for an outlier
    (module docstring)."""
    if method not in METHODS:
        raise MentorError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if method == "dbscan":
        from sklearn.cluster import DBSCAN
        if not (isinstance(eps, (int, float)) and 0.0 < float(eps) <= 1.0):
            raise MentorError(f"eps must be in (0, 1] for Jaccard distances, got {eps!r}")
        ms = _int("min_samples", min_samples, 1)
        dist = jaccard_distance(features, k1, k2)
        raw = DBSCAN(eps=float(eps), min_samples=ms, metric="precomputed").fit_predict(dist)
        return relabel(raw)
    from sklearn.cluster import KMeans
    f = _features(features)
    if clusters is None:
        raise MentorError("clusters must be an integer >= 1 for method 'kmeans', got None")
    k = _int("clusters", clusters, 1)
    if k > len(f):
        raise MentorError(f"clusters must be at most the {len(f)} samples, got {k}")
    raw = KMeans(n_clusters=k, n_init=3, random_state=seed).fit_predict(f)
    return relabel(raw)


def label_quality(labels, truth) -> dict[str, float]:
    """``purity``, ``nmi``, ``coverage`` and ``clusters`` of pseudo-``labels`` against the
    true identities ``truth`` (module docstring); purity and NMI are 0 with no clustered
    sample."""
    from sklearn.metrics import normalized_mutual_info_score
    lab = np.asarray(labels)
    tru = np.asarray(truth.detach().cpu().numpy() if hasattr(truth, "detach") else truth)
    if lab.shape != tru.shape or lab.ndim != 1:
        raise DataError(f"labels have shape {lab.shape} but truth has {tru.shape}; expected "
                        "one label per sample")
    kept = lab >= 0
    n = int(kept.sum())
    out = {"coverage": n / len(lab) if len(lab) else 0.0,
           "clusters": float(len(np.unique(lab[kept])))}
    if n == 0:
        return {"purity": 0.0, "nmi": 0.0, **out}
    keys, counts = np.unique(np.stack([lab[kept], tru[kept]], 1), axis=0,
                             return_counts=True)
    best = np.zeros(int(lab.max()) + 1)
    np.maximum.at(best, keys[:, 0], counts)  # the most common identity of every cluster
    return {"purity": float(best.sum() / n),
            "nmi": float(normalized_mutual_info_score(tru[kept], lab[kept])), **out}
