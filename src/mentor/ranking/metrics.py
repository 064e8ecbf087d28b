"""Ranking metrics over queries: MAP, nDCG@k, and the ECE of relevance probabilities
(METHODS.md §25, metrics of TB-RANK).

Inputs are flat rows: ``scores`` ``(M,)`` (higher ranks first), integer ``grades`` ``(M,)``
and the ``query`` id of each row; rows need not be grouped. Every query that has a row is
ranked on its own and the metric is the plain mean over these queries. Everything is
computed in float64.

- **Ties** are broken against the ranker: among candidates of equal score the lower grade is
  ranked first (then the lower row id), so a scorer gains nothing from ties and a constant
  scorer gets the worst ranking of the query. Deterministic, whatever the row order.
- **MAP**: binary relevance is ``grade ≥ threshold`` (default 2: on grades 0..3, the two top
  grades). Average precision of a query is ``(1/R) Σ_{ranks r of relevant items}
  precision@r`` over the whole ranking, ``R`` its number of relevant items; a query with no
  relevant item has AP 0 (trec_eval's convention), so every ranker loses it alike.
- **nDCG@k**: ``DCG@k = Σ_{r=1}^{min(k, n)} (2^{grade_r} − 1) / log2(r + 1)`` over the
  query's ranking, divided by the same sum over the grades sorted best first (the ideal
  DCG). ``k > n`` uses all ``n`` candidates. A query whose ideal DCG is 0 (every grade 0)
  has nDCG 0 (scikit-learn's ``ndcg_score`` convention), again the same for every ranker.
- **ECE** (:func:`binary_ece`): expected calibration error of probabilities ``p`` that a
  candidate is relevant against the binary relevance: equal-width bins ``(i/B, (i+1)/B]``
  of ``p`` (``p = 0`` in the first), ``Σ_b n_b/N · |mean relevance_b − mean p_b|``.
"""

from __future__ import annotations

import numpy as np

from .._util.args import positive_int
from ..errors import DataError
from .testbed import _plain


def _rows(scores, grades, query) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    s = np.asarray(_numpy(scores), dtype=np.float64)
    g = np.asarray(_numpy(grades))
    q = np.asarray(_numpy(query))
    if s.ndim != 1:
        raise DataError(f"scores has shape {s.shape}; expected one score per row (M,)")
    for name, a in (("grades", g), ("query", q)):
        if a.shape != s.shape:
            raise DataError(f"{name} has shape {a.shape} but scores has {s.shape}; expected "
                            "one per row")
        if a.size and not (np.issubdtype(a.dtype, np.integer) or a.dtype == np.bool_):
            raise DataError(f"{name} has dtype {a.dtype}; expected integers")
    if not np.isfinite(s).all():
        raise DataError(f"scores holds {float(s[~np.isfinite(s)][0])!r}; expected finite "
                        "scores")
    if g.size and int(g.min()) < 0:
        raise DataError(f"grades holds {int(g.min())}; expected grades >= 0")
    if s.size == 0:
        raise DataError("scores is empty; expected at least one (query, candidate) row")
    return s, g.astype(np.int64), q.astype(np.int64)


def _numpy(a):
    return a.detach().cpu().numpy() if hasattr(a, "detach") else a


def ranked_grades(scores, grades, query) -> tuple[np.ndarray, np.ndarray]:
    """Each query's grades in ranked order, ``(Q, L)`` int64 padded with 0 to the longest
    query, and the ``(Q, L)`` mask of real entries; queries in ascending id order. Ties:
    lower grade first, then lower row id (module docstring)."""
    s, g, q = _rows(scores, grades, query)
    ids, inv = np.unique(q, return_inverse=True)
    by_query = np.argsort(inv, kind="stable")
    counts = np.bincount(inv, minlength=len(ids))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    pos = np.empty(len(s), dtype=np.int64)
    pos[by_query] = np.arange(len(s)) - np.repeat(starts, counts)
    shape = (len(ids), int(counts.max()))
    neg = np.full(shape, np.inf)  # padding sorts last
    grade = np.zeros(shape, dtype=np.int64)
    row = np.full(shape, len(s), dtype=np.int64)
    neg[inv, pos], grade[inv, pos], row[inv, pos] = -s, g, np.arange(len(s))
    order = np.lexsort((row, grade, neg), axis=-1)
    valid = np.take_along_axis(np.isfinite(neg), order, -1)
    return np.take_along_axis(grade, order, -1), valid


def ndcg_per_query(scores, grades, query, k: int = 5) -> np.ndarray:
    """nDCG@k of every query (ascending query id), float64."""
    k = positive_int("k", _plain(k))
    ranked, valid = ranked_grades(scores, grades, query)
    discount = 1.0 / np.log2(np.arange(ranked.shape[1]) + 2.0)
    top = np.arange(ranked.shape[1]) < k
    gains = (np.exp2(ranked) - 1.0) * valid
    dcg = (gains * discount * top).sum(-1)
    ideal = (-np.sort(-gains, axis=-1) * discount * top).sum(-1)
    return np.divide(dcg, ideal, out=np.zeros_like(dcg), where=ideal > 0)


def ndcg(scores, grades, query, k: int = 5) -> float:
    """Mean nDCG@k over the queries (module docstring)."""
    return float(ndcg_per_query(scores, grades, query, k).mean())


def average_precision_per_query(scores, grades, query, threshold: int = 2) -> np.ndarray:
    """Average precision of every query (ascending query id), relevant = ``grade ≥
    threshold``, float64."""
    threshold = positive_int("threshold", _plain(threshold))
    ranked, valid = ranked_grades(scores, grades, query)
    rel = ((ranked >= threshold) & valid).astype(np.float64)
    precision = np.cumsum(rel, -1) / (np.arange(rel.shape[1]) + 1.0)
    total = rel.sum(-1)
    return np.divide((precision * rel).sum(-1), total, out=np.zeros_like(total),
                     where=total > 0)


def mean_average_precision(scores, grades, query, threshold: int = 2) -> float:
    """MAP over the queries, binary relevance ``grade ≥ threshold`` (module docstring)."""
    return float(average_precision_per_query(scores, grades, query, threshold).mean())


def binary_ece(probs, relevant, bins: int = 10) -> float:
    """Expected calibration error of relevance probabilities ``probs`` ``(M,)`` in [0, 1]
    against binary ``relevant`` ``(M,)``: ``Σ_b n_b/N · |mean relevant_b − mean probs_b|``
    over ``bins`` equal-width bins ``(i/B, (i+1)/B]`` (``p = 0`` in the first)."""
    bins = positive_int("bins", _plain(bins))
    p = np.asarray(_numpy(probs), dtype=np.float64)
    y = np.asarray(_numpy(relevant)).astype(np.float64)
    if p.ndim != 1 or y.shape != p.shape:
        raise DataError(f"probs has shape {p.shape} and relevant {y.shape}; expected the same "
                        "(M,) shape")
    if p.size == 0:
        raise DataError("probs is empty; expected at least one row")
    if not (np.isfinite(p).all() and (p >= 0).all() and (p <= 1).all()):
        raise DataError(f"probs holds {float(p[~((p >= 0) & (p <= 1))][0])!r}; expected "
                        "probabilities in [0, 1]")
    idx = np.clip(np.ceil(p * bins).astype(np.int64) - 1, 0, bins - 1)
    gap = np.abs(np.bincount(idx, y, bins) - np.bincount(idx, p, bins))
    return float(gap.sum() / p.size)

