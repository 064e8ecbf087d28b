"""Fixed stratified train / validation / test splits and the labeled subset of train."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import Tensor

from ..errors import DataError
from .arrays import ArrayData


@dataclass
class Split:
    """Tensors of one split. ``labeled`` marks the rows whose label the student may see
    (all rows of validation and test). ``source_index``: for a subset (data selection), each
    row's position in the split it was taken from -- what teachers that know rows by
    position (label stores, privileged inputs) are asked for; ``None``: the rows themselves.
    ``weak_y``: a weak (possibly wrong) label per row, ``-1`` where there is none; the
    weakly-labeled pool is the unlabeled rows that have one (``y`` keeps the true label,
    hidden from the student, for telemetry). ``x``: the inputs as a tensor, or a row source
    (:class:`mentor.data.rows.DatasetRows`: a map-style dataset read through a DataLoader,
    made by :func:`mentor.data.from_datasets`)."""

    x: Tensor
    y: Tensor
    labeled: Tensor
    source_index: Tensor | None = None
    weak_y: Tensor | None = None

    def __len__(self) -> int:
        return len(self.y)


@dataclass
class Splits:
    name: str
    train: Split
    val: Split
    test: Split
    num_classes: int
    input_shape: tuple[int, ...]
    seed: int
    mean: np.ndarray | None = None  # feature standardization fitted on train (None: off)
    std: np.ndarray | None = None
    unknown_rows: str = "generated"  # what train rows of unknown label (-1) are, in describe
    # the inputs a teacher trained outside mentor is presumed to take (Distiller's default
    # teacher_inputs): "raw" for the caller's own arrays (from_arrays), "standardized" for a
    # loaded data set, whose caller only ever saw the split's (standardized) rows
    teacher_inputs: str = "standardized"
    # each split's rows as sample ids of the source (a file's row positions; -1: a row that
    # is not the source's, e.g. generated), what a run writes to splits.json; None: unknown
    rows: dict[str, np.ndarray] | None = None
    rows_digest: str | None = None  # ArrayData.labels_digest of the source the rows index
    # token ids (a text source): the tokenizer's vocabulary size and the tokenizer itself
    # (mentor.data.text.Tokenizer); None for numeric inputs
    vocab_size: int | None = None
    tokenizer: object | None = None
    # graph nodes (task graph_nodes): the mentor.graphs.Hypergraph over the rows, which are
    # its nodes in id order in the train split; what a graph teacher propagates over
    graph: object | None = None

    def standardize(self, x) -> Tensor:
        """Raw inputs ``(N, ...)`` mapped as the splits were (train mean and std)."""
        flat = np.asarray(x, dtype=np.float32).reshape(len(x), -1)
        if self.mean is not None:
            flat = (flat - self.mean) / self.std
        return torch.from_numpy(np.ascontiguousarray(flat, dtype=np.float32))

    @property
    def in_features(self) -> int:
        return int(np.prod(self.input_shape))

    def describe(self) -> str:
        n_lab = int(self.train.labeled.sum())
        y = self.train.y
        n_gen = int((y < 0).sum() if y.ndim == 1 else (y < 0).flatten(1).all(1).sum())
        gen = f", {n_gen} {self.unknown_rows}" if n_gen else ""
        return (f"{self.name}: train {len(self.train)} ({n_lab} labeled{gen}), "
                f"val {len(self.val)}, test {len(self.test)}, {self.num_classes} classes")


def _stratified_pick(y: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``fraction`` of each class (at least one per class present)."""
    picked = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        k = max(1, int(round(fraction * len(idx))))
        picked.append(rng.choice(idx, size=min(k, len(idx)), replace=False))
    return np.sort(np.concatenate(picked))


def draw_labeled(y_train: np.ndarray, fraction: float, sampling: str,
                 rng: np.random.Generator) -> np.ndarray:
    """Which training rows (labels ``y_train``) the student sees labeled: ``fraction`` of
    each class (``sampling='per_class'``, at least one each) or of all rows (``'overall'``)."""
    labeled = np.zeros(len(y_train), dtype=bool)
    if sampling == "per_class":
        labeled[_stratified_pick(y_train, fraction, rng)] = True
    elif sampling == "overall":
        k = max(1, int(round(fraction * len(y_train))))
        labeled[rng.choice(len(y_train), size=k, replace=False)] = True
    else:
        raise DataError(f"data.labeled_sampling must be 'per_class' or 'overall', got "
                        f"{sampling!r}")
    return labeled


