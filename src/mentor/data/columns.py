"""A table of named columns as a classification data set: numeric feature columns, a label
column, optionally a split column.

- Features: every numeric (or true/false) column, and every list column of numbers of one
  length (an embedding, a flattened image), except the label and split columns -- or the
  columns ``features`` names, in that order. A column of strings is refused unless it is
  the label (``data.features`` picks the numeric ones).
- Labels: class indices (integers, or floats holding whole numbers) or class names (sorted
  to indices, unless the file names its classes: a Hugging Face ``ClassLabel``). An empty
  cell (null), an empty string or ``-1`` marks a row *unlabeled*: it joins the training
  split as an unlabeled row (what semi-supervised methods and a teacher's soft labels learn
  from).
- Split: ``train``, ``val`` (or ``validation``) or ``test`` per row; a part that no row
  names is drawn from the training rows (:func:`mentor.data.splits.make_splits`).
Rows keep their position in the file as their sample id (:attr:`ArrayData.row_ids`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

import numpy as np

from ..errors import DataError
from ..registry import suggest
from .arrays import ArrayData, validate_arrays
from .files import UNLABELED, text_labels


def table_arrays(table, *, name: str, where: str, target: str,
                 features: Sequence[str] | None = None, split_column: str | None = None,
                 num_classes: int | None = None, class_names: tuple[str, ...] = (),
                 skip: Sequence[str] = ()) -> ArrayData:
    """The rows of a ``pyarrow.Table`` as :class:`ArrayData` (with ``row_ids`` and, when
    ``split_column`` is given, ``split``). ``skip``: columns never read as features."""
    features = feature_columns(list(table.column_names), target, where, features=features,
                               split_column=split_column, skip=skip)
    x = _features(table, list(features), where)
    y, names = label_column(table.column(target), f"{where}: column {target!r}", class_names)
    data = validate_arrays(name, x, y, num_classes=num_classes, class_names=names,
                           where=where, feature_name=_feature_namer(table, features),
                           unlabeled_mark=UNLABELED)
    if split_column is None:
        return data
    split = split_names(table.column(split_column), f"{where}: column {split_column!r}")
    keep = _labeled_rows(data, len(split))
    if data.unlabeled_ids is not None:
        off = data.unlabeled_ids[split[data.unlabeled_ids] != "train"]
        if len(off):
            from .tables import SPLIT_COLUMN
            by = ("its split" if split_column == SPLIT_COLUMN
                  else f"column {split_column!r}")
            raise DataError(f"{where}: row {int(off[0])} has no label but {by} puts it in "
                            f"{str(split[off[0]])!r}; expected unlabeled rows in 'train' "
                            "only (validation and test rows need labels to be scored)")
    return replace(data, split=split[keep])


def feature_columns(columns: list[str], target: str, where: str, *,
                    features: Sequence[str] | None = None, split_column: str | None = None,
                    skip: Sequence[str] = ()) -> list[str]:
    """The feature columns of a table with columns ``columns``: ``features`` checked, or
    every column besides the label, the split and ``skip``; the label and split columns
    must exist and no name may appear twice."""
    twice = sorted({c for c in columns if columns.count(c) > 1})
    if twice:
        raise DataError(f"{where}: column {twice[0]!r} appears {columns.count(twice[0])} times; "
                        "expected unique column names (a second copy of the label would be "
                        "read as a feature)")
    require_column(columns, target, "data.target", where)
    if split_column is not None:
        require_column(columns, split_column, "data.split_column", where)
    if features is None:
        taken = {target, split_column, *skip}
        features = [c for c in columns if c not in taken]
        if not features:
            raise DataError(f"{where} has no feature column besides {target!r}; expected "
                            "numeric columns (or list columns of numbers) to learn from")
        return features
    for c in features:
        require_column(columns, c, "data.features", where)
    if target in features:
        raise DataError(f"data.features names the label column {target!r}; expected "
                        "feature columns only")
    return list(features)


def _labeled_rows(data: ArrayData, n: int) -> np.ndarray:
    return np.arange(n) if data.row_ids is None else data.row_ids


def require_column(columns: list[str], name: str, field: str, where: str) -> None:
    """A :class:`DataError` naming the nearest column unless ``name`` is one."""
    if name not in columns:
        raise DataError(f"{field} {name!r} is not a column of {where}"
                        f"{suggest(name, columns)}; columns: {', '.join(columns)}")


def _feature_namer(table, features: Sequence[str]):
    """Feature ``j``'s column (and element, for a list column), for messages."""
    names = []
    for c in features:
        width = _width(table.column(c))
        names += [f"column {c!r}"] if width is None else [f"column {c!r}[{k}]"
                                                          for k in range(width)]
    return lambda j: names[j] if j < len(names) else f"feature {j}"


def _lengths(col) -> np.ndarray | None:
    """Each row's element count of a variable-length list column (``None``: not one)."""
    import pyarrow as pa
    if not (pa.types.is_list(col.type) or pa.types.is_large_list(col.type)):
        return None
    return (np.concatenate([c.value_lengths().to_numpy(zero_copy_only=False)
                            for c in col.chunks]) if col.num_chunks else np.zeros(0, int))


