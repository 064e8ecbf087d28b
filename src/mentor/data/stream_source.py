"""A table file larger than memory as :class:`~mentor.data.splits.Splits` whose rows are read
from disk while training (``data.stream``).

Two passes over the file, one piece at a time (:func:`mentor.data.table_stream.table_batches`):

1. the label (and split) column only: labels, unlabeled rows and the parts are those of the
   in-memory path (:func:`mentor.data.split_file.table_parts`: the same rules, the same
   seeded draw, so ``data.stream: true`` and ``false`` give the same split file);
2. the feature columns, converted to float32 rows and appended to a scratch file of fixed-size
   rows (deleted when the splits are), while the training rows' mean and standard deviation
   accumulate (in float64).

Each split is then a :class:`~mentor.data.rows.DatasetRows` over :class:`FeatureRows`: row
``k`` of a split is one ``os.pread`` of its sample's bytes, standardized, in DataLoader
workers (``data.workers``, default 0: tabular rows are cheap to read). Memory holds the
labels and sample ids (a few bytes per row) and the batches in flight, not the features;
sample ids stay the rows' positions in the file, so the label store, teacher caching and
resume index the same rows as in memory.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import weakref
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from .columns import feature_block, feature_columns
from .rows import DatasetRows
from .split_file import row_splits, table_parts
from .splits import Splits

STREAM_BYTES = 1 << 30  # data.stream unset: stream a table file (or folder) larger than this
SLICE_BYTES = 4 << 20  # float32 feature bytes converted at a time


def should_stream(path: Path) -> bool:
    """``data.stream``'s default: whether the file (a folder: its files) at ``path`` is larger
    than :data:`STREAM_BYTES`."""
    if path.is_dir():
        size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    else:
        size = path.stat().st_size if path.exists() else 0
    return size > STREAM_BYTES


class FeatureRows(torch.utils.data.Dataset):
    """Rows ``ids`` of a file of float32 rows of ``width`` values, each read with one
    ``os.pread`` and standardized with ``mean`` / ``std`` (``None``: as stored)."""

    def __init__(self, path: Path, width: int, ids: np.ndarray, mean: np.ndarray | None,
                 std: np.ndarray | None, owner=None):
        self.path, self.width = str(path), width
        self.ids = np.ascontiguousarray(ids, dtype=np.int64)
        self.mean = None if mean is None else torch.as_tensor(mean, dtype=torch.float32)
        self.std = None if std is None else torch.as_tensor(std, dtype=torch.float32)
        self._owner = owner  # keeps the scratch folder alive while a split reads it
        self._fd: int | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, k: int) -> torch.Tensor:
        if self._fd is None:  # opened in each process that reads
            self._fd = os.open(self.path, os.O_RDONLY)
        size = 4 * self.width
        raw = os.pread(self._fd, size, int(self.ids[k]) * size)
        x = torch.frombuffer(bytearray(raw), dtype=torch.float32)
        if self.mean is not None:
            x = (x - self.mean) / self.std
        return x

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_fd": None}

    def __del__(self, _close=os.close) -> None:  # os may be gone at interpreter exit
        if self._fd is not None:
            _close(self._fd)


class _Scratch:
    """A temporary folder removed when the last split reading it is gone (or at exit)."""

    def __init__(self):
        self.path = Path(tempfile.mkdtemp(prefix="mentor-stream-"))
        self._done = weakref.finalize(self, shutil.rmtree, str(self.path), True)


def table_stream_splits(path: Path, target: str | None, *, features: list[str] | None = None,
                        split_column: str | None = None, num_classes: int | None = None,
                        val_fraction: float = 0.2, test_fraction: float = 0.2,
                        labeled_fraction: float = 1.0, labeled_sampling: str = "per_class",
                        split_seed: int = 0, split_file: Path | None = None,
                        standardize: bool = True, workers: int = 0) -> Splits:
    """The rows of the table file (or dataset folder) ``path`` as splits read from disk (see
    the module docstring); the fields as :func:`mentor.data.load` takes them."""
    from .._util.safeio import shown
    from .table_stream import table_batches, table_columns
    from .tables import SPLIT_COLUMN, hf_class_names
    where = f"data.source {shown(path)}"
    if not target:
        raise DataError(f"data.target is required for a table source ({shown(path)}); "
                        "expected the name of the label column")
    if not path.exists():
        raise DataError(f"data.source {shown(path)} does not exist")
    columns = table_columns(path)
    given = split_column
    if SPLIT_COLUMN in columns:
        if split_column is not None:
            raise DataError(f"data.split_column {split_column!r} is set but {where} is a "
                            "dataset folder whose splits are given by name; expected no split "
                            "column")
        given = SPLIT_COLUMN
    features = feature_columns(columns, target, where, features=features, split_column=given)
    rows = table_parts(*_label_columns(table_batches(path, [target, *([given] if given else [])]),
                                       target, given),
                       name=str(path), where=where, target=target, split_field=given,
                       class_names=hf_class_names(path, target), num_classes=num_classes,
                       split_file=split_file, val_fraction=val_fraction,
                       test_fraction=test_fraction, labeled_fraction=labeled_fraction,
                       labeled_sampling=labeled_sampling, seed=split_seed)
    n = len(rows.labels)
    train_rows = np.zeros(n, dtype=bool)
    train_rows[rows.known[rows.parts[0]]] = True
    scratch = _Scratch()
    file = scratch.path / "features.f32"
    width, mean, std = _write_features(table_batches(path, features), features, where, file,
                                       n, train_rows if standardize else None)

    def rows_of(ids: np.ndarray) -> DatasetRows:
        return DatasetRows(FeatureRows(file, width, ids, mean, std, owner=scratch),
                           num_workers=workers)

    return row_splits(str(path), rows_of, rows.labels, rows.known, rows.unlabeled, rows.parts,
                      num_classes=rows.num_classes, input_shape=(width,), seed=split_seed,
                      mean=mean, std=std)


def _label_columns(pieces, target: str, split: str | None):
    """The label column and the split column (or ``None``) of every piece, as chunked
    arrays."""
    import pyarrow as pa
    labels, parts = [], []
    for t in pieces:
        labels.extend(t.column(target).chunks)
        if split is not None:
            parts.extend(t.column(split).chunks)
    label_col = pa.chunked_array(labels) if labels else pa.chunked_array([], pa.int64())
    return label_col, (pa.chunked_array(parts, pa.string()) if split is not None else None)


def _write_features(pieces, features: list[str], where: str, file: Path, n: int,
                    train_rows: np.ndarray | None):
    """Append each piece's feature rows (float32) to ``file``; return the row width and the
    mean and standard deviation of the rows ``train_rows`` marks (``None``: no statistics)."""
    widths = None
    at = 0
    shift = total = sq = None  # sums of (x - shift): no cancellation for large means
    count = 0
    with open(file, "wb") as out:
        for piece in pieces:
            step = max(1, SLICE_BYTES // max(1, 4 * sum(widths or [1])))
            for start in range(0, piece.num_rows, step):
                t = piece.slice(start, step)
                x, widths = feature_block(t, features, where, first_row=at, widths=widths)
                if not np.isfinite(x).all():
                    r, c = map(int, np.argwhere(~np.isfinite(x))[0])
                    raise DataError(f"{where}: row {at + r} has a NaN or infinite value in "
                                    f"feature {c}; expected finite numbers")
                if train_rows is not None:
                    part = x[train_rows[at:at + len(x)]].astype(np.float64)
                    if len(part):
                        shift = part.mean(0) if shift is None else shift
                        part -= shift
                        total = part.sum(0) if total is None else total + part.sum(0)
                        sq = (part ** 2).sum(0) if sq is None else sq + (part ** 2).sum(0)
                        count += len(part)
                out.write(memoryview(np.ascontiguousarray(x)).cast("B"))
                at += len(x)
    if at != n:
        raise DataError(f"{where} changed while it was read ({n} labels, {at} feature rows); "
                        "expected a file that stays the same during the run")
    width = sum(widths or [0])
    if train_rows is None or not count:
        return width, None, None
    centred = total / count
    mean = shift + centred
    std = np.sqrt(np.maximum(sq / count - centred ** 2, 0.0))
    std[std < 1e-8] = 1.0
    return width, mean.astype(np.float32), std.astype(np.float32)
