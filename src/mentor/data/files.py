"""What every data file reader shares: the bound on a file's size, the check that a path is
a regular file, and the reading of a label column given as text (class indices or names,
``-1`` or an empty cell for an unlabeled row)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataError

# the label of an unlabeled row in a data file (in a CSV, an empty target cell too)
UNLABELED = -1

# data files are read whole into memory; beyond this they are refused with a sentence
# (MENTOR_MAX_DATA_BYTES raises the bound), never read until memory runs out
MAX_DATA_BYTES = 4 << 30


def max_data_bytes() -> int:
    import os
    try:
        return int(os.environ.get("MENTOR_MAX_DATA_BYTES", MAX_DATA_BYTES))
    except ValueError:
        return MAX_DATA_BYTES


def existing_file(path: Path, field: str = "data.source") -> Path:
    """``path`` if it is a regular file of at most the data bound (a FIFO, device, socket or
    folder is refused by name, before anything is opened)."""
    from .._util.safeio import FileProblem, regular_file, shown
    try:
        regular_file(path, limit=max_data_bytes(), what="a data file")
    except FileProblem as e:
        if e.reason == "missing":
            raise DataError(f"{field}: file {shown(path)} does not exist") from None
        if e.reason == "directory":
            raise DataError(f"{field}: {shown(path)} is a directory; expected a file") from None
        raise DataError(f"{field}: {e}") from None
    return path


def text_labels(raw: list[str], field: str, lines: list[int],
                row_word: str = "line") -> tuple[np.ndarray, tuple[str, ...]]:
    """Class indices of a text label column, ``-1`` for an unlabeled row (an empty cell or
    ``-1``): whole numbers when every other value is a number (``1`` and ``1.0`` alike; a
    number such as ``1.5`` is refused), else names in sorted order. ``lines``: each value's
    place in messages (``row_word`` ``lines[i]``)."""
    numbers = [_number(v) for v in raw]
    unlabeled = [v == "" or f == UNLABELED for v, f in zip(raw, numbers)]
    if all(unlabeled):
        raise DataError(f"{field} is empty or -1 in all {len(raw):,} rows, so no row has a "
                        "label; expected class labels (an empty cell or -1 only marks an "
                        "unlabeled row)")
    if all(u or f is not None for u, f in zip(unlabeled, numbers)):
        values = []
        for v, f, u, line in zip(raw, numbers, unlabeled, lines):
            if u:
                values.append(UNLABELED)
                continue
            if not np.isfinite(f) or f != int(f):
                raise DataError(f"{field} {row_word} {line} is {v[:60]!r}, not a whole number; "
                                "expected class indices 0, 1, ... (an empty cell or -1 for "
                                "an unlabeled row)")
            values.append(int(v) if _is_int_text(v) else int(f))
        return np.array(values, dtype=object), ()
    names = tuple(sorted({v for v, u in zip(raw, unlabeled) if not u}))
    index = {n: i for i, n in enumerate(names)}
    return np.array([UNLABELED if u else index[v] for v, u in zip(raw, unlabeled)],
                    dtype=np.int64), names


def _number(v: str) -> float | None:
    try:
        return float(v)
    except ValueError:
        return None


def _is_int_text(v: str) -> bool:
    try:
        int(v)
        return True
    except ValueError:
        return False