def _width(col) -> int | None:
    """Elements per row of a list column (its first row's; ``None``: a scalar column)."""
    import pyarrow as pa
    if pa.types.is_fixed_size_list(col.type):
        return col.type.list_size
    lengths = _lengths(col)
    if lengths is None:
        return None
    return int(lengths[0]) if len(lengths) else 0


def _features(table, features: list[str], where: str) -> np.ndarray:
    """The feature columns as one float32 array ``(rows, features)``, written column by
    column (no copy of the table as a whole)."""
    return feature_block(table, features, where)[0]


def feature_block(table, features: list[str], where: str, first_row: int = 0,
                  widths: list[int] | None = None) -> tuple[np.ndarray, list[int]]:
    """:func:`_features` of one piece of a streamed table, and each column's width.
    ``first_row``: the piece's first row in the file (errors name file rows); ``widths``:
    the widths of the pieces before (a list column must keep its length)."""
    got = [_feature_width(table.column(c), c, where, first_row) for c in features]
    for c, w, seen in zip(features, got, widths or got):
        if w != seen:
            raise DataError(f"{where}: column {c!r} holds lists of {seen} numbers but row "
                            f"{first_row} has {w}; expected the same length in every row")
    x = np.empty((table.num_rows, sum(got)), dtype=np.float32)
    at = 0
    for c, w in zip(features, got):
        x[:, at:at + w] = _numbers(table.column(c), c, w, where, first_row)
        at += w
    return x, got


def _feature_width(col, name: str, where: str, first_row: int = 0) -> int:
    import pyarrow as pa
    t = col.type
    width = _width(col)
    value = t.value_type if width is not None else t
    if not (pa.types.is_integer(value) or pa.types.is_floating(value)
            or pa.types.is_boolean(value) or pa.types.is_decimal(value)):
        hint = (" (name the numeric columns with data.features)" if pa.types.is_string(value)
                or pa.types.is_large_string(value) else "")
        raise DataError(f"{where}: column {name!r} holds {value} values; expected numbers for "
                        f"a feature column{hint}")
    lengths = _lengths(col)
    if lengths is not None and len(np.unique(lengths)) > 1:
        row = int(np.flatnonzero(lengths != lengths[0])[0])
        raise DataError(f"{where}: column {name!r} holds lists of {int(lengths[0])} numbers "
                        f"but row {first_row + row} has {int(lengths[row])}; expected the same "
                        "length in every row")
    return 1 if width is None else width


def _numbers(col, name: str, width: int, where: str, first_row: int = 0) -> np.ndarray:
    """One feature column as float32 ``(rows, width)``; a missing value is refused."""
    import pyarrow as pa
    import pyarrow.compute as pc
    if col.null_count:
        row = first_row + int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
        raise DataError(f"{where}: column {name!r} is empty at row {row}; expected a number in "
                        "every row of a feature column")
    if _width(col) is None:
        return col.cast(pa.float32()).to_numpy(zero_copy_only=False).reshape(-1, 1)
    flat = pc.list_flatten(col)
    if flat.null_count:
        raise DataError(f"{where}: column {name!r} has an empty element in a list; expected "
                        "numbers")
    return flat.cast(pa.float32()).to_numpy(zero_copy_only=False).reshape(-1, width)


def label_column(col, field: str, class_names: tuple[str, ...]) -> tuple[np.ndarray, tuple]:
    """Class indices (``-1``: unlabeled) and class names of a label column."""
    import pyarrow as pa
    t = col.type
    if pa.types.is_dictionary(t):
        col = col.cast(t.value_type)
        t = col.type
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        values = col.fill_null(UNLABELED).to_numpy(zero_copy_only=False)
        return values, class_names
    if pa.types.is_boolean(t):
        values = col.cast(pa.int64()).fill_null(UNLABELED).to_numpy(zero_copy_only=False)
        return values, ("false", "true")
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        raw = [("" if v is None else v.strip()) for v in col.to_pylist()]
        return text_labels(raw, field, list(range(len(raw))), row_word="row")
    raise DataError(f"{field} holds {t} values; expected class indices (integers) or class "
                    "names (strings), empty for an unlabeled row")


def split_names(col, field: str) -> np.ndarray:
    """Each row's part, ``'train'``, ``'val'`` or ``'test'`` (``validation`` and ``dev``
    read as ``val``), as a NumPy string array."""
    import pyarrow as pa
    from .tables import SPLIT_NAMES
    if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)
            or pa.types.is_dictionary(col.type)):
        raise DataError(f"{field} holds {col.type} values; expected 'train', 'val' or 'test' "
                        "per row")
    raw = col.to_pylist()
    out = np.empty(len(raw), dtype=object)
    for i, v in enumerate(raw):
        part = SPLIT_NAMES.get(v.strip().lower()) if isinstance(v, str) else None
        if part is None:
            raise DataError(f"{field} is {v!r} at row {i}; expected 'train', 'val' (or "
                            "'validation') or 'test'")
        out[i] = part
    return out.astype(str)