def make_splits(data: ArrayData, *, val_fraction: float = 0.2, test_fraction: float = 0.2,
                labeled_fraction: float = 1.0, seed: int = 0,
                standardize: bool = True, labeled_sampling: str = "per_class",
                weak_noise: float | None = None, weak_flip: str = "uniform") -> Splits:
    """Stratified split with a fixed seed; features standardized with train statistics.

    ``labeled_fraction`` keeps that fraction of the training labels visible to the student
    (the rest are unlabeled training inputs): of each class (``labeled_sampling='per_class'``,
    at least one per class) or of the whole training split drawn uniformly (``'overall'``).
    ``weak_noise``: give every unlabeled row a weak label, its true label replaced with
    probability ``weak_noise`` by another class (a weakly-labeled pool): a uniformly drawn one
    (``weak_flip='uniform'``) or always the next class, ``(y + 1) mod C`` (``'next'``: a
    systematic confusion, as behaviour data confuses related attributes).
    ``data.unlabeled`` (rows of a data file without a label) joins train as unlabeled rows,
    standardized with the same statistics; they never go to validation or test.
    ``data.split`` (a part per row, given by the source) replaces the drawn split; a part it
    leaves empty is drawn from its training rows (:func:`given_parts`).
    """
    for field, v in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0 < v < 1:
            raise DataError(f"data.{field} must be in (0, 1), got {v}")
    if val_fraction + test_fraction >= 1:
        raise DataError(f"data.val_fraction + data.test_fraction must be < 1, got "
                        f"{val_fraction + test_fraction:g}")
    if not 0 < labeled_fraction <= 1:
        raise DataError(f"data.labeled_fraction must be in (0, 1], got {labeled_fraction}")
    rng = np.random.default_rng(seed)
    if data.split is not None:
        tr, va, te = given_parts(f"data.source {data.name!r}", data.split, data.y, rng,
                                 val_fraction=val_fraction, test_fraction=test_fraction,
                                 field="the given split")
    else:
        counts = np.bincount(data.y, minlength=data.num_classes)
        small = [c for c in range(data.num_classes) if 0 < counts[c] < 3]
        if small:
            raise DataError(f"data.source {data.name!r}: class {small[0]} has "
                            f"{counts[small[0]]} samples; expected at least 3 per class for a "
                            "stratified train/val/test split")
        tr, va, te = draw_parts(data.y, np.arange(len(data.y)), rng, val_fraction,
                                 test_fraction)
    return splits_at(data, tr, va, te, rng=rng, seed=seed, standardize=standardize,
                     labeled_fraction=labeled_fraction, labeled_sampling=labeled_sampling,
                     weak_noise=weak_noise, weak_flip=weak_flip)


def draw_parts(y: np.ndarray, rows: np.ndarray, rng: np.random.Generator,
                val_fraction: float, test_fraction: float,
                given: str = "") -> tuple[np.ndarray, ...]:
    """``rows`` (indices into ``y``) drawn into train / val / test, stratified: of each
    class, ``test_fraction`` and ``val_fraction`` (at least one row each), the rest train."""
    train_idx, val_idx, test_idx = [], [], []
    for c in np.unique(y[rows]):
        idx = rng.permutation(rows[y[rows] == c])
        n_test = max(1, int(round(test_fraction * len(idx)))) if test_fraction else 0
        n_val = max(1, int(round(val_fraction * len(idx)))) if val_fraction else 0
        test_idx.append(idx[:n_test])
        val_idx.append(idx[n_test:n_test + n_val])
        train_idx.append(idx[n_test + n_val:])
        if len(train_idx[-1]) == 0 and given:
            raise DataError(f"{given}: drawing the missing part from the given training rows "
                            f"leaves class {c} ({len(idx)} training rows) none to train on; "
                            "expected more training rows of each class, or all three parts "
                            "given")
        if len(train_idx[-1]) == 0:
            raise DataError(f"data.val_fraction {val_fraction:g} and data.test_fraction "
                            f"{test_fraction:g} leave class {c} ({len(idx)} samples) no "
                            "training rows; expected smaller fractions")
    return tuple(rng.permutation(np.concatenate(p)) for p in (train_idx, val_idx, test_idx))


