"""Ranking data, the generated testbed TB-RANK and its simulated pairwise teachers.

:class:`RankingData` holds (query, candidate) rows: one feature row per pair, the graded
relevance 0..3 of the candidate for its query, the query id of each row, and the
train / validation / test split as lists of query ids (a query's candidates are never split
apart). Rows need not be grouped by query.

:func:`tb_rank` generates the testbed (METHODS.md §0 TB-RANK, §25 MemReranker's CPU
experiment), deterministic for a seed: ``Q`` queries × ``N`` candidates, pair features
``x ∈ R^16`` drawn ``N(0, I)``, a hidden nonlinear score ``g(x) = x·w + tanh(x·U)·v``
(random ``w``, ``U``, ``v`` drawn from the seed, rescaled to unit variance over the rows), the
relevance ``r = g(x) + σ·ε`` (label noise ``ε ~ N(0, 1)``) and the grade by global quantile
cuts of ``r`` (defaults: the lower half grade 0, then 25 % grade 1, 15 % grade 2, 10 %
grade 3). Splits are by query, a seeded permutation.

:class:`SimulatedTeachers` are three noisy "LLM judges" (METHODS.md §25 ``teacher-source:
MultiTeacher``): judge ``k`` reads the relevance of every candidate with its own fixed error,
``v_k,i = r_i + σ_k·η_k,i`` (``η ~ N(0, 1)`` drawn once: a judge's misreading of a candidate
is the same in every comparison), and answers "is the first-shown candidate more useful than
the second?" with ``P_k(i ≻ j | i shown first) = sigmoid((v_k,i − v_k,j)/t_k + b_k)``: a
position bias ``b_k > 0`` (in logits) favours whichever candidate is shown first
(:meth:`SimulatedTeachers.preferences`). :meth:`SimulatedTeachers.hard_labels` is one judge's
pointwise yes/no answer, ``v_k,i ≥`` the relevance cut of the binary threshold;
:meth:`SimulatedTeachers.majority_labels` is the majority vote of all judges' yes/no answers
(:func:`majority_vote`; a tie -- possible only for an even number of judges -- is "not
relevant"). The majority vote is the paper's ablation, hard labels from the same judges
as the soft labels; one judge's hard labels with the least noisy judge chosen is an oracle
choice a user would not have.

Bad input (a query with no candidates, an id out of range, shapes that do not fit, a pair
from two queries) raises :class:`~mentor.errors.DataError`, a count or level out of range
(``num_queries``, ``label_noise``, ``train_queries``) :class:`~mentor.errors.MentorError`
(:mod:`mentor._util.args`): one sentence naming the field, the value and what is expected.

:meth:`RankingData.with_train_queries` keeps fewer training queries (nested subsets for one
seed), the label-scarce setting of the measurement's curve over training-set sizes.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from ..data.splits import check_split_ids
from .._util.args import non_negative, positive_int
from ..errors import DataError

SPLITS = ("train", "val", "test")


@dataclass(frozen=True, eq=False)
class RankingData:
    """(query, candidate) rows: features ``x`` ``(M, d)``, integer ``grade`` ``(M,)`` in
    ``0 .. max_grade``, ``query`` ``(M,)`` the query id of each row in
    ``0 .. num_queries-1`` (every query has at least one candidate), and the query ids of
    the ``train`` / ``val`` / ``test`` splits (disjoint). ``relevance``: the hidden
    real-valued relevance a generator graded (``None`` for data that has none) and ``cuts``
    the relevance values where grades 1, 2, ... begin."""

    x: Tensor
    grade: Tensor
    query: Tensor
    num_queries: int
    train: Tensor
    val: Tensor
    test: Tensor
    max_grade: int = 3
    relevance: Tensor | None = None
    cuts: tuple[float, ...] = ()
    name: str = "ranking data"
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        x, g, q = self.x, self.grade, self.query
        if not torch.is_tensor(x) or x.dim() != 2:
            raise DataError(f"features has shape {tuple(getattr(x, 'shape', ()))}; expected "
                            "(rows, features): one row per (query, candidate) pair")
        m = len(x)
        if not torch.isfinite(x).all():
            raise DataError("features holds NaN or infinite values; expected finite numbers")
        for name, t in (("grade", g), ("query", q)):
            if not torch.is_tensor(t) or t.dim() != 1 or t.is_floating_point() or \
                    t.dtype == torch.bool:
                raise DataError(f"{name} has shape {tuple(getattr(t, 'shape', ()))} and dtype "
                                f"{getattr(t, 'dtype', type(t).__name__)}; expected one integer "
                                "per row")
            if len(t) != m:
                raise DataError(f"{name} has {len(t)} entries but features has {m} rows; "
                                "expected one per row")
        top = int(self.max_grade)
        if top < 1:
            raise DataError(f"max_grade must be >= 1, got {self.max_grade}")
        if m and (int(g.min()) < 0 or int(g.max()) > top):
            bad = int(g[(g < 0) | (g > top)][0])
            raise DataError(f"grade holds {bad}; expected grades 0..{top}")
        nq = int(self.num_queries)
        if nq < 1:
            raise DataError(f"num_queries must be >= 1, got {self.num_queries}")
        if m and (int(q.min()) < 0 or int(q.max()) >= nq):
            bad = int(q[(q < 0) | (q >= nq)][0])
            raise DataError(f"query holds id {bad}, but there are {nq} queries; expected ids "
                            f"in 0..{nq - 1}")
        empty = (torch.bincount(q, minlength=nq) == 0).nonzero().flatten()
        if len(empty):
            raise DataError(f"query {int(empty[0])} has no candidates; expected at least one "
                            "row per query")
        check_split_ids({name: getattr(self, name) for name in SPLITS}, nq, "query",
                        "queries")
        if not len(self.train):
            raise DataError("train names no query; expected at least one training query")
        if self.relevance is not None and tuple(self.relevance.shape) != (m,):
            raise DataError(f"relevance has shape {tuple(self.relevance.shape)}; expected "
                            f"({m},): one value per row")

    @property
    def num_rows(self) -> int:
        return len(self.x)

    def rows(self, split: str) -> Tensor:
        """Row ids (ascending) of the candidates of the queries in ``split``."""
        if split not in SPLITS:
            raise DataError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
        keep = torch.zeros(self.num_queries, dtype=torch.bool)
        keep[getattr(self, split)] = True
        return keep[self.query].nonzero().flatten()

    def binary(self, threshold: int = 2) -> Tensor:
        """Binary relevance ``grade ≥ threshold`` (bool, ``(M,)``)."""
        _threshold(threshold, self.max_grade)
        return self.grade >= threshold

    def with_train_queries(self, n: int, seed: int = 0) -> "RankingData":
        """The same data with only ``n`` of its training queries kept for training (the
        label-scarce setting: fewer judge-labelled queries), validation and test unchanged.
        The kept queries are the first ``n`` of a permutation of ``train`` drawn from
        ``seed``, so for one seed a smaller set is part of every larger one; ``n`` equal to
        the number of training queries keeps them all (the same data). [reconstruction]"""
        n = positive_int("train_queries", _plain(n))
        have = len(self.train)
        if n > have:
            raise DataError(f"train_queries must be at most {have} (the training queries), "
                            f"got {n}")
        perm = np.random.default_rng(seed).permutation(have)
        kept = torch.sort(self.train[torch.from_numpy(perm[:n])]).values
        return replace(self, train=kept, meta={**self.meta, "train_queries": n,
                                               "train_seed": int(seed)})

    def describe(self) -> str:
        sizes = torch.bincount(self.query, minlength=self.num_queries)
        counts = torch.bincount(self.grade, minlength=self.max_grade + 1).tolist()
        return (f"{self.name}: {self.num_queries} queries × {int(sizes.min())}"
                f"{'' if int(sizes.min()) == int(sizes.max()) else f'-{int(sizes.max())}'} "
                f"candidates, {self.x.shape[1]} features, grades 0-{self.max_grade} "
                f"({' / '.join(str(c) for c in counts)} rows); queries train "
                f"{len(self.train)}, val {len(self.val)}, test {len(self.test)}")


def tb_rank(num_queries: int = 300, num_candidates: int = 20, num_features: int = 16,
            label_noise: float = 0.3, grade_quantiles: Sequence[float] = (0.5, 0.75, 0.9),
            hidden_units: int = 8, split: Sequence[float] = (0.6, 0.2, 0.2),
            seed: int = 0) -> RankingData:
    """TB-RANK: ``num_queries`` queries × ``num_candidates`` candidates, the same for the
    same arguments.

    Features ``x ~ N(0, I_d)`` per (query, candidate) row; hidden score
    ``g(x) = x·w + tanh(x·U)·v`` with ``w ~ N(0, I/d)``, ``U ~ N(0, 4·I/d)`` (``d ×
    hidden_units``), ``v ~ N(0, I/hidden_units)``, rescaled so ``g`` has unit standard
    deviation over the rows; relevance ``r = g + label_noise·ε``. Grade ``c`` for
    ``r ≥`` the ``grade_quantiles[c-1]`` quantile of ``r`` over all rows (three increasing
    quantiles give grades 0..3). ``split``: fractions of the queries for train / val / test
    (a seeded permutation; test takes the rest)."""
    counts = (("num_queries", num_queries), ("num_candidates", num_candidates),
              ("num_features", num_features), ("hidden_units", hidden_units))
    nq, n, d, h = (positive_int(k, _plain(v)) for k, v in counts)
    non_negative("label_noise", label_noise)
    qs = [float(v) for v in grade_quantiles]
    if not qs or any(not 0.0 < v < 1.0 for v in qs) or any(b <= a for a, b in zip(qs, qs[1:])):
        raise DataError(f"grade_quantiles must be increasing numbers in (0, 1), got "
                        f"{tuple(grade_quantiles)}")
    fr = [float(v) for v in split]
    n_train = int(round(fr[0] * nq)) if len(fr) == 3 else 0
    n_val = int(round(fr[1] * nq)) if len(fr) == 3 else 0
    if len(fr) != 3 or any(v < 0 for v in fr) or sum(fr) > 1.0 + 1e-9 or n_train < 1 or \
            n_train + n_val > nq:
        raise DataError(f"split must be three fractions (train, val, test) summing to at most "
                        f"1 with at least one training query, got {tuple(split)}")
    rng = np.random.default_rng(seed)
    w = rng.normal(0.0, 1.0 / np.sqrt(d), size=d)
    u = rng.normal(0.0, 2.0 / np.sqrt(d), size=(d, h))
    v = rng.normal(0.0, 1.0 / np.sqrt(h), size=h)
    x = rng.normal(0.0, 1.0, size=(nq * n, d))
    g = x @ w + np.tanh(x @ u) @ v
    g = (g - g.mean()) / g.std()
    r = g + float(label_noise) * rng.normal(0.0, 1.0, size=nq * n)
    cuts = np.quantile(r, qs)
    grade = np.searchsorted(cuts, r, side="right")
    query = np.repeat(np.arange(nq), n)
    perm = rng.permutation(nq)
    train, val, test = perm[:n_train], perm[n_train:n_train + n_val], perm[n_train + n_val:]
    as_ids = (lambda a: torch.from_numpy(np.sort(a).astype(np.int64)))
    meta = {"seed": int(seed), "label_noise": float(label_noise),
            "grade_quantiles": tuple(qs), "hidden_units": h}
    return RankingData(torch.from_numpy(x.astype(np.float32)),
                       torch.from_numpy(grade.astype(np.int64)), torch.from_numpy(query),
                       nq, as_ids(train), as_ids(val), as_ids(test), len(qs),
                       torch.from_numpy(r), tuple(float(c) for c in cuts), "TB-RANK", meta)


class SimulatedTeachers:
    """``K`` simulated pairwise judges of a generated :class:`RankingData` (one with a
    hidden ``relevance``). Judge ``k`` has a reading error ``noise[k]`` (standard deviation,
    in units of the relevance), a ``position_bias[k]`` (logits added in favour of the
    first-shown candidate) and a ``temperature[k]``; its reading errors are drawn once from
    ``seed``. ``views`` ``(K, M)`` float64: each judge's reading ``v_k,i`` of every row."""

    def __init__(self, data: RankingData, noise: Sequence[float] = (0.5, 0.75, 1.0),
                 position_bias: Sequence[float] = (0.5, 1.0, 1.5),
                 temperature: Sequence[float] = (0.5, 0.5, 0.5), seed: int = 0):
        if data.relevance is None:
            raise DataError(f"{data.name} has no hidden relevance; expected generated data "
                            "(tb_rank) for simulated teachers")
        k = len(noise)
        if k < 1:
            raise DataError("noise names no teacher; expected one reading-noise level per "
                            "teacher")
        for name, vals in (("position_bias", position_bias), ("temperature", temperature)):
            if len(vals) != k:
                raise DataError(f"{name} has {len(vals)} entries for {k} teachers; expected "
                                "one per teacher")
        for name, vals, ok, want in (("noise", noise, lambda v: v >= 0, ">= 0"),
                                     ("position_bias", position_bias, np.isfinite, "finite"),
                                     ("temperature", temperature, lambda v: v > 0, "> 0")):
            for i, v in enumerate(vals):
                if not (np.isfinite(float(v)) and ok(float(v))):
                    raise DataError(f"{name}[{i}] must be {want}, got {v}")
        self.data = data
        self.noise = tuple(float(v) for v in noise)
        self.position_bias = tuple(float(v) for v in position_bias)
        self.temperature = tuple(float(v) for v in temperature)
        rng = np.random.default_rng(seed)
        r = data.relevance.double()
        eta = torch.from_numpy(rng.normal(0.0, 1.0, size=(k, data.num_rows)))
        self.views = r[None, :] + torch.tensor(self.noise, dtype=torch.float64)[:, None] * eta

    @property
    def num_teachers(self) -> int:
        return len(self.noise)

    def preferences(self, first, second) -> Tensor:
        """``P_k(first[p] ≻ second[p])`` of every judge ``k`` when ``first[p]`` is shown
        first, ``(K, P)`` float64. ``first``, ``second``: row ids of the same query, two
        different candidates per pair."""
        a, b = _pairs(self.data, first, second)
        t = torch.tensor(self.temperature, dtype=torch.float64)[:, None]
        bias = torch.tensor(self.position_bias, dtype=torch.float64)[:, None]
        return torch.sigmoid((self.views[:, a] - self.views[:, b]) / t + bias)

    def hard_labels(self, teacher: int = 0, threshold: int = 2) -> Tensor:
        """Judge ``teacher``'s pointwise answers "is this candidate relevant?" for every row:
        1.0 where its reading ``v_k,i`` reaches the relevance cut of grade ``threshold``, else
        0.0, ``(M,)`` float32."""
        if isinstance(teacher, bool) or not isinstance(teacher, (int, np.integer)) or \
                not 0 <= teacher < self.num_teachers:
            raise DataError(f"teacher must be an index in 0..{self.num_teachers - 1}, got "
                            f"{teacher!r}")
        _threshold(threshold, self.data.max_grade)
        cut = self.data.cuts[threshold - 1]
        return (self.views[teacher] >= cut).float()

    def majority_labels(self, threshold: int = 2) -> Tensor:
        """The majority vote of all judges' hard labels (:meth:`hard_labels`) for every row,
        ``(M,)`` float32: the hard-label arm that uses only what the soft labels use (every
        judge, no knowledge of which judge is least noisy). :func:`majority_vote` of the
        ``K`` judges' yes/no answers; a tie (possible only for an even number of judges)
        is 0.0, "not relevant"."""
        _threshold(threshold, self.data.max_grade)
        return majority_vote(torch.stack([self.hard_labels(k, threshold)
                                          for k in range(self.num_teachers)]))


