"""Re-ID retrieval metrics: mAP and CMC Rank-k (METHODS.md §60 ``MetricEmbedding``; the
evaluation of §33 Learning to Purification and §43 CORE-ReID, the usual Market-1501
protocol of Zheng et al., "Scalable Person Re-identification: A Benchmark", ICCV 2015).

Every query ranks the gallery by distance between embeddings (``"cosine"``: ``1 − cos``;
``"euclidean"``: the L2 distance), smallest first, computed in float64. As in the standard
protocol, the gallery entries of the query's identity *and* camera are removed from that
query's ranking (the same person seen by the same camera is too easy a match); entries of
other identities stay, whatever their camera. A query left with no gallery entry of its
identity (every match from its own camera, or none at all) has no valid match: it is
skipped and counted (``skipped``), and the metrics are means over the other queries.

- **Ties** are broken against the embedder: among gallery entries at equal distance the
  non-matching ones are ranked first (then the lower gallery position), so an embedder gains
  nothing from ties and a constant embedding gets the worst ranking. Distances are rounded
  to 12 decimals first, so that rounding noise (``1 − cos`` of parallel vectors of other
  lengths) does not break a tie.
- **AP** of a query: ``(1/R) Σ_{ranks r of its matches} precision@r`` over its whole ranking
  (``R`` its valid matches; non-interpolated, as scikit-learn's ``average_precision_score``
  on distinct scores); **mAP** the mean over the evaluated queries.
- **Rank-k** (CMC): the fraction of evaluated queries whose first match is among the first
  ``k`` entries of the ranking.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import DataError, MentorError

METRICS = ("cosine", "euclidean")


def _array(name: str, v, *, integer: bool) -> np.ndarray:
    if hasattr(v, "detach"):
        v = v.detach().cpu().numpy()
    a = np.asarray(v)
    if integer and a.size and not np.issubdtype(a.dtype, np.integer):
        raise DataError(f"{name} has dtype {a.dtype}; expected integer ids")
    return a


def distances(query, gallery, metric: str = "cosine") -> np.ndarray:
    """``(Q, G)`` float64 distances between query and gallery embeddings (``(Q, d)``,
    ``(G, d)``): ``1 − cos`` (``"cosine"``) or the L2 distance (``"euclidean"``)."""
    if metric not in METRICS:
        raise MentorError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")
    q = _array("query", query, integer=False).astype(np.float64)
    g = _array("gallery", gallery, integer=False).astype(np.float64)
    for name, a in (("query", q), ("gallery", g)):
        if a.ndim != 2:
            raise DataError(f"{name} embeddings have shape {a.shape}; expected (samples, dim)")
        if not np.isfinite(a).all():
            raise DataError(f"{name} embeddings hold a non-finite value; expected finite "
                            "embeddings")
    if q.shape[1] != g.shape[1]:
        raise DataError(f"query embeddings have dimension {q.shape[1]} but gallery "
                        f"embeddings {g.shape[1]}; expected the same dimension")
    if metric == "cosine":
        qn = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
        gn = g / np.maximum(np.linalg.norm(g, axis=1, keepdims=True), 1e-12)
        return 1.0 - qn @ gn.T
    sq = (q * q).sum(1)[:, None] + (g * g).sum(1)[None, :] - 2.0 * q @ g.T
    return np.sqrt(np.maximum(sq, 0.0))


def retrieval(query, gallery, query_ids, gallery_ids, query_cams, gallery_cams, *,
              metric: str = "cosine", ranks: Sequence[int] = (1, 5)) -> dict[str, float]:
    """``{"mAP", "rank1", "rank5", ..., "evaluated", "skipped"}`` of query embeddings
    against gallery embeddings with their identity and camera ids (module docstring);
    ``evaluated`` / ``skipped``: the number of queries scored / without a valid match."""
    qi, gi = _array("query_ids", query_ids, integer=True), _array("gallery_ids", gallery_ids,
                                                                  integer=True)
    qc, gc = _array("query_cams", query_cams, integer=True), _array("gallery_cams",
                                                                    gallery_cams, integer=True)
    q_n = len(query) if hasattr(query, "__len__") else 0
    g_n = len(gallery) if hasattr(gallery, "__len__") else 0
    for name, a, n, what in (("query_ids", qi, q_n, "query"), ("query_cams", qc, q_n, "query"),
                             ("gallery_ids", gi, g_n, "gallery"),
                             ("gallery_cams", gc, g_n, "gallery")):
        if a.ndim != 1 or len(a) != n:
            raise DataError(f"{name} has shape {a.shape} but there are {n} {what} "
                            f"embeddings; expected one id per {what} embedding")
    ks = []
    for k in ranks:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise MentorError(f"ranks must hold integers >= 1, got {k!r}")
        ks.append(int(k))
    if q_n == 0 or g_n == 0:
        raise DataError(f"there are {q_n} query and {g_n} gallery embeddings; expected at "
                        "least one of each")
    dist = np.round(distances(query, gallery, metric), 12)  # float noise is no order
    aps, first = [], []
    for j in range(q_n):
        keep = ~((gi == qi[j]) & (gc == qc[j]))
        match = (gi == qi[j])[keep]
        if not match.any():
            continue
        d = dist[j][keep]
        # ties against the embedder: at equal distance, non-matches first, then position
        order = np.lexsort((np.arange(len(d)), match, d))
        hits = match[order]
        pos = np.flatnonzero(hits) + 1.0
        aps.append(float(np.mean(np.arange(1, len(pos) + 1) / pos)))
        first.append(int(pos[0]))
    if not aps:
        raise DataError(f"none of the {q_n} queries has a gallery entry of its identity from "
                        "another camera; expected at least one valid match to score")
    out = {"mAP": float(np.mean(aps))}
    f = np.asarray(first)
    for k in ks:
        out[f"rank{k}"] = float(np.mean(f <= k))
    out["evaluated"] = float(len(aps))
    out["skipped"] = float(q_n - len(aps))
    return out