SPLIT_PARTS = ("train", "val", "test")


def given_parts(name: str, split: np.ndarray, y: np.ndarray, rng: np.random.Generator | None,
                *, val_fraction: float = 0.2, test_fraction: float = 0.2,
                field: str = "split") -> tuple[np.ndarray, ...]:
    """Row indices of the train, val and test rows ``split`` names (one of
    :data:`SPLIT_PARTS` per row), in their order, checked: a training row for every class.
    A part no row names is drawn from the training rows (stratified, from ``rng``, with its
    fraction); ``rng=None`` refuses a missing part instead."""
    if split.shape != y.shape:
        raise DataError(f"{name}: {field} has shape {split.shape}; expected ({len(y)},), one "
                        "of 'train', 'val', 'test' per row of x")
    known = np.array([isinstance(v, str) and v in SPLIT_PARTS for v in split.tolist()],
                     dtype=bool)
    if not known.all():
        row = int(np.flatnonzero(~known)[0])
        raise DataError(f"{name}: {field} has {split.tolist()[row]!r} at row {row}; expected "
                        "'train', 'val' or 'test'")
    parts = [np.flatnonzero(split == part) for part in SPLIT_PARTS]
    if len(parts[0]) == 0:
        raise DataError(f"{name}: {field} has no 'train' row; expected the training rows")
    missing = [i for i in (1, 2) if len(parts[i]) == 0]
    if missing and rng is None:
        raise DataError(f"{name}: {field} has no {SPLIT_PARTS[missing[0]]!r} row; expected at "
                        "least one row in each of train, val and test")
    if missing:
        tr, va, te = draw_parts(y, parts[0], rng, val_fraction if 1 in missing else 0.0,
                                 test_fraction if 2 in missing else 0.0,
                                 given=name)
        parts = [tr, va if 1 in missing else parts[1], te if 2 in missing else parts[2]]
    absent = np.setdiff1d(np.unique(y), y[parts[0]])
    if len(absent):
        c = int(absent[0])
        raise DataError(f"{name}: {field} gives class {c} ({int((y == c).sum())} rows) no "
                        "'train' row; expected at least one training row per class")
    return tuple(parts)


def splits_at(data: ArrayData, tr: np.ndarray, va: np.ndarray, te: np.ndarray, *,
              rng: np.random.Generator | None = None, seed: int = 0, standardize: bool = True,
              labeled_fraction: float = 1.0, labeled_sampling: str = "per_class",
              weak_noise: float | None = None, weak_flip: str = "uniform",
              labeled: np.ndarray | None = None) -> Splits:
    """:class:`Splits` whose train / validation / test rows are rows ``tr`` / ``va`` / ``te``
    of ``data`` (in that order), standardized with the statistics of the ``tr`` rows only;
    the labeled subset and weak labels as in :func:`make_splits` (drawn from ``rng``,
    default one seeded with ``seed``), or ``labeled``: the flags of the ``tr`` rows given
    (a reused split file)."""
    rng = np.random.default_rng(seed) if rng is None else rng
    x = data.x
    mean = std = None
    if standardize:
        mean = x[tr].mean(0)
        std = x[tr].std(0)
        std[std < 1e-8] = 1.0
        x = (x - mean) / std
    labeled = (draw_labeled(data.y[tr], labeled_fraction, labeled_sampling, rng)
               if labeled is None else np.asarray(labeled, dtype=bool))
    weak = None
    if weak_noise is not None:
        if not 0 <= weak_noise <= 1:
            raise DataError(f"data.weak_noise must be in [0, 1], got {weak_noise}")
        y_tr = data.y[tr]
        flip = rng.random(len(tr)) < weak_noise
        if weak_flip not in ("uniform", "next"):
            raise DataError(f"data.weak_flip must be 'uniform' or 'next', got {weak_flip!r}")
        shift = (rng.integers(1, data.num_classes, len(tr)) if weak_flip == "uniform"
                 else np.ones(len(tr), dtype=np.int64))
        other = (y_tr + shift) % data.num_classes
        weak = np.where(labeled, -1, np.where(flip, other, y_tr)).astype(np.int64)

    def split(idx: np.ndarray, lab: np.ndarray | None = None) -> Split:
        lab_t = torch.ones(len(idx), dtype=torch.bool) if lab is None else torch.from_numpy(lab)
        return Split(torch.from_numpy(np.ascontiguousarray(x[idx], dtype=np.float32)),
                     torch.from_numpy(data.y[idx].astype(np.int64)), lab_t)

    train = split(tr, labeled)
    if weak is not None:
        train.weak_y = torch.from_numpy(weak)
    ids = data.ids
    splits = Splits(data.name, train, split(va), split(te), data.num_classes,
                    data.input_shape, seed, mean, std,
                    rows={"train": ids[tr], "val": ids[va], "test": ids[te]},
                    rows_digest=data.labels_digest())
    if data.unlabeled is None or not len(data.unlabeled):
        return splits
    return append_unlabeled(splits, data.unlabeled, raw=True, kind="unlabeled",
                            what=f"data.source {data.name!r}: unlabeled rows",
                            ids=data.unlabeled_ids)


