"""In-memory arrays of a classification data set, validated once on load."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..errors import DataError


@dataclass(frozen=True)
class ArrayData:
    """Features ``x`` (N, ...) float32 and labels ``y`` (N,) int64 in ``[0, num_classes)``.

    ``input_shape`` is the shape of one sample as models should see it (``(8, 8)`` for the
    digits images, ``(40,)`` for MNIST-1D); ``x`` is stored flat as ``(N, prod(input_shape))``.
    ``unlabeled``: rows of the same file without a label (M, prod(input_shape)) float32, or
    ``None``; :func:`~mentor.data.make_splits` appends them to train as unlabeled rows.
    ``row_ids`` / ``unlabeled_ids``: the position in the source of each row of ``x`` / of
    ``unlabeled`` (``None``: ``x`` is the source's rows in order, all labeled) -- the stable
    sample ids a run's split file records. ``split``: a part per row of ``x`` (``'train'``,
    ``'val'``, ``'test'``) given by the source, or ``None`` (mentor draws the split).
    """

    name: str
    x: np.ndarray
    y: np.ndarray
    num_classes: int
    input_shape: tuple[int, ...]
    class_names: tuple[str, ...] = ()
    unlabeled: np.ndarray | None = None
    row_ids: np.ndarray | None = None
    unlabeled_ids: np.ndarray | None = None
    split: np.ndarray | None = None

    @property
    def ids(self) -> np.ndarray:
        """Each row of ``x``'s sample id (its position in the source)."""
        return np.arange(len(self.y)) if self.row_ids is None else self.row_ids

    def labels_digest(self) -> str:
        return labels_digest(self.ids, self.y)


def labels_digest(ids: np.ndarray, y: np.ndarray) -> str:
    """A digest of labeled rows' (sample id, label) pairs: what a split was made of."""
    import hashlib
    pairs = np.stack([np.asarray(ids, np.int64), np.asarray(y, np.int64)], 1)
    return hashlib.sha256(np.ascontiguousarray(pairs).tobytes()).hexdigest()[:32]