def majority_vote(votes: Tensor) -> Tensor:
    """Per column, 1.0 where strictly more than half of the rows of ``votes`` ``(K, M)``
    (0/1 answers of ``K`` judges on ``M`` items) are 1, else 0.0, ``(M,)`` float32. Tie
    rule: exactly half yes is 0.0 ("not relevant"), so a candidate counts as relevant only
    when a strict majority of the judges says so (ties need an even ``K``)."""
    v = torch.as_tensor(votes)
    if v.dim() != 2 or v.shape[0] < 1:
        raise DataError(f"votes has shape {tuple(v.shape)}; expected (judges, items) with at "
                        "least one judge")
    if v.numel() and not bool(((v == 0) | (v == 1)).all()):
        bad = v[(v != 0) & (v != 1)][0].item()
        raise DataError(f"votes holds {bad}; expected 0/1 answers")
    yes = (v == 1).sum(0)
    return (2 * yes > v.shape[0]).float()


def _pairs(data: RankingData, first, second) -> tuple[Tensor, Tensor]:
    a = torch.as_tensor(np.asarray(first)).reshape(-1) if not torch.is_tensor(first) else first
    b = torch.as_tensor(np.asarray(second)).reshape(-1) if not torch.is_tensor(second) else second
    for name, t in (("first", a), ("second", b)):
        if t.dim() != 1 or (t.numel() and (t.is_floating_point() or t.dtype == torch.bool)):
            raise DataError(f"{name} has shape {tuple(t.shape)} and dtype {t.dtype}; expected "
                            "a list of integer row ids")
    if len(a) != len(b):
        raise DataError(f"first has {len(a)} row ids but second has {len(b)}; expected one "
                        "pair per position")
    m = data.num_rows
    for name, t in (("first", a), ("second", b)):
        if len(t) and (int(t.min()) < 0 or int(t.max()) >= m):
            bad = int(t[(t < 0) | (t >= m)][0])
            raise DataError(f"{name} holds row {bad}, but there are {m} rows; expected ids in "
                            f"0..{m - 1}")
    a, b = a.long(), b.long()
    other = (data.query[a] != data.query[b]).nonzero().flatten()
    if len(other):
        p = int(other[0])
        raise DataError(f"pair {p} compares row {int(a[p])} of query {int(data.query[a[p]])} "
                        f"with row {int(b[p])} of query {int(data.query[b[p]])}; expected two "
                        "candidates of the same query")
    same = (a == b).nonzero().flatten()
    if len(same):
        p = int(same[0])
        raise DataError(f"pair {p} compares row {int(a[p])} with itself; expected two "
                        "different candidates")
    return a, b


def _threshold(threshold, max_grade: int) -> None:
    if isinstance(threshold, bool) or not isinstance(threshold, (int, np.integer)) or \
            not 1 <= threshold <= max_grade:
        raise DataError(f"threshold must be a grade in 1..{max_grade}, got {threshold!r}")


def _plain(value):
    """A numpy integer as a Python int (so :func:`~mentor._util.args.positive_int` takes
    it and names it plainly); anything else as it is."""
    return int(value) if isinstance(value, np.integer) else value