def append_unlabeled(splits: Splits, x: np.ndarray, *, raw: bool = True,
                     kind: str = "generated", what: str = "unlabeled rows",
                     ids: np.ndarray | None = None) -> Splits:
    """``splits`` with the rows of ``x`` ``(n, ...)`` appended to train as unlabeled rows of
    unknown label (``-1``), standardized like the data when ``raw``; ``kind`` names them in
    :meth:`Splits.describe`, ``what`` in the errors (rows that are not ``in_features`` finite
    real numbers each). ``ids``: the rows' sample ids in the source (default ``-1``: rows
    that are not the source's)."""
    flat = x.reshape(len(x), -1)
    if flat.shape[1] != splits.in_features:
        raise DataError(f"{what} with {flat.shape[1]} features; expected "
                        f"{splits.in_features} like the data")
    if not np.issubdtype(flat.dtype, np.number) or not np.isfinite(flat).all():
        raise DataError(f"{what} with NaN or infinite values or non-numbers; expected finite "
                        "numbers")
    flat = flat.astype(np.float32)
    n = len(flat)
    new_x = splits.standardize(flat) if raw else torch.as_tensor(flat, dtype=torch.float32)
    t = splits.train
    weak = (None if t.weak_y is None
            else torch.cat([t.weak_y, torch.full((n,), -1, dtype=t.weak_y.dtype)]))
    train = Split(torch.cat([t.x, new_x]),
                  torch.cat([t.y, torch.full((n,), -1, dtype=t.y.dtype)]),
                  torch.cat([t.labeled, torch.zeros(n, dtype=torch.bool)]), weak_y=weak)
    rows = splits.rows
    if rows is not None:
        new = np.full(n, -1, dtype=np.int64) if ids is None else np.asarray(ids, np.int64)
        rows = {**rows, "train": np.concatenate([rows["train"], new])}
    return replace(splits, train=train, unknown_rows=kind, rows=rows)


def check_split_ids(splits: dict[str, Tensor], n: int, item: str, items: str) -> None:
    """Each split of ``splits`` (name -> ids) is a 1-D integer tensor of ids in ``0..n-1`` and
    no id is in two splits; otherwise one :class:`DataError` sentence naming the split, the
    ``item`` (``"query"``; plural ``items``, ``"queries"``) and what is expected."""
    seen = torch.zeros(n, dtype=torch.int64)
    for name, ids in splits.items():
        if not torch.is_tensor(ids) or ids.dim() != 1 or ids.is_floating_point():
            raise DataError(f"{name} has shape {tuple(getattr(ids, 'shape', ()))}; "
                            f"expected a list of integer {item} ids")
        if len(ids) and (int(ids.min()) < 0 or int(ids.max()) >= n):
            bad = int(ids[(ids < 0) | (ids >= n)][0])
            raise DataError(f"{name} names {item} {bad}, but there are {n} {items}; "
                            f"expected ids in 0..{n - 1}")
        seen.index_add_(0, ids.long(), torch.ones(len(ids), dtype=torch.int64))
    twice = (seen > 1).nonzero().flatten()
    if len(twice):
        names = list(splits)
        listed = ", ".join(names[:-1]) + " and " + names[-1]
        raise DataError(f"{item} {int(twice[0])} is named twice in {listed}; expected "
                        "disjoint splits")