def validate_arrays(name: str, x, y, *, num_classes: int | None = None,
                    input_shape: tuple[int, ...] | None = None,
                    class_names: tuple[str, ...] = (), where: str | None = None,
                    row_name: Callable[[int], str] | None = None,
                    feature_name: Callable[[int], str] | None = None,
                    unlabeled_mark: int | None = None) -> ArrayData:
    """Check shapes, finiteness and labels; return an :class:`ArrayData`.

    Every failure is one :class:`DataError` sentence naming the field, the value and what is
    expected; it starts with ``where`` (default: ``name``), e.g. ``data.source 'x.npz'``.
    ``row_name(i)`` / ``feature_name(j)`` name a row and a feature in messages (default
    ``row i`` / ``feature j``, counted from 0; a CSV names file lines and columns).

    Labels are class indices: integers, or floats holding whole numbers (read as those
    integers), compared by value whatever their dtype (a uint64 label is never read as a
    negative one). A label set that is absurd for its rows is refused (the rule of
    docs/reliability.md): more classes than rows, or -- without ``num_classes`` -- ids that
    leave more than half of the classes ``0..max`` without a row.

    ``unlabeled_mark``: a label that marks a row unlabeled (data files: ``-1``); those rows
    leave ``x`` / ``y`` for :attr:`ArrayData.unlabeled` and count as no class.
    """
    label = name
    name = where or name
    row_name = row_name or (lambda i: f"row {i}")
    feature_name = feature_name or (lambda j: f"feature {j}")
    x = np.asarray(x)
    y = np.asarray(y)
    if x.ndim < 2:
        raise DataError(f"{name}: x must have shape (samples, features...), got shape {x.shape}")
    if len(x) == 0:
        raise DataError(f"{name}: the data set is empty (0 samples); expected at least one "
                        "sample per class")
    if y.ndim != 1:
        raise DataError(f"{name}: y must be one label per sample, got shape {y.shape}")
    if len(y) != len(x):
        raise DataError(f"{name}: x has {len(x)} samples but y has {len(y)}; expected the same")
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise DataError(f"{name}: x must be real numbers, got dtype {x.dtype}")
    flat = x.reshape(len(x), -1).astype(np.float32, copy=False)
    bad = ~np.isfinite(flat)
    if bad.any():
        row, col = map(int, np.argwhere(bad)[0])
        raise DataError(f"{name}: x has {int(bad.sum())} NaN or infinite values (first at "
                        f"{row_name(row)}, {feature_name(col)}); expected finite numbers")
    marked = "" if unlabeled_mark is None else f", or {unlabeled_mark} for an unlabeled row"
    ids = _label_ids(y, name, row_name, marked)  # exact values, before any cast
    keep = [v != unlabeled_mark for v in ids] if unlabeled_mark is not None else None
    known = ids if keep is None else [v for v, k in zip(ids, keep) if k]
    if not known:
        raise DataError(f"{name}: all {len(ids):,} rows are unlabeled (label "
                        f"{unlabeled_mark}); expected labeled rows of at least 2 classes")
    nc_field = "num_classes" if num_classes is None else "data.num_classes"
    low, high = min(known), max(known)
    if low < 0 and (num_classes is None or unlabeled_mark is not None):
        i = ids.index(low)
        raise DataError(f"{name}: label {low} at {row_name(i)} is negative; expected class "
                        f"indices 0, 1, ...{marked}")
    classes = high + 1 if num_classes is None else num_classes
    if low < 0 or high >= classes:
        i = ids.index(low if low < 0 else high)
        raise DataError(f"{name}: label {ids[i]} at {row_name(i)} is outside [0, {classes}); "
                        f"expected class indices below {nc_field}={classes}")
    present = sorted(set(known))
    if len(present) < 2:
        some = " labeled" if len(known) < len(ids) else ""
        raise DataError(f"{name}: all {len(known)}{some} samples have label {present[0]}; "
                        "expected at least 2 classes")
    if classes > len(known):
        what = (f"labels go up to {high}" if num_classes is None
                else f"data.num_classes is {num_classes}")
        raise DataError(f"{name}: {what}, which makes {classes:,} classes for {len(known):,} "
                        f"rows ({len(present)} distinct labels); expected at most as many "
                        "classes as rows (class indices 0, 1, ... numbered without large gaps)")
    if num_classes is None and classes > 2 * len(present):
        raise DataError(f"{name}: labels go up to {high} ({classes:,} classes) but only "
                        f"{len(present)} distinct labels occur, so most classes would have no "
                        "row; expected class indices 0, 1, ... without large gaps (renumber the "
                        f"labels, or set data.num_classes: {classes} to keep the empty classes)")
    shape = tuple(input_shape) if input_shape else tuple(x.shape[1:])
    if int(np.prod(shape)) != flat.shape[1]:
        raise DataError(f"{name}: input_shape {shape} does not hold {flat.shape[1]} features")
    rest = row_ids = rest_ids = None
    if keep is not None and not all(keep):
        mask = np.asarray(keep)
        flat, rest = flat[mask], flat[~mask]
        row_ids, rest_ids = np.flatnonzero(mask), np.flatnonzero(~mask)
    return ArrayData(label, flat, np.asarray(known, dtype=np.int64), int(classes), shape,
                     tuple(class_names), rest, row_ids, rest_ids)


def _label_ids(y: np.ndarray, name: str, row_name: Callable[[int], str],
               marked: str = "") -> list[int]:
    """The labels as Python integers (exact for every dtype), or a :class:`DataError`
    (``marked`` ends its "expected class indices 0, 1, ..." list)."""
    if y.dtype == object:  # Python integers (a CSV column), checked one by one
        if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in y):
            return [int(v) for v in y]
        raise DataError(f"{name}: y must be integer class indices, got {type(y[0]).__name__} "
                        "values")
    if np.issubdtype(y.dtype, np.floating):
        if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            i = int(np.flatnonzero(~np.isfinite(y) | (y != np.round(y)))[0])
            raise DataError(f"{name}: label {float(y[i])!r} at {row_name(i)} is not a whole "
                            f"number; expected class indices 0, 1, ...{marked}")
        return [int(v) for v in y.tolist()]  # whole floats: the integers they hold
    if np.issubdtype(y.dtype, np.integer) or y.dtype == np.bool_:
        return [int(v) for v in y.tolist()]  # uint64 included: values, not bit patterns
    raise DataError(f"{name}: y must be integer class indices, got dtype {y.dtype}")
